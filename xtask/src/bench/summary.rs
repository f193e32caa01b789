//! Figures over repeated runs: each numeric figure of the runs' reports becomes
//! `{"median", "min", "max", "runs": [one value per run]}`, in the same place of the tree.
//! Pure; no I/O.
//!
//! A figure is any number in a scenario's report, nested objects included
//! (`breakdown_ms.apply_to_put.p50`). Arrays and strings (arrival times, machine facts) are
//! not figures: they stay in the raw runs only.

use serde_json::{Map, Value};

/// The key that marks a summarized figure.
pub const MEDIAN: &str = "median";

/// Summarizes `runs` (one report object per run, each `{scenario: {figure: value}}`)
/// into one object of the same shape whose numeric leaves are summaries.
pub fn summarize(runs: &[Value]) -> Value {
    let objects: Vec<Option<&Map<String, Value>>> = runs.iter().map(Value::as_object).collect();
    summarize_objects(&objects).map_or(Value::Object(Map::new()), Value::Object)
}

/// Summarizes the objects found at one place of each run's tree (`None` where a run has
/// none); `None` when nothing below is a figure.
fn summarize_objects(objects: &[Option<&Map<String, Value>>]) -> Option<Map<String, Value>> {
    // Keys in the order the first run that has them lists them, then the others'.
    let mut keys: Vec<&String> = Vec::new();
    for object in objects.iter().flatten() {
        for key in object.keys() {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    let mut summary = Map::new();
    for key in keys {
        let values: Vec<Option<&Value>> = objects
            .iter()
            .map(|object| object.and_then(|o| o.get(key)))
            .collect();
        let present = || values.iter().flatten();
        if present().all(|v| v.is_number()) {
            let numbers: Vec<Option<f64>> =
                values.iter().map(|v| v.and_then(Value::as_f64)).collect();
            summary.insert(key.clone(), summarize_numbers(&numbers));
        } else if present().all(|v| v.is_object()) {
            let nested: Vec<Option<&Map<String, Value>>> = values
                .iter()
                .map(|v| v.and_then(Value::as_object))
                .collect();
            if let Some(object) = summarize_objects(&nested) {
                summary.insert(key.clone(), Value::Object(object));
            }
        }
    }
    (!summary.is_empty()).then_some(summary)
}

/// `{"median", "min", "max", "runs"}` of one figure; `runs` keeps a `null` for a run that
/// did not report it.
fn summarize_numbers(values: &[Option<f64>]) -> Value {
    let mut sorted: Vec<f64> = values.iter().flatten().copied().collect();
    sorted.sort_by(f64::total_cmp);
    let mut summary = Map::new();
    summary.insert(MEDIAN.into(), number(median(&sorted)));
    summary.insert("min".into(), number(sorted.first().copied().unwrap_or(0.0)));
    summary.insert("max".into(), number(sorted.last().copied().unwrap_or(0.0)));
    let runs = values
        .iter()
        .map(|v| v.map_or(Value::Null, number))
        .collect();
    summary.insert("runs".into(), Value::Array(runs));
    Value::Object(summary)
}

/// The median of sorted values: the middle one, or the mean of the two middle ones.
fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// A JSON number rounded to two decimals, written as an integer when it is one (so that
/// counts read `253`, not `253.0`).
pub fn number(value: f64) -> Value {
    let rounded = (value * 100.0).round() / 100.0;
    if rounded.fract() == 0.0 && rounded.abs() < 9e15 {
        Value::from(rounded as i64)
    } else {
        Value::from(rounded)
    }
}

/// The summary at `path` (`scenario.figure.nested`), if that is a summarized figure.
pub fn figure<'a>(report: &'a Value, path: &str) -> Option<&'a Map<String, Value>> {
    let mut node = report;
    for part in path.split('.') {
        node = node.get(part)?;
    }
    node.as_object().filter(|o| o.contains_key(MEDIAN))
}

/// Every summarized figure below `node`, with its dotted path relative to `node`, in
/// report order.
pub fn figures(node: &Value) -> Vec<(String, &Map<String, Value>)> {
    let mut found = Vec::new();
    collect(node, String::new(), &mut found);
    found
}

fn collect<'a>(node: &'a Value, path: String, found: &mut Vec<(String, &'a Map<String, Value>)>) {
    let Some(object) = node.as_object() else {
        return;
    };
    if object.contains_key(MEDIAN) {
        found.push((path, object));
        return;
    }
    for (key, child) in object {
        let child_path = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        collect(child, child_path, found);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numeric_figures_become_median_min_max_and_the_runs() {
        let runs = [
            json!({ "scale": { "peak_rss_mib": 40.0, "entries": 500 } }),
            json!({ "scale": { "peak_rss_mib": 44.5, "entries": 500 } }),
            json!({ "scale": { "peak_rss_mib": 41.0, "entries": 500 } }),
        ];
        let summary = summarize(&runs);
        assert_eq!(
            summary["scale"]["peak_rss_mib"],
            json!({ "median": 41, "min": 40, "max": 44.5, "runs": [40, 44.5, 41] })
        );
        assert_eq!(summary["scale"]["entries"]["median"], 500);
    }

    #[test]
    fn an_even_number_of_runs_takes_the_mean_of_the_middle_two() {
        let runs = [json!({ "s": { "f": 10 } }), json!({ "s": { "f": 13 } })];
        assert_eq!(summarize(&runs)["s"]["f"]["median"], 11.5);
    }

    #[test]
    fn nested_figures_are_summarized_in_place_and_arrays_are_left_to_the_runs() {
        let runs = [
            json!({ "e": { "breakdown_ms": { "put": { "p50": 2.0 } }, "at": [1, 2], "n": "x" } }),
            json!({ "e": { "breakdown_ms": { "put": { "p50": 4.0 } }, "at": [3], "n": "y" } }),
        ];
        let summary = summarize(&runs);
        assert_eq!(summary["e"]["breakdown_ms"]["put"]["p50"]["median"], 3);
        assert!(summary["e"].get("at").is_none());
        assert!(summary["e"].get("n").is_none());
        let paths: Vec<String> = figures(&summary["e"]).into_iter().map(|(p, _)| p).collect();
        assert_eq!(paths, ["breakdown_ms.put.p50"]);
        assert!(figure(&summary, "e.breakdown_ms.put.p50").is_some());
        assert!(figure(&summary, "e.breakdown_ms.put").is_none());
    }

    #[test]
    fn a_figure_missing_from_a_run_is_null_there_and_left_out_of_the_median() {
        let runs = [
            json!({ "s": { "f": 1 } }),
            json!({ "s": {} }),
            json!({ "s": { "f": 3 } }),
        ];
        let summary = summarize(&runs);
        assert_eq!(
            summary["s"]["f"],
            json!({ "median": 2, "min": 1, "max": 3, "runs": [1, null, 3] })
        );
    }
}
