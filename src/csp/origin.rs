//! The one definition of a valid CSP origin: `[scheme://]host[:port]`, with an optional
//! leading `*.` wildcard. Pure.
//!
//! - scheme: `http`, `https`, `ws` or `wss` (any case): the schemes a browser fetches a
//!   CSP-governed subresource or connection over. Scheme-only sources (`https:`, `data:`,
//!   `blob:`), keywords and `javascript:` are not origins.
//! - host: DNS labels of letters, digits and `-` (not first or last), 1–63 characters
//!   each, at most 253 characters in all (after any `*.`). Internationalized names are
//!   written in punycode (`xn--…`). IPv4 addresses are hosts like any other; IPv6 literals
//!   are not (CSP's host-source grammar has none).
//! - port: 1–65,535 without leading zeros, or `*`.
//! - wildcard: `*.` must be followed by a registrable domain, never a whole public suffix
//!   (`*.com`, `*.co.uk`, `*.github.io`), judged by Mozilla's Public Suffix List as
//!   compiled into the `psl` crate (ICANN and private sections).
//!
//! The same rules are enforced at admission by the CRD's CEL rules (see [`crate::api`]),
//! built from the constants below, except the public-suffix rule: CEL has no such list,
//! so for it the parser alone decides, and the `csp-entry` controller reports the
//! rejection on the entry (`Ready=False`, reason `InvalidSpec`) and syncs nothing
//! ([`OriginError::checked_at_admission`]). [`ADMISSION_CASES`] is the shared table that
//! the unit tests here and the integration tests on a real apiserver both run.

use std::fmt;

/// Qlik's limit on the `origin` field of a CSP entry.
pub const MAX_LEN: usize = 256;
/// The longest host (after any `*.`), as DNS allows.
pub const MAX_HOST_LEN: usize = 253;
/// The longest DNS label.
pub const MAX_LABEL_LEN: usize = 63;
/// The schemes an origin may name (compared case-insensitively).
pub const SCHEMES: [&str; 4] = ["http", "https", "ws", "wss"];

/// CEL: anything outside visible ASCII, and the characters that could end a source
/// expression or a directive in a header.
pub const CEL_NO_FORBIDDEN_CHARACTERS: &str = r#"!self.matches(r"[^!-~]|[;,'\x22]")"#;
/// Message for [`CEL_NO_FORBIDDEN_CHARACTERS`] and [`OriginError::ForbiddenCharacter`].
pub const MSG_FORBIDDEN_CHARACTERS: &str = "origin must be visible ASCII without whitespace, quotes, ';' or ',' (they would break the CSP header); write internationalized names in punycode (xn--)";

/// CEL: nothing after the authority.
pub const CEL_NO_PATH: &str = r#"self.matches(r"^([A-Za-z][A-Za-z0-9+.-]*://)?[^/]*$")"#;
/// Message for [`CEL_NO_PATH`] and [`OriginError::Path`].
pub const MSG_NO_PATH: &str =
    "origin must not contain a path: use [scheme://]host[:port], e.g. https://cdn.example.com";

/// CEL: a scheme, if any, is one of [`SCHEMES`].
pub const CEL_SCHEME: &str = r#"!self.contains("://") || self.matches(r"^(?i:https?|wss?)://")"#;
/// Message for [`CEL_SCHEME`] and [`OriginError::Scheme`].
pub const MSG_SCHEME: &str = "origin scheme must be http, https, ws or wss";

/// CEL: the whole grammar, label lengths and port range included.
pub const CEL_GRAMMAR: &str = r#"self.matches(r"^([A-Za-z][A-Za-z0-9+.-]*://)?(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(:(\*|[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?$")"#;
/// Message for [`CEL_GRAMMAR`] and [`OriginError::Malformed`].
pub const MSG_GRAMMAR: &str = "origin must be [scheme://]host[:port] with an optional leading '*.' (e.g. https://*.example.com:8443); hosts are labels of 1-63 letters, digits and '-'; ports are 1-65535 or '*'";

/// CEL: the host (between `scheme://` and `:port`, after any `*.`) is at most
/// [`MAX_HOST_LEN`] characters.
pub const CEL_HOST_LENGTH: &str = r#"size((self.contains("://") ? self.split("://")[1] : self).split(":")[0]) - ((self.contains("://") ? self.split("://")[1] : self).startsWith("*.") ? 2 : 0) <= 253"#;
/// Message for [`CEL_HOST_LENGTH`] and [`OriginError::HostTooLong`].
pub const MSG_HOST_LENGTH: &str = "origin host must be at most 253 characters";

