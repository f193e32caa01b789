//! A SecretRotation whose credential create the tenant keeps failing retries on its
//! backoff, as a CspEntry does (`tests/entry_retry_backoff.rs`): the emulator fails the
//! API key create three times with alternating answers (`500`, `503`, …), each failure
//! recorded in the rotation's status with its own message, before one succeeds. The
//! request log must show each retry no sooner than the backoff's shortest wait.

mod rotation_rig;
mod support;

use std::sync::Arc;
use std::time::Duration;

use qlik_csp_operator::api::SecretRotation;
use rotation_rig::*;

/// Failed creates before one succeeds.
const FAILURES: u32 = 3;
/// Long enough for the whole backoff ladder of [`FAILURES`] (at most 5 + 10 + 20 s).
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
    for rule in support::retries::alternating_5xx("POST", "/api/v1/api-keys", FAILURES) {
        rig.fault(rule).await;
    }
    rig.create(&api_key_rotation("key", "key-qlik", Duration::ZERO))
        .await;
    let rotations = rig.api::<SecretRotation>();
    support::eventually("the first key to be settled", LADDER_DEADLINE, || async {
        let rotation = rotations.get("key").await.ok()?;
        settled(&rotation, 1).then_some(())
    })
    .await;

    let creates = support::retries::attempts(&rig.requests().await, "api-keys.create");
    support::retries::assert_on_backoff(&creates, &[500, 503, 500, 201]);
}
