//! `cargo xtask envtest`: builds the real control plane used by the integration tests, and
//! the edge proxy with its CRDs.
//!
//! The tools are built from the Go modules in `tests/envtest/` into
//! `target/envtest/<key>/bin`, and the edges' CRDs copied from their Go modules into
//! `target/envtest/<key>/edge-crds`, where `<key>` hashes those modules and the Go toolchain,
//! so a second run (or a run after an unrelated change) reuses the cache and a module change
//! rebuilds. A build goes to a scratch directory that is renamed into place only when all
//! tools are built, so an interrupted build never leaves a half-filled cache behind.

mod edge;
mod gomod;
mod stamp;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use sha2::{Digest, Sha256};

use edge::Patch;
use stamp::{Stamp, ldflags};

/// The variable the test harness reads to find the tools.
pub const BIN_DIR_VAR: &str = "QLIKOPS_ENVTEST_BIN";
/// The variable the test harness reads to find the edges' CRDs.
pub const EDGE_CRDS_VAR: &str = qlikops_testenv::EDGE_CRDS_VAR;
/// Where the edges' CRDs are, beside the tools.
const EDGE_CRDS_DIR: &str = "edge-crds";

/// One binary of the control plane and where it comes from.
#[derive(Debug)]
struct Tool {
    /// Module directory under tests/envtest.
    module: &'static str,
    /// Go package to build.
    package: &'static str,
    /// Binary name.
    binary: &'static str,
    /// How its version is stamped into it.
    stamp: Stamp,
    /// A dependency's file replaced for the build, if any.
    patch: Option<Patch>,
}

const TOOLS: [Tool; 5] = [
    Tool {
        module: "etcd",
        package: "go.etcd.io/etcd/server/v3",
        binary: "etcd",
        stamp: Stamp::None,
        patch: None,
    },
    Tool {
        module: "apiserver",
        package: "k8s.io/kubernetes/cmd/kube-apiserver",
        binary: "kube-apiserver",
        stamp: Stamp::Kubernetes,
        patch: None,
    },
    Tool {
        module: "apiserver",
        package: "k8s.io/kubernetes/cmd/kube-controller-manager",
        binary: "kube-controller-manager",
        stamp: Stamp::Kubernetes,
        patch: None,
    },
    Tool {
        module: "helm",
        package: "helm.sh/helm/v3/cmd/helm",
        binary: "helm",
        stamp: Stamp::Helm,
        patch: None,
    },
    Tool {
        module: edge::MODULE,
        package: "github.com/traefik/traefik/v3/cmd/traefik",
        binary: "traefik",
        stamp: Stamp::Traefik,
        patch: Some(edge::LEGO_WITHOUT_DNS_PROVIDERS),
    },
];

/// Changes whenever the way the tools are built changes in a way the module files do not
/// show (the stamping above), so the cache key changes with it.
const RECIPE: &str =
    "go build -trimpath, CGO_ENABLED=0, version stamps v2, patches v1, edge CRDs copied v1";