/// Message for [`OriginError::PublicSuffixWildcard`] (the parser's rule; no CEL).
pub const MSG_PUBLIC_SUFFIX: &str = "origin wildcard must not cover a whole public suffix such as *.com, *.co.uk or *.github.io: write *.<a domain you control>";

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
    /// The origin contains whitespace, a quote, `;`, `,`, or anything not visible ASCII.
    #[error("{}", MSG_FORBIDDEN_CHARACTERS)]
    ForbiddenCharacter,
    /// The origin has a path (or a trailing `/`).
    #[error("{}", MSG_NO_PATH)]
    Path,
    /// The scheme is not one of [`SCHEMES`].
    #[error("{}", MSG_SCHEME)]
    Scheme,
    /// The origin does not follow `[scheme://]host[:port]`.
    #[error("{}", MSG_GRAMMAR)]
    Malformed,
    /// The host is longer than DNS allows.
    #[error("{}", MSG_HOST_LENGTH)]
    HostTooLong,
    /// `*.` followed by a public suffix: it would allow every site under it.
    #[error("{}", MSG_PUBLIC_SUFFIX)]
    PublicSuffixWildcard,
}

impl OriginError {
    /// Whether the CRD's CEL rules refuse this at admission. The public-suffix rule needs a
    /// list CEL does not have: an entry that breaks only that rule is admitted and then
    /// refused by the `csp-entry` controller with a condition.
    pub const fn checked_at_admission(self) -> bool {
        !matches!(self, OriginError::PublicSuffixWildcard)
    }
}

impl Origin {
    /// Parses `input` by the rules of this module; the first rule broken is reported.
    /// An accepted origin keeps its spelling exactly (`as_str() == input`).
    pub fn parse(input: &str) -> Result<Origin, OriginError> {
        if input.is_empty() {
            return Err(OriginError::Empty);
        }
        if input.chars().count() > MAX_LEN {
            return Err(OriginError::TooLong);
        }
        if input
            .chars()
            .any(|c| !c.is_ascii_graphic() || matches!(c, ';' | ',' | '\'' | '"'))
        {
            return Err(OriginError::ForbiddenCharacter);
        }
        let authority = strip_scheme(input).unwrap_or(input);
        if authority.contains('/') {
            return Err(OriginError::Path);
        }
        if let Some((scheme, _)) = input.split_once("://")
            && !SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(scheme))
        {
            return Err(OriginError::Scheme);
        }
        let Some((wildcard, host)) = host_of(authority) else {
            return Err(OriginError::Malformed);
        };
        if host.len() > MAX_HOST_LEN {
            return Err(OriginError::HostTooLong);
        }
        if wildcard && is_public_suffix(host) {
            return Err(OriginError::PublicSuffixWildcard);
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

/// `(*.)?label(.label)*(:port|:*)?` → (whether there is a wildcard, the host after it).
fn host_of(authority: &str) -> Option<(bool, &str)> {
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let port_ok = match port {
        None | Some("*") => true,
        Some(p) => {
            !p.starts_with('0')
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u16>().is_ok_and(|n| n >= 1)
        }
    };
    let (wildcard, host) = match host.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, host),
    };
    (port_ok && host.split('.').all(is_label)).then_some((wildcard, host))
}

fn is_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            bytes.len() <= MAX_LABEL_LEN
                && first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

/// Whether `host` is itself a public suffix. Names whose top-level label is not on the
/// list count as one (the list's implicit `*` rule), so `*.internal` is refused too.
fn is_public_suffix(host: &str) -> bool {
    let lower = host.to_ascii_lowercase();
    psl::suffix(lower.as_bytes()).is_none_or(|suffix| suffix.as_bytes().len() >= lower.len())
}

