//! A `tenantRef` naming a QlikTenant that does not exist, on a real apiserver with the
//! three controllers running: a CspEntry and a SecretRotation say the same thing about it
//! (the same `Ready` reason, the same kstatus conditions, a message naming the tenant), so
//! kstatus-based tools and Argo CD judge both kinds alike; and both recover by themselves
//! once the QlikTenant is created.

mod rotation_rig;
mod support;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, Patch, PatchParams};
use qlik_csp_operator::api::{CspEntry, QlikTenant, SecretRotation, TenantRef};
use qlik_csp_operator::controller::{csp_entry, secret_rotation, tenant};
use rotation_rig::*;
use serde_json::json;
use support::eventually;
use support::reconciles::until_quiet;

/// The QlikTenant the objects name; it is created half way through the test.
const LATE: &str = "late";

/// Controllers that stop when the test ends.
struct Running(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// What kstatus and Argo CD read: `Ready` (status and reason) and whichever of
/// `Reconciling` and `Stalled` is `True` (an absent condition means `False` in kstatus, so
/// one kind removing it and another setting it `False` say the same thing).
fn kstatus(conditions: &[Condition]) -> Vec<(String, String, String)> {
    let mut seen: Vec<_> = conditions
        .iter()
        .filter(|c| match c.type_.as_str() {
            "Ready" => true,
            "Reconciling" | "Stalled" => c.status == "True",
            _ => false,
        })
        .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone()))
        .collect();
    seen.sort();
    seen
}

fn ready(conditions: &[Condition]) -> Option<&Condition> {
    conditions.iter().find(|c| c.type_ == "Ready")
}

#[tokio::test]
async fn a_missing_tenant_is_reported_alike_by_every_kind_and_both_recover_once_it_exists() {
    let rig = Rig::start(|_| {}).await;
    let mut shared = support::controller_shared(&rig.env, Duration::from_millis(100));
    // The tenants' own 10-minute syncInterval, not the suites' 1 s: a retry alone would take
    // minutes, so recovering within the deadline needs each controller to notice the tenant.
    Arc::get_mut(&mut shared)
        .expect("not yet shared")
        .settings
        .drift_interval_override = None;
    let metrics = shared.runtime.metrics.clone();
    let _running = Running(vec![
        tokio::spawn(tenant::run::run(shared.clone())),
        tokio::spawn(csp_entry::run(shared.clone())),
        tokio::spawn(secret_rotation::run(shared)),
    ]);
    let entries: Api<CspEntry> = rig.api();
    let entry = json!({
        "apiVersion": "qlikops.io/v1alpha1", "kind": "CspEntry",
        "metadata": { "name": "cdn" },
        "spec": { "tenantRef": { "name": LATE }, "origin": "https://cdn.example.com",
                  "directives": ["img-src"] },
    });
    entries
        .patch("cdn", &PatchParams::apply("test"), &Patch::Apply(&entry))
        .await
        .unwrap();
    let mut rotation = api_key_rotation("reports", "reports-qlik", MIN_GRACE);
    rotation.spec.tenant_ref = TenantRef {
        name: LATE.to_owned(),
    };
    rig.create(&rotation).await;

    // Both have judged the missing tenant (past the entry's first step, `Pending`).
    let entry = eventually("CspEntry cdn to judge its tenant", DEADLINE, || async {
        let entry = entries.get("cdn").await.ok()?;
        let status = entry.status.as_ref()?;
        let ready = ready(&status.conditions)?;
        let current = ready.observed_generation == entry.metadata.generation;
        (current && ready.status == "False" && ready.reason != "Pending").then_some(entry)
    })
    .await;
    let rotation = rig
        .wait_rotation("reports", "judged its tenant", |r| {
            r.status.as_ref().is_some_and(|s| {
                ready(&s.conditions).is_some_and(|c| {
                    c.status == "False"
                        && c.reason != "Creating"
                        && c.observed_generation == r.metadata.generation
                })
            })
        })
        .await;
    let entry_conditions = &entry.status.as_ref().unwrap().conditions;
    let rotation_conditions = &rotation.status.as_ref().unwrap().conditions;
    assert_eq!(
        kstatus(entry_conditions),
        kstatus(rotation_conditions),
        "a CspEntry and a SecretRotation naming a missing QlikTenant say the same \
         (CspEntry: {entry_conditions:?}; SecretRotation: {rotation_conditions:?})"
    );
    let expected = |type_: &str, status: &str| {
        (
            type_.to_owned(),
            status.to_owned(),
            "TenantNotFound".to_owned(),
        )
    };
    assert_eq!(
        kstatus(entry_conditions),
        [expected("Ready", "False"), expected("Stalled", "True")],
        "a person must create the tenant or fix tenantRef: Stalled, not Reconciling"
    );
    let named = format!("{}/{LATE}", rig.ns());
    for (kind, conditions) in [
        ("CspEntry", entry_conditions),
        ("SecretRotation", rotation_conditions),
    ] {
        let message = &ready(conditions).unwrap().message;
        assert!(
            message.contains(&named),
            "{kind}: the message names the tenant {named}: {message}"
        );
    }

    // A settle point: the rotation's last reconcile (the one its own status write caused)
    // is over, so only something noticing the tenant can bring the next one soon.
    until_quiet(&metrics, secret_rotation::METRICS_NAME, DEADLINE).await;

    // The tenant appears: both recover without being touched.
    let mut late = rig.tenant();
    late.metadata.name = Some(LATE.to_owned());
    rig.api::<QlikTenant>()
        .create(&Default::default(), &late)
        .await
        .unwrap();
    let synced = eventually("CspEntry cdn to sync", DEADLINE, || async {
        let entry = entries.get("cdn").await.ok()?;
        let conditions = &entry.status.as_ref()?.conditions;
        let created = ready(conditions).is_some_and(|c| c.status == "True");
        created.then_some(entry)
    })
    .await;
    assert_eq!(
        kstatus(&synced.status.unwrap().conditions),
        [("Ready".to_owned(), "True".to_owned(), "Created".to_owned())],
        "done: neither Reconciling nor Stalled"
    );
    let settled: SecretRotation = rig.wait_settled("reports", 1).await;
    let conditions = &settled.status.unwrap().conditions;
    assert!(
        kstatus(conditions)
            .iter()
            .all(|(type_, _, _)| type_ == "Ready"),
        "done: neither Reconciling nor Stalled: {conditions:?}"
    );
}
