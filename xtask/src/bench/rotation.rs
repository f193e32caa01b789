//! `rotation`: a consumer keeps calling the tenant with whatever the Secret holds (read
//! through the API before every call, as a mounted Secret would be) while 20 rotations run.
//! Counts the consumer's authentication failures and the operator-created API keys left
//! on the tenant beyond the one in use.

use std::time::{Duration, Instant};

use kube::api::Api;
use kube::runtime::watcher;
use qlik_csp_operator::api::SecretRotation;
use serde_json::{Value, json};

use super::Bench;
use super::api_key_rotation::{self as rotation, Consumer};
use super::burst::round;
use super::cluster::{self, Tracker};
use crate::processes::{Emulator, Operator};

const ROTATIONS: i64 = 20;
const ROTATION_DEADLINE: Duration = Duration::from_secs(120);

pub async fn run(bench: &Bench) -> Result<Value, String> {
    let namespace = "bench-rotation";
    cluster::create_namespace(&bench.client, namespace).await?;
    let emulator = Emulator::start(&bench.bins, &bench.work, "rotation", &[])?;
    cluster::create_tenant(&bench.client, namespace, &emulator, "10m").await?;
    let rotations: Api<SecretRotation> = Api::namespaced(bench.client.clone(), namespace);
    rotation::create(&bench.client, namespace, "bench consumer").await?;
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
    rotation::wait_settled(&tracker, 1, ROTATION_DEADLINE).await?;
    let first = tracker
        .read(|r| r.values().find_map(rotation::settled_at))?
        .unwrap_or(1);

    let consumer = Consumer::start(&bench.client, namespace, &emulator);
    let start = Instant::now();
    for done in 1..=ROTATIONS {
        rotation::request(&rotations, &tracker).await?;
        rotation::wait_settled(&tracker, first + done, ROTATION_DEADLINE).await?;
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
