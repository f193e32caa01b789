//! The headers one publish writes: each header name with its validated value (one, or two
//! with `mode: Both`). Pure.

use sha2::{Digest, Sha256};

use crate::api::header::{HeaderSpec, Policy};
use crate::csp::header::Header;

/// Public facts about one published header value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    pub sha256: String,
    pub length: u32,
    pub origins: u32,
}

impl Facts {
    pub fn of(header: &Header) -> Facts {
        let value = header.as_str();
        Facts {
            sha256: super::publish::header_sha256(value),
            length: u32::try_from(value.chars().count()).unwrap_or(u32::MAX),
            origins: u32::try_from(header.origins()).unwrap_or(u32::MAX),
        }
    }
}

/// The header names and values to publish, the current policy first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publication {
    lines: Vec<Line>,
}

/// One published header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub name: String,
    pub policy: Policy,
    pub header: Header,
}

impl Publication {
    /// Pairs `spec`'s header names with the current policy and, with `mode: Both`, the
    /// candidate one; `None` when the candidate is needed and missing.
    pub fn new(spec: &HeaderSpec, current: Header, candidate: Option<Header>) -> Option<Self> {
        let lines = spec
            .lines()
            .into_iter()
            .map(|line| {
                let header = match line.policy {
                    Policy::Current => Some(current.clone()),
                    Policy::Candidate => candidate.clone(),
                };
                header.map(|header| Line {
                    name: line.name,
                    policy: line.policy,
                    header,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Publication { lines })
    }

    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// The value of the current policy (what `status.header` describes).
    pub fn current(&self) -> Option<&Header> {
        self.lines
            .iter()
            .find(|l| l.policy == Policy::Current)
            .map(|l| &l.header)
    }

    /// The candidate policy's value, with `mode: Both`.
    pub fn candidate(&self) -> Option<&Header> {
        self.lines
            .iter()
            .find(|l| l.policy == Policy::Candidate)
            .map(|l| &l.header)
    }

    /// `(name, value)` of every line.
    pub fn values(&self) -> impl Iterator<Item = (&str, &str)> {
        self.lines
            .iter()
            .map(|l| (l.name.as_str(), l.header.as_str()))
    }

    /// What changes whenever any published name or value does: the SHA-256 of the one
    /// value (as before `mode: Both` existed, so an upgrade rewrites nothing), or of every
    /// `name: value` line.
    pub fn sha256(&self) -> String {
        match self.lines.as_slice() {
            [only] => hex::encode(Sha256::digest(only.header.as_str().as_bytes())),
            lines => {
                let mut hasher = Sha256::new();
                for line in lines {
                    hasher.update(line.name.as_bytes());
                    hasher.update(b": ");
                    hasher.update(line.header.as_str().as_bytes());
                    hasher.update(b"\n");
                }
                hex::encode(hasher.finalize())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csp::header::validate;

    fn spec(mode: &str) -> HeaderSpec {
        serde_json::from_value(serde_json::json!({ "configMapName": "csp", "mode": mode }))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn both_pairs_the_enforced_name_with_current_and_report_only_with_candidate() {
        let current = validate("default-src 'self'").unwrap();
        let candidate = validate("default-src 'none'").unwrap();
        let publication =
            Publication::new(&spec("Both"), current.clone(), Some(candidate.clone())).unwrap();
        let values: Vec<_> = publication.values().collect();
        assert_eq!(
            values,
            [
                ("Content-Security-Policy", "default-src 'self'"),
                ("Content-Security-Policy-Report-Only", "default-src 'none'")
            ]
        );
        assert_eq!(publication.current(), Some(&current));
        assert_eq!(publication.candidate(), Some(&candidate));
        assert!(Publication::new(&spec("Both"), current, None).is_none());
    }

    #[test]
    fn one_line_keeps_the_digest_of_its_value_and_two_lines_digest_both() {
        let current = validate("default-src 'self'").unwrap();
        let one = Publication::new(&spec("Enforce"), current.clone(), None).unwrap();
        assert_eq!(
            one.sha256(),
            crate::controller::tenant::publish::header_sha256("default-src 'self'")
        );
        let both = Publication::new(
            &spec("Both"),
            current.clone(),
            Some(validate("default-src 'none'").unwrap()),
        )
        .unwrap();
        let other = Publication::new(
            &spec("Both"),
            current,
            Some(validate("default-src 'self'; img-src 'self'").unwrap()),
        )
        .unwrap();
        assert_ne!(both.sha256(), one.sha256());
        assert_ne!(both.sha256(), other.sha256());
    }
}
