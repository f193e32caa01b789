//! `tenant_faults`: a burst of CspEntries on one tenant while the tenant misbehaves
//! ([`faults::tenant_mix`]: 429s, 5xx, latency, connections dropped before and after a
//! create took effect), with a full outage in the middle of the burst.
//!
//! Invariants, as counts:
//! - `converged.entries_ready` / `converged.header_origins`: every entry `Ready=True` for
//!   its generation, and the header ConfigMap holding every origin, within the bound;
//! - `duplicates`: remote entries beyond one per origin;
//! - `lost`: entries whose origin the tenant lacks, or whose `status.id` names no remote
//!   entry of that origin;
//! - `max_tenant_requests_per_minute.{writes,reads}`: the most requests that arrived at the
//!   tenant in any 60 s, every attempt counted (faulted ones too), against Qlik's tiers.
//!
//! The emulator refuses a second entry with an origin it holds (as Qlik does), so a create
//! repeated after a lost answer shows up as an entry that never converges (a refused
//! create), not as a duplicate; `duplicates` guards against that rule ever loosening.

use std::fmt;
use std::time::{Duration, Instant};

use serde_json::json;

use super::Outcome;
use super::converged::{self, Converged};
use super::faults::{self, FaultRules};
use super::measure;
use crate::bench::Bench;
use crate::bench::burst::{Watched, round, start_operator};
use crate::bench::cluster;
use crate::processes::Emulator;

const NAMESPACE: &str = "chaos-tenant-faults";
/// Entries created at once against the apiserver.
const PARALLEL_CREATES: usize = 16;

/// The scenario's size: the full run or `--quick`.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub entries: usize,
    pub outage: Duration,
    /// From the first create until every entry is Ready and the header holds every origin.
    /// What it takes is about: every create attempt's paced write (one every 0.67 s; about
    /// two attempts per entry under this mix), plus one second of tenant-wide pause per
    /// `429` (`Retry-After: 1`, about 30% of all requests), plus the outage. Runs on
    /// 2026-12-03: quick 203 × 0.67 + 111 + 20 = 267 s predicted, 268 s measured; full
    /// 537 × 0.67 + 434 + 120 = 914 s predicted, 873 s measured, and 557 × 0.67 + 500 + 120
    /// = 993 s predicted, 1,011 s measured. The bounds leave about twice (quick) and 1.5
    /// times (full) that, for the fault mix's variance and the backoff
    /// of entries whose retries the faults kept failing (1 minute at most while the tenant
    /// answers others).
    pub converge_within: Duration,
}

impl Plan {
    pub fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                entries: 100,
                outage: Duration::from_secs(20),
                // The operator spaces its writes evenly (90 a minute, no first-minute
                // burst: see `tenant::rate_limit`), and every faulted attempt spends one.
                converge_within: Duration::from_secs(600),
            }
        } else {
            Plan {
                entries: 250,
                outage: Duration::from_secs(120),
                converge_within: Duration::from_secs(1_500),
            }
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} entries on one faulty tenant, a {} s outage midway, converged within {} s",
            self.entries,
            self.outage.as_secs(),
            self.converge_within.as_secs()
        )
    }
}

pub async fn run(bench: &Bench, plan: &Plan) -> Result<Outcome, String> {
    cluster::create_namespace(&bench.client, NAMESPACE).await?;
    let emulator = Emulator::start(&bench.bins, &bench.work, "tenant-faults", &[])?;
    cluster::create_tenant(&bench.client, NAMESPACE, &emulator, "10m").await?;
    let Watched {
        mut operator,
        config_maps,
        entries,
    } = start_operator(bench, NAMESPACE, "operator-tenant-faults.log", &[]).await?;

    let mut rules = FaultRules::new(&emulator);
    rules.install(faults::tenant_mix()).await?;
    let start = Instant::now();
    let deadline = start + plan.converge_within;
    let left = || deadline.saturating_duration_since(Instant::now());
    let count = plan.entries;
    cluster::create_entries(&bench.client, NAMESPACE, count, PARALLEL_CREATES).await?;

    // The outage starts midway through the operator's work, when half the entries are in:
    // some are still to create, some in flight.
    let half = count / 2;
    let reached_half = entries
        .wait_for("half the entries Ready", left(), |e| {
            converged::ready(e) >= half
        })
        .await
        .is_ok();
    let outage_at = start.elapsed();
    println!(
        "tenant_faults: outage of {} s at {:.0} s",
        plan.outage.as_secs(),
        outage_at.as_secs_f64()
    );
    rules.install(faults::outage()).await?;
    // The fault's length, not a wait for a condition.
    tokio::time::sleep(plan.outage).await;
    rules.install(faults::tenant_mix()).await?;
    println!("tenant_faults: the tenant is back (faults still on); waiting for convergence");

    // Not `?`: a timeout is a failed invariant, measured and reported like the others.
    let converged = converged::wait(&entries, &config_maps, count, left()).await;
    let converge_seconds = converged.then(|| round(start.elapsed().as_secs_f64()));
    rules.clear().await?;
    operator.check_alive()?;

    // The log before our own listing below, so that it holds the operator's requests only.
    let log = measure::request_log(&emulator).await?;
    let calls = emulator.counters().await?;
    let end = Converged::observe(&entries, &config_maps, &emulator, NAMESPACE, count).await?;
    let mut checks = end.checks();
    checks.extend(measure::tier_checks(&log));
    let did = json!({
        "entries": count,
        "outage_seconds": plan.outage.as_secs(),
        "outage_started_at_seconds": round(outage_at.as_secs_f64()),
        "half_ready_before_outage": reached_half,
        "converge_bound_seconds": plan.converge_within.as_secs(),
        "converge_seconds": converge_seconds,
        "not_ready": end.not_ready(),
        "remote_entries": end.remote.len(),
        "tenant_calls": calls.total(),
        "tenant_calls_by_operation": calls.to_json(),
        "tenant_answers_by_status": measure::by_status(&log),
        "faults_injected": rules.fired(),
    });
    println!("tenant_faults: {did}");
    Ok(Outcome { did, checks })
}
