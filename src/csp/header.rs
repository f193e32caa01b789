//! Compiles and validates Content-Security-Policy header values. Pure.
//!
//! A compiled header is deterministic: the same base directives and grants give the same
//! bytes whatever order they come in (directives in a fixed order, origins sorted and
//! deduplicated). Nothing a user writes can add a directive or a header line: origins are
//! [`Origin`]s (no whitespace, `;`, `,` or quotes) and base sources are checked by the
//! same grammar ([`super::policy`]) that every header, the tenant's included, must pass
//! before it is published.

use std::collections::{BTreeMap, BTreeSet};

use super::policy::{self, check_name, check_source};
use super::{Directive, Origin};

/// Qlik's cap on a tenant's compiled header, in characters.
pub const MAX_LEN: usize = 6144;

/// Directive name → sources, e.g. `default-src` → `['self']`. A directive with no sources
/// (e.g. `upgrade-insecure-requests`) is written as its bare name.
pub type BaseDirectives = BTreeMap<String, Vec<String>>;

/// One allow-listed origin and the directives it may serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub origin: Origin,
    pub directives: BTreeSet<Directive>,
    /// Also allow `wss://<authority>` under `connect-src` (Qlik's `connectSrcWSS`).
    pub allow_web_socket: bool,
}

/// A header value that passed [`compile`] or [`validate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    value: String,
    origins: usize,
}

impl Header {
    pub fn as_str(&self) -> &str {
        &self.value
    }

    pub fn into_string(self) -> String {
        self.value
    }

    /// Number of distinct sources other than quoted keywords (`'self'`, `'none'`, ...): the
    /// allow-listed origins plus scheme sources such as `data:`.
    pub fn origins(&self) -> usize {
        self.origins
    }
}

/// Why a header cannot be published.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Longer than Qlik allows (and than some proxies accept).
    #[error("the header is {length} characters long; the limit is {MAX_LEN}")]
    TooLong { length: usize },
    /// A character outside the header grammar: a control character, anything not ASCII,
    /// or one of `"` `\` `$` `{` `}` `` ` `` `,`.
    #[error(
        "the header has {character:?} at character {index}: a header is visible ASCII and single spaces, without any of \" \\ $ {{ }} ` ,"
    )]
    InvalidCharacter { index: usize, character: char },
    /// A space at the start or end, two in a row, or before a `;`.
    #[error(
        "the header has a stray space at character {index}: directives are separated by '; ' and sources by one space"
    )]
    Spacing { index: usize },
    /// Nothing between two `;` (or before the first).
    #[error("the header has an empty directive at character {index}")]
    EmptyDirective { index: usize },
    /// A directive name that is not lowercase letters and `-`.
    #[error(
        "invalid directive name \"{name}\": use lowercase letters and '-' (at most 64), e.g. default-src"
    )]
    InvalidDirectiveName { name: String },
    /// A source that could end its directive or the header, or break a proxy's configuration.
    #[error(
        "invalid source \"{source_expression}\" in {directive}: a source is visible ASCII without spaces or any of ; , \" \\ $ {{ }} `"
    )]
    InvalidSource {
        directive: String,
        source_expression: String,
    },
    /// A `report-uri` that is not a URL, or a `report-to` that is not one endpoint name.
    #[error("invalid {directive}: {detail}")]
    InvalidReporting { directive: String, detail: String },
    /// The same directive twice (browsers ignore all but the first).
    #[error("directive {name} appears more than once")]
    DuplicateDirective { name: String },
    /// No directive at all.
    #[error("the header is empty")]
    Empty,
}

/// The directives the emulated tenant always includes. Qlik does not publish its exact
/// defaults; this follows the shape its console shows: everything from the tenant itself.
pub fn tenant_base() -> BaseDirectives {
    let mut base = BaseDirectives::new();
    base.insert("default-src".to_owned(), vec!["'self'".to_owned()]);
    for directive in Directive::ALL {
        base.insert(directive.name().to_owned(), vec!["'self'".to_owned()]);
    }
    base
}

