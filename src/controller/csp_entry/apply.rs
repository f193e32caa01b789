//! Apply: makes the plan's one side effect (a tenant write or a finalizer change) and keeps
//! the shared snapshot of the tenant's entries current. Idempotent: a repeated create is
//! prevented by adopting by origin on the next reconcile.

use kube::ResourceExt;
use kube::api::Api;

use super::Error;
use super::observe::Observation;
use super::plan::Action;
use crate::api::CspEntry;
use crate::controller::Shared;
use crate::controller::own_writes;
use crate::tenant;

/// What apply did; only apply builds one, so record cannot run before it.
pub struct Outcome {
    /// The id of an entry created now.
    pub created_id: Option<String>,
}

pub async fn apply(
    shared: &Shared,
    entry: &CspEntry,
    observation: &Observation,
    action: &Action,
) -> Result<Outcome, Error> {
    let mut outcome = Outcome { created_id: None };
    let key = &observation.tenant_key;
    let client = || observation.client.as_ref().ok_or(Error::TenantGone);
    match action {
        Action::AddFinalizer => set_finalizers(shared, entry, true).await?,
        Action::RemoveFinalizer => set_finalizers(shared, entry, false).await?,
        Action::Create(content) => match client()?.create_csp_origin(content).await {
            Ok(created) => {
                outcome.created_id = Some(created.id.clone());
                shared.remote.record_written(key, created);
            }
            Err(e @ tenant::Error::BadRequest { .. }) => {
                let error = write_failed(shared, key, e);
                return Err(stale_or(client()?, &content.origin, error).await);
            }
            Err(e) => return Err(write_failed(shared, key, e)),
        },
        Action::Update { id, content, .. } => {
            match client()?.update_csp_origin(id, content).await {
                Ok(updated) => shared.remote.record_written(key, updated),
                Err(e) => return Err(write_failed(shared, key, e)),
            }
        }
        Action::Delete { id } => match client()?.delete_csp_origin(id).await {
            Ok(_) => shared.remote.record_deleted(key, id),
            Err(e) => return Err(write_failed(shared, key, e)),
        },
        Action::Adopt { .. } | Action::Nothing => {}
    }
    Ok(outcome)
}

/// After a failed write the snapshot may be wrong (an unknown outcome, an entry deleted in
/// the console): list again next time.
fn write_failed(shared: &Shared, key: &(String, String), error: tenant::Error) -> Error {
    shared.remote.invalidate(key);
    Error::Write(error)
}

/// A create the tenant refused as invalid: when an entry for the origin exists after all
/// (made since the shared list was taken; Qlik refuses a second one), the list was stale,
/// not the spec. One lookup, only on this failure path, tells them apart; when it fails
/// too, the refusal stands.
async fn stale_or(client: &tenant::TenantClient, origin: &str, refusal: Error) -> Error {
    match client.find_csp_origins_by_origin(origin).await {
        Ok(found) if !found.is_empty() => Error::StaleList,
        _ => refusal,
    }
}

/// Adds or removes the finalizer (see [`own_writes::set_finalizer`]).
async fn set_finalizers(shared: &Shared, entry: &CspEntry, present: bool) -> Result<(), Error> {
    let api: Api<CspEntry> =
        Api::namespaced(shared.kube.clone(), &entry.namespace().unwrap_or_default());
    own_writes::set_finalizer(&api, entry, super::FINALIZER, present)
        .await
        .map_err(Error::Finalizer)
}
