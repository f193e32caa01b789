//! An API key SecretRotation, the requests that rotate it, and a consumer that keeps using
//! whatever its Secret holds: the pieces the `rotation` benchmark and the chaos scenarios
//! share. Does I/O (the apiserver, and the tenant for the consumer's calls).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use qlik_csp_operator::api::SecretRotation;
use qlik_csp_operator::api::secret_rotation::Phase;
use qlik_csp_operator::tenant::wire::ApiKeyStatus;
use serde_json::json;

use super::cluster::{self, Tracker};
use crate::processes::Emulator;

/// The SecretRotation, and the Secret (and key) it writes.
pub const NAME: &str = "consumer-key";
pub const SECRET: &str = "consumer";
pub const KEY: &str = "token";
/// How long one rotation may take.
pub const ROTATION_DEADLINE: Duration = Duration::from_secs(120);
/// How often the consumer calls the tenant.
pub const CONSUMER_INTERVAL: Duration = Duration::from_millis(200);

/// Creates SecretRotation [`NAME`] of an API key for the bench tenant, writing Secret
/// [`SECRET`]. Its grace period is the CRD's minimum (1 m): run the operator with
/// `--grace-period-override` to shorten it.
pub async fn create(
    client: &Client,
    namespace: &str,
    description: &str,
) -> Result<Api<SecretRotation>, String> {
    let rotation: SecretRotation = serde_json::from_value(json!({
        "apiVersion": "qlikops.io/v1alpha1",
        "kind": "SecretRotation",
        "metadata": { "name": NAME },
        "spec": {
            "tenantRef": { "name": cluster::TENANT },
            "credential": { "apiKey": { "description": description, "expiry": "24h" } },
            "secret": { "name": SECRET, "key": KEY },
            "gracePeriod": "1m",
        },
    }))
    .map_err(|e| format!("SecretRotation {NAME}: {e}"))?;
    let rotations = Api::<SecretRotation>::namespaced(client.clone(), namespace);
    rotations
        .create(&PostParams::default(), &rotation)
        .await
        .map_err(|e| format!("failed to create the SecretRotation: {e}"))?;
    Ok(rotations)
}

/// Asks for one more rotation of [`NAME`] (the manual trigger annotation).
pub async fn request(
    rotations: &Api<SecretRotation>,
    tracker: &Tracker<SecretRotation>,
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
        .map_err(|e| format!("failed to request a rotation: {e}"))?;
    Ok(())
}

/// Waits until the SecretRotation has settled at revision `revision` or later.
pub async fn wait_settled(
    tracker: &Tracker<SecretRotation>,
    revision: i64,
    deadline: Duration,
) -> Result<(), String> {
    tracker
        .wait_for(
            &format!("rotation to revision {revision} to complete"),
            deadline,
            |r| {
                r.values()
                    .any(|r| settled_at(r).is_some_and(|rev| rev >= revision))
            },
        )
        .await
        .map(|_| ())
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
pub fn settled_at(rotation: &SecretRotation) -> Option<i64> {
    let status = rotation.status.as_ref()?;
    (status.phase == Phase::Idle && status.previous.is_none() && status.revision >= 1)
        .then_some(status.revision)
}

/// What Secret [`SECRET`] holds under [`KEY`], if anything.
pub async fn secret_value(secrets: &Api<Secret>) -> Option<String> {
    value_of(&secrets.get(SECRET).await.ok()?)
}

fn value_of(secret: &Secret) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(KEY)?.0.clone();
    String::from_utf8(bytes).ok()
}

/// Waits for the first credential and returns its revision.
pub async fn first_credential(tracker: &Tracker<SecretRotation>) -> Result<i64, String> {
    wait_settled(tracker, 1, ROTATION_DEADLINE).await?;
    Ok(tracker
        .read(|r| r.values().find_map(settled_at))?
        .unwrap_or(1))
}

/// The operator's API keys for the rotation on the tenant.
pub struct OperatorKeys {
    /// Active keys carrying the rotation's marker.
    pub active: usize,
    /// Active ones that are neither its current nor its previous credential: leaked.
    pub unaccounted: usize,
}

/// Lists the tenant's API keys and sorts the operator's into accounted for and not.
pub async fn operator_keys(
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

/// Whether the tenant accepts `token`.
pub async fn accepted(http: &reqwest::Client, emulator_url: &str, token: &str) -> bool {
    let answer = http
        .get(format!("{emulator_url}/api/v1/users/me"))
        .bearer_auth(token)
        .send()
        .await;
    // users/me answers with a redirect to the user when the credential works.
    answer.is_ok_and(|a| a.status().is_success() || a.status().is_redirection())
}

/// Reads the Secret and calls the tenant with its value, in a loop.
pub struct Consumer {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
    requests: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
}

impl Consumer {
    pub fn start(client: &Client, namespace: &str, emulator: &Emulator) -> Consumer {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
        let http = emulator.http().clone();
        let url = emulator.url.clone();
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
                counted.fetch_add(1, Ordering::Relaxed);
                match secrets.get(SECRET).await {
                    Ok(secret) => mounted = value_of(&secret),
                    Err(kube::Error::Api(_)) => mounted = None,
                    Err(_) => {}
                }
                // No credential to use is an outage for a consumer too.
                let works = match &mounted {
                    Some(token) => accepted(&http, &url, token).await,
                    None => false,
                };
                if !works {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Consumer {
            stop,
            task,
            requests,
            failures,
        }
    }

    /// Stops the consumer: (requests, authentication failures).
    pub async fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        (
            self.requests.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
        )
    }
}
