//! The programs the image test drives: crane (built from `tests/envtest/crane`), skopeo,
//! helm (from the envtest tools), git; and the processes it starts.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use sha2::{Digest, Sha256};

use super::archive::{scratch, workspace};

/// crane, built from tests/envtest/crane into target/envtest/crane-<hash of the module>.
pub fn crane() -> PathBuf {
    let module = workspace().join("tests/envtest/crane");
    let mut hasher = Sha256::new();
    for file in ["go.mod", "go.sum"] {
        hasher.update(std::fs::read(module.join(file)).unwrap());
    }
    let go = Command::new("go").args(["env", "GOVERSION"]).output();
    hasher.update(go.expect("go is needed to build crane").stdout);
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap();
    let dir = target
        .join("envtest")
        .join(format!("crane-{}", &hex::encode(hasher.finalize())[..16]));
    let binary = dir.join("crane");
    if !binary.is_file() {
        let scratch = dir.with_extension(format!("building-{}", std::process::id()));
        let status = Command::new("go")
            .current_dir(&module)
            .args(["build", "-trimpath", "-o"])
            .arg(scratch.join("crane"))
            .arg("github.com/google/go-containerregistry/cmd/crane")
            .env("CGO_ENABLED", "0")
            .status()
            .unwrap();
        assert!(status.success(), "go build of crane failed ({status})");
        // A concurrent build may have won the race; its binary is as good.
        if std::fs::rename(&scratch, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&scratch);
        }
    }
    binary
}

/// Runs `program` and returns its standard output, failing the test with its error output.
pub fn run(program: &Path, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "failed to run {} (is it installed?): {e}",
                program.display()
            )
        });
    assert!(
        output.status.success(),
        "{} {args:?} failed ({}):\n{}",
        program.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `helm template` of the chart with `args`; fails the test with helm's error output.
pub fn helm(args: &[&str]) -> String {
    let output = helm_output(args);
    assert!(
        output.status.success(),
        "helm template {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

pub fn helm_output(args: &[&str]) -> std::process::Output {
    let bin = qlikops_testenv::bin_dir_from_env().unwrap_or_else(|e| panic!("{e}"));
    let home = scratch().join("helm");
    Command::new(bin.join("helm"))
        .current_dir(workspace())
        .args(["template", "qlik-csp-operator", "charts/qlik-csp-operator"])
        .args(["--namespace", "qlik-csp-operator"])
        .args(args)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .unwrap()
}

pub fn git(args: &[&str]) -> String {
    let output = Command::new("git")
        .current_dir(workspace())
        .args(args)
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Kills the process when the test ends, passes or panics.
pub struct Killed(pub Child);

impl Killed {
    /// Fails the test at once when the process has exited (a binary that cannot start, say
    /// for a missing library, would otherwise show as a timeout).
    pub fn assert_running(&mut self) {
        if let Some(status) = self.0.try_wait().unwrap() {
            panic!("the process exited ({status}); its error output is above");
        }
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback address with a port free right now (the process binds it a moment later).
pub fn free_loopback_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}
