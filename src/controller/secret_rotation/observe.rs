//! Observe: the SecretRotation read fresh from the apiserver (a cached copy may lag behind
//! the status this controller just wrote), its QlikTenant and Secret (whose is it), the
//! tenant's credentials (API keys with the marker, the OAuth client's secret hints, with
//! who created them, or the automations status names and, while `Creating`, those with the
//! name marker: see [`automation::remote`]), the operator's own identity when the decision
//! may revoke something,
//! and what [`Held`] keeps in memory. Reads only. Tenant failures become part of the
//! observation; apiserver failures are errors.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::{Resource, ResourceExt};

use super::automation;
use super::failure::{self, Error};
use super::held::Held;
use super::marker;
use super::observed::{Failure, Kind, Observed, Remote, RemoteCredential, SecretFacts};
use super::schedule;
use super::step;
use crate::api::ownership::ALLOW_ROTATION_BY;
use crate::api::secret_rotation::{
    CREDENTIAL_ID, CREDENTIAL_REVISION, Phase, ROTATE_REQUESTED_AT, SecretRotationStatus,
};
use crate::api::{QlikTenant, SecretRotation};
use crate::controller::Shared;
use crate::tenant::{ApiKeyStatus, TenantClient};

/// How often a credential is checked against the tenant when no tenant says otherwise.
const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(600);

/// The observation, plus what the action needs.
pub struct Observation {
    pub observed: Observed,
    /// The SecretRotation as read now.
    pub object: SecretRotation,
    /// Present when the tenant could be reached.
    pub client: Option<TenantClient>,
    /// The Secret as read now (holds the current value, which moves to `.previous`).
    pub secret: Option<Secret>,
    /// The longest wait before the next check (the tenant's drift interval).
    pub health: Duration,
}

/// The SecretRotation as stored now; `None` when it is gone.
pub async fn read_fresh(
    shared: &Shared,
    object: &SecretRotation,
) -> Result<Option<SecretRotation>, Error> {
    let name = object.name_any();
    let rotations: Api<SecretRotation> =
        Api::namespaced(shared.kube.clone(), &object.namespace().unwrap_or_default());
    rotations
        .get_opt(&name)
        .await
        .map_err(|source| Error::ReadObject { name, source })
}

/// Observes `object` (as returned by [`read_fresh`]).
pub async fn observe(
    shared: &Shared,
    held: &Held,
    now: Timestamp,
    object: SecretRotation,
) -> Result<Observation, Error> {
    let namespace = object.namespace().unwrap_or_default();
    let status = object.status.clone().unwrap_or_default();
    let tenant_name = &object.spec.tenant_ref.name;
    let tenants: Api<QlikTenant> = Api::namespaced(shared.kube.clone(), &namespace);
    let tenant = tenants
        .get_opt(tenant_name)
        .await
        .map_err(|source| Error::ReadTenant {
            name: tenant_name.clone(),
            source,
        })?;
    let configured = tenant
        .as_ref()
        .map_or(DEFAULT_HEALTH_INTERVAL, |t| t.spec.sync_interval.into());
    let health = shared.settings.drift_interval(configured);

    let secret_name = &object.spec.secret.name;
    let secrets: Api<Secret> = Api::namespaced(shared.kube.clone(), &namespace);
    let secret = secrets
        .get_opt(secret_name)
        .await
        .map_err(|source| Error::ReadSecret {
            name: secret_name.clone(),
            source,
        })?;

    let kind = Kind::of(&object.spec);
    let (client, remote) = match &tenant {
        None => (
            None,
            Err(failure::tenant_not_found(&namespace, tenant_name)),
        ),
        Some(tenant) => match shared.tenants.for_tenant(&shared.kube, tenant).await {
            Err(e) => (None, Err(failure::from_access(&e))),
            Ok(client) => {
                let uid = object.meta().uid.clone().unwrap_or_default();
                let remote = remote(&client, &object, &uid, &status, false)
                    .await
                    .map_err(|e| failure::from_tenant(&e, kind));
                (Some(client), remote)
            }
        },
    };

    let rotate_requested_at = object
        .annotations()
        .get(ROTATE_REQUESTED_AT)
        .and_then(|v| v.trim().parse::<Timestamp>().ok())
        .map(schedule::whole_seconds_up);
    let uid = object.meta().uid.clone().unwrap_or_default();
    let held = status
        .pending
        .as_ref()
        .and_then(|p| held.facts(&uid, p.revision));
    let mut spec = object.spec.clone();
    if let Some(grace) = shared.settings.grace_period_override {
        spec.grace_period = grace.into();
    }
    let mut observed = Observed {
        now: schedule::whole_seconds(now),
        name: object.name_any(),
        generation: object.meta().generation,
        spec,
        status,
        rotate_requested_at,
        secret: secret_facts(secret.as_ref(), &object),
        remote,
        identity: None,
        held,
    };
    if step::needs_identity(&observed)
        && let Some(client) = &client
    {
        match identity(client).await {
            Ok(me) => observed.identity = Some(me),
            Err(e) => observed.remote = Err(failure::from_tenant(&e, kind)),
        }
    }
    Ok(Observation {
        observed,
        object,
        client,
        secret,
        health,
    })
}

