//! The Secret's writes: the new value under `key` (and for automation tokens the
//! execution URL under `<key>.url`), the old ones under `<key>.previous` (and
//! `<key>.url.previous`) until the grace period ends, then their removal. Does I/O against
//! the apiserver; the value is never logged, and a failed write's error carries only its
//! status code (see [`super::failure::from_kube`]).
//!
//! The Secret is written only when the step found it the operator's to write: a missing
//! one is created (never applied, so one that appears meanwhile is not taken over), with
//! the managed-by label and a controller owner reference; an existing one is applied with
//! its observed `resourceVersion` as a precondition, so an opt-in removed in the meantime
//! fails the write instead of being ignored, and it never gets an owner reference unless
//! the operator created it.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use url::Url;

use super::CONTROLLER_NAME;
use super::observe::Observation;
use crate::api::SecretRotation;
use crate::api::ownership::{MANAGED_BY, MANAGED_BY_LABEL};
use crate::api::secret_rotation::{
    CREDENTIAL_ID, CREDENTIAL_REVISION, SECRET_ROTATION_LABEL, secret_rotation_label_value,
};
use crate::controller::Shared;

/// `<key>.previous`.
pub fn previous_key(key: &str) -> String {
    format!("{key}.previous")
}

/// `<key>.url`: an automation's execution URL, beside its token under `key`. With the
/// CRD's 240-character bound on `key`, `<key>.url.previous` still fits a Secret key's 253.
pub fn url_key(key: &str) -> String {
    format!("{key}.url")
}

/// Writes the new value under `key`, the old one under `<key>.previous`, and the label and
/// annotations naming the SecretRotation and revision. A missing Secret is created, owned
/// by the SecretRotation; of an existing one (the operator's, or opted in) only these
/// fields are touched, by server-side apply guarded by the observed `resourceVersion`.
/// Then has the tenant clients re-read the Secret (self-rotation).
/// `url`, for automation tokens, goes under `<key>.url` the same way.
pub async fn write(
    shared: &Shared,
    observation: &Observation,
    value: &SecretString,
    url: Option<&Url>,
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
    let old = |key: &str| {
        observation
            .secret
            .as_ref()
            .and_then(|s| s.data.as_ref())
            .and_then(|d| d.get(key))
            .filter(|v| !v.0.iter().all(u8::is_ascii_whitespace))
            .cloned()
    };
    let old_value = old(&target.key);
    if let Some(url) = url {
        let key = url_key(&target.key);
        // The old URL goes with the old token: each token runs only its own automation.
        if let Some(old_url) = old(&key).filter(|_| old_value.is_some()) {
            data.insert(previous_key(&key), old_url);
        }
        data.insert(key, ByteString(url.as_str().as_bytes().to_vec()));
    }
    if let Some(old) = old_value {
        data.insert(previous_key(&target.key), old);
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

/// Drops `<key>.previous` and `<key>.url.previous` (a missing Secret is left missing, one
/// without them left alone), guarded by the observed `resourceVersion`.
pub async fn remove_previous(
    shared: &Shared,
    observation: &Observation,
) -> Result<(), kube::Error> {
    let object = &observation.object;
    let target = &object.spec.secret;
    let Some(secret) = &observation.secret else {
        return Ok(());
    };
    let keys = [
        previous_key(&target.key),
        previous_key(&url_key(&target.key)),
    ];
    let present: Map<String, Value> = keys
        .into_iter()
        .filter(|k| secret.data.as_ref().is_some_and(|d| d.contains_key(k)))
        .map(|k| (k, Value::Null))
        .collect();
    if present.is_empty() {
        return Ok(());
    }
    let namespace = object.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(shared.kube.clone(), &namespace);
    let patch = serde_json::json!({
        "metadata": { "resourceVersion": secret.metadata.resource_version },
        "data": present,
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
