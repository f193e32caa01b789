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

use super::control;
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
/// Every data connection request: list, get and the credential writes.
const DATA_CONNECTIONS: &str = "/api/v1/data-connections*";
/// One data connection: where its credentials are written (`PATCH`).
const DATA_CONNECTION: &str = "/api/v1/data-connections/*";

/// One fault rule and the name the report counts it under.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub label: String,
    spec: Value,
}

/// Issue 18's tenant faults on csp-origins requests, as overall shares of the requests:
/// 30% answered 429 with `Retry-After: 1`, 10% 500 and 10% 503, 5% dropped before they
/// take effect, 10% delayed by 300 ms; and 5% of the creates that took effect lose their
/// answer (the connection drops after the entry was made: a retry must not duplicate it).
pub fn tenant_mix() -> Vec<Rule> {
    mix_on("", CSP_ORIGINS, ("drop_after_create", "POST", CREATES))
}

/// The same mix on the API key requests (list, get, create, delete): what the rotations of
/// `secret_faults` go through. The consumer's calls with the rotated key are not faulted.
pub fn api_keys_mix() -> Vec<Rule> {
    mix_on("", API_KEYS, ("drop_after_create", "POST", API_KEY_CREATES))
}

/// The same mix on the data connection requests (lookup by name and credential writes),
/// its labels prefixed `data_connections.`; the lost answers are of writes that took
/// effect (a retry writes the same password again).
pub fn data_connections_mix() -> Vec<Rule> {
    mix_on(
        "data_connections.",
        DATA_CONNECTIONS,
        ("drop_after_write", "PATCH", DATA_CONNECTION),
    )
}

/// The same mix without the 429s (a QRS site does not throttle) on every QRS request, and
/// [`QRS_LOST_ANSWERS`] of the `PUT`s (a virtual proxy's header, a data connection's
/// credentials) losing their answer after they took effect.
pub fn qrs_mix() -> Vec<Rule> {
    let mut shares = before_shares();
    shares.retain(|(label, _, _)| *label != "429");
    let mut rules = rules_on("", QRS, &shares, ("drop_after_write", "PUT", QRS));
    if let Some(lost) = rules.last_mut() {
        lost.spec["fraction"] = json!(QRS_LOST_ANSWERS);
    }
    rules
}

/// The share of a site's `PUT`s whose answer is lost: a site takes few (about 22 in a full
/// `site_faults`), and at the cloud mix's 5% not one lost its answer in two full runs.
const QRS_LOST_ANSWERS: f64 = 0.25;

/// The mix on every request under `path`, labelled `prefix` + the fault, and the answers
/// lost after the request took effect on `(label, method, path)`.
fn mix_on(prefix: &str, path: &str, lost: (&str, &str, &str)) -> Vec<Rule> {
    rules_on(prefix, path, &before_shares(), lost)
}

/// The faults before a request is processed, as overall shares of the requests.
fn before_shares() -> Vec<(&'static str, Value, f64)> {
    vec![
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
    ]
}

