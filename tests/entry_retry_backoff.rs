//! A CspEntry the tenant keeps failing retries on its backoff, whatever else happens to it.
//!
//! The tenant and csp-entry controllers run in process on a real kube-apiserver against the
//! tenant emulator, whose creates fail three times with alternating answers (`500`, `503`,
//! …) before one succeeds. Each failure records a different message in the entry's status,
//! and that write comes back through the watch: the chaos matrix (`tenant_faults`) caught
//! those events reconciling the entry at once, so it retried every 0.67 s (the write
//! pacing) with its backoff bypassed. The request log must show each retry no sooner than
//! the backoff's shortest wait for that failure.

mod support;

use std::time::Duration;

use qlik_csp_operator::api::{CspEntry, DirectiveName};
use serde_json::json;
use support::tenant_rig::{Controller, TENANT, TenantRig, csp_entry};

/// Failed creates before one succeeds.
const FAILURES: u32 = 3;
/// Long enough for the whole backoff ladder of [`FAILURES`] (at most 5 + 10 + 20 s),
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
    for rule in support::retries::alternating_5xx("POST", "/api/v1/csp-origins", FAILURES) {
        rig.control.fault(rule).await;
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

    let creates = support::retries::attempts(&rig.control.requests().await, "csp-origins.create");
    support::retries::assert_on_backoff(&creates, &[500, 503, 500, 201]);
}
