//! `qlik-csp-operator render`: the header a `source: Local` tenant would publish, compiled
//! offline from manifests, for review before merge. Reads files; no cluster, no tenant.
//!
//! Entries are grouped by tenant (`metadata.namespace`, default `default`, and
//! `spec.tenantRef.name`); a `QlikTenant` in the input contributes its
//! `spec.header.baseDirectives`. Every problem is reported with its file, document and field,
//! and nothing is rendered while any remains.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::api::CspEntry;
use crate::csp::Directive;
use crate::csp::header::{self, BaseDirectives, Grant};
use crate::manifests::{self, Manifests};

pub use crate::api::TenantKey;
pub use crate::manifests::Problem;

/// The header compiled for one tenant.
#[derive(Debug, PartialEq, Eq)]
pub struct Rendered {
    pub tenant: TenantKey,
    pub entries: usize,
    /// Whether a `QlikTenant` of that name was in the input (else: no base directives).
    pub tenant_found: bool,
    pub header: String,
}

/// Reads every `.yaml`, `.yml` and `.json` file under `paths` (directories recursively, in
/// name order) and renders the headers.
pub fn render_paths(paths: &[PathBuf]) -> Result<Vec<Rendered>, Vec<Problem>> {
    render_manifests(manifests::read_paths(paths)?)
}

/// Renders from `(source name, text)` pairs, each a stream of YAML (or JSON) documents.
pub fn render_documents(documents: &[(String, String)]) -> Result<Vec<Rendered>, Vec<Problem>> {
    let (manifests, mut problems) = manifests::parse_documents(documents);
    match render_manifests(manifests) {
        Ok(rendered) if problems.is_empty() => Ok(rendered),
        Ok(_) => Err(problems),
        Err(more) => {
            problems.extend(more);
            Err(problems)
        }
    }
}

/// Compiles each tenant's header from parsed manifests.
pub fn render_manifests(manifests: Manifests) -> Result<Vec<Rendered>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut bases: BTreeMap<TenantKey, BaseDirectives> = BTreeMap::new();
    let mut grants: BTreeMap<TenantKey, Vec<(String, Grant)>> = BTreeMap::new();
    for tenant in manifests.tenants {
        let key = Manifests::tenant_key(&tenant.object);
        let base = tenant
            .object
            .spec
            .header
            .and_then(|h| h.base_directives)
            .unwrap_or_default();
        if bases.insert(key.clone(), base).is_some() {
            problems.push(Problem {
                location: tenant.location,
                message: format!(
                    "QlikTenant {}/{} appears more than once in the input; render one setup at a time",
                    key.0, key.1
                ),
            });
        }
    }
    for entry in manifests.entries {
        read_entry(entry.object, &entry.location, &mut grants, &mut problems);
    }

    let mut rendered = Vec::new();
    for (tenant, entries) in grants {
        let tenant_found = bases.contains_key(&tenant);
        let base = bases.get(&tenant).cloned().unwrap_or_default();
        let only_grants: Vec<Grant> = entries.iter().map(|(_, g)| g.clone()).collect();
        match header::compile(&base, &only_grants) {
            Ok(compiled) => rendered.push(Rendered {
                tenant,
                entries: entries.len(),
                tenant_found,
                header: compiled.into_string(),
            }),
            Err(e) => problems.push(Problem {
                location: format!("QlikTenant {}/{}", tenant.0, tenant.1),
                message: e.to_string(),
            }),
        }
    }
    if problems.is_empty() {
        Ok(rendered)
    } else {
        Err(problems)
    }
}

