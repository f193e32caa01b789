//! A Gateway API `HTTPRoute` target: the header as a `set` entry of a
//! `ResponseHeaderModifier` filter on the chosen rules. Pure: reads the route as JSON and
//! returns the JSON patch that changes only the operator's entries.
//!
//! Why a JSON patch and not a server-side apply: `spec.rules` and each rule's `filters`
//! are atomic lists in the Gateway API schema, so an apply would have to send every rule
//! whole and would make the operator co-own all of them; withdrawing the header with an
//! apply that omits them would then delete the user's rules. The patch replaces the
//! `filters` of the chosen rules only, guarded by a `test` of the resourceVersion it was
//! computed from, so a concurrent edit fails the patch instead of being overwritten.

use serde_json::{Value, json};

/// Gateway API's cap on `set` entries per filter.
pub const MAX_SET_ENTRIES: usize = 16;
const FILTER_TYPE: &str = "ResponseHeaderModifier";
const FILTER_FIELD: &str = "responseHeaderModifier";

/// What the route needs.
#[derive(Clone, Debug, PartialEq)]
pub enum RoutePlan {
    /// The chosen rules carry exactly the desired entries.
    UpToDate,
    /// Send this JSON patch.
    Patch(Value),
    /// `rules` names rules the route does not have.
    RuleNotFound { missing: Vec<String> },
    /// A chosen rule would have more `set` entries than Gateway API allows.
    TooManyHeaders { rule: String },
    /// The route has no rules to carry a header.
    NoRules,
}

/// The plan for `route` (the whole object as JSON): on the rules named in `rules` (every
/// rule when empty), the `set` entries named in `owned` become exactly `desired`
/// (`(name, value)`; empty to withdraw). Entries with other names, other filters and other
/// rules are left as they are.
pub fn plan(
    route: &Value,
    rules: &[String],
    desired: &[(&str, &str)],
    owned: &[&str],
) -> RoutePlan {
    let Some(all) = route.pointer("/spec/rules").and_then(Value::as_array) else {
        return RoutePlan::NoRules;
    };
    if all.is_empty() {
        return RoutePlan::NoRules;
    }
    let name_of = |rule: &Value| rule.get("name").and_then(Value::as_str).map(str::to_owned);
    let missing: Vec<String> = rules
        .iter()
        .filter(|wanted| {
            !all.iter()
                .any(|r| name_of(r).as_deref() == Some(wanted.as_str()))
        })
        .cloned()
        .collect();
    if !missing.is_empty() {
        return RoutePlan::RuleNotFound { missing };
    }

    let mut ops = Vec::new();
    for (index, rule) in all.iter().enumerate() {
        let chosen = rules.is_empty() || name_of(rule).is_some_and(|n| rules.contains(&n));
        if !chosen {
            continue;
        }
        let filters = rule
            .get("filters")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let updated = with_entries(&filters, desired, owned);
        if updated == filters {
            continue;
        }
        let too_many = updated
            .iter()
            .any(|f| set_entries(f).len() > MAX_SET_ENTRIES);
        if too_many {
            return RoutePlan::TooManyHeaders {
                rule: name_of(rule).unwrap_or_else(|| format!("#{index}")),
            };
        }
        ops.push(json!({ "op": "add", "path": format!("/spec/rules/{index}/filters"), "value": updated }));
    }
    if ops.is_empty() {
        return RoutePlan::UpToDate;
    }
    let version = route
        .pointer("/metadata/resourceVersion")
        .cloned()
        .unwrap_or(Value::Null);
    ops.insert(
        0,
        json!({ "op": "test", "path": "/metadata/resourceVersion", "value": version }),
    );
    RoutePlan::Patch(Value::Array(ops))
}

/// Whether every chosen rule of `route` carries all of `desired`.
pub fn carries(route: &Value, rules: &[String], desired: &[(&str, &str)]) -> bool {
    let chosen = chosen_rules(route, rules);
    !chosen.is_empty()
        && chosen
            .iter()
            .all(|rule| desired.iter().all(|line| rule_carries(rule, *line)))
}

/// Whether any chosen rule of `route` carries `line`.
pub fn carries_any(route: &Value, rules: &[String], line: (&str, &str)) -> bool {
    chosen_rules(route, rules)
        .iter()
        .any(|rule| rule_carries(rule, line))
}

