//! The rotation half of `operator_kills`: API key rotations with a consumer that keeps using
//! whatever the Secret holds, the operator SIGKILLed at a random moment of each, then (full
//! run) one rotation per rotation fail point that API keys reach, the operator started
//! with `QLIKOPS_FAILPOINT` so that it aborts there and started again without. Does I/O
//! (the apiserver, the tenant, the operator processes).

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::watcher;
use qlik_csp_operator::api::SecretRotation;
use qlik_csp_operator::controller::secret_rotation::marker;
use qlik_csp_operator::failpoint::{self, rotation as point};
use serde_json::{Value, json};

use super::Check;
use super::kills::{Restartable, Rng};
use super::measure::{self, Logged};
use crate::bench::Bench;
use crate::bench::api_key_rotation::{self as rotation, Consumer};
use crate::bench::cluster::Tracker;
use crate::processes::{Emulator, Operator};

/// A rotation with a 3 s grace period takes a few seconds: a kill this soon after the
/// request falls anywhere in it, from before the create to after the revoke.
const KILL_WITHIN: Duration = Duration::from_secs(6);
const ROTATION_DEADLINE: Duration = Duration::from_secs(120);
/// How long a fail point may take to be reached.
const ABORT_DEADLINE: Duration = Duration::from_secs(90);

/// How many rotations, and whether to run the fail points.
#[derive(Clone, Debug, PartialEq)]
pub struct RotationPlan {
    pub rotations: usize,
    pub fail_points: bool,
}

/// The fail points an API key rotation reaches (the copy step is automation tokens').
fn api_key_fail_points() -> Vec<&'static str> {
    point::ALL
        .into_iter()
        .filter(|step| *step != point::AFTER_COPY)
        .collect()
}

/// What the rotations left.
pub struct Rotations {
    requested: u64,
    completed: u64,
    consumer_requests: u64,
    consumer_failures: u64,
    /// Secret checks (after each kill or abort, and at the end) and the failed ones.
    credential_checks: u64,
    lost_credentials: u64,
    leaked_credentials: u64,
    kills_after_ms: Vec<u64>,
    fail_points_reached: Vec<&'static str>,
    fail_points_missed: Vec<&'static str>,
    /// How many fail points the plan runs (none in a quick run).
    fail_points_planned: usize,
    uid: String,
}

impl Rotations {
    pub fn checks(&self) -> Vec<Check> {
        let mut checks = vec![
            Check::exactly("rotations_completed", self.completed, self.requested),
            Check::exactly("consumer_auth_failures", self.consumer_failures, 0),
            Check::exactly("leaked_credentials", self.leaked_credentials, 0),
            Check::exactly("lost_credentials", self.lost_credentials, 0),
        ];
        if self.fail_points_planned > 0 {
            checks.push(Check::exactly(
                "fail_points_reached",
                self.fail_points_reached.len() as u64,
                self.fail_points_planned as u64,
            ));
        }
        checks
    }

    /// For the report: what ran, and the API key creates per revision from `log` (a
    /// revision whose key was created but whose value died with the process needs a second
    /// one: informative, not an invariant here).
    pub fn to_json(&self, log: &[Logged]) -> Value {
        let creates = measure::per_subject(log, "api-keys.create", true);
        let per_revision: Vec<u64> = creates
            .iter()
            .filter(|(description, _)| description.contains(&marker::prefix(&self.uid)))
            .map(|(_, n)| *n)
            .collect();
        json!({
            "requested": self.requested,
            "completed": self.completed,
            "kills_after_request_ms": self.kills_after_ms,
            "fail_points_reached": self.fail_points_reached,
            "fail_points_missed": self.fail_points_missed,
            "consumer_requests": self.consumer_requests,
            "credential_checks": self.credential_checks,
            "api_key_creates": per_revision.iter().sum::<u64>(),
            "revisions_created_more_than_once": per_revision.iter().filter(|n| **n > 1).count(),
        })
    }
}

