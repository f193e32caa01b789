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
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::{self, Action as Requeue, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

pub use self::clock::{Clock, OffsetClock, SystemClock};
pub use self::failure::Error;
use self::observed::{Action, Requeue as Next};
pub use self::schedule::seconds_until_expiry;
use super::Shared;
use crate::api::SecretRotation;
use crate::api::secret_rotation::{Phase, SECRET_ROTATION_LABEL};
use crate::failpoint;

/// Field manager, event reporter and tracing span of this controller.
pub const CONTROLLER_NAME: &str = "qlik-csp-operator/secret-rotation";

struct Context {
    shared: Arc<Shared>,
    clock: Arc<dyn Clock>,
    recorder: Recorder,
}

/// Runs the controller on the system clock until its watch streams end.
pub async fn run(shared: Arc<Shared>) {
    run_with_clock(shared, Arc::new(SystemClock)).await;
}

/// Runs the controller on `clock` (tests move it with the emulator's).
pub async fn run_with_clock(shared: Arc<Shared>, clock: Arc<dyn Clock>) {
    let kube = shared.kube.clone();
    let config = controller::Config::default().debounce(shared.settings.debounce);
    // A Secret the operator wrote carries the SecretRotation's name: its deletion or an
    // edit is noticed at once, whether or not the SecretRotation owns it.
    let secrets = watcher::Config::default().labels(SECRET_ROTATION_LABEL);
    let controller = Controller::new(
        shared.settings.api::<SecretRotation>(&kube),
        watcher::Config::default(),
    )
    .with_config(config)
    .watches(
        shared.settings.api::<Secret>(&kube),
        secrets,
        |secret: Secret| {
            let name = secret.labels().get(SECRET_ROTATION_LABEL).cloned()?;
            let namespace = secret.namespace()?;
            Some(ObjectRef::<SecretRotation>::new(&name).within(&namespace))
        },
    );
    let reporter = Reporter {
        controller: CONTROLLER_NAME.into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let context = Arc::new(Context {
        shared,
        clock,
        recorder: Recorder::new(kube, reporter),
    });
    controller
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(controller = CONTROLLER_NAME, %error, "reconcile failed");
            }
        })
        .await;
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
    Ok(requeue(last.requeue, o.now, observation.health))
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
