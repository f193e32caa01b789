//! Observe: the source Secret read by name (never listed), its mapped values and their
//! digest. Reads only; the values stay in memory for the push and are never logged.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::{Resource, ResourceExt};
use secrecy::SecretString;

use super::Error;
use super::digest::DigestKey;
use super::plan::{Observed, Source};
use crate::api::SecretPush;
use crate::controller::Shared;

/// What a reconcile works from.
pub struct Observation {
    pub observed: Observed,
    /// Target field → value, when every mapped key is there.
    pub values: BTreeMap<String, SecretString>,
}

/// Reads `object`'s Secret and plans from it.
pub async fn observe(
    shared: &Shared,
    key: &DigestKey,
    object: &SecretPush,
    now: Timestamp,
) -> Result<Observation, Error> {
    let namespace = object.namespace().unwrap_or_default();
    let name = &object.spec.secret_name;
    let secrets: Api<Secret> = Api::namespaced(shared.kube.clone(), &namespace);
    let secret = secrets
        .get_opt(name)
        .await
        .map_err(|source| Error::ReadSecret {
            name: name.clone(),
            source,
        })?;
    let (source, values) = match secret {
        None => (
            Source::Missing {
                secret: format!("{namespace}/{name}"),
            },
            BTreeMap::new(),
        ),
        Some(secret) => read_values(object, &secret, key, &format!("{namespace}/{name}")),
    };
    let observed = Observed {
        generation: object.meta().generation,
        status: object.status.clone().unwrap_or_default(),
        target: object.spec.target.kind(),
        poll_every: object.spec.poll_every.into(),
        resync_every: object.spec.resync_every.into(),
        now,
        source,
    };
    Ok(Observation { observed, values })
}

/// The mapped values of `secret`, or which keys are missing or not text.
fn read_values(
    object: &SecretPush,
    secret: &Secret,
    key: &DigestKey,
    secret_name: &str,
) -> (Source, BTreeMap<String, SecretString>) {
    let data = secret.data.as_ref();
    let mut values = BTreeMap::new();
    let (mut missing, mut not_text) = (Vec::new(), Vec::new());
    for (field, data_key) in object.spec.target.fields() {
        match data.and_then(|d| d.get(data_key)).map(|v| v.0.as_slice()) {
            None | Some([]) => missing.push(data_key.clone()),
            Some(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => {
                    values.insert(field.clone(), SecretString::from(text.to_owned()));
                }
                Err(_) => not_text.push(data_key.clone()),
            },
        }
    }
    let secret = secret_name.to_owned();
    if !missing.is_empty() {
        return (
            Source::KeysMissing {
                secret,
                keys: missing,
            },
            BTreeMap::new(),
        );
    }
    if !not_text.is_empty() {
        return (
            Source::NotText {
                secret,
                keys: not_text,
            },
            BTreeMap::new(),
        );
    }
    let digest = key.digest(&object.spec.target, &values);
    (Source::Values { digest }, values)
}
