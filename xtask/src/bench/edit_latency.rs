//! `csp_edit_latency`: 100 sequential single-entry edits, each timed from the apply to the
//! ConfigMap showing it; and the floor: the same tenant calls and ConfigMap write made
//! directly, without the operator.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use qlik_csp_operator::api::CspEntry;
use qlik_csp_operator::csp::{Directive, Origin};
use qlik_csp_operator::tenant::CspOriginContent;
use serde_json::{Value, json};

use super::Bench;
use super::burst::{header_tracker, round};
use super::cluster::{self, HEADER_CONFIG_MAP, HEADER_KEY, Tracker};
use crate::processes::{Emulator, Operator};

const ENTRIES: usize = 10;
const EDITS: usize = 100;
const EDIT_DEADLINE: Duration = Duration::from_secs(60);
/// One edit a second: 60 writes a minute stay under the client's own budget of 90, so the
/// figures measure the operator, not the rate limiter (both runs are paced alike).
const EDIT_PACE: Duration = Duration::from_secs(1);

pub async fn run(bench: &Bench) -> Result<Value, String> {
    let namespace = "bench-edit";
    cluster::create_namespace(&bench.client, namespace).await?;
    let emulator = Emulator::start(&bench.bins, &bench.work, "edit", &[])?;
    cluster::create_tenant(&bench.client, namespace, &emulator, "10m").await?;
    let mut operator = Operator::start(
        &bench.bins,
        &bench.kubeconfig,
        &["--log-format", "json", "--namespace", namespace],
        bench.work.join("operator-edit.log"),
    )?;
    let entries_api = Api::<CspEntry>::namespaced(bench.client.clone(), namespace);
    let entries = Tracker::start(entries_api.clone(), watcher::Config::default()).await?;
    let config_maps = header_tracker(bench, namespace).await?;
    cluster::create_entries(&bench.client, namespace, ENTRIES, 4).await?;
    config_maps
        .wait_for("the first header", Duration::from_secs(300), |c| {
            c.values()
                .filter_map(cluster::header_of)
                .any(|h| cluster::header_has_all(h, ENTRIES))
        })
        .await?;
    entries
        .wait_for("all entries Ready", Duration::from_secs(300), |e| {
            e.values().filter(|e| cluster::entry_ready(e)).count() == ENTRIES
        })
        .await?;

    let mut latencies = Vec::with_capacity(EDITS);
    let mut pace = tokio::time::interval(EDIT_PACE);
    for edit in 0..EDITS {
        pace.tick().await;
        let origin = format!("https://edit{edit}.bx.io");
        let start = Instant::now();
        entries_api
            .patch(
                "e0",
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": { "origin": origin } })),
            )
            .await
            .map_err(|e| format!("failed to edit e0: {e}"))?;
        config_maps
            .wait_for(&format!("edit {edit} in the header"), EDIT_DEADLINE, |c| {
                c.values().filter_map(cluster::header_of).any(|h| {
                    h.split_whitespace()
                        .any(|s| s.trim_end_matches(';') == origin)
                })
            })
            .await?;
        latencies.push(start.elapsed());
    }
    operator.check_alive()?;
    let remote_id = entries
        .read(|e| {
            e.values()
                .find(|e| e.metadata.name.as_deref() == Some("e0"))
                .and_then(|e| e.status.as_ref()?.id.clone())
        })?
        .ok_or("e0 has no remote id")?;
    drop(operator);

    let floor = floor(bench, namespace, &emulator, &remote_id).await?;
    let p50 = percentile(&latencies, 50);
    let floor_p50 = percentile(&floor, 50);
    Ok(json!({
        "edits": EDITS,
        "p50_ms": p50,
        "p99_ms": percentile(&latencies, 99),
        "max_ms": percentile(&latencies, 100),
        "floor_p50_ms": floor_p50,
        "floor_p99_ms": percentile(&floor, 99),
        "edits_per_second": 1,
        "p99_over_floor_p50": round(percentile(&latencies, 99) / floor_p50),
    }))
}

/// The direct path: PUT the entry, fetch the tenant's header, server-side apply it.
async fn floor(
    bench: &Bench,
    namespace: &str,
    emulator: &Emulator,
    remote_id: &str,
) -> Result<Vec<Duration>, String> {
    let tenant = emulator.admin_client(namespace)?;
    let config_maps = Api::<ConfigMap>::namespaced(bench.client.clone(), namespace);
    let mut timings = Vec::with_capacity(EDITS);
    let mut pace = tokio::time::interval(EDIT_PACE);
    for edit in 0..EDITS {
        pace.tick().await;
        let origin = Origin::parse(&format!("https://floor{edit}.bx.io"))
            .map_err(|e| format!("floor origin: {e}"))?;
        let content = CspOriginContent::new(
            format!("{namespace}/e0"),
            &origin,
            [Directive::ImgSrc],
            false,
            "",
        );
        let start = Instant::now();
        tenant
            .update_csp_origin(remote_id, &content)
            .await
            .map_err(|e| format!("floor update: {e}"))?;
        let header = tenant
            .generate_csp_header()
            .await
            .map_err(|e| format!("floor header: {e}"))?;
        config_maps
            .patch(
                HEADER_CONFIG_MAP,
                &PatchParams::apply("bench-floor").force(),
                &Patch::Apply(json!({
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": { "name": HEADER_CONFIG_MAP },
                    "data": { HEADER_KEY: header },
                })),
            )
            .await
            .map_err(|e| format!("floor ConfigMap write: {e}"))?;
        timings.push(start.elapsed());
    }
    Ok(timings)
}

/// The `pct`th percentile (nearest rank) in milliseconds.
fn percentile(samples: &[Duration], pct: usize) -> f64 {
    let mut sorted: Vec<Duration> = samples.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (pct * sorted.len()).div_ceil(100).clamp(1, sorted.len());
    round(sorted[rank - 1].as_secs_f64() * 1000.0)
}