fn chosen_rules<'a>(route: &'a Value, rules: &[String]) -> Vec<&'a Value> {
    let all = route.pointer("/spec/rules").and_then(Value::as_array);
    all.into_iter()
        .flatten()
        .filter(|rule| {
            rules.is_empty()
                || rule
                    .get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| rules.iter().any(|w| w == n))
        })
        .collect()
}

fn rule_carries(rule: &Value, (name, value): (&str, &str)) -> bool {
    let filters = rule.get("filters").and_then(Value::as_array);
    filters
        .into_iter()
        .flatten()
        .flat_map(|f| set_entries(f).into_iter())
        .any(|e| {
            e.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
                && e.get("value").and_then(Value::as_str) == Some(value)
        })
}

/// `filters` with the owned `set` entries replaced by `desired`; a `ResponseHeaderModifier`
/// is added when there is none, and one left with nothing to do is dropped.
fn with_entries(filters: &[Value], desired: &[(&str, &str)], owned: &[&str]) -> Vec<Value> {
    let is_owned = |entry: &Value| {
        entry
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| owned.iter().any(|o| o.eq_ignore_ascii_case(n)))
    };
    let mut out = Vec::with_capacity(filters.len() + 1);
    let mut found = false;
    for filter in filters {
        if filter.get("type").and_then(Value::as_str) != Some(FILTER_TYPE) {
            out.push(filter.clone());
            continue;
        }
        found = true;
        let mut filter = filter.clone();
        let mut set: Vec<Value> = set_entries(&filter)
            .into_iter()
            .filter(|e| !is_owned(e))
            .cloned()
            .collect();
        set.extend(
            desired
                .iter()
                .map(|(n, v)| json!({ "name": n, "value": v })),
        );
        let modifier = filter
            .as_object_mut()
            .and_then(|f| f.get_mut(FILTER_FIELD))
            .and_then(Value::as_object_mut);
        let Some(modifier) = modifier else {
            out.push(filter);
            continue;
        };
        if set.is_empty() {
            modifier.remove("set");
        } else {
            modifier.insert("set".to_owned(), Value::Array(set));
        }
        if !modifier.is_empty() {
            out.push(filter);
        }
    }
    if !found && !desired.is_empty() {
        let set: Vec<Value> = desired
            .iter()
            .map(|(n, v)| json!({ "name": n, "value": v }))
            .collect();
        out.push(json!({ "type": FILTER_TYPE, FILTER_FIELD: { "set": set } }));
    }
    out
}

