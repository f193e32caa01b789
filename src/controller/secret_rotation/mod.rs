//! The `secret-rotation` controller: keeps a tenant-issued credential (API key, OAuth
//! client secret, or automation execution token) fresh in a Secret with zero downtime.
//!
//! [`observe`] (the SecretRotation read fresh, its Secret, the tenant's credentials) →
//! [`step`] (pure, with the injected [`clock`]) → status written when it changed →
//! [`act`] (one side effect; the Secret's writes in [`secret`]) → [`step::after`] →
//! status and events ([`record`]). [`schedule`] holds the time arithmetic (and the gauge's
//! [`seconds_until_expiry`]), [`health`] the conditions, [`finalize`] the cleanup on
//! deletion, [`marker`] the API key description and automation name markers, [`proof`]
//! which credentials are provably the operator's, [`held`] the values of credentials whose
//! Secret write failed, [`automation`] the tenant side of automation tokens (a rotation
//! copies the automation), and [`failure`] the mapping of errors to condition reasons;
//! retries use the shared [`backoff`](crate::controller::backoff).

pub mod act;
pub mod automation;
pub mod failure;
pub mod finalize;
pub mod health;
pub mod held;
pub mod marker;
pub mod observe;
pub mod observed;
pub mod proof;
pub mod record;
pub mod schedule;
pub mod secret;
pub mod step;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::controller::{self, Action as Requeue, Controller};
use kube::runtime::events::Recorder;
use kube::runtime::{PredicateConfig, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};

pub use self::failure::Error;
use self::observed::{Action, Requeue as Next};
pub use self::schedule::seconds_until_expiry;
use super::Shared;
use crate::api::secret_rotation::{Phase, SecretRotationStatus};
use crate::api::{QlikTenant, SecretRotation};
use crate::controller::backoff::{self, Backoff};
pub use crate::controller::clock::{Clock, OffsetClock, SystemClock};
use crate::controller::log_failure;
use crate::failpoint;

/// Field manager, event reporter and tracing span of this controller.
pub const CONTROLLER_NAME: &str = "qlik-csp-operator/secret-rotation";

struct Context {
    shared: Arc<Shared>,
    clock: Arc<dyn Clock>,
    recorder: Recorder,
    /// Values of created credentials not yet in their Secret.
    held: held::Held,
    /// Failures in a row, per SecretRotation.
    backoff: Backoff<SecretRotation>,
}

/// Runs the controller on the system clock until its watch streams end.
/// The `controller` label of this controller's metrics and its readiness line.
pub const METRICS_NAME: &str = "secret-rotation";

