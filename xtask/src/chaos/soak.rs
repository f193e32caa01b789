//! `soak`: the operator left running at steady state with light churn, an entry edited
//! every few seconds and an API key rotated every few minutes while a consumer uses it,
//! for 30 minutes (`--quick`: 5). Looks for what only time shows: memory that grows, a
//! controller that loops, calls or writes that creep up.
//!
//! It runs on a control plane of its own, alongside the other scenarios (see
//! [`super::run`]): their faults (an apiserver restarted, an operator killed) are not its
//! steady state, and the whole matrix stays within 40 minutes.
//!
//! Every minute it samples the operator's RSS, its tenant calls (the emulator's counters,
//! the consumer's own calls left out), its reconciles (`qlikops_reconcile_total` from its
//! metrics endpoint) and the CspEntry writes the apiserver saw. Invariants, as counts:
//! - `rss_growth_kib`: the RSS at the end minus the RSS after the first minute of churn;
//! - `max_reconciles_per_minute`, `max_tenant_calls_per_minute`,
//!   `max_entry_status_writes_per_minute`: the most in any one minute, against a budget
//!   derived from the churn (see [`Budget`]); a hot loop shows as hundreds a minute;
//! - `converged.entries_ready`, `rotations_completed`, `consumer_auth_failures`,
//!   `leaked_credentials`.

use std::fmt;
use std::time::{Duration, Instant};

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use qlik_csp_operator::api::CspEntry;
use serde_json::{Value, json};

use super::{Check, Outcome};
use crate::bench::Bench;
use crate::bench::api_key_rotation::{self as rotations, Consumer};
use crate::bench::burst::round;
use crate::bench::cluster::{self, Tracker};
use crate::bench::memory::OperatorMemory;
use crate::processes::{Emulator, Operator};

const NAMESPACE: &str = "chaos-soak";
/// The drift interval of the soak's tenant: every entry is compared with the tenant this
/// often, so the soak also covers drift checks at steady state.
const SYNC_INTERVAL_SECONDS: u64 = 120;
const SAMPLE_EVERY: Duration = Duration::from_secs(60);
const SETTLE_WITHIN: Duration = Duration::from_secs(300);
/// The directives an edit cycles through; each edit changes the entry's content.
const DIRECTIVE_CYCLE: [&str; 3] = ["img-src", "font-src", "media-src"];
/// Growth allowed over the soak: allocator noise, not a leak. A leak of 10 KB per edit
/// (360 edits in the full run) would show as 3.5 MiB.
const RSS_GROWTH_KIB: u64 = 2048;

/// The soak's size: the full run or `--quick`.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub duration: Duration,
    pub entries: usize,
    pub edit_every: Duration,
    pub rotate_every: Duration,
}

impl Plan {
    pub fn new(quick: bool) -> Plan {
        Plan {
            duration: Duration::from_secs(if quick { 5 * 60 } else { 30 * 60 }),
            entries: if quick { 50 } else { 100 },
            edit_every: Duration::from_secs(5),
            rotate_every: Duration::from_secs(if quick { 120 } else { 300 }),
        }
    }

    fn edits_per_minute(&self) -> u64 {
        60 / self.edit_every.as_secs().max(1)
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} min at steady state: {} entries, one edited every {} s, a rotation every {} s",
            self.duration.as_secs() / 60,
            self.entries,
            self.edit_every.as_secs(),
            self.rotate_every.as_secs()
        )
    }
}

/// What one minute of churn may cost at most, from what the churn asks for. Each bound
/// is twice the work the design does, so that a retry or a watch event arriving late does
/// not fail the soak while a loop (a reconcile or a call per second or more) does.
#[derive(Debug, PartialEq)]
struct Budget {
    reconciles: u64,
    tenant_calls: u64,
    status_writes: u64,
}

impl Budget {
    fn of(plan: &Plan) -> Budget {
        let edits = plan.edits_per_minute();
        // Drift: every entry is reconciled once per sync interval, and the tenant listed.
        let drift_reconciles = (plan.entries as u64 * 60).div_ceil(SYNC_INTERVAL_SECONDS);
        // A rotation: create, the consumer's grace, revoke; a few reconciles and calls.
        let rotation = 10;
        Budget {
            // An edit: the entry's reconcile, the one its status write wakes, the tenant's.
            reconciles: 2 * (3 * edits + drift_reconciles + rotation),
            // An edit: the PUT and the header fetch; a drift check: one list.
            tenant_calls: 2 * (2 * edits + 1 + rotation),
            // An edit: one status write (Ready for the new generation).
            status_writes: 2 * edits,
        }
    }
}

