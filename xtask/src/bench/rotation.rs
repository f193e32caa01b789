//! `rotation`: a consumer keeps calling the tenant with whatever the Secret holds (read
//! through the API before every call, as a mounted Secret would be) while 20 rotations run.
//! Counts the consumer's authentication failures and the operator-created API keys left
//! on the tenant that the SecretRotation does not account for. The pieces (the
//! SecretRotation, a rotation requested and waited for, the consumer, the key count) serve
//! `cargo xtask chaos`'s `control_plane` scenario too.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use qlik_csp_operator::api::SecretRotation;
use qlik_csp_operator::api::secret_rotation::Phase;
use qlik_csp_operator::tenant::wire::ApiKeyStatus;
use serde_json::{Value, json};

use super::Bench;
use super::burst::round;
use super::cluster::{self, Tracker};
use crate::processes::{Emulator, Operator};

const ROTATIONS: i64 = 20;
const NAME: &str = "consumer-key";
const SECRET: &str = "consumer";
const KEY: &str = "token";
pub(crate) const ROTATION_DEADLINE: Duration = Duration::from_secs(120);
const CONSUMER_INTERVAL: Duration = Duration::from_millis(200);

pub async fn run(bench: &Bench) -> Result<Value, String> {
    let namespace = "bench-rotation";
    cluster::create_namespace(&bench.client, namespace).await?;
    let emulator = Emulator::start(&bench.bins, &bench.work, "rotation", &[])?;
    cluster::create_tenant(&bench.client, namespace, &emulator, "10m").await?;
    let rotations = create_rotation(&bench.client, namespace).await?;
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
    let first = first_credential(&tracker).await?;

    let consumer = Consumer::start(bench, namespace, &emulator)?;
    let start = Instant::now();
    for done in 1..=ROTATIONS {
        request_rotation(&rotations, &tracker, done).await?;
        wait_settled(&tracker, first + done, done).await?;
    }
    let elapsed = start.elapsed();
    let (requests, failures) = consumer.stop().await;
    operator.check_alive()?;
    let keys = operator_keys(&emulator, namespace, &tracker).await?;
    Ok(json!({
        "rotations": ROTATIONS,
        "seconds_per_rotation": round(elapsed.as_secs_f64() / ROTATIONS as f64),
        "grace_period_seconds": 3,
        "consumer_requests": requests,
        "consumer_requests_per_second": 5,
        "consumer_auth_failures": failures,
        "operator_keys_on_tenant": keys.active,
        "leaked_credentials": keys.unaccounted,
    }))
}

/// Creates the SecretRotation of an API key for the consumer, with a grace period of one
/// minute (the CRD's minimum: run the operator with `--grace-period-override` for less).
pub(crate) async fn create_rotation(
    client: &Client,
    namespace: &str,
) -> Result<Api<SecretRotation>, String> {
    let rotations: Api<SecretRotation> = Api::namespaced(client.clone(), namespace);
    let rotation: SecretRotation = serde_json::from_value(json!({
        "apiVersion": "qlikops.io/v1alpha1",
        "kind": "SecretRotation",
        "metadata": { "name": NAME },
        "spec": {
            "tenantRef": { "name": cluster::TENANT },
            "credential": { "apiKey": { "description": "bench consumer", "expiry": "24h" } },
            "secret": { "name": SECRET, "key": KEY },
            "gracePeriod": "1m",
        },
    }))
    .map_err(|e| format!("bench SecretRotation: {e}"))?;
    rotations
        .create(&PostParams::default(), &rotation)
        .await
        .map_err(|e| format!("failed to create the SecretRotation: {e}"))?;
    Ok(rotations)
}

/// Waits for the first credential and returns its revision.
pub(crate) async fn first_credential(tracker: &Tracker<SecretRotation>) -> Result<i64, String> {
    tracker
        .wait_for("the first credential", ROTATION_DEADLINE, |r| {
            r.values()
                .any(|r| settled_at(r).is_some_and(|rev| rev >= 1))
        })
        .await?;
    Ok(tracker
        .read(|r| r.values().find_map(settled_at))?
        .unwrap_or(1))
}

