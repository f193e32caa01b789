//! The error for a non-success answer of the QRS API. Pure.

use crate::tenant::{ApiError, ApiErrors, CredentialSource, Error};

/// What the site answers when the Xrfkey is missing or the two copies differ.
const XSRF_REFUSAL: &str = "XSRF prevention check failed";

/// The error for a non-success `status` of the QRS API and its (scrubbed) body. Unlike
/// Qlik Cloud, the site has no limits to report in a 400/403/409: a 409 is always a
/// stale `modifiedDate` (or a duplicate), a 403 a missing right or a refused Xrfkey.
pub(super) fn error_for_status(
    operation: &'static str,
    status: u16,
    mut detail: ApiErrors,
    credential: &CredentialSource,
) -> Error {
    let credential = credential.clone();
    match status {
        401 => Error::Unauthorized {
            operation,
            credential,
            detail,
        },
        403 => {
            if detail
                .0
                .iter()
                .any(|e| e.title.as_deref().is_some_and(|t| t.contains(XSRF_REFUSAL)))
            {
                detail.0.push(ApiError {
                    title: Some("the site refused the request's Xrfkey: a bug in the operator, please report it".to_owned()),
                    ..ApiError::default()
                });
            }
            Error::Forbidden {
                operation,
                credential,
                detail,
            }
        }
        404 => Error::NotFound { operation, detail },
        409 => Error::Conflict { operation, detail },
        400 | 422 => Error::BadRequest { operation, detail },
        429 => Error::RateLimited {
            operation,
            retry_after: None,
        },
        500..=599 => Error::TenantUnavailable {
            operation,
            status,
            detail,
        },
        _ => Error::UnexpectedStatus {
            operation,
            status,
            detail,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential() -> CredentialSource {
        CredentialSource::Described("the client certificate (user INTERNAL\\sa_api)".into())
    }

    #[test]
    fn statuses_map_to_the_shared_error_kinds() {
        let cases = [
            (400, "BadRequest", false),
            (401, "Unauthorized", false),
            (403, "Forbidden", false),
            (404, "NotFound", false),
            (409, "Conflict", false),
            (422, "BadRequest", false),
            (302, "UnexpectedStatus", false),
            (429, "RateLimited", true),
            (500, "TenantUnavailable", true),
            (503, "TenantUnavailable", true),
        ];
        for (status, reason, transient) in cases {
            // A body that the cloud client would read as a limit is no limit here.
            let detail = ApiErrors::decode_text(b"Maximum exceeded: too many", &[]);
            let err = error_for_status("qrs.virtualproxyconfig.put", status, detail, &credential());
            assert_eq!(err.reason(), reason, "{status}");
            assert_eq!(err.is_transient(), transient, "{status}");
        }
    }

    #[test]
    fn a_refused_xrfkey_reads_as_an_operator_bug() {
        let detail = ApiErrors::decode_text(
            b"XSRF prevention check failed. Possible XSRF discovered.",
            &[],
        );
        let err = error_for_status("qrs.about", 403, detail, &credential());
        assert_eq!(err.reason(), "Forbidden");
        let shown = err.to_string();
        assert!(shown.contains("XSRF prevention check failed"), "{shown}");
        assert!(shown.contains("a bug in the operator"), "{shown}");
        let plain = error_for_status(
            "qrs.about",
            403,
            ApiErrors::decode_text(b"Access denied", &[]),
            &credential(),
        );
        assert!(!plain.to_string().contains("bug"), "{plain}");
    }
}
