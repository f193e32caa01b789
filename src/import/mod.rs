//! `qlik-csp-operator import`: a tenant's CSP entries as CspEntry manifests, so that a
//! tenant made by hand comes under Git without one tenant write. Pure: the command reads
//! the tenant and writes the files; this module decides what they say.
//!
//! Applying the output adopts every entry as it is (Ready reason `Adopted`): each manifest
//! grants exactly what the tenant's entry grants (origin spelled the same, directives,
//! WebSocket, description), and adopting never renames (see the csp-entry plan).
//!
//! Names are derived from the origin (`https://cdn.example.com:8443` → `cdn-example-com-8443`),
//! so a re-import names the same entry the same way. Two origins that make the same name,
//! and names cut to 63 characters, get a suffix from a hash of the origin.

mod run;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::api::csp_entry::DirectiveName;
use crate::tenant::wire::CspOrigin;

pub use run::{ImportArgs, ImportError, run};

/// The longest name written: a DNS-1123 label, readable in `kubectl get`.
pub const MAX_NAME_LEN: usize = 63;
/// Qlik's and the CRD's limit on a description.
const MAX_DESCRIPTION_CHARS: usize = 1024;

/// One tenant entry as a manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedEntry {
    /// The CspEntry's `metadata.name`.
    pub name: String,
    /// The tenant's id and name of the entry, for the comment above the manifest.
    pub remote_id: String,
    pub remote_name: String,
    /// The CspEntry, as JSON ready to print as YAML.
    pub manifest: Value,
}

/// A tenant entry not written, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub remote_id: String,
    pub remote_name: String,
    pub origin: String,
    pub reason: String,
}

/// What `import` writes and what it leaves out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Imported {
    /// In name order.
    pub entries: Vec<ImportedEntry>,
    pub refused: Vec<Refused>,
}

/// The manifests for `remote` (the tenant's entries) in `namespace`, for the QlikTenant
/// `tenant`. Entries the operator's origin grammar refuses, entries granting no directive
/// (a CspEntry needs one) and the later of two entries with one origin are refused.
pub fn import(remote: &[CspOrigin], namespace: &str, tenant: &str) -> Imported {
    let mut sorted: Vec<&CspOrigin> = remote.iter().collect();
    sorted.sort_by_key(|r| (r.content.origin.to_ascii_lowercase(), r.id.clone()));

    let mut refused = Vec::new();
    let mut kept: Vec<&CspOrigin> = Vec::new();
    let mut first_of_origin: BTreeMap<String, &CspOrigin> = BTreeMap::new();
    for entry in sorted {
        let refuse = |reason: String| Refused {
            remote_id: entry.id.clone(),
            remote_name: entry.content.name.clone(),
            origin: entry.content.origin.clone(),
            reason,
        };
        if let Err(e) = entry.content.parsed_origin() {
            refused.push(refuse(format!("the operator refuses the origin: {e}")));
            continue;
        }
        if entry.content.directives().is_empty() {
            let reason = "it grants no directive (a CspEntry needs at least one)".to_owned();
            refused.push(refuse(reason));
            continue;
        }
        if entry.content.description.chars().count() > MAX_DESCRIPTION_CHARS {
            let reason = format!("its description is over {MAX_DESCRIPTION_CHARS} characters");
            refused.push(refuse(reason));
            continue;
        }
        let key = entry.content.origin.to_ascii_lowercase();
        if let Some(first) = first_of_origin.get(&key) {
            let reason = format!(
                "entry {} ({:?}) has the same origin; the operator keeps one entry per origin: merge them in the console",
                first.id, first.content.name
            );
            refused.push(refuse(reason));
            continue;
        }
        first_of_origin.insert(key, entry);
        kept.push(entry);
    }

    let names = names_for(kept.iter().map(|e| e.content.origin.as_str()));
    let mut entries: Vec<ImportedEntry> = kept
        .into_iter()
        .zip(names)
        .map(|(entry, name)| ImportedEntry {
            manifest: manifest(entry, &name, namespace, tenant),
            name,
            remote_id: entry.id.clone(),
            remote_name: entry.content.name.clone(),
        })
        .collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Imported { entries, refused }
}

/// A CspEntry granting what `entry` grants.
fn manifest(entry: &CspOrigin, name: &str, namespace: &str, tenant: &str) -> Value {
    let content = &entry.content;
    let directives: Vec<DirectiveName> = content
        .directives()
        .into_iter()
        .map(DirectiveName::from)
        .collect();
    let mut spec = json!({
        "tenantRef": { "name": tenant },
        "origin": content.origin,
        "directives": directives,
    });
    if content.connect_src_wss {
        spec["allowWebSocket"] = json!(true);
    }
    if !content.description.is_empty() {
        spec["description"] = json!(content.description);
    }
    json!({
        "apiVersion": format!("{}/{}", crate::api::GROUP, crate::api::VERSION),
        "kind": "CspEntry",
        "metadata": { "name": name, "namespace": namespace },
        "spec": spec,
    })
}

