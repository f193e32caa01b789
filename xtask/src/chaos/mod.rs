//! `cargo xtask chaos`: faults injected into a real run of the operator (release build)
//! against a real kube-apiserver and the tenant emulator. Each scenario records what it did
//! and checks its invariants as counts; the command writes `target/chaos/report.json`,
//! prints a table, and fails when any invariant fails.
//!
//! Unlike `cargo xtask bench`, nothing here is a figure to compare: a scenario passes or
//! fails on counts (duplicates, lost entries, requests over a tier limit), never on how
//! fast it was, so a loaded machine makes a run slower, not red. Timings are recorded for
//! the reader only, except the convergence bound, which is generous on purpose.
//!
//! Scenarios: `tenant_faults` ([`tenant_faults`]), `secret_faults` ([`secret_faults`]),
//! `site_faults` ([`site_faults`]), `control_plane` ([`control_plane`]),
//! `operator_kills` ([`operator_kills`]), `failover` ([`failover`]), and `soak`
//! ([`soak`]), which runs on a control plane of its own alongside the others: their faults
//! are not its steady state, and 30 minutes of soak after the rest would take the matrix
//! past 40. For the same reason `secret_faults` and `site_faults` run on a third control
//! plane ([`SIDE_SCENARIOS`]).

mod control;
mod control_plane;
mod converged;
mod failover;
mod faults;
mod kills;
mod measure;
mod operator_kills;
mod pushing;
mod rotating;
mod rotation_kills;
mod secret_faults;
mod site_faults;
mod soak;
mod tenant_faults;

use std::path::Path;

use qlikops_testenv::ControlPlane;
use serde_json::{Map, Value, json};

use crate::bench::Bench;

/// The scenarios that run on a control plane of their own, alongside the others (which
/// run one after the other on theirs) and the soak: the full matrix stays under 40 minutes
/// that way. None restarts its apiserver, and each has its own namespace, operator and
/// emulator.
const SIDE_SCENARIOS: [&str; 2] = ["secret_faults", "site_faults"];

const SCENARIOS: [&str; 7] = [
    "tenant_faults",
    "secret_faults",
    "site_faults",
    "control_plane",
    "operator_kills",
    "failover",
    "soak",
];

pub const USAGE: &str = "chaos [--only <scenario,...>] [--quick]
                   inject faults into a run of the operator (release build) on a fresh
                   control plane with the tenant emulator (scenarios: tenant_faults,
                   secret_faults, site_faults, control_plane, operator_kills, failover,
                   soak; default all), check each scenario's invariants as counts, write
                   target/chaos/report.json and print a table; exits non-zero when any
                   invariant fails. --quick: fewer entries, kills and rotations, shorter
                   outages, a 5-minute soak instead of 30. QLIKOPS_CHAOS_SEED=<n> repeats
                   the kill moments of operator_kills and site_faults";

/// What the command line asks for.
#[derive(Debug, PartialEq)]
struct Options {
    only: Vec<String>,
    quick: bool,
}

impl Options {
    fn wants(&self, scenario: &str) -> bool {
        self.only.iter().any(|s| s == scenario)
    }

    fn parse(args: &[String]) -> Result<Options, String> {
        let mut only: Vec<String> = SCENARIOS.iter().map(|s| s.to_string()).collect();
        let mut quick = false;
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
                "--quick" => quick = true,
                other => return Err(format!("unknown argument {other}\nusage: {USAGE}")),
            }
        }
        Ok(Options { only, quick })
    }
}

/// One invariant of a scenario, as a count against its bound.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub name: &'static str,
    pub value: u64,
    bound: Bound,
}

/// What an invariant's count must be.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Bound {
    Exactly(u64),
    AtMost(u64),
}

impl Check {
    /// `value` must be `expected`.
    pub fn exactly(name: &'static str, value: u64, expected: u64) -> Check {
        Check {
            name,
            value,
            bound: Bound::Exactly(expected),
        }
    }

    /// `value` must not exceed `limit`.
    pub fn at_most(name: &'static str, value: u64, limit: u64) -> Check {
        Check {
            name,
            value,
            bound: Bound::AtMost(limit),
        }
    }

    pub fn passed(&self) -> bool {
        match self.bound {
            Bound::Exactly(expected) => self.value == expected,
            Bound::AtMost(limit) => self.value <= limit,
        }
    }

    fn bound_text(&self) -> String {
        match self.bound {
            Bound::Exactly(expected) => format!("= {expected}"),
            Bound::AtMost(limit) => format!("<= {limit}"),
        }
    }
}

