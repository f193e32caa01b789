//! `failover`: two operator replicas with leader election on, a burst of CspEntries and an
//! API key rotation (its consumer calling the tenant with whatever the Secret holds) in
//! progress, and the leader SIGKILLed (no release: its Lease must expire). Measures how long
//! until the standby holds the Lease and until it resumes the burst (the next entry made
//! Ready), then restarts the killed replica, as its Deployment would, as the new standby.
//!
//! A third of the way into the burst a rotation is requested, and the leader is killed once
//! the rotation is `Draining` (the new key in the Secret, the old one still valid): the
//! standby must revoke the old key and settle the rotation. Not earlier: a kill between a
//! key's create and its Secret write loses the value, and the operator then rightly creates
//! another key for the revision (`operator_kills` covers that window), which this scenario
//! would count as a repeated write.
//!
//! Invariants, as counts:
//! - `takeover_ms`: from the kill until the Lease names the standby, at most the lease
//!   duration plus [`TAKEOVER_MARGIN`] (the standby's polling and the apiserver);
//! - `leader_changes`: exactly one (the restarted replica must not take the Lease back);
//! - `converged.*`, `duplicates`, `lost`: as in `tenant_faults`;
//! - no tenant write happens twice, from the emulator's request log:
//!   `csp_creates_beyond_one_per_origin` (creates the tenant accepted) and
//!   `csp_create_attempts_beyond_one_per_origin` (every create that reached it: no fault
//!   is injected here, so a second attempt can only be a repeated write), and
//!   `api_key_creates_beyond_one_per_revision` (API keys the tenant created, per revision
//!   of the SecretRotation);
//! - `rotations_completed`, `consumer_auth_failures`, `leaked_credentials`,
//!   `lost_credentials`: as in `operator_kills` (the Secret checked right after the kill
//!   and at the end);
//! - `max_tenant_requests_per_minute.{writes,reads}`: both replicas' requests together,
//!   and the consumer's.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};

use super::converged::{self, Converged};
use super::kills::Restartable;
use super::rotating::{Rotating, draining, phase_of};
use super::{Check, Outcome, measure};
use crate::bench::Bench;
use crate::bench::api_key_rotation::ROTATION_DEADLINE;
use crate::bench::burst::{round, wait_started};
use crate::bench::cluster::{self, Tracker};
use crate::processes::Emulator;

const NAMESPACE: &str = "chaos-failover";
const LEASE: &str = "qlik-csp-operator";
/// The operator's default lease duration.
const LEASE_SECONDS: u64 = 15;
/// What a takeover may take beyond the lease duration: the standby retries on a timer.
const TAKEOVER_MARGIN: Duration = Duration::from_secs(5);
const REPLICAS: [&str; 2] = ["replica-a", "replica-b"];
/// The old key's grace period: longer than the consumer's read-then-call, far shorter than
/// a real one, so that the standby revokes the old key as soon as it leads.
const GRACE_PERIOD: &str = "3s";
const PARALLEL_CREATES: usize = 16;

/// The scenario's size: the full run or `--quick`.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub entries: usize,
    /// From the first create until every entry is Ready and the header holds every origin.
    pub converge_within: Duration,
}

impl Plan {
    pub fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                entries: 60,
                converge_within: Duration::from_secs(180),
            }
        } else {
            Plan {
                entries: 250,
                converge_within: Duration::from_secs(420),
            }
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "two replicas, {} entries, the leader SIGKILLed a third of the way in, with an API key \
             rotation in flight (lease {LEASE_SECONDS} s)",
            self.entries
        )
    }
}

