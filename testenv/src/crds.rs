//! CustomResourceDefinitions for the control plane: read from directories of YAML files
//! (the project's own under `crds/`, the edges' copied by `cargo xtask envtest`) and
//! installed with server-side apply. Reads files and talks to the apiserver.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use serde::Deserialize;

/// How long one CRD may take to become established.
const ESTABLISHED_DEADLINE: Duration = Duration::from_secs(30);

/// The CRDs in `dir`: every document of every `.yaml` or `.yml` file (sorted by name) whose
/// `kind` is `CustomResourceDefinition`. Other documents are skipped: Gateway API ships a
/// ValidatingAdmissionPolicy beside its CRDs, Traefik all its CRDs in one file.
pub fn read_crds(dir: &Path) -> Result<Vec<CustomResourceDefinition>, String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("failed to read {}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .collect();
    paths.sort();
    let mut crds = Vec::new();
    for path in &paths {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("failed to read {}: {e}", path.display()))?;
        crds.extend(
            crds_in(&text).map_err(|e| format!("failed to parse {}: {e}", path.display()))?,
        );
    }
    Ok(crds)
}

/// The CRDs among the documents of one YAML stream.
fn crds_in(text: &str) -> Result<Vec<CustomResourceDefinition>, serde_norway::Error> {
    let mut crds = Vec::new();
    for document in serde_norway::Deserializer::from_str(text) {
        let value = serde_norway::Value::deserialize(document)?;
        let kind = value.get("kind").and_then(serde_norway::Value::as_str);
        if kind == Some("CustomResourceDefinition") {
            crds.push(serde_norway::from_value(value)?);
        }
    }
    Ok(crds)
}

/// Applies `crds` (field manager `qlikops-envtest`, forced) and waits until each is
/// established, so that the first request for its kind is served.
pub async fn install(client: Client, crds: Vec<CustomResourceDefinition>) -> Result<(), String> {
    let api: Api<CustomResourceDefinition> = Api::all(client);
    let params = PatchParams::apply("qlikops-envtest").force();
    let mut names = Vec::with_capacity(crds.len());
    // All applied first: the apiserver establishes them in parallel while we wait in turn.
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(&name, &params, &Patch::Apply(&crd))
            .await
            .map_err(|e| format!("failed to install CRD {name}: {e}"))?;
        names.push(name);
    }
    for name in names {
        let established = await_condition(api.clone(), &name, conditions::is_crd_established());
        tokio::time::timeout(ESTABLISHED_DEADLINE, established)
            .await
            .map_err(|_| format!("CRD {name} was not established within {ESTABLISHED_DEADLINE:?}"))?
            .map_err(|e| format!("failed to watch CRD {name}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_crds_of_a_multi_document_stream_are_read() {
        let text = "\
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: safe-upgrades
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.io
spec:
  group: example.io
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions: []
---
# a comment-only document
";
        let crds = crds_in(text).expect("the stream parses");
        let names: Vec<_> = crds.iter().map(|c| c.metadata.name.as_deref()).collect();
        assert_eq!(names, [Some("widgets.example.io")]);
    }
}
