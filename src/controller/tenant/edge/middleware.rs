//! A Traefik `Middleware` target: the header in `spec.headers.contentSecurityPolicy` (and
//! `contentSecurityPolicyReportOnly`). Pure.
//!
//! These are plain fields of a granular object, so the operator server-side applies only
//! them under its own field manager, without force: Git's manifest keeps every other field,
//! a Git re-apply that does not set these fields leaves them alone, and one that does set
//! them is reported as a conflict instead of being overwritten. Applying the same body
//! without them withdraws exactly what the operator added.

use serde_json::{Map, Value, json};

use crate::api::header::{ENFORCING_HEADER, REPORT_ONLY_HEADER};

/// The Middleware field a header name goes to; `None` for a name Traefik has no field for
/// (the CRD refuses a custom `key` with Middleware targets).
pub fn field_for(header: &str) -> Option<&'static str> {
    if header.eq_ignore_ascii_case(ENFORCING_HEADER) {
        Some("contentSecurityPolicy")
    } else if header.eq_ignore_ascii_case(REPORT_ONLY_HEADER) {
        Some("contentSecurityPolicyReportOnly")
    } else {
        None
    }
}

/// The apply body: `desired` (`(header name, value)`) in their fields; empty to withdraw.
pub fn apply_body(namespace: &str, name: &str, desired: &[(&str, &str)]) -> Value {
    let headers: Map<String, Value> = desired
        .iter()
        .filter_map(|(header, value)| Some((field_for(header)?.to_owned(), json!(value))))
        .collect();
    let mut body = json!({
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "Middleware",
        "metadata": { "name": name, "namespace": namespace },
    });
    if !headers.is_empty()
        && let Some(object) = body.as_object_mut()
    {
        object.insert("spec".to_owned(), json!({ "headers": headers }));
    }
    body
}

/// Whether the Middleware (as JSON) holds exactly `desired` in the CSP fields: each
/// desired value in its field, and the other CSP field empty.
pub fn carries(middleware: &Value, desired: &[(&str, &str)]) -> bool {
    let headers = middleware.pointer("/spec/headers");
    let current = |field: &str| {
        headers
            .and_then(|h| h.get(field))
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    [ENFORCING_HEADER, REPORT_ONLY_HEADER].iter().all(|header| {
        let want = desired
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(header))
            .map(|(_, value)| *value);
        field_for(header).is_some_and(|field| current(field) == want)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_holds_only_the_csp_fields() {
        let body = apply_body("web", "csp", &[(ENFORCING_HEADER, "default-src 'self'")]);
        assert_eq!(
            body,
            json!({
                "apiVersion": "traefik.io/v1alpha1",
                "kind": "Middleware",
                "metadata": { "name": "csp", "namespace": "web" },
                "spec": { "headers": { "contentSecurityPolicy": "default-src 'self'" } },
            })
        );
        let withdraw = apply_body("web", "csp", &[]);
        assert!(withdraw.get("spec").is_none());
    }

    #[test]
    fn both_fields_are_compared() {
        let middleware = json!({ "spec": { "headers": {
            "frameDeny": true,
            "contentSecurityPolicy": "a",
            "contentSecurityPolicyReportOnly": "b",
        } } });
        assert!(carries(
            &middleware,
            &[(ENFORCING_HEADER, "a"), (REPORT_ONLY_HEADER, "b")]
        ));
        assert!(!carries(&middleware, &[(ENFORCING_HEADER, "a")]));
        assert!(!carries(&middleware, &[(REPORT_ONLY_HEADER, "b")]));
        assert!(!carries(&json!({}), &[(ENFORCING_HEADER, "a")]));
        assert!(carries(&json!({ "spec": {} }), &[]));
    }
}
