//! Lenient decoding of the error bodies Qlik's APIs answer with: `{"errors": [...]}`
//! (code, title, detail, status as a string or a number) and the OAuth form
//! `{"error", "error_description"}`; for the QRS API of a client-managed site, which
//! answers many failures in plain text, also text ([`ApiErrors::decode_text`]). A body that is absent, not JSON or of another shape
//! decodes to no errors rather than failing: the HTTP status already says what happened,
//! the body only adds detail. No I/O.
//!
//! # Guarantees
//! - No credential in a message: every text taken from a body is scrubbed of the secrets
//!   the client holds (replaced by `[REDACTED]`) before it is stored, so neither
//!   [`ApiErrors`]' `Debug` nor its `Display` can show one.
//! - Bounded: each error shown is cut to 300 characters, so a tenant cannot blow up a
//!   condition message or an event.

use std::fmt;

use serde_json::Value;

/// The most characters of a tenant's error text kept in an error.
const MAX_DETAIL_CHARS: usize = 300;

/// One entry of Qlik's `{"errors": [...]}` body, decoded leniently.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiError {
    /// Qlik's error code, e.g. `CSP-4001` or `HTTP-400`.
    pub code: Option<String>,
    /// The summary.
    pub title: Option<String>,
    /// The details.
    pub detail: Option<String>,
    /// The HTTP status as the body states it (a string in some APIs, a number in others).
    pub status: Option<u16>,
}

/// The errors in a Qlik error body; empty when the body was absent or not understood.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiErrors(pub Vec<ApiError>);

impl ApiErrors {
    /// Decodes `{"errors":[{code,title,detail,status}]}` and the OAuth form
    /// `{"error","error_description"}`; anything else gives an empty list. Any of
    /// `secrets` found in the text is replaced by `[REDACTED]`.
    pub fn decode(body: &[u8], secrets: &[&str]) -> ApiErrors {
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            return ApiErrors::default();
        };
        let text = |v: Option<&Value>| -> Option<String> {
            let s = match v? {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some(scrub(&s, secrets))
        };
        if let Some(errors) = value.get("errors").and_then(Value::as_array) {
            let errors = errors
                .iter()
                .map(|e| ApiError {
                    code: text(e.get("code")),
                    title: text(e.get("title")),
                    detail: text(e.get("detail")),
                    status: text(e.get("status")).and_then(|s| s.trim().parse().ok()),
                })
                .collect();
            return ApiErrors(errors);
        }
        if value.get("error").is_some() {
            return ApiErrors(vec![ApiError {
                code: text(value.get("error")),
                title: None,
                detail: text(value.get("error_description")),
                status: None,
            }]);
        }
        ApiErrors::default()
    }

    /// Like [`ApiErrors::decode`]; when that finds nothing, a body of plain text (or a
    /// JSON string, or a JSON object with a `message`) becomes one error with that text
    /// as its title, whitespace collapsed and at most 1,000 characters kept. An HTML body
    /// (the error page of something in between) still decodes to no errors. Secrets are
    /// scrubbed as written and as a JSON string would escape them, before anything is cut.
    pub fn decode_text(body: &[u8], secrets: &[&str]) -> ApiErrors {
        let decoded = ApiErrors::decode(body, secrets);
        if !decoded.0.is_empty() {
            return decoded;
        }
        let Ok(raw) = std::str::from_utf8(body) else {
            return decoded;
        };
        let text = match serde_json::from_str::<Value>(raw) {
            Ok(Value::String(s)) => s,
            Ok(Value::Object(o)) => match ["message", "Message"]
                .into_iter()
                .find_map(|k| o.get(k).and_then(Value::as_str))
            {
                Some(message) => message.to_owned(),
                None => return decoded,
            },
            Ok(_) => return decoded,
            Err(_) => raw.to_owned(),
        };
        let text = scrub_escaped(&scrub(&text, secrets), secrets);
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() || text.starts_with('<') {
            return decoded;
        }
        ApiErrors(vec![ApiError {
            title: Some(truncate(&text, MAX_STORED_CHARS)),
            ..ApiError::default()
        }])
    }

