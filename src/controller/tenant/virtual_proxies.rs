//! A client-managed site's virtual proxies: the compiled header in each one's
//! `additionalResponseHeaders`, through the site's Repository Service (QRS). Does I/O
//! (the site); [`field_with`] and the reasons are pure.
//!
//! # Guarantees
//! - Only the operator's header lines (`spec.header.key` and
//!   `Content-Security-Policy-Report-Only`) change; every other line an administrator put
//!   in the field stays byte for byte, in its place.
//! - Nothing is written when the field already says the same.
//! - The whole entity goes back with the `modifiedDate` it was read with, so an edit made
//!   in the QMC in between is never overwritten: the site refuses the write (409), and the
//!   proxy is read again and the header set on the new version, at most
//!   [`WRITE_ATTEMPTS`] times.
//! - A field that would exceed QRS's 1,024 characters is not written: the proxy keeps the
//!   last good header (`HeaderTooLongForTarget`).
//! - A prefix removed from `virtualProxyPrefixes` gets the operator's lines taken out
//!   before it leaves the status.

use crate::api::client_managed::VirtualProxyStatus;
use crate::api::header::HeaderSpec;
use crate::tenant::Error as TenantError;
use crate::tenant::qrs::QrsClient;
use crate::tenant::qrs::response_headers::{ADDITIONAL_RESPONSE_HEADERS_MAX, fits, with_header};

use super::publication::Publication;

/// Read-modify-write rounds before a proxy that keeps changing is reported.
pub const WRITE_ATTEMPTS: usize = 3;

/// The reasons of a virtual proxy's status.
pub mod reasons {
    pub const PUBLISHED: &str = "Published";
    pub const NOT_FOUND: &str = "VirtualProxyNotFound";
    pub const TOO_LONG: &str = "HeaderTooLongForTarget";
    pub const CONFLICT: &str = "VirtualProxyConflict";
    pub const WRITE_FAILED: &str = "TargetWriteFailed";
}

/// The bounded reason for a status `reason` string.
pub fn reason(reason: &str) -> &'static str {
    use reasons::*;
    [PUBLISHED, NOT_FOUND, TOO_LONG, CONFLICT]
        .into_iter()
        .find(|r| *r == reason)
        .unwrap_or(WRITE_FAILED)
}

/// Whether a failure clears without a person (retried with backoff); a missing proxy or a
/// header too long waits for a change.
pub fn is_transient(reason: &str) -> bool {
    matches!(reason, reasons::CONFLICT | reasons::WRITE_FAILED)
}

/// The field with the operator's lines set from `publication` (`None`: taken out), every
/// other line kept.
pub fn field_with(existing: &str, spec: &HeaderSpec, publication: Option<&Publication>) -> String {
    let mut field = existing.to_owned();
    for name in spec.owned_names() {
        let value = publication.and_then(|p| p.values().find(|(n, _)| *n == name).map(|(_, v)| v));
        field = with_header(&field, name, value);
    }
    field
}

/// Publishes into every prefix of `prefixes` and withdraws from those only `previous`
/// still lists; one status per prefix, in spec order.
pub async fn publish(
    site: &QrsClient,
    prefixes: &[String],
    spec: &HeaderSpec,
    publication: &Publication,
    previous: &[VirtualProxyStatus],
) -> Vec<VirtualProxyStatus> {
    let sha256 = publication.sha256();
    let mut statuses = Vec::with_capacity(prefixes.len());
    for prefix in prefixes {
        let before = previous.iter().find(|p| &p.prefix == prefix);
        let last_good = before.and_then(|p| p.sha256.clone());
        let status = match write(site, prefix, spec, Some(publication)).await {
            Ok(()) => VirtualProxyStatus {
                prefix: prefix.clone(),
                published: true,
                reason: reasons::PUBLISHED.to_owned(),
                message: String::new(),
                sha256: Some(sha256.clone()),
            },
            Err((reason, message)) => VirtualProxyStatus {
                prefix: prefix.clone(),
                published: false,
                reason: reason.to_owned(),
                message,
                sha256: last_good,
            },
        };
        statuses.push(status);
    }
    for left in previous.iter().filter(|p| !prefixes.contains(&p.prefix)) {
        if left.sha256.is_none() {
            continue;
        }
        if let Err((reason, message)) = write(site, &left.prefix, spec, None).await {
            // Kept in the status until its lines are out (a missing proxy holds none).
            if reason != reasons::NOT_FOUND {
                statuses.push(VirtualProxyStatus {
                    prefix: left.prefix.clone(),
                    published: false,
                    reason: reason.to_owned(),
                    message: format!("withdrawing the header: {message}"),
                    sha256: left.sha256.clone(),
                });
            }
        }
    }
    statuses
}

