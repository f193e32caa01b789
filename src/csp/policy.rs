//! The one grammar every published header value follows, whoever wrote it (the tenant's
//! `generate-header` or the local compiler), and the header name it is published under.
//! Pure.
//!
//! ```text
//! header    = directive *( ";" SP directive ) [ ";" ]
//! directive = name *( SP source )
//! name      = %x61-7A *( %x61-7A / "-" )         ; lowercase letters and '-', e.g. img-src
//! source    = 1*source-char
//! source-char = visible ASCII except ";" "," DQUOTE "\" "$" "{" "}" "`"
//! ```
//!
//! That is: visible ASCII and single spaces only. No control character (CR, LF, VT, FF),
//! no non-ASCII separator (NEL, U+2028, NBSP) and no tab can split a header line or
//! smuggle a directive past a proxy that trims differently than the operator; no `,`
//! (it starts a second policy); and none of the characters nginx gives a meaning in its
//! configuration (`"` `\` `$` `{` `}` `` ` ``): ingress-nginx checks header names, not
//! values. The CRD's CEL rules for `baseDirectives` are built from the same character
//! classes ([`CEL_SOURCE`], [`CEL_DIRECTIVE_NAME`]).

use super::header::HeaderError;

/// Characters that are visible ASCII but never allowed in a header value.
pub const FORBIDDEN: [char; 7] = ['"', '\\', '$', '{', '}', '`', ','];

/// CEL (RE2), for a `baseDirectives` source: the `source` production above, whole.
/// The class is visible ASCII (`!`..`~`) without `"` `$` `,` `;` `\` `` ` `` `{` `}`.
pub const CEL_SOURCE: &str = r#"self.matches(r"^[!#%&'()*+\-./0-9:<=>?@A-Z\[\]^_a-z|~]+$")"#;
/// Message for [`CEL_SOURCE`].
pub const MSG_SOURCE: &str = "a baseDirectives source must be a single source expression: visible ASCII without spaces or any of ; , \" \\ $ { } `";

/// The longest directive name accepted.
pub const MAX_NAME_LEN: usize = 64;
/// CEL for every `baseDirectives` key (the `name` production, at most [`MAX_NAME_LEN`]).
pub const CEL_DIRECTIVE_NAME: &str =
    r#"self.all(k, size(k) <= 64 && k.matches(r"^[a-z][a-z-]*$"))"#;
/// Message for [`CEL_DIRECTIVE_NAME`].
pub const MSG_DIRECTIVE_NAME: &str =
    "baseDirectives keys must be directive names: lowercase letters and '-', e.g. default-src";

/// CEL for a directives map: `report-uri` lists one or more URLs, absolute (`http(s)://`
/// and a host) or a path. Same rule as [`check_reporting`].
pub const CEL_REPORT_URI: &str = r#"!('report-uri' in self) || (size(self['report-uri']) >= 1 && self['report-uri'].all(u, u.matches(r"^(https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/.*)?|/.*)$")))"#;
/// Message for [`CEL_REPORT_URI`].
pub const MSG_REPORT_URI: &str = "report-uri takes one or more URLs: https://host/path, http://host/path or a path starting with /";
/// CEL for a directives map: `report-to` names exactly one reporting endpoint (a token).
pub const CEL_REPORT_TO: &str = r#"!('report-to' in self) || (size(self['report-to']) == 1 && self['report-to'][0].matches(r"^[A-Za-z0-9_-]+$"))"#;
/// Message for [`CEL_REPORT_TO`].
pub const MSG_REPORT_TO: &str =
    "report-to takes exactly one reporting endpoint name: letters, digits, '-' and '_'";

/// The longest header name accepted for `spec.header.key`.
pub const MAX_HEADER_NAME_LEN: usize = 128;
/// CEL for `spec.header.key`: an HTTP header name (a token) that is also a ConfigMap key
/// and that ingress-nginx accepts in `custom-headers`: letters, digits, `-` and `_` (no
/// `.`, which a ConfigMap key allows but a header name used there does not).
pub const CEL_HEADER_NAME: &str = r#"self.matches(r"^[A-Za-z0-9_-]+$")"#;
/// Message for [`CEL_HEADER_NAME`].
pub const MSG_HEADER_NAME: &str =
    "key must be an HTTP header name: letters, digits, '-' and '_', e.g. Content-Security-Policy";

