//! Which URLs the client talks to: the tenant's base URL (HTTPS, no path), and links and
//! redirects pinned to it. Pure.

use url::Url;

use super::error::Error;
use super::wire::Links;

/// The tenant's base URL, which must be `https://host[:port]` (or `http://` when allowed).
pub(crate) fn parse_base_url(text: &str, allow_plain_http: bool) -> Result<Url, Error> {
    // Never echo a URL that may carry credentials (`user:password@`).
    let shown = || {
        if text.contains('@') {
            "<redacted>".to_owned()
        } else {
            text.to_owned()
        }
    };
    let url = Url::parse(text.trim()).map_err(|source| Error::InvalidUrl {
        url: shown(),
        source,
    })?;
    let problem = match url.scheme() {
        "https" => None,
        "http" if allow_plain_http => None,
        "http" => Some("plain http is not allowed: use https://"),
        _ => Some("the scheme must be https"),
    }
    .or_else(|| url.host_str().is_none().then_some("it has no host"))
    .or_else(|| {
        (url.path() != "/").then_some("it must not have a path: use https://<tenant host>[:port]")
    })
    .or_else(|| url.query().is_some().then_some("it must not have a query"))
    .or_else(|| {
        url.fragment()
            .is_some()
            .then_some("it must not have a fragment")
    })
    .or_else(|| {
        (!url.username().is_empty() || url.password().is_some())
            .then_some("it must not contain credentials")
    });
    match problem {
        Some(problem) => Err(Error::UnsupportedUrl {
            url: shown(),
            problem,
        }),
        None => Ok(url),
    }
}

/// `href` resolved against `base`, with `base`'s scheme, host and port: links and
/// redirects are followed on the tenant URL the user configured, never elsewhere (the
/// credential goes with them, and tenants behind an alias may advertise their canonical
/// host).
pub(crate) fn same_origin(base: &Url, href: &str) -> Option<Url> {
    let resolved = base.join(href.trim()).ok()?;
    let mut url = base.clone();
    url.set_path(resolved.path());
    url.set_query(resolved.query());
    Some(url)
}

/// The next page of a list, if any.
pub(crate) fn next_page(base: &Url, links: &Links) -> Option<Url> {
    let href = links.next.as_ref()?.href.trim();
    if href.is_empty() {
        return None;
    }
    same_origin(base, href)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::wire::Link;

    fn base() -> Url {
        Url::parse("https://tenant.eu.qlikcloud.com").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn only_https_base_urls_without_a_path_are_accepted() {
        let ok = [
            "https://t.eu.qlikcloud.com",
            "https://t.eu.qlikcloud.com/",
            "https://127.0.0.1:8443",
        ];
        for url in ok {
            assert!(parse_base_url(url, false).is_ok(), "{url}");
        }
        let bad = [
            "http://t.eu.qlikcloud.com",
            "ftp://t",
            "https://t.eu.qlikcloud.com/api",
            "https://t.eu.qlikcloud.com/?x=1",
            "https://user:pw@t.eu.qlikcloud.com",
            "https://user:p w@t",
            "not a url",
        ];
        for url in bad {
            let err = parse_base_url(url, false).err();
            assert_eq!(
                err.as_ref().map(Error::reason),
                Some("InvalidConfig"),
                "{url}"
            );
            let shown = err.map(|e| format!("{e} {e:?}")).unwrap_or_default();
            assert!(!shown.contains("w@"), "{shown}");
        }
        assert!(parse_base_url("http://127.0.0.1:1", true).is_ok());
    }

    #[test]
    fn next_links_stay_on_the_configured_tenant() {
        let links = |href: &str| Links {
            next: Some(Link {
                href: href.to_owned(),
            }),
            ..Links::default()
        };
        let cases = [
            (
                "/api/v1/csp-origins?next=abc&limit=50",
                "https://tenant.eu.qlikcloud.com/api/v1/csp-origins?next=abc&limit=50",
            ),
            (
                "https://tenant.eu.qlikcloud.com/api/v1/csp-origins?next=x",
                "https://tenant.eu.qlikcloud.com/api/v1/csp-origins?next=x",
            ),
            (
                "https://evil.example/api/v1/csp-origins?next=x",
                "https://tenant.eu.qlikcloud.com/api/v1/csp-origins?next=x",
            ),
            (
                "http://canonical.qlikcloud.com:80/api/v1/x?next=1",
                "https://tenant.eu.qlikcloud.com/api/v1/x?next=1",
            ),
        ];
        for (href, want) in cases {
            assert_eq!(
                next_page(&base(), &links(href)).map(String::from),
                Some(want.to_owned()),
                "{href}"
            );
        }
        assert_eq!(next_page(&base(), &links("  ")), None);
        assert_eq!(next_page(&base(), &Links::default()), None);
    }
}
