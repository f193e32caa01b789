//! Wire types of the Qlik Cloud APIs the operator uses, as Qlik's API definitions spell
//! them, one module per API, and conversions to and from [`crate::csp`]. No I/O.
//!
//! Responses are decoded leniently: unknown fields are ignored and optional fields
//! default, so that a tenant adding fields never breaks the operator. Credentials in
//! responses are [`SecretString`](secrecy::SecretString)s.
//!
//! - here: the paging shared by the list endpoints ([`Page`], [`Links`], [`Link`]);
//! - `csp_origins`: `csp-origins` (entries and the generated header);
//! - `api_keys`: `api-keys` (keys, their settings, ISO 8601 durations);
//! - `oauth_clients`: `oauth-clients` (clients and their secrets);
//! - `oauth_token`: `oauth/token` (the access token exchange);
//! - `identity`: `users` and `tenants`.
//!
//! Every type is re-exported here: `crate::tenant::wire::X` is the path to use.

use serde::{Deserialize, Serialize};

mod api_keys;
mod csp_origins;
mod identity;
mod oauth_clients;
mod oauth_token;

pub use api_keys::{
    ApiKey, ApiKeyStatus, ApiKeysConfig, CreatedApiKey, NewApiKey, iso8601_duration,
    parse_iso8601_duration,
};
pub use csp_origins::{CspHeader, CspOrigin, CspOriginContent};
pub use identity::{Tenant, User};
pub use oauth_clients::{ClientSecretHint, CreatedClientSecret, OAuthClient};
pub(crate) use oauth_token::TokenResponse;

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_page_without_links_is_the_last() {
        let page: Page<CspOrigin> =
            serde_json::from_value(json!({"data": []})).unwrap_or_else(|e| panic!("{e}"));
        assert!(page.links.next.is_none());
    }
}