/// Whether `name` is a header name [`CEL_HEADER_NAME`] admits.
pub fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_HEADER_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `c` may appear in a source expression ([`CEL_SOURCE`]'s class).
pub fn is_source_char(c: char) -> bool {
    c.is_ascii_graphic() && c != ';' && !FORBIDDEN.contains(&c)
}

/// A parsed header: directive names with their sources, in the order written.
pub type Policy = Vec<(String, Vec<String>)>;

/// Parses `value` by the grammar above. Checks every character first, so the error for a
/// line break or a metacharacter names it and its position, whatever else is wrong.
pub fn parse(value: &str) -> Result<Policy, HeaderError> {
    if value.is_empty() {
        return Err(HeaderError::Empty);
    }
    if let Some((index, character)) = value
        .chars()
        .enumerate()
        .find(|(_, c)| !(*c == ' ' || c.is_ascii_graphic()) || FORBIDDEN.contains(c))
    {
        return Err(HeaderError::InvalidCharacter { index, character });
    }
    let segments: Vec<&str> = value.split(';').collect();
    let last = segments.len() - 1;
    let mut policy = Policy::new();
    let mut offset = 0;
    for (i, segment) in segments.iter().enumerate() {
        // "; " between directives: one space after each ';', none anywhere else.
        let body = if i == 0 {
            segment
        } else {
            segment.strip_prefix(' ').unwrap_or(segment)
        };
        let start = offset + (segment.len() - body.len());
        offset += segment.len() + 1;
        if i == last && segment.is_empty() && i > 0 {
            break; // one trailing ';'
        }
        if body.is_empty() {
            return Err(HeaderError::EmptyDirective { index: start });
        }
        let mut tokens = body.split(' ');
        let name = tokens.next().unwrap_or_default();
        let mut sources = Vec::new();
        let mut at = start + name.len() + 1;
        for token in tokens {
            if token.is_empty() {
                return Err(HeaderError::Spacing { index: at - 1 });
            }
            sources.push(token.to_owned());
            at += token.len() + 1;
        }
        if name.is_empty() {
            return Err(HeaderError::Spacing { index: start });
        }
        check_name(name)?;
        check_reporting(name, &sources)?;
        if policy.iter().any(|(seen, _)| seen == name) {
            return Err(HeaderError::DuplicateDirective {
                name: name.to_owned(),
            });
        }
        policy.push((name.to_owned(), sources));
    }
    if policy.is_empty() {
        return Err(HeaderError::Empty);
    }
    Ok(policy)
}

/// The `name` production.
pub fn check_name(name: &str) -> Result<(), HeaderError> {
    let mut bytes = name.bytes();
    let valid = name.len() <= MAX_NAME_LEN
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(HeaderError::InvalidDirectiveName {
            name: name.escape_debug().to_string(),
        })
    }
}

/// The reporting directives' own grammar (what [`CEL_REPORT_URI`] and [`CEL_REPORT_TO`]
/// admit): `report-uri` takes URLs, `report-to` one endpoint name. Other directives pass.
pub fn check_reporting(name: &str, sources: &[String]) -> Result<(), HeaderError> {
    let invalid = |detail: &str| HeaderError::InvalidReporting {
        directive: name.to_owned(),
        detail: detail.to_owned(),
    };
    match name {
        "report-uri" if sources.is_empty() => Err(invalid("it needs at least one URL")),
        "report-uri" => match sources.iter().find(|s| !is_report_url(s)) {
            Some(_) => Err(invalid(
                "each source must be https://host/path, http://host/path or a path starting with /",
            )),
            None => Ok(()),
        },
        "report-to" => match sources {
            [endpoint]
                if endpoint
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
            {
                Ok(())
            }
            _ => Err(invalid(
                "it takes exactly one endpoint name of letters, digits, '-' and '_'",
            )),
        },
        _ => Ok(()),
    }
}

