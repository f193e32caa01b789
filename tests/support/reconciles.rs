//! The in-process controllers' reconcile counts, from their metrics (no I/O): how many
//! reconciles a change caused, and when a controller has gone quiet.

use std::time::{Duration, Instant};

use qlik_csp_operator::telemetry::metrics::Metrics;

/// How long a controller must finish no reconcile to count as quiet: far longer than a
/// watch event takes to arrive and its reconcile to run on a test apiserver.
pub const QUIET: Duration = Duration::from_secs(2);

/// How many reconciles `controller` has finished.
pub fn reconciles(metrics: &Metrics, controller: &str) -> u64 {
    let prefix = format!("qlikops_reconcile_total{{controller=\"{controller}\",");
    metrics
        .encode(jiff::Timestamp::now())
        .lines()
        .filter(|line| line.starts_with(&prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Waits until `controller` has finished no reconcile for [`QUIET`]; fails the test if it
/// keeps reconciling for `deadline`. Woken by every finished reconcile (any controller's),
/// it restarts the quiet period only when `controller`'s own count moved.
pub async fn until_quiet(metrics: &Metrics, controller: &str, deadline: Duration) {
    let give_up = Instant::now() + deadline;
    let mut finished = metrics.reconcile_finished();
    let mut seen = reconciles(metrics, controller);
    let mut quiet_at = Instant::now() + QUIET;
    loop {
        assert!(
            Instant::now() < give_up,
            "the {controller} controller kept reconciling for {deadline:?}"
        );
        match tokio::time::timeout_at(quiet_at.into(), finished.changed()).await {
            // No reconcile at all for the quiet period, or the controllers are gone.
            Err(_) | Ok(Err(_)) => return,
            Ok(Ok(())) => {
                let now = reconciles(metrics, controller);
                if now != seen {
                    (seen, quiet_at) = (now, Instant::now() + QUIET);
                }
            }
        }
    }
}

/// Waits until `controller` has finished `more` reconciles beyond the `since` it had
/// finished; fails the test after `deadline`. Woken by every finished reconcile.
pub async fn until_reconciled(
    metrics: &Metrics,
    controller: &str,
    since: u64,
    more: u64,
    deadline: Duration,
) {
    let give_up = Instant::now() + deadline;
    let mut finished = metrics.reconcile_finished();
    while reconciles(metrics, controller) < since + more {
        let waited = tokio::time::timeout_at(give_up.into(), finished.changed()).await;
        assert!(
            matches!(waited, Ok(Ok(()))),
            "the {controller} controller did not finish {more} reconciles in {deadline:?}"
        );
    }
}
