//! Where an edit's time goes, as seen from outside the operator: the bench's own clock for
//! what it does and what its watches see, and the emulator's request log for when the
//! operator's calls reached the tenant. Pure, apart from [`request_log`] and
//! [`EmulatorClock::calibrate`], which call the emulator.
//!
//! ```text
//! apply ──► PUT reaches the tenant ──► Ready status seen ──► header fetched ──► ConfigMap seen
//!   apply_to_put          put_to_status          status_to_header      header_to_configmap
//! ```
//!
//! The four spans add up to the edit's latency. `status_to_header` is negative when the
//! tenant controller fetched the header before the bench's watch delivered the status.

use std::time::Instant;

use serde_json::{Map, Value, json};

use super::summary::number;
use crate::processes::{ADMIN_KEY, Emulator};

/// Milliseconds on the bench's clock (since the scenario's reference instant).
pub type Ms = f64;

/// What the bench saw of one edit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Edit {
    /// The bench sent the patch.
    pub applied: Ms,
    /// The apiserver answered the patch.
    pub patched: Ms,
    /// The bench's watch saw the entry Ready at the edited generation.
    pub status_seen: Ms,
    /// The bench's watch saw the new origin in the ConfigMap.
    pub published: Ms,
}

/// One request in the emulator's log, its arrival on the bench's clock.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub operation: String,
    pub at: Ms,
}

const UPDATE: &str = "csp-origins.update";
const HEADER: &str = "csp-origins.generate-header";

/// The spans of every edit whose PUT and header fetch are both in its window, as
/// `{span: {"p50", "p99"}}` plus `edits` (how many were placed) and the tenant calls per
/// edit by operation.
pub fn breakdown(edits: &[Edit], calls: &[Call]) -> Value {
    let mut spans: [(&str, Vec<f64>); 5] = [
        ("apiserver_patch", Vec::new()),
        ("apply_to_put", Vec::new()),
        ("put_to_status", Vec::new()),
        ("status_to_header", Vec::new()),
        ("header_to_configmap", Vec::new()),
    ];
    let mut placed = 0;
    for edit in edits {
        let within = |c: &&Call| c.at >= edit.applied && c.at <= edit.published;
        let put = calls.iter().filter(within).find(|c| c.operation == UPDATE);
        let header = calls.iter().filter(within).rfind(|c| c.operation == HEADER);
        let (Some(put), Some(header)) = (put, header) else {
            continue;
        };
        placed += 1;
        let values = [
            edit.patched - edit.applied,
            put.at - edit.applied,
            edit.status_seen - put.at,
            header.at - edit.status_seen,
            edit.published - header.at,
        ];
        for ((_, samples), value) in spans.iter_mut().zip(values) {
            samples.push(value);
        }
    }
    let mut out = Map::new();
    for (name, samples) in &spans {
        out.insert(
            (*name).to_owned(),
            json!({ "p50": number(percentile(samples, 50)), "p99": number(percentile(samples, 99)) }),
        );
    }
    json!({
        "spans_ms": out,
        "edits_placed": placed,
        "tenant_calls_per_edit": calls_per_edit(edits, calls),
    })
}

/// Tenant calls made while edits were in flight, by operation, divided by the number of
/// edits: 1 update and 1 header fetch each is the design's minimum.
fn calls_per_edit(edits: &[Edit], calls: &[Call]) -> Value {
    let mut counts: std::collections::BTreeMap<&str, f64> = std::collections::BTreeMap::new();
    for call in calls {
        if edits
            .iter()
            .any(|e| call.at >= e.applied && call.at <= e.published)
        {
            *counts.entry(call.operation.as_str()).or_default() += 1.0;
        }
    }
    let n = edits.len().max(1) as f64;
    Value::Object(
        counts
            .into_iter()
            .map(|(op, count)| (op.to_owned(), number(count / n)))
            .collect(),
    )
}

/// The `pct`th percentile (nearest rank) of `samples`; 0 when there are none.
pub fn percentile(samples: &[f64], pct: usize) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (pct * sorted.len()).div_ceil(100).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Maps the emulator's `atMs` (whole milliseconds since it started) onto the bench's clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EmulatorClock {
    /// Bench time of the emulator's `atMs` 0.
    offset: Ms,
    /// How far off a mapped time may be: half the calibration call's round trip, plus the
    /// log's millisecond truncation.
    pub uncertainty: Ms,
}

