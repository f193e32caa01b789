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

use super::apply::{Published, publish_header};
use super::context::{Context, Now};
use super::observe::{Connected, Remote};
use super::plan::{self, HeaderPlan, Pace};
use super::publication::Publication;
use super::{departures, edge, observe, record, status, virtual_proxies};
use crate::api::QlikTenant;
use crate::api::header::HeaderSpec;
use crate::controller::tenant_clients::key_of;
use crate::csp::header;
use crate::tenant::qrs::QrsClient;

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
    // A tenant whose check or header fetch failed waits for its retry: the watch event of
    // the status recording the failure must not call the tenant again sooner.
    if let Some(wait) = ctx.backoff.holding(&tenant) {
        return Ok(Action::requeue(wait));
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
        (
            HeaderPlan::Fetch { digest },
            Ok(Connected {
                remote: Remote::Cloud(client),
                ..
            }),
        ) => Some(
            observe::fetch_header(&ctx, &tenant, client, digest, now)
                .await
                .and_then(|value| header::validate(&value).map_err(Error::InvalidHeader)),
        ),
        // The plan asks the tenant only once connected (and a site is always `Local`).
        (HeaderPlan::Fetch { .. }, _) => None,
    };
    let published = match (value, tenant.spec.effective_header()) {
        (Some(value), Some(spec)) => {
            let candidate = plan::candidate(&tenant, &seen);
            let publication = plan::publication(&spec, value, candidate);
            let site = match &connection {
                Ok(Connected {
                    remote: Remote::Site(site),
                    ..
                }) => Some(site),
                _ => None,
            };
            Some(publish(&ctx, &tenant, &spec, publication, site).await)
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
        connection.as_ref().map(|c| &c.identity),
        published.as_ref().map(Result::as_ref),
        withdrawing,
        now.wall,
    );
    let published_ok = published.as_ref().and_then(|p| p.as_ref().ok());
    record::record(&ctx, &tenant, &next, published_ok).await?;
    let target_failure = published_ok
        .and_then(|p| status::first_failure(&p.targets, &p.virtual_proxies))
        .map(Error::Destination);

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

/// Publishes into the ConfigMap and header targets, then (a connected client-managed
/// site) into its virtual proxies; a site not connected keeps what its status said of them.
async fn publish(
    ctx: &Context,
    tenant: &QlikTenant,
    spec: &HeaderSpec,
    publication: Result<Publication, Error>,
    site: Option<&QrsClient>,
) -> Result<Published, Error> {
    let publication = publication?;
    let mut published = publish_header(ctx, tenant, spec, Ok(publication.clone())).await?;
    let previous = tenant.status.as_ref().map(|s| s.virtual_proxies.as_slice());
    let previous = previous.unwrap_or_default();
    let prefixes = tenant
        .spec
        .client_managed
        .as_ref()
        .map(|c| c.virtual_proxy_prefixes.as_slice());
    published.virtual_proxies = match (site, prefixes) {
        (Some(site), Some(prefixes)) => {
            virtual_proxies::publish(site, prefixes, spec, &publication, previous).await
        }
        _ => previous.to_vec(),
    };
    Ok(published)
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
    if let Error::Destination(failure) = error
        && !failure.transient
    {
        return Action::requeue(drift.min(TARGET_RECHECK));
    }
    if !error.is_transient() && pause.is_none() {
        return Action::requeue(drift);
    }
    let wait = ctx.backoff.failed(&tenant, pause);
    // The drift interval caps the backoff, never the tenant's pause.
    let wait = if pause.is_some() {
        wait
    } else {
        wait.min(drift)
    };
    // The tenant's own failure: only the retry (or an edit) calls it again. A ConfigMap or
    // target failure keeps reacting to the events that can end it.
    if matches!(error, Error::Connect(_) | Error::GenerateHeader(_)) {
        ctx.backoff.hold(&tenant, wait);
    }
    Action::requeue(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_controller_name_is_under_the_operator_name() {
        assert!(CONTROLLER_NAME.starts_with(crate::controller::OPERATOR_NAME));
    }
}
