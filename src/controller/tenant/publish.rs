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

use super::publication::Publication;
use crate::api::ownership::{MANAGED_BY, MANAGED_BY_LABEL};

/// Annotation on the ConfigMap and on the Ingresses serving it: SHA-256 (hex) of the header.
pub const HEADER_SHA256: &str = "qlikops.io/header-sha256";
/// The ingress-nginx annotation that names a ConfigMap of extra response headers.
pub const NGINX_CUSTOM_HEADERS: &str = "nginx.ingress.kubernetes.io/custom-headers";
/// Hex SHA-256 of a header value.
pub fn header_sha256(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// Whether the ConfigMap must be written: it is missing, a published value or the
/// annotation differs (also when someone edited it by hand), or it still holds a header
/// name of `owned` that is no longer published (after a mode change).
pub fn config_map_needs_write(
    existing: Option<&ConfigMap>,
    publication: &Publication,
    owned: &[&str],
) -> bool {
    let Some(existing) = existing else {
        return true;
    };
    let data = existing.data.as_ref();
    let value_of = |key: &str| data.and_then(|d| d.get(key)).map(String::as_str);
    let values_match = publication
        .values()
        .all(|(name, value)| value_of(name) == Some(value));
    let no_stale = owned
        .iter()
        .filter(|name| {
            !publication
                .values()
                .any(|(published, _)| published == **name)
        })
        .all(|name| value_of(name).is_none());
    let annotation_matches = existing
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(HEADER_SHA256))
        .is_some_and(|sha| *sha == publication.sha256());
    !(values_match && no_stale && annotation_matches)
}

/// The ConfigMap fields this operator owns: one key per published header and the
/// annotation, so other keys and annotations (someone else's) are left alone; and, for a
/// ConfigMap the operator creates (`owner`: the tenant), the managed-by label and the
/// controller owner reference. A ConfigMap the user opted in (`owner` is `None`) never
/// gets either.
pub fn build_config_map(
    namespace: &str,
    name: &str,
    publication: &Publication,
    owner: Option<OwnerReference>,
) -> ConfigMap {
    let labels = owner
        .is_some()
        .then(|| BTreeMap::from([(MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned())]));
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels,
            annotations: Some(BTreeMap::from([(
                HEADER_SHA256.to_owned(),
                publication.sha256(),
            )])),
            owner_references: owner.map(|owner| vec![owner]),
            ..ObjectMeta::default()
        },
        data: Some(
            publication
                .values()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect(),
        ),
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
    use crate::api::header::{ENFORCING_HEADER, HeaderSpec, REPORT_ONLY_HEADER};
    use crate::csp::header::validate;

    fn spec(mode: &str) -> HeaderSpec {
        serde_json::from_value(serde_json::json!({ "configMapName": "csp", "mode": mode }))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn publication(mode: &str, value: &str) -> Publication {
        let candidate = (mode == "Both").then(|| validate("default-src 'none'").unwrap());
        Publication::new(&spec(mode), validate(value).unwrap(), candidate).unwrap()
    }

    const OWNED: [&str; 2] = [ENFORCING_HEADER, REPORT_ONLY_HEADER];

    fn config_map(pairs: &[(&str, &str)], sha: Option<&str>) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                annotations: sha
                    .map(|s| BTreeMap::from([(HEADER_SHA256.to_owned(), s.to_owned())])),
                ..ObjectMeta::default()
            },
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
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
    fn the_config_map_is_written_only_when_a_value_a_stale_key_or_the_annotation_differ() {
        let value = "default-src 'self'";
        let enforce = publication("Enforce", value);
        let sha = enforce.sha256();
        assert!(config_map_needs_write(None, &enforce, &OWNED));
        assert!(!config_map_needs_write(
            Some(&config_map(
                &[(ENFORCING_HEADER, value), ("other", "x")],
                Some(&sha)
            )),
            &enforce,
            &OWNED
        ));
        assert!(config_map_needs_write(
            Some(&config_map(
                &[(ENFORCING_HEADER, "edited by hand")],
                Some(&sha)
            )),
            &enforce,
            &OWNED
        ));
        assert!(config_map_needs_write(
            Some(&config_map(&[(ENFORCING_HEADER, value)], None)),
            &enforce,
            &OWNED
        ));
        // After a switch to ReportOnly the old enforcing key must go.
        let report = publication("ReportOnly", value);
        assert!(config_map_needs_write(
            Some(&config_map(
                &[(ENFORCING_HEADER, value), (REPORT_ONLY_HEADER, value)],
                Some(&report.sha256())
            )),
            &report,
            &OWNED
        ));
    }

    #[test]
    fn an_opted_in_config_map_gets_only_the_keys_and_the_annotation() {
        let both = publication("Both", "img-src 'self'");
        let built = build_config_map("web", "csp", &both, None);
        assert!(built.metadata.owner_references.is_none());
        assert!(built.metadata.labels.is_none());
        assert_eq!(
            built.metadata.annotations.as_ref().map(|a| a.len()),
            Some(1)
        );
        assert_eq!(
            built
                .data
                .as_ref()
                .map(|d| d.keys().cloned().collect::<Vec<_>>()),
            Some(vec![
                ENFORCING_HEADER.to_owned(),
                REPORT_ONLY_HEADER.to_owned()
            ])
        );
        assert!(!config_map_needs_write(Some(&built), &both, &OWNED));
    }

    #[test]
    fn the_built_config_map_holds_the_value_the_annotation_and_the_owner() {
        let owner = OwnerReference {
            name: "acme".into(),
            uid: "u-1".into(),
            kind: "QlikTenant".into(),
            ..OwnerReference::default()
        };
        let report = publication("ReportOnly", "img-src 'self'");
        let built = build_config_map("web", "csp", &report, Some(owner));
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
                .and_then(|d| d.get(REPORT_ONLY_HEADER))
                .map(String::as_str),
            Some("img-src 'self'")
        );
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
