//! Cleanup when a SecretRotation is deleted: its finalizer holds the deletion until the
//! credentials it created and nobody can use any more are revoked (an OAuth client secret
//! never expires and a client holds only 5). The current credential is revoked only when
//! its Secret goes too (owned by the SecretRotation) or is gone already: a Secret of the
//! user's (the QlikTenant's own, for a self-rotation) keeps a working credential. A tenant
//! that is gone or refuses the operator does not hold the deletion forever.

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::Recorder;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::failure::{self, Error};
use super::observed::{FailureKind, Note};
use super::record;
use super::step::handle;
use crate::api::secret_rotation::SecretRotationStatus;
use crate::api::{QlikTenant, SecretRotation};
use crate::controller::Shared;
use k8s_openapi::api::core::v1::Secret;

/// Holds a SecretRotation until its credentials are revoked.
pub const FINALIZER: &str = "qlikops.io/secret-rotation";

pub fn has_finalizer(object: &SecretRotation) -> bool {
    object.finalizers().iter().any(|f| f == FINALIZER)
}

/// What to revoke when the SecretRotation goes (pure): always the previous credential;
/// the current one only when no Secret that stays holds it.
pub fn to_revoke(status: &SecretRotationStatus, secret_stays: bool) -> Vec<String> {
    let mut ids: Vec<String> = status
        .previous
        .as_ref()
        .and_then(handle)
        .map(str::to_owned)
        .into_iter()
        .collect();
    if !secret_stays && let Some(id) = status.current.as_ref().and_then(handle) {
        ids.push(id.to_owned());
    }
    ids
}

pub async fn add(shared: &Shared, object: &SecretRotation) -> Result<(), Error> {
    let mut finalizers = object.finalizers().to_vec();
    finalizers.push(FINALIZER.to_owned());
    set(shared, object, finalizers).await
}

/// Revokes what must go, then lets the deletion proceed.
pub async fn finalize(
    shared: &Shared,
    recorder: &Recorder,
    object: &SecretRotation,
) -> Result<(), Error> {
    if !has_finalizer(object) {
        return Ok(());
    }
    let namespace = object.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(shared.kube.clone(), &namespace);
    let secret = secrets
        .get_opt(&object.spec.secret.name)
        .await
        .map_err(|source| Error::ReadSecret {
            name: object.spec.secret.name.clone(),
            source,
        })?;
    let secret_stays = secret.as_ref().is_some_and(|s| !super::owned_by(s, object));
    let ids = to_revoke(&object.status.clone().unwrap_or_default(), secret_stays);
    if !ids.is_empty() {
        let note = match revoke_all(shared, object, &ids).await {
            Ok(()) => Note {
                warning: false,
                reason: "Revoked",
                message: format!("revoked {} on deletion", ids.join(", ")),
            },
            Err(f) if f.kind == FailureKind::Transient => return Err(Error::Cleanup(f.message)),
            Err(f) => Note {
                warning: true,
                reason: f.reason,
                message: format!("left {} on the tenant: {}", ids.join(", "), f.message),
            },
        };
        record::publish_notes(recorder, object, &[note]).await;
    }
    let finalizers = object
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    set(shared, object, finalizers).await
}

async fn revoke_all(
    shared: &Shared,
    object: &SecretRotation,
    ids: &[String],
) -> Result<(), super::observed::Failure> {
    let namespace = object.namespace().unwrap_or_default();
    let api_key = object.spec.credential.api_key.is_some();
    let tenants: Api<QlikTenant> = Api::namespaced(shared.kube.clone(), &namespace);
    let tenant = tenants
        .get_opt(&object.spec.tenant_ref.name)
        .await
        .map_err(|e| failure::from_kube("read the QlikTenant", &e, true))?
        .ok_or_else(|| failure::tenant_not_found(&object.spec.tenant_ref.name))?;
    let client = shared
        .tenants
        .for_tenant(&shared.kube, &tenant)
        .await
        .map_err(|e| failure::from_access(&e))?;
    for id in ids {
        let result = match &object.spec.credential.oauth_client_secret {
            Some(oauth) => {
                client
                    .delete_oauth_client_secret(&oauth.client_id, id)
                    .await
            }
            None => client.delete_api_key(id).await,
        };
        result.map_err(|e| failure::from_tenant(&e, api_key))?;
    }
    Ok(())
}

/// Replaces the finalizer list, guarded by `resourceVersion`.
async fn set(
    shared: &Shared,
    object: &SecretRotation,
    finalizers: Vec<String>,
) -> Result<(), Error> {
    let patch = json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": object.meta().resource_version,
        }
    });
    let api: Api<SecretRotation> =
        Api::namespaced(shared.kube.clone(), &object.namespace().unwrap_or_default());
    match api
        .patch(
            &object.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(Error::Finalizer(source)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::secret_rotation::CredentialRef;

    fn reference(id: &str) -> CredentialRef {
        CredentialRef {
            id: Some(id.into()),
            hint: None,
            created_at: None,
            expires_at: None,
            revoke_after: None,
        }
    }

    #[test]
    fn a_secret_that_stays_keeps_its_credential_and_the_previous_one_always_goes() {
        let status = SecretRotationStatus {
            current: Some(reference("k2")),
            previous: Some(reference("k1")),
            ..SecretRotationStatus::default()
        };
        assert_eq!(to_revoke(&status, true), vec!["k1".to_owned()]);
        assert_eq!(
            to_revoke(&status, false),
            vec!["k1".to_owned(), "k2".to_owned()]
        );
        let bootstrap = SecretRotationStatus {
            current: Some(reference("k1")),
            previous: Some(CredentialRef {
                id: None,
                ..reference("unused")
            }),
            ..SecretRotationStatus::default()
        };
        assert_eq!(to_revoke(&bootstrap, false), vec!["k1".to_owned()]);
        assert!(to_revoke(&SecretRotationStatus::default(), false).is_empty());
    }
}
