//! `secret_faults`: API key rotations and data connection SecretPushes while the tenant
//! misbehaves on their requests ([`faults::api_keys_mix`] and
//! [`faults::data_connections_mix`]: the `tenant_faults` mix of 429s, 5xx, latency and
//! connections dropped before and after a write took effect), with a consumer calling the
//! tenant with whatever the rotated Secret holds all along, and the API key and data
//! connection services down for a while midway ([`faults::outage_of`]). The consumer's own
//! calls are not faulted, nor is the tenant's connection check: an authentication failure
//! the consumer sees is the operator's doing.
//!
//! Each rotation request comes with a change of every pushed Secret.
//!
//! Invariants, as counts:
//! - `rotations_completed`: every requested rotation idle again, its previous key revoked;
//! - `consumer_auth_failures`: none;
//! - `leaked_credentials`: no key carrying the SecretRotation's marker on the tenant
//!   besides the one its status names, after the last grace period (a create whose answer
//!   was lost must be found and used or revoked, never left behind);
//! - `lost_credentials`: the Secret holds a key the tenant accepts after every rotation and
//!   at the end;
//! - `pushes_current` / `pushed_values_leaked`: every connection holding its Secret's
//!   latest password, and no password in the operator's log, a SecretPush or an event
//!   ([`pushing`](super::pushing));
//! - `max_tenant_requests_per_minute.{writes,reads}`: every attempt, faulted ones and the
//!   consumer's calls included.
//!
//! API key creates per revision are reported, not bounded: a create that took effect but
//! lost its answer is looked up by its marker and adopted, yet a lookup that the faults
//! fail in turn may leave the operator to revoke it and create another.

use std::fmt;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::faults::{self, FaultRules};
use super::pushing::{Pushing, Site};
use super::rotating::Rotating;
use super::{Outcome, measure};
use crate::bench::Bench;
use crate::bench::burst::{Watched, round, start_operator};
use crate::bench::cluster;
use crate::processes::Emulator;

const NAMESPACE: &str = "chaos-secret-faults";
/// Short, so that each rotation's old key is revoked within the scenario.
const GRACE_PERIOD: &str = "3s";
/// One rotation under the faults: a few retries on the backoff ladder (at the least 2.5,
/// 5, 10, 20 and 40 s for five failures in a row, each wait capped at a minute while the
/// tenant answers other requests) on top of its steps; through the outage, the outage and
/// the next retry after it (153 s in the full run of 2026-12-03, 283 s before the cap).
const ROTATION_DEADLINE: Duration = Duration::from_secs(300);
/// The pushes after the last change: the same ladder, on top of a 10 s poll.
const PUSH_DEADLINE: Duration = Duration::from_secs(300);

/// The scenario's size: the full run or `--quick`.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub rotations: u64,
    pub pushes: usize,
    /// The API key and data connection services down, after half the rotations.
    pub outage: Duration,
}

impl Plan {
    pub fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                rotations: 2,
                pushes: 3,
                outage: Duration::from_secs(20),
            }
        } else {
            Plan {
                rotations: 10,
                pushes: 5,
                outage: Duration::from_secs(120),
            }
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} API key rotations and {} pushes of {} changed passwords on a faulty tenant, a {} s outage midway, a consumer using the key all along",
            self.rotations,
            self.pushes,
            self.rotations,
            self.outage.as_secs()
        )
    }
}

pub async fn run(bench: &Bench, plan: &Plan) -> Result<Outcome, String> {
    cluster::create_namespace(&bench.client, NAMESPACE).await?;
    let emulator = Emulator::start(&bench.bins, &bench.work, "secret-faults", &[])?;
    cluster::create_tenant(&bench.client, NAMESPACE, &emulator, "10m").await?;
    let log = "operator-secret-faults.log";
    let Watched { mut operator, .. } = start_operator(
        bench,
        NAMESPACE,
        log,
        &[
            "--grace-period-override",
            GRACE_PERIOD,
            // Where the SecretPush digest key is kept, as in a cluster (POD_NAMESPACE).
            "--operator-namespace",
            NAMESPACE,
        ],
    )
    .await?;
    // The first key and the first passwords go in before the faults: the consumer needs a
    // key to start with.
    let mut rotating = Rotating::start(bench, NAMESPACE, &emulator, "secret_faults").await?;
    let mut pushing = Pushing::start(
        bench,
        NAMESPACE,
        Site::cloud(&emulator),
        "secret_faults",
        plan.pushes,
    )
    .await?;
    let first_pushes = pushing.settles_within(PUSH_DEADLINE).await?;
    let mut rules = FaultRules::new(&emulator);
    let faulty = || [faults::api_keys_mix(), faults::data_connections_mix()].concat();
    rules.install(faulty()).await?;
    let start = Instant::now();
    let mut seconds = Vec::new();
    let mut outage_at = None;
    for done in 0..plan.rotations {
        if done == plan.rotations / 2 {
            outage_at = Some(round(start.elapsed().as_secs_f64()));
            println!("secret_faults: outage of {} s", plan.outage.as_secs());
            rules
                .install([faulty(), faults::outage_of(&faults::SECRET_SERVICES)].concat())
                .await?;
        }
        let requested = Instant::now();
        rotating.request().await?;
        pushing.change().await?;
        if done == plan.rotations / 2 {
            // The fault's length, not a wait for a condition: the rotation and the pushes
            // just asked for meet the outage.
            tokio::time::sleep(plan.outage).await;
            rules.install(faulty()).await?;
        }
        let settled = rotating.settles_within(ROTATION_DEADLINE).await;
        rotating.check_credential().await;
        if !settled {
            break; // the count says so
        }
        seconds.push(round(requested.elapsed().as_secs_f64()));
    }
    // Under the faults still: the last change must get through them.
    let pushes_settled = pushing.settles_within(PUSH_DEADLINE).await?;
    let elapsed = round(start.elapsed().as_secs_f64());
    rules.clear().await?;
    // The last grace period: the previous key is revoked once it is over.
    let settled_at_end = rotating.settles_within(ROTATION_DEADLINE).await;
    let rotated = rotating.finish().await?;
    operator.check_alive()?;
    let pushed = pushing.finish(bench, &bench.work.join(log)).await?;

    let log = measure::request_log(&emulator).await?;
    let calls = emulator.counters().await?;
    let mut checks = rotated.checks();
    checks.extend(pushed.checks());
    checks.extend(measure::tier_checks(&log));
    let mut did = json!({
        "rotations": plan.rotations,
        "grace_period": GRACE_PERIOD,
        "rotation_deadline_seconds": ROTATION_DEADLINE.as_secs(),
        "rotation_seconds": seconds,
        "outage_seconds": plan.outage.as_secs(),
        "outage_started_at_seconds": outage_at,
        "seconds": elapsed,
        "settled_at_end": settled_at_end,
        "first_pushes_settled": first_pushes,
        "pushes_settled": pushes_settled,
        "push": pushed.to_json(),
        "tenant_calls": calls.total(),
        "tenant_calls_by_operation": calls.to_json(),
        "tenant_answers_by_status": measure::by_status(&log),
        "faults_injected": rules.fired(),
    });
    if let Value::Object(fields) = &mut did {
        fields.extend(rotated.to_json(&log));
    }
    println!("secret_faults: {did}");
    Ok(Outcome { did, checks })
}