pub async fn run(bench: &Bench, plan: &Plan) -> Result<Outcome, String> {
    cluster::create_namespace(&bench.client, NAMESPACE).await?;
    let emulator = Emulator::start(&bench.bins, &bench.work, "failover", &[])?;
    cluster::create_tenant(&bench.client, NAMESPACE, &emulator, "10m").await?;
    let lease_seconds = LEASE_SECONDS.to_string();
    let flags = [
        "--leader-election",
        "--leader-election-namespace",
        NAMESPACE,
        "--leader-election-lease-name",
        LEASE,
        "--leader-election-lease-seconds",
        &lease_seconds,
        "--grace-period-override",
        GRACE_PERIOD,
    ];
    // POD_NAME starts each replica's Lease identity, so the holder says which one leads.
    let mut replicas = REPLICAS.map(|name| {
        Restartable::new(
            bench,
            NAMESPACE,
            &flags,
            &format!("operator-failover-{name}.log"),
        )
        .with_env("POD_NAME", name)
    });
    let leases = Tracker::start(
        Api::<Lease>::namespaced(bench.client.clone(), NAMESPACE),
        watcher::Config::default(),
    )
    .await?;
    let holders = Holders::watch(bench);
    // The first replica leads: only a leader makes the tenant Ready.
    let first = replicas[0].start()?;
    let (config_maps, entries) = wait_started(bench, NAMESPACE).await?;
    let mut second = replicas[1].start()?;
    // The first key, made by the leader; from here on the consumer uses the Secret.
    let mut rotating = Rotating::start(bench, NAMESPACE, &emulator, "failover").await?;

    let count = plan.entries;
    let start = Instant::now();
    cluster::create_entries(&bench.client, NAMESPACE, count, PARALLEL_CREATES).await?;
    let third = count / 3;
    entries
        .wait_for("a third of the entries Ready", plan.converge_within, |e| {
            converged::ready(e) >= third
        })
        .await?;
    rotating.request().await?;
    let draining = rotating
        .tracker()
        .wait_for("the rotation draining", ROTATION_DEADLINE, |r| {
            r.values().any(draining)
        })
        .await;
    if let Err(message) = draining {
        println!("failover: {message}; killing the leader anyway");
    }
    let rotation_at_kill = rotating.tracker().read(|r| r.values().find_map(phase_of))?;
    let ready_at_kill = entries.read(converged::ready)?;
    let killed_at = Instant::now();
    first.kill()?;
    rotating.check_credential().await;
    println!(
        "failover: killed the leader with {ready_at_kill}/{count} entries Ready at {:.0} s, the rotation {}",
        start.elapsed().as_secs_f64(),
        rotation_at_kill.as_deref().unwrap_or("unseen")
    );
    let deadline = Duration::from_secs(LEASE_SECONDS) + TAKEOVER_MARGIN * 4;
    let took_over = leases
        .wait_for("the standby to hold the Lease", deadline, |l| {
            l.values()
                .filter_map(holder)
                .any(|h| h.starts_with(REPLICAS[1]))
        })
        .await
        .ok()
        .map(|at| at.duration_since(killed_at));
    let resumed = entries
        .wait_for("the standby to make an entry Ready", deadline, |e| {
            converged::ready(e) > ready_at_kill
        })
        .await
        .ok()
        .map(|at| at.duration_since(killed_at));
    // The killed replica comes back, as a Deployment brings it back: as the standby now.
    let mut first = replicas[0].start()?;

    let left = plan.converge_within.saturating_sub(start.elapsed());
    let converged = converged::wait(&entries, &config_maps, count, left).await;
    let converge_seconds = converged.then(|| round(start.elapsed().as_secs_f64()));
    // A rotation that never settles is counted by `rotations_completed`.
    rotating.settles().await;
    let rotated = rotating.finish().await?;
    second.check_alive()?;
    first.check_alive()?;
    let holders_seen = holders.seen()?;

    let log = measure::request_log(&emulator).await?;
    let calls = emulator.counters().await?;
    let end = Converged::observe(&entries, &config_maps, &emulator, NAMESPACE, count).await?;
    let created = measure::per_subject(&log, "csp-origins.create", true);
    let attempted = measure::per_subject(&log, "csp-origins.create", false);
    let takeover_bound = Duration::from_secs(LEASE_SECONDS) + TAKEOVER_MARGIN;
    let mut checks = vec![
        Check::at_most(
            "takeover_ms",
            took_over.map_or(u64::MAX, |d| d.as_millis() as u64),
            takeover_bound.as_millis() as u64,
        ),
        Check::exactly(
            "leader_changes",
            holders_seen.len().saturating_sub(1) as u64,
            1,
        ),
    ];
    checks.extend(end.checks());
    checks.push(Check::exactly(
        "csp_creates_beyond_one_per_origin",
        measure::beyond_one(&created),
        0,
    ));
    checks.push(Check::exactly(
        "csp_create_attempts_beyond_one_per_origin",
        measure::beyond_one(&attempted),
        0,
    ));
    let per_revision = rotated.creates_per_revision(&log);
    checks.push(Check::exactly(
        "api_key_creates_beyond_one_per_revision",
        measure::beyond_one(&per_revision),
        0,
    ));
    checks.extend(rotated.checks());
    checks.extend(measure::tier_checks(&log));
    let mut rotation = rotated.to_json(&log);
    rotation.extend([
        ("grace_period".to_owned(), json!(GRACE_PERIOD)),
        ("phase_at_kill".to_owned(), json!(rotation_at_kill)),
    ]);
    let did = json!({
        "entries": count,
        "lease": { "name": LEASE, "duration_seconds": LEASE_SECONDS, "renew_before_expiry_seconds": LEASE_SECONDS / 3 },
        "takeover_bound_seconds": takeover_bound.as_secs(),
        "ready_at_kill": ready_at_kill,
        "takeover_seconds": took_over.map(|d| round(d.as_secs_f64())),
        "resumed_seconds": resumed.map(|d| round(d.as_secs_f64())),
        "lease_holders": holders_seen,
        "converge_bound_seconds": plan.converge_within.as_secs(),
        "converge_seconds": converge_seconds,
        "not_ready": end.not_ready(),
        "remote_entries": end.remote.len(),
        "csp_creates_accepted": created.values().sum::<u64>(),
        "rotation": Value::Object(rotation),
        "tenant_calls": calls.total(),
        "tenant_calls_by_operation": calls.to_json(),
        "tenant_answers_by_status": measure::by_status(&log),
    });
    println!("failover: {did}");
    Ok(Outcome { did, checks })
}

/// The holder a Lease names.
fn holder(lease: &Lease) -> Option<&str> {
    lease.spec.as_ref()?.holder_identity.as_deref()
}

/// Every holder the Lease has named, in order, each once per term. Every acquisition is a
/// write of the Lease, so the watch sees each one.
struct Holders {
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Holders {
    fn watch(bench: &Bench) -> Holders {
        let api = Api::<Lease>::namespaced(bench.client.clone(), NAMESPACE);
        let config = watcher::Config::default().fields(&format!("metadata.name={LEASE}"));
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let record = seen.clone();
        let task = tokio::spawn(async move {
            let mut events = watcher(api, config).applied_objects().boxed();
            while let Some(event) = events.next().await {
                let Ok(lease) = event else { continue };
                let Some(now) = holder(&lease) else { continue };
                if let Ok(mut seen) = record.lock()
                    && seen.last().map(String::as_str) != Some(now)
                {
                    seen.push(now.to_owned());
                }
            }
        });
        Holders { seen, task }
    }

    fn seen(&self) -> Result<Vec<String>, String> {
        self.seen
            .lock()
            .map(|s| s.clone())
            .map_err(|_| "the Lease holders' lock is poisoned".to_owned())
    }
}

impl Drop for Holders {
    fn drop(&mut self) {
        self.task.abort();
    }
}
