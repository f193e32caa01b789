//! One [`TenantClient`] per `QlikTenant`, shared by every controller. Reads Secrets (only
//! in the tenant's own namespace).
//!
//! The client is rebuilt when the connection settings change (URL, CA bundle, budgets) and
//! handed a new credential when the Secret changes or `spec.credentials` selects another
//! one (another Secret, key, kind or `clientId`: at once, not when the Secret next
//! changes), so a credential change keeps the rate limiter's history and the connection
//! pool. The Secret is read again at most every `secret_max_age`, not on every reconcile of
//! every CspEntry.
//!
//! Clients of deleted tenants are dropped by the `tenant` controller, which sees tenants
//! leave its store ([`TenantClients::forget`], [`TenantClients::retain`]).
//!
//! Every tenant's URL host is checked against the [`AllowedHosts`] first, before its
//! Secret is read, so no credential is ever read for, or sent to, a host not allowed.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::{Client, ResourceExt};
use tokio::time::Instant;

use super::allowed_hosts::AllowedHosts;
use super::backoff::TenantState;
use super::tenant::credentials::{self, CredentialError};
use crate::api::QlikTenant;
use crate::api::tenant::{Connection, TenantCredentials};
use crate::tenant::{self, ClientConfig, RateLimits, TenantClient};

pub use crate::api::TenantKey;

/// The key of a `QlikTenant`.
pub fn key_of(tenant: &QlikTenant) -> TenantKey {
    (tenant.namespace().unwrap_or_default(), tenant.name_any())
}

/// Why no client could be had for a tenant.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The tenant's URL host is not in the operator's allow-list (`--allowed-tenant-hosts`).
    #[error("tenant host {host:?} is not allowed by the operator (allowed: {allowed})")]
    HostNotAllowed { host: String, allowed: String },
    /// The credential's Secret is missing or unusable.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// The Secret could not be read from the apiserver.
    #[error("failed to read Secret {namespace}/{name}")]
    ReadSecret {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    /// The client could not be built (URL, CA bundle).
    #[error(transparent)]
    Client(#[from] tenant::Error),
    /// The tenant is a client-managed site, reached through QRS: this needs a Qlik Cloud
    /// tenant (API keys, OAuth clients, automations, CSP origins).
    #[error(
        "the tenant is a client-managed Qlik Sense site (clientManaged), which this needs a Qlik Cloud tenant for"
    )]
    ClientManaged,
    /// A QRS client was asked for a Qlik Cloud tenant.
    #[error("the tenant is a Qlik Cloud tenant, not a client-managed site")]
    NotClientManaged,
}

impl AccessError {
    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            AccessError::HostNotAllowed { .. } => "HostNotAllowed",
            AccessError::Credential(e) => e.reason(),
            AccessError::ReadSecret { .. } => "SecretUnreadable",
            AccessError::Client(e) => e.reason(),
            AccessError::ClientManaged | AccessError::NotClientManaged => "Unsupported",
        }
    }

    /// Whether retrying without a change can help.
    pub fn is_transient(&self) -> bool {
        matches!(self, AccessError::ReadSecret { .. })
    }
}

/// What a client is built from, besides the credential.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Settings {
    url: String,
    ca_bundle: Option<String>,
    writes_per_minute: u32,
    reads_per_minute: u32,
}

struct Cached {
    settings: Settings,
    /// What selects the credential: kind, Secret, key, `clientId`. A change swaps the
    /// credential at once, whether or not the Secret changed.
    credentials: TenantCredentials,
    /// The credential Secret's name (in the tenant's namespace).
    secret_name: String,
    /// Set when the operator itself wrote the Secret: read it again before the next use.
    stale: bool,
    secret_version: Option<String>,
    secret_read_at: Instant,
    client: TenantClient,
}

/// The registry.
pub struct TenantClients {
    clients: Mutex<HashMap<TenantKey, Cached>>,
    /// The QRS clients of client-managed sites ([`super::site_clients`]).
    pub(super) sites: Mutex<HashMap<TenantKey, super::site_clients::CachedSite>>,
    pub(super) secret_max_age: Duration,
    /// Applied to every client built (timeouts, retries); URL, CA and budgets come from the
    /// `QlikTenant`.
    pub(super) template: ClientConfig,
    allowed_hosts: AllowedHosts,
}

impl TenantClients {
    /// A registry allowing only Qlik's cloud hosts ([`AllowedHosts::default`]).
    pub fn new(template: ClientConfig, secret_max_age: Duration) -> TenantClients {
        TenantClients {
            clients: Mutex::default(),
            sites: Mutex::default(),
            secret_max_age,
            template,
            allowed_hosts: AllowedHosts::default(),
        }
    }

    /// Replaces the host allow-list.
    pub fn with_allowed_hosts(mut self, allowed_hosts: AllowedHosts) -> TenantClients {
        self.allowed_hosts = allowed_hosts;
        self
    }

