//! Act: the decision's one side effect on the tenant, the Secret ([`super::secret`]) or
//! the rollout targets. Every step is idempotent or recovered by the next observation (see
//! [`super::step`]). A new credential's value exists only in memory ([`Held`]) between its
//! creation and a successful Secret write; it is never logged.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use secrecy::SecretString;
use serde_json::json;

use super::CONTROLLER_NAME;
use super::automation;
use super::failure;
use super::held::Held;
use super::marker;
use super::observe::Observation;
use super::observed::{Action, Failure, FailureKind, Kind, Outcome, RemoteCredential};
use super::secret;
use crate::api::SecretRotation;
use crate::api::reasons::TENANT_NOT_READY;
use crate::api::secret_rotation::{CREDENTIAL_REVISION, WorkloadKind};
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
    let kind = Kind::of(&object.spec);
    let client = || {
        observation.client.as_ref().ok_or_else(|| Failure {
            reason: TENANT_NOT_READY,
            message: "no client for the tenant".to_owned(),
            kind: FailureKind::Transient,
            retry_after: None,
        })
    };
    let tenant_failed = |e: crate::tenant::Error| failure::from_tenant(&e, kind);
    match action {
        Action::Nothing => Ok(Outcome::default()),
        Action::DeleteStrays(ids) => {
            for id in ids {
                revoke(client()?, object, id).await.map_err(tenant_failed)?;
            }
            Ok(Outcome::default())
        }
        Action::Create { revision, expiry } => {
            let status = &observation.observed.status;
            let (created, value) = match kind {
                Kind::AutomationToken => automation::copy(client()?, object, status, *revision)
                    .await
                    .map_err(tenant_failed)?,
                _ => create(client()?, object, *revision, *expiry)
                    .await
                    .map_err(tenant_failed)?,
            };
            held.keep(&uid(object), *revision, created, value);
            failpoint::hit(point::AFTER_CREATE);
            publish_held(shared, held, observation, *revision).await
        }
        Action::AdoptCopy { revision, id } => {
            let status = &observation.observed.status;
            let (created, value) = automation::adopt(client()?, object, status, id)
                .await
                .map_err(tenant_failed)?;
            held.keep(&uid(object), *revision, created, value);
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
            secret::remove_previous(shared, observation)
                .await
                .map_err(|e| {
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
    // An automation's token runs only through its own URL: both go in.
    let url = match Kind::of(&observation.object.spec) {
        Kind::AutomationToken => observation
            .client
            .as_ref()
            .map(|c| c.automation_execution_url(&created.id)),
        _ => None,
    };
    secret::write(
        shared,
        observation,
        &value,
        url.as_ref(),
        revision,
        &created.id,
    )
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

/// Revokes the credential `id`: deletes the API key, the OAuth client secret, or the
/// automation.
pub async fn revoke(
    client: &TenantClient,
    object: &SecretRotation,
    id: &str,
) -> Result<(), crate::tenant::Error> {
    let credential = &object.spec.credential;
    if let Some(oauth) = &credential.oauth_client_secret {
        client
            .delete_oauth_client_secret(&oauth.client_id, id)
            .await?;
    } else if credential.automation_execution_token.is_some() {
        automation::delete(client, id).await?;
    } else {
        client.delete_api_key(id).await?;
    }
    Ok(())
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
