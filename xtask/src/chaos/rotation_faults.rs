//! `rotation_faults`: API key rotations while the tenant misbehaves on the API key
//! requests ([`faults::api_keys_mix`]: the `tenant_faults` mix of 429s, 5xx, latency and
//! connections dropped before and after a create took effect), with a consumer calling the
//! tenant with whatever the Secret holds all along. The consumer's own calls are not
//! faulted: an authentication failure it sees is the operator's doing.
//!
//! Invariants, as counts:
//! - `rotations_completed`: every requested rotation idle again, its previous key revoked;
//! - `consumer_auth_failures`: none;
//! - `leaked_credentials`: no key carrying the SecretRotation's marker on the tenant
//!   besides the one its status names, after the last grace period (a create whose answer
//!   was lost must be found and used or revoked, never left behind);
//! - `lost_credentials`: the Secret holds a key the tenant accepts after every rotation and
//!   at the end;
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
use super::rotating::Rotating;
use super::{Outcome, measure};
use crate::bench::Bench;
use crate::bench::burst::{Watched, round, start_operator};
use crate::bench::cluster;
use crate::processes::Emulator;

const NAMESPACE: &str = "chaos-rotation-faults";
/// Short, so that each rotation's old key is revoked within the scenario.
const GRACE_PERIOD: &str = "3s";
/// One rotation under the faults: a few retries on the full backoff ladder
/// (2.5 + 5 + 10 + 20 + 40 s at the least for five failures in a row) on top of its steps.
const ROTATION_DEADLINE: Duration = Duration::from_secs(300);

/// The scenario's size: the full run or `--quick`.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub rotations: u64,
}

impl Plan {
    pub fn new(quick: bool) -> Plan {
        Plan {
            rotations: if quick { 2 } else { 10 },
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} API key rotations on a faulty tenant, a consumer using the key all along",
            self.rotations
        )
    }
}

pub async fn run(bench: &Bench, plan: &Plan) -> Result<Outcome, String> {
    cluster::create_namespace(&bench.client, NAMESPACE).await?;
    let emulator = Emulator::start(&bench.bins, &bench.work, "rotation-faults", &[])?;
    cluster::create_tenant(&bench.client, NAMESPACE, &emulator, "10m").await?;
    let Watched { mut operator, .. } = start_operator(
        bench,
        NAMESPACE,
        "operator-rotation-faults.log",
        &["--grace-period-override", GRACE_PERIOD],
    )
    .await?;
    // The first key is made before the faults: the consumer needs one to start with.
    let mut rotating = Rotating::start(bench, NAMESPACE, &emulator, "rotation_faults").await?;
    let mut rules = FaultRules::new(&emulator);
    rules.install(faults::api_keys_mix()).await?;
    let start = Instant::now();
    let mut seconds = Vec::new();
    for _ in 0..plan.rotations {
        let requested = Instant::now();
        rotating.request().await?;
        let settled = rotating.settles_within(ROTATION_DEADLINE).await;
        rotating.check_credential().await;
        if !settled {
            break; // the count says so
        }
        seconds.push(round(requested.elapsed().as_secs_f64()));
    }
    let elapsed = round(start.elapsed().as_secs_f64());
    rules.clear().await?;
    // The last grace period: the previous key is revoked once it is over.
    let settled_at_end = rotating.settles_within(ROTATION_DEADLINE).await;
    let rotated = rotating.finish().await?;
    operator.check_alive()?;

    let log = measure::request_log(&emulator).await?;
    let calls = emulator.counters().await?;
    let mut checks = rotated.checks();
    checks.extend(measure::tier_checks(&log));
    let mut did = json!({
        "rotations": plan.rotations,
        "grace_period": GRACE_PERIOD,
        "rotation_deadline_seconds": ROTATION_DEADLINE.as_secs(),
        "rotation_seconds": seconds,
        "seconds": elapsed,
        "settled_at_end": settled_at_end,
        "tenant_calls": calls.total(),
        "tenant_calls_by_operation": calls.to_json(),
        "tenant_answers_by_status": measure::by_status(&log),
        "faults_injected": rules.fired(),
    });
    if let Value::Object(fields) = &mut did {
        fields.extend(rotated.to_json(&log));
    }
    println!("rotation_faults: {did}");
    Ok(Outcome { did, checks })
}