    /// The client for `tenant`, built or refreshed as needed.
    pub async fn for_tenant(
        &self,
        kube: &Client,
        tenant: &QlikTenant,
    ) -> Result<TenantClient, AccessError> {
        let (url, selected) = match tenant.spec.connection() {
            Ok(Connection::Cloud { url, credentials }) => (url, credentials),
            Ok(Connection::ClientManaged(_)) => return Err(AccessError::ClientManaged),
            Err(_) => return Err(AccessError::Credential(CredentialError::Ambiguous)),
        };
        self.check_host(url)?;
        let key = key_of(tenant);
        let settings = Settings {
            url: url.to_owned(),
            ca_bundle: tenant.spec.ca_bundle.clone(),
            writes_per_minute: tenant.spec.rate_limit.writes_per_minute,
            reads_per_minute: tenant.spec.rate_limit.reads_per_minute,
        };
        if let Some(client) = self.fresh(&key, &settings, selected) {
            return Ok(client);
        }

        let (secret_name, _) = credentials::secret_ref(selected)?;
        let secrets: Api<Secret> = Api::namespaced(kube.clone(), &key.0);
        let secret =
            secrets
                .get_opt(secret_name)
                .await
                .map_err(|source| AccessError::ReadSecret {
                    namespace: key.0.clone(),
                    name: secret_name.to_owned(),
                    source,
                })?;
        let (credential, source) = credentials::credential(selected, &key.0, secret.as_ref())?;
        let secret_version = secret.as_ref().and_then(|s| s.resource_version());

        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cached) = clients.get_mut(&key).filter(|c| c.settings == settings) {
            if cached.secret_version != secret_version || cached.credentials != *selected {
                cached.client.set_credential(credential, source);
                cached.secret_version = secret_version;
                cached.credentials = selected.clone();
            }
            cached.secret_read_at = Instant::now();
            cached.stale = false;
            secret_name.clone_into(&mut cached.secret_name);
            return Ok(cached.client.clone());
        }
        let mut config = self.template.clone();
        config.base_url = settings.url.clone();
        config.ca_bundle = settings.ca_bundle.clone();
        config.rate_limits = RateLimits {
            writes_per_minute: settings.writes_per_minute,
            reads_per_minute: settings.reads_per_minute,
        };
        let client = TenantClient::new(config, credential, source)?;
        // A client rebuilt for the same tenant (new CA or budgets) keeps the pause the
        // tenant asked for; a new URL is another tenant.
        if let Some(previous) = clients.get(&key).filter(|c| c.settings.url == settings.url) {
            client.carry_pause_from(&previous.client);
        }
        let cached = Cached {
            settings,
            credentials: selected.clone(),
            secret_name: secret_name.to_owned(),
            stale: false,
            secret_version,
            secret_read_at: Instant::now(),
            client: client.clone(),
        };
        clients.insert(key, cached);
        Ok(client)
    }

    /// When the tenant last answered a request (see [`TenantClient::answered_at`]), if it
    /// has a client; no I/O.
    pub fn answered_at(&self, key: &TenantKey) -> Option<Instant> {
        self.clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .and_then(|cached| cached.client.answered_at())
    }

    /// What the shared backoff knows of tenant `key` when one of its objects failed: the
    /// remaining `Retry-After` pause, if one is in force, and when the tenant last answered
    /// (so a failure the tenant's other requests do not share waits a minute at most).
    pub fn backoff_state(&self, key: &TenantKey, pause: Option<Duration>) -> TenantState {
        TenantState {
            pause,
            answered_at: self.answered_at(key),
        }
    }

    /// Forgets the tenant's client (deleted tenant) or forces the Secret to be read again
    /// (after a 401).
    pub fn forget(&self, key: &TenantKey) {
        self.clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
        self.sites
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    /// Keeps only the clients of tenants for which `keep` holds (those still in the store).
    pub fn retain(&self, mut keep: impl FnMut(&TenantKey) -> bool) {
        self.clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|key, _| keep(key));
        self.sites
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|key, _| keep(key));
    }

    /// How many tenants have a client cached (cloud tenants and client-managed sites).
    pub fn len(&self) -> usize {
        let clients = self
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        clients
            + self
                .sites
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len()
    }

    /// Whether no client is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Refuses a URL that does not parse or whose host is not allowed.
    pub(crate) fn check_host(&self, url: &str) -> Result<(), AccessError> {
        let parsed = url::Url::parse(url).map_err(|source| tenant::Error::InvalidUrl {
            url: url.to_owned(),
            source,
        })?;
        match parsed.host_str() {
            Some(host) if self.allowed_hosts.allows(host) => Ok(()),
            host => Err(AccessError::HostNotAllowed {
                host: host.unwrap_or_default().to_owned(),
                allowed: self.allowed_hosts.to_string(),
            }),
        }
    }

    /// The operator wrote Secret `namespace/name` (a rotation): every tenant that
    /// authenticates with it reads it again before its next call, so the operator switches
    /// to the new credential at once rather than after `secret_max_age`.
    pub fn secret_written(&self, namespace: &str, name: &str) {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        for (key, cached) in clients.iter_mut() {
            if key.0 == namespace && cached.secret_name == name {
                cached.stale = true;
            }
        }
    }

    fn fresh(
        &self,
        key: &TenantKey,
        settings: &Settings,
        selected: &TenantCredentials,
    ) -> Option<TenantClient> {
        let clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        clients
            .get(key)
            .filter(|c| {
                c.settings == *settings
                    && c.credentials == *selected
                    && !c.stale
                    && c.secret_read_at.elapsed() < self.secret_max_age
            })
            .map(|c| c.client.clone())
    }
}
