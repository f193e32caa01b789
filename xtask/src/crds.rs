//! `cargo xtask crds`: writes the generated CRDs where `kubectl apply` and Helm find them.

use std::path::Path;

/// Where generated CRDs go, relative to the workspace root. Helm installs everything in a
/// chart's `crds/` directory before the templates and never upgrades or deletes it.
pub const CRD_DIRS: [&str; 2] = ["crds", "charts/qlik-csp-operator/crds"];

pub fn write(root: &Path) -> Result<(), String> {
    for dir in CRD_DIRS {
        let dir = root.join(dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("failed to create {}: {e}", dir.display()))?;
        for (stem, crd) in qlik_csp_operator::api::crds() {
            let yaml = qlik_csp_operator::api::crd_yaml(&crd)
                .map_err(|e| format!("failed to render the {stem} CRD: {e}"))?;
            let path = dir.join(format!("{stem}.yaml"));
            std::fs::write(&path, yaml)
                .map_err(|e| format!("failed to write {}: {e}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}
