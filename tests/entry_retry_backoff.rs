//! A CspEntry the tenant keeps failing retries on its backoff, whatever else happens to it.
//!
//! The tenant and csp-entry controllers run in process on a real kube-apiserver against the
//! tenant emulator, whose creates fail four times with alternating answers (`500`, `503`,
//! …) before one succeeds. Each failure records a different message in the entry's status,
//! and that write comes back through the watch: the chaos matrix (`tenant_faults`) caught
//! those events reconciling the entry at once, so it retried about once a second with its
//! backoff bypassed. The request log must show each retry no sooner than the backoff's
//! shortest wait for that failure.

mod support;

use std::time::Duration;

use qlik_csp_operator::api::{CspEntry, DirectiveName};
use qlik_csp_operator::controller::backoff;
use serde_json::{Value, json};
use support::tenant_rig::{Controller, TENANT, TenantRig, csp_entry};

/// Failed creates before one succeeds.
const FAILURES: u32 = 4;
/// Long enough for the whole backoff ladder of [`FAILURES`] (at most 5 + 10 + 20 + 40 s),
/// and the tenant's and the entry's own steps.
const DEADLINE: Duration = Duration::from_secs(150);

#[tokio::test]
async fn an_entry_failing_with_changing_errors_retries_no_sooner_than_its_backoff() {
    let rig = TenantRig::builder()
        .debounce(Duration::ZERO)
        .run(Controller::Tenant)
        .run(Controller::CspEntry)
        .start()
        .await;
    rig.create_admin_secret().await;
    rig.create(&rig.qlik_tenant(TENANT, json!({ "header": { "configMapName": "csp" } })))
        .await;
    rig.wait_tenant(TENANT, "the tenant to be Ready", |tenant| {
        let ready = support::tenant_rig::condition(tenant, "Ready")?;
        (ready.status == "True").then_some(())
    })
    .await;
    // The emulator uses the first rule left: one use each, so the answers alternate.
    for failure in 0..FAILURES {
        let status = if failure % 2 == 0 { 500 } else { 503 };
        rig.control
            .fault(json!({
                "method": "POST", "path": "/api/v1/csp-origins",
                "fault": "status", "status": status, "times": 1,
            }))
            .await;
    }

    rig.create(&csp_entry(
        "cdn",
        "https://cdn.example.com",
        &[DirectiveName::ImgSrc],
        false,
    ))
    .await;
    let entries = rig.api::<CspEntry>();
    support::eventually("the entry to be Ready", DEADLINE, || async {
        let entry = entries.get("cdn").await.ok()?;
        let ready = entry
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready")?;
        (ready.status == "True").then_some(())
    })
    .await;

    let creates: Vec<(u64, u64)> = rig
        .control
        .requests()
        .await
        .iter()
        .filter(|r| r["operation"] == "csp-origins.create")
        .map(|r: &Value| {
            let at = r["atMs"].as_u64().unwrap_or(0);
            (at, r["status"].as_u64().unwrap_or(0))
        })
        .collect();
    let statuses: Vec<u64> = creates.iter().map(|(_, status)| *status).collect();
    assert_eq!(
        statuses,
        [500, 503, 500, 503, 201],
        "one create per retry: {creates:?}"
    );
    let policy = backoff::DEFAULT;
    for (failure, pair) in (1..).zip(creates.windows(2)) {
        let waited = Duration::from_millis(pair[1].0 - pair[0].0);
        // Equal jitter waits at least half the full backoff; the tenant's write pacing
        // can only add to it.
        let shortest = policy.delay(failure, 0.0, None);
        assert!(
            waited >= shortest,
            "retry {failure} came {waited:?} after the failure, before its backoff's \
             shortest wait ({shortest:?}): {creates:?}"
        );
    }
}
