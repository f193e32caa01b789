//! Developer commands: `cargo xtask crds | envtest | manifests | test | bench | chaos | demo`.
//!
//! Kept to the standard library plus the operator crate itself (for the CRD types), so that
//! `cargo xtask` works on a fresh clone with nothing installed but Rust and Go.

mod bench;
mod chaos;
mod crds;
mod demo;
mod envtest;
mod image;
mod manifests;
mod processes;
mod qrs_site;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

const USAGE_TEMPLATE: &str = "\
usage: cargo xtask <command> [args]

commands:
  crds             write the CRDs generated from src/api to crds/ and the Helm chart
  envtest          build etcd, kube-apiserver, kube-controller-manager, helm and traefik from
                   tests/envtest (cached under target/), copy the Gateway API and Traefik CRDs
                   beside them, and print the directory holding the tools
  {image}
  manifests        render the Helm chart (default values, CRDs included) into
                   deploy/qlik-csp-operator.yaml for `kubectl apply`
  test [--without-qlik-definitions] [args...]
                   build the control plane tools if needed, then run `cargo test --workspace`
                   with them (extra args go to cargo test); fails when Qlik's API definitions
                   (../shared/qlik-api/{cloud,qrs}) are missing, unless --without-qlik-definitions
                   knowingly skips the tests that need them
  {bench}
  {chaos}
  {demo}";

fn usage() -> String {
    USAGE_TEMPLATE
        .replace("{bench}", bench::USAGE)
        .replace("{chaos}", chaos::USAGE)
        .replace("{demo}", demo::USAGE)
        .replace("{image}", image::USAGE)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("crds") => crds::write(&workspace_root()),
        Some("envtest") => envtest::ensure(&workspace_root()).map(|dir| {
            eprintln!(
                "envtest: the edges' CRDs are in {} (for {})",
                envtest::edge_crds_dir(&dir).display(),
                envtest::EDGE_CRDS_VAR
            );
            println!("{}", dir.display());
        }),
        Some("manifests") => {
            let root = workspace_root();
            envtest::ensure(&root).and_then(|bin| manifests::write(&bin.join("helm"), &root))
        }
        Some("image") => image::run(&workspace_root(), &args[1..]),
        Some("test") => test(&args[1..]),
        Some("bench") => bench::run(&workspace_root(), &args[1..]),
        Some("chaos") => chaos::run(&workspace_root(), &args[1..]),
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

/// The `test` flag that lets the suite run without Qlik's API definitions.
const WITHOUT_DEFINITIONS_FLAG: &str = "--without-qlik-definitions";
/// What tells the conformance tests (tests/emulator_conformance/spec.rs) that skipping is
/// allowed; without it, a test that cannot find the definitions fails.
const WITHOUT_DEFINITIONS_VAR: &str = "QLIKOPS_WITHOUT_QLIK_DEFINITIONS";

/// Runs the whole suite against the real control plane built by `envtest`. Qlik's API
/// definitions must be next to the workspace (`../shared/qlik-api/cloud` and
/// `../shared/qlik-api/qrs/Repository.json`): without them the
/// command fails before building anything, unless `--without-qlik-definitions` is given,
/// which says loudly (before and after the run) that the conformance tests were skipped.
fn test(args: &[String]) -> Result<(), String> {
    let root = workspace_root();
    // The flag is ours only before a `--`, after which everything goes to the test binaries.
    let ours = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let without_definitions = args[..ours].iter().any(|a| a == WITHOUT_DEFINITIONS_FLAG);
    let extra: Vec<&String> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| *i >= ours || *a != WITHOUT_DEFINITIONS_FLAG)
        .map(|(_, a)| a)
        .collect();

    // Both the cloud definitions and the QRS one (tests/emulator_qrs.rs) must be there.
    let qlik_api = root.join("../shared/qlik-api");
    let missing = [qlik_api.join("cloud"), qlik_api.join("qrs/Repository.json")]
        .into_iter()
        .find(|path| !path.exists());
    let definitions = missing.clone().unwrap_or(qlik_api);
    let skip = match (missing.is_none(), without_definitions) {
        (true, false) => false,
        (true, true) => {
            eprintln!(
                "xtask: {WITHOUT_DEFINITIONS_FLAG} has no effect: the definitions are in {}, \
                 so the conformance tests run",
                definitions.display()
            );
            false
        }
        (false, true) => {
            eprintln!("{}", skip_banner(&definitions));
            true
        }
        (false, false) => {
            return Err(format!(
                "Qlik's API definitions are not in {}: the emulator conformance tests check \
                 the emulator against them and would fail. Put the definitions there (CI \
                 must), or run `cargo xtask test {WITHOUT_DEFINITIONS_FLAG}` to skip those \
                 tests knowingly",
                definitions.display()
            ));
        }
    };

    let bin = envtest::ensure(&root)?;
    let mut command = Command::new(cargo());
    command
        .current_dir(&root)
        .args(["test", "--workspace", "--locked"])
        .args(extra)
        .env(envtest::BIN_DIR_VAR, &bin)
        .env(envtest::EDGE_CRDS_VAR, envtest::edge_crds_dir(&bin));
    // Only the flag may allow skipping, never a variable left in the developer's shell.
    if skip {
        command.env(WITHOUT_DEFINITIONS_VAR, "1");
    } else {
        command.env_remove(WITHOUT_DEFINITIONS_VAR);
    }
    let status = command
        .status()
        .map_err(|e| format!("failed to run cargo test: {e}"))?;
    if skip {
        // Again at the end, where the developer looks.
        eprintln!("{}", skip_banner(&definitions));
    }
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo test failed ({status})"))
    }
}

fn skip_banner(definitions: &std::path::Path) -> String {
    let rule = "!".repeat(78);
    format!(
        "{rule}\n\
         !! {WITHOUT_DEFINITIONS_FLAG}: Qlik's API definitions are missing\n\
         !! ({}).\n\
         !! The emulator conformance tests that need them are SKIPPED: nothing checks that\n\
         !! the emulator answers like Qlik's API. Never use this flag in CI.\n\
         {rule}",
        definitions.display()
    )
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
