//! The emulator's fault rules as the chaos scenarios use them: install a set of rules,
//! swap it for another (an outage and back), and count how often each rule fired. Does
//! network I/O (the emulator's control API, `/_emulator/faults`).
//!
//! In each phase (`before` the request is processed, `after` it took effect) the emulator
//! applies the FIRST matching rule, rolling each rule's `fraction` in turn. So a mix of
//! exclusive faults is written as a chain of conditional fractions: the second rule's
//! fraction is its overall share divided by what the first left over, and so on
//! ([`chain`]).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::processes::Emulator;

/// Every rule is given this many uses: more than any run makes, so it never runs out, and
/// what is left says how often it fired (the emulator lists `remaining` per rule).
const TIMES: u64 = 1_000_000_000;

/// Every csp-origins request: list, get, create, update, delete and generate-header.
const CSP_ORIGINS: &str = "/api/v1/csp-origins*";
/// Creates only (`POST` on the collection).
const CREATES: &str = "/api/v1/csp-origins";
/// Every API key request.
const API_KEYS: &str = "/api/v1/api-keys*";
/// API key creates only.
const API_KEY_CREATES: &str = "/api/v1/api-keys";

/// One fault rule and the name the report counts it under.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub label: &'static str,
    spec: Value,
}

/// Issue 18's tenant faults on csp-origins requests, as overall shares of the requests:
/// 30% answered 429 with `Retry-After: 1`, 10% 500 and 10% 503, 5% dropped before they
/// take effect, 10% delayed by 300 ms; and 5% of the creates that took effect lose their
/// answer (the connection drops after the entry was made: a retry must not duplicate it).
pub fn tenant_mix() -> Vec<Rule> {
    mix_on(CSP_ORIGINS, CREATES)
}

/// The same mix on the API key requests (list, get, create, delete): what the rotations of
/// `rotation_faults` go through. The consumer's calls with the rotated key are not faulted.
pub fn api_keys_mix() -> Vec<Rule> {
    mix_on(API_KEYS, API_KEY_CREATES)
}

/// The mix on every request under `path`, the lost answers on `creates`.
fn mix_on(path: &str, creates: &str) -> Vec<Rule> {
    let before = chain(&[
        (
            "429",
            json!({ "fault": "status", "status": 429, "retryAfter": 1 }),
            0.30,
        ),
        ("500", json!({ "fault": "status", "status": 500 }), 0.10),
        ("503", json!({ "fault": "status", "status": 503 }), 0.10),
        ("drop_before", json!({ "fault": "drop" }), 0.05),
        (
            "latency_300ms",
            json!({ "fault": "latency", "latencyMs": 300 }),
            0.10,
        ),
    ]);
    let mut rules: Vec<Rule> = before
        .into_iter()
        .map(|(label, mut spec, fraction)| {
            spec["path"] = json!(path);
            spec["fraction"] = json!(fraction);
            spec["when"] = json!("before");
            Rule { label, spec }
        })
        .collect();
    rules.push(Rule {
        label: "drop_after_create",
        spec: json!({
            "method": "POST", "path": creates, "fault": "drop", "when": "after", "fraction": 0.05,
        }),
    });
    rules
}

/// The tenant down: every Qlik request, not only csp-origins (the connection check too),
/// answered 503.
pub fn outage() -> Vec<Rule> {
    vec![Rule {
        label: "outage_503",
        spec: json!({ "path": "*", "fault": "status", "status": 503, "when": "before" }),
    }]
}