/// Asks for rotation number `done` (the manual trigger annotation).
pub(crate) async fn request_rotation(
    rotations: &Api<SecretRotation>,
    tracker: &Tracker<SecretRotation>,
    done: i64,
) -> Result<(), String> {
    let requested = request_time(tracker).await?;
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
    Ok(())
}

/// Waits until the rotation has settled at `revision` or later (rotation number `done`).
pub(crate) async fn wait_settled(
    tracker: &Tracker<SecretRotation>,
    revision: i64,
    done: i64,
) -> Result<(), String> {
    tracker
        .wait_for(
            &format!("rotation {done} to complete"),
            ROTATION_DEADLINE,
            |r| {
                r.values()
                    .any(|r| settled_at(r).is_some_and(|rev| rev >= revision))
            },
        )
        .await
        .map(|_| ())
}

/// The operator's API keys for the rotation on the tenant.
pub(crate) struct OperatorKeys {
    /// Active keys carrying the rotation's marker.
    pub active: usize,
    /// Active ones that are neither its current nor its previous credential: leaked.
    pub unaccounted: usize,
}

/// Lists the tenant's API keys and sorts the operator's into accounted for and not.
pub(crate) async fn operator_keys(
    emulator: &Emulator,
    namespace: &str,
    tracker: &Tracker<SecretRotation>,
) -> Result<OperatorKeys, String> {
    let (uid, accounted) = tracker.read(|r| {
        let rotation = r.values().next();
        let uid = rotation.and_then(|r| r.metadata.uid.clone());
        let status = rotation.and_then(|r| r.status.as_ref());
        let accounted: Vec<String> = status
            .into_iter()
            .flat_map(|s| [&s.current, &s.previous])
            .filter_map(|c| c.as_ref()?.id.clone())
            .collect();
        (uid, accounted)
    })?;
    let uid = uid.ok_or("the SecretRotation has no uid")?;
    let ours = emulator
        .admin_client(namespace)?
        .find_api_keys_by_description_marker(&format!("[qlikops:{uid}:"))
        .await
        .map_err(|e| format!("failed to list the API keys: {e}"))?;
    let active: Vec<_> = ours
        .iter()
        .filter(|k| k.status == ApiKeyStatus::Active)
        .collect();
    Ok(OperatorKeys {
        active: active.len(),
        unaccounted: active.iter().filter(|k| !accounted.contains(&k.id)).count(),
    })
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
pub(crate) fn settled_at(rotation: &SecretRotation) -> Option<i64> {
    let status = rotation.status.as_ref()?;
    (status.phase == Phase::Idle && status.previous.is_none() && status.revision >= 1)
        .then_some(status.revision)
}

/// Reads the Secret and calls the tenant with its value, in a loop.
pub(crate) struct Consumer {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
    requests: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
}

impl Consumer {
    pub(crate) fn start(
        bench: &Bench,
        namespace: &str,
        emulator: &Emulator,
    ) -> Result<Consumer, String> {
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
            // What a mounted Secret holds: the kubelet keeps the last value it read while
            // the apiserver cannot be reached (the chaos runs restart it).
            let mut mounted: Option<String> = None;
            while !stopping.load(Ordering::Relaxed) {
                pace.tick().await;
                match secrets.get(SECRET).await {
                    Ok(secret) => {
                        mounted = secret
                            .data
                            .and_then(|d| d.get(KEY).cloned())
                            .and_then(|bytes| String::from_utf8(bytes.0).ok());
                    }
                    Err(kube::Error::Api(_)) => mounted = None,
                    Err(_) => {}
                }
                let Some(token) = mounted.clone() else {
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

    /// Stops the loop; returns the requests made and how many failed.
    pub(crate) async fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        (
            self.requests.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
        )
    }
}