/// `shares` (see [`chain`]) on every request under `path`, then the lost answers.
fn rules_on(
    prefix: &str,
    path: &str,
    shares: &[(&'static str, Value, f64)],
    lost: (&str, &str, &str),
) -> Vec<Rule> {
    let mut rules: Vec<Rule> = chain(shares)
        .into_iter()
        .map(|(label, mut spec, fraction)| {
            spec["path"] = json!(path);
            spec["fraction"] = json!(fraction);
            spec["when"] = json!("before");
            Rule {
                label: format!("{prefix}{label}"),
                spec,
            }
        })
        .collect();
    let (label, method, lost_path) = lost;
    rules.push(Rule {
        label: format!("{prefix}{label}"),
        spec: json!({
            "method": method, "path": lost_path, "fault": "drop", "when": "after", "fraction": 0.05,
        }),
    });
    rules
}

/// The tenant down: every Qlik request, not only csp-origins (the connection check too),
/// answered 503.
pub fn outage() -> Vec<Rule> {
    outage_of(&["*"])
}

/// An outage of some of the tenant's services: every request under `paths` answered 503.
pub fn outage_of(paths: &[&str]) -> Vec<Rule> {
    paths
        .iter()
        .map(|path| Rule {
            label: "outage_503".to_owned(),
            spec: json!({ "path": path, "fault": "status", "status": 503, "when": "before" }),
        })
        .collect()
}

/// Every request to a client-managed site's QRS API.
pub const QRS: &str = "/qrs/*";

/// The paths of the API key and data connection services, for [`outage_of`].
pub const SECRET_SERVICES: [&str; 2] = [API_KEYS, DATA_CONNECTIONS];

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
pub struct FaultRules {
    /// The emulator's base URL and a client its control API accepts.
    url: String,
    http: reqwest::Client,
    installed: Vec<(String, String)>,
    fired: BTreeMap<String, u64>,
}

impl FaultRules {
    pub fn new(emulator: &Emulator) -> FaultRules {
        FaultRules::at(&emulator.url, emulator.http().clone())
    }

    /// The rules of the emulator at `url` (the QRS site's, whose control API wants its
    /// client certificate in `http`).
    pub fn at(url: &str, http: reqwest::Client) -> FaultRules {
        FaultRules {
            url: url.to_owned(),
            http,
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
            let url = format!("{}/_emulator/faults", self.url);
            let what = format!("the fault {}", rule.label);
            let id = control::create(&self.http, &url, &spec, &what).await?;
            self.installed.push((id, rule.label));
        }
        Ok(())
    }

    /// Counts what the installed rules fired, then removes them. A request that matches
    /// between the count and the removal is not counted: the counts are lower bounds.
    pub async fn clear(&mut self) -> Result<(), String> {
        if !self.installed.is_empty() {
            let listed =
                control::get(&self.http, &format!("{}/_emulator/faults", self.url)).await?;
            let remaining: BTreeMap<&str, u64> = listed["faults"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|f| Some((f["id"].as_str()?, f["remaining"].as_u64()?)))
                .collect();
            for (id, label) in &self.installed {
                let left = remaining.get(id.as_str()).copied().unwrap_or(TIMES);
                *self.fired.entry(label.clone()).or_default() += TIMES.saturating_sub(left);
            }
        }
        self.http
            .delete(format!("{}/_emulator/faults", self.url))
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
        let labels: Vec<&str> = mix.iter().map(|r| r.label.as_str()).collect();
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
        let labels = |mix: &[Rule]| mix.iter().map(|r| r.label.clone()).collect::<Vec<_>>();
        assert_eq!(labels(&keys), labels(&csp));
        assert!(keys[..5].iter().all(|r| r.spec["path"] == API_KEYS));
        assert_eq!(keys[5].spec["path"], API_KEY_CREATES);
        for (key, csp) in keys.iter().zip(&csp) {
            assert_eq!(key.spec["fraction"], csp.spec["fraction"], "{}", key.label);
        }
    }

    #[test]
    fn the_data_connections_mix_is_prefixed_and_loses_the_answers_of_writes() {
        let (csp, connections) = (tenant_mix(), data_connections_mix());
        assert_eq!(connections[0].label, "data_connections.429");
        assert!(
            connections[..5]
                .iter()
                .all(|r| r.spec["path"] == DATA_CONNECTIONS)
        );
        let last = &connections[5];
        assert_eq!(last.label, "data_connections.drop_after_write");
        assert_eq!(
            (&last.spec["method"], &last.spec["path"], &last.spec["when"]),
            (&json!("PATCH"), &json!(DATA_CONNECTION), &json!("after"))
        );
        for (connection, csp) in connections.iter().zip(&csp) {
            assert_eq!(connection.spec["fraction"], csp.spec["fraction"]);
        }
    }

    #[test]
    fn an_outage_of_the_secret_services_leaves_the_other_paths_alone() {
        let outage = outage_of(&SECRET_SERVICES);
        let paths: Vec<&Value> = outage.iter().map(|r| &r.spec["path"]).collect();
        assert_eq!(paths, [&json!(API_KEYS), &json!(DATA_CONNECTIONS)]);
        assert!(outage.iter().all(|r| r.spec["status"] == 503));
    }

    #[test]
    fn the_qrs_mix_has_no_429s_and_keeps_the_other_shares() {
        let mix = qrs_mix();
        let labels: Vec<&str> = mix.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "500",
                "503",
                "drop_before",
                "latency_300ms",
                "drop_after_write"
            ]
        );
        // The first rule sees every request: its fraction is its overall share.
        assert_eq!(mix[0].spec["fraction"], 0.10);
        assert!(mix.iter().all(|r| r.spec["path"] == QRS));
        assert_eq!(mix[4].spec["method"], "PUT");
        assert_eq!(mix[4].spec["fraction"], QRS_LOST_ANSWERS);
    }
}
