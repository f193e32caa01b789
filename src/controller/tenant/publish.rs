//! What publishing a header writes, and whether it must: the ConfigMap, and the Ingresses
//! that serve it. Pure.
//!
//! ingress-nginx reads the ConfigMap named by an Ingress's
//! `nginx.ingress.kubernetes.io/custom-headers` annotation only when the Ingress changes, so
//! every Ingress that names the header's ConfigMap carries [`HEADER_SHA256`]; bumping it
//! makes the controller reload with the new header.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use sha2::{Digest, Sha256};

use crate::api::ownership::{MANAGED_BY, MANAGED_BY_LABEL};
use crate::api::tenant::HeaderSpec;

/// Annotation on the ConfigMap and on the Ingresses serving it: SHA-256 (hex) of the header.
pub const HEADER_SHA256: &str = "qlikops.io/header-sha256";
/// The ingress-nginx annotation that names a ConfigMap of extra response headers.
pub const NGINX_CUSTOM_HEADERS: &str = "nginx.ingress.kubernetes.io/custom-headers";
/// The header name browsers read for a policy they only report on.
pub const REPORT_ONLY_KEY: &str = "Content-Security-Policy-Report-Only";
const ENFORCING_KEY: &str = "Content-Security-Policy";

/// Hex SHA-256 of a header value.
pub fn header_sha256(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// The ConfigMap key the header goes under: `reportOnly` turns the default key into the
/// report-only header; an explicit key is kept as written.
pub fn config_map_key(spec: &HeaderSpec) -> &str {
    if spec.report_only && spec.key == ENFORCING_KEY {
        REPORT_ONLY_KEY
    } else {
        &spec.key
    }
}

/// Whether the ConfigMap must be written: it is missing, or its value or annotation is not
/// the header's (also when someone edited it by hand).
pub fn config_map_needs_write(existing: Option<&ConfigMap>, key: &str, value: &str) -> bool {
    let Some(existing) = existing else {
        return true;
    };
    let data_matches = existing
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .is_some_and(|v| v == value);
    let annotation_matches = existing
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(HEADER_SHA256))
        .is_some_and(|sha| *sha == header_sha256(value));
    !(data_matches && annotation_matches)
}

/// The ConfigMap fields this operator owns: `key` and the annotation, so other keys and
/// annotations (someone else's) are left alone; and, for a ConfigMap the operator creates
/// (`owner`: the tenant), the managed-by label and the controller owner reference. A
/// ConfigMap the user opted in (`owner` is `None`) never gets either.
pub fn build_config_map(
    namespace: &str,
    spec: &HeaderSpec,
    value: &str,
    owner: Option<OwnerReference>,
) -> ConfigMap {
    let labels = owner
        .is_some()
        .then(|| BTreeMap::from([(MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned())]));
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(spec.config_map_name.clone()),
            namespace: Some(namespace.to_owned()),
            labels,
            annotations: Some(BTreeMap::from([(
                HEADER_SHA256.to_owned(),
                header_sha256(value),
            )])),
            owner_references: owner.map(|owner| vec![owner]),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            config_map_key(spec).to_owned(),
            value.to_owned(),
        )])),
        ..ConfigMap::default()
    }
}

/// Whether the Ingress with metadata `ingress` serves the ConfigMap `namespace/name`
/// through ingress-nginx's `custom-headers` annotation (`namespace/name`, or `name` for
/// its own namespace). Metadata only: the controller never reads an Ingress's spec.
pub fn ingress_serves(ingress: &ObjectMeta, namespace: &str, name: &str) -> bool {
    let own_namespace = ingress.namespace.as_deref().unwrap_or_default();
    let Some(reference) = ingress
        .annotations
        .as_ref()
        .and_then(|a| a.get(NGINX_CUSTOM_HEADERS))
    else {
        return false;
    };
    let (ref_namespace, ref_name) = reference
        .trim()
        .split_once('/')
        .unwrap_or((own_namespace, reference.trim()));
    ref_namespace == namespace && ref_name == name
}

/// Names of the Ingresses (by metadata) that serve the ConfigMap and do not yet carry
/// `sha256`.
pub fn ingresses_to_bump<'a>(
    ingresses: impl IntoIterator<Item = &'a ObjectMeta>,
    namespace: &str,
    config_map: &str,
    sha256: &str,
) -> Vec<String> {
    ingresses
        .into_iter()
        .filter(|ingress| ingress_serves(ingress, namespace, config_map))
        .filter(|ingress| {
            let current = ingress
                .annotations
                .as_ref()
                .and_then(|a| a.get(HEADER_SHA256));
            current.map(String::as_str) != Some(sha256)
        })
        .filter_map(|ingress| ingress.name.clone())
        .collect()
}