/// Sets (or with `None` takes out) the operator's lines in virtual proxy `prefix`.
async fn write(
    site: &QrsClient,
    prefix: &str,
    spec: &HeaderSpec,
    publication: Option<&Publication>,
) -> Result<(), (&'static str, String)> {
    for _ in 0..WRITE_ATTEMPTS {
        let proxy = match site.virtual_proxy_by_prefix(prefix).await {
            Ok(Some(proxy)) => proxy,
            Ok(None) => {
                let message = format!("the site has no virtual proxy with prefix {prefix:?}");
                return Err((reasons::NOT_FOUND, message));
            }
            Err(e) => return Err((reasons::WRITE_FAILED, describe(&e))),
        };
        let existing = proxy.additional_response_headers();
        let wanted = field_with(existing, spec, publication);
        if wanted == existing {
            return Ok(());
        }
        if !fits(&wanted) {
            let length = wanted.encode_utf16().count();
            let message = format!(
                "with the header its additionalResponseHeaders would be {length} characters, over QRS's {ADDITIONAL_RESPONSE_HEADERS_MAX}; it keeps the last header that fitted"
            );
            return Err((reasons::TOO_LONG, message));
        }
        let mut updated = proxy;
        updated.set_additional_response_headers(wanted);
        match site.update_virtual_proxy(&updated).await {
            Ok(_) => return Ok(()),
            // Changed since it was read (an edit in the QMC): read it again.
            Err(TenantError::Conflict { .. }) => continue,
            Err(e) => return Err((reasons::WRITE_FAILED, describe(&e))),
        }
    }
    let message = format!(
        "the virtual proxy changed between each of {WRITE_ATTEMPTS} reads and writes; trying again later"
    );
    Err((reasons::CONFLICT, message))
}

fn describe(error: &TenantError) -> String {
    crate::error_chain::error_chain(error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csp::header::validate;

    fn spec(mode: &str) -> HeaderSpec {
        let mut spec = HeaderSpec::local_defaults();
        spec.mode = serde_json::from_value(serde_json::json!(mode)).ok();
        spec
    }

    fn publication(spec: &HeaderSpec, value: &str) -> Publication {
        let header = validate(value).unwrap();
        Publication::new(spec, header.clone(), Some(header)).unwrap()
    }

    #[test]
    fn the_header_line_is_added_and_every_other_line_kept() {
        let spec = spec("Enforce");
        let field = "X-Frame-Options: DENY\r\nX-Custom: a; b";
        let next = field_with(field, &spec, Some(&publication(&spec, "frame-src 'self'")));
        assert_eq!(
            next,
            "X-Frame-Options: DENY\r\nX-Custom: a; b\r\nContent-Security-Policy: frame-src 'self'"
        );
    }

    #[test]
    fn a_new_mode_replaces_the_enforced_line_with_the_report_only_one() {
        let enforce = spec("Enforce");
        let field = field_with(
            "X-A: 1",
            &enforce,
            Some(&publication(&enforce, "frame-src 'self'")),
        );
        let report = spec("ReportOnly");
        let next = field_with(
            &field,
            &report,
            Some(&publication(&report, "frame-src 'self'")),
        );
        assert!(next.starts_with("X-A: 1"), "{next:?}");
        assert!(next.ends_with("Content-Security-Policy-Report-Only: frame-src 'self'"));
        assert!(!next.contains("Content-Security-Policy: "), "{next:?}");
    }

    #[test]
    fn withdrawing_takes_out_only_the_operators_lines() {
        let spec = spec("Enforce");
        let field = "X-A: 1\nContent-Security-Policy: frame-src 'self'\nX-B: 2";
        assert_eq!(field_with(field, &spec, None), "X-A: 1\nX-B: 2");
    }

    #[test]
    fn reasons_are_bounded_and_only_retryable_ones_are_transient() {
        assert_eq!(reason("anything else"), reasons::WRITE_FAILED);
        assert!(is_transient(reasons::CONFLICT));
        assert!(is_transient(reasons::WRITE_FAILED));
        assert!(!is_transient(reasons::NOT_FOUND));
        assert!(!is_transient(reasons::TOO_LONG));
    }
}
