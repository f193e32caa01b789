//! `cargo xtask bench`: the operator (release build) against a real kube-apiserver and
//! tenant emulators with Qlik's rate limits on. Writes `target/bench/report.json` and
//! prints a table. Figures are measured, never asserted.

mod burst;
pub(crate) mod cluster;
mod edit_latency;
mod rotation;

mod scale;

use std::path::{Path, PathBuf};
use std::process::Command;

use kube::Client;
use qlikops_testenv::ControlPlane;
use serde_json::{Map, Value, json};

/// What every scenario needs.
pub struct Bench {
    pub client: Client,
    pub kubeconfig: PathBuf,
    /// Where the release binaries are.
    pub bins: PathBuf,
    /// Scratch files and operator logs.
    pub work: PathBuf,
}

const SCENARIOS: [&str; 5] = [
    "csp_burst",
    "csp_edit_latency",
    "csp_steady",
    "scale",
    "rotation",
];

pub const USAGE: &str = "bench [--only <scenario,...>] [--scale-tenants N]
                   run the benchmark (scenarios: csp_burst, csp_steady (runs with
                   csp_burst), csp_edit_latency, rotation, scale; default all, scale
                   with 40 tenants) and write target/bench/report.json";

pub fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let mut only: Vec<String> = SCENARIOS.iter().map(|s| s.to_string()).collect();
    let mut scale_tenants = 40;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--only" => {
                let list = args.next().ok_or("--only needs a list of scenarios")?;
                only = list.split(',').map(str::to_owned).collect();
                if let Some(unknown) = only.iter().find(|s| !SCENARIOS.contains(&s.as_str())) {
                    return Err(format!("unknown scenario {unknown}; known: {SCENARIOS:?}"));
                }
            }
            "--scale-tenants" => {
                scale_tenants = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("--scale-tenants needs a number")?;
            }
            other => return Err(format!("unknown argument {other}\nusage: {USAGE}")),
        }
    }

    let tools = crate::envtest::ensure(root)?;
    println!("building the operator and the emulator (release)...");
    let status = Command::new(crate::cargo())
        .current_dir(root)
        .args(["build", "--release", "--locked", "--bins"])
        .status()
        .map_err(|e| format!("failed to run cargo build: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build --release failed ({status})"));
    }
    let target = crate::target_dir(root);
    let out = target.join("bench");
    let work = out.join("work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)
        .map_err(|e| format!("failed to create {}: {e}", work.display()))?;

    println!("starting etcd and kube-apiserver...");
    let control_plane = ControlPlane::start(&tools, &root.join("crds"))?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("no async runtime: {e}"))?;
    let report = runtime.block_on(async {
        let bench = Bench {
            client: control_plane.admin_client().await?,
            kubeconfig: control_plane.kubeconfig.clone(),
            bins: target.join("release"),
            work: work.clone(),
        };
        scenarios(&bench, &only, scale_tenants).await
    })?;
    let path = out.join("report.json");
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(&path, text + "\n")
        .map_err(|e| format!("failed to write {}: {e}", path.display()))?;
    print_table(&report);
    println!(
        "\nreport: {}\noperator logs: {}",
        path.display(),
        work.display()
    );
    Ok(())
}

async fn scenarios(bench: &Bench, only: &[String], scale_tenants: usize) -> Result<Value, String> {
    let wants = |name: &str| only.iter().any(|s| s == name);
    let mut report = Map::new();
    report.insert("machine".into(), machine());
    if wants("csp_burst") || wants("csp_steady") {
        println!("csp_burst + csp_steady: 250 entries on one tenant...");
        let (burst, steady) = burst::run(bench).await?;
        println!("csp_burst: {burst}\ncsp_steady: {steady}");
        report.insert("csp_burst".into(), burst);
        report.insert("csp_steady".into(), steady);
    }
    if wants("csp_edit_latency") {
        println!("csp_edit_latency: 100 sequential edits...");
        let edits = edit_latency::run(bench).await?;
        println!("csp_edit_latency: {edits}");
        report.insert("csp_edit_latency".into(), edits);
    }
    if wants("rotation") {
        println!("rotation: 20 rotations under a consumer...");
        let rotation = rotation::run(bench).await?;
        println!("rotation: {rotation}");
        report.insert("rotation".into(), rotation);
    }
    if wants("scale") {
        println!("scale: {scale_tenants} tenants x 250 entries...");
        let scale = scale::run(bench, scale_tenants).await?;
        println!("scale: {scale}");
        report.insert("scale".into(), scale);
    }
    Ok(Value::Object(report))
}

fn machine() -> Value {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    json!({ "cpus": cpus, "commit": commit })
}

fn print_table(report: &Value) {
    println!("\n{:<18} {:<28} {:>12}", "scenario", "figure", "value");
    for scenario in SCENARIOS {
        let Some(figures) = report.get(scenario).and_then(Value::as_object) else {
            continue;
        };
        for (name, value) in figures {
            if value.is_object() {
                continue; // breakdowns stay in the JSON
            }
            println!("{scenario:<18} {name:<28} {value:>12}");
        }
    }
}
