//! `csp_burst` and `csp_steady`: 250 CspEntries applied at once to one tenant, then the same
//! 250 left alone for two drift intervals.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Event};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use qlik_csp_operator::api::{CspEntry, QlikTenant};
use serde_json::{Value, json};

use super::Bench;
use super::cluster::{self, HEADER_CONFIG_MAP, TENANT, Tracker};
use super::memory::OperatorMemory;
use crate::processes::{Emulator, Operator};

const ENTRIES: usize = 250;
/// Qlik's largest page of csp-origins.
const PAGE: usize = 100;
/// The steady scenario's `syncInterval`: the CRD's minimum.
const STEADY_INTERVAL: Duration = Duration::from_secs(30);
/// Calls and writes a burst causes after it converged (trailing reconciles) still count.
const TRAILING: Duration = Duration::from_secs(5);
const CONVERGE_DEADLINE: Duration = Duration::from_secs(900);

pub async fn run(bench: &Bench) -> Result<(Value, Value), String> {
    let namespace = "bench-burst";
    cluster::create_namespace(&bench.client, namespace).await?;
    let emulator = Emulator::start(&bench.bins, &bench.work, "burst", &[])?;
    cluster::create_tenant(&bench.client, namespace, &emulator, "10m").await?;
    let burst = burst(bench, namespace, &emulator).await?;
    let steady = steady(bench, namespace, &emulator).await?;
    Ok((burst, steady))
}

async fn burst(bench: &Bench, namespace: &str, emulator: &Emulator) -> Result<Value, String> {
    let Watched {
        mut operator,
        config_maps,
        entries,
    } = start_operator(bench, namespace, "operator-burst.log", &[]).await?;

    let calls_before = emulator.counters().await?;
    let writes_before = config_maps.writes();
    let start = Instant::now();
    cluster::create_entries(&bench.client, namespace, ENTRIES, 16).await?;
    let applied = start.elapsed();
    entries
        .wait_for("all entries Ready", CONVERGE_DEADLINE, |e| {
            e.values().filter(|e| cluster::entry_ready(e)).count() == ENTRIES
        })
        .await?;
    config_maps
        .wait_for("the header to hold every origin", CONVERGE_DEADLINE, |c| {
            c.values()
                .filter_map(cluster::header_of)
                .any(|h| cluster::header_has_all(h, ENTRIES))
        })
        .await?;
    let converge = start.elapsed();
    tokio::time::sleep(TRAILING).await;
    operator.check_alive()?;
    let calls = emulator.counters().await?.since(&calls_before);
    // The design's minimum: one create per entry, one (single-page: the tenant starts
    // empty) list, and one generate-header for the final header.
    let minimum = ENTRIES as u64 + 1 + 1;
    Ok(json!({
        "entries": ENTRIES,
        "apply_seconds": round(applied.as_secs_f64()),
        "converge_seconds": round(converge.as_secs_f64()),
        "tenant_calls": calls.total(),
        "tenant_calls_minimum": minimum,
        "tenant_calls_ratio": round(calls.total() as f64 / minimum as f64),
        "tenant_calls_by_operation": calls.to_json(),
        "configmap_writes": config_maps.writes() - writes_before,
        "peak_rss_mib": round(OperatorMemory::of(&operator).peak_mib()?),
    }))
}

