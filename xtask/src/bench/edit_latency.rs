//! `csp_edit_latency`: 100 sequential single-entry edits, each timed from the apply to the
//! ConfigMap showing it and split into spans (see [`super::spans`]); and the floor: the same
//! tenant calls and ConfigMap write made directly, without the operator, each call timed.

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
use super::spans::{self, Edit, EmulatorClock};
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

    let reference = Instant::now();
    let clock = EmulatorClock::calibrate(&emulator, reference).await?;
    let e0 = format!("{namespace}/e0");
    let mut latencies = Vec::with_capacity(EDITS);
    let mut timeline = Vec::with_capacity(EDITS);
    let mut pace = tokio::time::interval(EDIT_PACE);
    for edit in 0..EDITS {
        pace.tick().await;
        let origin = format!("https://edit{edit}.bx.io");
        let start = Instant::now();
        let patched = entries_api
            .patch(
                "e0",
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": { "origin": origin } })),
            )
            .await
            .map_err(|e| format!("failed to edit e0: {e}"))?;
        let patched_at = Instant::now();
        let generation = patched.metadata.generation;
        let (ready_what, published_what) = (
            format!("edit {edit} Ready"),
            format!("edit {edit} in the header"),
        );
        let status_seen = entries.wait_for(&ready_what, EDIT_DEADLINE, |e| {
            e.get(&e0)
                .is_some_and(|e| e.metadata.generation >= generation && cluster::entry_ready(e))
        });
        let published = config_maps.wait_for(&published_what, EDIT_DEADLINE, |c| {
            c.values().filter_map(cluster::header_of).any(|h| {
                h.split_whitespace()
                    .any(|s| s.trim_end_matches(';') == origin)
            })
        });
        let (status_seen, published) = tokio::try_join!(status_seen, published)?;
        latencies.push(published.saturating_duration_since(start));
        timeline.push(Edit {
            applied: spans::at(reference, start),
            patched: spans::at(reference, patched_at),
            status_seen: spans::at(reference, status_seen),
            published: spans::at(reference, published),
        });
    }
    let calls = clock.calls(&emulator.requests().await?);
    let breakdown = spans::breakdown(&timeline, &calls);
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
    let totals: Vec<Duration> = floor.iter().map(|f| f.iter().sum()).collect();
    let (p50, p99) = (percentile(&latencies, 50), percentile(&latencies, 99));
    let (floor_p50, floor_p99) = (percentile(&totals, 50), percentile(&totals, 99));
    let step = |i: usize| {
        let samples: Vec<Duration> = floor.iter().map(|f| f[i]).collect();
        json!({ "p50": percentile(&samples, 50), "p99": percentile(&samples, 99) })
    };
    Ok(json!({
        "edits": EDITS,
        "p50_ms": p50,
        "p99_ms": p99,
        "max_ms": percentile(&latencies, 100),
        "floor_p50_ms": floor_p50,
        "floor_p99_ms": floor_p99,
        "edits_per_second": 1,
        "p50_over_floor_p50": round(p50 / floor_p50),
        "p99_over_floor_p99": round(p99 / floor_p99),
        "p99_over_floor_p50": round(p99 / floor_p50),
        "breakdown": breakdown,
        "floor_breakdown_ms": {
            "put": step(0),
            "generate_header": step(1),
            "configmap_apply": step(2),
        },
        "emulator_clock_uncertainty_ms": round(clock.uncertainty),
    }))
}

/// The direct path: PUT the entry, fetch the tenant's header, server-side apply it; the time
/// of each of the three steps, per edit.
async fn floor(
    bench: &Bench,
    namespace: &str,
    emulator: &Emulator,
    remote_id: &str,
) -> Result<Vec<[Duration; 3]>, String> {
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
        let put = Instant::now();
        let header = tenant
            .generate_csp_header()
            .await
            .map_err(|e| format!("floor header: {e}"))?;
        let fetched = Instant::now();
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
        timings.push([put - start, fetched - put, fetched.elapsed()]);
    }
    Ok(timings)
}

/// The `pct`th percentile (nearest rank) in milliseconds.
fn percentile(samples: &[Duration], pct: usize) -> f64 {
    let ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    round(spans::percentile(&ms, pct))
}
