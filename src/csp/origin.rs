//! The one definition of a valid CSP origin: `[scheme://]host[:port]`, with an optional
//! leading `*.` wildcard. Pure.
//!
//! The same rules are enforced at admission by the CRD's CEL rules (see [`crate::api`]),
//! which are built from the constants below; [`ADMISSION_CASES`] is the shared table that
//! the unit tests here and the integration tests on a real apiserver both run.

use std::fmt;

/// Qlik's limit on the `origin` field of a CSP entry.
pub const MAX_LEN: usize = 256;

/// CEL: characters that could end a source expression or a directive in a header.
pub const CEL_NO_FORBIDDEN_CHARACTERS: &str = r#"!self.matches(r"[\s;,'\x22]")"#;
/// Message for [`CEL_NO_FORBIDDEN_CHARACTERS`] and [`OriginError::ForbiddenCharacter`].
pub const MSG_FORBIDDEN_CHARACTERS: &str =
    "origin must not contain whitespace, quotes, ';' or ',' (they would break the CSP header)";

/// CEL: nothing after the authority.
pub const CEL_NO_PATH: &str = r#"self.matches(r"^([A-Za-z][A-Za-z0-9+.-]*://)?[^/]*$")"#;
/// Message for [`CEL_NO_PATH`] and [`OriginError::Path`].
pub const MSG_NO_PATH: &str =
    "origin must not contain a path: use [scheme://]host[:port], e.g. https://cdn.example.com";

/// CEL: the whole grammar.
pub const CEL_GRAMMAR: &str = r#"self.matches(r"^([A-Za-z][A-Za-z0-9+.-]*://)?(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*(:([0-9]{1,5}|\*))?$")"#;
/// Message for [`CEL_GRAMMAR`] and [`OriginError::Malformed`].
pub const MSG_GRAMMAR: &str = "origin must be [scheme://]host[:port] with an optional leading '*.' (e.g. https://*.example.com:8443); hosts are ASCII labels of letters, digits and '-'";

/// A validated origin, as it will appear in a CSP header.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin(String);

/// Why a string is not a valid origin. Messages match the CRD's CEL messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    /// The origin is empty.
    #[error("origin must not be empty")]
    Empty,
    /// The origin is longer than Qlik accepts.
    #[error("origin must be at most 256 characters")]
    TooLong,
    /// The origin contains whitespace, a quote, `;` or `,`.
    #[error("{}", MSG_FORBIDDEN_CHARACTERS)]
    ForbiddenCharacter,
    /// The origin has a path (or a trailing `/`).
    #[error("{}", MSG_NO_PATH)]
    Path,
    /// The origin does not follow `[scheme://]host[:port]`.
    #[error("{}", MSG_GRAMMAR)]
    Malformed,
}

impl Origin {
    /// Parses `input` by the rules of this module; the first rule broken is reported.
    pub fn parse(input: &str) -> Result<Origin, OriginError> {
        if input.is_empty() {
            return Err(OriginError::Empty);
        }
        if input.chars().count() > MAX_LEN {
            return Err(OriginError::TooLong);
        }
        if input
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, ';' | ',' | '\'' | '"'))
        {
            return Err(OriginError::ForbiddenCharacter);
        }
        let authority = strip_scheme(input).unwrap_or(input);
        if authority.contains('/') {
            return Err(OriginError::Path);
        }
        if !is_host_and_port(authority) {
            return Err(OriginError::Malformed);
        }
        Ok(Origin(input.to_owned()))
    }

    /// The origin exactly as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The origin without its scheme, e.g. `cdn.example.com:8443`.
    pub fn authority(&self) -> &str {
        strip_scheme(&self.0).unwrap_or(&self.0)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `scheme://rest` → `rest`, when the scheme is `[A-Za-z][A-Za-z0-9+.-]*`.
fn strip_scheme(input: &str) -> Option<&str> {
    let (scheme, rest) = input.split_once("://")?;
    let mut chars = scheme.chars();
    let first_is_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'));
    (first_is_letter && rest_ok).then_some(rest)
}

/// `(*.)?label(.label)*(:port|:*)?`
fn is_host_and_port(authority: &str) -> bool {
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let port_ok = match port {
        None => true,
        Some("*") => true,
        Some(p) => (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()),
    };
    let host = host.strip_prefix("*.").unwrap_or(host);
    port_ok && !host.is_empty() && host.split('.').all(is_label)
}

fn is_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

/// Inputs with the verdict both the Rust parser and the apiserver's CEL rules must give.
pub const ADMISSION_CASES: &[(&str, Result<(), OriginError>)] = &[
    ("https://cdn.example.com", Ok(())),
    ("cdn.example.com", Ok(())),
    ("*.example.com", Ok(())),
    ("https://*.example.com", Ok(())),
    ("https://example.com:8443", Ok(())),
    ("wss://socket.example.com:*", Ok(())),
    ("localhost:3000", Ok(())),
    ("http://127.0.0.1:8080", Ok(())),
    ("https://example.com/path", Err(OriginError::Path)),
    ("https://example.com/", Err(OriginError::Path)),
    ("example.com/a", Err(OriginError::Path)),
    (
        "https://example.com;script-src",
        Err(OriginError::ForbiddenCharacter),
    ),
    (
        "https://example.com 'unsafe-inline'",
        Err(OriginError::ForbiddenCharacter),
    ),
    ("https://exa'mple.com", Err(OriginError::ForbiddenCharacter)),
    (
        "https://exa\"mple.com",
        Err(OriginError::ForbiddenCharacter),
    ),
    (
        "https://example.com,https://evil.com",
        Err(OriginError::ForbiddenCharacter),
    ),
    (
        "https://example.com\nX-Injected: 1",
        Err(OriginError::ForbiddenCharacter),
    ),
    (
        "https://example.com\tfoo",
        Err(OriginError::ForbiddenCharacter),
    ),
    ("https://exa_mple.com", Err(OriginError::Malformed)),
    ("https://-example.com", Err(OriginError::Malformed)),
    ("https://example..com", Err(OriginError::Malformed)),
    ("https://", Err(OriginError::Malformed)),
    ("*", Err(OriginError::Malformed)),
    ("https://example.com:port", Err(OriginError::Malformed)),
    ("https://bücher.example", Err(OriginError::Malformed)),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_agrees_with_the_admission_table() {
        for (input, expected) in ADMISSION_CASES {
            assert_eq!(
                Origin::parse(input).map(|_| ()),
                *expected,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn length_is_capped_at_qlik_limit() {
        let label = "a".repeat(60);
        let ok = format!("https://{label}.{label}.{label}.{}.com", "b".repeat(61));
        assert_eq!(ok.len(), MAX_LEN);
        assert!(Origin::parse(&ok).is_ok());
        assert_eq!(Origin::parse(&format!("{ok}x")), Err(OriginError::TooLong));
    }

    #[test]
    fn empty_is_rejected() {
        assert_eq!(Origin::parse(""), Err(OriginError::Empty));
    }

    #[test]
    fn a_parsed_origin_keeps_its_spelling() {
        let o = Origin::parse("https://*.Example.com:443").unwrap();
        assert_eq!(o.as_str(), "https://*.Example.com:443");
        assert_eq!(o.to_string(), "https://*.Example.com:443");
    }
}
