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
use crate::api::{CspEntry, QlikTenant};
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
    let entries = match &tenant.spec.header {
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

/// A client for the tenant, and its id: proven by `tenants/me` when `check` (the plan
/// asks once per generation and drift interval), else the id remembered.
pub async fn connect(
    ctx: &Context,
    tenant: &QlikTenant,
    remembered: Option<&pacing::Checked>,
    check: bool,
    now: Now,
) -> Result<(TenantClient, String), Error> {
    let client = ctx
        .shared
        .tenants
        .for_tenant(&ctx.shared.kube, tenant)
        .await
        .map_err(Error::Access)?;
    if let (false, Some(checked)) = (check, remembered) {
        return Ok((client, checked.tenant_id.clone()));
    }
    let tenant_id = client.tenant_id().await.map_err(Error::Connect)?;
    let checked = pacing::Checked {
        at: now.instant,
        generation: tenant.metadata.generation,
        tenant_id: tenant_id.clone(),
    };
    ctx.pacer.checked(&ObjectRef::from_obj(tenant), checked);
    Ok((client, tenant_id))
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
