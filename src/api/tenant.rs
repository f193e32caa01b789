//! `QlikTenant`: a tenant connection, like cert-manager's Issuer. No I/O.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::core::Duration;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

pub use super::client_managed::{
    CertificateSecretRef, ClientManagedSpec, SiteUser, VirtualProxyStatus,
};
use super::common::{CEL_CLIENT_ID, MAX_CONDITIONS, MSG_CLIENT_ID, SecretKeyRef};
pub use super::header::{
    HeaderMode, HeaderSource, HeaderSpec, HeaderTarget, TargetKind, TargetStatus,
};

/// CEL for `spec.url`: `https://`, a host (DNS labels of 1-63 characters, or a bracketed
/// IPv6 address), an optional port 1-65535, an optional `/`, nothing else.
pub const CEL_TENANT_URL: &str = r#"self.matches(r"^https://([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?/?$")"#;
/// The longest `spec.url`: `https://`, 253 for the host, a port and a `/`.
pub const MAX_URL_LEN: usize = 270;

/// A Qlik tenant the operator talks to, and where its compiled CSP header is published.
// clippy reads the repeated `printcolumn(type_ = ...)` arguments as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "qlikops.io",
    version = "v1alpha1",
    kind = "QlikTenant",
    namespaced,
    status = "QlikTenantStatus",
    shortname = "qt",
    category = "qlik",
    doc = "A Qlik tenant connection: its URL, the credential the operator uses, and where the tenant's compiled Content-Security-Policy header is published.",
    printcolumn(name = "URL", type_ = "string", json_path = ".spec.url"),
    printcolumn(
        name = "Site",
        type_ = "string",
        json_path = ".spec.clientManaged.url",
        priority = 1
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].reason"#
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.clientManaged) != has(self.url)").message("set url and credentials (Qlik Cloud) or clientManaged (Qlik Sense Enterprise on Windows), not both"))]
#[x_kube(validation = Rule::new("has(self.url) == has(self.credentials)").message("a Qlik Cloud tenant needs both url and credentials"))]
#[x_kube(validation = Rule::new("!has(self.clientManaged) || !has(self.caBundle)").message("caBundle is for Qlik Cloud tenants; a client-managed site's CA goes in its certificate Secret as root.pem"))]
#[x_kube(validation = Rule::new("!has(self.header) || has(self.clientManaged) || has(self.header.configMapName) || (has(self.header.targets) && size(self.header.targets) > 0)").message("set configMapName (ingress-nginx), targets (HTTPRoutes, Middlewares), or both"))]
#[x_kube(validation = Rule::new("!has(self.header) || has(self.clientManaged) || self.header.source == 'Local' || !has(self.header.baseDirectives)").message("baseDirectives only apply with source: Local"))]
#[x_kube(validation = Rule::new("!has(self.header) || !has(self.header.mode) || self.header.mode != 'Both' || ((has(self.clientManaged) || self.header.source == 'Local') && has(self.header.candidateDirectives))").message("mode: Both needs source: Local and candidateDirectives (the policy reported on)"))]
pub struct QlikTenantSpec {
    /// Qlik Cloud: the tenant's base URL, e.g. `https://acme.eu.qlikcloud.com`. HTTPS
    /// only, no path, query, fragment or user info; port 1-65535. Exclusive with
    /// `clientManaged`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 9, max = MAX_URL_LEN))]
    #[x_kube(validation = Rule::new(CEL_TENANT_URL).message("url must be an https:// URL with a host and no path, e.g. https://acme.eu.qlikcloud.com"))]
    pub url: Option<String>,

    /// Qlik Cloud: the credential the operator authenticates with; exactly one kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<TenantCredentials>,

    /// Qlik Sense Enterprise on Windows: the site's Repository Service, its client
    /// certificate, the user the operator acts as, and the virtual proxies that carry the
    /// header. Exclusive with `url` and `credentials`. The header is compiled by the
    /// operator from the CspEntries (`header.source: Local` is implied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_managed: Option<ClientManagedSpec>,

    /// Extra PEM-encoded CA certificates to trust for this tenant (private CAs, the
    /// emulator). Qlik Cloud only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub ca_bundle: Option<String>,

    /// Where the tenant's compiled CSP header is published. Omit to publish nothing (a
    /// client-managed site still publishes into its virtual proxies, with the defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<HeaderSpec>,

    /// How often the tenant's entries are checked for drift (Go duration, 30s to 24h).
    #[serde(default = "default_sync_interval")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('30s') && duration(self) <= duration('24h')").message("syncInterval must be a duration from 30s to 24h, e.g. 10m"))]
    pub sync_interval: Duration,

    /// Request budgets towards the tenant; the defaults stay below Qlik's tier limits.
    #[serde(default)]
    pub rate_limit: RateLimitSpec,
}

fn default_sync_interval() -> Duration {
    std::time::Duration::from_secs(600).into()
}

/// Exactly one credential kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.apiKey) != has(self.oauthClient)").message("exactly one of apiKey or oauthClient must be set"))]
pub struct TenantCredentials {
    /// An API key (bearer token) read from a Secret in this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<ApiKeyCredential>,
    /// An OAuth machine-to-machine client; its secret is read from a Secret in this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_client: Option<OAuthClientCredential>,
}

