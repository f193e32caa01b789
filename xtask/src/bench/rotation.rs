//! `rotation`: a consumer keeps calling the tenant with whatever the Secret holds (read
//! through the API before every call, as a mounted Secret would be) while 20 rotations run.
//! Counts the consumer's authentication failures and the operator-created API keys left
//! on the tenant beyond the one in use.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use qlik_csp_operator::api::SecretRotation;
use qlik_csp_operator::api::secret_rotation::Phase;
use serde_json::{Value, json};

use super::Bench;
use super::burst::round;
use super::cluster::{self, Tracker};
use crate::processes::{Emulator, Operator};

const ROTATIONS: i64 = 20;
const NAME: &str = "consumer-key";
const SECRET: &str = "consumer";
const KEY: &str = "token";
const ROTATION_DEADLINE: Duration = Duration::from_secs(120);
const CONSUMER_INTERVAL: Duration = Duration::from_millis(200);

pub async fn run(bench: &Bench) -> Result<Value, String> {
    let namespace = "bench-rotation";
    cluster::create_namespace(&bench.client, namespace).await?;
    let emulator = Emulator::start(&bench.bins, &bench.work, "rotation", &[])?;
    cluster::create_tenant(&bench.client, namespace, &emulator, "10m").await?;
    let rotations: Api<SecretRotation> = Api::namespaced(bench.client.clone(), namespace);
    let rotation: SecretRotation = serde_json::from_value(json!({
        "apiVersion": "qlikops.io/v1alpha1",
        "kind": "SecretRotation",
        "metadata": { "name": NAME },
        "spec": {
            "tenantRef": { "name": cluster::TENANT },
            "credential": { "apiKey": { "description": "bench consumer", "expiry": "24h" } },
            "secret": { "name": SECRET, "key": KEY },
            // The CRD's minimum; the operator runs with a 3 s override below.
            "gracePeriod": "1m",
        },
    }))
    .map_err(|e| format!("bench SecretRotation: {e}"))?;
    rotations
        .create(&PostParams::default(), &rotation)
        .await
        .map_err(|e| format!("failed to create the SecretRotation: {e}"))?;
    let mut operator = Operator::start(
        &bench.bins,
        &bench.kubeconfig,
        // A grace period longer than the consumer's read-then-call, far shorter than a real one.
        &[
            "--log-format",
            "json",
            "--namespace",
            namespace,
            "--grace-period-override",
            "3s",
        ],
        bench.work.join("operator-rotation.log"),
    )?;
    let tracker = Tracker::start(rotations.clone(), watcher::Config::default()).await?;
    tracker
        .wait_for("the first credential", ROTATION_DEADLINE, |r| {
            r.values()
                .any(|r| settled_at(r).is_some_and(|rev| rev >= 1))
        })
        .await?;
    let first = tracker
        .read(|r| r.values().find_map(settled_at))?
        .unwrap_or(1);

    let consumer = Consumer::start(bench, namespace, &emulator)?;
    let start = Instant::now();
    for done in 1..=ROTATIONS {
        let requested = request_time(&tracker).await?;
        rotations
            .patch(
                NAME,
                &PatchParams::default(),
                &Patch::Merge(json!({ "metadata": { "annotations": {
                    "qlikops.io/rotate-requested-at": requested,
                } } })),
            )
            .await
            .map_err(|e| format!("failed to request rotation {done}: {e}"))?;
        tracker
            .wait_for(
                &format!("rotation {done} to complete"),
                ROTATION_DEADLINE,
                |r| {
                    r.values()
                        .any(|r| settled_at(r).is_some_and(|rev| rev >= first + done))
                },
            )
            .await?;
    }
    let elapsed = start.elapsed();
    let (requests, failures) = consumer.stop().await;
    operator.check_alive()?;

    let uid = tracker
        .read(|r| r.values().find_map(|r| r.metadata.uid.clone()))?
        .ok_or("the SecretRotation has no uid")?;
    let admin = emulator.admin_client(namespace)?;
    let ours = admin
        .find_api_keys_by_description_marker(&format!("[qlikops:{uid}:"))
        .await
        .map_err(|e| format!("failed to list the API keys: {e}"))?;
    Ok(json!({
        "rotations": ROTATIONS,
        "seconds_per_rotation": round(elapsed.as_secs_f64() / ROTATIONS as f64),
        "grace_period_seconds": 3,
        "consumer_requests": requests,
        "consumer_requests_per_second": 5,
        "consumer_auth_failures": failures,
        "operator_keys_on_tenant": ours.len(),
        "leaked_credentials": ours.len().saturating_sub(1),
    }))
}

/// A whole-second time later than the last rotation: the operator rotates once for a
/// request newer than `status.lastRotationTime`, and a rotation finished within the same
/// second must not make the next request look old.
async fn request_time(tracker: &Tracker<SecretRotation>) -> Result<String, String> {
    let last = tracker.read(|r| {
        r.values()
            .find_map(|r| r.status.as_ref()?.last_rotation_time.as_ref().map(|t| t.0))
    })?;
    loop {
        let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second())
            .map_err(|e| e.to_string())?;
        if last.is_none_or(|last| now > last) {
            return Ok(now.to_string());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The revision of a SecretRotation that has finished its last rotation (revoked the
/// previous credential and is idle again).
fn settled_at(rotation: &SecretRotation) -> Option<i64> {
    let status = rotation.status.as_ref()?;
    (status.phase == Phase::Idle && status.previous.is_none() && status.revision >= 1)
        .then_some(status.revision)
}

/// Reads the Secret and calls the tenant with its value, in a loop.
struct Consumer {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
    requests: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
}

impl Consumer {
    fn start(bench: &Bench, namespace: &str, emulator: &Emulator) -> Result<Consumer, String> {
        let secrets: Api<Secret> = Api::namespaced(bench.client.clone(), namespace);
        let http = emulator.http().clone();
        let url = format!("{}/api/v1/users/me", emulator.url);
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(AtomicU64::new(0));
        let (stopping, counted, failed) = (stop.clone(), requests.clone(), failures.clone());
        let task = tokio::spawn(async move {
            // Five calls a second: the consumer's key acts as the operator's own user, and
            // Qlik's read budget (1,000 a minute) is shared by both.
            let mut pace = tokio::time::interval(CONSUMER_INTERVAL);
            while !stopping.load(Ordering::Relaxed) {
                pace.tick().await;
                let token = secrets.get(SECRET).await.ok().and_then(|s| {
                    let bytes = s.data?.get(KEY)?.0.clone();
                    String::from_utf8(bytes).ok()
                });
                let Some(token) = token else {
                    // No credential to use is an outage for a consumer.
                    counted.fetch_add(1, Ordering::Relaxed);
                    failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let answer = http.get(&url).bearer_auth(token).send().await;
                counted.fetch_add(1, Ordering::Relaxed);
                // users/me answers with a redirect to the user when the credential works.
                let accepted =
                    answer.is_ok_and(|a| a.status().is_success() || a.status().is_redirection());
                if !accepted {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Ok(Consumer {
            stop,
            task,
            requests,
            failures,
        })
    }

    async fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        (
            self.requests.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
        )
    }
}