/// One name per origin, in the same order: the origin's slug, or the slug with a hash of
/// the origin when another origin makes the same slug or the slug had to be cut.
fn names_for<'a>(origins: impl Iterator<Item = &'a str>) -> Vec<String> {
    let slugs: Vec<(String, bool, &str)> = origins
        .map(|origin| {
            let (slug, cut) = slug(origin);
            (slug, cut, origin)
        })
        .collect();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (slug, _, _) in &slugs {
        *seen.entry(slug.as_str()).or_default() += 1;
    }
    let shared: BTreeSet<String> = seen
        .into_iter()
        .filter(|(_, count)| *count > 1)
        .map(|(slug, _)| slug.to_owned())
        .collect();
    slugs
        .iter()
        .map(|(slug, cut, origin)| {
            if *cut || shared.contains(slug) {
                with_hash(slug, origin)
            } else {
                slug.clone()
            }
        })
        .collect()
}

/// `origin` as a DNS-1123 label (lowercase letters, digits and `-`), and whether it had to
/// be cut to [`MAX_NAME_LEN`]. The scheme is left out when it is `https` or absent.
fn slug(origin: &str) -> (String, bool) {
    let lower = origin.to_ascii_lowercase();
    let (scheme, rest) = match lower.split_once("://") {
        Some(("https", rest)) => (None, rest),
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, lower.as_str()),
    };
    let rest = match rest.strip_prefix("*.") {
        Some(host) => format!("wildcard-{host}"),
        None => rest.to_owned(),
    };
    let rest = rest.replace(":*", "-any-port");
    let mut text = scheme.map(|s| format!("{s}-")).unwrap_or_default();
    text.push_str(&rest);
    let mut slug = String::with_capacity(text.len());
    for c in text.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if c != '-' || !slug.ends_with('-') {
            slug.push(c);
        }
    }
    let slug = slug.trim_matches('-').to_owned();
    let slug = if slug.is_empty() {
        "entry".to_owned()
    } else {
        slug
    };
    if slug.len() > MAX_NAME_LEN {
        (slug, true)
    } else {
        (slug, false)
    }
}

/// `slug`, cut so that `-` and 8 hex digits of the origin's hash fit in [`MAX_NAME_LEN`].
fn with_hash(slug: &str, origin: &str) -> String {
    let digest = Sha256::digest(origin.to_ascii_lowercase().as_bytes());
    let hash = hex::encode(&digest[..4]);
    let keep = MAX_NAME_LEN - hash.len() - 1;
    let head = slug.get(..keep.min(slug.len())).unwrap_or(slug);
    format!("{}-{hash}", head.trim_end_matches('-'))
}

/// A QlikTenant for `url` whose credential is a Secret the user creates, as YAML with a
/// comment saying how.
pub fn tenant_skeleton(
    namespace: &str,
    name: &str,
    url: &str,
    oauth_client_id: Option<&str>,
) -> String {
    let (credentials, create) = match oauth_client_id {
        Some(client_id) => (
            json!({ "oauthClient": { "clientId": client_id, "secretRef": { "name": "qlik-oauth-client", "key": "client-secret" } } }),
            "kubectl -n {ns} create secret generic qlik-oauth-client --from-literal=client-secret=<the client secret>",
        ),
        None => (
            json!({ "apiKey": { "secretRef": { "name": "qlik-api-key", "key": "api-key" } } }),
            "kubectl -n {ns} create secret generic qlik-api-key --from-literal=api-key=<an API key>",
        ),
    };
    let tenant = json!({
        "apiVersion": format!("{}/{}", crate::api::GROUP, crate::api::VERSION),
        "kind": "QlikTenant",
        "metadata": { "name": name, "namespace": namespace },
        "spec": { "url": url, "credentials": credentials },
    });
    format!(
        "# The tenant the imported CspEntries belong to. Create its credential first:\n#   {}\n# and add spec.header to publish its CSP header (see the README).\n{}",
        create.replace("{ns}", namespace),
        to_yaml(&tenant)
    )
}

/// One imported entry as a YAML document, with a comment naming the tenant's entry.
pub fn entry_yaml(entry: &ImportedEntry) -> String {
    format!(
        "# Imported from the tenant's entry {} ({:?}).\n{}",
        entry.remote_id,
        entry.remote_name,
        to_yaml(&entry.manifest)
    )
}

fn to_yaml(value: &Value) -> String {
    // A `Value` of strings, lists and maps always serializes.
    serde_norway::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests;
