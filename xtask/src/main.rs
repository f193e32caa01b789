//! Developer commands: `cargo xtask crds | envtest | manifests | test`.
//!
//! Kept to the standard library plus the operator crate itself (for the CRD types), so that
//! `cargo xtask` works on a fresh clone with nothing installed but Rust and Go.

mod bench;
mod crds;
mod demo;
mod envtest;
mod image;
mod manifests;
mod processes;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

const USAGE_TEMPLATE: &str = "\
usage: cargo xtask <command> [args]

commands:
  crds             write the CRDs generated from src/api to crds/ and the Helm chart
  envtest          build etcd, kube-apiserver and helm from tests/envtest (cached under target/)
                   and print the directory holding them
  {image}
  manifests        render the Helm chart (default values, CRDs included) into
                   deploy/qlik-csp-operator.yaml for `kubectl apply`
  test [args...]   build the control plane tools if needed, then run `cargo test --workspace`
                   with them (extra args go to cargo test)
  {bench}
  {demo}";

fn usage() -> String {
    USAGE_TEMPLATE
        .replace("{bench}", bench::USAGE)
        .replace("{demo}", demo::USAGE)
        .replace("{image}", image::USAGE)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("crds") => crds::write(&workspace_root()),
        Some("envtest") => {
            envtest::ensure(&workspace_root()).map(|dir| println!("{}", dir.display()))
        }
        Some("manifests") => {
            let root = workspace_root();
            envtest::ensure(&root).and_then(|bin| manifests::write(&bin.join("helm"), &root))
        }
        Some("image") => image::run(&workspace_root(), &args[1..]),
        Some("test") => test(&args[1..]),
        Some("bench") => bench::run(&workspace_root(), &args[1..]),
        Some("demo") => demo::run(&workspace_root(), &args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{}", usage());
            Ok(())
        }
        _ => Err(usage()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the whole suite against the real control plane built by `envtest`.
fn test(extra: &[String]) -> Result<(), String> {
    let root = workspace_root();
    let bin = envtest::ensure(&root)?;
    let status = Command::new(cargo())
        .current_dir(&root)
        .args(["test", "--workspace", "--locked"])
        .args(extra)
        .env(envtest::BIN_DIR_VAR, &bin)
        .status()
        .map_err(|e| format!("failed to run cargo test: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo test failed ({status})"))
    }
}

pub(crate) fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

fn workspace_root() -> PathBuf {
    // xtask/ is a direct child of the workspace root.
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// The target directory cargo uses for this workspace (honours `CARGO_TARGET_DIR`).
pub(crate) fn target_dir(root: &std::path::Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}
