//! Request counters per operation and the request log that `/_emulator/counters` and
//! `/_emulator/requests` report. No I/O.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;
use serde_json::{Value, json};

use super::routes::Operation;

/// The log keeps this many of the latest requests (a long benchmark must not grow the
/// emulator without bound).
pub const LOG_CAPACITY: usize = 100_000;

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Status(u16),
    /// The connection was closed without a response (a `drop` fault).
    Dropped,
}

/// One completed request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    pub method: String,
    pub path: String,
    /// The operation name, or `unknown` for paths the emulator does not serve.
    pub operation: &'static str,
    /// The status sent; 0 when the connection was dropped.
    pub status: u16,
    pub dropped: bool,
    /// When the request arrived: real milliseconds since the emulator started.
    pub at_ms: u64,
    /// What a create named (a csp-origin's `origin`, an API key's `description`), so that
    /// a test can count writes per entry or per credential revision; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// Counters and the log.
#[derive(Debug, Default)]
pub struct Record {
    /// operation name → status key (`"200"`, `"dropped"`) → count.
    by_operation: BTreeMap<&'static str, BTreeMap<String, u64>>,
    total: u64,
    log: VecDeque<LogEntry>,
}

impl Record {
    /// Counts a request and appends it to the log.
    pub fn add(
        &mut self,
        operation: Option<Operation>,
        method: &str,
        path: &str,
        outcome: Outcome,
        at_ms: u64,
        subject: Option<String>,
    ) {
        let name = operation.map_or("unknown", Operation::name);
        let (status, dropped, key) = match outcome {
            Outcome::Status(s) => (s, false, s.to_string()),
            Outcome::Dropped => (0, true, "dropped".to_owned()),
        };
        self.total += 1;
        if operation.is_some() {
            *self
                .by_operation
                .entry(name)
                .or_default()
                .entry(key)
                .or_default() += 1;
        }
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(LogEntry {
            method: method.to_owned(),
            path: path.to_owned(),
            operation: name,
            status,
            dropped,
            at_ms,
            subject,
        });
    }

    /// `{"operations": {name: {"requests", "byStatus"}}, "total"}`, listing every
    /// operation (zero when never called) so that readers need no defaults.
    pub fn counters_json(&self) -> Value {
        let operations: serde_json::Map<String, Value> = Operation::ALL
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

    #[test]
    fn counters_list_every_operation_and_count_by_status() {
        let mut record = Record::default();
        record.add(
            Some(Operation::OAuthToken),
            "POST",
            "/oauth/token",
            Outcome::Status(200),
            5,
            None,
        );
        record.add(
            Some(Operation::OAuthToken),
            "POST",
            "/oauth/token",
            Outcome::Status(429),
            6,
            None,
        );
        record.add(
            Some(Operation::OAuthToken),
            "POST",
            "/oauth/token",
            Outcome::Dropped,
            7,
            None,
        );
        record.add(None, "GET", "/nope", Outcome::Status(404), 8, None);
        record.add(
            Some(Operation::CspOriginsCreate),
            "POST",
            "/api/v1/csp-origins",
            Outcome::Status(201),
            9,
            Some("https://a.io".to_owned()),
        );
        let counters = record.counters_json();
        assert_eq!(counters["total"], 5);
        assert_eq!(counters["operations"]["oauth.token"]["requests"], 3);
        assert_eq!(counters["operations"]["oauth.token"]["byStatus"]["429"], 1);
        assert_eq!(
            counters["operations"]["oauth.token"]["byStatus"]["dropped"],
            1
        );
        assert_eq!(counters["operations"]["users.me"]["requests"], 0);
        let log = record.requests_json();
        assert_eq!(log["requests"][2]["dropped"], true);
        assert_eq!(log["requests"][2]["status"], 0);
        assert_eq!(log["requests"][3]["operation"], "unknown");
        assert_eq!(log["requests"][0]["atMs"], 5);
        assert!(log["requests"][0].get("subject").is_none());
        assert_eq!(log["requests"][4]["subject"], "https://a.io");
    }
}
