//! `scale`: 40 tenants with 250 CspEntries each (10,000 entries), one operator watching
//! every namespace; the operator's memory measured phase by phase.
//!
//! The operator runs while the bench creates the entries, as it would during a GitOps sync
//! of everything at once: the peak a user must size the memory limit for. Its memory is
//! read from its own `/proc/<pid>/status` (see [`super::memory`]), so the bench's own
//! object creation never counts, and the kernel's peak is restarted between phases:
//!
//! ```text
//! start ── tenants Ready, first headers ──┬── creating the entries ──┬── converging ──┐
//!   startup_peak_mib          idle_rss_mib┘    creation_peak_mib     └ convergence_peak_mib
//!                                                                     settled_rss_mib ┘
//! ```
//!
//! `bytes_per_entry` is (the higher phase peak − idle RSS) / entries: what each entry costs
//! at the worst moment; `retained_bytes_per_entry` uses the RSS once converged instead.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::runtime::watcher;
use qlik_csp_operator::api::{CspEntry, QlikTenant};
use serde_json::{Value, json};

use super::Bench;
use super::burst::round;
use super::cluster::{self, HEADER_CONFIG_MAP, Tracker};
use super::memory::OperatorMemory;
use crate::processes::{Emulator, Operator};

const ENTRIES_PER_TENANT: usize = 250;
const CONVERGE_DEADLINE: Duration = Duration::from_secs(1800);
const MIB: f64 = 1024.0 * 1024.0;

pub async fn run(bench: &Bench, tenants: usize) -> Result<Value, String> {
    let namespaces: Vec<String> = (0..tenants).map(|i| format!("bench-scale-{i}")).collect();
    let mut emulators = Vec::with_capacity(tenants);
    for namespace in &namespaces {
        cluster::create_namespace(&bench.client, namespace).await?;
        let emulator = Emulator::start(&bench.bins, &bench.work, namespace, &[])?;
        cluster::create_tenant(&bench.client, namespace, &emulator, "10m").await?;
        emulators.push(emulator);
    }
    // A profiling build of the operator (`--features dhat-heap`) may stand in for the
    // release one: QLIKOPS_BENCH_OPERATOR_DIR names the directory that holds it, and
    // QLIKOPS_DHAT_OUT (inherited) where it writes its heap profile once converged.
    let operator_bins = std::env::var_os("QLIKOPS_BENCH_OPERATOR_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| bench.bins.clone());
    if let Some(out) = std::env::var_os("QLIKOPS_DHAT_OUT") {
        // A stop file left by an earlier run would end the profile at once.
        let mut stop = out;
        stop.push(".stop");
        let _ = std::fs::remove_file(stop);
    }
    let mut operator = Operator::start(
        &operator_bins,
        &bench.kubeconfig,
        &["--log-format", "json"],
        bench.work.join("operator-scale.log"),
    )?;
    let memory = OperatorMemory::of(&operator);
    let client = &bench.client;
    let tenant_tracker = Tracker::start(
        Api::<QlikTenant>::all(client.clone()),
        watcher::Config::default(),
    )
    .await?;
    tenant_tracker
        .wait_for("every tenant Ready", Duration::from_secs(300), |t| {
            t.values().filter(|t| cluster::tenant_ready(t)).count() >= tenants
        })
        .await?;
    let entries = Tracker::start(
        Api::<CspEntry>::all(client.clone()),
        watcher::Config::default(),
    )
    .await?;
    let config_maps = Tracker::start(
        Api::<ConfigMap>::all(client.clone()),
        watcher::Config::default().fields(&format!("metadata.name={HEADER_CONFIG_MAP}")),
    )
    .await?;
    // Every tenant has published its (empty) header: the operator has nothing left to do.
    config_maps
        .wait_for(
            "every tenant's first header",
            Duration::from_secs(300),
            |c| scale_headers(c).count() >= tenants,
        )
        .await?;
    let startup_peak = memory.peak_mib()?;
    let idle = memory.rss_mib()?;
    let writes_before = config_maps.writes();

    memory.reset_peak()?;
    let start = Instant::now();
    cluster::create_entries_in(client, &namespaces, ENTRIES_PER_TENANT, 16).await?;
    let applied = start.elapsed();
    let creation_peak = memory.peak_mib()?;

    memory.reset_peak()?;
    let total = tenants * ENTRIES_PER_TENANT;
    entries
        .wait_for("every entry Ready", CONVERGE_DEADLINE, |e| {
            e.values().filter(|e| cluster::entry_ready(e)).count() >= total
        })
        .await?;
    config_maps
        .wait_for("every header to hold its origins", CONVERGE_DEADLINE, |c| {
            scale_headers(c)
                .filter(|h| cluster::header_has_all(h, ENTRIES_PER_TENANT))
                .count()
                >= tenants
        })
        .await?;
    let converge = start.elapsed();
    let convergence_peak = memory.peak_mib()?;
    let settled = memory.rss_mib()?;
    operator.check_alive()?;
    write_heap_profile().await?;
    let mut calls = crate::processes::Counters::default();
    for emulator in &emulators {
        calls.add(&emulator.counters().await?);
    }
    let worst = creation_peak.max(convergence_peak);
    let per_entry = |rss_mib: f64| ((rss_mib - idle) * MIB / total as f64).round();
    Ok(json!({
        "tenants": tenants,
        "entries": total,
        "apply_seconds": round(applied.as_secs_f64()),
        "converge_seconds": round(converge.as_secs_f64()),
        "tenant_calls": calls.total(),
        "tenant_calls_by_operation": calls.to_json(),
        "configmap_writes": config_maps.writes() - writes_before,
        "peak_rss_mib": round(worst.max(startup_peak)),
        "startup_peak_mib": round(startup_peak),
        "idle_rss_mib": round(idle),
        "creation_peak_mib": round(creation_peak),
        "convergence_peak_mib": round(convergence_peak),
        "settled_rss_mib": round(settled),
        "bytes_per_entry": per_entry(worst),
        "retained_bytes_per_entry": per_entry(settled),
    }))
}

/// Asks a profiling operator (QLIKOPS_DHAT_OUT set) to write its heap profile, by creating
/// `<file>.stop` (see the operator's `controller::profile`), and waits until it is written.
async fn write_heap_profile() -> Result<(), String> {
    let Some(out) = std::env::var_os("QLIKOPS_DHAT_OUT") else {
        return Ok(());
    };
    let out = std::path::PathBuf::from(out);
    let mut stop = out.clone().into_os_string();
    stop.push(".stop");
    let _ = std::fs::remove_file(&out);
    std::fs::write(&stop, b"").map_err(|e| format!("failed to create {stop:?}: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(300);
    // dhat writes the file in one go when the profiler is dropped; a stable size means done.
    let mut last = None;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let size = std::fs::metadata(&out).map(|m| m.len()).ok();
        if size.is_some() && size == last {
            return Ok(());
        }
        last = size;
    }
    Err(format!(
        "no heap profile at {} after 5 minutes",
        out.display()
    ))
}

/// The headers of the scale tenants' ConfigMaps.
fn scale_headers(
    config_maps: &std::collections::HashMap<String, ConfigMap>,
) -> impl Iterator<Item = &str> {
    config_maps
        .iter()
        .filter(|(key, _)| cluster::namespace_of(key).starts_with("bench-scale-"))
        .filter_map(|(_, c)| cluster::header_of(c))
}
