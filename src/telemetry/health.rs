//! Readiness: whether the controllers' watches have synced. Shared by the controllers,
//! which report, and the `/readyz` endpoint, which asks. No I/O.
//!
//! A standby replica (waiting for the leader Lease) reports ready: it is healthy, serves
//! `/metrics`, and a rolling update must be able to start it while the old leader still
//! holds the Lease (were standbys unready, a Deployment with `maxUnavailable: 0` would wait
//! forever for a new pod that cannot lead until the old one is gone). It becomes unready
//! when it takes the Lease, until its controllers' watches have synced.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The readiness of this process. Cheap to clone; clones share the state.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    standby: AtomicBool,
    /// Registered controllers and whether their watches have synced.
    controllers: Mutex<Vec<(&'static str, bool)>>,
}

/// A controller's handle: call [`Synced::ready`] once its reflector store is ready.
#[derive(Debug)]
pub struct Synced {
    readiness: Readiness,
    index: usize,
}

impl Readiness {
    /// Adds a controller that must sync before the process is ready. Call it before the
    /// controller's first await, so that no controller reports ready before all registered.
    pub fn register(&self, controller: &'static str) -> Synced {
        let mut controllers = self.lock();
        controllers.push((controller, false));
        Synced {
            readiness: self.clone(),
            index: controllers.len() - 1,
        }
    }

    /// Marks this process a standby (waiting for the Lease) or not.
    pub fn set_standby(&self, standby: bool) {
        self.inner.standby.store(standby, Ordering::Release);
    }

    /// Ready: a standby, or at least one controller registered and all of them synced.
    pub fn is_ready(&self) -> bool {
        if self.inner.standby.load(Ordering::Acquire) {
            return true;
        }
        let controllers = self.lock();
        !controllers.is_empty() && controllers.iter().all(|(_, synced)| *synced)
    }

    /// One line per controller, for the `/readyz` body.
    pub fn report(&self) -> String {
        if self.inner.standby.load(Ordering::Acquire) {
            return "standby: waiting for the leader Lease\n".to_owned();
        }
        let controllers = self.lock();
        if controllers.is_empty() {
            return "no controller started yet\n".to_owned();
        }
        controllers
            .iter()
            .map(|(name, synced)| {
                let state = if *synced { "synced" } else { "syncing" };
                format!("{name}: {state}\n")
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(&'static str, bool)>> {
        self.inner
            .controllers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Synced {
    /// The controller's watches have synced.
    pub fn ready(&self) {
        if let Some(entry) = self.readiness.lock().get_mut(self.index) {
            entry.1 = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_once_every_registered_controller_synced_or_while_standby() {
        let readiness = Readiness::default();
        assert!(!readiness.is_ready());
        let tenant = readiness.register("tenant");
        let entries = readiness.register("csp-entry");
        tenant.ready();
        assert!(!readiness.is_ready());
        assert_eq!(readiness.report(), "tenant: synced\ncsp-entry: syncing\n");
        readiness.set_standby(true);
        assert!(readiness.is_ready());
        readiness.set_standby(false);
        entries.ready();
        assert!(readiness.is_ready());
    }
}