/// What a scenario hands back: what it did (for the reader) and its invariants.
pub struct Outcome {
    pub did: Value,
    pub checks: Vec<Check>,
}

impl Outcome {
    fn passed(&self) -> bool {
        self.checks.iter().all(Check::passed)
    }

    fn to_json(&self) -> Value {
        let invariants: Map<String, Value> = self
            .checks
            .iter()
            .map(|c| {
                let value = json!({
                    "value": c.value,
                    "bound": c.bound_text(),
                    "passed": c.passed(),
                });
                (c.name.to_owned(), value)
            })
            .collect();
        json!({ "passed": self.passed(), "did": self.did, "invariants": invariants })
    }
}

pub fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let options = Options::parse(args)?;
    let out = crate::target_dir(root).join("chaos");
    let report_path = out.join("report.json");
    let tools = crate::envtest::ensure(root)?;
    crate::bench::build_release(root)?;
    // The tree the binaries were built from, not the one when the report is written.
    let machine = crate::bench::machine();
    let work = out.join("work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)
        .map_err(|e| format!("failed to create {}: {e}", work.display()))?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("no async runtime: {e}"))?;

    let started_at = jiff::Timestamp::now().to_string();
    let load_before = crate::bench::load_average();
    println!("starting etcd and kube-apiserver...");
    let control_plane = ControlPlane::start(&tools, &root.join("crds"))?;
    let soak_plane = if options.wants("soak") {
        println!("starting the soak's own etcd and kube-apiserver...");
        Some(ControlPlane::start(&tools, &root.join("crds"))?)
    } else {
        None
    };
    let side_plane = if SIDE_SCENARIOS.iter().any(|s| options.wants(s)) {
        println!("starting etcd and kube-apiserver for {SIDE_SCENARIOS:?}...");
        Some(ControlPlane::start(&tools, &root.join("crds"))?)
    } else {
        None
    };
    let bench_on = |plane: &ControlPlane| {
        let kubeconfig = plane.kubeconfig.clone();
        let work = work.clone();
        async move {
            Ok::<Bench, String>(Bench {
                client: qlikops_testenv::client_from_kubeconfig(&kubeconfig, None).await?,
                kubeconfig,
                bins: crate::target_dir(root).join("release"),
                work,
            })
        }
    };
    let outcomes = runtime.block_on(async {
        let bench = bench_on(&control_plane).await?;
        // Not spawned: the operators must be started from this thread (see
        // `processes::spawn_tied`), so the soak is polled alongside, not on a worker.
        let soak = async {
            let Some(plane) = &soak_plane else {
                return Ok(None);
            };
            let plan = soak::Plan::new(options.quick);
            println!("soak: {plan}...");
            soak::run(&bench_on(plane).await?, &plan).await.map(Some)
        };
        let side = async {
            match &side_plane {
                Some(plane) => side_scenarios(&bench_on(plane).await?, &options).await,
                None => Ok(Vec::new()),
            }
        };
        let (outcomes, side, soak) =
            futures::join!(scenarios(&bench, &control_plane, &options), side, soak);
        let mut outcomes = outcomes?;
        outcomes.extend(side?);
        if let Some(soak) = soak? {
            outcomes.push(("soak", soak));
        }
        Ok::<_, String>(outcomes)
    })?;
    drop(control_plane);
    drop(soak_plane);
    drop(side_plane);

    let passed = outcomes.iter().all(|(_, o)| o.passed());
    let scenarios: Map<String, Value> = outcomes
        .iter()
        .map(|(name, outcome)| ((*name).to_owned(), outcome.to_json()))
        .collect();
    let report = json!({
        "machine": machine,
        "started_at": started_at,
        "load_average_1m": { "before": load_before, "after": crate::bench::load_average() },
        "quick": options.quick,
        "passed": passed,
        "scenarios": scenarios,
    });
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(&report_path, text + "\n")
        .map_err(|e| format!("failed to write {}: {e}", report_path.display()))?;
    println!("\n{}", table(&outcomes));
    println!(
        "report: {}\noperator logs: {}",
        report_path.display(),
        work.display()
    );
    let failed: Vec<String> = outcomes
        .iter()
        .flat_map(|(scenario, o)| {
            o.checks
                .iter()
                .filter(|c| !c.passed())
                .map(move |c| format!("{scenario}.{}", c.name))
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("invariants failed: {}", failed.join(", ")))
    }
}

