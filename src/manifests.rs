//! Reading CspEntry and QlikTenant manifests from files, for the commands that work before
//! a merge (`render`, `plan`). Reads files; no cluster, no tenant.
//!
//! Directories are searched recursively for `.yaml`, `.yml` and `.json` files, in name
//! order; each file is a stream of documents. Documents of other kinds or API groups are
//! skipped. Every problem is located by file, document and, where known, field.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::api::{CspEntry, QlikTenant, TenantKey};

/// Something in the input that stops the command, located as precisely as known.
#[derive(Debug, PartialEq, Eq)]
pub struct Problem {
    pub location: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// One object and where it was read (`file: document N`).
#[derive(Clone, Debug)]
pub struct Located<T> {
    pub location: String,
    pub object: T,
}

/// The operator's objects found in the input, in input order.
#[derive(Clone, Debug, Default)]
pub struct Manifests {
    pub entries: Vec<Located<CspEntry>>,
    pub tenants: Vec<Located<QlikTenant>>,
}

impl Manifests {
    /// The tenant a manifest of `namespace` and `name` means (an absent namespace is
    /// `default`, as `kubectl apply` without `-n` would make it).
    pub fn key_of(namespace: Option<&str>, name: Option<&str>) -> TenantKey {
        (
            namespace.unwrap_or("default").to_owned(),
            name.unwrap_or_default().to_owned(),
        )
    }

    /// The tenant `entry` belongs to.
    pub fn entry_tenant(entry: &CspEntry) -> TenantKey {
        Manifests::key_of(
            entry.metadata.namespace.as_deref(),
            Some(&entry.spec.tenant_ref.name),
        )
    }

    /// The tenant manifest `tenant` describes.
    pub fn tenant_key(tenant: &QlikTenant) -> TenantKey {
        Manifests::key_of(
            tenant.metadata.namespace.as_deref(),
            tenant.metadata.name.as_deref(),
        )
    }
}

/// Reads every manifest file under `paths` and parses the operator's objects.
pub fn read_paths(paths: &[PathBuf]) -> Result<Manifests, Vec<Problem>> {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        collect_files(path, &mut files, &mut problems);
    }
    let mut documents = Vec::new();
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(text) => documents.push((file.display().to_string(), text)),
            Err(e) => problems.push(Problem {
                location: file.display().to_string(),
                message: format!("failed to read: {e}"),
            }),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let (manifests, problems) = parse_documents(&documents);
    if problems.is_empty() {
        Ok(manifests)
    } else {
        Err(problems)
    }
}

fn collect_files(path: &Path, files: &mut Vec<PathBuf>, problems: &mut Vec<Problem>) {
    if path.is_dir() {
        let entries = match std::fs::read_dir(path) {
            Ok(entries) => entries,
            Err(e) => {
                let message = format!("failed to read the directory: {e}");
                problems.push(Problem {
                    location: path.display().to_string(),
                    message,
                });
                return;
            }
        };
        let mut children: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        children.sort();
        for child in children {
            let manifest = child
                .extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml" || ext == "json");
            if child.is_dir() || manifest {
                collect_files(&child, files, problems);
            }
        }
    } else if path.exists() {
        files.push(path.to_path_buf());
    } else {
        let message = "no such file or directory".to_owned();
        problems.push(Problem {
            location: path.display().to_string(),
            message,
        });
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeMeta {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
}

/// Parses `(source name, text)` pairs, each a stream of YAML (or JSON) documents. A
/// document that is not YAML ends its stream (the rest cannot be trusted); one that does
/// not match its kind's schema is a problem naming the offending field.
pub fn parse_documents(documents: &[(String, String)]) -> (Manifests, Vec<Problem>) {
    let mut manifests = Manifests::default();
    let mut problems = Vec::new();
    for (source, text) in documents {
        for (index, document) in serde_norway::Deserializer::from_str(text).enumerate() {
            let location = format!("{source}: document {}", index + 1);
            let value = match serde_norway::Value::deserialize(document) {
                Ok(serde_norway::Value::Null) => continue,
                Ok(value) => value,
                Err(e) => {
                    problems.push(Problem {
                        location,
                        message: format!("not YAML: {e}"),
                    });
                    break;
                }
            };
            let Ok(meta) = TypeMeta::deserialize(value.clone()) else {
                continue;
            };
            if !meta
                .api_version
                .starts_with(&format!("{}/", crate::api::GROUP))
            {
                continue;
            }
            match meta.kind.as_str() {
                "CspEntry" => match serde_path_to_error::deserialize::<_, CspEntry>(value) {
                    Ok(object) => manifests.entries.push(Located { location, object }),
                    Err(e) => problems.push(invalid("CspEntry", location, e)),
                },
                "QlikTenant" => match serde_path_to_error::deserialize::<_, QlikTenant>(value) {
                    Ok(object) => manifests.tenants.push(Located { location, object }),
                    Err(e) => problems.push(invalid("QlikTenant", location, e)),
                },
                _ => {}
            }
        }
    }
    (manifests, problems)
}

/// A document that does not match its kind's schema, with the path of the offending field.
fn invalid(
    kind: &str,
    location: String,
    error: serde_path_to_error::Error<serde_norway::Error>,
) -> Problem {
    let message = format!("invalid {kind}: {}: {}", error.path(), error.inner());
    Problem { location, message }
}
