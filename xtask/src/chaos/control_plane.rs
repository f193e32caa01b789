//! `control_plane`: the operator's control plane fails under it. A burst of CspEntries on
//! one tenant during which kube-apiserver is restarted once, etcd once, and the operator's
//! connections to the apiserver (its watches and requests in flight) are cut four times
//! ([`burst`]); then API-key rotations under a live consumer with the apiserver restarted
//! in the middle of each ([`rotations`]). Restarts keep the port, flags and data directory
//! (see [`qlikops_testenv::ControlPlane::restart_apiserver`]); the cuts happen at a TCP
//! relay the operator's kubeconfig points at ([`Relay`]), the scenario's own watches going
//! to the apiserver directly so that what it measures is not cut. The operator runs with
//! leader election on, as the chart deploys it: its Lease must outlive every restart (a
//! lost Lease stops the process, which fails the run).
//!
//! Invariants, as counts, taken once everything is done:
//! - `converged.entries_ready` / `converged.header_origins`: every entry `Ready=True` for
//!   its generation, and the header ConfigMap holding every origin;
//! - `duplicates`: remote entries beyond one per origin;
//! - `lost`: entries whose origin the tenant lacks, or whose `status.id` names no remote
//!   entry of that origin (a status write lost to a restart and never redone);
//! - `stale_tenant_status`: 1 when the QlikTenant is not Ready or its `status.header` does
//!   not describe the header in the ConfigMap (the tenant controller's status write lost);
//! - `rotations_completed`: rotations that settled (new key in the Secret, old revoked);
//! - `consumer_auth_failures`: calls of the consumer refused, with whatever its Secret
//!   held (the last value read while the apiserver was down, as a kubelet would keep it);
//! - `leaked_credentials`: the operator's active API keys on the tenant that the
//!   SecretRotation's status does not account for, after the grace period;
//! - `max_tenant_requests_per_minute.{writes,reads}`: as in `tenant_faults`.

mod burst;
mod injector;
mod rotations;

use std::fmt;
use std::time::{Duration, Instant};

use kube::api::Api;
use kube::runtime::watcher;
use qlik_csp_operator::api::QlikTenant;
use qlikops_testenv::{ControlPlane, Relay};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::converged::Converged;
use super::{Check, Outcome, measure};
use crate::bench::Bench;
use crate::bench::api_key_rotation::{self as rotation, Consumer};
use crate::bench::burst::{Watched, round, start_operator};
use crate::bench::cluster::{self, Tracker};
use crate::processes::Emulator;
use injector::Injector;

const NAMESPACE: &str = "chaos-control-plane";
/// The old key's grace period: longer than the apiserver is down in a restart (a few
/// seconds here), so that a consumer that could not read the new key while it was down
/// still holds a valid one; far shorter than a real grace period (10 minutes).
const GRACE_PERIOD: &str = "20s";

/// The scenario's size: the full run or `--quick`.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub entries: usize,
    pub rotations: i64,
    /// From the first create until every entry is Ready and the header holds every origin.
    pub converge_within: Duration,
}

impl Plan {
    pub fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                entries: 100,
                rotations: 2,
                converge_within: Duration::from_secs(240),
            }
        } else {
            Plan {
                entries: 250,
                rotations: 5,
                converge_within: Duration::from_secs(600),
            }
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} entries on one tenant through an apiserver restart, an etcd restart and 4 \
             connection cuts, converged within {} s; then {} key rotations, the apiserver \
             restarted in each",
            self.entries,
            self.converge_within.as_secs(),
            self.rotations
        )
    }
}