fn set_entries(filter: &Value) -> Vec<&Value> {
    filter
        .get(FILTER_FIELD)
        .and_then(|m| m.get("set"))
        .and_then(Value::as_array)
        .map(|set| set.iter().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSP: &str = "Content-Security-Policy";
    const RO: &str = "Content-Security-Policy-Report-Only";
    const OWNED: [&str; 2] = [CSP, RO];

    fn route(rules: Value) -> Value {
        json!({ "metadata": { "name": "web", "resourceVersion": "7" }, "spec": { "rules": rules } })
    }

    fn patched(route: &Value, patch: &Value) -> Value {
        let patch: json_patch::Patch = serde_json::from_value(patch.clone()).unwrap();
        let mut doc = route.clone();
        json_patch::patch(&mut doc, &patch).unwrap();
        doc
    }

    #[test]
    fn the_header_is_added_to_every_rule_next_to_the_users_filters() {
        let before = route(json!([
            { "name": "app", "filters": [
                { "type": "RequestHeaderModifier", "requestHeaderModifier": { "set": [{ "name": "X-A", "value": "1" }] } },
                { "type": "ResponseHeaderModifier", "responseHeaderModifier": { "set": [{ "name": "X-Frame-Options", "value": "DENY" }], "remove": ["Server"] } }
            ] },
            { "backendRefs": [] }
        ]));
        let RoutePlan::Patch(patch) = plan(&before, &[], &[(CSP, "default-src 'self'")], &OWNED)
        else {
            panic!("expected a patch");
        };
        assert_eq!(
            patch[0],
            json!({ "op": "test", "path": "/metadata/resourceVersion", "value": "7" })
        );
        let after = patched(&before, &patch);
        assert_eq!(
            after.pointer("/spec/rules/0/filters/1/responseHeaderModifier"),
            Some(&json!({
                "set": [{ "name": "X-Frame-Options", "value": "DENY" }, { "name": CSP, "value": "default-src 'self'" }],
                "remove": ["Server"]
            }))
        );
        assert_eq!(
            after.pointer("/spec/rules/0/filters/0"),
            before.pointer("/spec/rules/0/filters/0")
        );
        assert_eq!(
            after.pointer("/spec/rules/1/filters"),
            Some(
                &json!([{ "type": "ResponseHeaderModifier", "responseHeaderModifier": { "set": [{ "name": CSP, "value": "default-src 'self'" }] } }])
            )
        );
        assert!(carries(&after, &[], &[(CSP, "default-src 'self'")]));
        assert_eq!(
            plan(&after, &[], &[(CSP, "default-src 'self'")], &OWNED),
            RoutePlan::UpToDate
        );
    }

    #[test]
    fn only_named_rules_are_touched_and_a_missing_name_is_reported() {
        let before = route(json!([{ "name": "app" }, { "name": "static" }]));
        let RoutePlan::Patch(patch) = plan(
            &before,
            &["static".to_owned()],
            &[(CSP, "img-src 'self'")],
            &OWNED,
        ) else {
            panic!("expected a patch");
        };
        let after = patched(&before, &patch);
        assert!(after.pointer("/spec/rules/0/filters").is_none());
        assert!(carries(
            &after,
            &["static".to_owned()],
            &[(CSP, "img-src 'self'")]
        ));
        assert!(!carries(&after, &[], &[(CSP, "img-src 'self'")]));
        assert_eq!(
            plan(&before, &["api".to_owned()], &[(CSP, "x")], &OWNED),
            RoutePlan::RuleNotFound {
                missing: vec!["api".to_owned()]
            }
        );
    }

    #[test]
    fn a_mode_change_replaces_the_old_name_and_withdrawing_leaves_the_users_entries() {
        let before = route(json!([{ "filters": [
            { "type": "ResponseHeaderModifier", "responseHeaderModifier": { "set": [{ "name": "X-Frame-Options", "value": "DENY" }, { "name": "content-security-policy", "value": "old" }] } }
        ] }]));
        let RoutePlan::Patch(patch) = plan(&before, &[], &[(RO, "new")], &OWNED) else {
            panic!("expected a patch");
        };
        let after = patched(&before, &patch);
        assert_eq!(
            after.pointer("/spec/rules/0/filters/0/responseHeaderModifier/set"),
            Some(
                &json!([{ "name": "X-Frame-Options", "value": "DENY" }, { "name": RO, "value": "new" }])
            )
        );
        let RoutePlan::Patch(withdraw) = plan(&after, &[], &[], &OWNED) else {
            panic!("expected a patch");
        };
        let withdrawn = patched(&after, &withdraw);
        assert_eq!(
            withdrawn.pointer("/spec/rules/0/filters/0/responseHeaderModifier/set"),
            Some(&json!([{ "name": "X-Frame-Options", "value": "DENY" }]))
        );
    }

    #[test]
    fn a_filter_the_operator_emptied_is_dropped_on_withdrawal() {
        let before = route(json!([{ "name": "app" }]));
        let RoutePlan::Patch(add) = plan(&before, &[], &[(CSP, "img-src 'self'")], &OWNED) else {
            panic!("expected a patch");
        };
        let RoutePlan::Patch(remove) = plan(&patched(&before, &add), &[], &[], &OWNED) else {
            panic!("expected a patch");
        };
        let after = patched(&patched(&before, &add), &remove);
        assert_eq!(after.pointer("/spec/rules/0/filters"), Some(&json!([])));
    }

    #[test]
    fn a_seventeenth_set_entry_is_refused() {
        let set: Vec<Value> = (0..16)
            .map(|i| json!({ "name": format!("X-{i}"), "value": "v" }))
            .collect();
        let before = route(json!([{ "name": "app", "filters": [
            { "type": "ResponseHeaderModifier", "responseHeaderModifier": { "set": set } }
        ] }]));
        assert_eq!(
            plan(&before, &[], &[(CSP, "x")], &OWNED),
            RoutePlan::TooManyHeaders {
                rule: "app".to_owned()
            }
        );
    }

    #[test]
    fn a_route_without_rules_cannot_carry_a_header() {
        assert_eq!(
            plan(&json!({ "spec": {} }), &[], &[(CSP, "x")], &OWNED),
            RoutePlan::NoRules
        );
    }
}
