//! The tenant host allow-list: which hosts a `QlikTenant` may point the operator at. Pure.
//!
//! Whoever can create a `QlikTenant` chooses where the operator sends the credential it
//! reads from a Secret; without this list, a namespace user could point a tenant at their
//! own server and collect a credential of someone else's tenant. So the host is checked
//! before the Secret is even read.
//!
//! A pattern is either an exact host (`acme.eu.qlikcloud.com`, `127.0.0.1`) or a leading
//! `*.` wildcard (`*.qlikcloud.com`) that matches any host ending in `.qlikcloud.com` at a
//! label boundary (one or more labels: `acme.eu.qlikcloud.com` too) but not
//! `qlikcloud.com` itself nor `evilqlikcloud.com`. Matching is case-insensitive and ignores
//! a trailing dot and the port. No other wildcard is accepted.

use std::fmt;

/// Qlik's public cloud domains: Qlik Cloud (`<tenant>.<region>.qlikcloud.com`) and Qlik
/// Cloud Government (`<tenant>.us.qlikcloudgov.com`). Staging domains (`qlik-stage.com`)
/// are deliberately absent: they are not customer tenants.
pub const QLIK_CLOUD_HOSTS: &[&str] = &["*.qlikcloud.com", "*.qlikcloudgov.com"];

/// A pattern that is neither a host nor a leading `*.` wildcard.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid allowed host {pattern:?}: {problem}")]
pub struct PatternError {
    pub pattern: String,
    pub problem: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    /// Exactly this host (lowercase, no trailing dot).
    Exact(String),
    /// Any host ending in `.` + this suffix (lowercase, no trailing dot).
    Subdomains(String),
}

/// The allow-list.
#[derive(Clone, PartialEq, Eq)]
pub struct AllowedHosts {
    patterns: Vec<Pattern>,
    /// The patterns as given, for messages.
    display: Vec<String>,
}

impl AllowedHosts {
    /// Parses patterns; empty items (from `a,,b`) are skipped.
    pub fn parse<I, S>(patterns: I) -> Result<AllowedHosts, PatternError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut allowed = AllowedHosts {
            patterns: Vec::new(),
            display: Vec::new(),
        };
        for raw in patterns {
            let raw = raw.as_ref().trim();
            if raw.is_empty() {
                continue;
            }
            allowed.patterns.push(parse_pattern(raw)?);
            allowed.display.push(raw.to_owned());
        }
        Ok(allowed)
    }

    /// Whether `host` (a URL's host, without the port) is allowed.
    pub fn allows(&self, host: &str) -> bool {
        let host = normalize(host);
        if host.is_empty() {
            return false;
        }
        self.patterns.iter().any(|pattern| match pattern {
            Pattern::Exact(exact) => host == *exact,
            Pattern::Subdomains(suffix) => host
                .strip_suffix(suffix.as_str())
                .and_then(|rest| rest.strip_suffix('.'))
                .is_some_and(|label| !label.is_empty() && !label.ends_with('.')),
        })
    }
}

impl Default for AllowedHosts {
    /// [`QLIK_CLOUD_HOSTS`].
    fn default() -> Self {
        AllowedHosts {
            patterns: QLIK_CLOUD_HOSTS
                .iter()
                .filter_map(|p| parse_pattern(p).ok())
                .collect(),
            display: QLIK_CLOUD_HOSTS.iter().map(|p| (*p).to_owned()).collect(),
        }
    }
}

impl fmt::Display for AllowedHosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display.join(","))
    }
}

impl fmt::Debug for AllowedHosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AllowedHosts({self})")
    }
}

fn normalize(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

fn parse_pattern(raw: &str) -> Result<Pattern, PatternError> {
    let error = |problem| PatternError {
        pattern: raw.to_owned(),
        problem,
    };
    let (wildcard, host) = match raw.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    let host = normalize(host);
    if host.contains('*') {
        return Err(error("a wildcard is only allowed as a leading `*.` label"));
    }
    if host.is_empty() || host.split('.').any(str::is_empty) {
        return Err(error("empty host or label"));
    }
    if host.contains(['/', ':', '@', ' ']) && !host.starts_with('[') {
        return Err(error("give a host name only, without scheme, port or path"));
    }
    if wildcard && !host.contains('.') {
        return Err(error("a wildcard needs a domain of at least two labels"));
    }
    Ok(if wildcard {
        Pattern::Subdomains(host)
    } else {
        Pattern::Exact(host)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(patterns: &[&str]) -> AllowedHosts {
        AllowedHosts::parse(patterns).unwrap()
    }

    #[test]
    fn the_default_allows_qlik_cloud_tenants_in_every_region_and_nothing_else() {
        let allowed = AllowedHosts::default();
        for host in [
            "acme.eu.qlikcloud.com",
            "acme.us.qlikcloud.com",
            "ACME.AP.QlikCloud.com",
            "acme.qlikcloud.com",
            "acme.eu.qlikcloud.com.",
            "agency.us.qlikcloudgov.com",
        ] {
            assert!(allowed.allows(host), "{host}");
        }
        for host in [
            "qlikcloud.com",
            "evilqlikcloud.com",
            "acme.evilqlikcloud.com",
            "qlikcloud.com.evil.example",
            "acme.eu.qlik-stage.com",
            "127.0.0.1",
            "localhost",
            "",
        ] {
            assert!(!allowed.allows(host), "{host}");
        }
    }

    #[test]
    fn exact_hosts_match_only_themselves_case_insensitively() {
        let allowed = list(&["Qlik.Example.com", "127.0.0.1"]);
        assert!(allowed.allows("qlik.example.com"));
        assert!(allowed.allows("127.0.0.1"));
        assert!(!allowed.allows("a.qlik.example.com"));
        assert!(!allowed.allows("example.com"));
        assert!(!allowed.allows("127.0.0.10"));
    }

    #[test]
    fn a_wildcard_never_matches_an_empty_label() {
        let allowed = list(&["*.example.com"]);
        assert!(!allowed.allows(".example.com"));
        assert!(!allowed.allows("a..example.com"));
        assert!(allowed.allows("a.b.example.com"));
    }

    #[test]
    fn wildcards_elsewhere_and_urls_are_rejected() {
        for bad in [
            "*",
            "*.com",
            "a.*.com",
            "*example.com",
            "https://a.example.com",
            "a.example.com:443",
            "a..com",
        ] {
            assert!(AllowedHosts::parse([bad]).is_err(), "{bad}");
        }
        assert_eq!(
            AllowedHosts::parse(["a.com", " ", ""]).unwrap().to_string(),
            "a.com"
        );
    }
}