/// `https?://host[:port][/path]` or `/path`, as [`CEL_REPORT_URI`] reads it.
fn is_report_url(source: &str) -> bool {
    if source.starts_with('/') {
        return true;
    }
    let Some(rest) = source
        .strip_prefix("https://")
        .or_else(|| source.strip_prefix("http://"))
    else {
        return false;
    };
    let (authority, _path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    let port_ok =
        port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

/// The `source` production, for a source given on its own (a base directive's).
pub fn check_source(directive: &str, source: &str) -> Result<(), HeaderError> {
    if !source.is_empty() && source.chars().all(is_source_char) {
        Ok(())
    } else {
        Err(HeaderError::InvalidSource {
            directive: directive.escape_debug().to_string(),
            source_expression: source.escape_debug().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_uri_takes_urls_and_report_to_one_endpoint_name() {
        assert!(parse("default-src 'self'; report-uri https://csp.example.com/r /local").is_ok());
        assert!(parse("default-src 'self'; report-uri http://127.0.0.1:8080/r").is_ok());
        assert!(parse("default-src 'self'; report-to csp-endpoint").is_ok());
        for bad in [
            "report-uri",
            "report-uri javascript:alert(1)",
            "report-uri https://",
            "report-uri https://a.example:port/r",
            "report-to",
            "report-to a b",
            "report-to https://a.example",
        ] {
            assert!(
                matches!(parse(bad), Err(HeaderError::InvalidReporting { .. })),
                "{bad}: {:?}",
                parse(bad)
            );
        }
    }

    fn names(policy: &Policy) -> Vec<&str> {
        policy.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn a_well_formed_header_parses_into_directives_and_sources_in_order() {
        let policy = parse("default-src 'self'; img-src 'self' https://a.example.com data:; upgrade-insecure-requests").unwrap();
        assert_eq!(
            names(&policy),
            ["default-src", "img-src", "upgrade-insecure-requests"]
        );
        assert_eq!(policy[1].1, ["'self'", "https://a.example.com", "data:"]);
        assert!(policy[2].1.is_empty());
    }

    #[test]
    fn one_trailing_semicolon_is_accepted() {
        assert_eq!(names(&parse("img-src a;").unwrap()), ["img-src"]);
        assert_eq!(
            names(&parse("img-src a; font-src b;").unwrap()),
            ["img-src", "font-src"]
        );
    }

    #[test]
    fn control_characters_unicode_separators_and_metacharacters_are_named_with_their_position() {
        let cases = [
            ("default-src 'self';\r\nimg-src x", 19, '\r'),
            ("default-src 'self';\nimg-src x", 19, '\n'),
            ("default-src 'self'\u{b}", 18, '\u{b}'),
            ("default-src 'self'\u{c}", 18, '\u{c}'),
            ("default-src\t'self'", 11, '\t'),
            ("default-src 'self'\u{85}img-src x", 18, '\u{85}'),
            ("default-src 'self';\u{2028}img-src x", 19, '\u{2028}'),
            ("default-src\u{a0}'self'", 11, '\u{a0}'),
            ("default-src 'self' \u{0}", 19, '\0'),
            ("default-src 'self' \u{7f}", 19, '\u{7f}'),
            ("img-src caf\u{e9}.example", 11, '\u{e9}'),
            ("img-src \"a\"", 8, '"'),
            ("img-src a\\b", 9, '\\'),
            ("img-src ${host}", 8, '$'),
            ("img-src a{b", 9, '{'),
            ("img-src a}b", 9, '}'),
            ("img-src `a`", 8, '`'),
            ("img-src a, script-src *", 9, ','),
        ];
        for (value, index, character) in cases {
            assert_eq!(
                parse(value),
                Err(HeaderError::InvalidCharacter { index, character }),
                "{value:?}"
            );
        }
    }

    #[test]
    fn spaces_are_single_and_only_between_words_or_after_a_semicolon() {
        for value in [
            " img-src a",
            "img-src a ",
            "img-src  a",
            "img-src a ; font-src b",
            "img-src a;  font-src b",
            "img-src a; ",
        ] {
            let result = parse(value);
            assert!(
                matches!(
                    result,
                    Err(HeaderError::Spacing { .. } | HeaderError::EmptyDirective { .. })
                ),
                "{value:?} gave {result:?}"
            );
        }
        assert_eq!(
            parse("img-src a ").unwrap_err(),
            HeaderError::Spacing { index: 9 }
        );
        assert_eq!(
            parse(" img-src a").unwrap_err(),
            HeaderError::Spacing { index: 0 }
        );
    }

    #[test]
    fn empty_directives_duplicates_and_bad_names_are_refused() {
        assert_eq!(parse(""), Err(HeaderError::Empty));
        assert_eq!(parse(";"), Err(HeaderError::EmptyDirective { index: 0 }));
        assert_eq!(
            parse("img-src a;; font-src b"),
            Err(HeaderError::EmptyDirective { index: 10 })
        );
        assert!(matches!(
            parse("img-src a; img-src b"),
            Err(HeaderError::DuplicateDirective { .. })
        ));
        for name in ["Img-src", "-img-src", "img_src", "img-src2"] {
            assert!(
                matches!(
                    parse(&format!("{name} a")),
                    Err(HeaderError::InvalidDirectiveName { .. })
                ),
                "{name}"
            );
        }
        let long = "a".repeat(MAX_NAME_LEN + 1);
        assert!(matches!(
            parse(&long),
            Err(HeaderError::InvalidDirectiveName { .. })
        ));
        assert!(parse(&"a".repeat(MAX_NAME_LEN)).is_ok());
    }

    #[test]
    fn a_source_is_one_run_of_allowed_characters() {
        for good in [
            "'self'",
            "https://a.example.com:*",
            "data:",
            "'nonce-abc+/='",
            "*",
        ] {
            assert_eq!(check_source("img-src", good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "a b",
            "a;b",
            "a,b",
            "a\"b",
            "a\\b",
            "a$b",
            "a{b",
            "a}b",
            "a`b",
            "a\rb",
            "caf\u{e9}",
        ] {
            assert!(check_source("img-src", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn error_messages_escape_what_they_quote() {
        let err = check_source("img-src", "a\r\nX-Evil: 1").unwrap_err();
        let message = err.to_string();
        assert!(
            !message.contains('\r') && !message.contains('\n'),
            "{message}"
        );
        assert!(message.contains("\\r\\n"), "{message}");
    }

    #[test]
    fn header_names_are_tokens_without_dots() {
        for good in [
            "Content-Security-Policy",
            "Content-Security-Policy-Report-Only",
            "X_CSP",
        ] {
            assert!(is_header_name(good), "{good}");
        }
        let long = "a".repeat(MAX_HEADER_NAME_LEN + 1);
        for bad in [
            "",
            "a.b",
            "a b",
            "a:b",
            "a\r\nb",
            "Caf\u{e9}",
            long.as_str(),
        ] {
            assert!(!is_header_name(bad), "{bad:?}");
        }
    }
}
