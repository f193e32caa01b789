//! Reconciling one `QlikTenant`: check the connection, publish the header, record the
//! status, in the house shape: [`observe`](super::observe) → [`plan`](super::plan) (pure,
//! takes `now`) → [`apply`](super::apply) → [`record`](super::record).
//!
//! # Steps
//! 1. Observe the tenant's CspEntries (from the store shared with the csp-entry controller)
//!    and what this controller remembers of the tenant; [`plan::pace`] holds the header
//!    while entries are settling (the last one to settle triggers the publish).
//! 2. Observe the tenant: a client ([`TenantClients`](crate::controller::tenant_clients::TenantClients))
//!    and its id (`tenants/me`, which proves the credential; once per drift interval).
//! 3. [`plan::header`]: from the tenant (`generate-header`, only when connected) or compiled
//!    from the tenant's CspEntries (`Local`, also when the tenant is down), then validated.
//!    An invalid header is never written: the ConfigMap keeps the last good one.
//! 4. Apply ([`apply`](super::apply)): write the ConfigMap only when the tenant may (the
//!    operator created it for this tenant, or its owner opted in; see
//!    [`claim`](super::claim)) and its value or annotation differs, then bump the Ingresses
//!    that serve it and lack the header's SHA-256.
//! 5. Record ([`plan::status`], then [`record`](super::record)): the status subresource,
//!    only when it changed; events on transitions and writes. The failing condition is
//!    recorded before the error is returned; the one exception is a reconcile that starts
//!    before the shared CspEntry store has its first list (the first seconds after start),
//!    which decides nothing and is retried with backoff.
//!
//! # Errors
//! [`Error::is_transient`] drives [`error_policy`]: transient errors are retried with a
//! capped, jittered backoff; permanent ones (bad credential, invalid header, bad spec) at
//! the drift interval, since what fixes them (a Secret, the tenant's console) is not
//! watched.

use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;

use super::apply::publish_header;
use super::context::{Context, Now};
use super::plan::{self, HeaderPlan, Pace};
use super::{departures, edge, observe, record, status};
use crate::api::QlikTenant;
use crate::controller::tenant_clients::key_of;
use crate::csp::header;

pub use super::context::CONTROLLER_NAME;
pub use super::error::Error;

/// Reconciles one tenant; see the module documentation.
#[tracing::instrument(name = "tenant", skip_all, fields(namespace = tenant.namespace(), name = tenant.name_any()))]
pub async fn reconcile(tenant: Arc<QlikTenant>, ctx: Arc<Context>) -> Result<Action, Error> {
    if tenant.metadata.deletion_timestamp.is_some() {
        // Only with a finalizer someone else added (foreground deletion): the ConfigMap the
        // operator created goes with the tenant (owner reference); the rest is in memory.
        departures::forget(&ctx, &key_of(&tenant));
        return Ok(Action::await_change());
    }
    let now = Now::read(&ctx);
    let drift = ctx.drift_interval(&tenant);

    let seen = observe::seen(&ctx, &tenant).await?;
    let check_connection = match plan::pace(&tenant, &seen, drift, now.instant) {
        Pace::Hold { until } => {
            return Ok(Action::requeue(
                until.saturating_duration_since(now.instant),
            ));
        }
        Pace::Proceed { check_connection } => check_connection,
    };
    let remembered = seen.memory.checked.as_ref();
    let connection = observe::connect(&ctx, &tenant, remembered, check_connection, now).await;

    let plan = plan::header(&tenant, &seen, connection.is_ok(), drift, now.instant);
    let value = match (plan, &connection) {
        (HeaderPlan::Skip, _) => None,
        (HeaderPlan::Compiled(compiled), _) => Some(compiled),
        (HeaderPlan::Fetched(value), _) => {
            Some(header::validate(&value).map_err(Error::InvalidHeader))
        }
        (HeaderPlan::Fetch { digest }, Ok(connected)) => Some(
            observe::fetch_header(&ctx, &tenant, &connected.client, digest, now)
                .await
                .and_then(|value| header::validate(&value).map_err(Error::InvalidHeader)),
        ),
        // The plan asks the tenant only once connected.
        (HeaderPlan::Fetch { .. }, Err(_)) => None,
    };
    let published = match (value, &tenant.spec.header) {
        (Some(value), Some(spec)) => {
            let candidate = plan::candidate(&tenant, &seen);
            let publication = plan::publication(spec, value, candidate);
            Some(publish_header(&ctx, &tenant, spec, publication).await)
        }
        _ => None,
    };
    if let Some(Ok(_)) = &published {
        ctx.pacer
            .published(&ObjectRef::from_obj(tenant.as_ref()), now.instant);
    }
    let withdrawing = edge::withdraw(&ctx, &tenant).await;

    let next = plan::status(
        &tenant,
        connection.as_ref().map(|c| c.tenant_id.as_str()),
        published.as_ref().map(Result::as_ref),
        withdrawing,
        now.wall,
    );
    let published_ok = published.as_ref().and_then(|p| p.as_ref().ok());
    record::record(&ctx, &tenant, &next, published_ok).await?;
    let target_failure = published_ok.and_then(|p| p.targets.iter().find(|t| !t.published));
    let target_failure = target_failure.map(|t| Error::Target {
        kind: t.kind,
        name: t.name.clone(),
        reason: status::target_reason(&t.reason),
        message: t.message.clone(),
        transient: status::target_failure_is_transient(&t.reason),
    });

    let paused = connection.as_ref().ok().and_then(|c| c.paused);
    let failure = connection
        .err()
        .or(published.and_then(Result::err))
        .or(target_failure);
    match failure {
        None => {
            ctx.backoff.succeeded(&tenant);
            // A connection check the tenant's pause refused is tried again after it.
            Ok(Action::requeue(
                paused.map_or(drift, |pause| pause.max(drift)),
            ))
        }
        Some(e) => {
            if e.credential_suspect() {
                ctx.shared.tenants.forget(&key_of(&tenant));
                ctx.pacer.forget(&ObjectRef::from_obj(tenant.as_ref()));
            }
            Err(e)
        }
    }
}

/// How soon a target that waits for a person is looked at again.
const TARGET_RECHECK: std::time::Duration = std::time::Duration::from_secs(60);

/// The requeue after a failed reconcile (whose condition is already recorded).
pub fn error_policy(tenant: Arc<QlikTenant>, error: &Error, ctx: Arc<Context>) -> Action {
    let drift = ctx.drift_interval(&tenant);
    tracing::warn!(
        tenant = %ObjectRef::from_obj(tenant.as_ref()),
        reason = error.reason(),
        error = %error.describe(),
        "reconcile failed"
    );
    let pause = error.tenant_pause();
    // A target that is missing, not opted in or refused the header waits for a person,
    // whose fix (an annotation, a route) is not watched: look again within a minute.
    if let Error::Target {
        transient: false, ..
    } = error
    {
        return Action::requeue(drift.min(TARGET_RECHECK));
    }
    if !error.is_transient() && pause.is_none() {
        return Action::requeue(drift);
    }
    let wait = ctx.backoff.failed(&tenant, pause);
    // The drift interval caps the backoff, never the tenant's pause.
    Action::requeue(if pause.is_some() {
        wait
    } else {
        wait.min(drift)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_controller_name_is_under_the_operator_name() {
        assert!(CONTROLLER_NAME.starts_with(crate::controller::OPERATOR_NAME));
    }
}