/// One minute's sample of the operator.
#[derive(Clone, Debug)]
struct Sample {
    at_seconds: f64,
    rss_kib: u64,
    tenant_calls: u64,
    reconciles: u64,
    entry_writes: u64,
    edits: u64,
}

pub async fn run(bench: &Bench, plan: &Plan) -> Result<Outcome, String> {
    cluster::create_namespace(&bench.client, NAMESPACE).await?;
    let emulator = Emulator::start(&bench.bins, &bench.work, "soak", &[])?;
    let sync_interval = format!("{SYNC_INTERVAL_SECONDS}s");
    cluster::create_tenant(&bench.client, NAMESPACE, &emulator, &sync_interval).await?;
    let rotation_api = rotations::create(&bench.client, NAMESPACE, "soak consumer").await?;
    let operator = Operator::start(
        &bench.bins,
        &bench.kubeconfig,
        &[
            "--log-format",
            "json",
            "--namespace",
            NAMESPACE,
            "--grace-period-override",
            "3s",
        ],
        bench.work.join("operator-soak.log"),
    )?;
    let entry_api: Api<CspEntry> = Api::namespaced(bench.client.clone(), NAMESPACE);
    let entries = Tracker::start(entry_api.clone(), watcher::Config::default()).await?;
    let rotation_tracker = Tracker::start(rotation_api.clone(), watcher::Config::default()).await?;
    cluster::create_entries(&bench.client, NAMESPACE, plan.entries, 16).await?;
    let count = plan.entries;
    entries
        .wait_for("every entry Ready", SETTLE_WITHIN, |e| ready(e) == count)
        .await?;
    let first = rotations::first_credential(&rotation_tracker).await?;
    let consumer = Consumer::start(&bench.client, NAMESPACE, &emulator);
    let metrics = metrics_url(&operator).await?;
    let memory = OperatorMemory::of(&operator);
    let http = reqwest::Client::new();
    let calls_before = emulator.counters().await?;

    println!("soak: {plan}");
    let start = Instant::now();
    let mut samples = vec![sample(&memory, &emulator, &http, &metrics, &entries, 0, start).await?];
    let (mut edits, mut rotations_requested) = (0u64, 0i64);
    let mut next_edit = start;
    let mut next_rotation = start + plan.rotate_every;
    let mut next_sample = start + SAMPLE_EVERY;
    let end = start + plan.duration;
    while Instant::now() < end {
        let now = Instant::now();
        if now >= next_sample {
            let taken = sample(&memory, &emulator, &http, &metrics, &entries, edits, start).await?;
            samples.push(taken);
            next_sample += SAMPLE_EVERY;
        }
        if now >= next_rotation {
            rotations_requested += 1;
            rotations::request(&rotation_api, &rotation_tracker).await?;
            next_rotation += plan.rotate_every;
        }
        if now >= next_edit {
            edit(&entry_api, edits, count).await?;
            edits += 1;
            next_edit += plan.edit_every;
        }
        let next = next_edit.min(next_rotation).min(next_sample).min(end);
        // The churn's own pace, not a wait for a condition.
        tokio::time::sleep(next.saturating_duration_since(Instant::now())).await;
    }
    samples.push(sample(&memory, &emulator, &http, &metrics, &entries, edits, start).await?);

    // Converged after the churn: every entry Ready for its last edit, the last rotation done.
    let all_ready = entries
        .wait_for("every entry Ready after the churn", SETTLE_WITHIN, |e| {
            ready(e) == count
        })
        .await
        .is_ok();
    let wanted = first + rotations_requested;
    let rotated = rotation_tracker
        .wait_for("the last rotation", SETTLE_WITHIN, |r| {
            r.values()
                .any(|r| rotations::settled_at(r).is_some_and(|rev| rev >= wanted))
        })
        .await
        .is_ok();
    let (consumer_requests, consumer_failures) = consumer.stop().await;
    let completed = rotation_tracker
        .read(|r| r.values().find_map(rotations::settled_at))?
        .map_or(0, |rev| rev - first);
    let keys = rotations::operator_keys(&emulator, NAMESPACE, &rotation_tracker).await?;
    let leaked = keys.unaccounted as u64;
    let ready_count = entries.read(ready)?;

    let calls = emulator.counters().await?.since(&calls_before);
    let reconciles_by_controller = reconciles_by_controller(&metrics_text(&http, &metrics).await?);
    let budget = Budget::of(plan);
    let per_minute = per_minute(&samples);
    let most = |pick: fn(&Sample) -> u64| per_minute.iter().map(pick).max().unwrap_or(0);
    let growth = rss_growth_kib(&samples);
    let checks = vec![
        Check::exactly("converged.entries_ready", ready_count as u64, count as u64),
        Check::exactly(
            "rotations_completed",
            u64::try_from(completed).unwrap_or(0),
            u64::try_from(rotations_requested).unwrap_or(0),
        ),
        Check::exactly("consumer_auth_failures", consumer_failures, 0),
        Check::exactly("leaked_credentials", leaked, 0),
        Check::at_most("rss_growth_kib", growth, RSS_GROWTH_KIB),
        Check::at_most(
            "max_reconciles_per_minute",
            most(|s| s.reconciles),
            budget.reconciles,
        ),
        Check::at_most(
            "max_tenant_calls_per_minute",
            most(|s| s.tenant_calls),
            budget.tenant_calls,
        ),
        Check::at_most(
            "max_entry_status_writes_per_minute",
            most(|s| s.entry_writes.saturating_sub(s.edits)),
            budget.status_writes,
        ),
    ];
    let did = json!({
        "minutes": plan.duration.as_secs() / 60,
        "entries": count,
        "edits": edits,
        "rotations_requested": rotations_requested,
        "settled_after_churn": all_ready && rotated,
        "consumer_requests": consumer_requests,
        "tenant_calls_by_operation": calls.to_json(),
        "reconciles_by_controller": reconciles_by_controller,
        "budget_per_minute": {
            "reconciles": budget.reconciles,
            "tenant_calls": budget.tenant_calls,
            "status_writes": budget.status_writes,
        },
        "per_minute": per_minute.iter().map(|s| json!({
            "at_seconds": round(s.at_seconds),
            "rss_mib": round(s.rss_kib as f64 / 1024.0),
            "reconciles": s.reconciles,
            "tenant_calls": s.tenant_calls,
            "entry_status_writes": s.entry_writes.saturating_sub(s.edits),
            "edits": s.edits,
        })).collect::<Vec<Value>>(),
    });
    println!("soak: {did}");
    Ok(Outcome { did, checks })
}

