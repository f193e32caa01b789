//! `cargo xtask bench`: the operator (release build) against a real kube-apiserver and
//! tenant emulators with Qlik's rate limits on. Writes `target/bench/report.json` and
//! prints a table. Figures are measured, never asserted.
//!
//! `--repeat N` runs every chosen scenario N times, each run on a fresh control plane (an
//! apiserver without kube-controller-manager never empties a namespace, and `scale` watches
//! all of them); the report keeps every run's raw figures under `runs` and, per scenario,
//! each figure's median, min and max ([`summary`]). `--readme` renders a report into
//! README.md ([`readme`]).

pub(crate) mod api_key_rotation;
pub(crate) mod burst;
pub(crate) mod cluster;
mod edit_latency;
pub(crate) mod memory;
mod readme;
pub(crate) mod rotation;
mod scale;
mod spans;
mod summary;

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

pub const USAGE: &str = "bench [--only <scenario,...>] [--scale-tenants N] [--repeat N]
                   run the benchmark (scenarios: csp_burst, csp_steady (runs with
                   csp_burst), csp_edit_latency, rotation, scale; default all, scale
                   with 40 tenants) N times (default 1), each run on a fresh control
                   plane, and write target/bench/report.json: every run's figures and
                   each figure's median and min-max
  bench --readme [--report <path>]
                   rewrite the benchmark table in README.md from a report (default
                   target/bench/report.json) without running anything";

/// What the command line asks for.
#[derive(Debug, PartialEq)]
enum Options {
    Run {
        only: Vec<String>,
        scale_tenants: usize,
        repeat: usize,
    },
    Readme {
        report: Option<PathBuf>,
    },
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        if args.first().is_some_and(|a| a == "--readme") {
            return match &args[1..] {
                [] => Ok(Options::Readme { report: None }),
                [flag, path] if flag == "--report" => Ok(Options::Readme {
                    report: Some(PathBuf::from(path)),
                }),
                _ => Err(format!(
                    "--readme takes only --report <path>\nusage: {USAGE}"
                )),
            };
        }
        let mut only: Vec<String> = SCENARIOS.iter().map(|s| s.to_string()).collect();
        let mut scale_tenants = 40;
        let mut repeat = 1;
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
                        .filter(|n| *n > 0)
                        .ok_or("--scale-tenants needs a positive number")?;
                }
                "--repeat" => {
                    repeat = args
                        .next()
                        .and_then(|n| n.parse().ok())
                        .filter(|n| *n > 0)
                        .ok_or("--repeat needs a positive number")?;
                }
                "--readme" => return Err("--readme goes first and runs nothing".to_owned()),
                other => return Err(format!("unknown argument {other}\nusage: {USAGE}")),
            }
        }
        Ok(Options::Run {
            only,
            scale_tenants,
            repeat,
        })
    }
}

pub fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let out = crate::target_dir(root).join("bench");
    let report_path = out.join("report.json");
    let (only, scale_tenants, repeat) = match Options::parse(args)? {
        Options::Readme { report } => {
            return readme::rewrite(root, &report.unwrap_or(report_path));
        }
        Options::Run {
            only,
            scale_tenants,
            repeat,
        } => (only, scale_tenants, repeat),
    };

    let tools = crate::envtest::ensure(root)?;
    build_release(root)?;
    // The tree the binaries were built from: the report is written later, and a commit
    // made meanwhile is not what was measured.
    let machine = machine();
    let work = out.join("work");
    let _ = std::fs::remove_dir_all(&work);
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("no async runtime: {e}"))?;
    let mut runs = Vec::with_capacity(repeat);
    let mut report = Value::Null;
    for index in 1..=repeat {
        let run_work = work.join(format!("run-{index}"));
        std::fs::create_dir_all(&run_work)
            .map_err(|e| format!("failed to create {}: {e}", run_work.display()))?;
        let mut run = Map::new();
        run.insert(
            "started_at".into(),
            json!(jiff::Timestamp::now().to_string()),
        );
        run.insert("load_average_1m".into(), json!(load_average()));
        println!("run {index}/{repeat}: starting etcd and kube-apiserver...");
        let control_plane = ControlPlane::start(&tools, &root.join("crds"))?;
        let figures = runtime.block_on(async {
            let bench = Bench {
                client: control_plane.admin_client().await?,
                kubeconfig: control_plane.kubeconfig.clone(),
                bins: crate::target_dir(root).join("release"),
                work: run_work.clone(),
            };
            scenarios(&bench, &only, scale_tenants).await
        })?;
        drop(control_plane);
        run.extend(figures);
        runs.push(Value::Object(run));
        // Written after every run, so a failure in a later run keeps what was measured.
        report = build_report(&machine, &runs);
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(&report_path, text + "\n")
            .map_err(|e| format!("failed to write {}: {e}", report_path.display()))?;
    }
    print_table(&report);
    println!(
        "\nreport: {}\noperator logs: {}\nREADME table: cargo xtask bench --readme",
        report_path.display(),
        work.display()
    );
    Ok(())
}

