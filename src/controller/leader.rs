//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several replicas only one
//! runs the controllers. Does I/O (the Lease).
//!
//! Built on `kube-lease-manager`, which renews the Lease with server-side apply (a
//! concurrent holder makes the apply conflict, so two replicas cannot both hold it). The
//! leader renews `grace` before expiry; a standby takes over within one lease duration
//! after the leader releases it or stops renewing.
//!
//! The crate's renewal loop logs and retries API errors without reporting them, so a
//! leader cut off from the apiserver would go on believing it leads after its Lease
//! expired. [`Elector::lost`] therefore also reads the Lease itself and gives up leadership
//! when it cannot confirm it held the Lease within the last `duration - grace`.
//!
//! RBAC: `get`, `create` and `patch` on `leases` in the Lease's namespace only.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Where the Lease is and how long it lasts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    /// Unique per process: `kubectl get lease` shows it as the holder.
    pub identity: String,
    /// How long a holder keeps the Lease without renewing it.
    pub duration: Duration,
}

/// Why leader election failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The lease duration is below 2 s (the renewal margin needs a whole second).
    #[error("the lease duration must be at least 2 seconds, got {0:?}")]
    InvalidDuration(Duration),
    /// The Lease could not be read, created or renewed.
    #[error("failed to manage Lease {namespace}/{name}")]
    Lease {
        namespace: String,
        name: String,
        #[source]
        source: LeaseManagerError,
    },
    /// The renewal task ended while this process was waiting for the Lease.
    #[error("the Lease renewal task stopped")]
    Stopped,
}

/// A process that holds (or waits for) the Lease. Dropping it releases the Lease.
pub struct Elector {
    kube: Client,
    grace: Duration,
    state: watch::Receiver<bool>,
    task: JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
    settings: LeaseSettings,
}

impl Elector {
    /// Starts competing for the Lease (creating it if needed); returns at once.
    pub async fn start(kube: Client, settings: LeaseSettings) -> Result<Elector, LeaderError> {
        let seconds = settings.duration.as_secs();
        if seconds < 2 {
            return Err(LeaderError::InvalidDuration(settings.duration));
        }
        // Renew a third of the duration before expiry: two renewal attempts fit in before
        // a standby may take over. The field manager stays the crate's default, one per
        // identity: mutual exclusion rests on server-side apply conflicts between managers.
        let grace = (seconds / 3).max(1);
        let manager = LeaseManagerBuilder::new(kube.clone(), &settings.name)
            .with_namespace(&settings.namespace)
            .with_identity(&settings.identity)
            .with_duration(seconds)
            .with_grace(grace)
            .build()
            .await
            .map_err(|source| settings.error(source))?;
        let (state, task) = manager.watch().await;
        Ok(Elector {
            kube,
            grace: Duration::from_secs(grace),
            state,
            task,
            settings,
        })
    }

    /// Whether this process holds the Lease now.
    pub fn is_leader(&self) -> bool {
        *self.state.borrow()
    }

    /// Waits until this process holds the Lease.
    pub async fn acquired(&mut self) -> Result<(), LeaderError> {
        self.state
            .wait_for(|leader| *leader)
            .await
            .map(|_| ())
            .map_err(|_| LeaderError::Stopped)
    }

    /// Resolves when this process no longer holds the Lease (lost it, or the renewal task
    /// stopped). The controllers must stop then: another replica may be leading.
    pub async fn lost(&mut self) {
        let leases: Api<Lease> = Api::namespaced(self.kube.clone(), &self.settings.namespace);
        let settings = &self.settings;
        let grace = self.grace;
        let state = &mut self.state;
        tokio::select! {
            // An error means the sender is gone: the renewal stopped, the Lease is not ours.
            _ = state.wait_for(|leader| !*leader) => {}
            () = unconfirmed(&leases, settings, grace) => {}
        }
    }

    /// Releases the Lease (if held) so that a standby takes over at once, not after expiry.
    pub async fn release(self) -> Result<(), LeaderError> {
        let Elector {
            state,
            task,
            settings,
            ..
        } = self;
        // Closing the channel makes the renewal task release the Lease and return.
        drop(state);
        match task.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(source)) => Err(settings.error(source)),
            Err(_) => Err(LeaderError::Stopped),
        }
    }
}

/// Resolves when the Lease names another holder, or when holding it could not be confirmed
/// for `duration - grace` (a standby may take over at `duration`).
async fn unconfirmed(leases: &Api<Lease>, settings: &LeaseSettings, grace: Duration) {
    let limit = settings.duration.saturating_sub(grace);
    let mut confirmed = Instant::now();
    let mut tick = tokio::time::interval((grace / 2).max(Duration::from_millis(500)));
    loop {
        tick.tick().await;
        match leases.get(&settings.name).await {
            Ok(lease) => {
                let holder = lease.spec.and_then(|s| s.holder_identity);
                if holder.as_deref() != Some(settings.identity.as_str()) {
                    tracing::error!(holder = ?holder, "another replica holds the Lease");
                    return;
                }
                confirmed = Instant::now();
            }
            Err(error) => tracing::warn!(%error, "failed to read the Lease"),
        }
        if confirmed.elapsed() >= limit {
            tracing::error!(?limit, "could not confirm holding the Lease in time");
            return;
        }
    }
}

impl LeaseSettings {
    fn error(&self, source: LeaseManagerError) -> LeaderError {
        LeaderError::Lease {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source,
        }
    }
}

/// A process identity for the Lease: `base` (the pod name, when known) made unique with
/// the process id and start time, so that two processes on one host never share it.
pub fn identity(base: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{base}_{:x}{nanos:x}", std::process::id())
}
