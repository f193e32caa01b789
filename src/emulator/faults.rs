//! Injected faults: which requests they hit and what they do. Pure (the random roll for
//! `fraction` is passed in).
//!
//! A request is checked twice: `before` it is processed and `after` (the operation has
//! taken effect and its response is ready). In each phase the first matching rule, in the
//! order the rules were added, applies; a rule with `times` stops matching once used up.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What `POST /_emulator/faults` accepts.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSpec {
    /// Only requests with this method (any when absent).
    pub method: Option<String>,
    /// Glob over the request path (no query); `*` matches any run of characters.
    pub path: String,
    pub fault: FaultKind,
    pub latency_ms: Option<u64>,
    pub status: Option<u16>,
    /// Seconds for `Retry-After` on a `status` fault.
    pub retry_after: Option<u64>,
    #[serde(default)]
    pub when: When,
    /// Apply to the next N matching requests only.
    pub times: Option<u32>,
    /// Apply to this fraction of matching requests (0 < fraction ≤ 1).
    pub fraction: Option<f64>,
}

/// The kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FaultKind {
    Latency,
    Status,
    Drop,
}

/// When the fault applies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum When {
    /// Before the request is processed: it never takes effect (except after latency).
    #[default]
    Before,
    /// After the request took effect, on its response.
    After,
}

/// What the server does when a fault applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Wait, then carry on.
    Delay(Duration),
    /// Answer with this status (and `Retry-After` seconds, if any) instead.
    Respond {
        status: u16,
        retry_after: Option<u64>,
    },
    /// Close the connection without answering.
    Drop,
}

/// A validated fault rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    pub id: String,
    method: Option<String>,
    path: String,
    when: When,
    action: Action,
    remaining: Option<u32>,
    fraction: Option<f64>,
}

impl Fault {
    /// Checks `spec` and gives it `id`; the error says what is wrong.
    pub fn new(id: String, spec: FaultSpec) -> Result<Fault, String> {
        let action = match spec.fault {
            FaultKind::Latency => Action::Delay(Duration::from_millis(
                spec.latency_ms.ok_or("a latency fault needs latencyMs")?,
            )),
            FaultKind::Status => {
                let status = spec.status.ok_or("a status fault needs status")?;
                if !(400..=599).contains(&status) {
                    return Err(format!("status {status} is not an error status (400-599)"));
                }
                Action::Respond {
                    status,
                    retry_after: spec.retry_after,
                }
            }
            FaultKind::Drop => Action::Drop,
        };
        if spec.times == Some(0) {
            return Err("times must be at least 1".to_owned());
        }
        if let Some(f) = spec.fraction
            && !(f > 0.0 && f <= 1.0)
        {
            return Err("fraction must be in (0, 1]".to_owned());
        }
        if spec.path.is_empty() {
            return Err("path must not be empty".to_owned());
        }
        Ok(Fault {
            id,
            method: spec.method.map(|m| m.to_ascii_uppercase()),
            path: spec.path,
            when: spec.when,
            action,
            remaining: spec.times,
            fraction: spec.fraction,
        })
    }

    fn matches(&self, method: &str, path: &str, when: When) -> bool {
        self.when == when
            && self.remaining != Some(0)
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && glob_match(&self.path, path)
    }
}

/// The active fault rules.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Vec<Fault>,
}

impl Faults {
    pub fn add(&mut self, fault: Fault) {
        self.rules.push(fault);
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// The action for a request in phase `when`, using up one of the rule's `times`.
    /// `roll` gives a uniform number in [0, 1) and is called only for rules with a fraction.
    pub fn take(
        &mut self,
        method: &str,
        path: &str,
        when: When,
        mut roll: impl FnMut() -> f64,
    ) -> Option<Action> {
        for rule in &mut self.rules {
            if !rule.matches(method, path, when) {
                continue;
            }
            if let Some(fraction) = rule.fraction
                && roll() >= fraction
            {
                continue;
            }
            if let Some(remaining) = &mut rule.remaining {
                *remaining -= 1;
            }
            return Some(rule.action);
        }
        None
    }

    /// The ids of the rules, in order, with how many uses each has left.
    pub fn list(&self) -> Vec<(String, Option<u32>)> {
        self.rules
            .iter()
            .map(|r| (r.id.clone(), r.remaining))
            .collect()
    }
}

/// `*` matches any run of characters (including `/`); everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    let (mut pi, mut ti) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            backtrack = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((star, matched)) = backtrack {
            pi = star + 1;
            ti = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> FaultSpec {
        serde_json::from_value(json).unwrap()
    }