pub async fn run(shared: Arc<Shared>) {
    let clock = shared.clock.clone();
    run_with_clock(shared, clock).await;
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
    let rotations = controller.store();
    // A QlikTenant created (or becoming Ready) after its SecretRotations wakes them at once,
    // instead of at their next retry (`TenantNotFound` waits out the backoff).
    // Only a tenant's arrival and its Ready status matter here, not every status write.
    let tenants = watcher(
        shared.settings.api::<QlikTenant>(&kube),
        watcher::Config::default(),
    )
    .applied_objects()
    .predicate_filter(super::tenant_readiness, PredicateConfig::default());
    let controller = controller.watches_stream(tenants, move |tenant: QlikTenant| {
        super::naming_tenant(&rotations, &tenant, |r: &SecretRotation| {
            &r.spec.tenant_ref.name
        })
    });
    let ready = runtime.ready_when_synced(METRICS_NAME, controller.store());
    let reporter = super::event_reporter(CONTROLLER_NAME);
    let context = Arc::new(Context {
        shared,
        clock,
        recorder: Recorder::new(kube, reporter),
        held: held::Held::default(),
        backoff: Backoff::new(backoff::DEFAULT),
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
    // A step the tenant failed waits for its retry: the watch event of the status that
    // records the failure must not call the tenant again sooner.
    if let Some(wait) = context.backoff.holding(&object) {
        return Ok(Requeue::requeue(wait));
    }
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
    let uid = object.meta().uid.clone().unwrap_or_default();
    if object.meta().deletion_timestamp.is_some() {
        let (namespace, name) = (object.namespace().unwrap_or_default(), object.name_any());
        let now = context.clock.now();
        let wait =
            finalize::finalize(shared, &context.recorder, &context.held, &object, now).await?;
        if let Some(at) = wait {
            // Say why the deletion waits (written once: the message does not change).
            let mut status = object.status.clone().unwrap_or_default();
            health::set_finalizing(&mut status, object.meta().generation, now, at);
            record::write_status(shared, &object, &status).await?;
            let health = health_interval(shared, &object).await;
            return Ok(requeue(context, &object, Next::At(at), now, health));
        }
        shared.runtime.metrics.forget_credential(&namespace, &name);
        context.backoff.succeeded(&object);
        return Ok(Requeue::await_change());
    }
    // Before anything is created: a deleted SecretRotation revokes what it made.
    if !finalize::has_finalizer(&object) {
        finalize::add(shared, &object).await?;
        return Ok(Requeue::requeue(Duration::ZERO));
    }
    let observation = observe::observe(shared, &context.held, context.clock.now(), object).await?;
    let o = &observation.observed;
    let decision = step::step(o);
    let stored = observation.object.status.clone().unwrap_or_default();
    let mut fresh = observation.object.clone();
    // The phase (and the intent of a new credential) is persisted before the side effect
    // that depends on it. Before a side effect, conditions alone are not written: the
    // outcome's are, so a retried step does not flip them back and forth.
    let write_now = decision.action == Action::Nothing
        || observation.object.status.is_none()
        || !record::same_intent(&stored, &decision.status);
    if write_now
        && let Some(written) = record::write_status(shared, &fresh, &decision.status).await?
    {
        fresh = written;
        if decision.status.phase == Phase::Creating && stored.phase != Phase::Creating {
            failpoint::hit(failpoint::rotation::AFTER_INTENT);
        }
    }
    record::publish_notes(&context.recorder, &observation.object, &decision.notes).await;
    expiry_gauge(shared, &observation.object, &decision.status);
    if decision.action == Action::Nothing {
        forget_held(context, &uid, &decision.status);
        return Ok(requeue(
            context,
            &observation.object,
            decision.requeue,
            o.now,
            observation.health,
        ));
    }
    let outcome = act::act(shared, &context.held, &observation, &decision.action).await;
    if let Err(failure) = &outcome {
        tracing::warn!(reason = failure.reason, error = %failure.message, "rotation step failed");
    }
    // A create whose Secret write failed left its credential held: the status records it.
    let mut o = o.clone();
    o.held = decision
        .status
        .pending
        .as_ref()
        .and_then(|p| context.held.facts(&uid, p.revision));
    let last = step::after(&o, &decision, outcome.as_ref());
    record::write_status(shared, &fresh, &last.status).await?;
    if o.held.is_some()
        && last
            .status
            .pending
            .as_ref()
            .is_some_and(|p| p.created.is_some())
    {
        failpoint::hit(failpoint::rotation::HELD_UNWRITTEN);
    }
    record::publish_notes(&context.recorder, &observation.object, &last.notes).await;
    expiry_gauge(shared, &observation.object, &last.status);
    forget_held(context, &uid, &last.status);
    Ok(requeue(
        context,
        &observation.object,
        last.requeue,
        o.now,
        observation.health,
    ))
}

/// A held value is needed only while its revision is being created.
fn forget_held(context: &Context, uid: &str, status: &SecretRotationStatus) {
    if status.phase != Phase::Creating {
        context.held.forget(uid);
    }
}

/// The health-check interval of `object`'s tenant (the finalizer's longest wait).
async fn health_interval(shared: &Shared, object: &SecretRotation) -> Duration {
    let tenants: kube::Api<crate::api::QlikTenant> =
        kube::Api::namespaced(shared.kube.clone(), &object.namespace().unwrap_or_default());
    let configured = match tenants.get_opt(&object.spec.tenant_ref.name).await {
        Ok(Some(tenant)) => tenant.spec.sync_interval.into(),
        _ => Duration::from_secs(600),
    };
    shared.settings.drift_interval(configured)
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

/// Real waits from the decision's; after a failure, the shared backoff
/// ([`backoff`](crate::controller::backoff)). Never longer than the health-check interval
/// (which notices a revoked credential, a deleted Secret or an opt-in annotation added to
/// one), except while the tenant asked for a pause: then no sooner than its end.
fn requeue(
    context: &Context,
    object: &SecretRotation,
    next: Next,
    now: jiff::Timestamp,
    health: Duration,
) -> Requeue {
    let wait = match next {
        Next::Retry { at_least } => {
            let tenant = context
                .shared
                .tenants
                .backoff_state(&object.tenant_key(), None);
            let (now, jitter) = (tokio::time::Instant::now(), crate::tenant::retry::jitter());
            let wait = retry_wait(
                &context.backoff,
                object,
                tenant,
                at_least,
                health,
                now,
                jitter,
            );
            context.backoff.hold(object, wait);
            return Requeue::requeue(wait);
        }
        // The tenant's pause: not capped, and the object's streak does not grow.
        Next::Paused(pause) => {
            return Requeue::requeue(context.backoff.failed(object, Some(pause)));
        }
        Next::Immediately => Duration::ZERO,
        Next::At(at) => schedule::until(now, at),
        Next::After(wait) => wait,
    };
    context.backoff.succeeded(object);
    Requeue::requeue(wait.min(health))
}

/// The wait before a failed step is tried again: the shared backoff, capped at its
/// `answering_max` when the tenant answered a request (`tenant.answered_at`) since the rotation's
/// previous failure, so that a rotation whose retries an outage of the API key service or
/// a flaky tenant kept failing does not sit at the 5-minute cap once the tenant answers
/// (the `secret_faults` chaos run's rotation through a 2-minute outage took 283 s without
/// it). At least what the step asked for, and never beyond the health-check interval.
fn retry_wait(
    backoff: &Backoff<SecretRotation>,
    object: &SecretRotation,
    tenant: backoff::TenantState,
    at_least: Duration,
    health: Duration,
    now: tokio::time::Instant,
    jitter: f64,
) -> Duration {
    backoff
        .failed_on_at(object, tenant, now, jitter)
        .max(at_least)
        .min(health)
}

/// A reconcile that failed (the apiserver refused a read or the status write): the same
/// backoff as a failed step.
fn error_policy(object: Arc<SecretRotation>, error: &Error, context: Arc<Context>) -> Requeue {
    tracing::debug!(reason = error.reason(), "retrying after an error");
    Requeue::requeue(context.backoff.failed(&object, None))
}

/// Whether `object` has a controller owner reference to `rotation` (so it goes with it).
pub(crate) fn controlled_by(object: &impl Resource, rotation: &SecretRotation) -> bool {
    let uid = rotation.meta().uid.as_deref();
    object
        .meta()
        .owner_references
        .iter()
        .flatten()
        .any(|r| Some(r.uid.as_str()) == uid && r.controller == Some(true))
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

#[cfg(test)]
mod tests {
    use tokio::time::Instant;

    use super::*;

    const SECOND: Duration = Duration::from_secs(1);
    const AN_HOUR: Duration = Duration::from_secs(3600);

    /// The tenant as the backoff sees it: no pause, last answered at `answered_at`.
    fn answered(answered_at: Option<Instant>) -> backoff::TenantState {
        backoff::TenantState {
            pause: None,
            answered_at,
        }
    }

    fn rotation() -> SecretRotation {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "qlikops.io/v1alpha1",
            "kind": "SecretRotation",
            "metadata": { "name": "reports-api-key", "namespace": "web" },
            "spec": {
                "tenantRef": { "name": "acme" },
                "credential": { "apiKey": { "description": "reports service" } },
                "secret": { "name": "reports-qlik", "key": "api-key" },
            },
        }))
        .expect("a valid SecretRotation")
    }

    /// The `secret_faults` chaos scenario in small: a rotation's retries fail through an
    /// outage of the API key service, then once more at random while the tenant answers
    /// other requests.
    #[test]
    fn a_rotation_whose_tenant_answers_again_retries_within_a_minute() {
        let backoff = Backoff::new(backoff::DEFAULT);
        let object = rotation();
        let retry = |answered_at, at| {
            retry_wait(
                &backoff,
                &object,
                answered(answered_at),
                Duration::ZERO,
                AN_HOUR,
                at,
                0.999,
            )
        };
        let t0 = Instant::now();
        let before_the_outage = Some(t0 - SECOND);
        let mut at = t0;
        for _ in 0..6 {
            at += retry(before_the_outage, at);
        }
        let last_answer = Some(at - SECOND);
        let wait = retry(last_answer, at);
        assert!(wait <= backoff::DEFAULT.answering_max, "{wait:?}");

        // No answer since that failure: the tenant is down for everyone, the ladder goes on.
        at += wait;
        let outage = retry(last_answer, at);
        assert!(outage > 2 * backoff::DEFAULT.answering_max, "{outage:?}");
    }

    #[test]
    fn a_retry_waits_at_least_what_the_step_asked_and_at_most_the_health_interval() {
        let backoff = Backoff::new(backoff::DEFAULT);
        let now = Instant::now();
        let floor = Duration::from_secs(90);
        let first = retry_wait(
            &backoff,
            &rotation(),
            answered(None),
            floor,
            AN_HOUR,
            now,
            0.0,
        );
        assert_eq!(first, floor);
        let health = Duration::from_secs(30);
        let other = SecretRotation {
            metadata: kube::api::ObjectMeta {
                name: Some("other".to_owned()),
                ..rotation().metadata
            },
            ..rotation()
        };
        assert_eq!(
            retry_wait(&backoff, &other, answered(None), floor, health, now, 0.0),
            health
        );
    }
}
