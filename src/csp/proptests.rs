//! Property tests of the origin parser and the header compiler: an origin is rejected or
//! kept exactly as written; any set of valid entries compiles to a header that parses back
//! to exactly their sources; and one more entry changes the header by its own origin only.

use std::collections::{BTreeMap, BTreeSet};

use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use super::header::{self, BaseDirectives, Grant, HeaderError};
use super::origin::{Origin, OriginError, SCHEMES};
use super::{Directive, policy};

/// Characters that make origins interesting: every class the grammar cares about.
fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::sample::select(
            "abcXYZ019-.*:/@?#[]_;,'\" \t\r\n\u{b}\u{c}\\$`{}".chars().collect::<Vec<_>>()
        ),
        1 => prop::sample::select(vec!['\u{85}', '\u{a0}', '\u{2028}', '\u{2029}', '\u{e9}', '\u{0}', '\u{7f}']),
        1 => any::<char>(),
    ]
}

fn label() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?"
}

/// A host under a registrable domain: labels, then a domain no list names (`qz…`), then
/// a real public suffix.
fn registrable_host() -> impl Strategy<Value = String> {
    (
        vec(label(), 0..3),
        "qz[a-z0-9]{1,9}",
        prop::sample::select(vec!["com", "co.uk", "org", "de", "example.github.io"]),
    )
        .prop_map(|(labels, domain, suffix)| {
            let mut parts = labels;
            parts.push(domain);
            parts.push(suffix.to_owned());
            parts.join(".")
        })
}

/// A valid origin by construction.
fn valid_origin() -> impl Strategy<Value = String> {
    (
        prop::option::of((prop::sample::select(SCHEMES.to_vec()), any::<bool>())),
        any::<bool>(),
        registrable_host(),
        prop::option::of(prop_oneof![
            Just("*".to_owned()),
            (1u16..=65535).prop_map(|p| p.to_string())
        ]),
    )
        .prop_map(|(scheme, wildcard, host, port)| {
            let mut origin = String::new();
            if let Some((scheme, upper)) = scheme {
                let scheme = if upper {
                    scheme.to_uppercase()
                } else {
                    scheme.to_owned()
                };
                origin.push_str(&scheme);
                origin.push_str("://");
            }
            if wildcard {
                origin.push_str("*.");
            }
            origin.push_str(&host);
            if let Some(port) = port {
                origin.push(':');
                origin.push_str(&port);
            }
            origin
        })
}

fn directives() -> impl Strategy<Value = BTreeSet<Directive>> {
    btree_set(prop::sample::select(Directive::ALL.to_vec()), 1..4)
}

fn grant() -> impl Strategy<Value = Grant> {
    (valid_origin(), directives(), any::<bool>()).prop_map(|(origin, directives, ws)| Grant {
        origin: Origin::parse(&origin).unwrap_or_else(|e| panic!("{origin}: {e}")),
        directives,
        allow_web_socket: ws,
    })
}

fn base() -> impl Strategy<Value = BaseDirectives> {
    let names = prop::sample::select(vec![
        "default-src",
        "img-src",
        "script-src",
        "connect-src",
        "upgrade-insecure-requests",
        "base-uri",
    ]);
    let source = prop_oneof![
        prop::sample::select(vec![
            "'self'",
            "'none'",
            "data:",
            "blob:",
            "https:",
            "'nonce-abc+/='",
            "*"
        ])
        .prop_map(str::to_owned),
        valid_origin(),
    ];
    btree_map(names.prop_map(str::to_owned), btree_set(source, 0..4), 0..4).prop_map(|map| {
        map.into_iter()
            .map(|(name, sources)| (name, sources.into_iter().collect()))
            .collect()
    })
}

/// What a header must hold for `base` plus `grants`: each directive's sources as a set.
fn expected(base: &BaseDirectives, grants: &[Grant]) -> BTreeMap<String, BTreeSet<String>> {
    let mut expected: BTreeMap<String, BTreeSet<String>> = base
        .iter()
        .map(|(name, sources)| (name.clone(), sources.iter().cloned().collect()))
        .collect();
    for grant in grants {
        for directive in &grant.directives {
            let sources = expected.entry(directive.name().to_owned()).or_default();
            sources.insert(grant.origin.as_str().to_owned());
        }
        if grant.allow_web_socket {
            let sources = expected.entry("connect-src".to_owned()).or_default();
            sources.insert(format!("wss://{}", grant.origin.authority()));
        }
    }
    expected
}

