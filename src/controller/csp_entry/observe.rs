//! Observe: reads the entry's tenant (the controller's QlikTenant store), the tenant's
//! entries (through the shared [`RemoteCache`](super::remote_cache::RemoteCache)) and rival
//! entries (the CspEntry store). Reads only.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};

use super::Error;
use super::plan::{Claimant, EntryState, Observed, TENANT_ENTRY_LIMIT, TenantState};
use crate::api::{CspEntry, QlikTenant, TenantKey};
use crate::controller::Shared;
use crate::controller::conditions::READY;
use crate::controller::tenant_clients::key_of;
use crate::tenant::TenantClient;

/// How long a reconcile waits for the QlikTenant store's first list before it fails (and is
/// retried with backoff).
const TENANTS_LIST_WAIT: Duration = Duration::from_secs(10);

/// The observation, plus what apply needs to act on it.
pub struct Observation {
    pub observed: Observed,
    /// Present when the tenant is usable.
    pub client: Option<TenantClient>,
    pub tenant_key: TenantKey,
    /// The tenant's drift interval.
    pub drift: Duration,
}

pub async fn observe(
    shared: &Shared,
    store: &Store<CspEntry>,
    tenants: &Store<QlikTenant>,
    entry: &CspEntry,
) -> Result<Observation, Error> {
    let namespace = entry.namespace().unwrap_or_default();
    let tenant_name = entry.spec.tenant_ref.name.clone();
    let tenant_key = entry.tenant_key();
    let listed = tokio::time::timeout(TENANTS_LIST_WAIT, tenants.wait_until_ready()).await;
    if !matches!(listed, Ok(Ok(()))) {
        return Err(Error::TenantsNotListed);
    }
    let tenant = tenants.get(&ObjectRef::new(&tenant_name).within(&namespace));

    let configured = tenant.as_ref().map(|t| t.spec.sync_interval.into());
    let drift = shared
        .settings
        .drift_interval(configured.unwrap_or(Duration::from_secs(600)));
    let state = tenant_state(tenant.as_deref());
    let tracked = entry.status.as_ref().and_then(|s| s.id.as_deref());
    let (client, remote_count, remote) = match (&state, &tenant) {
        (TenantState::Ready, Some(tenant)) => {
            let client = shared.tenants.for_tenant(&shared.kube, tenant).await?;
            let listing = client.clone();
            let fetch = || async move { listing.list_csp_origins().await };
            // The count and the entries the plan can match, not a copy of the whole list:
            // the tenant's entries stay in the cache, once (see `remote_cache`).
            let (count, matching) = shared
                .remote
                .get_or_fetch(&key_of(tenant), drift, fetch, |entries| {
                    (entries.len(), entries.matching(tracked, &entry.spec.origin))
                })
                .await
                .map_err(Error::List)?;
            (Some(client), count, Arc::from(matching))
        }
        _ => (None, 0, Arc::from(Vec::new())),
    };

    let observed = Observed {
        entry: entry_state(entry),
        tenant: state,
        remote_count,
        remote,
        remote_limit: TENANT_ENTRY_LIMIT,
        rivals: rivals(store, entry),
    };
    Ok(Observation {
        observed,
        client,
        tenant_key,
        drift,
    })
}

fn entry_state(entry: &CspEntry) -> EntryState {
    EntryState {
        name: entry.name_any(),
        namespace: entry.namespace().unwrap_or_default(),
        generation: entry.meta().generation,
        created: entry.meta().creation_timestamp.as_ref().map(|t| t.0),
        spec: entry.spec.clone(),
        status: entry.status.clone(),
        deleting: entry.meta().deletion_timestamp.is_some(),
        has_finalizer: entry.finalizers().iter().any(|f| f == super::FINALIZER),
    }
}

/// A cloud tenant is usable once its own controller has said `Ready=True`; a
/// client-managed site always is (nothing is synced to it).
fn tenant_state(tenant: Option<&QlikTenant>) -> TenantState {
    let Some(tenant) = tenant else {
        return TenantState::Missing;
    };
    // A client-managed site has no CSP entries of its own: its header is compiled from
    // the CspEntries, whether or not the site answers right now.
    if tenant.spec.is_client_managed() {
        return TenantState::Local;
    }
    let ready = tenant
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == READY));
    match ready {
        Some(c) if c.status == "True" => TenantState::Ready,
        Some(c) => TenantState::NotReady {
            reason: c.reason.clone(),
            message: c.message.clone(),
        },
        None => TenantState::NotReady {
            reason: "Pending".into(),
            message: "the tenant's connection has not been checked yet".into(),
        },
    }
}

/// Other entries of the same tenant claiming the same origin, from the controller's store.
fn rivals(store: &Store<CspEntry>, entry: &CspEntry) -> Vec<Claimant> {
    let namespace = entry.namespace();
    let name = entry.name_any();
    store
        .state()
        .iter()
        .filter(|other| other.namespace() == namespace && other.name_any() != name)
        .filter(|other| other.meta().deletion_timestamp.is_none())
        .filter(|other| other.spec.tenant_ref == entry.spec.tenant_ref)
        .filter(|other| other.spec.origin.eq_ignore_ascii_case(&entry.spec.origin))
        .map(|other| Claimant {
            name: other.name_any(),
            created: other.meta().creation_timestamp.as_ref().map(|t| t.0),
        })
        .collect()
}
