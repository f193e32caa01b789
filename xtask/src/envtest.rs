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
}

/// The `-ldflags -X` a project's own release build sets, so the binary reports its real
/// version (`/version`, `helm version`) instead of a development placeholder.
#[derive(Debug)]
enum Stamp {
    /// etcd compiles its version in; its build adds only the git commit, which a module
    /// download does not carry.
    None,
    /// Kubernetes' `hack/lib/version.sh`: `k8s.io/component-base/version` and
    /// `k8s.io/client-go/pkg/version`, from the `k8s.io/kubernetes` version the module
    /// requires. kube-apiserver reports it at `/version`, which Helm checks a chart's
    /// `kubeVersion` against.
    Kubernetes,
    /// Helm's Makefile: `helm.sh/helm/v3/internal/version`, from the `helm.sh/helm/v3`
    /// version the module requires.
    Helm,
}

const TOOLS: [Tool; 4] = [
    Tool {
        module: "etcd",
        package: "go.etcd.io/etcd/server/v3",
        binary: "etcd",
        stamp: Stamp::None,
    },
    Tool {
        module: "apiserver",
        package: "k8s.io/kubernetes/cmd/kube-apiserver",
        binary: "kube-apiserver",
        stamp: Stamp::Kubernetes,
    },
    Tool {
        module: "apiserver",
        package: "k8s.io/kubernetes/cmd/kube-controller-manager",
        binary: "kube-controller-manager",
        stamp: Stamp::Kubernetes,
    },
    Tool {
        module: "helm",
        package: "helm.sh/helm/v3/cmd/helm",
        binary: "helm",
        stamp: Stamp::Helm,
    },
];

/// Changes whenever the way the tools are built changes in a way the module files do not
/// show (the stamping above), so the cache key changes with it.
const RECIPE: &str = "go build -trimpath, CGO_ENABLED=0, version stamps v1";

