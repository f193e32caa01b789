//! The Qlik tenant boundary: a typed client for the Qlik Cloud APIs the operator uses
//! (CSP origins, API keys, OAuth client secrets, identity, and the targets secrets are
//! pushed into: data connections, automation connections, the tenant's email
//! configuration, and automations with their execution tokens), with its wire types,
//! auth, rate limiting, retries and one error type. Does network I/O (HTTPS only).
//!
//! ```no_run
//! # use qlik_csp_operator::tenant::{ClientConfig, Credential, CredentialSource, TenantClient};
//! # async fn example(token: String) -> Result<(), qlik_csp_operator::tenant::Error> {
//! let client = TenantClient::new(
//!     ClientConfig::new("https://acme.eu.qlikcloud.com"),
//!     Credential::api_key(token),
//!     CredentialSource::Secret {
//!         namespace: "qlik".into(),
//!         name: "qlik-admin".into(),
//!         key: "api-key".into(),
//!     },
//! )?;
//! let entries = client.list_csp_origins().await?;
//! # Ok(()) }
//! ```
//!
//! - [`client`]: the HTTP core (send, retry, rate limit, auth, error mapping).
//! - [`csp_origins`], [`api_keys`], [`oauth_clients`], [`identity`]: the operations.
//! - [`data_connections`], [`automation_connections`], [`email_config`]: pushing
//!   credentials into the tenant (each module says why `PATCH` or `PUT`, and which writes
//!   are retried); [`automations`]: renewing an automation's execution token by copying
//!   it, and the URL that runs it with the token.
//!
//! Every write goes through the same rate limiting and retries; a write that carries a
//! credential declares it, so that the tenant's error answers are scrubbed of it too.
//! - [`wire`]: the JSON types, as Qlik's API definitions spell them.
//! - [`error`]: the one error type; [`error_body`]: what the tenant said, decoded
//!   leniently and scrubbed of credentials.
//! - [`auth`], [`rate_limit`], [`retry`], and private `tls`, `token` (the OAuth exchange)
//!   and `urls`: the parts.
//! - [`qrs`]: the client for a client-managed site (Qlik Sense Enterprise on Windows)
//!   through its Repository Service API: mutual TLS, Xrfkey, virtual proxies and data
//!   connections, with the same error type, retries and pause on 429.
//!
//! Depends on [`crate::csp`] only, for conversions.

pub mod api_keys;
pub mod auth;
pub mod automation_connections;
pub mod automations;
pub mod client;
pub mod csp_origins;
pub mod data_connections;
pub mod email_config;
pub mod environment;
pub mod error;
pub mod error_body;
pub mod identity;
pub mod oauth_clients;
pub mod qrs;
pub mod rate_limit;
pub mod retry;
mod tls;
mod token;
mod urls;
pub mod wire;

pub use auth::{Credential, CredentialSource};
pub use automations::EXECUTION_TOKEN_HEADER;
pub use client::{ClientConfig, Deleted, TenantClient, USER_AGENT};
pub use csp_origins::CspOriginQuery;
pub use error::{ApiError, ApiErrors, Error};
pub use rate_limit::RateLimits;
pub use retry::RetryPolicy;
pub use wire::{
    ApiKey, ApiKeyStatus, ApiKeysConfig, Automation, AutomationConnection,
    AutomationConnectionCheck, AutomationConnectionParam, AutomationConnectionParamValue,
    AutomationRunMode, AutomationState, AutomationSummary, ClientSecretHint, CreatedApiKey,
    CreatedClientSecret, CspHeader, CspOrigin, CspOriginContent, DataConnection,
    DataConnectionCredentials, EmailConfig, EmailProviderConfig, NewApiKey, OAuthClient,
    SmtpConfigStatus, SmtpVerification, Tenant, User,
};
