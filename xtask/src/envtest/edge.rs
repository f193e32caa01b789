//! The edges of the test rig, from the wrapper module `tests/envtest/edge`: their CRDs,
//! copied out of the Go modules that publish them, and the one source patch traefik needs to
//! build from the Go module proxy this project reaches. Reads the module cache, writes
//! files under the scratch directory.

use std::path::{Path, PathBuf};

use super::gomod::module_dir;

/// The wrapper module (under tests/envtest) that pins the edges.
pub const MODULE: &str = "edge";

/// A file, or every `*.yaml` of a directory, of a module's release holding CRDs.
#[derive(Debug)]
pub struct CrdSource {
    /// Go module path; its version is the one the wrapper module requires.
    pub module: &'static str,
    /// Path inside the module.
    pub path: &'static str,
    /// Prefix of the copied files' names, so that sources never collide.
    pub prefix: &'static str,
}

/// Gateway API's standard channel (with a ValidatingAdmissionPolicy beside the CRDs, which
/// the harness skips) and Traefik's CRDs (one multi-document file): what their docs tell
/// users to install.
pub const CRD_SOURCES: [CrdSource; 2] = [
    CrdSource {
        module: "sigs.k8s.io/gateway-api",
        path: "config/crd/standard",
        prefix: "gateway-api",
    },
    CrdSource {
        module: "github.com/traefik/traefik/v3",
        path: "docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml",
        prefix: "traefik",
    },
];

/// Copies every [`CRD_SOURCES`] file into `out` as `<prefix>-<file name>.yaml`, unchanged
/// (the harness splits documents and keeps the CRDs).
pub fn copy_crds(wrapper: &Path, out: &Path) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("failed to create {}: {e}", out.display()))?;
    for source in &CRD_SOURCES {
        let path = module_dir(wrapper, source.module)?.join(source.path);
        let files = if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&path)
                .map_err(|e| format!("failed to read {}: {e}", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|file| file.extension().is_some_and(|ext| ext == "yaml"))
                .collect();
            files.sort();
            files
        } else {
            vec![path.clone()]
        };
        if files.is_empty() {
            return Err(format!("{} holds no CRD file", path.display()));
        }
        for file in files {
            let stem = file.file_stem().unwrap_or_default().to_string_lossy();
            let target = out.join(format!("{}-{stem}.yaml", source.prefix));
            std::fs::copy(&file, &target).map_err(|e| {
                format!(
                    "failed to copy {} to {}: {e}",
                    file.display(),
                    target.display()
                )
            })?;
        }
    }
    Ok(())
}

/// A file of a dependency replaced for a tool's build. `go build -overlay` refuses files in
/// the module cache, so the dependency is copied, patched, and swapped in with a `replace`
/// in a copy of the wrapper's go.mod (`go build -modfile`); the checked-in go.mod stays
/// free of machine-specific paths.
#[derive(Debug)]
pub struct Patch {
    /// Go module path of the dependency.
    pub module: &'static str,
    /// File inside the dependency that is replaced.
    pub file: &'static str,
    /// Its replacement, relative to the wrapper module.
    pub with: &'static str,
}

/// lego's DNS-01 provider factory imports every provider, and the Go module proxy this
/// project reaches serves no version of about fifteen of their SDKs (cloud vendors' DNS
/// clients): traefik would not build. The replacement knows no DNS provider; the test proxy
/// never asks for an ACME certificate. See tests/envtest/edge/overlay/.
pub const LEGO_WITHOUT_DNS_PROVIDERS: Patch = Patch {
    module: "github.com/go-acme/lego/v5",
    file: "providers/dns/zz_gen_dns_providers.go",
    with: "overlay/lego_dns_providers.go",
};

/// Copies `patch.module` (the version the wrapper module in `wrapper` requires) into `work`,
/// replaces the file, and writes `work/go.mod` and `work/go.sum`: the wrapper's, plus a
/// `replace` of the module by the patched copy. Returns the go.mod for `go build -modfile`.
pub fn prepare(wrapper: &Path, patch: &Patch, work: &Path) -> Result<PathBuf, String> {
    let original = module_dir(wrapper, patch.module)?;
    let copy = work.join(patch.module.replace('/', "_"));
    copy_tree(&original, &copy)?;
    let target = copy.join(patch.file);
    if !target.is_file() {
        return Err(format!(
            "{} has no {}: the patch no longer fits this version",
            patch.module, patch.file
        ));
    }
    let replacement = wrapper.join(patch.with);
    // The module cache's files are read-only, and so is the copy: replace, not overwrite.
    std::fs::remove_file(&target)
        .and_then(|()| std::fs::copy(&replacement, &target).map(drop))
        .map_err(|e| format!("failed to patch {}: {e}", target.display()))?;

    let read = |name: &str| {
        let path = wrapper.join(name);
        std::fs::read_to_string(&path)
            .map_err(|e| format!("failed to read {}: {e}", path.display()))
    };
    let go_mod = format!(
        "{}\n// Added by cargo xtask envtest (see xtask/src/envtest/edge.rs).\nreplace {} => {}\n",
        read("go.mod")?,
        patch.module,
        copy.display()
    );
    let modfile = work.join("go.mod");
    for (path, content) in [(&modfile, go_mod), (&work.join("go.sum"), read("go.sum")?)] {
        std::fs::write(path, content)
            .map_err(|e| format!("failed to write {}: {e}", path.display()))?;
    }
    Ok(modfile)
}

/// Copies the files and directories under `from` to `to` (files keep their read-only mode;
/// the directories are new, so files in them can be replaced).
fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("failed to create {}: {e}", to.display()))?;
    let entries =
        std::fs::read_dir(from).map_err(|e| format!("failed to read {}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("failed to read {}: {e}", from.display()))?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry
            .file_type()
            .map_err(|e| format!("failed to read {}: {e}", source.display()))?;
        if kind.is_dir() {
            copy_tree(&source, &target)?;
        } else if kind.is_file() {
            std::fs::copy(&source, &target).map_err(|e| {
                format!(
                    "failed to copy {} to {}: {e}",
                    source.display(),
                    target.display()
                )
            })?;
        }
    }
    Ok(())
}