/// Builds the operator and the emulator in release mode: what users run, and what the
/// figures (and `cargo xtask chaos`'s verdicts) are about.
pub(crate) fn build_release(root: &Path) -> Result<(), String> {
    println!("building the operator and the emulator (release)...");
    let status = Command::new(crate::cargo())
        .current_dir(root)
        .args(["build", "--release", "--locked", "--bins"])
        .status()
        .map_err(|e| format!("failed to run cargo build: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo build --release failed ({status})"))
    }
}

/// The report of `runs`: the machine (as [`machine`] saw it when the binaries were built),
/// each scenario's summarized figures, and the runs.
fn build_report(machine: &Value, runs: &[Value]) -> Value {
    let scenario_runs: Vec<Value> = runs
        .iter()
        .map(|run| {
            let figures = run.as_object().into_iter().flatten();
            Value::Object(
                figures
                    .filter(|(key, _)| SCENARIOS.contains(&key.as_str()))
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect(),
            )
        })
        .collect();
    let mut report = Map::new();
    report.insert("machine".into(), machine.clone());
    report.insert("repeat".into(), json!(runs.len()));
    if let Value::Object(summary) = summary::summarize(&scenario_runs) {
        report.extend(summary);
    }
    report.insert("runs".into(), Value::Array(runs.to_vec()));
    Value::Object(report)
}

/// The 1-minute load average: the machine is shared, and figures mean little without it.
pub(crate) fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// One run of the chosen scenarios: `{scenario: {figure: value}}`.
async fn scenarios(
    bench: &Bench,
    only: &[String],
    scale_tenants: usize,
) -> Result<Map<String, Value>, String> {
    let wants = |name: &str| only.iter().any(|s| s == name);
    let mut report = Map::new();
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
    Ok(report)
}

pub(crate) fn machine() -> Value {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    // `-dirty` when the working tree has changes: the figures are of uncommitted code.
    let commit = Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=7"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    json!({ "cpus": cpus, "commit": commit })
}

/// Every figure of every scenario: the median, and min and max over the runs.
fn print_table(report: &Value) {
    println!(
        "\n{:<18} {:<60} {:>10} {:>10} {:>10}",
        "scenario", "figure", "median", "min", "max"
    );
    for scenario in SCENARIOS {
        let Some(figures) = report.get(scenario) else {
            continue;
        };
        for (name, figure) in summary::figures(figures) {
            let [median, min, max] =
                [summary::MEDIAN, "min", "max"].map(|key| figure[key].to_string());
            println!("{scenario:<18} {name:<60} {median:>10} {min:>10} {max:>10}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn repeat_and_readme_are_parsed() {
        assert_eq!(
            Options::parse(&args("--only scale --scale-tenants 2 --repeat 3")),
            Ok(Options::Run {
                only: vec!["scale".to_owned()],
                scale_tenants: 2,
                repeat: 3
            })
        );
        assert_eq!(
            Options::parse(&args("--readme")),
            Ok(Options::Readme { report: None })
        );
        assert_eq!(
            Options::parse(&args("--readme --report r.json")),
            Ok(Options::Readme {
                report: Some(PathBuf::from("r.json"))
            })
        );
        assert!(Options::parse(&args("--repeat 0")).is_err());
        assert!(Options::parse(&args("--repeat")).is_err());
        assert!(Options::parse(&args("--only scale --readme")).is_err());
    }

    #[test]
    fn the_report_summarizes_scenarios_and_keeps_each_run_whole() {
        let runs = [
            json!({ "started_at": "t1", "load_average_1m": 3.0, "scale": { "peak_rss_mib": 40 } }),
            json!({ "started_at": "t2", "load_average_1m": 5.0, "scale": { "peak_rss_mib": 42 } }),
        ];
        let report = build_report(&json!({ "cpus": 2, "commit": "abc1234" }), &runs);
        assert_eq!(report["repeat"], 2);
        assert_eq!(
            report["machine"]["commit"], "abc1234",
            "the build's, not the report's"
        );
        assert_eq!(report["scale"]["peak_rss_mib"]["median"], 41);
        assert!(report.get("load_average_1m").is_none());
        assert_eq!(report["runs"][1], runs[1]);
    }
}