/// An API key kept in a Secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyCredential {
    /// The Secret key holding the API key.
    pub secret_ref: SecretKeyRef,
}

/// An OAuth M2M client (client credentials grant).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct OAuthClientCredential {
    /// The OAuth client's id.
    #[schemars(length(min = 1, max = 128))]
    #[x_kube(validation = Rule::new(CEL_CLIENT_ID).message(MSG_CLIENT_ID))]
    pub client_id: String,
    /// The Secret key holding the client secret.
    pub secret_ref: SecretKeyRef,
}

/// Requests per minute the operator allows itself towards the tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitSpec {
    /// Writes per minute (Qlik's tier: 100).
    #[serde(default = "default_writes_per_minute")]
    #[schemars(range(min = 1, max = 100))]
    pub writes_per_minute: u32,
    /// Reads per minute (Qlik's tier: 1000).
    #[serde(default = "default_reads_per_minute")]
    #[schemars(range(min = 1, max = 1000))]
    pub reads_per_minute: u32,
}

fn default_writes_per_minute() -> u32 {
    90
}

fn default_reads_per_minute() -> u32 {
    900
}

impl Default for RateLimitSpec {
    fn default() -> Self {
        RateLimitSpec {
            writes_per_minute: default_writes_per_minute(),
            reads_per_minute: default_reads_per_minute(),
        }
    }
}

/// Observed state of a `QlikTenant`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct QlikTenantStatus {
    /// `Ready` (reachable and authorized) and `HeaderPublished`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_CONDITIONS))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The generation the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The tenant's id, as reported by the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// The header last published (with `mode: Both`, the enforced one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<PublishedHeader>,
    /// With `mode: Both`: the candidate policy last published as
    /// `Content-Security-Policy-Report-Only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_header: Option<PublishedHeader>,
    /// What each of `spec.header.targets` holds (and targets removed from the spec until the
    /// operator has taken its header out of them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub targets: Vec<TargetStatus>,
    /// A client-managed site: the Repository Service's `buildVersion`, as `/qrs/about`
    /// reported it at the last connection check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub build_version: Option<String>,
    /// A client-managed site: what each of `clientManaged.virtualProxyPrefixes` holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub virtual_proxies: Vec<VirtualProxyStatus>,
}

impl QlikTenantStatus {
    /// What the status says of header target `kind`/`name`.
    pub fn target(&self, kind: TargetKind, name: &str) -> Option<&TargetStatus> {
        self.targets
            .iter()
            .find(|t| t.kind == kind && t.name == name)
    }
}

/// How the operator reaches a tenant: exactly one of the two kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connection<'a> {
    /// Qlik Cloud: `url` and `credentials`.
    Cloud {
        url: &'a str,
        credentials: &'a TenantCredentials,
    },
    /// Qlik Sense Enterprise on Windows: `clientManaged`.
    ClientManaged(&'a ClientManagedSpec),
}

/// The spec sets both kinds of connection, or neither (the CRD refuses it; an object
/// stored before the rule, or written around it, is reported, never guessed at).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "set url and credentials (Qlik Cloud) or clientManaged (Qlik Sense Enterprise on Windows), not both and not neither"
)]
pub struct AmbiguousConnection;

impl QlikTenantSpec {
    /// The connection the spec describes.
    pub fn connection(&self) -> Result<Connection<'_>, AmbiguousConnection> {
        match (&self.url, &self.credentials, &self.client_managed) {
            (Some(url), Some(credentials), None) => Ok(Connection::Cloud { url, credentials }),
            (None, None, Some(site)) => Ok(Connection::ClientManaged(site)),
            _ => Err(AmbiguousConnection),
        }
    }

    /// Whether this is a client-managed site (`clientManaged`).
    pub fn is_client_managed(&self) -> bool {
        self.client_managed.is_some()
    }

    /// The header to publish and how, as the controllers must read it: `header` as given
    /// for a Qlik Cloud tenant; for a client-managed site `header` with `source: Local`
    /// (it has no `generate-header`), or the defaults when `header` is omitted, since the
    /// site's virtual proxies always carry one.
    pub fn effective_header(&self) -> Option<Cow<'_, HeaderSpec>> {
        match (&self.header, self.is_client_managed()) {
            (None, false) => None,
            (Some(header), false) => Some(Cow::Borrowed(header)),
            (Some(header), true) if header.source == HeaderSource::Local => {
                Some(Cow::Borrowed(header))
            }
            (Some(header), true) => Some(Cow::Owned(HeaderSpec {
                source: HeaderSource::Local,
                ..header.clone()
            })),
            (None, true) => Some(Cow::Owned(HeaderSpec::local_defaults())),
        }
    }
}

impl QlikTenant {
    /// The SHA-256 of the header last published (the current policy's), if any.
    pub fn published_sha256(&self) -> Option<&str> {
        Some(self.status.as_ref()?.header.as_ref()?.sha256.as_str())
    }
}

/// A summary of the published header (never the credential, only public CSP text facts).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublishedHeader {
    /// SHA-256 of the header value, hex.
    pub sha256: String,
    /// Length of the header value in characters.
    pub length: u32,
    /// Number of origins in the header.
    pub origins: u32,
    /// When it was first published.
    pub published_at: Time,
}
