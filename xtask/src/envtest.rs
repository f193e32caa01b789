//! `cargo xtask envtest`: builds the real control plane used by the integration tests.
//!
//! The tools are built from the Go modules in `tests/envtest/` into
//! `target/envtest/<key>/bin`, where `<key>` hashes those modules and the Go toolchain, so a
//! second run (or a run after an unrelated change) reuses the cache and a module change
//! rebuilds. A build goes to a scratch directory that is renamed into place only when all
//! tools are built, so an interrupted build never leaves a half-filled cache behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use sha2::{Digest, Sha256};

/// The variable the test harness reads to find the tools.
pub const BIN_DIR_VAR: &str = "QLIKOPS_ENVTEST_BIN";

/// (module directory under tests/envtest, Go package to build, binary name)
const TOOLS: [(&str, &str, &str); 3] = [
    ("etcd", "go.etcd.io/etcd/server/v3", "etcd"),
    (
        "apiserver",
        "k8s.io/kubernetes/cmd/kube-apiserver",
        "kube-apiserver",
    ),
    ("helm", "helm.sh/helm/v3/cmd/helm", "helm"),
];

/// Returns the directory holding etcd, kube-apiserver and helm, building them if needed.
pub fn ensure(root: &Path) -> Result<PathBuf, String> {
    let modules = root.join("tests/envtest");
    let key = cache_key(&modules)?;
    let cache = crate::target_dir(root).join("envtest");
    let bin = cache.join(&key).join("bin");
    if TOOLS.iter().all(|(_, _, name)| bin.join(name).is_file()) {
        eprintln!("envtest: reusing {}", bin.display());
        return Ok(bin);
    }

    let scratch = cache.join(format!("{key}.building-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)
        .map_err(|e| format!("failed to create {}: {e}", scratch.display()))?;
    for (index, (module, package, name)) in TOOLS.iter().enumerate() {
        let started = Instant::now();
        eprintln!(
            "envtest: building {name} ({}/{}) from {package}; the first build takes minutes \
             (kube-apiserver about 8 on two cores), later runs reuse it",
            index + 1,
            TOOLS.len()
        );
        let mut child = Command::new("go")
            .current_dir(modules.join(module))
            .args(["build", "-trimpath", "-o"])
            .arg(scratch.join(name))
            .arg(package)
            .env("CGO_ENABLED", "0")
            .spawn()
            .map_err(|e| format!("failed to run go (is Go installed and on PATH?): {e}"))?;
        let status = wait_with_progress(&mut child, name, started)?;
        if !status.success() {
            return Err(format!("go build of {package} failed ({status})"));
        }
        eprintln!("envtest: built {name} in {:.0?}", started.elapsed());
    }
    let final_dir = cache.join(&key);
    std::fs::create_dir_all(&final_dir)
        .map_err(|e| format!("failed to create {}: {e}", final_dir.display()))?;
    // A concurrent build may have won the race; its result is as good as ours.
    if !bin.is_dir() {
        std::fs::rename(&scratch, &bin)
            .map_err(|e| format!("failed to move tools into {}: {e}", bin.display()))?;
    } else {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    Ok(bin)
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

/// Hash of every file of the Go modules plus the Go toolchain identity.
fn cache_key(modules: &Path) -> Result<String, String> {
    let mut hasher = Sha256::new();
    for (module, _, _) in TOOLS {
        let dir = modules.join(module);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| format!("failed to read {}: {e}", dir.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.is_file())
            .collect();
        files.sort();
        for file in files {
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
