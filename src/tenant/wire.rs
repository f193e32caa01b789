//! Wire types of the Qlik Cloud APIs the operator uses, as Qlik's API definitions spell
//! them (`csp-origins`, `api-keys`, `oauth-clients`, `oauth/token`, `users`, `tenants`),
//! and conversions to and from [`crate::csp`]. No I/O.
//!
//! Responses are decoded leniently: unknown fields are ignored and optional fields
//! default, so that a tenant adding fields never breaks the operator. Credentials in
//! responses are [`SecretString`]s.

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::{SignedDuration, Span, SpanRelativeTo, Timestamp};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::csp::{Directive, Origin, OriginError};

/// A navigation link in a paged list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The URL (absolute, or relative to the tenant).
    pub href: String,
}

/// The `links` of a paged list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Links {
    /// The next page, absent on the last one.
    #[serde(default)]
    pub next: Option<Link>,
    /// The previous page.
    #[serde(default)]
    pub prev: Option<Link>,
    /// This page.
    #[serde(default, rename = "self")]
    pub self_: Option<Link>,
}

/// One page of a list (`CSPEntryList`, `api-key-page`).
#[derive(Clone, Debug, Deserialize)]
pub struct Page<T> {
    /// The items on this page.
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    /// Links to the neighbouring pages.
    #[serde(default)]
    pub links: Links,
}

/// The writable content of a CSP entry (`CSPEntryContent`): what `POST` and `PUT` send.
/// `PUT` replaces the whole entry, so every flag is always sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CspOriginContent {
    /// The entry's name (≤512 characters).
    #[serde(default)]
    pub name: String,
    /// The origin, `[scheme://]host[:port]` (≤256 characters).
    pub origin: String,
    /// Why the origin is allowed (≤1,024 characters).
    #[serde(default)]
    pub description: String,
    /// `child-src`.
    #[serde(default)]
    pub child_src: bool,
    /// `connect-src`.
    #[serde(default)]
    pub connect_src: bool,
    /// `connect-src` for `wss://` (Qlik prefixes the origin with `wss://`).
    #[serde(default, rename = "connectSrcWSS")]
    pub connect_src_wss: bool,
    /// `font-src`.
    #[serde(default)]
    pub font_src: bool,
    /// `form-action`.
    #[serde(default)]
    pub form_action: bool,
    /// `frame-ancestors`.
    #[serde(default)]
    pub frame_ancestors: bool,
    /// `frame-src`.
    #[serde(default)]
    pub frame_src: bool,
    /// `img-src`.
    #[serde(default)]
    pub img_src: bool,
    /// `media-src`.
    #[serde(default)]
    pub media_src: bool,
    /// `object-src`.
    #[serde(default)]
    pub object_src: bool,
    /// `script-src`.
    #[serde(default)]
    pub script_src: bool,
    /// `style-src`.
    #[serde(default)]
    pub style_src: bool,
    /// `worker-src`.
    #[serde(default)]
    pub worker_src: bool,
}

impl CspOriginContent {
    /// The content for `origin` granted `directives`, with `connectSrcWSS` set by
    /// `allow_websocket`.
    pub fn new(
        name: impl Into<String>,
        origin: &Origin,
        directives: impl IntoIterator<Item = Directive>,
        allow_websocket: bool,
        description: impl Into<String>,
    ) -> CspOriginContent {
        let mut content = CspOriginContent {
            name: name.into(),
            origin: origin.as_str().to_owned(),
            description: description.into(),
            connect_src_wss: allow_websocket,
            ..CspOriginContent::default()
        };
        for d in directives {
            *content.flag_mut(d) = true;
        }
        content
    }

    /// Whether `directive` is granted.
    pub fn has(&self, directive: Directive) -> bool {
        match directive {
            Directive::ChildSrc => self.child_src,
            Directive::ConnectSrc => self.connect_src,
            Directive::FontSrc => self.font_src,
            Directive::FormAction => self.form_action,
            Directive::FrameAncestors => self.frame_ancestors,
            Directive::FrameSrc => self.frame_src,
            Directive::ImgSrc => self.img_src,
            Directive::MediaSrc => self.media_src,
            Directive::ObjectSrc => self.object_src,
            Directive::ScriptSrc => self.script_src,
            Directive::StyleSrc => self.style_src,
            Directive::WorkerSrc => self.worker_src,
        }
    }

    /// The flag for `directive`, to grant or revoke it.
    pub fn flag_mut(&mut self, directive: Directive) -> &mut bool {
        match directive {
            Directive::ChildSrc => &mut self.child_src,
            Directive::ConnectSrc => &mut self.connect_src,
            Directive::FontSrc => &mut self.font_src,
            Directive::FormAction => &mut self.form_action,
            Directive::FrameAncestors => &mut self.frame_ancestors,
            Directive::FrameSrc => &mut self.frame_src,
            Directive::ImgSrc => &mut self.img_src,
            Directive::MediaSrc => &mut self.media_src,
            Directive::ObjectSrc => &mut self.object_src,
            Directive::ScriptSrc => &mut self.script_src,
            Directive::StyleSrc => &mut self.style_src,
            Directive::WorkerSrc => &mut self.worker_src,
        }
    }