/// Edit number `n`: the next entry in turn gets the next directive of the cycle, so every
/// edit changes what the tenant holds.
async fn edit(api: &Api<CspEntry>, n: u64, entries: usize) -> Result<(), String> {
    let index = (n % entries as u64) as usize;
    let round = (n / entries as u64) as usize;
    let directive = DIRECTIVE_CYCLE[(index + round + 1) % DIRECTIVE_CYCLE.len()];
    let name = format!("e{index}");
    api.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": { "directives": [directive] } })),
    )
    .await
    .map_err(|e| format!("failed to edit {name}: {e}"))?;
    Ok(())
}

async fn sample(
    memory: &OperatorMemory,
    emulator: &Emulator,
    http: &reqwest::Client,
    metrics: &str,
    entries: &Tracker<CspEntry>,
    edits: u64,
    start: Instant,
) -> Result<Sample, String> {
    let calls = emulator.counters().await?;
    // The consumer's calls are its own; everything else the tenant answered is the operator's.
    let consumer = calls.get("users.me");
    let text = metrics_text(http, metrics).await?;
    Ok(Sample {
        at_seconds: start.elapsed().as_secs_f64(),
        rss_kib: (memory.rss_mib()? * 1024.0) as u64,
        tenant_calls: calls.total().saturating_sub(consumer),
        reconciles: reconciles(&text),
        entry_writes: entries.writes(),
        edits,
    })
}

async fn metrics_text(http: &reqwest::Client, metrics: &str) -> Result<String, String> {
    http.get(metrics)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("failed to read the operator's metrics: {e}"))?
        .text()
        .await
        .map_err(|e| format!("failed to read the operator's metrics: {e}"))
}