    /// Whether the tenant says a limit was reached (its 409s and some 400s/403s do).
    pub(super) fn mentions_limit(&self) -> bool {
        // Not just "limit": a 400 about the `limit` query parameter is no tenant limit.
        const WORDS: [&str; 5] = [
            "exceed",
            "maximum",
            "max number",
            "limit reached",
            "too many",
        ];
        self.0.iter().any(|e| {
            let code_says_limit = e
                .code
                .as_deref()
                .is_some_and(|c| c.to_ascii_uppercase().ends_with("-LIMIT"));
            let text_says_limit = [&e.code, &e.title, &e.detail]
                .into_iter()
                .flatten()
                .map(|s| s.to_ascii_lowercase())
                .any(|s| WORDS.iter().any(|w| s.contains(w)));
            code_says_limit || text_says_limit
        })
    }
}

/// Formats as `: title (code): detail; …`, or nothing when empty, so that it can follow a
/// message directly.
impl fmt::Display for ApiErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut written = 0;
        for e in &self.0 {
            let mut part = String::new();
            if let Some(title) = &e.title {
                part.push_str(title);
            }
            if let Some(code) = &e.code {
                if part.is_empty() {
                    part.push_str(code);
                } else {
                    part.push_str(&format!(" ({code})"));
                }
            }
            if let Some(detail) = e.detail.as_ref().filter(|d| Some(*d) != e.title.as_ref()) {
                if !part.is_empty() {
                    part.push_str(": ");
                }
                part.push_str(detail);
            }
            if part.is_empty() {
                continue;
            }
            f.write_str(if written == 0 { ": " } else { "; " })?;
            f.write_str(&truncate(&part, MAX_DETAIL_CHARS))?;
            written += 1;
        }
        Ok(())
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// The most characters of a plain-text error body kept (shown: [`MAX_DETAIL_CHARS`]).
const MAX_STORED_CHARS: usize = 1_000;

/// Replaces every non-empty secret in `text`, as a JSON string would escape it (a body
/// that echoes the request it refused), by `[REDACTED]`.
fn scrub_escaped(text: &str, secrets: &[&str]) -> String {
    let escaped: Vec<String> = secrets
        .iter()
        .filter_map(|s| serde_json::to_string(s).ok())
        .map(|quoted| quoted[1..quoted.len() - 1].to_owned())
        .collect();
    let escaped: Vec<&str> = escaped.iter().map(String::as_str).collect();
    scrub(text, &escaped)
}

