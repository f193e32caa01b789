//! The burst of `control_plane`: CspEntries created at once on one tenant, with the
//! control plane faulted at set shares of the entries Ready, so that every fault finds
//! entries still to create, in flight and done. Does I/O against the apiserver.

use std::collections::HashMap;
use std::time::Instant;

use k8s_openapi::api::core::v1::ConfigMap;
use qlik_csp_operator::api::CspEntry;

use super::injector::Injector;
use crate::bench::Bench;
use crate::bench::burst::round;
use crate::bench::cluster::{self, Tracker};
use crate::chaos::converged::ready;

/// Entries created at once against the apiserver.
const PARALLEL_CREATES: usize = 16;

/// A control-plane fault.
#[derive(Clone, Copy, Debug)]
enum Fault {
    Cut,
    RestartApiserver,
    RestartEtcd,
}

/// When each fault strikes: the percentage of the entries Ready. The cuts are spread over
/// the burst; the restarts fall in its middle, where most is in flight.
const SCHEDULE: [(usize, Fault); 6] = [
    (20, Fault::Cut),
    (30, Fault::RestartApiserver),
    (40, Fault::Cut),
    (50, Fault::RestartEtcd),
    (60, Fault::Cut),
    (80, Fault::Cut),
];

/// How the burst ended.
pub struct Burst {
    /// From the first create until every entry was Ready and the header held every
    /// origin; `None` when that did not happen within the bound.
    pub converge_seconds: Option<f64>,
}

/// Creates `count` entries and injects [`SCHEDULE`]'s faults as the entries turn Ready,
/// then waits (until `deadline`) for every entry to be Ready and the header to hold every
/// origin. A wait that times out ends the burst early: the scenario's counts then fail.
pub async fn run(
    bench: &Bench,
    entries: &Tracker<CspEntry>,
    config_maps: &Tracker<ConfigMap>,
    injector: &mut Injector<'_>,
    count: usize,
    deadline: Instant,
) -> Result<Burst, String> {
    let start = Instant::now();
    let left = || deadline.saturating_duration_since(Instant::now());
    cluster::create_entries(&bench.client, super::NAMESPACE, count, PARALLEL_CREATES).await?;
    for (percent, fault) in SCHEDULE {
        let target = count * percent / 100;
        let when = format!("{percent}% of the entries Ready");
        let reached = entries
            .wait_for(&when, left(), |e: &HashMap<String, CspEntry>| {
                ready(e) >= target
            })
            .await;
        if let Err(message) = reached {
            println!("control_plane: {message}; no more faults");
            break;
        }
        // The watch may show more than the threshold at once (after a fault, it relists):
        // the report says how many were Ready when the fault struck.
        let seen = entries.read(ready)?;
        let when = format!("{when} ({seen} seen Ready)");
        match fault {
            Fault::Cut => injector.cut(&when).await,
            Fault::RestartApiserver => injector.restart_apiserver(&when).await?,
            Fault::RestartEtcd => injector.restart_etcd(&when).await?,
        }
    }
    let all_ready = entries
        .wait_for("every entry Ready", left(), |e| ready(e) == count)
        .await
        .is_ok();
    let full_header = config_maps
        .wait_for("the header to hold every origin", left(), |c| {
            c.values()
                .filter_map(cluster::header_of)
                .any(|h| cluster::header_has_all(h, count))
        })
        .await
        .is_ok();
    Ok(Burst {
        converge_seconds: (all_ready && full_header).then(|| round(start.elapsed().as_secs_f64())),
    })
}