/// Returns the directory holding the tools, building them (and copying the edges' CRDs
/// beside them, see [`edge_crds_dir`]) if needed.
pub fn ensure(root: &Path) -> Result<PathBuf, String> {
    let modules = root.join("tests/envtest");
    let key = cache_key(&modules)?;
    let cache = crate::target_dir(root).join("envtest");
    let done = cache.join(&key);
    let bin = done.join("bin");
    if TOOLS.iter().all(|tool| bin.join(tool.binary).is_file()) && edge_crds_dir(&bin).is_dir() {
        eprintln!("envtest: reusing {}", bin.display());
        return Ok(bin);
    }

    let scratch = cache.join(format!("{key}.building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(scratch.join("bin"))
        .map_err(|e| format!("failed to create {}: {e}", scratch.display()))?;
    for (index, tool) in TOOLS.iter().enumerate() {
        build(&modules, tool, &scratch, index)?;
    }
    edge::copy_crds(&modules.join(edge::MODULE), &scratch.join(EDGE_CRDS_DIR))?;
    // Patched dependencies' sources: only the build needed them.
    let _ = std::fs::remove_dir_all(scratch.join("src"));
    // A concurrent build may have won the race; its result is as good as ours. (A cache
    // directory from before the edges, with bin/ only, is replaced.)
    if !edge_crds_dir(&bin).is_dir() {
        let _ = std::fs::remove_dir_all(&done);
        std::fs::rename(&scratch, &done)
            .map_err(|e| format!("failed to move tools into {}: {e}", done.display()))?;
    } else {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    Ok(bin)
}

/// The directory holding the edges' CRDs (for [`EDGE_CRDS_VAR`]), beside the tools `bin`
/// that [`ensure`] returned.
pub fn edge_crds_dir(bin: &Path) -> PathBuf {
    bin.parent().unwrap_or(bin).join(EDGE_CRDS_DIR)
}

/// Builds `tool` (the `index`th) into `scratch/bin`.
fn build(modules: &Path, tool: &Tool, scratch: &Path, index: usize) -> Result<(), String> {
    let started = Instant::now();
    let dir = modules.join(tool.module);
    let ldflags = ldflags(&dir, &tool.stamp)?;
    let mut command = Command::new("go");
    command
        .current_dir(&dir)
        .args(["build", "-trimpath", "-ldflags", &ldflags]);
    if let Some(patch) = &tool.patch {
        let work = scratch.join("src").join(tool.binary);
        let modfile = edge::prepare(&dir, patch, &work)?;
        command.arg(format!("-modfile={}", modfile.display()));
    }
    eprintln!(
        "envtest: building {} ({}/{}) from {}; the first build takes minutes \
         (kube-apiserver and traefik about 10 each on two cores), later runs reuse it",
        tool.binary,
        index + 1,
        TOOLS.len(),
        tool.package
    );
    let mut child = command
        .arg("-o")
        .arg(scratch.join("bin").join(tool.binary))
        .arg(tool.package)
        .env("CGO_ENABLED", "0")
        .spawn()
        .map_err(|e| format!("failed to run go (is Go installed and on PATH?): {e}"))?;
    let status = wait_with_progress(&mut child, tool.binary, started)?;
    if !status.success() {
        return Err(format!("go build of {} failed ({status})", tool.package));
    }
    eprintln!(
        "envtest: built {} in {:.0?}",
        tool.binary,
        started.elapsed()
    );
    Ok(())
}

/// Waits for `child`, saying every 30 seconds that the build of `name` is still running.
fn wait_with_progress(
    child: &mut std::process::Child,
    name: &str,
    started: Instant,
) -> Result<std::process::ExitStatus, String> {
    let mut last_note = Instant::now();
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| format!("failed to wait for go build: {e}"))?
        {
            return Ok(status);
        }
        if last_note.elapsed() >= std::time::Duration::from_secs(30) {
            eprintln!("envtest: still building {name} ({:.0?})", started.elapsed());
            last_note = Instant::now();
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// Hash of the recipe, every file of the Go modules (with their subdirectories) and the Go
/// toolchain identity.
fn cache_key(modules: &Path) -> Result<String, String> {
    let mut hasher = Sha256::new();
    hasher.update(RECIPE.as_bytes());
    hasher.update(format!("{TOOLS:?}").as_bytes());
    hasher.update(format!("{:?}", edge::CRD_SOURCES).as_bytes());
    let mut dirs: Vec<&str> = TOOLS.iter().map(|tool| tool.module).collect();
    dirs.sort_unstable();
    dirs.dedup();
    for module in dirs {
        for file in files_under(&modules.join(module))? {
            let content = std::fs::read(&file)
                .map_err(|e| format!("failed to read {}: {e}", file.display()))?;
            hasher.update(
                file.strip_prefix(modules)
                    .unwrap_or(&file)
                    .to_string_lossy()
                    .as_bytes(),
            );
            hasher.update(&content);
        }
    }
    let go = Command::new("go")
        .args(["env", "GOVERSION", "GOOS", "GOARCH"])
        .output()
        .map_err(|e| format!("failed to run go (is Go installed and on PATH?): {e}"))?;
    hasher.update(&go.stdout);
    Ok(hex::encode(&hasher.finalize()[..8]))
}

/// The files under `dir` and its subdirectories, sorted.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).map_err(|e| format!("failed to read {}: {e}", dir.display()))?
        {
            let path = entry
                .map_err(|e| format!("failed to read {}: {e}", dir.display()))?
                .path();
            if path.is_dir() {
                pending.push(path);
            } else if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}