/// The sum of `qlikops_reconcile_total` over its labels, from the Prometheus text format.
fn reconciles(metrics: &str) -> u64 {
    reconcile_lines(metrics).map(|(_, count)| count).sum()
}

/// `qlikops_reconcile_total` by controller, since the operator started.
fn reconciles_by_controller(metrics: &str) -> std::collections::BTreeMap<String, u64> {
    let mut by = std::collections::BTreeMap::new();
    for (labels, count) in reconcile_lines(metrics) {
        let controller = labels
            .split("controller=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or("unknown");
        *by.entry(controller.to_owned()).or_default() += count;
    }
    by
}

/// The labels and value of every `qlikops_reconcile_total` line.
fn reconcile_lines(metrics: &str) -> impl Iterator<Item = (&str, u64)> {
    metrics.lines().filter_map(|line| {
        let labels = line.strip_prefix("qlikops_reconcile_total{")?;
        let value = line.rsplit(' ').next()?.parse::<f64>().ok()?;
        Some((labels, value as u64))
    })
}

/// Each minute's increase of the cumulative samples (the RSS and time as sampled).
fn per_minute(samples: &[Sample]) -> Vec<Sample> {
    samples
        .windows(2)
        .map(|pair| Sample {
            at_seconds: pair[1].at_seconds,
            rss_kib: pair[1].rss_kib,
            tenant_calls: pair[1].tenant_calls.saturating_sub(pair[0].tenant_calls),
            reconciles: pair[1].reconciles.saturating_sub(pair[0].reconciles),
            entry_writes: pair[1].entry_writes.saturating_sub(pair[0].entry_writes),
            edits: pair[1].edits.saturating_sub(pair[0].edits),
        })
        .collect()
}

/// The RSS at the end minus the RSS after the first minute of churn (the first minute
/// still warms caches and connection pools).
fn rss_growth_kib(samples: &[Sample]) -> u64 {
    match (samples.get(1), samples.last()) {
        (Some(warm), Some(last)) => last.rss_kib.saturating_sub(warm.rss_kib),
        _ => 0,
    }
}

/// The operator's metrics URL, from the address it logs when it starts serving.
async fn metrics_url(operator: &Operator) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = std::fs::read_to_string(&operator.log).unwrap_or_default();
        let address = log
            .lines()
            .filter(|line| line.contains("serving /healthz"))
            .find_map(|line| {
                let value: Value = serde_json::from_str(line).ok()?;
                value["fields"]["address"].as_str().map(str::to_owned)
            });
        if let Some(address) = address {
            return Ok(format!("http://{address}/metrics"));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the operator never logged its metrics address; see {}",
                operator.log.display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn ready(entries: &std::collections::HashMap<String, CspEntry>) -> usize {
    entries.values().filter(|e| cluster::entry_ready(e)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: f64, rss_kib: u64, reconciles: u64, entry_writes: u64, edits: u64) -> Sample {
        Sample {
            at_seconds: seconds,
            rss_kib,
            tenant_calls: reconciles / 2,
            reconciles,
            entry_writes,
            edits,
        }
    }

    #[test]
    fn each_minute_counts_only_its_own_increase() {
        let samples = [
            at(0.0, 30_000, 100, 0, 0),
            at(60.0, 31_000, 160, 12, 12),
            at(120.0, 31_500, 200, 30, 24),
        ];
        let minutes = per_minute(&samples);
        let counted: Vec<(u64, u64, u64)> = minutes
            .iter()
            .map(|m| (m.reconciles, m.entry_writes, m.edits))
            .collect();
        assert_eq!(counted, [(60, 12, 12), (40, 18, 12)]);
        // Growth is measured from the end of the first minute, not from the start.
        assert_eq!(rss_growth_kib(&samples), 500);
    }

    #[test]
    fn reconciles_add_up_every_controller_and_result() {
        let text = "# TYPE qlikops_reconcile_total counter\n\
            qlikops_reconcile_total{controller=\"tenant\",result=\"success\"} 7\n\
            qlikops_reconcile_total{controller=\"csp-entry\",result=\"error\"} 2\n\
            qlikops_reconcile_errors_total{controller=\"csp-entry\",reason=\"X\"} 2\n";
        assert_eq!(reconciles(text), 9);
        let by = reconciles_by_controller(text);
        assert_eq!(by.get("tenant"), Some(&7));
        assert_eq!(by.get("csp-entry"), Some(&2));
    }
}
