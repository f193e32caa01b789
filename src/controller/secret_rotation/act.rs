//! Act: the decision's one side effect on the tenant, the Secret or the rollout targets.
//! Every step is idempotent or recovered by the next observation (see [`super::step`]).
//! A new credential's value exists only in memory between its creation and the Secret
//! write right after it; it is never logged.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::CONTROLLER_NAME;
use super::failure;
use super::marker;
use super::observe::Observation;
use super::observed::{Action, Failure, Outcome, RemoteCredential};
use crate::api::SecretRotation;
use crate::api::secret_rotation::{
    CREDENTIAL_ID, CREDENTIAL_REVISION, SECRET_ROTATION_LABEL, WorkloadKind,
};
use crate::controller::Shared;
use crate::failpoint::{self, rotation as point};
use crate::tenant::{NewApiKey, TenantClient, wire};

pub async fn act(
    shared: &Shared,
    observation: &Observation,
    action: &Action,
) -> Result<Outcome, Failure> {
    let object = &observation.object;
    let api_key = object.spec.credential.api_key.is_some();
    let client = || {
        observation.client.as_ref().ok_or_else(|| Failure {
            reason: "TenantNotReady",
            message: "no client for the tenant".to_owned(),
            kind: super::observed::FailureKind::Transient,
            retry_after: None,
        })
    };
    let tenant_failed = |e: crate::tenant::Error| failure::from_tenant(&e, api_key);
    match action {
        Action::Nothing => Ok(Outcome::default()),
        Action::DeleteStrays(ids) => {
            for id in ids {
                revoke(client()?, object, id).await.map_err(tenant_failed)?;
            }
            Ok(Outcome::default())
        }
        Action::Create { revision, expiry } => {
            let (created, value) = create(client()?, object, *revision, *expiry)
                .await
                .map_err(tenant_failed)?;
            failpoint::hit(point::AFTER_CREATE);
            write_secret(shared, observation, &value, *revision, &created.id)
                .await
                .map_err(|e| failure::from_kube("write the Secret", &e, false))?;
            failpoint::hit(point::AFTER_SECRET_WRITE);
            Ok(Outcome {
                created: Some(created),
                warnings: Vec::new(),
            })
        }
        Action::Rollout { revision } => {
            let warnings = rollout(shared, object, *revision).await?;
            failpoint::hit(point::AFTER_ROLLOUT);
            Ok(Outcome {
                created: None,
                warnings,
            })
        }
        Action::Revoke { credential } => {
            failpoint::hit(point::BEFORE_REVOKE);
            remove_previous(shared, object).await.map_err(|e| {
                failure::from_kube("remove the previous value from the Secret", &e, true)
            })?;
            if let Some(id) = credential {
                revoke(client()?, object, id).await.map_err(tenant_failed)?;
            }
            failpoint::hit(point::AFTER_REVOKE);
            Ok(Outcome::default())
        }
    }
}

async fn create(
    client: &TenantClient,
    object: &SecretRotation,
    revision: i64,
    expiry: Option<std::time::Duration>,
) -> Result<(RemoteCredential, SecretString), crate::tenant::Error> {
    if let Some(oauth) = &object.spec.credential.oauth_client_secret {
        let created = client.create_oauth_client_secret(&oauth.client_id).await?;
        let credential = RemoteCredential {
            id: created.hint,
            revision: None,
            active: true,
            created_at: created.created_at,
            expires_at: None,
        };
        return Ok((credential, created.client_secret));
    }
    let uid = object.meta().uid.as_deref().unwrap_or_default();
    let description = marker::description(
        object
            .spec
            .credential
            .api_key
            .as_ref()
            .and_then(|k| k.description.as_deref()),
        &object.namespace().unwrap_or_default(),
        &object.name_any(),
        uid,
        revision,
    );
    let request = NewApiKey {
        description,
        expiry: expiry.map(wire::iso8601_duration),
    };
    let created = client.create_api_key(&request).await?;
    let credential = RemoteCredential {
        id: created.key.id,
        revision: Some(revision),
        active: true,
        created_at: created.key.created,
        expires_at: Some(created.key.expiry),
    };
    Ok((credential, created.token))
}

async fn revoke(
    client: &TenantClient,
    object: &SecretRotation,
    id: &str,
) -> Result<(), crate::tenant::Error> {
    match &object.spec.credential.oauth_client_secret {
        Some(oauth) => {
            client
                .delete_oauth_client_secret(&oauth.client_id, id)
                .await?
        }
        None => client.delete_api_key(id).await?,
    };
    Ok(())
}