/// Returns the directory holding the tools, building them if needed.
pub fn ensure(root: &Path) -> Result<PathBuf, String> {
    let modules = root.join("tests/envtest");
    let key = cache_key(&modules)?;
    let cache = crate::target_dir(root).join("envtest");
    let bin = cache.join(&key).join("bin");
    if TOOLS.iter().all(|tool| bin.join(tool.binary).is_file()) {
        eprintln!("envtest: reusing {}", bin.display());
        return Ok(bin);
    }

    let scratch = cache.join(format!("{key}.building-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)
        .map_err(|e| format!("failed to create {}: {e}", scratch.display()))?;
    for (index, tool) in TOOLS.iter().enumerate() {
        let started = Instant::now();
        let dir = modules.join(tool.module);
        let ldflags = ldflags(&dir, &tool.stamp)?;
        eprintln!(
            "envtest: building {} ({}/{}) from {}; the first build takes minutes \
             (kube-apiserver about 8 on two cores), later runs reuse it",
            tool.binary,
            index + 1,
            TOOLS.len(),
            tool.package
        );
        let mut child = Command::new("go")
            .current_dir(&dir)
            .args(["build", "-trimpath", "-ldflags", &ldflags, "-o"])
            .arg(scratch.join(tool.binary))
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

/// Hash of the recipe, every file of the Go modules and the Go toolchain identity.
fn cache_key(modules: &Path) -> Result<String, String> {
    let mut hasher = Sha256::new();
    hasher.update(RECIPE.as_bytes());
    hasher.update(format!("{TOOLS:?}").as_bytes());
    let mut dirs: Vec<&str> = TOOLS.iter().map(|tool| tool.module).collect();
    dirs.dedup();
    for module in dirs {
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

/// The `-ldflags` that stamp the version into a tool built from the module in `dir`.
fn ldflags(dir: &Path, stamp: &Stamp) -> Result<String, String> {
    let mut vars: Vec<(&str, &str, String)> = Vec::new();
    match stamp {
        Stamp::None => {}
        Stamp::Kubernetes => {
            let module = required_module(dir, "k8s.io/kubernetes")?;
            let (major, minor) = kubernetes_major_minor(&module.version)?;
            for package in [
                "k8s.io/client-go/pkg/version",
                "k8s.io/component-base/version",
            ] {
                vars.extend([
                    (package, "gitVersion", module.version.clone()),
                    (package, "gitMajor", major.clone()),
                    (package, "gitMinor", minor.clone()),
                    // A module download carries no git metadata: say the commit is unknown
                    // rather than leave the `$Format:%H$` placeholder; claim no tree state.
                    (package, "gitCommit", String::new()),
                    (package, "gitTreeState", String::new()),
                    // The release's commit time, not the build's, as Kubernetes' build does
                    // under SOURCE_DATE_EPOCH: the same sources give the same binary.
                    (package, "buildDate", module.time.clone()),
                ]);
            }
        }
        Stamp::Helm => {
            let helm = required_module(dir, "helm.sh/helm/v3")?;
            let version = "helm.sh/helm/v3/internal/version";
            vars.extend([
                (version, "version", helm.version),
                // A tagged release: no "unreleased" build metadata.
                (version, "metadata", String::new()),
                (version, "gitCommit", String::new()),
                (version, "gitTreeState", String::new()),
            ]);
            // The Kubernetes version `helm template` and `helm lint` assume when no cluster
            // is asked (a chart's `kubeVersion` is checked against it): Helm's Makefile takes
            // it from client-go (v0.Y.Z is Kubernetes 1.Y); unstamped it is v1.20.
            let client_go = required_module(dir, "k8s.io/client-go")?;
            let (_, minor) = kubernetes_major_minor(&client_go.version.replacen("v0.", "v1.", 1))?;
            for package in [
                "helm.sh/helm/v3/pkg/chartutil",
                "helm.sh/helm/v3/pkg/lint/rules",
            ] {
                vars.extend([
                    (package, "k8sVersionMajor", "1".to_owned()),
                    (
                        package,
                        "k8sVersionMinor",
                        minor.trim_end_matches('+').to_owned(),
                    ),
                ]);
            }
        }
    }
    Ok(vars
        .iter()
        .map(|(package, name, value)| format!("-X {package}.{name}={value}"))
        .collect::<Vec<_>>()
        .join(" "))
}

/// A module a wrapper module requires, as `go list -m` reports it.
struct Module {
    /// `vX.Y.Z`.
    version: String,
    /// The version's commit time (RFC 3339, UTC).
    time: String,
}

fn required_module(dir: &Path, path: &str) -> Result<Module, String> {
    let output = Command::new("go")
        .current_dir(dir)
        .args(["list", "-m", "-json", path])
        .output()
        .map_err(|e| format!("failed to run go (is Go installed and on PATH?): {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "go list -m {path} failed in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let info: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("failed to parse go list -m {path}: {e}"))?;
    let field = |name: &str| {
        info[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("go list -m {path} gave no {name}"))
    };
    Ok(Module {
        version: field("Version")?,
        time: field("Time")?,
    })
}

/// `gitMajor` and `gitMinor` as `hack/lib/version.sh` derives them: `v1.37.2` gives `1` and
/// `37`; a pre-release (`v1.38.0-rc.1`) gives `38+`.
fn kubernetes_major_minor(version: &str) -> Result<(String, String), String> {
    let unexpected = || format!("unexpected Kubernetes version {version:?}");
    let core = version.strip_prefix('v').ok_or_else(unexpected)?;
    let (core, pre_release) = match core.split_once(['-', '+']) {
        Some((core, _)) => (core, true),
        None => (core, false),
    };
    let mut parts = core.split('.');
    let (Some(major), Some(minor)) = (parts.next(), parts.next()) else {
        return Err(unexpected());
    };
    if [major, minor]
        .iter()
        .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(unexpected());
    }
    let suffix = if pre_release { "+" } else { "" };
    Ok((major.to_owned(), format!("{minor}{suffix}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_major_and_minor_are_derived_as_kubernetes_does() {
        for (version, expected) in [
            ("v1.37.2", Some(("1", "37"))),
            ("v1.38.0-rc.1", Some(("1", "38+"))),
            ("v1.38.0-alpha.0.6+84c76d1142ea4d", Some(("1", "38+"))),
            ("1.37.2", None),
            ("v1", None),
            ("vx.y.z", None),
        ] {
            let got = kubernetes_major_minor(version).ok();
            let got = got.as_ref().map(|(a, b)| (a.as_str(), b.as_str()));
            assert_eq!(got, expected, "{version}");
        }
    }
}
