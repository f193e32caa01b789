//! `operator_kills`: the operator SIGKILLed at random moments and started again at once, as
//! a Deployment would, first during a burst of CspEntries on one tenant (every data
//! connection SecretPush's Secret changed before each kill), then during API key rotations
//! with a live consumer, and (full run) once at every rotation fail point
//! ([`rotation_kills`]). The moments come from a seeded random source; the seed is in the
//! report, and `QLIKOPS_CHAOS_SEED` repeats a run.
//!
//! Invariants, as counts:
//! - `converged.entries_ready` / `converged.header_origins`, `duplicates`, `lost`: as in
//!   `tenant_faults`, after the last kill;
//! - `rotations_completed`: every requested rotation settled (Idle, previous revoked);
//! - `consumer_auth_failures`: calls with the Secret's value that the tenant refused;
//! - `lost_credentials`: times the Secret held no key the tenant accepts, checked right
//!   after every kill (the process is dead: what it left is all there is) and at the end;
//! - `leaked_credentials`: operator-created keys (carrying the SecretRotation's marker)
//!   on the tenant other than the one its status names, after the grace period;
//! - `pushes_current` / `pushed_values_leaked`: every data connection holding its
//!   Secret's latest password at the end, and no password in the operator's log, a
//!   SecretPush or an event ([`pushing`](super::pushing));
//! - `max_tenant_requests_per_minute.{writes,reads}`: over the whole run, the consumer's
//!   calls included (its key is the operator's user's, so they share Qlik's budget).

use std::fmt;
use std::time::{Duration, Instant};

use serde_json::json;

use super::converged::{self, Converged};
use super::kills::{Restartable, Rng};
use super::pushing::{Pushing, Site};
use super::rotation_kills::{self, RotationPlan};
use super::{Outcome, measure};
use crate::bench::Bench;
use crate::bench::burst::{round, wait_started};
use crate::bench::cluster;
use crate::processes::Emulator;

const NAMESPACE: &str = "chaos-operator-kills";
/// Entries created at once against the apiserver.
const PARALLEL_CREATES: usize = 16;
const LOG: &str = "operator-operator-kills.log";
/// The pushes after the last change: a poll, and a few retries if the last kill fell
/// between a push and its status write.
const PUSH_DEADLINE: Duration = Duration::from_secs(120);

/// The scenario's size: the full run or `--quick`.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub entries: usize,
    pub burst_kills: usize,
    /// A kill comes this long after the previous one (or the burst's start), at random.
    pub kill_gap: (Duration, Duration),
    /// From the first create until every entry is Ready and the header holds every origin.
    pub converge_within: Duration,
    pub rotation: RotationPlan,
    /// Data connection SecretPushes, their Secrets changed before every burst kill.
    pub pushes: usize,
}

impl Plan {
    pub fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                entries: 100,
                burst_kills: 5,
                kill_gap: (Duration::from_secs(2), Duration::from_secs(14)),
                converge_within: Duration::from_secs(240),
                rotation: RotationPlan {
                    rotations: 1,
                    fail_points: false,
                },
                pushes: 3,
            }
        } else {
            // 250 entries take about three minutes at 90 writes a minute: twenty kills
            // 2-14 s apart fall within them.
            Plan {
                entries: 250,
                burst_kills: 20,
                kill_gap: (Duration::from_secs(2), Duration::from_secs(14)),
                converge_within: Duration::from_secs(600),
                rotation: RotationPlan {
                    rotations: 10,
                    fail_points: true,
                },
                pushes: 5,
            }
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fail_points = if self.rotation.fail_points {
            ", then one rotation crashed at each fail point"
        } else {
            " (fail points: see tests/secret_rotation_failpoints.rs)"
        };
        write!(
            f,
            "{} entries and {} SecretPushes with {} SIGKILLs, then {} rotations with one SIGKILL each{fail_points}",
            self.entries, self.pushes, self.burst_kills, self.rotation.rotations
        )
    }
}

