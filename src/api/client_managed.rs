//! `QlikTenant.spec.clientManaged`: a Qlik Sense Enterprise on Windows site reached through
//! its Repository Service (QRS) API, the alternative to a Qlik Cloud tenant's `url` and
//! `credentials`. No I/O.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::common::CEL_OBJECT_NAME;
use super::tenant::{CEL_TENANT_URL, MAX_URL_LEN};

/// The Secret key holding the client certificate (PEM), as the QMC exports it.
pub const CLIENT_CERT_KEY: &str = "client.pem";
/// The Secret key holding the client certificate's private key (PEM).
pub const CLIENT_KEY_KEY: &str = "client_key.pem";
/// The optional Secret key holding the site's root CA (PEM), which signed the QRS's
/// serving certificate.
pub const ROOT_CA_KEY: &str = "root.pem";
/// The most virtual proxies one site publishes to.
pub const MAX_VIRTUAL_PROXIES: usize = 8;

/// A client-managed Qlik Sense site: its QRS endpoint, the certificate the operator
/// authenticates with, the user it acts as, and the virtual proxies that carry the
/// compiled CSP header. The header is always compiled by the operator from the tenant's
/// CspEntries (`header.source: Local` is implied; `source: Tenant` is ignored here).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientManagedSpec {
    /// The Repository Service's URL, e.g. `https://qlik.example.com:4242`. HTTPS only, no
    /// path; the operator's host allow-list applies to it as to a cloud tenant's URL.
    #[schemars(length(min = 9, max = MAX_URL_LEN))]
    #[x_kube(validation = Rule::new(CEL_TENANT_URL).message("clientManaged.url must be an https:// URL with a host and no path, e.g. https://qlik.example.com:4242"))]
    pub url: String,

    /// The Secret (this namespace) with the certificate exported from the QMC:
    /// `client.pem`, `client_key.pem` and, optionally, `root.pem` (the site's CA, trusted
    /// for this site only). A new certificate in the Secret is used from the next check.
    pub certificate_secret_ref: CertificateSecretRef,

    /// The user the operator acts as (`X-Qlik-User`), e.g. `INTERNAL\sa_api`: its
    /// security rules decide what the operator may change.
    pub user: SiteUser,

    /// The virtual proxies (by prefix; `""` is the default virtual proxy) whose
    /// `additionalResponseHeaders` carry the header. The operator changes only its own
    /// header lines there, never the others. Letters, digits, `-`, `_` and `.`, as the QMC
    /// shows a prefix, without slashes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_VIRTUAL_PROXIES), inner(length(max = 100)))]
    #[x_kube(validation = Rule::new("self.all(p, p.matches(r'^[A-Za-z0-9._-]*$'))").message("virtualProxyPrefixes are prefixes as the QMC shows them, without slashes, e.g. sales; \"\" is the default virtual proxy"))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub virtual_proxy_prefixes: Vec<String>,
}

/// The Secret with the site's client certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
pub struct CertificateSecretRef {
    /// Name of the Secret (same namespace).
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(CEL_OBJECT_NAME).message("name must be a valid Secret name (lowercase RFC 1123 subdomain)"))]
    pub name: String,
}

/// A Qlik Sense user: `UserDirectory` and `UserId` of the `X-Qlik-User` header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteUser {
    /// The user directory, e.g. `INTERNAL`.
    #[schemars(length(min = 1, max = 255))]
    #[x_kube(validation = Rule::new(CEL_USER_PART).message("userDirectory must not contain ';', '=' or control characters"))]
    pub user_directory: String,
    /// The user id, e.g. `sa_api`.
    #[schemars(length(min = 1, max = 255))]
    #[x_kube(validation = Rule::new(CEL_USER_PART).message("userId must not contain ';', '=' or control characters"))]
    pub user_id: String,
}

/// CEL: a part of `X-Qlik-User` (`UserDirectory=…; UserId=…`): nothing that would end the
/// part or the header.
const CEL_USER_PART: &str = r#"self.matches(r"^[^;=\x00-\x1f\x7f]+$")"#;

/// What the operator last wrote into one virtual proxy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualProxyStatus {
    /// The virtual proxy's prefix (`""`: the default one).
    #[schemars(length(max = 100))]
    pub prefix: String,
    /// Whether its `additionalResponseHeaders` carry the current header.
    pub published: bool,
    /// `Published`, or why not (`VirtualProxyNotFound`, `HeaderTooLongForTarget`,
    /// `VirtualProxyConflict`, `TargetWriteFailed`).
    #[schemars(length(max = 64))]
    pub reason: String,
    /// A sentence for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 1024))]
    pub message: String,
    /// SHA-256 (hex) of the header value the operator last wrote there (with `mode: Both`,
    /// of the enforced one); kept when a newer header could not be written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}