/// Compiles `base` plus every grant into one header value.
///
/// Order: `default-src` first, then the other directives by name; within a directive, the
/// base sources in the given order, then the granted origins sorted, without duplicates.
pub fn compile(base: &BaseDirectives, grants: &[Grant]) -> Result<Header, HeaderError> {
    let mut directives: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, sources) in base {
        check_name(name)?;
        for source in sources {
            check_source(name, source)?;
        }
        directives.insert(name.as_str(), sources.clone());
    }

    let mut granted: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    for grant in grants {
        for directive in &grant.directives {
            granted
                .entry(directive.name())
                .or_default()
                .insert(grant.origin.as_str().to_owned());
        }
        if grant.allow_web_socket {
            let name = Directive::ConnectSrc.name();
            granted
                .entry(name)
                .or_default()
                .insert(format!("wss://{}", grant.origin.authority()));
        }
    }
    for (name, origins) in granted {
        let sources = directives.entry(name).or_default();
        for origin in origins {
            if !sources.contains(&origin) {
                sources.push(origin);
            }
        }
    }

    let ordered = directives
        .iter()
        .filter(|(name, _)| **name == "default-src")
        .chain(
            directives
                .iter()
                .filter(|(name, _)| **name != "default-src"),
        );
    let value = ordered
        .map(|(name, sources)| {
            std::iter::once(*name)
                .chain(sources.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("; ");
    validate(&value)
}

/// Checks a header value (ours or the tenant's) before it is published: at most
/// [`MAX_LEN`] characters, and the grammar of [`super::policy`].
pub fn validate(value: &str) -> Result<Header, HeaderError> {
    let length = value.chars().count();
    if length > MAX_LEN {
        return Err(HeaderError::TooLong { length });
    }
    let parsed = policy::parse(value)?;
    let origins: BTreeSet<&str> = parsed
        .iter()
        .flat_map(|(_, sources)| sources)
        .map(String::as_str)
        .filter(|source| !source.starts_with('\''))
        .collect();
    Ok(Header {
        value: value.to_owned(),
        origins: origins.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(origin: &str, directives: &[Directive], web_socket: bool) -> Grant {
        Grant {
            origin: Origin::parse(origin).unwrap(),
            directives: directives.iter().copied().collect(),
            allow_web_socket: web_socket,
        }
    }

    fn base(pairs: &[(&str, &[&str])]) -> BaseDirectives {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn compile_puts_default_src_first_then_directives_by_name_with_sorted_origins() {
        let grants = [
            grant(
                "https://b.example.com",
                &[Directive::ScriptSrc, Directive::ImgSrc],
                false,
            ),
            grant("https://a.example.com", &[Directive::ScriptSrc], false),
        ];
        let header = compile(
            &base(&[("script-src", &["'self'"]), ("default-src", &["'self'"])]),
            &grants,
        )
        .unwrap();
        assert_eq!(
            header.as_str(),
            "default-src 'self'; img-src https://b.example.com; script-src 'self' https://a.example.com https://b.example.com"
        );
        assert_eq!(header.origins(), 2);
    }

    #[test]
    fn compile_is_byte_identical_whatever_the_order_of_grants() {
        let mut grants = vec![
            grant(
                "https://a.example.com",
                &[Directive::ScriptSrc, Directive::StyleSrc],
                true,
            ),
            grant("*.cdn.example.com", &[Directive::ImgSrc], false),
            grant(
                "https://c.example.com:8443",
                &[Directive::FrameAncestors],
                false,
            ),
        ];
        let first = compile(&tenant_base(), &grants).unwrap();
        grants.reverse();
        assert_eq!(compile(&tenant_base(), &grants).unwrap(), first);
    }

    #[test]
    fn the_same_origin_granted_twice_appears_once() {
        let grants = [
            grant("https://a.example.com", &[Directive::ImgSrc], false),
            grant(
                "https://a.example.com",
                &[Directive::ImgSrc, Directive::FontSrc],
                false,
            ),
        ];
        let header = compile(&BaseDirectives::new(), &grants).unwrap();
        assert_eq!(
            header.as_str(),
            "font-src https://a.example.com; img-src https://a.example.com"
        );
    }

    #[test]
    fn web_socket_grants_add_a_wss_source_for_the_authority_under_connect_src() {
        let grants = [grant(
            "https://live.example.com:8443",
            &[Directive::ScriptSrc],
            true,
        )];
        let header = compile(&BaseDirectives::new(), &grants).unwrap();
        assert_eq!(
            header.as_str(),
            "connect-src wss://live.example.com:8443; script-src https://live.example.com:8443"
        );
    }

    #[test]
    fn a_base_directive_without_sources_is_written_as_its_bare_name() {
        let header = compile(
            &base(&[
                ("upgrade-insecure-requests", &[]),
                ("default-src", &["'none'"]),
            ]),
            &[],
        )
        .unwrap();
        assert_eq!(
            header.as_str(),
            "default-src 'none'; upgrade-insecure-requests"
        );
    }

    #[test]
    fn base_sources_cannot_inject_a_directive_or_a_header_line() {
        for bad in [
            "'self'; script-src *",
            "a,b",
            "a\r\nX-Evil: 1",
            "",
            "caf\u{e9}",
        ] {
            let result = compile(&base(&[("default-src", &[bad])]), &[]);
            assert!(
                matches!(result, Err(HeaderError::InvalidSource { .. })),
                "{bad:?} gave {result:?}"
            );
        }
        let result = compile(&base(&[("Script-Src", &["'self'"])]), &[]);
        assert!(matches!(
            result,
            Err(HeaderError::InvalidDirectiveName { .. })
        ));
    }

    #[test]
    fn a_header_over_the_limit_is_refused() {
        let grants: Vec<Grant> = (0..256)
            .map(|i| {
                grant(
                    &format!("https://origin-{i:03}.a-rather-long-domain-name.example.com"),
                    &[Directive::ScriptSrc],
                    false,
                )
            })
            .collect();
        let result = compile(&tenant_base(), &grants);
        assert!(
            matches!(result, Err(HeaderError::TooLong { length }) if length > MAX_LEN),
            "{result:?}"
        );
    }

    #[test]
    fn validate_accepts_a_tenant_header_and_counts_its_origins() {
        let header = validate("default-src 'self'; img-src 'self' https://a.example.com data:; frame-ancestors 'self' https://a.example.com").unwrap();
        assert_eq!(header.origins(), 2);
    }

    #[test]
    fn validate_rejects_duplicates_line_breaks_metacharacters_and_empty_values() {
        assert!(matches!(
            validate("img-src a; img-src b"),
            Err(HeaderError::DuplicateDirective { .. })
        ));
        assert_eq!(
            validate("default-src 'self';\r\nimg-src x"),
            Err(HeaderError::InvalidCharacter {
                index: 19,
                character: '\r'
            })
        );
        assert!(matches!(
            validate("default-src 'self' ${x}"),
            Err(HeaderError::InvalidCharacter { character: '$', .. })
        ));
        assert!(matches!(validate(" ; "), Err(HeaderError::Spacing { .. })));
        assert_eq!(validate(""), Err(HeaderError::Empty));
    }

    #[test]
    fn every_compiled_header_passes_validation_unchanged() {
        let grants = [
            grant("https://a.example.com", &[Directive::ScriptSrc], true),
            grant("*.cdn.example.com:*", &[Directive::ImgSrc], false),
        ];
        let compiled = compile(&tenant_base(), &grants).unwrap();
        assert_eq!(validate(compiled.as_str()), Ok(compiled));
    }

    #[test]
    fn the_length_limit_counts_characters_and_is_inclusive() {
        let fill = |n: usize| format!("img-src {}", "a".repeat(n - "img-src ".len()));
        assert!(validate(&fill(MAX_LEN)).is_ok());
        assert_eq!(
            validate(&fill(MAX_LEN + 1)),
            Err(HeaderError::TooLong {
                length: MAX_LEN + 1
            })
        );
    }
}