impl EmulatorClock {
    /// A few logged calls (a GET of a made-up csp-origin id: a 404 changes nothing), each
    /// bracketed by the bench's clock; the one with the shortest round trip wins.
    pub async fn calibrate(emulator: &Emulator, reference: Instant) -> Result<Self, String> {
        let mut brackets = Vec::new();
        for probe in 0..5 {
            let path = format!("/api/v1/csp-origins/bench-clock-probe-{probe}");
            let sent = since(reference);
            let _ = emulator
                .http()
                .get(format!("{}{path}", emulator.url))
                .bearer_auth(ADMIN_KEY)
                .send()
                .await
                .map_err(|e| format!("clock probe: {e}"))?;
            brackets.push((path, sent, since(reference)));
        }
        let log = emulator.requests().await?;
        brackets
            .iter()
            .filter_map(|(path, sent, answered)| {
                let at_ms = log.iter().find(|(_, p, _)| p == path)?.2;
                Some(Self::from_bracket(*sent, *answered, at_ms))
            })
            .min_by(|a, b| a.uncertainty.total_cmp(&b.uncertainty))
            .ok_or_else(|| "the clock probes are not in the emulator's request log".to_owned())
    }

    /// The clock from one call sent at `sent`, answered at `answered` (bench clock) and
    /// logged as arriving at `at_ms` (emulator clock).
    fn from_bracket(sent: Ms, answered: Ms, at_ms: f64) -> Self {
        // The arrival is in [at_ms, at_ms + 1): take the middle of that millisecond.
        EmulatorClock {
            offset: (sent + answered) / 2.0 - (at_ms + 0.5),
            uncertainty: (answered - sent) / 2.0 + 0.5,
        }
    }

    /// `calls` from the emulator's log, on the bench's clock.
    pub fn calls(&self, log: &[(String, String, f64)]) -> Vec<Call> {
        log.iter()
            .map(|(operation, _, at_ms)| Call {
                operation: operation.clone(),
                at: at_ms + 0.5 + self.offset,
            })
            .collect()
    }
}

/// Milliseconds since `reference`.
pub fn since(reference: Instant) -> Ms {
    Instant::now()
        .saturating_duration_since(reference)
        .as_secs_f64()
        * 1000.0
}

/// A bench time of an [`Instant`].
pub fn at(reference: Instant, instant: Instant) -> Ms {
    instant.saturating_duration_since(reference).as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(operation: &str, at: Ms) -> Call {
        Call {
            operation: operation.to_owned(),
            at,
        }
    }

    #[test]
    fn an_edit_splits_into_spans_that_add_up_to_its_latency() {
        let edit = Edit {
            applied: 1000.0,
            patched: 1003.0,
            status_seen: 1020.0,
            published: 1040.0,
        };
        let calls = [
            call(HEADER, 990.0), // the previous edit's
            call(UPDATE, 1008.0),
            call("csp-origins.list", 1012.0),
            call(HEADER, 1025.0),
            call(HEADER, 1030.0),
            call(UPDATE, 1100.0), // the next edit's
        ];
        let result = breakdown(&[edit], &calls);
        let spans = &result["spans_ms"];
        assert_eq!(spans["apiserver_patch"]["p50"], 3);
        assert_eq!(spans["apply_to_put"]["p50"], 8);
        assert_eq!(spans["put_to_status"]["p50"], 12);
        // The last header fetch before the ConfigMap showed the edit is the one published.
        assert_eq!(spans["status_to_header"]["p50"], 10);
        assert_eq!(spans["header_to_configmap"]["p50"], 10);
        assert_eq!(result["edits_placed"], 1);
        assert_eq!(
            result["tenant_calls_per_edit"],
            json!({ "csp-origins.generate-header": 2, "csp-origins.list": 1, "csp-origins.update": 1 })
        );
    }

    #[test]
    fn an_edit_without_a_put_in_its_window_is_not_placed() {
        let edit = Edit {
            applied: 0.0,
            patched: 1.0,
            status_seen: 2.0,
            published: 3.0,
        };
        let result = breakdown(&[edit], &[call(HEADER, 2.5)]);
        assert_eq!(result["edits_placed"], 0);
        assert_eq!(result["spans_ms"]["apply_to_put"]["p50"], 0);
    }

    #[test]
    fn the_emulator_clock_is_placed_in_the_middle_of_the_probe() {
        // Sent at 100 ms, answered at 104 ms, logged at 50 ms since the emulator started.
        let clock = EmulatorClock::from_bracket(100.0, 104.0, 50.0);
        assert_eq!(clock.uncertainty, 2.5);
        let calls = clock.calls(&[
            ("x".into(), "/p".into(), 50.0),
            ("y".into(), "/q".into(), 60.0),
        ]);
        assert_eq!(calls[0].at, 102.0);
        assert_eq!(calls[1].at, 112.0);
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&samples, 50), 50.0);
        assert_eq!(percentile(&samples, 99), 99.0);
        assert_eq!(percentile(&[], 50), 0.0);
    }
}
