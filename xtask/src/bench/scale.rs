//! `scale`: 40 tenants with 250 CspEntries each (10,000 entries), one operator watching
//! every namespace.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::runtime::watcher;
use qlik_csp_operator::api::{CspEntry, QlikTenant};
use serde_json::{Value, json};

use super::Bench;
use super::burst::round;
use super::cluster::{self, HEADER_CONFIG_MAP, Tracker};
use crate::processes::{Emulator, Operator};

const ENTRIES_PER_TENANT: usize = 250;
const CONVERGE_DEADLINE: Duration = Duration::from_secs(1800);

pub async fn run(bench: &Bench, tenants: usize) -> Result<Value, String> {
    let namespaces: Vec<String> = (0..tenants).map(|i| format!("bench-scale-{i}")).collect();
    let mut emulators = Vec::with_capacity(tenants);
    for namespace in &namespaces {
        cluster::create_namespace(&bench.client, namespace).await?;
        let emulator = Emulator::start(&bench.bins, &bench.work, namespace, &[])?;
        cluster::create_tenant(&bench.client, namespace, &emulator, "10m").await?;
        emulators.push(emulator);
    }
    let mut operator = Operator::start(
        &bench.bins,
        &bench.kubeconfig,
        &["--log-format", "json"],
        bench.work.join("operator-scale.log"),
    )?;
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

    let start = Instant::now();
    cluster::create_entries_in(client, &namespaces, ENTRIES_PER_TENANT, 16).await?;
    let applied = start.elapsed();
    let total = tenants * ENTRIES_PER_TENANT;
    entries
        .wait_for("every entry Ready", CONVERGE_DEADLINE, |e| {
            e.values().filter(|e| cluster::entry_ready(e)).count() >= total
        })
        .await?;
    config_maps
        .wait_for("every header to hold its origins", CONVERGE_DEADLINE, |c| {
            c.iter()
                .filter(|(key, _)| cluster::namespace_of(key).starts_with("bench-scale-"))
                .filter_map(|(_, c)| cluster::header_of(c))
                .filter(|h| cluster::header_has_all(h, ENTRIES_PER_TENANT))
                .count()
                >= tenants
        })
        .await?;
    let converge = start.elapsed();
    operator.check_alive()?;
    let mut calls = crate::processes::Counters::default();
    for emulator in &emulators {
        calls.add(&emulator.counters().await?);
    }
    Ok(json!({
        "tenants": tenants,
        "entries": total,
        "apply_seconds": round(applied.as_secs_f64()),
        "converge_seconds": round(converge.as_secs_f64()),
        "tenant_calls": calls.total(),
        "tenant_calls_by_operation": calls.to_json(),
        "configmap_writes": config_maps.writes(),
        "peak_rss_mib": round(operator.peak_rss_mib()?),
    }))
}
