//! What the `tenant` controller's reconciles share, and the time a reconcile runs at.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;

use super::pacing::Pacer;
use crate::api::{CspEntry, QlikTenant};
use crate::controller::Shared;
use crate::controller::backoff::{self, Backoff};

/// Field manager, event reporter and tracing span of this controller.
pub const CONTROLLER_NAME: &str = "qlik-csp-operator/tenant";

/// What the controller's reconciles share.
pub struct Context {
    pub shared: Arc<Shared>,
    /// The controller's store of QlikTenants: who else names a ConfigMap.
    pub tenants: Store<QlikTenant>,
    /// Every CspEntry, from the watch shared with the csp-entry controller
    /// ([`EntryFeed`](crate::controller::entry_feed::EntryFeed)).
    pub entries: Store<CspEntry>,
    pub(super) recorder: Recorder,
    /// Consecutive transient failures per tenant, for the backoff.
    pub(super) backoff: Backoff<QlikTenant>,
    /// When each tenant was last checked and published.
    pub(super) pacer: Pacer,
}

impl Context {
    pub fn new(shared: Arc<Shared>, tenants: Store<QlikTenant>) -> Context {
        Context {
            recorder: Recorder::new(
                shared.kube.clone(),
                crate::controller::event_reporter(CONTROLLER_NAME),
            ),
            entries: shared.entries.store(&shared),
            shared,
            tenants,
            backoff: Backoff::new(backoff::DEFAULT),
            pacer: Pacer::default(),
        }
    }

    pub(super) fn drift_interval(&self, tenant: &QlikTenant) -> Duration {
        self.shared
            .settings
            .drift_interval(tenant.spec.sync_interval.into())
    }
}

/// The time a reconcile runs at, read once at its start: the wall clock for status
/// timestamps, the monotonic one for pacing.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    pub wall: jiff::Timestamp,
    pub instant: Instant,
}

impl Now {
    pub fn read(ctx: &Context) -> Now {
        Now {
            wall: ctx.shared.clock.now(),
            instant: Instant::now(),
        }
    }
}
