//! The request log and per-operation counters the control API reports. No I/O.
//!
//! Every request to a QRS path is recorded with the Xrfkey it carried in the query and in
//! the header and the `X-Qlik-User` it named (none of them is a secret), so a test can
//! prove that every call the operator made carried a fresh, matching key.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::routes::QrsOperation;

/// The log keeps this many of the latest requests.
pub const LOG_CAPACITY: usize = 100_000;

/// One completed request, as `GET /_emulator/requests` lists it (camelCase JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedRequest {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The operation name (e.g. `virtualproxyconfig.update`), `unknown` for paths the site
    /// does not serve.
    pub operation: String,
    /// The status sent; 0 when the connection was dropped.
    pub status: u16,
    pub dropped: bool,
    /// The `xrfkey` query parameter, as sent.
    pub xrfkey_query: Option<String>,
    /// The `X-Qlik-Xrfkey` header, as sent.
    pub xrfkey_header: Option<String>,
    /// The `X-Qlik-User` header, as sent.
    pub user: Option<String>,
    /// Real milliseconds from the site's start to the request's arrival.
    pub at_ms: u64,
}

/// Counters and the log.
#[derive(Debug, Default)]
pub struct Record {
    by_operation: BTreeMap<&'static str, BTreeMap<String, u64>>,
    total: u64,
    log: VecDeque<RecordedRequest>,
}

impl Record {
    /// Counts `entry` (under its operation, when it has one) and appends it to the log.
    pub fn add(&mut self, operation: Option<QrsOperation>, entry: RecordedRequest) {
        self.total += 1;
        if let Some(op) = operation {
            let key = if entry.dropped {
                "dropped".to_owned()
            } else {
                entry.status.to_string()
            };
            *self
                .by_operation
                .entry(op.name())
                .or_default()
                .entry(key)
                .or_default() += 1;
        }
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(entry);
    }

    /// Forgets every request.
    pub fn clear(&mut self) {
        *self = Record::default();
    }

    /// `{"operations": {name: {"requests", "byStatus"}}, "total"}`, every operation listed.
    pub fn counters_json(&self) -> Value {
        let operations: serde_json::Map<String, Value> = QrsOperation::ALL
            .iter()
            .map(|op| {
                let by_status = self
                    .by_operation
                    .get(op.name())
                    .cloned()
                    .unwrap_or_default();
                let requests: u64 = by_status.values().sum();
                (
                    op.name().to_owned(),
                    json!({ "requests": requests, "byStatus": by_status }),
                )
            })
            .collect();
        json!({ "operations": operations, "total": self.total })
    }

    /// `{"requests": [...]}` in completion order.
    pub fn requests_json(&self) -> Value {
        json!({ "requests": self.log })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(status: u16, dropped: bool) -> RecordedRequest {
        RecordedRequest {
            method: "GET".to_owned(),
            path: "/qrs/about".to_owned(),
            operation: "about.get".to_owned(),
            status,
            dropped,
            xrfkey_query: Some("abcdefghijklmnop".to_owned()),
            xrfkey_header: None,
            user: None,
            at_ms: 1,
        }
    }

    #[test]
    fn counters_list_every_operation_and_the_log_keeps_the_keys_seen() {
        let mut record = Record::default();
        record.add(Some(QrsOperation::AboutGet), entry(200, false));
        record.add(Some(QrsOperation::AboutGet), entry(403, false));
        record.add(Some(QrsOperation::AboutGet), entry(0, true));
        record.add(None, entry(404, false));
        let counters = record.counters_json();
        assert_eq!(counters["total"], 4);
        assert_eq!(counters["operations"]["about.get"]["requests"], 3);
        assert_eq!(
            counters["operations"]["about.get"]["byStatus"]["dropped"],
            1
        );
        assert_eq!(counters["operations"]["dataconnection.get"]["requests"], 0);
        let log = record.requests_json();
        assert_eq!(log["requests"][0]["xrfkeyQuery"], "abcdefghijklmnop");
        assert_eq!(log["requests"][0]["xrfkeyHeader"], Value::Null);
        record.clear();
        assert_eq!(record.counters_json()["total"], 0);
    }
}