/// The user the operator authenticates as.
pub async fn identity(client: &TenantClient) -> Result<String, crate::tenant::Error> {
    Ok(client.current_user().await?.id)
}

fn secret_facts(secret: Option<&Secret>, rotation: &SecretRotation) -> SecretFacts {
    let Some(secret) = secret else {
        return SecretFacts::default();
    };
    let key = &rotation.spec.secret.key;
    let has_value = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .is_some_and(|v| !v.0.iter().all(u8::is_ascii_whitespace));
    let annotations = secret.annotations();
    SecretFacts {
        exists: true,
        has_value,
        revision: annotations
            .get(CREDENTIAL_REVISION)
            .and_then(|r| r.parse().ok()),
        credential_id: annotations.get(CREDENTIAL_ID).cloned(),
        // The controller owner reference alone is the proof: earlier versions did not set
        // the managed-by label (the next write adds it), and only the operator, or someone
        // who may write the Secret anyway (an opt-in), can have set it.
        created_for_us: super::controlled_by(secret, rotation),
        opted_in: annotations.get(ALLOW_ROTATION_BY).map(|v| v.trim())
            == Some(rotation.name_any().as_str()),
        immutable: secret.immutable == Some(true),
    }
}

/// The tenant's credentials of `object` and the operator's identity, for the finalizer.
pub async fn remote_and_identity(
    client: &TenantClient,
    object: &SecretRotation,
) -> Result<(Remote, String), Failure> {
    let kind = Kind::of(&object.spec);
    let uid = object.meta().uid.clone().unwrap_or_default();
    let status = object.status.clone().unwrap_or_default();
    let found = remote(client, object, &uid, &status, true)
        .await
        .map_err(|e| failure::from_tenant(&e, kind))?;
    let me = identity(client)
        .await
        .map_err(|e| failure::from_tenant(&e, kind))?;
    Ok((found, me))
}

