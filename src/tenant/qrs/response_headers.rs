//! A virtual proxy's `additionalResponseHeaders`: one header per line, `Name: value`, as
//! an administrator types them into the QMC. The operator owns one line (its
//! `Content-Security-Policy`) and must leave every other line exactly as it was. Pure.
//!
//! # Guarantees
//! - [`with_header`] changes only the lines of the header it is given: every other line
//!   keeps its bytes, its order and its own line separator; whether the field ends with a
//!   separator is kept too.
//! - A value or name can never add a line: line breaks in them become spaces.

/// The most characters the field holds (`maxLength` in the QRS definition).
pub const ADDITIONAL_RESPONSE_HEADERS_MAX: usize = 1024;

/// The separator of a line appended to a field that has none yet: HTTP's own, which a
/// reader splitting on `\n` accepts too.
const DEFAULT_SEPARATOR: &str = "\r\n";

/// Whether `headers` fits the field. Counted in UTF-16 code units, as the site (.NET)
/// counts a string's length: never fewer than characters, so the check errs on the safe
/// side for text beyond the Basic Multilingual Plane.
pub fn fits(headers: &str) -> bool {
    headers.encode_utf16().count() <= ADDITIONAL_RESPONSE_HEADERS_MAX
}

/// One line of the field: its text and its own separator (`"\r\n"`, `"\n"`, or `""` for
/// a last line without one).
struct Line<'a> {
    text: &'a str,
    separator: &'a str,
}

fn lines(field: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut rest = field;
    while !rest.is_empty() {
        let (line, separator, next) = match rest.find('\n') {
            Some(i) if rest[..i].ends_with('\r') => {
                (&rest[..i - 1], &rest[i - 1..=i], &rest[i + 1..])
            }
            Some(i) => (&rest[..i], &rest[i..=i], &rest[i + 1..]),
            None => (rest, "", ""),
        };
        out.push(Line {
            text: line,
            separator,
        });
        rest = next;
    }
    out
}

/// The header name of `line` (the text before its first `:`, trimmed), if it has one.
fn name_of(line: &str) -> Option<&str> {
    line.split_once(':').map(|(name, _)| name.trim())
}

fn is_named(line: &str, name: &str) -> bool {
    name_of(line).is_some_and(|n| n.eq_ignore_ascii_case(name.trim()))
}

/// `existing` with the header `name` set to `value`: every line whose header name equals
/// `name` (ASCII case-insensitive, surrounding spaces ignored) is replaced by one line
/// `name: value` at the position of the first, or it is appended when there is none;
/// `None` removes them all. Every other line is kept byte for byte, in order, with its
/// own separator (CRLF or LF); a field that ended with a separator still does, one that
/// did not still does not. An appended line uses the field's first separator, or CRLF in
/// a field of one line.
///
/// Line breaks in `name` or `value` become spaces: a header value cannot span lines, and
/// nothing given here may add a line of its own.
pub fn with_header(existing: &str, name: &str, value: Option<&str>) -> String {
    let name = one_line(name);
    let name = name.trim();
    let replacement = value.map(|v| format!("{name}: {}", one_line(v).trim()));
    let all = lines(existing);
    let ends_with_separator = all.last().is_some_and(|l| !l.separator.is_empty());
    let separator = all
        .iter()
        .map(|l| l.separator)
        .find(|s| !s.is_empty())
        .unwrap_or(DEFAULT_SEPARATOR);

    let mut out =
        String::with_capacity(existing.len() + replacement.as_ref().map_or(0, String::len) + 2);
    let mut placed = false;
    for line in &all {
        if !is_named(line.text, name) {
            out.push_str(line.text);
            out.push_str(line.separator);
            continue;
        }
        if let (Some(replacement), false) = (&replacement, placed) {
            out.push_str(replacement);
            out.push_str(line.separator);
        }
        placed = true;
    }
    if let (Some(replacement), false) = (&replacement, placed) {
        if !out.is_empty() && !ends_with_separator {
            out.push_str(separator);
        }
        out.push_str(replacement);
        if ends_with_separator {
            out.push_str(separator);
        }
    }
    // A removed or replaced last line may leave the separator state of the field changed.
    let now_ends_with_separator = out.ends_with('\n');
    if now_ends_with_separator && !ends_with_separator {
        let cut = if out.ends_with("\r\n") { 2 } else { 1 };
        out.truncate(out.len() - cut);
    } else if !now_ends_with_separator && ends_with_separator && !out.is_empty() {
        out.push_str(separator);
    }
    out
}