pub async fn run(
    bench: &Bench,
    control_plane: &ControlPlane,
    plan: &Plan,
) -> Result<Outcome, String> {
    cluster::create_namespace(&bench.client, NAMESPACE).await?;
    let emulator = Emulator::start(&bench.bins, &bench.work, "control-plane", &[])?;
    cluster::create_tenant(&bench.client, NAMESPACE, &emulator, "10m").await?;
    let rotations = rotation::create(&bench.client, NAMESPACE, "chaos consumer").await?;

    let upstream = control_plane
        .url
        .strip_prefix("https://")
        .ok_or_else(|| format!("unexpected apiserver URL {}", control_plane.url))?;
    let relay = Relay::start(upstream).await?;
    let relayed = Bench {
        client: bench.client.clone(),
        kubeconfig: relay.kubeconfig(
            &bench.kubeconfig,
            &control_plane.url,
            bench.work.join("kubeconfig-through-relay"),
        )?,
        bins: bench.bins.clone(),
        work: bench.work.clone(),
    };
    let Watched {
        mut operator,
        config_maps,
        entries,
    } = start_operator(
        &relayed,
        NAMESPACE,
        "operator-control-plane.log",
        &[
            "--grace-period-override",
            GRACE_PERIOD,
            "--leader-election",
            "--leader-election-namespace",
            NAMESPACE,
        ],
    )
    .await?;
    let rotation_tracker = Tracker::start(rotations.clone(), watcher::Config::default()).await?;
    let first = rotation::first_credential(&rotation_tracker).await?;
    let consumer = Consumer::start(&bench.client, NAMESPACE, &emulator);

    let start = Instant::now();
    let mut injector = Injector::new(control_plane, &relay, start);
    let count = plan.entries;
    let burst = burst::run(
        bench,
        &entries,
        &config_maps,
        &mut injector,
        count,
        start + plan.converge_within,
    )
    .await?;
    let entry_writes_at_convergence = entries.writes();
    let completed = rotations::run(
        &rotations,
        &rotation_tracker,
        &mut injector,
        first,
        plan.rotations,
    )
    .await?;
    let (consumer_requests, consumer_failures) = consumer.stop().await;
    operator.check_alive()?;

    // The log before our own listings below, so that it holds the operator's and the
    // consumer's requests only.
    let log = measure::request_log(&emulator).await?;
    let calls = emulator.counters().await?;
    let end = Converged::observe(&entries, &config_maps, &emulator, NAMESPACE, count).await?;
    let keys = rotation::operator_keys(&emulator, NAMESPACE, &rotation_tracker).await?;
    let tenant = Api::<QlikTenant>::namespaced(bench.client.clone(), NAMESPACE)
        .get(cluster::TENANT)
        .await
        .map_err(|e| format!("failed to read the QlikTenant: {e}"))?;
    let published =
        config_maps.read(|c| c.values().find_map(cluster::header_of).map(str::to_owned))?;

    let mut checks = end.checks();
    checks.extend([
        Check::exactly(
            "stale_tenant_status",
            u64::from(!describes(&tenant, published.as_deref())),
            0,
        ),
        Check::exactly(
            "rotations_completed",
            completed as u64,
            plan.rotations as u64,
        ),
        Check::exactly("consumer_auth_failures", consumer_failures, 0),
        Check::exactly("leaked_credentials", keys.unaccounted as u64, 0),
    ]);
    checks.extend(measure::tier_checks(&log));
    let did = json!({
        "entries": count,
        "rotations": plan.rotations,
        "grace_period": GRACE_PERIOD,
        "converge_bound_seconds": plan.converge_within.as_secs(),
        "converge_seconds": burst.converge_seconds,
        "apiserver_restarts": injector.count("apiserver_restart"),
        "etcd_restarts": injector.count("etcd_restart"),
        "connection_cuts": injector.count("connections_cut"),
        "faults": injector.record_json(),
        "relay_connections": relay.accepted(),
        "entry_writes_after_convergence": entries.writes() - entry_writes_at_convergence,
        "not_ready": end.not_ready(),
        "remote_entries": end.remote.len(),
        "consumer_requests": consumer_requests,
        "operator_keys_on_tenant": keys.active,
        "tenant_calls": calls.total(),
        "tenant_calls_by_operation": calls.to_json(),
        "tenant_answers_by_status": measure::by_status(&log),
        "seconds": round(start.elapsed().as_secs_f64()),
    });
    println!("control_plane: {did}");
    Ok(Outcome { did, checks })
}

/// Whether `tenant` is Ready and its status describes `header` (by its SHA-256, as the
/// operator records it).
fn describes(tenant: &QlikTenant, header: Option<&str>) -> bool {
    let recorded = tenant
        .status
        .as_ref()
        .and_then(|s| s.header.as_ref())
        .map(|h| h.sha256.as_str());
    let actual = header.map(|h| hex::encode(Sha256::digest(h.as_bytes())));
    cluster::tenant_ready(tenant) && recorded.is_some() && recorded == actual.as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn tenant(ready: &str, header_sha256: Option<&str>) -> QlikTenant {
        let header: Value = header_sha256.map_or(Value::Null, |sha256| {
            json!({ "sha256": sha256, "length": 1, "origins": 1, "publishedAt": "2026-12-03T00:00:00Z" })
        });
        serde_json::from_value(json!({
            "apiVersion": "qlikops.io/v1alpha1",
            "kind": "QlikTenant",
            "metadata": { "name": "bench", "generation": 1 },
            "spec": {
                "url": "https://t.eu.qlikcloud.com",
                "credentials": { "apiKey": { "secretRef": { "name": "s", "key": "k" } } },
            },
            "status": {
                "observedGeneration": 1,
                "conditions": [{
                    "type": "Ready", "status": ready, "reason": "R", "message": "",
                    "lastTransitionTime": "2026-12-03T00:00:00Z",
                }],
                "header": header,
            },
        }))
        .unwrap_or_else(|e| panic!("tenant: {e}"))
    }

    #[test]
    fn a_tenant_status_describes_the_published_header_by_its_digest_when_ready() {
        let header = "img-src https://c0.bx.io";
        let digest = hex::encode(Sha256::digest(header.as_bytes()));
        assert!(describes(&tenant("True", Some(&digest)), Some(header)));
        assert!(!describes(&tenant("True", Some("0ld")), Some(header)));
        assert!(!describes(&tenant("False", Some(&digest)), Some(header)));
        assert!(!describes(&tenant("True", None), Some(header)));
        assert!(!describes(&tenant("True", None), None));
    }
}
