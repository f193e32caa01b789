//! The invariants every burst scenario checks at its end: every CspEntry Ready and in the
//! header, no duplicate or lost remote entry, and the tenant's tier limits kept. Reads the
//! trackers, the tenant's entries (the emulator) and its request log.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use qlik_csp_operator::api::CspEntry;
use qlik_csp_operator::tenant::wire::CspOrigin;

use super::Check;
use super::measure;
use crate::bench::cluster::{self, Tracker};
use crate::processes::Emulator;

/// How many entries are Ready for their generation.
pub fn ready(entries: &HashMap<String, CspEntry>) -> usize {
    entries.values().filter(|e| cluster::entry_ready(e)).count()
}

/// Waits until entries `0..count` are all Ready and the header holds every origin; false
/// when `deadline` passes first (a failed invariant, measured like the others).
pub async fn wait(
    entries: &Tracker<CspEntry>,
    config_maps: &Tracker<ConfigMap>,
    count: usize,
    deadline: Duration,
) -> bool {
    let until = std::time::Instant::now() + deadline;
    let left = || until.saturating_duration_since(std::time::Instant::now());
    let all_ready = entries
        .wait_for("every entry Ready", left(), |e| ready(e) == count)
        .await
        .is_ok();
    all_ready
        && config_maps
            .wait_for("the header to hold every origin", left(), |c| {
                c.values()
                    .filter_map(cluster::header_of)
                    .any(|h| cluster::header_has_all(h, count))
            })
            .await
            .is_ok()
}

/// The end state of a burst of `count` entries, as the cluster and the tenant hold it.
pub struct Converged {
    pub count: usize,
    pub entries: Vec<CspEntry>,
    pub header_origins: usize,
    pub remote: Vec<CspOrigin>,
}

impl Converged {
    /// Reads it. Call after [`measure::request_log`]: listing the tenant's entries adds
    /// requests of our own to the log.
    pub async fn observe(
        entries: &Tracker<CspEntry>,
        config_maps: &Tracker<ConfigMap>,
        emulator: &Emulator,
        namespace: &str,
        count: usize,
    ) -> Result<Converged, String> {
        let remote = emulator
            .admin_client(namespace)?
            .list_csp_origins()
            .await
            .map_err(|e| format!("failed to list the tenant's entries: {e}"))?;
        let header_origins = config_maps.read(|c| {
            c.values()
                .filter_map(cluster::header_of)
                .map(|h| cluster::header_origin_count(h, count))
                .max()
                .unwrap_or(0)
        })?;
        Ok(Converged {
            count,
            entries: entries.read(|e| e.values().cloned().collect())?,
            header_origins,
            remote,
        })
    }

    /// `converged.entries_ready`, `converged.header_origins`, `duplicates` and `lost`.
    pub fn checks(&self) -> Vec<Check> {
        let ready = self
            .entries
            .iter()
            .filter(|e| cluster::entry_ready(e))
            .count();
        let count = self.count as u64;
        vec![
            Check::exactly("converged.entries_ready", ready as u64, count),
            Check::exactly(
                "converged.header_origins",
                self.header_origins as u64,
                count,
            ),
            Check::exactly("duplicates", measure::duplicates(&self.remote), 0),
            Check::exactly("lost", measure::lost(&self.entries, &self.remote), 0),
        ]
    }

    /// The entries that are not Ready (see [`not_ready`]).
    pub fn not_ready(&self) -> Vec<String> {
        not_ready(&self.entries)
    }
}

/// The entries that are not Ready, with their Ready reason (at most ten: enough to start
/// from in the operator's log).
pub fn not_ready(entries: &[CspEntry]) -> Vec<String> {
    entries
        .iter()
        .filter(|e| !cluster::entry_ready(e))
        .take(10)
        .map(|e| {
            let reason = e
                .status
                .as_ref()
                .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
                .map_or("no Ready condition", |c| c.reason.as_str());
            format!(
                "{}: {reason}",
                e.metadata.name.as_deref().unwrap_or_default()
            )
        })
        .collect()
}
