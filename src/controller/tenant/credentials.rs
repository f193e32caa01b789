//! From a `QlikTenant`'s `spec.credentials` and the Secret it names to a tenant
//! [`Credential`]. Pure: the caller reads the Secret (from the tenant's own namespace only).

use k8s_openapi::api::core::v1::Secret;

use crate::api::tenant::TenantCredentials;
use crate::tenant::{Credential, CredentialSource};

/// Why the credential could not be read. Messages name the Secret and key, never a value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The Secret does not exist (yet).
    #[error("Secret {namespace}/{name} not found")]
    SecretNotFound { namespace: String, name: String },
    /// The Secret exists but lacks the key.
    #[error("Secret {namespace}/{name} has no key {key:?}")]
    KeyMissing {
        namespace: String,
        name: String,
        key: String,
    },
    /// The key holds nothing usable: empty, whitespace or not UTF-8.
    #[error("key {key:?} of Secret {namespace}/{name} is empty or not UTF-8 text")]
    Unusable {
        namespace: String,
        name: String,
        key: String,
    },
    /// Neither or both credential kinds (admission prevents this; stay defensive).
    #[error("spec.credentials must set exactly one of apiKey or oauthClient")]
    Ambiguous,
}

impl CredentialError {
    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            CredentialError::SecretNotFound { .. } => "SecretNotFound",
            CredentialError::KeyMissing { .. } | CredentialError::Unusable { .. } => {
                "SecretKeyInvalid"
            }
            CredentialError::Ambiguous => "InvalidSpec",
        }
    }
}

/// The Secret `spec.credentials` reads from: `(name, key)`.
pub fn secret_ref(credentials: &TenantCredentials) -> Result<(&str, &str), CredentialError> {
    match (&credentials.api_key, &credentials.oauth_client) {
        (Some(api_key), None) => Ok((&api_key.secret_ref.name, &api_key.secret_ref.key)),
        (None, Some(oauth)) => Ok((&oauth.secret_ref.name, &oauth.secret_ref.key)),
        _ => Err(CredentialError::Ambiguous),
    }
}

/// Builds the credential from `secret` (looked up by [`secret_ref`] in `namespace`).
pub fn credential(
    credentials: &TenantCredentials,
    namespace: &str,
    secret: Option<&Secret>,
) -> Result<(Credential, CredentialSource), CredentialError> {
    let (name, key) = secret_ref(credentials)?;
    let located = |name: &str, key: &str| (namespace.to_owned(), name.to_owned(), key.to_owned());
    let Some(secret) = secret else {
        let (namespace, name, _) = located(name, key);
        return Err(CredentialError::SecretNotFound { namespace, name });
    };
    let Some(bytes) = secret.data.as_ref().and_then(|data| data.get(key)) else {
        let (namespace, name, key) = located(name, key);
        return Err(CredentialError::KeyMissing {
            namespace,
            name,
            key,
        });
    };
    // A trailing newline from `kubectl create secret --from-file` is not part of the value.
    let value = std::str::from_utf8(&bytes.0)
        .map(str::trim)
        .unwrap_or_default();
    if value.is_empty() {
        let (namespace, name, key) = located(name, key);
        return Err(CredentialError::Unusable {
            namespace,
            name,
            key,
        });
    }
    let source = CredentialSource::Secret {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        key: key.to_owned(),
    };
    let credential = match &credentials.oauth_client {
        Some(oauth) => Credential::oauth_client(oauth.client_id.clone(), value),
        None => Credential::api_key(value),
    };
    Ok((credential, source))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;
    use secrecy::ExposeSecret;

    use super::*;
    use crate::api::SecretKeyRef;
    use crate::api::tenant::{ApiKeyCredential, OAuthClientCredential};

    fn api_key_spec() -> TenantCredentials {
        TenantCredentials {
            api_key: Some(ApiKeyCredential {
                secret_ref: SecretKeyRef {
                    name: "qlik".into(),
                    key: "api-key".into(),
                },
            }),
            oauth_client: None,
        }
    }

    fn secret(key: &str, value: &[u8]) -> Secret {
        Secret {
            data: Some(BTreeMap::from([(
                key.to_owned(),
                ByteString(value.to_vec()),
            )])),
            ..Secret::default()
        }
    }

    #[test]
    fn an_api_key_is_read_trimmed_and_located_without_its_value() {
        let (credential, source) = credential(
            &api_key_spec(),
            "web",
            Some(&secret("api-key", b"tok-123\n")),
        )
        .unwrap();
        assert_eq!(source.to_string(), "Secret web/qlik key api-key");
        assert!(!format!("{credential:?}").contains("tok-123"));
        assert!(matches!(&credential, Credential::ApiKey(t) if t.expose_secret() == "tok-123"));
    }

    #[test]
    fn an_oauth_client_takes_its_id_from_the_spec_and_its_secret_from_the_secret() {
        let spec = TenantCredentials {
            api_key: None,
            oauth_client: Some(OAuthClientCredential {
                client_id: "client-1".into(),
                secret_ref: SecretKeyRef {
                    name: "qlik-oauth".into(),
                    key: "secret".into(),
                },
            }),
        };
        let (credential, _) = credential(&spec, "web", Some(&secret("secret", b"s3cret"))).unwrap();
        assert!(
            matches!(&credential, Credential::OAuthClient { client_id, client_secret }
            if client_id == "client-1" && client_secret.expose_secret() == "s3cret")
        );
    }

    #[test]
    fn missing_or_unusable_secrets_say_which_secret_and_key_with_a_reason() {
        let cases = [
            (None, "SecretNotFound", "Secret web/qlik not found"),
            (
                Some(secret("other", b"x")),
                "SecretKeyInvalid",
                "Secret web/qlik has no key \"api-key\"",
            ),
            (
                Some(secret("api-key", b"  \n")),
                "SecretKeyInvalid",
                "key \"api-key\" of Secret web/qlik is empty",
            ),
            (
                Some(secret("api-key", &[0xff, 0xfe])),
                "SecretKeyInvalid",
                "not UTF-8",
            ),
        ];
        for (secret, reason, message) in cases {
            let error = credential(&api_key_spec(), "web", secret.as_ref()).unwrap_err();
            assert_eq!(error.reason(), reason);
            assert!(error.to_string().contains(message), "{error}");
        }
    }

    #[test]
    fn both_or_neither_credential_kinds_are_an_invalid_spec() {
        let neither = TenantCredentials {
            api_key: None,
            oauth_client: None,
        };
        let both = TenantCredentials {
            oauth_client: Some(OAuthClientCredential {
                client_id: "client-1".into(),
                secret_ref: SecretKeyRef {
                    name: "qlik".into(),
                    key: "api-key".into(),
                },
            }),
            ..api_key_spec()
        };
        // A Secret that would satisfy either kind: only the spec can be at fault.
        let usable = secret("api-key", b"tok-123");
        for (case, spec) in [("neither", &neither), ("both", &both)] {
            assert_eq!(
                secret_ref(spec).err(),
                Some(CredentialError::Ambiguous),
                "{case}"
            );
            let error = credential(spec, "web", Some(&usable)).err();
            assert_eq!(error, Some(CredentialError::Ambiguous), "{case}");
            assert_eq!(error.map(|e| e.reason()), Some("InvalidSpec"), "{case}");
        }
    }
}
