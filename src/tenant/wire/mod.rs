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
//! - `identity`: `users` and `tenants`;
//! - `data_connections`: `data-connections` (a connection, the credentials pushed into it);
//! - `automation_connections`: `automation-connections` (parameters, `actions/check`);
//! - `email_config`: `transports` (the tenant's email configuration, `verify-connection`);
//! - `automations`: `automations` (Qlik Automate: execution token, copy);
//! - `json_patch` (crate-private): the JSON Patch bodies that carry credentials;
//! - `lenient` (crate-private): decoders for fields whose examples and types disagree.
//!
//! Every type is re-exported here: `crate::tenant::wire::X` is the path to use.

use serde::{Deserialize, Serialize};

mod api_keys;
mod automation_connections;
mod automations;
mod csp_origins;
mod data_connections;
mod email_config;
mod identity;
pub(crate) mod json_patch;
mod lenient;
mod oauth_clients;
mod oauth_token;

pub use api_keys::{
    ApiKey, ApiKeyStatus, ApiKeysConfig, CreatedApiKey, NewApiKey, iso8601_duration,
    parse_iso8601_duration,
};
pub(crate) use automation_connections::AutomationConnectionPut;
pub use automation_connections::{
    AutomationConnection, AutomationConnectionCheck, AutomationConnectionParam,
    AutomationConnectionParamValue,
};
pub use automations::{Automation, AutomationRunMode, AutomationState, AutomationSummary};
pub(crate) use automations::{CopiedAutomation, CopyAutomation};
pub use csp_origins::{CspHeader, CspOrigin, CspOriginContent};
pub use data_connections::{DataConnection, DataConnectionCredentials};
pub(crate) use email_config::credentials_patch as email_credentials_patch;
pub use email_config::{
    BASIC_AUTH, CONFIG_NOT_SET, EmailConfig, EmailProviderConfig, MICROSOFT_365, SmtpConfigStatus,
    SmtpVerification,
};
pub(crate) use email_config::{EmailConfigPut, PutRefusal as EmailConfigPutRefusal};
pub use identity::{Tenant, User};
pub use oauth_clients::{ClientSecretHint, CreatedClientSecret, OAuthClient};
pub(crate) use oauth_token::TokenResponse;

/// A navigation link in a paged list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The URL (absolute, or relative to the tenant); empty when the tenant sent `null`
    /// (the `automations` API defines `href` as nullable), which ends the list.
    #[serde(default, deserialize_with = "lenient::string_or_empty")]
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

/// One page of a list (`CSPEntryList`, `api-key-page`, `Connections`, `AutomationList`).
#[derive(Clone, Debug, Deserialize)]
pub struct Page<T> {
    /// The items on this page.
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    /// Links to the neighbouring pages.
    #[serde(default)]
    pub links: Links,
    /// Errors about items the tenant could not include (`Connections.errors`: "when some
    /// of connections are not returned due to errors"); `Null` when absent.
    #[serde(default)]
    pub errors: serde_json::Value,
}

impl<T> Page<T> {
    /// Whether the tenant says it left items out of this page.
    pub fn left_items_out(&self) -> bool {
        self.errors.as_array().is_some_and(|e| !e.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_page_whose_next_link_is_null_is_the_last() {
        // `AutomationList.links.next` is a `PaginationLink`, whose `href` is nullable.
        let page: Page<AutomationSummary> = serde_json::from_value(json!({
            "data": [{"id": "a1", "name": "n"}],
            "links": {"next": {"href": null}, "prev": {"href": null}}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(page.data.len(), 1);
        assert!(page.links.next.as_ref().is_some_and(|l| l.href.is_empty()));
        assert!(!page.left_items_out());
    }

    #[test]
    fn a_page_without_links_is_the_last() {
        let page: Page<CspOrigin> =
            serde_json::from_value(json!({"data": []})).unwrap_or_else(|e| panic!("{e}"));
        assert!(page.links.next.is_none());
    }
}