/// Runs the rotations; hands back the operator that is running at the end.
pub async fn run(
    bench: &Bench,
    namespace: &str,
    emulator: &Emulator,
    restartable: &mut Restartable<'_>,
    mut operator: Operator,
    rng: &mut Rng,
    plan: &RotationPlan,
) -> Result<(Operator, Rotations), String> {
    let rotations: Api<SecretRotation> = Api::namespaced(bench.client.clone(), namespace);
    let secrets: Api<Secret> = Api::namespaced(bench.client.clone(), namespace);
    rotation::create(&bench.client, namespace, "chaos consumer").await?;
    let tracker = Tracker::start(rotations.clone(), watcher::Config::default()).await?;
    rotation::wait_settled(&tracker, 1, ROTATION_DEADLINE).await?;
    let first = settled(&tracker)?;
    let uid = tracker
        .read(|r| r.values().find_map(|r| r.metadata.uid.clone()))?
        .ok_or("the SecretRotation has no uid")?;
    let credential_ok = || async { secret_accepted(&secrets, emulator).await };

    let consumer = Consumer::start(&bench.client, namespace, emulator);
    let mut requested = 0u64;
    let mut checks = 0u64;
    let mut lost = 0u64;
    let mut kills_after_ms = Vec::new();
    let mut reached = Vec::new();
    let mut missed = Vec::new();
    for _ in 0..plan.rotations {
        rotation::request(&rotations, &tracker).await?;
        requested += 1;
        let after = rng.between(Duration::ZERO, KILL_WITHIN);
        // The fault schedule, not a wait for a condition.
        tokio::time::sleep(after).await;
        kills_after_ms.push(after.as_millis() as u64);
        operator.kill()?;
        checks += 1;
        lost += u64::from(!credential_ok().await);
        operator = restartable.start()?;
        if !settles(&tracker, first + requested as i64).await {
            break;
        }
    }
    let fail_points = if plan.fail_points {
        api_key_fail_points()
    } else {
        Vec::new()
    };
    let fail_points_planned = fail_points.len();
    for step in fail_points {
        if requested as i64 > settled(&tracker)? - first {
            break; // an earlier rotation never settled: the count says so
        }
        operator.kill()?;
        let blocked = if step == point::HELD_UNWRITTEN {
            Some(FailingSecretWrites::install(bench, namespace).await?)
        } else {
            None
        };
        let mut crashing = restartable.start_with(&[(failpoint::ENV, step)])?;
        rotation::request(&rotations, &tracker).await?;
        requested += 1;
        let aborted = crashing.exited(ABORT_DEADLINE).await;
        drop(crashing);
        if let Some(blocked) = blocked {
            blocked.remove().await?;
        }
        match aborted {
            Ok(_) => reached.push(step),
            Err(_) => missed.push(step),
        }
        checks += 1;
        lost += u64::from(!credential_ok().await);
        operator = restartable.start()?;
        if !settles(&tracker, first + requested as i64).await {
            break;
        }
    }
    let (consumer_requests, consumer_failures) = consumer.stop().await;
    checks += 1;
    lost += u64::from(!credential_ok().await);

    let current = tracker.read(|r| {
        r.values()
            .find_map(|r| r.status.as_ref()?.current.as_ref()?.id.clone())
    })?;
    let ours: BTreeSet<String> = emulator
        .admin_client(namespace)?
        .find_api_keys_by_description_marker(&marker::prefix(&uid))
        .await
        .map_err(|e| format!("failed to list the API keys: {e}"))?
        .into_iter()
        .map(|k| k.id)
        .collect();
    let leaked = ours
        .iter()
        .filter(|id| Some(*id) != current.as_ref())
        .count();
    let completed = (settled(&tracker)? - first).max(0) as u64;
    Ok((
        operator,
        Rotations {
            requested,
            completed,
            consumer_requests,
            consumer_failures,
            credential_checks: checks,
            lost_credentials: lost,
            leaked_credentials: leaked as u64,
            kills_after_ms,
            fail_points_reached: reached,
            fail_points_missed: missed,
            fail_points_planned,
            uid,
        },
    ))
}

/// The revision the SecretRotation last settled at.
fn settled(tracker: &Tracker<SecretRotation>) -> Result<i64, String> {
    Ok(tracker
        .read(|r| r.values().find_map(rotation::settled_at))?
        .unwrap_or(0))
}

/// Whether the rotation settles at `revision` in time (not `?`: a rotation that never
/// completes is a failed invariant, counted like the others).
async fn settles(tracker: &Tracker<SecretRotation>, revision: i64) -> bool {
    let settled = rotation::wait_settled(tracker, revision, ROTATION_DEADLINE).await;
    if let Err(e) = &settled {
        println!("operator_kills: {e}");
    }
    settled.is_ok()
}

/// Whether the Secret holds a key the tenant accepts.
async fn secret_accepted(secrets: &Api<Secret>, emulator: &Emulator) -> bool {
    match rotation::secret_value(secrets).await {
        Some(token) => rotation::accepted(emulator.http(), &emulator.url, &token).await,
        None => false,
    }
}

/// A webhook that refuses every write of the rotation's Secret, so that the operator holds
/// a created key's value unwritten (the `rotation.held-unwritten` fail point).
struct FailingSecretWrites {
    api: Api<ValidatingWebhookConfiguration>,
    name: String,
}

impl FailingSecretWrites {
    async fn install(bench: &Bench, namespace: &str) -> Result<FailingSecretWrites, String> {
        let name = format!("fail-secret-writes-{namespace}");
        let webhook: ValidatingWebhookConfiguration = serde_json::from_value(json!({
            "metadata": { "name": name },
            "webhooks": [{
                "name": "fail.secret-writes.qlikops.test",
                // Nothing listens on port 1: the call fails, and so does the write.
                "clientConfig": { "url": "https://127.0.0.1:1/validate" },
                "rules": [{
                    "apiGroups": [""], "apiVersions": ["v1"], "resources": ["secrets"],
                    "operations": ["CREATE", "UPDATE"], "scope": "Namespaced",
                }],
                "namespaceSelector": {
                    "matchLabels": { "kubernetes.io/metadata.name": namespace },
                },
                "matchConditions": [{
                    "name": "the-target",
                    "expression": format!("request.name == '{}'", rotation::SECRET),
                }],
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 2,
            }],
        }))
        .map_err(|e| format!("failing webhook: {e}"))?;
        let api = Api::<ValidatingWebhookConfiguration>::all(bench.client.clone());
        api.create(&PostParams::default(), &webhook)
            .await
            .map_err(|e| format!("failed to install the failing webhook: {e}"))?;
        Ok(FailingSecretWrites { api, name })
    }

    async fn remove(self) -> Result<(), String> {
        self.api
            .delete(&self.name, &DeleteParams::default())
            .await
            .map(|_| ())
            .map_err(|e| format!("failed to remove the failing webhook: {e}"))
    }
}
