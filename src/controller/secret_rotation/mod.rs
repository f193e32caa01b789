//! The `secret-rotation` controller: keeps a tenant-issued credential (API key or OAuth
//! client secret) fresh in a Secret with zero downtime.
//!
//! [`observe`] (the SecretRotation read fresh, its Secret, the tenant's credentials) →
//! [`step`] (pure, with the injected [`clock`]) → status written when it changed →
//! [`act`] (one side effect) → [`step::after`] → status and events ([`record`]).
//! [`schedule`] holds the time arithmetic (and the gauge's [`seconds_until_expiry`]),
//! [`health`] the conditions, [`finalize`] the cleanup on deletion, [`marker`] the API key description marker, [`failure`] the
//! mapping of errors to condition reasons.

pub mod act;
pub mod clock;
pub mod failure;
pub mod finalize;
pub mod health;
pub mod marker;
pub mod observe;
pub mod observed;
pub mod record;
pub mod schedule;
pub mod step;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::controller::{self, Action as Requeue, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

pub use self::clock::{Clock, OffsetClock, SystemClock};
pub use self::failure::Error;
use self::observed::{Action, Requeue as Next};
pub use self::schedule::seconds_until_expiry;
use super::Shared;
use crate::api::SecretRotation;
use crate::api::secret_rotation::{Phase, SecretRotationStatus};
use crate::controller::log_failure;
use crate::failpoint;

/// Field manager, event reporter and tracing span of this controller.
pub const CONTROLLER_NAME: &str = "qlik-csp-operator/secret-rotation";

struct Context {
    shared: Arc<Shared>,
    clock: Arc<dyn Clock>,
    recorder: Recorder,
}

/// Runs the controller on the system clock until its watch streams end.
/// The `controller` label of this controller's metrics and its readiness line.
pub const METRICS_NAME: &str = "secret-rotation";

pub async fn run(shared: Arc<Shared>) {
    run_with_clock(shared, Arc::new(SystemClock)).await;
}

/// Runs the controller on `clock` (tests move it with the emulator's).
pub async fn run_with_clock(shared: Arc<Shared>, clock: Arc<dyn Clock>) {
    let kube = shared.kube.clone();
    let runtime = shared.runtime.clone();
    let config = controller::Config::default().debounce(shared.settings.debounce);
    // Secrets are not watched: that would need list/watch on every Secret of the watched
    // namespaces. A Secret deleted or edited by a user is noticed at the next health check
    // (at most the tenant's syncInterval away).
    let controller = Controller::new(
        shared.settings.api::<SecretRotation>(&kube),
        watcher::Config::default(),
    )
    .with_config(config)
    .graceful_shutdown_on(runtime.shutdown.clone().cancelled_owned());
    let ready = runtime.ready_when_synced(METRICS_NAME, controller.store());
    let reporter = Reporter {
        controller: CONTROLLER_NAME.into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let context = Arc::new(Context {
        shared,
        clock,
        recorder: Recorder::new(kube, reporter),
    });
    let running = controller
        .run(
            runtime.observed(METRICS_NAME, Error::reason, reconcile),
            error_policy,
            context,
        )
        .for_each(|result| log_failure(CONTROLLER_NAME, result));
    tokio::join!(ready, running);
}

#[tracing::instrument(name = "secret-rotation", skip_all, fields(namespace = object.namespace(), name = object.name_any()))]
async fn reconcile(object: Arc<SecretRotation>, context: Arc<Context>) -> Result<Requeue, Error> {
    let result = sync(&object, &context).await;
    if let Err(error) = &result {
        tracing::warn!(reason = error.reason(), error = %error, "reconcile failed");
    }
    result
}

async fn sync(stored: &SecretRotation, context: &Context) -> Result<Requeue, Error> {
    let shared = &context.shared;
    let Some(object) = observe::read_fresh(shared, stored).await? else {
        return Ok(Requeue::await_change());
    };
    if object.meta().deletion_timestamp.is_some() {
        let (namespace, name) = (object.namespace().unwrap_or_default(), object.name_any());
        shared.runtime.metrics.forget_credential(&namespace, &name);
        finalize::finalize(shared, &context.recorder, &object).await?;
        return Ok(Requeue::await_change());
    }
    // Before anything is created: a deleted SecretRotation revokes what it made.
    if !finalize::has_finalizer(&object) {
        finalize::add(shared, &object).await?;
        return Ok(Requeue::requeue(Duration::ZERO));
    }
    let observation = observe::observe(shared, context.clock.now(), object).await?;
    let o = &observation.observed;
    let decision = step::step(o);
    let stored = observation.object.status.clone().unwrap_or_default();
    let mut fresh = observation.object.clone();
    // The phase (and the intent of a new credential) is persisted before the side effect
    // that depends on it.
    if let Some(written) = record::write_status(shared, &fresh, &decision.status).await? {
        fresh = written;
        if decision.status.phase == Phase::Creating && stored.phase != Phase::Creating {
            failpoint::hit(failpoint::rotation::AFTER_INTENT);
        }
    }
    record::publish_notes(&context.recorder, &observation.object, &decision.notes).await;
    expiry_gauge(shared, &observation.object, &decision.status);
    if decision.action == Action::Nothing {
        return Ok(requeue(decision.requeue, o.now, observation.health));
    }
    let outcome = act::act(shared, &observation, &decision.action).await;
    if let Err(failure) = &outcome {
        tracing::warn!(reason = failure.reason, error = %failure.message, "rotation step failed");
    }
    let last = step::after(o, &decision, outcome.as_ref());
    record::write_status(shared, &fresh, &last.status).await?;
    record::publish_notes(&context.recorder, &observation.object, &last.notes).await;
    expiry_gauge(shared, &observation.object, &last.status);
    Ok(requeue(last.requeue, o.now, observation.health))
}

/// `qlikops_credential_expiry_seconds` for this SecretRotation: none for credentials that
/// never expire (OAuth client secrets).
fn expiry_gauge(shared: &Shared, object: &SecretRotation, status: &SecretRotationStatus) {
    let expires_at = status
        .current
        .as_ref()
        .and_then(|c| c.expires_at.as_ref())
        .map(|t| t.0);
    let namespace = object.namespace().unwrap_or_default();
    shared
        .runtime
        .metrics
        .set_credential_expiry(&namespace, &object.name_any(), expires_at);
}

/// Real waits from the decision's, never longer than the health-check interval (which
/// notices a revoked credential or a deleted Secret).
fn requeue(next: Next, now: jiff::Timestamp, health: Duration) -> Requeue {
    let wait = match next {
        Next::Immediately => Duration::ZERO,
        Next::At(at) => schedule::until(now, at),
        Next::After(wait) => wait,
    };
    Requeue::requeue(wait.min(health))
}

fn error_policy(_object: Arc<SecretRotation>, error: &Error, _context: Arc<Context>) -> Requeue {
    tracing::debug!(reason = error.reason(), "retrying after an error");
    Requeue::requeue(Duration::from_secs(5))
}

/// Whether `object`'s owner reference points at `rotation`.
pub(crate) fn owned_by(object: &impl Resource, rotation: &SecretRotation) -> bool {
    let uid = rotation.meta().uid.as_deref();
    object
        .meta()
        .owner_references
        .iter()
        .flatten()
        .any(|r| Some(r.uid.as_str()) == uid)
}