/// A compiled header, parsed back: each directive's sources as a set (duplicates fail).
fn parsed(value: &str) -> BTreeMap<String, BTreeSet<String>> {
    let policy = policy::parse(value).unwrap_or_else(|e| panic!("{value:?}: {e}"));
    policy
        .into_iter()
        .map(|(name, sources)| {
            let set: BTreeSet<String> = sources.iter().cloned().collect();
            assert_eq!(set.len(), sources.len(), "duplicate source in {value:?}");
            (name, set)
        })
        .collect()
}

proptest! {
    // Failing cases are kept beside this file (proptests.regressions) and replayed first.
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn an_origin_is_rejected_or_kept_exactly_as_written(input in vec(hostile_char(), 0..40).prop_map(String::from_iter)) {
        if let Ok(origin) = Origin::parse(&input) {
            prop_assert_eq!(origin.as_str(), input.as_str());
            // And it is one source expression in a header, nothing more.
            let grant = Grant { origin, directives: BTreeSet::from([Directive::ImgSrc]), allow_web_socket: false };
            let compiled = header::compile(&BaseDirectives::new(), &[grant]).unwrap();
            prop_assert_eq!(parsed(compiled.as_str()), BTreeMap::from([("img-src".to_owned(), BTreeSet::from([input]))]));
        }
    }

    #[test]
    fn an_origin_built_by_the_grammar_is_accepted_exactly(input in valid_origin()) {
        let origin = Origin::parse(&input);
        prop_assert_eq!(origin.map(|o| o.as_str().to_owned()), Ok(input));
    }

    #[test]
    fn a_wildcard_over_a_bare_public_suffix_is_always_refused(
        scheme in prop::option::of(prop::sample::select(SCHEMES.to_vec())),
        suffix in prop::sample::select(vec!["com", "net", "co.uk", "github.io", "com.au", "blogspot.com"]),
        port in prop::option::of(1u16..=65535),
    ) {
        let scheme = scheme.map(|s| format!("{s}://")).unwrap_or_default();
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let input = format!("{scheme}*.{suffix}{port}");
        prop_assert_eq!(Origin::parse(&input), Err(OriginError::PublicSuffixWildcard));
    }

    #[test]
    fn valid_entries_compile_to_a_header_that_parses_back_to_exactly_their_sources(
        base in base(),
        grants in vec(grant(), 0..12),
    ) {
        match header::compile(&base, &grants) {
            Ok(compiled) => {
                prop_assert_eq!(parsed(compiled.as_str()), expected(&base, &grants));
                prop_assert_eq!(header::validate(compiled.as_str()), Ok(compiled));
            }
            Err(HeaderError::TooLong { length }) => prop_assert!(length > header::MAX_LEN),
            // Nothing to write at all: no base directive and no entry.
            Err(HeaderError::Empty) => prop_assert!(base.is_empty() && grants.is_empty()),
            Err(other) => prop_assert!(false, "valid entries failed to compile: {other}"),
        }
    }

    #[test]
    fn one_more_entry_changes_the_header_by_its_own_origin_only(
        base in base(),
        grants in vec(grant(), 0..8),
        extra in grant(),
    ) {
        let before = match header::compile(&base, &grants) {
            Ok(before) => parsed(before.as_str()),
            Err(HeaderError::Empty) => BTreeMap::new(),
            Err(other) => panic!("valid entries failed to compile: {other}"),
        };
        let mut more = grants.clone();
        more.push(extra.clone());
        let after = parsed(header::compile(&base, &more).unwrap().as_str());
        let mut allowed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for directive in &extra.directives {
            allowed.entry(directive.name().to_owned()).or_default().insert(extra.origin.as_str().to_owned());
        }
        if extra.allow_web_socket {
            allowed.entry("connect-src".to_owned()).or_default().insert(format!("wss://{}", extra.origin.authority()));
        }
        for (name, sources) in &after {
            let old = before.get(name).cloned().unwrap_or_default();
            prop_assert!(old.is_subset(sources), "{} lost sources", name);
            let added: BTreeSet<String> = sources.difference(&old).cloned().collect();
            let may = allowed.get(name).cloned().unwrap_or_default();
            prop_assert!(added.is_subset(&may), "{}: added {:?}, only {:?} allowed", name, added, may);
        }
        for name in before.keys() {
            prop_assert!(after.contains_key(name), "{} disappeared", name);
        }
    }
}