/// The server-side apply body that sets only the annotation on an Ingress.
pub fn ingress_annotation_patch(namespace: &str, name: &str, sha256: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": { HEADER_SHA256: sha256 },
        },
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::networking::v1::Ingress;

    use super::*;
    use crate::api::tenant::HeaderSource;

    fn spec(key: &str, report_only: bool) -> HeaderSpec {
        HeaderSpec {
            config_map_name: "csp".into(),
            key: key.into(),
            source: HeaderSource::Local,
            report_only,
            base_directives: None,
        }
    }

    fn config_map(key: &str, value: &str, sha: Option<&str>) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                annotations: sha
                    .map(|s| BTreeMap::from([(HEADER_SHA256.to_owned(), s.to_owned())])),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(key.to_owned(), value.to_owned())])),
            ..ConfigMap::default()
        }
    }

    fn ingress(name: &str, reference: Option<&str>, sha: Option<&str>) -> Ingress {
        let mut annotations = BTreeMap::new();
        if let Some(reference) = reference {
            annotations.insert(NGINX_CUSTOM_HEADERS.to_owned(), reference.to_owned());
        }
        if let Some(sha) = sha {
            annotations.insert(HEADER_SHA256.to_owned(), sha.to_owned());
        }
        Ingress {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("web".into()),
                annotations: Some(annotations),
                ..ObjectMeta::default()
            },
            ..Ingress::default()
        }
    }

    #[test]
    fn the_sha_is_the_hex_sha256_of_the_value() {
        assert_eq!(
            header_sha256(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            header_sha256("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn report_only_moves_only_the_default_key() {
        assert_eq!(config_map_key(&spec(ENFORCING_KEY, false)), ENFORCING_KEY);
        assert_eq!(config_map_key(&spec(ENFORCING_KEY, true)), REPORT_ONLY_KEY);
        assert_eq!(config_map_key(&spec("X-Custom-CSP", true)), "X-Custom-CSP");
    }

    #[test]
    fn the_config_map_is_written_only_when_value_or_annotation_differ() {
        let value = "default-src 'self'";
        let sha = header_sha256(value);
        assert!(config_map_needs_write(None, ENFORCING_KEY, value));
        assert!(!config_map_needs_write(
            Some(&config_map(ENFORCING_KEY, value, Some(&sha))),
            ENFORCING_KEY,
            value
        ));
        assert!(config_map_needs_write(
            Some(&config_map(ENFORCING_KEY, "edited by hand", Some(&sha))),
            ENFORCING_KEY,
            value
        ));
        assert!(config_map_needs_write(
            Some(&config_map(ENFORCING_KEY, value, None)),
            ENFORCING_KEY,
            value
        ));
        assert!(config_map_needs_write(
            Some(&config_map("other-key", value, Some(&sha))),
            ENFORCING_KEY,
            value
        ));
    }

    #[test]
    fn an_opted_in_config_map_gets_only_the_key_and_the_annotation() {
        let built = build_config_map("web", &spec(ENFORCING_KEY, false), "img-src 'self'", None);
        assert!(built.metadata.owner_references.is_none());
        assert!(built.metadata.labels.is_none());
        assert_eq!(
            built.metadata.annotations.as_ref().map(|a| a.len()),
            Some(1)
        );
        assert_eq!(built.data.as_ref().map(|d| d.len()), Some(1));
    }

    #[test]
    fn the_built_config_map_holds_the_value_the_annotation_and_the_owner() {
        let owner = OwnerReference {
            name: "acme".into(),
            uid: "u-1".into(),
            kind: "QlikTenant".into(),
            ..OwnerReference::default()
        };
        let built = build_config_map(
            "web",
            &spec(ENFORCING_KEY, true),
            "img-src 'self'",
            Some(owner),
        );
        assert_eq!(
            built
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(MANAGED_BY_LABEL))
                .map(String::as_str),
            Some(MANAGED_BY)
        );
        assert_eq!(built.metadata.name.as_deref(), Some("csp"));
        assert_eq!(
            built
                .data
                .as_ref()
                .and_then(|d| d.get(REPORT_ONLY_KEY))
                .map(String::as_str),
            Some("img-src 'self'")
        );
        assert!(!config_map_needs_write(
            Some(&built),
            REPORT_ONLY_KEY,
            "img-src 'self'"
        ));
        assert_eq!(
            built
                .metadata
                .owner_references
                .map(|o| o[0].uid.clone())
                .as_deref(),
            Some("u-1")
        );
    }

    #[test]
    fn only_ingresses_naming_the_config_map_and_lacking_the_sha_are_bumped() {
        let ingresses = [
            ingress("qualified", Some("web/csp"), None),
            ingress("bare-name", Some("csp"), Some("old")),
            ingress("up-to-date", Some("web/csp"), Some("new")),
            ingress("other-map", Some("web/other"), None),
            ingress("other-namespace", Some("prod/csp"), None),
            ingress("no-annotation", None, None),
        ];
        assert_eq!(
            ingresses_to_bump(ingresses.iter().map(|i| &i.metadata), "web", "csp", "new"),
            ["qualified", "bare-name"]
        );
    }

    #[test]
    fn the_ingress_patch_sets_only_the_annotation() {
        let patch = ingress_annotation_patch("web", "app", "abc");
        assert_eq!(
            patch["metadata"]["annotations"],
            serde_json::json!({ HEADER_SHA256: "abc" })
        );
        assert!(patch.get("spec").is_none());
    }
}