/// The tenant's credentials of `object`; `deleting`: for the finalizer, which looks for
/// automation copies by their marker whatever the phase.
async fn remote(
    client: &TenantClient,
    object: &SecretRotation,
    uid: &str,
    status: &SecretRotationStatus,
    deleting: bool,
) -> Result<Remote, crate::tenant::Error> {
    let phase = if deleting { Phase::Idle } else { status.phase };
    if object.spec.credential.automation_execution_token.is_some() {
        // A copy status does not name can exist only once a rotation is under way.
        let scan = deleting || phase == Phase::Creating;
        return automation::remote(client, object, status, scan).await;
    }
    if let Some(oauth) = &object.spec.credential.oauth_client_secret {
        let found = client.get_oauth_client(&oauth.client_id).await?;
        let credentials = found
            .client_secrets
            .into_iter()
            .map(|s| RemoteCredential {
                id: s.hint,
                revision: None,
                active: true,
                created_at: s.created_at.map(schedule::whole_seconds),
                expires_at: None,
                created_by: s.created_by.filter(|b| !b.is_empty()),
                subject: None,
            })
            .collect();
        return Ok(Remote {
            credentials,
            max_expiry: None,
        });
    }
    let keys = client
        .find_api_keys_by_description_marker(&marker::prefix(uid))
        .await?;
    let credentials = keys
        .into_iter()
        .map(|k| RemoteCredential {
            revision: marker::revision(&k.description, uid),
            active: k.status == ApiKeyStatus::Active,
            created_at: k.created.map(schedule::whole_seconds),
            expires_at: Some(schedule::whole_seconds(k.expiry)),
            created_by: Some(k.created_by_user).filter(|u| !u.is_empty()),
            subject: Some(k.sub).filter(|s| !s.is_empty()),
            id: k.id,
        })
        .collect();
    // The limit matters only when a key is about to be created.
    let max_expiry = if phase == Phase::Creating {
        let tenant_id = client.tenant_id().await?;
        client
            .api_keys_config(&tenant_id)
            .await?
            .max_api_key_expiry()
    } else {
        None
    };
    Ok(Remote {
        credentials,
        max_expiry,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::Secret;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    use super::secret_facts;
    use crate::api::SecretRotation;
    use crate::api::ownership::{MANAGED_BY, MANAGED_BY_LABEL};

    const UID: &str = "2b1f0c4e-rotation";

    fn rotation() -> SecretRotation {
        let spec = serde_json::from_value(serde_json::json!({
            "tenantRef": { "name": "acme" },
            "credential": { "apiKey": {} },
            "secret": { "name": "reports-qlik", "key": "token" },
        }))
        .unwrap();
        let mut rotation = SecretRotation::new("reports", spec);
        rotation.metadata.namespace = Some("web".into());
        rotation.metadata.uid = Some(UID.into());
        rotation
    }

    fn owner(uid: &str, controller: bool) -> OwnerReference {
        OwnerReference {
            api_version: "qlikops.io/v1alpha1".into(),
            kind: "SecretRotation".into(),
            name: "reports".into(),
            uid: uid.into(),
            controller: Some(controller),
            block_owner_deletion: None,
        }
    }

    fn secret(labelled: bool, owners: Vec<OwnerReference>) -> Secret {
        let labels =
            labelled.then(|| BTreeMap::from([(MANAGED_BY_LABEL.into(), MANAGED_BY.into())]));
        Secret {
            metadata: ObjectMeta {
                name: Some("reports-qlik".into()),
                labels,
                owner_references: Some(owners),
                ..ObjectMeta::default()
            },
            ..Secret::default()
        }
    }

    /// Secrets created by earlier operator versions carry the controller owner reference
    /// but not the managed-by label; they stay the SecretRotation's after an upgrade. Only a
    /// controller reference to this very SecretRotation counts: the label alone, a
    /// non-controller reference or one to another object does not.
    #[test]
    fn a_controller_owner_reference_to_this_rotation_makes_the_secret_its_own() {
        let rotation = rotation();
        for (labelled, owners, ours) in [
            (false, vec![owner(UID, true)], true),
            (true, vec![owner(UID, true)], true),
            (true, vec![], false),
            (false, vec![owner(UID, false)], false),
            (true, vec![owner("another-uid", true)], false),
            (
                false,
                vec![owner("another-uid", true), owner(UID, false)],
                false,
            ),
        ] {
            let facts = secret_facts(Some(&secret(labelled, owners.clone())), &rotation);
            assert_eq!(
                (facts.created_for_us, facts.writable()),
                (ours, ours),
                "labelled {labelled}, owners {owners:?}"
            );
        }
    }
}