pub async fn run(bench: &Bench, plan: &Plan, seed: u64) -> Result<Outcome, String> {
    let mut rng = Rng::new(seed);
    cluster::create_namespace(&bench.client, NAMESPACE).await?;
    let emulator = Emulator::start(&bench.bins, &bench.work, "operator-kills", &[])?;
    cluster::create_tenant(&bench.client, NAMESPACE, &emulator, "10m").await?;
    // A grace period longer than the consumer's read-then-call, far shorter than a real one.
    // The digest key in the namespace, as in a cluster (POD_NAMESPACE): a restart must not
    // push again what was pushed.
    let mut restartable = Restartable::new(
        bench,
        NAMESPACE,
        &[
            "--grace-period-override",
            "3s",
            "--operator-namespace",
            NAMESPACE,
        ],
        LOG,
    );
    let mut operator = restartable.start()?;
    let (config_maps, entries) = wait_started(bench, NAMESPACE).await?;
    let mut pushing = Pushing::start(
        bench,
        NAMESPACE,
        Site::cloud(&emulator),
        "operator_kills",
        plan.pushes,
    )
    .await?;

    let count = plan.entries;
    let start = Instant::now();
    cluster::create_entries(&bench.client, NAMESPACE, count, PARALLEL_CREATES).await?;
    let mut kills = Vec::with_capacity(plan.burst_kills);
    for _ in 0..plan.burst_kills {
        // The fault schedule, not a wait for a condition.
        tokio::time::sleep(rng.between(plan.kill_gap.0, plan.kill_gap.1)).await;
        let ready = entries.read(converged::ready)?;
        kills.push(json!({ "at_seconds": round(start.elapsed().as_secs_f64()), "ready": ready }));
        pushing.change().await?;
        operator = restartable.kill_and_restart(operator)?;
    }
    let kills_before_converged = kills
        .iter()
        .filter(|k| k["ready"].as_u64().is_some_and(|r| r < count as u64))
        .count();
    println!(
        "operator_kills: {} kills in the burst ({kills_before_converged} before every entry was Ready); waiting for convergence",
        kills.len()
    );
    let left = plan.converge_within.saturating_sub(start.elapsed());
    let converged = converged::wait(&entries, &config_maps, count, left).await;
    let converge_seconds = converged.then(|| round(start.elapsed().as_secs_f64()));

    println!("operator_kills: rotations");
    let (mut operator, rotations) = rotation_kills::run(
        bench,
        NAMESPACE,
        &emulator,
        &mut restartable,
        operator,
        &mut rng,
        &plan.rotation,
    )
    .await?;
    let pushes_settled = pushing.settles_within(PUSH_DEADLINE).await?;
    operator.check_alive()?;
    let pushed = pushing.finish(bench, &bench.work.join(LOG)).await?;

    let log = measure::request_log(&emulator).await?;
    let calls = emulator.counters().await?;
    let end = Converged::observe(&entries, &config_maps, &emulator, NAMESPACE, count).await?;
    let mut checks = end.checks();
    checks.extend(rotations.checks());
    checks.extend(pushed.checks());
    checks.extend(measure::tier_checks(&log));
    let creates = measure::per_subject(&log, "csp-origins.create", false);
    let did = json!({
        "seed": seed,
        "entries": count,
        "burst_kills": kills,
        "burst_kills_before_converged": kills_before_converged,
        "converge_bound_seconds": plan.converge_within.as_secs(),
        "converge_seconds": converge_seconds,
        "not_ready": end.not_ready(),
        "remote_entries": end.remote.len(),
        "csp_creates_beyond_one_per_origin": measure::beyond_one(&creates),
        "rotations": rotations.to_json(&log),
        "pushes_settled": pushes_settled,
        "push": pushed.to_json(),
        "operator_starts": restartable.starts,
        "tenant_calls": calls.total(),
        "tenant_calls_by_operation": calls.to_json(),
        "tenant_answers_by_status": measure::by_status(&log),
    });
    println!("operator_kills: {did}");
    Ok(Outcome { did, checks })
}
