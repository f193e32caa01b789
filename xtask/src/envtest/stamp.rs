//! The version a tool built from a wrapper module reports: the `-ldflags -X` its own
//! project's release build sets. Runs `go list -m` and reads the downloaded module.

use std::path::Path;

use super::gomod::{module_dir, required_module};

/// The `-ldflags -X` a project's own release build sets, so the binary reports its real
/// version (`/version`, `helm version`) instead of a development placeholder.
#[derive(Debug)]
pub enum Stamp {
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
    /// Traefik's Makefile and release build: `github.com/traefik/traefik/v3/pkg/version`'s
    /// `Version`, `Codename` and `BuildDate`, from the `github.com/traefik/traefik/v3`
    /// version the module requires (`traefik version`, and the log line at start).
    Traefik,
}

/// The `-ldflags` that stamp the version into a tool built from the module in `dir`.
pub fn ldflags(dir: &Path, stamp: &Stamp) -> Result<String, String> {
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
        Stamp::Traefik => {
            let module = "github.com/traefik/traefik/v3";
            let traefik = required_module(dir, module)?;
            let codename = traefik_codename(&module_dir(dir, module)?)?;
            let version = "github.com/traefik/traefik/v3/pkg/version";
            vars.extend([
                (version, "Version", traefik.version),
                (version, "Codename", codename),
                // The release's commit time, as for Kubernetes above: reproducible.
                (version, "BuildDate", traefik.time),
            ]);
        }
    }
    Ok(vars
        .iter()
        .map(|(package, name, value)| format!("-X {package}.{name}={value}"))
        .collect::<Vec<_>>()
        .join(" "))
}

/// The codename traefik's release workflow stamps (`CODENAME:` in
/// `.github/workflows/release.yaml`, which the module carries); the Makefile's default is an
/// older release's.
fn traefik_codename(module_dir: &Path) -> Result<String, String> {
    let workflow = module_dir.join(".github/workflows/release.yaml");
    let text = std::fs::read_to_string(&workflow)
        .map_err(|e| format!("failed to read {}: {e}", workflow.display()))?;
    text.lines()
        .find_map(|line| line.trim().strip_prefix("CODENAME:"))
        .map(|value| value.trim().trim_matches(['"', '\'']).to_owned())
        .filter(|value| !value.is_empty())
        .ok_or_else(|| format!("{} sets no CODENAME", workflow.display()))
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
