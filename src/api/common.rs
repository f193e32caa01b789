//! Types shared by the three custom resources. No I/O.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// The API group of every kind this operator owns.
pub const GROUP: &str = "qlikops.io";
/// The served and stored version.
pub const VERSION: &str = "v1alpha1";

/// CEL: a lowercase RFC 1123 subdomain, the name of most Kubernetes objects.
pub const CEL_OBJECT_NAME: &str =
    r#"self.matches(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")"#;
/// CEL: a key of a Secret's or ConfigMap's data.
pub const CEL_DATA_KEY: &str = r#"self.matches(r"^[-._a-zA-Z0-9]+$")"#;
/// Message for [`CEL_DATA_KEY`].
pub const MSG_DATA_KEY: &str = "key must consist of alphanumerics, '-', '_' or '.'";
/// CEL: an OAuth client id as Qlik issues them (letters, digits, `-`, `_`): it becomes a
/// segment of a tenant URL path, so nothing that could climb out of it.
pub const CEL_CLIENT_ID: &str = r#"self.matches(r"^[A-Za-z0-9_-]+$")"#;
/// Message for [`CEL_CLIENT_ID`].
pub const MSG_CLIENT_ID: &str = "clientId must consist of letters, digits, '-' and '_'";
/// The most conditions a status holds (each controller sets at most four types).
pub const MAX_CONDITIONS: usize = 16;

/// A reference to a `QlikTenant` in the same namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
pub struct TenantRef {
    /// Name of the `QlikTenant` in this namespace.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(CEL_OBJECT_NAME).message("name must be a valid object name (lowercase RFC 1123 subdomain)"))]
    pub name: String,
}

impl TenantRef {
    /// The key of the `QlikTenant` this names for an object in `namespace`: what every
    /// per-tenant cache and map is keyed by.
    pub fn key_in(&self, namespace: Option<&str>) -> super::TenantKey {
        (namespace.unwrap_or_default().to_owned(), self.name.clone())
    }
}

/// A key of a Secret in the same namespace as the resource that names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
pub struct SecretKeyRef {
    /// Name of the Secret (same namespace; Secrets in other namespaces are never read).
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(CEL_OBJECT_NAME).message("name must be a valid Secret name (lowercase RFC 1123 subdomain)"))]
    pub name: String,
    /// Key within the Secret's data.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(CEL_DATA_KEY).message(MSG_DATA_KEY))]
    pub key: String,
}
