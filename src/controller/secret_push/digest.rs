//! What a SecretPush records instead of the values it pushed: an HMAC-SHA256 of the target
//! and the values, keyed with a key the operator keeps in a Secret of its own namespace.
//!
//! The digest tells a restarted operator whether the values changed since the last push
//! (so a restart pushes nothing again), and reveals nothing about them to anyone who can
//! read the status: without the key, a digest cannot be tested against guesses. Pure,
//! except [`load_or_create`].

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};

use crate::api::secret_push::PushTarget;

/// The operator's own Secret holding the key (in the operator's namespace).
pub const KEY_SECRET_NAME: &str = crate::controller::rbac::PUSH_DIGEST_KEY_SECRET;
/// The key's entry in that Secret.
pub const KEY_DATA_KEY: &str = "hmac-sha256-key";
/// The prefix of every digest, naming the algorithm.
pub const PREFIX: &str = "hmac-sha256:";
const KEY_BYTES: usize = 32;

/// The key digests are made with.
pub struct DigestKey(hmac::Key);

impl DigestKey {
    /// A key from its bytes.
    pub fn from_bytes(bytes: &[u8]) -> DigestKey {
        DigestKey(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    /// A new random key (kept in memory only when the operator has no namespace to keep it
    /// in: then a restart pushes every SecretPush once more).
    pub fn random() -> Result<DigestKey, ring::error::Unspecified> {
        Ok(DigestKey::from_bytes(&random_bytes()?))
    }

    /// `hmac-sha256:<hex>` of `target` and `values` (field → value). Every part is
    /// length-prefixed, so no two different inputs are read as the same bytes.
    pub fn digest(&self, target: &PushTarget, values: &BTreeMap<String, SecretString>) -> String {
        let mut context = hmac::Context::with_key(&self.0);
        let target = serde_json::to_vec(target).unwrap_or_default();
        feed(&mut context, &target);
        for (field, value) in values {
            feed(&mut context, field.as_bytes());
            feed(&mut context, value.expose_secret().as_bytes());
        }
        format!("{PREFIX}{}", hex::encode(context.sign().as_ref()))
    }
}

fn feed(context: &mut hmac::Context, part: &[u8]) {
    context.update(&(part.len() as u64).to_be_bytes());
    context.update(part);
}

fn random_bytes() -> Result<[u8; KEY_BYTES], ring::error::Unspecified> {
    let mut bytes = [0u8; KEY_BYTES];
    SystemRandom::new().fill(&mut bytes)?;
    Ok(bytes)
}

/// Why the key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("failed to read or create Secret {namespace}/{KEY_SECRET_NAME}")]
    Kube {
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "Secret {namespace}/{KEY_SECRET_NAME} has no usable {KEY_DATA_KEY} (at least 32 bytes)"
    )]
    Unusable { namespace: String },
    #[error("the system random number generator failed")]
    Random,
}

/// The key from the operator's Secret in `namespace`, created with a random key when it
/// does not exist. Two replicas racing to create it agree: the loser reads the winner's.
pub async fn load_or_create(kube: &kube::Client, namespace: &str) -> Result<DigestKey, KeyError> {
    let secrets: Api<Secret> = Api::namespaced(kube.clone(), namespace);
    let failed = |source| KeyError::Kube {
        namespace: namespace.to_owned(),
        source,
    };
    if let Some(secret) = secrets.get_opt(KEY_SECRET_NAME).await.map_err(failed)? {
        return key_of(&secret, namespace);
    }
    let bytes = random_bytes().map_err(|_| KeyError::Random)?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(KEY_SECRET_NAME.to_owned()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_owned(),
                crate::controller::OPERATOR_NAME.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            KEY_DATA_KEY.to_owned(),
            ByteString(bytes.to_vec()),
        )])),
        type_: Some("Opaque".to_owned()),
        ..Secret::default()
    };
    match secrets.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(DigestKey::from_bytes(&bytes)),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let secret = secrets.get(KEY_SECRET_NAME).await.map_err(failed)?;
            key_of(&secret, namespace)
        }
        Err(source) => Err(failed(source)),
    }
}

fn key_of(secret: &Secret, namespace: &str) -> Result<DigestKey, KeyError> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(KEY_DATA_KEY))
        .filter(|k| k.0.len() >= KEY_BYTES)
        .map(|k| DigestKey::from_bytes(&k.0))
        .ok_or_else(|| KeyError::Unusable {
            namespace: namespace.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target() -> PushTarget {
        serde_json::from_value(json!({"tenantEmail": {"fields": {"emailPassword": "pw"}}}))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, SecretString> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), SecretString::from(*v)))
            .collect()
    }

    #[test]
    fn the_same_values_give_the_same_digest_and_any_change_another() {
        let key = DigestKey::from_bytes(&[7; 32]);
        let a = key.digest(&target(), &values(&[("emailPassword", "s3cret")]));
        assert_eq!(
            a,
            key.digest(&target(), &values(&[("emailPassword", "s3cret")]))
        );
        assert!(a.starts_with(PREFIX));
        assert_ne!(
            a,
            key.digest(&target(), &values(&[("emailPassword", "s3cret2")]))
        );
        assert_ne!(a, key.digest(&target(), &values(&[("username", "s3cret")])));
        let other_target = serde_json::from_value(
            json!({"dataConnection": {"id": "x", "fields": {"qPassword": "pw"}}}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(
            a,
            key.digest(&other_target, &values(&[("emailPassword", "s3cret")]))
        );
    }

    #[test]
    fn parts_cannot_run_into_each_other() {
        let key = DigestKey::from_bytes(&[7; 32]);
        let a = key.digest(&target(), &values(&[("a", "bc")]));
        let b = key.digest(&target(), &values(&[("ab", "c")]));
        assert_ne!(a, b);
    }

    #[test]
    fn another_key_gives_another_digest_and_no_digest_shows_the_value() {
        let values = values(&[("emailPassword", "s3cret")]);
        let a = DigestKey::from_bytes(&[1; 32]).digest(&target(), &values);
        let b = DigestKey::from_bytes(&[2; 32]).digest(&target(), &values);
        assert_ne!(a, b);
        assert!(!a.contains("s3cret") && !a.contains(&hex::encode("s3cret")));
    }
}
