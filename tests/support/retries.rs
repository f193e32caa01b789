//! Retries as the tenant saw them: the emulator's fault rules that fail a request with
//! changing answers, and the check that each retry waited for the operator's backoff.

use std::time::Duration;

use qlik_csp_operator::controller::backoff;
use serde_json::{Value, json};

/// Fault rules failing `method path` `failures` times, answering `500`, `503`, `500`, …:
/// the emulator uses the first rule left and each has one use, so the answers alternate
/// (and so does the failure message the operator records).
pub fn alternating_5xx(method: &str, path: &str, failures: u32) -> Vec<Value> {
    (0..failures)
        .map(|failure| {
            let status = if failure % 2 == 0 { 500 } else { 503 };
            json!({
                "method": method, "path": path,
                "fault": "status", "status": status, "times": 1,
            })
        })
        .collect()
}

/// Each `operation` request of the emulator's log: when it arrived (ms) and its status.
pub fn attempts(requests: &[Value], operation: &str) -> Vec<(u64, u64)> {
    requests
        .iter()
        .filter(|r| r["operation"] == operation)
        .map(|r| {
            let at = r["atMs"].as_u64().unwrap_or(0);
            (at, r["status"].as_u64().unwrap_or(0))
        })
        .collect()
}

/// Asserts that `attempts` were answered `statuses`, one attempt per retry, and that the
/// n-th retry came no sooner than the shortest wait the backoff allows after n failures
/// (equal jitter waits at least half the full backoff; the tenant's write pacing can only
/// add to it).
pub fn assert_on_backoff(attempts: &[(u64, u64)], statuses: &[u64]) {
    let answered: Vec<u64> = attempts.iter().map(|(_, status)| *status).collect();
    assert_eq!(answered, statuses, "one attempt per retry: {attempts:?}");
    let policy = backoff::DEFAULT;
    for (failure, pair) in (1..).zip(attempts.windows(2)) {
        let waited = Duration::from_millis(pair[1].0.saturating_sub(pair[0].0));
        let shortest = policy.delay(failure, 0.0, None);
        assert!(
            waited >= shortest,
            "retry {failure} came {waited:?} after the failure, before its backoff's \
             shortest wait ({shortest:?}): {attempts:?}"
        );
    }
}
