//! Act: the decision's one side effect on the tenant, the Secret or the rollout targets.
//! Every step is idempotent or recovered by the next observation (see [`super::step`]).
//! A new credential's value exists only in memory ([`Held`]) between its creation and a
//! successful Secret write; it is never logged.
//!
//! The Secret is written only when the step found it the operator's to write: a missing
//! one is created (never applied, so one that appears meanwhile is not taken over), with
//! the managed-by label and a controller owner reference; an existing one is applied with
//! its observed `resourceVersion` as a precondition, so an opt-in removed in the meantime
//! fails the write instead of being ignored, and it never gets an owner reference unless
//! the operator created it.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::CONTROLLER_NAME;
use super::failure;
use super::held::Held;
use super::marker;
use super::observe::Observation;
use super::observed::{Action, Failure, FailureKind, Outcome, RemoteCredential};
use crate::api::SecretRotation;
use crate::api::ownership::{MANAGED_BY, MANAGED_BY_LABEL};
use crate::api::reasons::TENANT_NOT_READY;
use crate::api::secret_rotation::{
    CREDENTIAL_ID, CREDENTIAL_REVISION, SECRET_ROTATION_LABEL, WorkloadKind,
    secret_rotation_label_value,
};
use crate::controller::Shared;
use crate::failpoint::{self, rotation as point};
use crate::tenant::{NewApiKey, TenantClient, wire};

pub async fn act(
    shared: &Shared,
    held: &Held,
    observation: &Observation,
    action: &Action,
) -> Result<Outcome, Failure> {
    let object = &observation.object;
    let api_key = object.spec.credential.api_key.is_some();
    let client = || {
        observation.client.as_ref().ok_or_else(|| Failure {
            reason: TENANT_NOT_READY,
            message: "no client for the tenant".to_owned(),
            kind: FailureKind::Transient,
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
            held.keep(&uid(object), *revision, created, value);
            failpoint::hit(point::AFTER_CREATE);
            publish_held(shared, held, observation, *revision).await
        }
        Action::WriteSecret { revision } => {
            publish_held(shared, held, observation, *revision).await
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
            remove_previous(shared, observation).await.map_err(|e| {
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

fn uid(object: &SecretRotation) -> String {
    object.meta().uid.clone().unwrap_or_default()
}

/// Writes the held credential of `revision` to the Secret; once written it is no longer
/// held. A failed write leaves it held, for the retry.
async fn publish_held(
    shared: &Shared,
    held: &Held,
    observation: &Observation,
    revision: i64,
) -> Result<Outcome, Failure> {
    let uid = uid(&observation.object);
    let Some((created, value)) = held.value(&uid, revision) else {
        return Err(Failure {
            reason: "CredentialValueLost",
            message: format!(
                "the value of the credential created for revision {revision} is no longer held"
            ),
            kind: FailureKind::Transient,
            retry_after: None,
        });
    };
    write_secret(shared, observation, &value, revision, &created.id)
        .await
        .map_err(|e| failure::from_kube("write the Secret", &e, false))?;
    held.forget(&uid);
    failpoint::hit(point::AFTER_SECRET_WRITE);
    Ok(Outcome {
        created: Some(created),
        warnings: Vec::new(),
    })
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
            created_by: None,
            subject: None,
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
        created_by: Some(created.key.created_by_user).filter(|u| !u.is_empty()),
        subject: Some(created.key.sub).filter(|s| !s.is_empty()),
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

/// Writes the new value under `key`, the old one under `<key>.previous`, and the label and
/// annotations naming the SecretRotation and revision. A missing Secret is created, owned
/// by the SecretRotation; of an existing one (the operator's, or opted in) only these
/// fields are touched, by server-side apply guarded by the observed `resourceVersion`.
/// Then has the tenant clients re-read the Secret (self-rotation).
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
    // Ownership only on a Secret the operator creates, kept in every later apply (a field
    // left out of an apply is removed); never on one it found.
    let ours = match &observation.secret {
        None => true,
        Some(_) => observation.observed.secret.created_for_us,
    };
    let mut labels = BTreeMap::from([(
        SECRET_ROTATION_LABEL.to_owned(),
        secret_rotation_label_value(&object.name_any()),
    )]);
    if ours {
        labels.insert(MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned());
    }
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(target.name.clone()),
            namespace: Some(namespace.clone()),
            resource_version: observation
                .secret
                .as_ref()
                .and_then(|s| s.metadata.resource_version.clone()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([
                (CREDENTIAL_REVISION.to_owned(), revision.to_string()),
                (CREDENTIAL_ID.to_owned(), id.to_owned()),
            ])),
            owner_references: if ours {
                owner_reference(object).map(|r| vec![r])
            } else {
                None
            },
            ..ObjectMeta::default()
        },
        data: Some(data),
        ..Secret::default()
    };
    let api: Api<Secret> = Api::namespaced(shared.kube.clone(), &namespace);
    if observation.secret.is_none() {
        let params = PostParams {
            field_manager: Some(CONTROLLER_NAME.to_owned()),
            ..PostParams::default()
        };
        api.create(&params, &secret).await?;
    } else {
        let params = PatchParams::apply(CONTROLLER_NAME).force();
        api.patch(&target.name, &params, &Patch::Apply(&secret))
            .await?;
    }
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

/// Drops `<key>.previous` (a missing Secret is left missing, one without the key left
/// alone), guarded by the observed `resourceVersion`.
async fn remove_previous(shared: &Shared, observation: &Observation) -> Result<(), kube::Error> {
    let object = &observation.object;
    let target = &object.spec.secret;
    let previous = previous_key(&target.key);
    let Some(secret) = &observation.secret else {
        return Ok(());
    };
    if !secret
        .data
        .as_ref()
        .is_some_and(|d| d.contains_key(&previous))
    {
        return Ok(());
    }
    let namespace = object.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(shared.kube.clone(), &namespace);
    let patch = json!({
        "metadata": { "resourceVersion": secret.metadata.resource_version },
        "data": { previous: null },
    });
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

#[cfg(test)]
mod tests {
    use crate::api::secret_rotation::secret_rotation_label_value;

    fn valid_label_value(value: &str) -> bool {
        let bytes = value.as_bytes();
        value.len() <= 63
            && (value.is_empty()
                || (bytes[0].is_ascii_alphanumeric()
                    && bytes[bytes.len() - 1].is_ascii_alphanumeric()
                    && bytes
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))))
    }

    #[test]
    fn every_secret_rotation_name_gives_a_valid_distinct_label_value() {
        let short = "reports.v2";
        assert_eq!(secret_rotation_label_value(short), short);
        let at_limit = "a".repeat(63);
        assert_eq!(secret_rotation_label_value(&at_limit), at_limit);
        for len in [64, 70, 200, 253] {
            for filler in ["a", "a-", "a."] {
                let name: String = format!("x{}", filler.repeat(len))
                    .chars()
                    .take(len - 1)
                    .collect();
                let name = format!("{name}z");
                let value = secret_rotation_label_value(&name);
                assert!(valid_label_value(&value), "{name} -> {value}");
                assert_eq!(value.len(), 63);
            }
        }
        // Long names that share their first 52 characters still differ.
        let a = format!("{}-one", "r".repeat(70));
        let b = format!("{}-two", "r".repeat(70));
        assert_ne!(
            secret_rotation_label_value(&a),
            secret_rotation_label_value(&b)
        );
    }
}