/// Server-side applies the new value under `key`, the old one under `<key>.previous`, and
/// the labels and annotations naming the SecretRotation and revision. Creates the Secret,
/// owned by the SecretRotation, when it is missing; of an existing Secret only these
/// fields are touched. Then has the tenant clients re-read the Secret (self-rotation).
async fn write_secret(
    shared: &Shared,
    observation: &Observation,
    value: &SecretString,
    revision: i64,
    id: &str,
) -> Result<(), kube::Error> {
    let object = &observation.object;
    let namespace = object.namespace().unwrap_or_default();
    let target = &object.spec.secret;
    let mut data = BTreeMap::from([(
        target.key.clone(),
        ByteString(value.expose_secret().as_bytes().to_vec()),
    )]);
    let old = observation
        .secret
        .as_ref()
        .and_then(|s| s.data.as_ref())
        .and_then(|d| d.get(&target.key))
        .filter(|v| !v.0.iter().all(u8::is_ascii_whitespace));
    if let Some(old) = old {
        data.insert(previous_key(&target.key), old.clone());
    }
    // Ownership is claimed only on a Secret the operator creates, and kept in every later
    // apply (a field left out of an apply is removed).
    let owned = match &observation.secret {
        None => true,
        Some(secret) => super::owned_by(secret, object),
    };
    let owner_references = if owned {
        owner_reference(object).map(|r| vec![r])
    } else {
        None
    };
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(target.name.clone()),
            namespace: Some(namespace.clone()),
            labels: Some(BTreeMap::from([(
                SECRET_ROTATION_LABEL.to_owned(),
                object.name_any(),
            )])),
            annotations: Some(BTreeMap::from([
                (CREDENTIAL_REVISION.to_owned(), revision.to_string()),
                (CREDENTIAL_ID.to_owned(), id.to_owned()),
            ])),
            owner_references,
            ..ObjectMeta::default()
        },
        data: Some(data),
        ..Secret::default()
    };
    let api: Api<Secret> = Api::namespaced(shared.kube.clone(), &namespace);
    let params = PatchParams::apply(CONTROLLER_NAME).force();
    api.patch(&target.name, &params, &Patch::Apply(&secret))
        .await?;
    shared.tenants.secret_written(&namespace, &target.name);
    Ok(())
}

fn owner_reference(object: &SecretRotation) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: SecretRotation::api_version(&()).into_owned(),
        kind: SecretRotation::kind(&()).into_owned(),
        name: object.name_any(),
        uid: object.meta().uid.clone()?,
        controller: Some(true),
        block_owner_deletion: None,
    })
}

/// `<key>.previous`.
pub fn previous_key(key: &str) -> String {
    format!("{key}.previous")
}

/// Drops `<key>.previous` (a missing Secret is left missing).
async fn remove_previous(shared: &Shared, object: &SecretRotation) -> Result<(), kube::Error> {
    let namespace = object.namespace().unwrap_or_default();
    let target = &object.spec.secret;
    let api: Api<Secret> = Api::namespaced(shared.kube.clone(), &namespace);
    let patch = json!({ "data": { previous_key(&target.key): null } });
    let params = PatchParams {
        field_manager: Some(CONTROLLER_NAME.to_owned()),
        ..PatchParams::default()
    };
    match api
        .patch(&target.name, &params, &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Annotates each rollout target's pod template with the revision, so workloads that read
/// the credential from env vars restart. A missing target is a warning, not a failure: it
/// must not hold up the rotation of everyone else.
async fn rollout(
    shared: &Shared,
    object: &SecretRotation,
    revision: i64,
) -> Result<Vec<String>, Failure> {
    let namespace = object.namespace().unwrap_or_default();
    let patch = json!({
        "spec": { "template": { "metadata": { "annotations": {
            CREDENTIAL_REVISION: revision.to_string(),
        } } } }
    });
    let params = PatchParams {
        field_manager: Some(CONTROLLER_NAME.to_owned()),
        ..PatchParams::default()
    };
    let patch = Patch::Merge(&patch);
    let mut warnings = Vec::new();
    for target in &object.spec.rollout_targets {
        let kube = shared.kube.clone();
        let name = &target.name;
        let result = match target.kind {
            WorkloadKind::Deployment => Api::<Deployment>::namespaced(kube, &namespace)
                .patch(name, &params, &patch)
                .await
                .map(drop),
            WorkloadKind::StatefulSet => Api::<StatefulSet>::namespaced(kube, &namespace)
                .patch(name, &params, &patch)
                .await
                .map(drop),
            WorkloadKind::DaemonSet => Api::<DaemonSet>::namespaced(kube, &namespace)
                .patch(name, &params, &patch)
                .await
                .map(drop),
        };
        match result {
            Ok(()) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {
                warnings.push(format!("rollout target {:?} {name} not found", target.kind));
            }
            Err(e) => {
                return Err(failure::from_kube(
                    &format!("annotate rollout target {:?} {name}", target.kind),
                    &e,
                    true,
                ));
            }
        }
    }
    Ok(warnings)
}