/// Inputs with the verdict both the Rust parser and the apiserver's CEL rules must give
/// (for [`OriginError::PublicSuffixWildcard`]: admitted, then refused by the controller).
pub const ADMISSION_CASES: &[(&str, Result<(), OriginError>)] = &[
    ("https://cdn.example.com", Ok(())),
    ("cdn.example.com", Ok(())),
    ("*.example.com", Ok(())),
    ("https://*.example.com", Ok(())),
    ("https://example.com:8443", Ok(())),
    ("wss://socket.example.com:*", Ok(())),
    ("ws://socket.example.com", Ok(())),
    ("HTTPS://CDN.Example.COM", Ok(())),
    ("http://xn--bcher-kva.example", Ok(())),
    ("localhost:3000", Ok(())),
    ("http://127.0.0.1:8080", Ok(())),
    ("https://example.com:1", Ok(())),
    ("https://example.com:65535", Ok(())),
    ("*.example.co.uk", Ok(())),
    ("https://*.user.github.io", Ok(())),
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
    (
        "https://example.com\u{b}",
        Err(OriginError::ForbiddenCharacter),
    ),
    (
        "https://example.com\u{85}",
        Err(OriginError::ForbiddenCharacter),
    ),
    (
        "https://example.com\u{2028}",
        Err(OriginError::ForbiddenCharacter),
    ),
    (
        "https://example.com\u{a0}",
        Err(OriginError::ForbiddenCharacter),
    ),
    (
        "https://bücher.example",
        Err(OriginError::ForbiddenCharacter),
    ),
    ("ftp://files.example.com", Err(OriginError::Scheme)),
    ("blob://example.com", Err(OriginError::Scheme)),
    ("javascript://example.com", Err(OriginError::Scheme)),
    ("javascript:alert(1)", Err(OriginError::Malformed)),
    ("data:", Err(OriginError::Malformed)),
    ("https:", Err(OriginError::Malformed)),
    ("https://exa_mple.com", Err(OriginError::Malformed)),
    ("https://-example.com", Err(OriginError::Malformed)),
    ("https://example..com", Err(OriginError::Malformed)),
    ("https://example.com.", Err(OriginError::Malformed)),
    ("https://", Err(OriginError::Malformed)),
    ("*", Err(OriginError::Malformed)),
    ("https://*", Err(OriginError::Malformed)),
    ("https://a.*.example.com", Err(OriginError::Malformed)),
    ("https://example.com:port", Err(OriginError::Malformed)),
    ("https://example.com:0", Err(OriginError::Malformed)),
    ("https://example.com:080", Err(OriginError::Malformed)),
    ("https://example.com:65536", Err(OriginError::Malformed)),
    ("https://example.com:99999", Err(OriginError::Malformed)),
    ("https://example.com:", Err(OriginError::Malformed)),
    ("https://user@example.com", Err(OriginError::Malformed)),
    ("https://example.com?q=1", Err(OriginError::Malformed)),
    ("https://example.com#top", Err(OriginError::Malformed)),
    ("https://[::1]:8080", Err(OriginError::Malformed)),
    ("*.com", Err(OriginError::PublicSuffixWildcard)),
    ("*.co.uk", Err(OriginError::PublicSuffixWildcard)),
    ("*.github.io", Err(OriginError::PublicSuffixWildcard)),
    ("https://*.com:*", Err(OriginError::PublicSuffixWildcard)),
    ("https://*.CO.UK", Err(OriginError::PublicSuffixWildcard)),
    ("*.internal", Err(OriginError::PublicSuffixWildcard)),
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
    fn labels_are_at_most_63_characters() {
        let at = |n: usize| format!("https://{}.example.com", "a".repeat(n));
        assert!(Origin::parse(&at(63)).is_ok());
        assert_eq!(Origin::parse(&at(64)), Err(OriginError::Malformed));
    }

    #[test]
    fn hosts_are_at_most_253_characters_after_the_wildcard() {
        // Three labels of 62 and their dots (189), one of `last`, then ".com".
        let host = |last: usize| format!("{0}.{0}.{0}.{1}.com", "a".repeat(62), "b".repeat(last));
        assert_eq!(host(60).len(), MAX_HOST_LEN);
        assert!(Origin::parse(&host(60)).is_ok());
        assert!(Origin::parse(&format!("*.{}", host(60))).is_ok());
        assert_eq!(Origin::parse(&host(61)), Err(OriginError::HostTooLong));
        assert_eq!(
            Origin::parse(&format!("*.{}", host(61))),
            Err(OriginError::HostTooLong)
        );
    }

    #[test]
    fn only_wildcards_over_a_registrable_domain_are_accepted() {
        for ok in [
            "*.example.com",
            "*.example.co.uk",
            "*.acme.github.io",
            "*.svc.cluster.local",
        ] {
            assert!(Origin::parse(ok).is_ok(), "{ok}");
        }
        for suffix in [
            "*.com",
            "*.uk",
            "*.co.uk",
            "*.github.io",
            "*.s3.amazonaws.com",
            "*.local",
            "*.localhost",
        ] {
            assert_eq!(
                Origin::parse(suffix),
                Err(OriginError::PublicSuffixWildcard),
                "{suffix}"
            );
        }
        // Without a wildcard a public suffix names one host, not every site under it.
        assert!(Origin::parse("https://github.io").is_ok());
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
        assert_eq!(o.authority(), "*.Example.com:443");
    }
}