    /// The granted directives, in header order (`connectSrcWSS` is not a directive: see
    /// [`Self::connect_src_wss`]).
    pub fn directives(&self) -> BTreeSet<Directive> {
        Directive::ALL
            .into_iter()
            .filter(|&d| self.has(d))
            .collect()
    }

    /// The origin, validated by the operator's rules (a tenant may hold entries the
    /// operator would not accept, e.g. created in the console).
    pub fn parsed_origin(&self) -> Result<Origin, OriginError> {
        Origin::parse(&self.origin)
    }
}

/// A CSP entry as the tenant holds it (`CSPEntry`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CspOrigin {
    /// The entry's id.
    pub id: String,
    /// The writable content.
    #[serde(flatten)]
    pub content: CspOriginContent,
    /// When it was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date: Option<Timestamp>,
    /// When it was last modified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_date: Option<Timestamp>,
}

/// The answer of `generate-header` (`CSPHeader`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CspHeader {
    /// The compiled header value.
    #[serde(rename = "Content-Security-Policy", default)]
    pub content_security_policy: String,
}

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

/// A user (`User`), as far as the operator needs it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// The user id.
    pub id: String,
    /// The tenant the user belongs to.
    pub tenant_id: String,
    /// The user's name.
    #[serde(default)]
    pub name: String,
    /// The identity-provider subject.
    #[serde(default)]
    pub subject: String,
    /// `active`, `invited`, `disabled`, `deleted`, …
    #[serde(default)]
    pub status: Option<String>,
}

/// A tenant (`Tenant`), as far as the operator needs it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    /// The tenant id.
    pub id: String,
    /// The tenant's name.
    #[serde(default)]
    pub name: String,
    /// Its hostnames.
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// `active`, `disabled`, `deleted`.
    #[serde(default)]
    pub status: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn origin(s: &str) -> Origin {
        Origin::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn every_directive_serializes_as_its_qlik_field() {
        for d in Directive::ALL {
            let content = CspOriginContent::new("n", &origin("https://a.example"), [d], false, "");
            let json = serde_json::to_value(&content).unwrap_or_default();
            let on: Vec<&str> = json
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(_, v)| **v == Value::Bool(true))
                .map(|(k, _)| k.as_str())
                .collect();
            assert_eq!(on, [d.qlik_field()], "{d}");
        }
    }

    #[test]
    fn allow_websocket_is_connect_src_wss_and_not_a_directive() {
        let content = CspOriginContent::new("n", &origin("a.example"), [], true, "");
        let json = serde_json::to_value(&content).unwrap_or_default();
        assert_eq!(json["connectSrcWSS"], json!(true));
        assert!(content.directives().is_empty());
    }

    #[test]
    fn an_entry_round_trips_and_the_put_body_carries_every_flag() {
        let body = json!({
            "id": "e1", "name": "ns/web", "origin": "https://cdn.example.com",
            "description": "cdn", "scriptSrc": true, "imgSrc": true, "connectSrcWSS": false,
            "createdDate": "2025-12-03T14:59:46.331Z", "modifiedDate": "2025-12-03T14:59:46Z",
            "somethingNew": 1
        });
        let entry: CspOrigin = serde_json::from_value(body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            entry.content.directives(),
            BTreeSet::from([Directive::ImgSrc, Directive::ScriptSrc])
        );
        assert_eq!(
            entry.content.parsed_origin(),
            Ok(origin("https://cdn.example.com"))
        );
        assert!(entry.created_date.is_some());
        let put = serde_json::to_value(&entry.content).unwrap_or_default();
        let obj = put.as_object().cloned().unwrap_or_default();
        for d in Directive::ALL {
            assert!(
                obj.contains_key(d.qlik_field()),
                "{d} missing from the PUT body"
            );
        }
        assert!(obj.contains_key("connectSrcWSS"));
        assert!(!obj.contains_key("id") && !obj.contains_key("createdDate"));
    }

    #[test]
    fn a_page_without_links_is_the_last() {
        let page: Page<CspOrigin> =
            serde_json::from_value(json!({"data": []})).unwrap_or_else(|e| panic!("{e}"));
        assert!(page.links.next.is_none());
    }

    #[test]
    fn created_secrets_never_show_in_debug() {
        let key: CreatedApiKey = serde_json::from_value(json!({
            "id": "k1", "tenantId": "t", "description": "d", "status": "active", "sub": "u",
            "subType": "user", "expiry": "2030-01-01T00:00:00Z", "createdByUser": "u",
            "token": "eyJ.secret.jwt"
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(!format!("{key:?}").contains("eyJ.secret.jwt"));
        let secret: CreatedClientSecret = serde_json::from_value(json!({
            "clientId": "c", "clientSecret": "oauth-secret-value", "hint": "alue"
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(!format!("{secret:?}").contains("oauth-secret-value"));
        let token: TokenResponse = serde_json::from_value(json!({
            "access_token": "access-value", "token_type": "bearer", "expires_in": 21600
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(!format!("{token:?}").contains("access-value"));
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
