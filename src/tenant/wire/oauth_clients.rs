//! Wire types of the `oauth-clients` API: a client's secret hints and a new secret, seen
//! once at creation. No I/O.

use jiff::Timestamp;
use secrecy::SecretString;
use serde::Deserialize;

/// The hint of an OAuth client secret, as the client's GET shows it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientSecretHint {
    /// The hint (a few characters of the secret), which also names it for deletion.
    pub hint: String,
    /// When the secret was created.
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    /// Who created it.
    #[serde(default)]
    pub created_by: Option<String>,
}

/// An OAuth client, as far as the operator needs it (`OAuthClientAdminReadResponse`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthClient {
    /// The client id.
    pub client_id: String,
    /// Its name.
    #[serde(default)]
    pub client_name: String,
    /// The hints of its secrets (at most 5).
    #[serde(default)]
    pub client_secrets: Vec<ClientSecretHint>,
}

/// A new OAuth client secret (`OAuthClientSecretResponse`): the only time it is seen.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedClientSecret {
    /// The client id.
    pub client_id: String,
    /// The secret, to be stored at once.
    pub client_secret: SecretString,
    /// Its hint, which names it for deletion.
    pub hint: String,
    /// When it was created.
    #[serde(default)]
    pub created_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_created_client_secret_never_shows_in_debug() {
        let secret: CreatedClientSecret = serde_json::from_value(json!({
            "clientId": "c", "clientSecret": "oauth-secret-value", "hint": "alue"
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(!format!("{secret:?}").contains("oauth-secret-value"));
    }
}
