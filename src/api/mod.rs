//! The custom resources (group `qlikops.io`, version `v1alpha1`): types, schema, CEL rules,
//! printer columns and defaults. No I/O.

pub mod client_managed;
pub mod common;
pub mod csp_entry;
pub mod entry_rules;
pub mod header;
pub mod ownership;
pub mod reasons;
pub mod secret_push;
pub mod secret_rotation;
pub mod tenant;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use common::{GROUP, SecretKeyRef, TenantRef, VERSION};
pub use csp_entry::{CspEntry, CspEntrySpec, CspEntryStatus, DeletionPolicy, DirectiveName};
pub use entry_rules::TenantKey;
pub use secret_push::{SecretPush, SecretPushSpec, SecretPushStatus};
pub use secret_rotation::{SecretRotation, SecretRotationSpec, SecretRotationStatus};
pub use tenant::{QlikTenant, QlikTenantSpec, QlikTenantStatus};

/// Every CRD this operator serves, with the file stem it is written under in `crds/`.
pub fn crds() -> Vec<(&'static str, CustomResourceDefinition)> {
    vec![
        ("qliktenants", QlikTenant::crd()),
        ("cspentries", CspEntry::crd()),
        ("secretrotations", SecretRotation::crd()),
        ("secretpushes", SecretPush::crd()),
    ]
}

/// Renders a CRD as the YAML document that is checked in under `crds/`.
pub fn crd_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_norway::Error> {
    let body = serde_norway::to_string(crd)?;
    Ok(format!(
        "# Generated from the Rust types in src/api by `cargo xtask crds`; do not edit.\n{body}"
    ))
}
