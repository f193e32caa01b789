//! Wire type of the `oauth/token` answer: the access token the client-credentials exchange
//! returns. No I/O.

use secrecy::SecretString;
use serde::Deserialize;

/// The answer of `/oauth/token` (`oauth-token-response`). Qlik's definition has
/// `expires_at`; standard servers send `expires_in`; either is accepted.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: SecretString,
    #[serde(default)]
    pub(crate) expires_in: Option<f64>,
    #[serde(default)]
    pub(crate) expires_at: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_access_token_never_shows_in_debug() {
        let token: TokenResponse = serde_json::from_value(json!({
            "access_token": "access-value", "token_type": "bearer", "expires_in": 21600
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(!format!("{token:?}").contains("access-value"));
    }
}
