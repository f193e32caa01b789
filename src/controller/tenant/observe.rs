//! The observe step of the `tenant` controller: what a reconcile reads before it decides.
//! First what costs nothing (the tenant's CspEntries from the store shared with the
//! csp-entry controller, and what this controller remembers of the tenant); then, only
//! when [`plan::pace`](super::plan::pace) lets the reconcile go on, the tenant itself: a
//! client, the connection check and `generate-header`. Reads only, apart from remembering
//! what the tenant said.

use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

use super::context::{Context, Now};
use super::error::Error;
use super::pacing::{self, Memory};
use super::status::Identity;
use crate::api::{CspEntry, QlikTenant};
pub use crate::controller::site_clients::Remote;
use crate::tenant::TenantClient;

/// How long a reconcile waits for the shared CspEntry store's first list before it fails
/// (and is retried with backoff): a header compiled before the list would leave entries out.
const ENTRIES_SYNC_WAIT: Duration = Duration::from_secs(10);

/// What a reconcile knows before it talks to the tenant.
pub struct Seen {
    /// The tenant's CspEntries, when it has a header to publish.
    pub entries: Option<Vec<Arc<CspEntry>>>,
    /// What this controller remembers of the tenant.
    pub memory: Memory,
}

/// The tenant's entries (from the shared store, once it holds its first list) and what is
/// remembered of the tenant. No I/O.
pub async fn seen(ctx: &Context, tenant: &QlikTenant) -> Result<Seen, Error> {
    let me = ObjectRef::from_obj(tenant);
    let entries = match tenant.spec.effective_header() {
        Some(_) => Some(entries_of(ctx, tenant).await?),
        None => None,
    };
    Ok(Seen {
        entries,
        memory: ctx.pacer.recall(&me),
    })
}

async fn entries_of(ctx: &Context, tenant: &QlikTenant) -> Result<Vec<Arc<CspEntry>>, Error> {
    let listed = tokio::time::timeout(ENTRIES_SYNC_WAIT, ctx.entries.wait_until_ready()).await;
    if !matches!(listed, Ok(Ok(()))) {
        return Err(Error::EntriesUnavailable);
    }
    let namespace = tenant.namespace();
    let name = tenant.name_any();
    Ok(ctx
        .entries
        .state()
        .into_iter()
        .filter(|e| e.namespace() == namespace && e.spec.tenant_ref.name == name)
        .collect())
}

/// A connected tenant: what [`connect`] returns.
pub struct Connected {
    pub remote: Remote,
    /// Proven by `tenants/me` or `/qrs/about`, or remembered from the last check.
    pub identity: Identity,
    /// The tenant's pause, when the check was refused only by it (see
    /// [`proven_before_pause`]): the next check waits for its end.
    pub paused: Option<Duration>,
}

/// A client for the tenant, and who it is: proven by `tenants/me` (a cloud tenant) or
/// `/qrs/about` (a client-managed site) when `check` (the plan asks once per generation
/// and drift interval), else what was proven last.
pub async fn connect(
    ctx: &Context,
    tenant: &QlikTenant,
    remembered: Option<&pacing::Checked>,
    check: bool,
    now: Now,
) -> Result<Connected, Error> {
    let remote = ctx
        .shared
        .tenants
        .for_remote(&ctx.shared.kube, tenant)
        .await
        .map_err(Error::Access)?;
    if let (false, Some(checked)) = (check, remembered) {
        let identity = checked.identity.clone();
        return Ok(Connected {
            remote,
            identity,
            paused: None,
        });
    }
    let proven = match &remote {
        Remote::Cloud(client) => client.tenant_id().await.map(Identity::Tenant),
        Remote::Site(site) => site.about().await.map(|about| Identity::Site {
            build_version: about.build_version,
        }),
    };
    let (identity, paused) = match proven {
        Ok(identity) => {
            let checked = pacing::Checked {
                at: now.instant,
                generation: tenant.metadata.generation,
                identity: identity.clone(),
            };
            ctx.pacer.checked(&ObjectRef::from_obj(tenant), checked);
            (identity, None)
        }
        Err(e) => match proven_before_pause(&e, remembered, tenant.metadata.generation) {
            Some(identity) => (identity, e.retry_after()),
            None => return Err(Error::Connect(e)),
        },
    };
    Ok(Connected {
        remote,
        identity,
        paused,
    })
}

/// The id proven before, when the check was refused only because the tenant asked for
/// silence (`429 Retry-After`, or the client holding to it): a pause says nothing about the
/// credential, so `Ready` stays as it was instead of flipping every CspEntry of the tenant
/// to `TenantNotReady` (one status write each) and back when it ends. Not remembered as a
/// check: the next reconcile after the pause proves the connection again.
fn proven_before_pause(
    error: &crate::tenant::Error,
    remembered: Option<&pacing::Checked>,
    generation: Option<i64>,
) -> Option<Identity> {
    let paused = matches!(error, crate::tenant::Error::RateLimited { .. });
    remembered
        .filter(|checked| paused && checked.generation == generation)
        .map(|checked| checked.identity.clone())
}

/// The tenant's `generate-header`, remembered with the entries `digest` it was fetched for.
pub async fn fetch_header(
    ctx: &Context,
    tenant: &QlikTenant,
    client: &TenantClient,
    digest: u64,
    now: Now,
) -> Result<String, Error> {
    let value = client
        .generate_csp_header()
        .await
        .map_err(Error::GenerateHeader)?;
    let fetched = pacing::Fetched {
        at: now.instant,
        generation: tenant.metadata.generation,
        entries: digest,
        value: value.clone(),
    };
    ctx.pacer.fetched(&ObjectRef::from_obj(tenant), fetched);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::tenant::Error as TenantError;

    fn checked(generation: i64) -> pacing::Checked {
        pacing::Checked {
            at: Instant::now(),
            generation: Some(generation),
            identity: Identity::Tenant("t-1".to_owned()),
        }
    }

    fn paused() -> TenantError {
        TenantError::RateLimited {
            operation: "tenants/me",
            retry_after: Some(Duration::from_secs(600)),
        }
    }

    #[test]
    fn a_pause_keeps_the_id_proven_for_this_generation() {
        let proven = proven_before_pause(&paused(), Some(&checked(3)), Some(3));
        assert_eq!(proven, Some(Identity::Tenant("t-1".to_owned())));
    }

    #[test]
    fn a_pause_proves_nothing_for_a_new_generation_or_a_tenant_never_checked() {
        assert_eq!(
            proven_before_pause(&paused(), Some(&checked(3)), Some(4)),
            None
        );
        assert_eq!(proven_before_pause(&paused(), None, Some(3)), None);
    }

    #[test]
    fn any_other_refusal_is_a_failed_check() {
        let unavailable = TenantError::TenantUnavailable {
            operation: "tenants/me",
            status: 503,
            detail: Default::default(),
        };
        assert_eq!(
            proven_before_pause(&unavailable, Some(&checked(3)), Some(3)),
            None
        );
    }
}