/// The value of the first line whose header name equals `name` (as in [`with_header`]),
/// without surrounding spaces.
pub fn header_value<'a>(existing: &'a str, name: &str) -> Option<&'a str> {
    lines(existing)
        .into_iter()
        .find(|l| is_named(l.text, name))
        .and_then(|l| l.text.split_once(':'))
        .map(|(_, value)| value.trim())
}

fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const CSP: &str = "Content-Security-Policy";

    #[test]
    fn the_header_is_set_replaced_or_removed_and_nothing_else_changes() {
        // (existing, value, want)
        let cases: [(&str, Option<&str>, &str); 18] = [
            ("", Some("v"), "Content-Security-Policy: v"),
            ("", None, ""),
            ("X-A: 1", Some("v"), "X-A: 1\r\nContent-Security-Policy: v"),
            (
                "X-A: 1\n",
                Some("v"),
                "X-A: 1\nContent-Security-Policy: v\n",
            ),
            (
                "X-A: 1\r\n",
                Some("v"),
                "X-A: 1\r\nContent-Security-Policy: v\r\n",
            ),
            (
                "X-A: 1\nX-B:2",
                Some("v"),
                "X-A: 1\nX-B:2\nContent-Security-Policy: v",
            ),
            (
                "X-A: 1\r\ncontent-security-policy: old\r\nX-B:  2 ",
                Some("new"),
                "X-A: 1\r\nContent-Security-Policy: new\r\nX-B:  2 ",
            ),
            (
                "  CONTENT-SECURITY-POLICY : old\nX-A: 1\nContent-Security-Policy: dup\n",
                Some("new"),
                "Content-Security-Policy: new\nX-A: 1\n",
            ),
            ("X-A: 1\nContent-Security-Policy: old", None, "X-A: 1"),
            ("X-A: 1\nContent-Security-Policy: old\n", None, "X-A: 1\n"),
            ("Content-Security-Policy: old\r\n", None, ""),
            (
                "Content-Security-Policy: old",
                Some("old"),
                "Content-Security-Policy: old",
            ),
            // Only whole names match: a longer name, or the name in a value, is another line.
            (
                "Content-Security-Policy-Report-Only: x\nX-Note: Content-Security-Policy: y",
                Some("v"),
                "Content-Security-Policy-Report-Only: x\nX-Note: Content-Security-Policy: y\nContent-Security-Policy: v",
            ),
            // A blank line before the removed last line stays (as an empty field here).
            ("\nContent-Security-Policy: old", None, ""),
            ("\n\nContent-Security-Policy: old", None, "\n"),
            // Lines without a colon and blank lines are kept.
            (
                "junk\n\nX-A: 1\n",
                Some("v"),
                "junk\n\nX-A: 1\nContent-Security-Policy: v\n",
            ),
            // Mixed separators stay as they were; the first one is used to append.
            (
                "X-A: 1\nX-B: 2\r\nX-C: 3",
                Some("v"),
                "X-A: 1\nX-B: 2\r\nX-C: 3\nContent-Security-Policy: v",
            ),
            // A value cannot add a line.
            (
                "X-A: 1\n",
                Some("a\r\nX-Evil: 1"),
                "X-A: 1\nContent-Security-Policy: a  X-Evil: 1\n",
            ),
        ];
        for (existing, value, want) in cases {
            assert_eq!(
                with_header(existing, CSP, value),
                want,
                "{existing:?} {value:?}"
            );
        }
    }

    #[test]
    fn the_value_is_read_from_the_first_line_with_the_name() {
        let cases: [(&str, Option<&str>); 6] = [
            ("", None),
            ("X-A: 1", None),
            ("content-security-policy:  a b ", Some("a b")),
            (
                "X-A: 1\r\nContent-Security-Policy: first\r\nContent-Security-Policy: second",
                Some("first"),
            ),
            ("Content-Security-Policy-Report-Only: x", None),
            ("Content-Security-Policy:", Some("")),
        ];
        for (existing, want) in cases {
            assert_eq!(header_value(existing, CSP), want, "{existing:?}");
        }
    }

    #[test]
    fn the_size_limit_counts_utf16_units() {
        assert!(fits(&"a".repeat(ADDITIONAL_RESPONSE_HEADERS_MAX)));
        assert!(!fits(&"a".repeat(ADDITIONAL_RESPONSE_HEADERS_MAX + 1)));
        // 512 characters outside the BMP are 1,024 UTF-16 units; one more does not fit.
        assert!(fits(&"😀".repeat(512)));
        assert!(!fits(&format!("{}a", "😀".repeat(512))));
    }

    fn other_line() -> impl Strategy<Value = String> {
        prop_oneof![
            // An administrator's header, with any spacing.
            ("[A-Za-z][A-Za-z0-9-]{0,20}", "[ \t]{0,2}", "[ -~]{0,30}").prop_filter_map(
                "not the operator's header",
                |(name, space, value)| {
                    (!name.eq_ignore_ascii_case(CSP)).then(|| format!("{name}:{space}{value}"))
                }
            ),
            // Anything else on a line of its own.
            "[^\r\n:]{0,20}",
        ]
    }

    fn field() -> impl Strategy<Value = (Vec<String>, Vec<usize>, bool, bool)> {
        (
            proptest::collection::vec(other_line(), 0..8),
            proptest::collection::vec(0usize..9, 0..3),
            any::<bool>(),
            any::<bool>(),
        )
    }

    fn build(others: &[String], ours_at: &[usize], crlf: bool, trailing: bool) -> String {
        let separator = if crlf { "\r\n" } else { "\n" };
        let mut lines: Vec<String> = others.to_vec();
        for (i, &at) in ours_at.iter().enumerate() {
            let at = at.min(lines.len());
            lines.insert(at, format!("content-security-policy: old {i}"));
        }
        let mut text = lines.join(separator);
        if trailing && !text.is_empty() {
            text.push_str(separator);
        }
        text
    }

    /// The other lines' text, in order. Split at every separator, so that a last empty
    /// line counts too: after a removed last line, `"A:\n"` is the line `A:` and an empty
    /// line, as it was before.
    /// One empty line and none are the same (empty) text.
    fn without_ours(text: &str) -> Vec<&str> {
        let mut other: Vec<&str> = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .filter(|l| !is_named(l, CSP))
            .collect();
        if other == [""] {
            other.clear();
        }
        other
    }

    proptest! {
        #[test]
        fn every_other_line_is_kept_byte_for_byte(
            (others, ours_at, crlf, trailing) in field(),
            value in proptest::option::of("[ -~]{0,40}"),
        ) {
            let existing = build(&others, &ours_at, crlf, trailing);
            let updated = with_header(&existing, CSP, value.as_deref());

            prop_assert_eq!(without_ours(&updated), without_ours(&existing));
            let ours = lines(&updated).into_iter().filter(|l| is_named(l.text, CSP)).count();
            prop_assert_eq!(ours, usize::from(value.is_some()));
            prop_assert_eq!(header_value(&updated, CSP), value.as_deref().map(str::trim));
            // Separators: none of the other kind appears (once the field has any), and the
            // trailing one is kept.
            if existing.contains('\n') {
                let other_kind = if crlf {
                    lines(&updated).iter().any(|l| l.separator == "\n")
                } else {
                    updated.contains('\r')
                };
                prop_assert!(!other_kind, "{:?}", updated);
            }
            if existing.ends_with('\n') && !updated.is_empty() {
                prop_assert!(updated.ends_with('\n'), "{:?}", updated);
            }
            // Setting the same value again changes nothing.
            prop_assert_eq!(with_header(&updated, CSP, value.as_deref()), updated.clone());
        }
    }
}