/// Runs the chosen scenarios, in the order of [`SCENARIOS`].
async fn scenarios(
    bench: &Bench,
    control_plane: &ControlPlane,
    options: &Options,
) -> Result<Vec<(&'static str, Outcome)>, String> {
    let wants = |name: &str| options.wants(name);
    let mut outcomes = Vec::new();
    if wants("tenant_faults") {
        let plan = tenant_faults::Plan::new(options.quick);
        println!("tenant_faults: {plan}...");
        outcomes.push(("tenant_faults", tenant_faults::run(bench, &plan).await?));
    }
    if wants("control_plane") {
        let plan = control_plane::Plan::new(options.quick);
        println!("control_plane: {plan}...");
        let outcome = control_plane::run(bench, control_plane, &plan).await?;
        outcomes.push(("control_plane", outcome));
    }
    if wants("operator_kills") {
        let plan = operator_kills::Plan::new(options.quick);
        let seed = kills::seed()?;
        println!("operator_kills: {plan} (seed {seed})...");
        let outcome = operator_kills::run(bench, &plan, seed).await?;
        outcomes.push(("operator_kills", outcome));
    }
    if wants("failover") {
        let plan = failover::Plan::new(options.quick);
        println!("failover: {plan}...");
        outcomes.push(("failover", failover::run(bench, &plan).await?));
    }
    Ok(outcomes)
}

/// Runs the chosen [`SIDE_SCENARIOS`], in that order, on a control plane of their own.
async fn side_scenarios(
    bench: &Bench,
    options: &Options,
) -> Result<Vec<(&'static str, Outcome)>, String> {
    let mut outcomes = Vec::new();
    if options.wants("secret_faults") {
        let plan = secret_faults::Plan::new(options.quick);
        println!("secret_faults: {plan}...");
        let outcome = secret_faults::run(bench, &plan).await?;
        outcomes.push(("secret_faults", outcome));
    }
    if options.wants("site_faults") {
        let plan = site_faults::Plan::new(options.quick);
        let seed = kills::seed()?;
        println!("site_faults: {plan} (seed {seed})...");
        let outcome = site_faults::run(bench, &plan, seed).await?;
        outcomes.push(("site_faults", outcome));
    }
    Ok(outcomes)
}

/// The invariants of every scenario, one per line, as Markdown (the README shows it).
fn table(outcomes: &[(&'static str, Outcome)]) -> String {
    let mut lines = vec![
        "| scenario | invariant | count | bound | result |".to_owned(),
        "|---|---|---:|---|---|".to_owned(),
    ];
    for (scenario, outcome) in outcomes {
        for check in &outcome.checks {
            let result = if check.passed() { "pass" } else { "FAIL" };
            lines.push(format!(
                "| {scenario} | {} | {} | {} | {result} |",
                check.name,
                check.value,
                check.bound_text()
            ));
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn options_name_known_scenarios_and_quick() {
        assert_eq!(
            Options::parse(&args("--only tenant_faults --quick")),
            Ok(Options {
                only: vec!["tenant_faults".to_owned()],
                quick: true
            })
        );
        assert_eq!(
            Options::parse(&args("--only control_plane,operator_kills,failover")),
            Ok(Options {
                only: vec![
                    "control_plane".to_owned(),
                    "operator_kills".to_owned(),
                    "failover".to_owned()
                ],
                quick: false
            })
        );
        assert_eq!(
            Options::parse(&[]).map(|o| o.only),
            Ok(SCENARIOS.map(str::to_owned).to_vec())
        );
        assert!(Options::parse(&args("--only nope")).is_err());
        assert!(Options::parse(&args("--only")).is_err());
        assert!(Options::parse(&args("--slow")).is_err());
    }

    #[test]
    fn a_scenario_fails_when_any_count_is_outside_its_bound() {
        let outcome = Outcome {
            did: json!({}),
            checks: vec![
                Check::exactly("duplicates", 0, 0),
                Check::at_most("writes_per_minute", 101, 100),
            ],
        };
        assert!(!outcome.passed());
        let report = outcome.to_json();
        assert_eq!(report["invariants"]["duplicates"]["passed"], true);
        assert_eq!(report["invariants"]["writes_per_minute"]["bound"], "<= 100");
        assert_eq!(report["invariants"]["writes_per_minute"]["passed"], false);
        let table = table(&[("tenant_faults", outcome)]);
        assert!(table.contains("| tenant_faults | writes_per_minute | 101 | <= 100 | FAIL |"));
    }
}