async fn steady(bench: &Bench, namespace: &str, emulator: &Emulator) -> Result<Value, String> {
    // A fresh operator picks up the shorter interval for every entry.
    let interval = format!("{}s", STEADY_INTERVAL.as_secs());
    Api::<QlikTenant>::namespaced(bench.client.clone(), namespace)
        .patch(
            TENANT,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "syncInterval": interval } })),
        )
        .await
        .map_err(|e| format!("failed to shorten the sync interval: {e}"))?;
    let mut operator = Operator::start(
        &bench.bins,
        &bench.kubeconfig,
        &["--log-format", "json", "--namespace", namespace],
        bench.work.join("operator-steady.log"),
    )?;
    let client = &bench.client;
    let entries = Tracker::start(
        Api::<CspEntry>::namespaced(client.clone(), namespace),
        watcher::Config::default(),
    )
    .await?;
    let tenants = Tracker::start(
        Api::<QlikTenant>::namespaced(client.clone(), namespace),
        watcher::Config::default(),
    )
    .await?;
    let config_maps = Tracker::start(
        Api::<ConfigMap>::namespaced(client.clone(), namespace),
        watcher::Config::default(),
    )
    .await?;
    let events = Tracker::start(
        Api::<Event>::namespaced(client.clone(), namespace),
        watcher::Config::default(),
    )
    .await?;
    // The restart's own catch-up (every entry checked once) is not steady state.
    tokio::time::sleep(STEADY_INTERVAL + Duration::from_secs(2)).await;
    let window_start = emulator.arrivals("csp-origins.generate-header").await?;
    let calls_before = emulator.counters().await?;
    let before = [
        entries.writes(),
        tenants.writes(),
        config_maps.writes(),
        events.writes(),
    ];
    tokio::time::sleep(STEADY_INTERVAL * 2).await;
    operator.check_alive()?;
    let calls = emulator.counters().await?.since(&calls_before);
    let after = [
        entries.writes(),
        tenants.writes(),
        config_maps.writes(),
        events.writes(),
    ];
    let writes: Vec<u64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    // When the drift checks ran, to tell a missed interval from an unaligned window.
    let header_times = emulator.arrivals("csp-origins.generate-header").await?;
    let list_times = emulator.arrivals("csp-origins.list").await?;
    let skip = window_start.len();
    let pages = ENTRIES.div_ceil(PAGE) as u64;
    // Per interval: one paged list of the entries, the tenant's header and the connection
    // check (tenants/me).
    let minimum = 2 * (pages + 1 + 1);
    Ok(json!({
        "entries": ENTRIES,
        "interval_seconds": STEADY_INTERVAL.as_secs(),
        "intervals": 2,
        "tenant_calls": calls.total(),
        "tenant_calls_minimum": minimum,
        "tenant_calls_by_operation": calls.to_json(),
        "generate_header_at_seconds": header_times,
        "list_pages_at_seconds": list_times,
        "calls_before_window": skip,
        "apiserver_writes": writes.iter().sum::<u64>(),
        "apiserver_writes_by_kind": {
            "CspEntry": writes[0], "QlikTenant": writes[1], "ConfigMap": writes[2], "Event": writes[3],
        },
    }))
}

/// Watches the header ConfigMap of `namespace`.
/// The operator of one namespace started, its tenant Ready, its first header published,
/// and the watches a scenario measures with.
pub(crate) struct Watched {
    pub operator: Operator,
    pub config_maps: Tracker<ConfigMap>,
    pub entries: Tracker<CspEntry>,
}

/// Starts the release operator for `namespace` (logging to `log` in the work directory,
/// `extra` added to its flags) and waits until its tenant is Ready and has published a
/// first header.
pub(crate) async fn start_operator(
    bench: &Bench,
    namespace: &str,
    log: &str,
    extra: &[&str],
) -> Result<Watched, String> {
    let mut args = vec!["--log-format", "json", "--namespace", namespace];
    args.extend_from_slice(extra);
    let operator = Operator::start(&bench.bins, &bench.kubeconfig, &args, bench.work.join(log))?;
    let (config_maps, entries) = wait_started(bench, namespace).await?;
    Ok(Watched {
        operator,
        config_maps,
        entries,
    })
}

/// Waits until the tenant of `namespace` is Ready and has published a first header (an
/// operator is running); returns watches of the header ConfigMap and of the CspEntries.
pub(crate) async fn wait_started(
    bench: &Bench,
    namespace: &str,
) -> Result<(Tracker<ConfigMap>, Tracker<CspEntry>), String> {
    let tenants = Tracker::start(
        Api::<QlikTenant>::namespaced(bench.client.clone(), namespace),
        watcher::Config::default(),
    )
    .await?;
    tenants
        .wait_for("the tenant to be Ready", Duration::from_secs(120), |t| {
            t.values().any(cluster::tenant_ready)
        })
        .await?;
    let config_maps = header_tracker(bench, namespace).await?;
    config_maps
        .wait_for("the first header", Duration::from_secs(60), |c| {
            !c.is_empty()
        })
        .await?;
    let entries = Tracker::start(
        Api::<CspEntry>::namespaced(bench.client.clone(), namespace),
        watcher::Config::default(),
    )
    .await?;
    Ok((config_maps, entries))
}

pub async fn header_tracker(bench: &Bench, namespace: &str) -> Result<Tracker<ConfigMap>, String> {
    Tracker::start(
        Api::<ConfigMap>::namespaced(bench.client.clone(), namespace),
        watcher::Config::default().fields(&format!("metadata.name={HEADER_CONFIG_MAP}")),
    )
    .await
}

pub fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}
