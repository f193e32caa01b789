//! One logical QRS request: method, path, query, body and the secrets the body carries;
//! the URL of each attempt (with its Xrfkey); and the filter syntax. Pure.

use reqwest::Method;
use secrecy::SecretString;
use secrecy::zeroize::Zeroize;
use url::Url;

use super::xrfkey::XRFKEY_PARAM;

/// One logical request. Not `Debug`, and its body is never logged: a body may carry a
/// password, which is also named in `secrets` (scrubbed from the site's error answers) and
/// zeroed when the call is dropped.
pub(super) struct QrsCall {
    pub(super) operation: &'static str,
    pub(super) method: Method,
    /// The path; the query is `query` plus the Xrfkey, added per attempt.
    pub(super) url: Url,
    pub(super) query: Vec<(&'static str, String)>,
    pub(super) body: Option<Vec<u8>>,
    pub(super) secrets: Vec<SecretString>,
}

impl Drop for QrsCall {
    fn drop(&mut self) {
        if let Some(body) = &mut self.body {
            body.zeroize();
        }
    }
}

impl QrsCall {
    pub(super) fn new(operation: &'static str, method: Method, url: Url) -> QrsCall {
        QrsCall {
            operation,
            method,
            url,
            query: Vec::new(),
            body: None,
            secrets: Vec::new(),
        }
    }

    /// Adds a query parameter.
    pub(super) fn query(mut self, name: &'static str, value: impl Into<String>) -> QrsCall {
        self.query.push((name, value.into()));
        self
    }

    /// Sets a JSON body (already encoded, so that the caller can zero its own copies).
    pub(super) fn json_body(mut self, body: Vec<u8>) -> QrsCall {
        self.body = Some(body);
        self
    }

    /// Declares secrets the body carries.
    pub(super) fn redacting(mut self, secrets: impl IntoIterator<Item = SecretString>) -> QrsCall {
        self.secrets.extend(secrets);
        self
    }

    pub(super) fn idempotent(&self) -> bool {
        self.method != Method::POST
    }

    /// The URL of one attempt: the query parameters and `xrfkey`, spaces as `%20` (the
    /// form encoding's `+` is not a space to every server).
    pub(super) fn url_with(&self, xrfkey: &str) -> Url {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.query {
            query.append_pair(name, value);
        }
        query.append_pair(XRFKEY_PARAM, xrfkey);
        let mut url = self.url.clone();
        url.set_query(Some(&query.finish().replace('+', "%20")));
        url
    }
}

/// A QRS filter `property eq 'value'`: the value in single quotes, a quote inside doubled.
pub(super) fn eq_filter(property: &str, value: &str) -> String {
    format!("{property} eq '{}'", value.replace('\'', "''"))
}

/// Whether two names are equal as the site compares strings in a filter: ignoring case.
pub(super) fn same_name(a: &str, b: &str) -> bool {
    a == b || a.to_lowercase() == b.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_quote_the_value_and_double_its_quotes() {
        assert_eq!(eq_filter("prefix", "embed"), "prefix eq 'embed'");
        assert_eq!(eq_filter("prefix", ""), "prefix eq ''");
        assert_eq!(
            eq_filter("name", "O'Brien's DB"),
            "name eq 'O''Brien''s DB'"
        );
    }

    #[test]
    fn names_compare_as_the_site_does() {
        assert!(same_name("Embed", "embed"));
        assert!(same_name("ÄRGER", "ärger"));
        assert!(!same_name("embed", "embed2"));
    }

    #[test]
    fn the_query_carries_the_xrfkey_and_encodes_spaces_as_percent_20() {
        let url = Url::parse("https://qlik.example:4242/qrs/virtualproxyconfig/full")
            .unwrap_or_else(|e| panic!("{e}"));
        let call = QrsCall::new("qrs.virtualproxyconfig.list", Method::GET, url)
            .query("filter", eq_filter("prefix", "a+b 'c'&d"));
        let sent = call.url_with("abcdefghijklmnop");
        assert_eq!(
            sent.query(),
            Some("filter=prefix%20eq%20%27a%2Bb%20%27%27c%27%27%26d%27&xrfkey=abcdefghijklmnop")
        );
        let decoded: Vec<(String, String)> = sent
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(decoded[0].1, "prefix eq 'a+b ''c''&d'");
        assert_eq!(
            decoded[1],
            ("xrfkey".to_owned(), "abcdefghijklmnop".to_owned())
        );
    }
}
