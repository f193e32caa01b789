//! Types shared by the three custom resources. No I/O.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// The API group of every kind this operator owns.
pub const GROUP: &str = "qlikops.io";
/// The served and stored version.
pub const VERSION: &str = "v1alpha1";

/// A reference to a `QlikTenant` in the same namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
pub struct TenantRef {
    /// Name of the `QlikTenant` in this namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// A key of a Secret in the same namespace as the resource that names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
pub struct SecretKeyRef {
    /// Name of the Secret (same namespace; Secrets in other namespaces are never read).
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(r#"self.matches(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")"#).message("name must be a valid Secret name (lowercase RFC 1123 subdomain)"))]
    pub name: String,
    /// Key within the Secret's data.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(r#"self.matches(r"^[-._a-zA-Z0-9]+$")"#).message("key must consist of alphanumerics, '-', '_' or '.'"))]
    pub key: String,
}