fn read_entry(
    entry: CspEntry,
    location: &str,
    grants: &mut BTreeMap<TenantKey, Vec<(String, Grant)>>,
    problems: &mut Vec<Problem>,
) {
    let name = entry.metadata.name.clone().unwrap_or_default();
    let location = format!("{location} (CspEntry {name})");
    let grant = match entry.grant() {
        Ok(grant) => grant,
        Err(e) => {
            problems.push(Problem {
                location,
                message: format!("spec.origin: {e}"),
            });
            return;
        }
    };
    // The grant keeps each directive once; a manifest listing one twice is worth a word.
    let mut directives = std::collections::BTreeSet::new();
    for directive in &entry.spec.directives {
        if !directives.insert(Directive::from(*directive)) {
            let message = format!(
                "spec.directives: {} is listed twice",
                Directive::from(*directive)
            );
            problems.push(Problem {
                location: location.clone(),
                message,
            });
        }
    }
    if grant.directives.is_empty() {
        problems.push(Problem {
            location,
            message: "spec.directives: at least one directive is required".into(),
        });
        return;
    }
    let key = Manifests::entry_tenant(&entry);
    let same_tenant = grants.entry(key).or_default();
    let origin = &grant.origin;
    let lowercase = origin.as_str().to_ascii_lowercase();
    if let Some((other, _)) = same_tenant
        .iter()
        .find(|(_, g)| g.origin.as_str().to_ascii_lowercase() == lowercase)
    {
        let message = format!(
            "spec.origin: {origin} is already declared by CspEntry {other}; only the older of the two would be synced"
        );
        problems.push(Problem { location, message });
        return;
    }
    same_tenant.push((name, grant));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(text: &str) -> Vec<(String, String)> {
        vec![("manifests.yaml".to_owned(), text.to_owned())]
    }

    const TENANT: &str = "apiVersion: qlikops.io/v1alpha1
kind: QlikTenant
metadata: {name: acme, namespace: web}
spec:
  url: https://acme.eu.qlikcloud.com
  credentials: {apiKey: {secretRef: {name: qlik, key: api-key}}}
  header:
    configMapName: csp
    source: Local
    baseDirectives:
      default-src: [\"'self'\"]
";

    fn entry(name: &str, origin: &str, directives: &str) -> String {
        format!(
            "apiVersion: qlikops.io/v1alpha1\nkind: CspEntry\nmetadata: {{name: {name}, namespace: web}}\nspec:\n  tenantRef: {{name: acme}}\n  origin: \"{origin}\"\n  directives: {directives}\n"
        )
    }

    #[test]
    fn renders_the_local_header_of_a_tenant_from_its_entries_and_base_directives() {
        let input = [
            TENANT.to_owned(),
            entry("cdn", "https://cdn.example.com", "[script-src, img-src]"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: unrelated}\n".to_owned(),
            entry("fonts", "https://fonts.example.com", "[font-src]"),
        ]
        .join("---\n");
        let rendered = render_documents(&docs(&input)).unwrap();
        assert_eq!(rendered.len(), 1);
        assert_eq!(rendered[0].tenant, ("web".to_owned(), "acme".to_owned()));
        assert_eq!(rendered[0].entries, 2);
        assert!(rendered[0].tenant_found);
        assert_eq!(
            rendered[0].header,
            "default-src 'self'; font-src https://fonts.example.com; img-src https://cdn.example.com; script-src https://cdn.example.com"
        );
    }

    #[test]
    fn an_entry_whose_tenant_is_not_in_the_input_renders_without_base_directives() {
        let rendered =
            render_documents(&docs(&entry("cdn", "https://cdn.example.com", "[img-src]"))).unwrap();
        assert!(!rendered[0].tenant_found);
        assert_eq!(rendered[0].header, "img-src https://cdn.example.com");
    }

    #[test]
    fn invalid_entries_are_reported_with_file_document_and_field_and_nothing_renders() {
        let input = [
            entry("ok", "https://ok.example.com", "[img-src]"),
            entry("path", "https://evil.example.com/x", "[img-src]"),
            entry("inject", "https://a.example.com; script-src *", "[img-src]"),
            entry("unknown", "https://b.example.com", "[default-src]"),
        ]
        .join("---\n");
        let problems = render_documents(&docs(&input)).unwrap_err();
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 3, "{text:#?}");
        let of = |document: &str| {
            let found = text.iter().find(|t| t.contains(document));
            found.cloned().unwrap_or_default()
        };
        let path = of("document 2 ");
        assert!(path.starts_with("manifests.yaml: document 2 (CspEntry path): spec.origin: origin must not contain a path"), "{path}");
        let inject = of("document 3 ");
        assert!(
            inject.contains("document 3 (CspEntry inject): spec.origin"),
            "{inject}"
        );
        let unknown = of("document 4");
        assert!(unknown.contains("default-src"), "{unknown}");
    }

    #[test]
    fn two_entries_with_the_same_origin_for_one_tenant_are_a_problem() {
        let input = [
            entry("a", "https://cdn.example.com", "[img-src]"),
            entry("b", "HTTPS://CDN.example.com", "[font-src]"),
        ]
        .join("---\n");
        let problems = render_documents(&docs(&input)).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0]
                .message
                .contains("already declared by CspEntry a"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn duplicated_directives_are_a_problem() {
        let problems = render_documents(&docs(&entry(
            "a",
            "https://cdn.example.com",
            "[img-src, img-src]",
        )))
        .unwrap_err();
        assert!(
            problems[0].message.contains("img-src is listed twice"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn tenants_are_rendered_separately_and_in_order() {
        let other =
            entry("x", "https://x.example.com", "[img-src]").replace("name: acme", "name: other");
        let input = [entry("cdn", "https://cdn.example.com", "[img-src]"), other].join("---\n");
        let rendered = render_documents(&docs(&input)).unwrap();
        let tenants: Vec<&str> = rendered.iter().map(|r| r.tenant.1.as_str()).collect();
        assert_eq!(tenants, ["acme", "other"]);
    }
}
