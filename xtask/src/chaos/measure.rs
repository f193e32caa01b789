//! The counts the chaos invariants are made of: the emulator's request log (read over its
//! control API, the only I/O here) and pure counting over it and over the tenant's
//! entries.

use std::collections::{BTreeMap, HashMap};

use qlik_csp_operator::api::CspEntry;
use qlik_csp_operator::tenant::wire::CspOrigin;

use super::Check;
use crate::processes::Emulator;

/// Qlik's tier limits, which the emulator enforces (over 5 minutes; the operator must keep
/// to them per minute).
pub const WRITES_PER_MINUTE: u64 = 100;
pub const READS_PER_MINUTE: u64 = 1000;

/// One request the emulator answered (or dropped).
#[derive(Clone, Debug, PartialEq)]
pub struct Logged {
    pub method: String,
    pub operation: String,
    /// 0 when the connection was dropped.
    pub status: u16,
    /// Arrival, in milliseconds since the emulator started.
    pub at_ms: u64,
    /// What a create named: a csp-origin's origin, an API key's description.
    pub subject: Option<String>,
}

impl Logged {
    /// Qlik's tiers go by method: GETs are reads, everything else is a write.
    pub fn is_write(&self) -> bool {
        self.method != "GET"
    }
}

/// The emulator's request log: Qlik endpoints only, in arrival order.
pub async fn request_log(emulator: &Emulator) -> Result<Vec<Logged>, String> {
    let mut log: Vec<Logged> = emulator
        .request_log()
        .await?
        .iter()
        .filter_map(|r| {
            Some(Logged {
                method: r["method"].as_str()?.to_owned(),
                operation: r["operation"].as_str()?.to_owned(),
                status: u16::try_from(r["status"].as_u64()?).ok()?,
                at_ms: r["atMs"].as_u64()?,
                subject: r["subject"].as_str().map(str::to_owned),
            })
        })
        .filter(|r| r.operation != "unknown")
        .collect();
    log.sort_by_key(|r| r.at_ms);
    Ok(log)
}

/// The most arrivals in any window of `window_ms` (sliding: every window that starts at
/// an arrival, which is where the maximum is). `arrivals` must be sorted.
pub fn max_in_window(arrivals: &[u64], window_ms: u64) -> u64 {
    let mut start = 0;
    let mut most = 0;
    for (end, &at) in arrivals.iter().enumerate() {
        while arrivals[start] + window_ms <= at {
            start += 1;
        }
        most = most.max(end + 1 - start);
    }
    most as u64
}

/// The most writes and the most reads that arrived in any 60 s of `log`, every attempt
/// counted (faulted ones too), against Qlik's tier limits.
pub fn tier_checks(log: &[Logged]) -> [Check; 2] {
    let arrivals = |writes: bool| -> Vec<u64> {
        log.iter()
            .filter(|r| r.is_write() == writes)
            .map(|r| r.at_ms)
            .collect()
    };
    let minute = 60_000;
    [
        Check::at_most(
            "max_tenant_requests_per_minute.writes",
            max_in_window(&arrivals(true), minute),
            WRITES_PER_MINUTE,
        ),
        Check::at_most(
            "max_tenant_requests_per_minute.reads",
            max_in_window(&arrivals(false), minute),
            READS_PER_MINUTE,
        ),
    ]
}

/// Answers by status (`"dropped"` for a dropped connection).
pub fn by_status(log: &[Logged]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for request in log {
        let key = match request.status {
            0 => "dropped".to_owned(),
            status => status.to_string(),
        };
        *counts.entry(key).or_default() += 1;
    }
    counts
}

/// Requests for `operation` per subject (origins lowercased, as Qlik compares them):
/// `succeeded` counts only the ones the tenant answered 2xx, else every attempt that
/// reached it, whatever the answer.
pub fn per_subject(log: &[Logged], operation: &str, succeeded: bool) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for request in log.iter().filter(|r| r.operation == operation) {
        if succeeded && !(200..300).contains(&request.status) {
            continue;
        }
        if let Some(subject) = &request.subject {
            *counts.entry(subject.to_ascii_lowercase()).or_default() += 1;
        }
    }
    counts
}

/// Counts beyond one per subject: the writes that happened twice (or more).
pub fn beyond_one(counts: &BTreeMap<String, u64>) -> u64 {
    counts.values().map(|n| n.saturating_sub(1)).sum()
}

