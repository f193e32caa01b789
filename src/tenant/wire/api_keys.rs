//! Wire types of the `api-keys` API: keys, the token seen once at creation, the tenant's
//! key settings, and the ISO 8601 durations those settings and `expiry` are written in.
//! No I/O.

use std::time::Duration;

use jiff::{SignedDuration, Span, SpanRelativeTo, Timestamp};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The status of an API key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiKeyStatus {
    /// Usable.
    Active,
    /// Past its expiry.
    Expired,
    /// Deleted or revoked.
    Revoked,
    /// A status this client does not know.
    #[serde(other)]
    Unknown,
}

/// An API key without its token (`ApiKey`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    /// The key's id.
    pub id: String,
    /// The tenant it belongs to.
    #[serde(default)]
    pub tenant_id: String,
    /// Its description (the operator puts its marker here).
    #[serde(default)]
    pub description: String,
    /// Its status.
    pub status: ApiKeyStatus,
    /// The subject it authenticates as.
    #[serde(default)]
    pub sub: String,
    /// The subject's type (`user`, `externalClient`).
    #[serde(default)]
    pub sub_type: String,
    /// When it stops being accepted.
    pub expiry: Timestamp,
    /// When it was created.
    #[serde(default)]
    pub created: Option<Timestamp>,
    /// When it was last updated.
    #[serde(default)]
    pub last_updated: Option<Timestamp>,
    /// Who created it.
    #[serde(default)]
    pub created_by_user: String,
}

/// The answer to creating an API key (`ApiKeyWithToken`): the only time the token is seen.
#[derive(Clone, Debug, Deserialize)]
pub struct CreatedApiKey {
    /// The key.
    #[serde(flatten)]
    pub key: ApiKey,
    /// The token (a signed JWT), to be stored at once.
    pub token: SecretString,
}

/// The body of `POST /api/v1/api-keys` (`ApiKeyBody`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewApiKey {
    /// Its description; put a marker here to find the key again after an unknown outcome.
    pub description: String,
    /// Its lifetime as an ISO 8601 duration (see [`iso8601_duration`]); the tenant's
    /// maximum when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry: Option<String>,
}

/// A tenant's API key settings (`ApiKeysConfig`; its fields are snake_case on the wire).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct ApiKeysConfig {
    /// The most active keys one user may hold (default 5).
    #[serde(default)]
    pub max_keys_per_user: Option<f64>,
    /// The longest lifetime of a key, ISO 8601 (default `PT24H`).
    #[serde(default)]
    pub max_api_key_expiry: Option<String>,
    /// The lifetime of SCIM `externalClient` keys.
    #[serde(default, rename = "scim_externalClient_expiry")]
    pub scim_external_client_expiry: Option<String>,
}

impl ApiKeysConfig {
    /// The most active keys per user, defaulting to Qlik's 5.
    pub fn max_keys_per_user(&self) -> u32 {
        self.max_keys_per_user
            .filter(|n| n.is_finite() && *n >= 0.0)
            .map_or(5, |n| n.min(u32::MAX as f64) as u32)
    }

    /// The longest key lifetime, defaulting to Qlik's 24 hours; `None` when the tenant's
    /// value is not an ISO 8601 duration.
    pub fn max_api_key_expiry(&self) -> Option<Duration> {
        match &self.max_api_key_expiry {
            None => Some(Duration::from_secs(24 * 3600)),
            Some(text) => parse_iso8601_duration(text),
        }
    }
}

/// Parses an ISO 8601 duration such as `P7D` or `PT24H`, days being 24 hours.
pub fn parse_iso8601_duration(text: &str) -> Option<Duration> {
    let span: Span = text.trim().parse().ok()?;
    let d: SignedDuration = span.to_duration(SpanRelativeTo::days_are_24_hours()).ok()?;
    Duration::try_from(d).ok()
}

/// Formats `d` as an ISO 8601 duration in the largest whole unit: `P7D`, `PT12H`, `PT90M`,
/// `PT45S`. Sub-second parts are dropped.
pub fn iso8601_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0 => "PT0S".to_owned(),
        s if s % 86_400 == 0 => format!("P{}D", s / 86_400),
        s if s % 3_600 == 0 => format!("PT{}H", s / 3_600),
        s if s % 60 == 0 => format!("PT{}M", s / 60),
        s => format!("PT{s}S"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_created_key_token_never_shows_in_debug() {
        let key: CreatedApiKey = serde_json::from_value(json!({
            "id": "k1", "tenantId": "t", "description": "d", "status": "active", "sub": "u",
            "subType": "user", "expiry": "2030-01-01T00:00:00Z", "createdByUser": "u",
            "token": "eyJ.secret.jwt"
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(!format!("{key:?}").contains("eyJ.secret.jwt"));
    }

    #[test]
    fn unknown_key_statuses_do_not_fail_decoding() {
        let s: ApiKeyStatus =
            serde_json::from_value(json!("suspended")).unwrap_or(ApiKeyStatus::Active);
        assert_eq!(s, ApiKeyStatus::Unknown);
    }

    #[test]
    fn api_key_config_defaults_and_durations() {
        let c: ApiKeysConfig = serde_json::from_value(json!({})).unwrap_or_default();
        assert_eq!(c.max_keys_per_user(), 5);
        assert_eq!(c.max_api_key_expiry(), Some(Duration::from_secs(86_400)));
        let c: ApiKeysConfig =
            serde_json::from_value(json!({"max_keys_per_user": 3, "max_api_key_expiry": "P7D"}))
                .unwrap_or_default();
        assert_eq!(c.max_keys_per_user(), 3);
        assert_eq!(
            c.max_api_key_expiry(),
            Some(Duration::from_secs(7 * 86_400))
        );
        let c = ApiKeysConfig {
            max_api_key_expiry: Some("forever".into()),
            ..ApiKeysConfig::default()
        };
        assert_eq!(c.max_api_key_expiry(), None);
    }

    #[test]
    fn durations_format_in_the_largest_whole_unit_and_parse_back() {
        let cases = [
            (0, "PT0S"),
            (45, "PT45S"),
            (5400, "PT90M"),
            (43_200, "PT12H"),
            (604_800, "P7D"),
        ];
        for (secs, text) in cases {
            assert_eq!(iso8601_duration(Duration::from_secs(secs)), text);
            assert_eq!(
                parse_iso8601_duration(text),
                Some(Duration::from_secs(secs))
            );
        }
    }
}
