//! The rotation half of `operator_kills`: API key rotations with a consumer that keeps using
//! whatever the Secret holds, the operator SIGKILLed at a random moment of each, then (full
//! run) one rotation per rotation fail point that API keys reach, the operator started
//! with `QLIKOPS_FAILPOINT` so that it aborts there and started again without. Does I/O
//! (the apiserver, the tenant, the operator processes).

use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::api::{Api, DeleteParams, PostParams};
use qlik_csp_operator::failpoint::{self, rotation as point};
use serde_json::{Value, json};

use super::Check;
use super::kills::{Restartable, Rng};
use super::measure::Logged;
use super::rotating::{Rotated, Rotating};
use crate::bench::Bench;
use crate::bench::api_key_rotation as rotation;
use crate::processes::{Emulator, Operator};

/// A rotation with a 3 s grace period takes a few seconds: a kill this soon after the
/// request falls anywhere in it, from before the create to after the revoke.
const KILL_WITHIN: Duration = Duration::from_secs(6);
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
    rotated: Rotated,
    kills_after_ms: Vec<u64>,
    fail_points_reached: Vec<&'static str>,
    fail_points_missed: Vec<&'static str>,
    /// How many fail points the plan runs (none in a quick run).
    fail_points_planned: usize,
}

impl Rotations {
    pub fn checks(&self) -> Vec<Check> {
        let mut checks = self.rotated.checks();
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
        let mut report = self.rotated.to_json(log);
        report.extend([
            (
                "kills_after_request_ms".to_owned(),
                json!(self.kills_after_ms),
            ),
            (
                "fail_points_reached".to_owned(),
                json!(self.fail_points_reached),
            ),
            (
                "fail_points_missed".to_owned(),
                json!(self.fail_points_missed),
            ),
        ]);
        Value::Object(report)
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
    let mut rotating = Rotating::start(bench, namespace, emulator, "operator_kills").await?;
    let mut kills_after_ms = Vec::new();
    let mut reached = Vec::new();
    let mut missed = Vec::new();
    for _ in 0..plan.rotations {
        rotating.request().await?;
        let after = rng.between(Duration::ZERO, KILL_WITHIN);
        // The fault schedule, not a wait for a condition.
        tokio::time::sleep(after).await;
        kills_after_ms.push(after.as_millis() as u64);
        operator.kill()?;
        rotating.check_credential().await;
        operator = restartable.start()?;
        if !rotating.settles().await {
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
        if rotating.requested() > rotating.completed()? {
            break; // an earlier rotation never settled: the count says so
        }
        operator.kill()?;
        let blocked = if step == point::HELD_UNWRITTEN {
            Some(FailingSecretWrites::install(bench, namespace).await?)
        } else {
            None
        };
        let mut crashing = restartable.start_with(&[(failpoint::ENV, step)])?;
        rotating.request().await?;
        let aborted = crashing.exited(ABORT_DEADLINE).await;
        drop(crashing);
        if let Some(blocked) = blocked {
            blocked.remove().await?;
        }
        match aborted {
            Ok(_) => reached.push(step),
            Err(_) => missed.push(step),
        }
        rotating.check_credential().await;
        operator = restartable.start()?;
        if !rotating.settles().await {
            break;
        }
    }
    let rotated = rotating.finish().await?;
    Ok((
        operator,
        Rotations {
            rotated,
            kills_after_ms,
            fail_points_reached: reached,
            fail_points_missed: missed,
            fail_points_planned,
        },
    ))
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