/// Turns overall shares into the conditional fractions of a first-match chain: each rule
/// sees only what the rules before it let through.
fn chain(shares: &[(&'static str, Value, f64)]) -> Vec<(&'static str, Value, f64)> {
    let mut left = 1.0;
    shares
        .iter()
        .map(|(label, spec, share)| {
            let fraction = (share / left).min(1.0);
            left -= share;
            (*label, spec.clone(), fraction)
        })
        .collect()
}

/// The rules installed on one emulator, and how often the removed ones fired.
pub struct FaultRules<'a> {
    emulator: &'a Emulator,
    installed: Vec<(String, &'static str)>,
    fired: BTreeMap<&'static str, u64>,
}

impl<'a> FaultRules<'a> {
    pub fn new(emulator: &'a Emulator) -> FaultRules<'a> {
        FaultRules {
            emulator,
            installed: Vec::new(),
            fired: BTreeMap::new(),
        }
    }

    /// Replaces the installed rules with `rules`, in order.
    pub async fn install(&mut self, rules: Vec<Rule>) -> Result<(), String> {
        self.clear().await?;
        for rule in rules {
            let mut spec = rule.spec;
            spec["times"] = json!(TIMES);
            let answer: Value = self
                .emulator
                .http()
                .post(format!("{}/_emulator/faults", self.emulator.url))
                .json(&spec)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| format!("failed to add the fault {}: {e}", rule.label))?
                .json()
                .await
                .map_err(|e| format!("failed to read the fault's id: {e}"))?;
            let id = answer["id"]
                .as_str()
                .ok_or("the emulator gave the fault no id")?;
            self.installed.push((id.to_owned(), rule.label));
        }
        Ok(())
    }

    /// Counts what the installed rules fired, then removes them. A request that matches
    /// between the count and the removal is not counted: the counts are lower bounds.
    pub async fn clear(&mut self) -> Result<(), String> {
        if !self.installed.is_empty() {
            let listed: Value = self
                .emulator
                .http()
                .get(format!("{}/_emulator/faults", self.emulator.url))
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| format!("failed to list the faults: {e}"))?
                .json()
                .await
                .map_err(|e| format!("failed to parse the faults: {e}"))?;
            let remaining: BTreeMap<&str, u64> = listed["faults"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|f| Some((f["id"].as_str()?, f["remaining"].as_u64()?)))
                .collect();
            for (id, label) in &self.installed {
                let left = remaining.get(id.as_str()).copied().unwrap_or(TIMES);
                *self.fired.entry(label).or_default() += TIMES.saturating_sub(left);
            }
        }
        self.emulator
            .http()
            .delete(format!("{}/_emulator/faults", self.emulator.url))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("failed to clear the faults: {e}"))?;
        self.installed.clear();
        Ok(())
    }

    /// How often each removed rule fired, by label.
    pub fn fired(&self) -> Value {
        json!(self.fired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_of_fractions_gives_each_fault_its_overall_share() {
        let fractions: Vec<f64> = chain(&[
            ("a", json!({}), 0.30),
            ("b", json!({}), 0.20),
            ("c", json!({}), 0.50),
        ])
        .into_iter()
        .map(|(_, _, f)| f)
        .collect();
        // 0.30; then 0.20 of the 0.70 left; then all of the 0.50 left.
        let expected = [0.30, 0.20 / 0.70, 1.0];
        for (got, want) in fractions.iter().zip(expected) {
            assert!((got - want).abs() < 1e-9, "{fractions:?}");
        }
    }

    #[test]
    fn the_tenant_mix_faults_csp_origins_before_and_drops_creates_after() {
        let mix = tenant_mix();
        let labels: Vec<&str> = mix.iter().map(|r| r.label).collect();
        assert_eq!(
            labels,
            [
                "429",
                "500",
                "503",
                "drop_before",
                "latency_300ms",
                "drop_after_create"
            ]
        );
        assert_eq!(mix[0].spec["retryAfter"], 1);
        assert!(mix[..5].iter().all(|r| r.spec["path"] == CSP_ORIGINS));
        let last = &mix[5].spec;
        assert_eq!(
            (&last["method"], &last["path"], &last["when"]),
            (&json!("POST"), &json!(CREATES), &json!("after"))
        );
    }

    #[test]
    fn the_api_keys_mix_is_the_same_mix_on_the_api_key_paths() {
        let (csp, keys) = (tenant_mix(), api_keys_mix());
        let labels = |mix: &[Rule]| mix.iter().map(|r| r.label).collect::<Vec<_>>();
        assert_eq!(labels(&keys), labels(&csp));
        assert!(keys[..5].iter().all(|r| r.spec["path"] == API_KEYS));
        assert_eq!(keys[5].spec["path"], API_KEY_CREATES);
        for (key, csp) in keys.iter().zip(&csp) {
            assert_eq!(key.spec["fraction"], csp.spec["fraction"], "{}", key.label);
        }
    }
}
