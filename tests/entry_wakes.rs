//! Both controllers against a real kube-apiserver and the tenant emulator: an edit of one
//! CspEntry reconciles that entry, not every entry of its tenant.
//!
//! The tenant controller writes the QlikTenant's status each time it publishes a header;
//! the csp-entry controller used to reconcile every entry of the tenant on each of those
//! writes, so one edit cost a reconcile per entry (`cargo xtask chaos --only soak` saw
//! about a thousand a minute for 50 entries and an edit every 5 s). The drift interval is
//! ten minutes here, so no timer adds reconciles of its own.

mod support;

use std::time::Duration;

use kube::api::{Patch, PatchParams, PostParams};
use qlik_csp_operator::api::{CspEntry, QlikTenant};
use qlik_csp_operator::controller::csp_entry;
use serde_json::json;
use support::reconciles::{reconciles, until_quiet};
use support::tenant_rig::{Controller, TENANT, TenantRig};

const ENTRIES: usize = 20;
const DEADLINE: Duration = Duration::from_secs(90);

fn entry(index: usize) -> CspEntry {
    serde_json::from_value(json!({
        "apiVersion": "qlikops.io/v1alpha1",
        "kind": "CspEntry",
        "metadata": { "name": format!("e{index}") },
        "spec": { "tenantRef": { "name": TENANT }, "origin": format!("https://e{index}.example.com"),
                  "directives": ["img-src"] },
    }))
    .unwrap()
}

/// The QlikTenant's published header holds `origins` origins and `origin`.
async fn header_published(rig: &TenantRig, origins: u32, origin: &str) {
    let tenants = rig.api::<QlikTenant>();
    let config_maps = rig.api::<k8s_openapi::api::core::v1::ConfigMap>();
    support::eventually("the header published", DEADLINE, || {
        let (tenants, config_maps) = (tenants.clone(), config_maps.clone());
        async move {
            let tenant = tenants.get(TENANT).await.ok()?;
            let published = tenant.status?.header?;
            let config_map = config_maps.get("csp").await.ok()?;
            let header = config_map.data?.remove("Content-Security-Policy")?;
            (published.origins == origins && header.contains(origin)).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn an_edit_reconciles_the_entry_edited_not_its_siblings() {
    let rig = TenantRig::builder()
        .debounce(Duration::ZERO)
        .drift(Duration::from_secs(600))
        .run(Controller::Tenant)
        .run(Controller::CspEntry)
        .start()
        .await;
    rig.create_admin_secret().await;
    let header = json!({ "header": { "configMapName": "csp" } });
    rig.create(&rig.qlik_tenant(TENANT, header)).await;
    let entries = rig.api::<CspEntry>();
    for index in 0..ENTRIES {
        entries
            .create(&PostParams::default(), &entry(index))
            .await
            .unwrap();
    }
    header_published(&rig, ENTRIES as u32, "https://e19.example.com").await;
    let metrics = &rig.shared.runtime.metrics;
    until_quiet(metrics, csp_entry::METRICS_NAME, DEADLINE).await;
    let before = reconciles(metrics, csp_entry::METRICS_NAME);

    entries
        .patch(
            "e0",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "origin": "https://edited.example.com" } })),
        )
        .await
        .unwrap();
    // The header holds the edit and the tenant's status says so: the writes that used to
    // wake every entry have happened.
    header_published(&rig, ENTRIES as u32, "https://edited.example.com").await;
    until_quiet(metrics, csp_entry::METRICS_NAME, DEADLINE).await;
    let caused = reconciles(metrics, csp_entry::METRICS_NAME) - before;
    // The edit's own reconcile, the one its status write wakes, and a backstop requeue.
    assert!(
        caused <= 3,
        "one edit of one entry among {ENTRIES} caused {caused} csp-entry reconciles"
    );
}
