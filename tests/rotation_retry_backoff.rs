//! A SecretRotation whose credential create the tenant keeps failing retries on its
//! backoff, as a CspEntry does (`tests/entry_retry_backoff.rs`): the emulator fails the
//! API key create four times with alternating answers (`500`, `503`, …), each failure
//! recorded in the rotation's status with its own message, before one succeeds. The
//! request log must show each retry no sooner than the backoff's shortest wait.

mod rotation_rig;
mod support;

use std::sync::Arc;
use std::time::Duration;

use qlik_csp_operator::api::SecretRotation;
use qlik_csp_operator::controller::backoff;
use rotation_rig::*;
use serde_json::{Value, json};

/// Failed creates before one succeeds.
const FAILURES: u32 = 4;
/// Long enough for the whole backoff ladder of [`FAILURES`] (at most 5 + 10 + 20 + 40 s).
const LADDER_DEADLINE: Duration = Duration::from_secs(150);

#[tokio::test]
async fn a_rotation_failing_with_changing_errors_retries_no_sooner_than_its_backoff() {
    let rig = Rig::start(|_| {}).await;
    // Health checks at the tenant's own interval (minutes), not every second as in the
    // other suites: a health check also ends a failed step's wait.
    let mut shared = support::controller_shared(&rig.env, Duration::from_millis(100));
    let settings = &mut Arc::get_mut(&mut shared)
        .unwrap_or_else(|| panic!("not yet shared"))
        .settings;
    settings.drift_interval_override = None;
    settings.grace_period_override = Some(Duration::ZERO);
    let _running = Running::with_shared(shared, false);
    // The emulator uses the first rule left: one use each, so the answers alternate.
    for failure in 0..FAILURES {
        let status = if failure % 2 == 0 { 500 } else { 503 };
        rig.fault(json!({
            "method": "POST", "path": "/api/v1/api-keys",
            "fault": "status", "status": status, "times": 1,
        }))
        .await;
    }
    rig.create(&api_key_rotation("key", "key-qlik", Duration::ZERO))
        .await;
    let rotations = rig.api::<SecretRotation>();
    support::eventually("the first key to be settled", LADDER_DEADLINE, || async {
        let rotation = rotations.get("key").await.ok()?;
        settled(&rotation, 1).then_some(())
    })
    .await;

    let creates: Vec<(u64, u64)> = rig
        .requests()
        .await
        .iter()
        .filter(|r| r["operation"] == "api-keys.create")
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
        let shortest = policy.delay(failure, 0.0, None);
        assert!(
            waited >= shortest,
            "retry {failure} came {waited:?} after the failure, before its backoff's \
             shortest wait ({shortest:?}): {creates:?}"
        );
    }
}
