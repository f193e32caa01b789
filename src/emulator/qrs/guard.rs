//! The checks every QRS request passes before it is routed: the Xrfkey and the
//! `X-Qlik-User` header. Pure.
//!
//! - Xrfkey (Qlik's "Using Xrfkey headers"): the `xrfkey` query parameter (name matched
//!   case-insensitively: Qlik's own examples write `Xrfkey`) and the `X-Qlik-Xrfkey` header
//!   must both be present, once each, equal (compared exactly), and 16 characters of
//!   `0-9 a-z A-Z`. Anything else is refused with [`XSRF_REFUSAL`].
//! - `X-Qlik-User: UserDirectory=<dir>; UserId=<id>` (Qlik's "X-Qlik-User header"; both
//!   values URL-encoded): parsed leniently (either order, spaces around `;` and `=`, keys
//!   in any case, other keys ignored) and compared case-insensitively (Windows directory
//!   and account names are) with the site's accepted users. A missing, malformed or
//!   unknown user is refused with [`USER_REFUSAL`] (the emulator's wording: QRS's own
//!   answer is not documented).

use super::QlikUser;

/// The body of QRS's 403 for a failed Xrfkey check (text/plain).
pub const XSRF_REFUSAL: &str = "XSRF prevention check failed. Possible XSRF discovered.";

/// The body of the emulator's 403 for a missing or unaccepted `X-Qlik-User` (text/plain).
pub const USER_REFUSAL: &str = "X-Qlik-User is missing or names a user this site does not accept.";

/// The Xrfkey query parameter and header as a request carried them, for the request log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Xrfkeys {
    /// The first `xrfkey` query parameter (any case of the name).
    pub query: Option<String>,
    /// The first `X-Qlik-Xrfkey` header.
    pub header: Option<String>,
    /// How many `xrfkey` parameters and headers there were.
    query_count: usize,
    header_count: usize,
}

impl Xrfkeys {
    /// Collects the keys from the decoded query and the header values.
    pub fn collect<'a>(
        query: &'a [(String, String)],
        headers: impl IntoIterator<Item = &'a str>,
    ) -> Xrfkeys {
        let queries: Vec<&String> = query
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("xrfkey"))
            .map(|(_, v)| v)
            .collect();
        let headers: Vec<&str> = headers.into_iter().collect();
        Xrfkeys {
            query: queries.first().map(|v| (*v).clone()),
            header: headers.first().map(|v| (*v).to_owned()),
            query_count: queries.len(),
            header_count: headers.len(),
        }
    }

    /// Whether the request passes QRS's check.
    pub fn pass(&self) -> bool {
        self.query_count == 1
            && self.header_count == 1
            && self.query.as_deref().is_some_and(is_valid_key)
            && self.query == self.header
    }
}

/// 16 characters of `0-9 a-z A-Z`.
pub fn is_valid_key(key: &str) -> bool {
    key.len() == 16 && key.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The user an `X-Qlik-User` value names, if it parses.
pub fn parse_user(header: &str) -> Option<QlikUser> {
    let mut directory = None;
    let mut id = None;
    for part in header.split(';') {
        let Some((key, value)) = part.split_once('=') else {
            if part.trim().is_empty() {
                continue;
            }
            return None;
        };
        let value = super::super::wire::percent_decode(value.trim());
        match key.trim().to_ascii_lowercase().as_str() {
            "userdirectory" => directory = Some(value),
            "userid" => id = Some(value),
            _ => {}
        }
    }
    match (directory, id) {
        (Some(directory), Some(id)) if !directory.is_empty() && !id.is_empty() => {
            Some(QlikUser { directory, id })
        }
        _ => None,
    }
}

/// The accepted user `header` names, if any.
pub fn accepted_user<'a>(header: Option<&str>, users: &'a [QlikUser]) -> Option<&'a QlikUser> {
    let named = parse_user(header?)?;
    users.iter().find(|u| {
        u.directory.eq_ignore_ascii_case(&named.directory) && u.id.eq_ignore_ascii_case(&named.id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(query: &[(&str, &str)], headers: &[&str]) -> Xrfkeys {
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Xrfkeys::collect(&query, headers.iter().copied())
    }

    #[test]
    fn the_xrfkey_must_be_in_both_places_equal_and_16_alphanumerics() {
        let key = "abcdefghIJKLMN09";
        assert!(keys(&[("xrfkey", key)], &[key]).pass());
        assert!(keys(&[("Xrfkey", key), ("filter", "x")], &[key]).pass());
        assert!(!keys(&[], &[key]).pass(), "no query parameter");
        assert!(!keys(&[("xrfkey", key)], &[]).pass(), "no header");
        assert!(
            !keys(&[("xrfkey", key)], &["abcdefghIJKLMN08"]).pass(),
            "mismatch"
        );
        assert!(
            !keys(&[("xrfkey", key)], &["ABCDEFGHijklmn09"]).pass(),
            "case differs"
        );
        assert!(!keys(&[("xrfkey", "abc")], &["abc"]).pass(), "too short");
        let long = "abcdefghIJKLMN0123";
        assert!(!keys(&[("xrfkey", long)], &[long]).pass(), "too long");
        let odd = "abcdefghIJKLMN-9";
        assert!(!keys(&[("xrfkey", odd)], &[odd]).pass(), "not alphanumeric");
        assert!(
            !keys(&[("xrfkey", key), ("xrfkey", key)], &[key]).pass(),
            "given twice"
        );
        assert!(
            !keys(&[("xrfkey", key)], &[key, key]).pass(),
            "header twice"
        );
    }

    #[test]
    fn users_parse_leniently_and_match_case_insensitively() {
        let users = vec![QlikUser {
            directory: "INTERNAL".to_owned(),
            id: "sa_api".to_owned(),
        }];
        for header in [
            "UserDirectory=INTERNAL; UserId=sa_api",
            "UserId=sa_api;UserDirectory=INTERNAL",
            " userdirectory = internal ;  USERID=SA_API ; ",
            "UserDirectory=INTERNAL; UserId=sa%5Fapi; Extra=1",
        ] {
            assert!(accepted_user(Some(header), &users).is_some(), "{header}");
        }
        for header in [
            "UserDirectory=INTERNAL",
            "UserId=sa_api",
            "UserDirectory=INTERNAL; UserId=sa_repository",
            "UserDirectory=; UserId=sa_api",
            "INTERNAL\\sa_api",
            "",
        ] {
            assert!(accepted_user(Some(header), &users).is_none(), "{header}");
        }
        assert!(accepted_user(None, &users).is_none());
    }
}
