//! The controllers a SecretRotation suite runs in its own process: the rotation controller
//! (and, when asked, the tenant and CspEntry controllers) on a clock the test moves
//! together with the emulator's.

use std::sync::Arc;
use std::time::Duration;

use qlik_csp_operator::controller::csp_entry::remote_cache::RemoteCache;
use qlik_csp_operator::controller::secret_rotation::{self, OffsetClock};
use qlik_csp_operator::controller::tenant_clients::TenantClients;
use qlik_csp_operator::controller::{Settings, Shared, csp_entry, tenant};
use qlik_csp_operator::tenant::ClientConfig;

use super::Rig;
use crate::support;

/// Controllers that stop when the test ends.
pub struct Running {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The controllers' clock.
    pub clock: OffsetClock,
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Running {
    /// The rotation controller, and with `all` the tenant and CspEntry controllers too.
    /// Grace periods end at once (the CRD's 1 m minimum is overridden), so a rotation
    /// settles without moving the clock.
    pub fn start(rig: &Rig, all: bool) -> Running {
        let mut shared = support::controller_shared(&rig.env, Duration::from_millis(100));
        Arc::get_mut(&mut shared)
            .expect("not yet shared")
            .settings
            .grace_period_override = Some(Duration::ZERO);
        Running::with_shared(shared, all)
    }

    /// As [`Running::start`], keeping each SecretRotation's own grace period.
    pub fn start_keeping_grace(rig: &Rig, all: bool) -> Running {
        let shared: Arc<Shared> = support::controller_shared(&rig.env, Duration::from_millis(100));
        Running::with_shared(shared, all)
    }

    /// As [`Running::start`], but tenant clients trust a credential Secret for an hour: only
    /// the rotation's own notice makes them read it again.
    pub fn start_with_long_secret_cache(rig: &Rig, all: bool) -> Running {
        let short = support::controller_shared(&rig.env, Duration::from_millis(100));
        let template = ClientConfig {
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
            ..ClientConfig::new("https://set-per-tenant.invalid")
        };
        let shared = Arc::new(Shared {
            kube: short.kube.clone(),
            tenants: TenantClients::new(template, Duration::from_secs(3600))
                .with_allowed_hosts(support::test_allowed_hosts()),
            remote: RemoteCache::default(),
            turns: Default::default(),
            entries: Default::default(),
            clock: std::sync::Arc::new(qlik_csp_operator::controller::clock::SystemClock),
            settings: Settings {
                grace_period_override: Some(Duration::ZERO),
                ..short.settings.clone()
            },
            runtime: Default::default(),
        });
        Running::with_shared(shared, all)
    }

    pub fn with_shared(shared: Arc<Shared>, all: bool) -> Running {
        let clock = OffsetClock::default();
        let mut tasks = vec![tokio::spawn(secret_rotation::run_with_clock(
            shared.clone(),
            Arc::new(clock.clone()),
        ))];
        if all {
            tasks.push(tokio::spawn(tenant::run::run(shared.clone())));
            tasks.push(tokio::spawn(csp_entry::run(shared)));
        }
        Running { tasks, clock }
    }

    /// Moves the controller's and the emulator's clocks together.
    pub async fn advance(&self, rig: &Rig, by: Duration) {
        rig.advance_emulator(by).await;
        self.clock.advance(by);
    }
}