    fn fault(json: serde_json::Value) -> Fault {
        Fault::new("f".to_owned(), spec(json)).unwrap()
    }

    #[test]
    fn glob_star_matches_any_run_of_characters() {
        let cases = [
            ("/api/v1/csp-origins*", "/api/v1/csp-origins", true),
            ("/api/v1/csp-origins*", "/api/v1/csp-origins/abc", true),
            ("/api/v1/csp-origins", "/api/v1/csp-origins/abc", false),
            ("*", "/oauth/token", true),
            ("/api/*/api-keys/*", "/api/v1/api-keys/123", true),
            ("/api/*/api-keys/*", "/api/v1/csp-origins/123", false),
            ("*/token", "/oauth/token", true),
            ("*a*b", "xaxxb", true),
            ("*a*b", "xaxxbc", false),
            ("", "", true),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(glob_match(pattern, text), expected, "{pattern} vs {text}");
        }
    }

    #[test]
    fn a_rule_applies_only_to_its_method_path_and_phase() {
        let mut faults = Faults::default();
        faults.add(fault(serde_json::json!({
            "method": "post", "path": "/api/v1/csp-origins*", "fault": "status", "status": 503
        })));
        let respond = Some(Action::Respond {
            status: 503,
            retry_after: None,
        });
        assert_eq!(
            faults.take("GET", "/api/v1/csp-origins", When::Before, || 0.0),
            None
        );
        assert_eq!(
            faults.take("POST", "/api/v1/csp-origins", When::After, || 0.0),
            None
        );
        assert_eq!(
            faults.take("POST", "/api/v1/api-keys", When::Before, || 0.0),
            None
        );
        assert_eq!(
            faults.take("POST", "/api/v1/csp-origins", When::Before, || 0.0),
            respond
        );
    }

    #[test]
    fn times_limits_how_often_a_rule_applies() {
        let mut faults = Faults::default();
        faults.add(fault(serde_json::json!({
            "path": "*", "fault": "status", "status": 429, "retryAfter": 3, "times": 2
        })));
        let hit = || {
            Some(Action::Respond {
                status: 429,
                retry_after: Some(3),
            })
        };
        assert_eq!(faults.take("GET", "/x", When::Before, || 0.0), hit());
        assert_eq!(faults.take("GET", "/x", When::Before, || 0.0), hit());
        assert_eq!(faults.take("GET", "/x", When::Before, || 0.0), None);
        assert_eq!(faults.list(), vec![("f".to_owned(), Some(0))]);
    }

    #[test]
    fn fraction_applies_when_the_roll_is_below_it_and_a_miss_does_not_use_up_times() {
        let mut faults = Faults::default();
        faults.add(fault(serde_json::json!({
            "path": "*", "fault": "drop", "fraction": 0.5, "times": 1
        })));
        assert_eq!(faults.take("GET", "/x", When::Before, || 0.7), None);
        assert_eq!(
            faults.take("GET", "/x", When::Before, || 0.2),
            Some(Action::Drop)
        );
        assert_eq!(faults.take("GET", "/x", When::Before, || 0.2), None);
    }

    #[test]
    fn the_first_matching_rule_wins_and_later_ones_apply_when_it_is_used_up() {
        let mut faults = Faults::default();
        faults.add(fault(
            serde_json::json!({"path": "*", "fault": "latency", "latencyMs": 5, "times": 1}),
        ));
        faults.add(fault(serde_json::json!({"path": "*", "fault": "drop"})));
        assert_eq!(
            faults.take("GET", "/x", When::Before, || 0.0),
            Some(Action::Delay(Duration::from_millis(5)))
        );
        assert_eq!(
            faults.take("GET", "/x", When::Before, || 0.0),
            Some(Action::Drop)
        );
        faults.clear();
        assert_eq!(faults.take("GET", "/x", When::Before, || 0.0), None);
    }

    #[test]
    fn invalid_rules_are_refused_with_a_reason() {
        let bad = [
            serde_json::json!({"path": "*", "fault": "latency"}),
            serde_json::json!({"path": "*", "fault": "status"}),
            serde_json::json!({"path": "*", "fault": "status", "status": 200}),
            serde_json::json!({"path": "*", "fault": "drop", "times": 0}),
            serde_json::json!({"path": "*", "fault": "drop", "fraction": 1.5}),
            serde_json::json!({"path": "", "fault": "drop"}),
        ];
        for json in bad {
            assert!(
                Fault::new("f".to_owned(), spec(json.clone())).is_err(),
                "{json}"
            );
        }
        assert!(
            serde_json::from_value::<FaultSpec>(
                serde_json::json!({"path": "*", "fault": "explode"})
            )
            .is_err()
        );
    }
}