/// Remote entries beyond one per origin (origins compared case-insensitively, as Qlik
/// does).
pub fn duplicates(remote: &[CspOrigin]) -> u64 {
    let mut per_origin: HashMap<String, u64> = HashMap::new();
    for entry in remote {
        *per_origin
            .entry(entry.content.origin.to_ascii_lowercase())
            .or_default() += 1;
    }
    per_origin.values().map(|n| n - 1).sum()
}

/// CspEntries whose origin the tenant does not hold, or whose `status.id` names no remote
/// entry of that origin.
pub fn lost(entries: &[CspEntry], remote: &[CspOrigin]) -> u64 {
    let by_id: HashMap<&str, &CspOrigin> = remote.iter().map(|e| (e.id.as_str(), e)).collect();
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    entries
        .iter()
        .filter(|entry| {
            let origin = entry.spec.origin.as_str();
            let held = remote.iter().any(|r| same(&r.content.origin, origin));
            let tracked = entry
                .status
                .as_ref()
                .and_then(|s| s.id.as_deref())
                .and_then(|id| by_id.get(id))
                .is_some_and(|r| same(&r.content.origin, origin));
            !(held && tracked)
        })
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn remote(id: &str, origin: &str) -> CspOrigin {
        serde_json::from_value(json!({ "id": id, "origin": origin, "name": id }))
            .unwrap_or_else(|e| panic!("remote entry: {e}"))
    }

    fn entry(origin: &str, id: Option<&str>) -> CspEntry {
        serde_json::from_value(json!({
            "apiVersion": "qlikops.io/v1alpha1",
            "kind": "CspEntry",
            "metadata": { "name": "e" },
            "spec": { "tenantRef": { "name": "t" }, "origin": origin, "directives": ["img-src"] },
            "status": { "id": id },
        }))
        .unwrap_or_else(|e| panic!("entry: {e}"))
    }

    #[test]
    fn the_window_maximum_counts_arrivals_less_than_a_window_apart() {
        assert_eq!(max_in_window(&[], 60_000), 0);
        assert_eq!(max_in_window(&[0, 59_999, 60_000], 60_000), 2);
        assert_eq!(max_in_window(&[0, 10, 20, 70_000, 70_001], 60_000), 3);
        assert_eq!(max_in_window(&[5, 5, 5], 60_000), 3);
    }

    #[test]
    fn duplicates_count_entries_beyond_one_per_origin_ignoring_case() {
        let list = [
            remote("1", "https://a.io"),
            remote("2", "https://A.io"),
            remote("3", "https://a.io"),
            remote("4", "https://b.io"),
        ];
        assert_eq!(duplicates(&list), 2);
        assert_eq!(duplicates(&list[3..]), 0);
    }

    #[test]
    fn an_entry_is_lost_without_its_origin_or_with_an_id_naming_no_such_entry() {
        let list = [remote("1", "https://a.io"), remote("2", "https://b.io")];
        let entries = [
            entry("https://a.io", Some("1")),
            entry("https://b.io", None),
            entry("https://b.io", Some("1")),
            entry("https://c.io", Some("9")),
        ];
        assert_eq!(lost(&entries[..1], &list), 0);
        assert_eq!(lost(&entries, &list), 3);
    }

    #[test]
    fn writes_are_counted_per_subject_and_beyond_one() {
        let create = |subject: &str, status| Logged {
            method: "POST".into(),
            operation: "csp-origins.create".into(),
            status,
            at_ms: 0,
            subject: Some(subject.into()),
        };
        let log = [
            create("https://a.io", 201),
            create("https://A.io", 400),
            create("https://b.io", 0),
            create("https://b.io", 201),
            create("https://c.io", 201),
            create("https://C.IO", 201),
        ];
        let created = per_subject(&log, "csp-origins.create", true);
        assert_eq!(created.get("https://a.io"), Some(&1));
        assert_eq!(created.get("https://b.io"), Some(&1));
        assert_eq!(beyond_one(&created), 1);
        let attempted = per_subject(&log, "csp-origins.create", false);
        assert_eq!(beyond_one(&attempted), 3);
        assert!(per_subject(&log, "api-keys.create", false).is_empty());
    }

    #[test]
    fn statuses_are_counted_with_dropped_connections_apart() {
        let request = |status| Logged {
            method: "GET".into(),
            operation: "csp-origins.list".into(),
            status,
            at_ms: 0,
            subject: None,
        };
        let counts = by_status(&[request(200), request(0), request(200)]);
        assert_eq!(counts.get("200"), Some(&2));
        assert_eq!(counts.get("dropped"), Some(&1));
    }
}
