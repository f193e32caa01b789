//! A QlikTenant whose header fetch the tenant keeps failing retries on its backoff, as a
//! CspEntry and a SecretRotation do (`tests/entry_retry_backoff.rs`): the emulator fails
//! `generate-header` three times in a row with alternating final answers (each call is
//! retried inside the client, so a call's four attempts are all `500` or all `503`), each
//! failure recorded in the tenant's status with its own message, before a fourth call
//! succeeds. Before the fix the calls came back to back, 267 ms apart.

mod support;

use std::time::Duration;

use qlik_csp_operator::tenant::RetryPolicy;
use serde_json::json;
use support::tenant_rig::{Controller, TENANT, TenantRig};

/// Failed calls before one succeeds.
const FAILED_CALLS: u32 = 3;
/// Long enough for the backoff ladder of [`FAILED_CALLS`] (at most 5 + 10 + 20 s).
const LADDER_DEADLINE: Duration = Duration::from_secs(150);

#[tokio::test]
async fn a_tenant_whose_header_fetch_fails_with_changing_errors_retries_on_its_backoff() {
    // Drift checks at the operator's default interval (minutes): in the other suites they
    // run every second, and a drift check also ends a failure's wait.
    let rig = TenantRig::builder()
        .debounce(Duration::ZERO)
        .shared(|shared| shared.settings.drift_interval_override = None)
        .run(Controller::Tenant)
        .start()
        .await;
    let attempts_per_call = RetryPolicy::default().max_attempts;
    let path = "/api/v1/csp-origins/actions/generate-header";
    for call in 0..FAILED_CALLS {
        let status = if call % 2 == 0 { 500 } else { 503 };
        for _ in 0..attempts_per_call {
            rig.control
                .fault(json!({
                    "method": "GET", "path": path, "fault": "status", "status": status,
                    "times": 1,
                }))
                .await;
        }
    }
    rig.create_admin_secret().await;
    rig.create(&rig.qlik_tenant(TENANT, json!({ "header": { "configMapName": "csp" } })))
        .await;
    support::eventually("the header to be published", LADDER_DEADLINE, || async {
        let tenant = rig
            .api::<qlik_csp_operator::api::QlikTenant>()
            .get(TENANT)
            .await
            .ok()?;
        let published = support::tenant_rig::condition(&tenant, "HeaderPublished")?;
        (published.status == "True").then_some(())
    })
    .await;

    // The first attempt of each call.
    let fetches =
        support::retries::attempts(&rig.control.requests().await, "csp-origins.generate-header");
    let calls: Vec<(u64, u64)> = fetches
        .iter()
        .step_by(attempts_per_call as usize)
        .copied()
        .collect();
    support::retries::assert_on_backoff(&calls, &[500, 503, 500, 200]);
}
