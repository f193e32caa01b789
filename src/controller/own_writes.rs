//! The two writes every controller makes to the objects it reconciles, written once: the
//! status and the controller's finalizer.
//!
//! The status is the controller's alone and is written whole, under the controller's own
//! field manager (so `managedFields` name which controller wrote it): a field the
//! controller leaves out must be gone afterwards, whoever set it. A merge patch cannot say
//! "absent" (a cleared `status.id` stayed), and server-side apply removes only the fields no
//! other manager also owns, so a status field a person or tool once patched (a
//! `previous.id` edited by hand) would outlive the controller's decision to drop it.
//!
//! With `precondition`, the write is an update (`PUT`) carrying the resourceVersion the
//! status was computed from, and the apiserver refuses it (409) when the object moved on,
//! so a stale decision never overwrites a newer one (the secret-rotation controller
//! persists its intent this way before each side effect). Without it, the write is a JSON
//! patch that sets `/status` whole: unconditional (a custom resource's `PUT` always needs a
//! resourceVersion), for a controller whose object may lag its own metadata writes (a
//! finalizer added in the same reconcile).

use std::fmt::Debug;

use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::object::HasStatus;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

/// Replaces `object`'s status with `status` under `manager`; returns the object as
/// written. With `precondition`, only on top of `object`'s resourceVersion.
pub async fn write_status<K>(
    api: &Api<K>,
    object: &K,
    manager: &str,
    status: K::Status,
    precondition: bool,
) -> Result<K, kube::Error>
where
    K: Resource<DynamicType = ()> + HasStatus + Clone + Serialize + DeserializeOwned + Debug,
    K::Status: Serialize,
{
    let params = PostParams {
        field_manager: Some(manager.to_owned()),
        ..PostParams::default()
    };
    if precondition {
        let mut next = object.clone();
        *next.status_mut() = Some(status);
        return api.replace_status(&object.name_any(), &params, &next).await;
    }
    // `add` on an existing member replaces it: the whole status, whatever was there.
    let operations = json!([{ "op": "add", "path": "/status", "value": status }]);
    let patch: Patch<()> =
        Patch::Json(serde_json::from_value(operations).map_err(kube::Error::SerdeError)?);
    let params = PatchParams {
        field_manager: params.field_manager,
        ..PatchParams::default()
    };
    api.patch_status(&object.name_any(), &params, &patch).await
}

/// Adds (`present`) or removes `finalizer`, guarded by `object`'s resourceVersion so that a
/// concurrent change to the list is not overwritten (a 409 is retried by the next
/// reconcile). Removing it from an object that is already gone is done.
pub async fn set_finalizer<K>(
    api: &Api<K>,
    object: &K,
    finalizer: &str,
    present: bool,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let already = object.finalizers().iter().any(|f| f == finalizer);
    if already == present {
        return Ok(());
    }
    let mut finalizers: Vec<String> = object
        .finalizers()
        .iter()
        .filter(|f| *f != finalizer)
        .cloned()
        .collect();
    if present {
        finalizers.push(finalizer.to_owned());
    }
    let patch = json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": object.resource_version(),
        }
    });
    match api
        .patch(
            &object.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        // Removing the last finalizer of a deleted object can race its disappearance.
        Err(kube::Error::Api(status)) if status.code == 404 && !present => Ok(()),
        Err(source) => Err(source),
    }
}