/// Replaces every non-empty secret in `text` by `[REDACTED]`.
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret, "[REDACTED]");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qlik_error_bodies_decode_with_string_or_number_status() {
        let cases: [(&str, Option<u16>); 4] = [
            (
                r#"{"errors":[{"code":"X-1","title":"Bad","status":"400"}]}"#,
                Some(400),
            ),
            (
                r#"{"errors":[{"code":"X-1","title":"Bad","status":400}]}"#,
                Some(400),
            ),
            (r#"{"errors":[{"code":42,"title":"Bad"}]}"#, None),
            (
                r#"{"errors":[{"code":"X-1","title":"Bad","status":"four"}]}"#,
                None,
            ),
        ];
        for (body, status) in cases {
            let errors = ApiErrors::decode(body.as_bytes(), &[]);
            assert_eq!(errors.0.len(), 1, "{body}");
            assert_eq!(errors.0[0].status, status, "{body}");
            assert_eq!(errors.0[0].title.as_deref(), Some("Bad"));
        }
    }

    #[test]
    fn absent_or_non_json_bodies_decode_to_no_errors() {
        for body in [
            "",
            "<html>502 Bad Gateway</html>",
            "null",
            "[]",
            r#"{"x":1}"#,
        ] {
            assert_eq!(
                ApiErrors::decode(body.as_bytes(), &[]),
                ApiErrors::default()
            );
            assert_eq!(ApiErrors::decode(body.as_bytes(), &[]).to_string(), "");
        }
    }

    #[test]
    fn oauth_error_bodies_decode_too() {
        let errors = ApiErrors::decode(
            br#"{"error":"invalid_client","error_description":"bad secret s3cr3t"}"#,
            &["s3cr3t"],
        );
        assert_eq!(
            errors.to_string(),
            ": invalid_client: bad secret [REDACTED]"
        );
    }

    #[test]
    fn error_details_are_scrubbed_of_secrets_and_truncated() {
        let long = "x".repeat(1000);
        let body = format!(r#"{{"errors":[{{"title":"token abc123 is bad","detail":"{long}"}}]}}"#);
        let shown = ApiErrors::decode(body.as_bytes(), &["abc123"]).to_string();
        assert!(!shown.contains("abc123"));
        assert!(shown.contains("[REDACTED]"));
        assert!(shown.chars().count() < 400);
    }

    #[test]
    fn limits_are_recognised_by_code_or_wording_but_not_by_the_word_limit_alone() {
        let cases = [
            (
                r#"{"errors":[{"code":"APIKEYS-LIMIT","title":"Nope"}]}"#,
                true,
            ),
            (
                r#"{"errors":[{"title":"The max number of client secrets is 5"}]}"#,
                true,
            ),
            (
                r#"{"errors":[{"detail":"Would exceed 256 entries"}]}"#,
                true,
            ),
            (
                r#"{"error":"too_many","error_description":"Too many keys"}"#,
                true,
            ),
            // A complaint about the `limit` query parameter is no tenant limit.
            (
                r#"{"errors":[{"title":"limit must be at most 100"}]}"#,
                false,
            ),
            (
                r#"{"errors":[{"code":"HTTP-400","title":"Bad Request"}]}"#,
                false,
            ),
            ("", false),
        ];
        for (body, limit) in cases {
            assert_eq!(
                ApiErrors::decode(body.as_bytes(), &[]).mentions_limit(),
                limit,
                "{body}"
            );
        }
    }

    #[test]
    fn text_bodies_become_one_error_and_html_none() {
        let cases = [
            (
                "XSRF prevention check failed. Possible XSRF discovered.",
                ": XSRF prevention check failed. Possible XSRF discovered.",
            ),
            ("  Bad\r\n   request \t body \n", ": Bad request body"),
            (r#""Entity not found""#, ": Entity not found"),
            (
                r#"{"Message":"An error has occurred."}"#,
                ": An error has occurred.",
            ),
            (
                r#"{"errors":[{"code":"X-1","title":"Qlik Cloud form"}]}"#,
                ": Qlik Cloud form (X-1)",
            ),
            ("<html><body>502 Bad Gateway</body></html>", ""),
            ("", ""),
            ("   ", ""),
            ("[1,2]", ""),
            (r#"{"other":1}"#, ""),
        ];
        for (body, shown) in cases {
            assert_eq!(
                ApiErrors::decode_text(body.as_bytes(), &[]).to_string(),
                shown,
                "{body:?}"
            );
        }
        assert_eq!(
            ApiErrors::decode_text(&[0xff, 0xfe, b'x'], &[]),
            ApiErrors::default()
        );
    }

    #[test]
    fn text_bodies_are_scrubbed_as_written_and_json_escaped_before_they_are_cut() {
        let secret = r#"pa"ss\word"#;
        let body = format!(
            r#"refused {{"password":"pa\"ss\\word"}} and {secret} {}"#,
            "x".repeat(2000)
        );
        let errors = ApiErrors::decode_text(body.as_bytes(), &[secret]);
        let shown = format!("{errors} {errors:?}");
        assert!(!shown.contains("ss\\"), "{shown}");
        assert!(!shown.contains(r#"pa\""#), "{shown}");
        assert_eq!(shown.matches("[REDACTED]").count(), 4, "{shown}");
        let stored = errors.0[0].title.as_deref().unwrap_or_default();
        assert!(stored.chars().count() <= MAX_STORED_CHARS + 1);
    }
}
