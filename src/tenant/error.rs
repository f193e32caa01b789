//! The tenant client's one error type: what went wrong talking to a tenant, with the
//! bounded reason, transience and `Retry-After` the controllers act on. No I/O.
//!
//! What the tenant said about a failure is decoded in [`super::error_body`];
//! [`ApiError`] and [`ApiErrors`] are re-exported here, where they have always been
//! reachable.
//!
//! # Guarantees
//! No variant holds a credential: messages name where a credential came from
//! ([`CredentialSource`]), never its value, and decoded error bodies are scrubbed of the
//! secrets the client holds before they are stored (see [`super::error_body`]).

use std::time::Duration;

use super::auth::CredentialSource;
pub use super::error_body::{ApiError, ApiErrors};

/// What went wrong talking to a tenant. [`Error::reason`] gives a bounded, CamelCase
/// condition reason; [`Error::is_transient`] says whether retrying later can help.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The tenant URL does not parse.
    #[error("invalid tenant URL {url:?}")]
    InvalidUrl {
        /// The URL as configured.
        url: String,
        /// Why it does not parse.
        #[source]
        source: url::ParseError,
    },
    /// The tenant URL is not `https://host[:port]` (plain HTTP, a path, a query, …).
    #[error("invalid tenant URL {url:?}: {problem}")]
    UnsupportedUrl {
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The `caBundle` PEM could not be used.
    #[error("failed to load the caBundle: {problem}")]
    CaBundle {
        /// What is wrong with it.
        problem: String,
    },
    /// A part of the client's configuration could not be used: the QRS client certificate
    /// or key, or the `X-Qlik-User`. The problem never quotes a private key.
    #[error("failed to load the {what}: {problem}")]
    InvalidConfig {
        /// Which part, e.g. `client certificate`, `client key`, `QRS user`.
        what: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The TLS configuration could not be built (e.g. the client key does not belong to
    /// the client certificate).
    #[error("failed to build the TLS configuration")]
    Tls(#[source] rustls::Error),
    /// The HTTP client could not be built.
    #[error("failed to build the HTTP client")]
    BuildClient(#[source] reqwest::Error),

    /// 401, or the OAuth token endpoint refused the client credentials.
    #[error("the tenant rejected the credential in {credential} ({operation}){detail}")]
    Unauthorized {
        /// The operation, e.g. `csp-origins.list`.
        operation: &'static str,
        /// Where the rejected credential came from.
        credential: CredentialSource,
        /// What the tenant said.
        detail: ApiErrors,
    },
    /// 403: the credential is valid but lacks the permission.
    #[error("the credential in {credential} is not allowed to {operation}{detail}")]
    Forbidden {
        /// The operation, e.g. `csp-origins.create`.
        operation: &'static str,
        /// Where the credential came from.
        credential: CredentialSource,
        /// What the tenant said.
        detail: ApiErrors,
    },
    /// 404.
    #[error("failed to {operation}: not found{detail}")]
    NotFound {
        /// The operation.
        operation: &'static str,
        /// What the tenant said.
        detail: ApiErrors,
    },
    /// 409 that is not a limit (e.g. a duplicate).
    #[error("failed to {operation}: conflict{detail}")]
    Conflict {
        /// The operation.
        operation: &'static str,
        /// What the tenant said.
        detail: ApiErrors,
    },
    /// A tenant limit was reached (256 CSP entries, 5 OAuth client secrets, keys per user).
    #[error("failed to {operation}: a tenant limit was reached{detail}")]
    LimitReached {
        /// The operation.
        operation: &'static str,
        /// What the tenant said.
        detail: ApiErrors,
    },
    /// 400 or 422: the tenant rejected the request as invalid.
    #[error("failed to {operation}: the tenant rejected the request{detail}")]
    BadRequest {
        /// The operation.
        operation: &'static str,
        /// What the tenant said.
        detail: ApiErrors,
    },
    /// 429 after the retries, or a tenant-wide pause (`Retry-After`) longer than the
    /// client waits out itself; then the request was not sent. The message leaves the wait
    /// out on purpose: it would change on every attempt, and so would every condition
    /// message and event built from it (a status write per reconcile).
    #[error("failed to {operation}: rate limited by the tenant")]
    RateLimited {
        /// The operation.
        operation: &'static str,
        /// How long until the tenant's pause ends (requeue no earlier), when known.
        retry_after: Option<Duration>,
    },
    /// 5xx after the retries.
    #[error("failed to {operation}: the tenant answered {status}{detail}")]
    TenantUnavailable {
        /// The operation.
        operation: &'static str,
        /// The HTTP status.
        status: u16,
        /// What the tenant said.
        detail: ApiErrors,
    },
    /// Any other status the operation does not expect.
    #[error("failed to {operation}: unexpected status {status}{detail}")]
    UnexpectedStatus {
        /// The operation.
        operation: &'static str,
        /// The HTTP status.
        status: u16,
        /// What the tenant said.
        detail: ApiErrors,
    },
    /// The tenant could not be reached (DNS, connect, TLS, timeout) after the retries.
    #[error("failed to {operation}: could not reach the tenant")]
    Transport {
        /// The operation.
        operation: &'static str,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The response body is longer than the client reads
    /// ([`ClientConfig::max_response_bytes`](super::ClientConfig::max_response_bytes));
    /// reading stopped at the cap.
    #[error("failed to {operation}: the tenant's response (status {status}) exceeds {limit} bytes")]
    ResponseTooLarge {
        /// The operation.
        operation: &'static str,
        /// The HTTP status of the response.
        status: u16,
        /// The cap, in bytes.
        limit: usize,
    },
    /// The tenant answered with a body the client does not understand.
    #[error("failed to {operation}: invalid response from the tenant: {problem}")]
    InvalidResponse {
        /// The operation.
        operation: &'static str,
        /// What is wrong with the response. Never contains response values: a value in a
        /// misplaced field could be a credential.
        problem: String,
    },
    /// More than one object matches what should name exactly one (two QRS virtual proxies
    /// with the same prefix): the operator will not guess which one to change.
    #[error("failed to {operation}: {problem}")]
    Ambiguous {
        /// The operation.
        operation: &'static str,
        /// What matched more than once, without any response value.
        problem: String,
    },
    /// The system's random number generator failed (the QRS client draws a fresh Xrfkey
    /// for every request). Nothing was sent.
    #[error("failed to {operation}: the system random number generator failed")]
    RandomUnavailable {
        /// The operation.
        operation: &'static str,
    },
    /// A list answered 200 but said that it left some items out (its `errors` array).
    /// The tenant could not load them; asking again later may give the whole list.
    #[error("failed to {operation}: the tenant left items out of the list{detail}")]
    IncompleteList {
        /// The operation.
        operation: &'static str,
        /// What the tenant said about the missing items.
        detail: ApiErrors,
    },
    /// The email configuration cannot be written with `PUT`: its provider is not
    /// `BasicAuth` (a `Microsoft365` provider's secret is a `clientSecret`, not an SMTP
    /// password). Nothing was sent.
    #[error(
        "failed to {operation}: the email configuration's provider is {provider}, not BasicAuth"
    )]
    UnsupportedEmailProvider {
        /// The operation.
        operation: &'static str,
        /// The configuration's `serviceProvider`.
        provider: String,
    },
    /// The email configuration lacks fields a `PUT` must send and the operator does not own
    /// (they are set in the Management Console). Nothing was sent.
    #[error("failed to {operation}: the email configuration has no {}", missing.join(", "))]
    IncompleteEmailConfig {
        /// The operation.
        operation: &'static str,
        /// The absent fields, as the definition names them.
        missing: Vec<&'static str>,
    },
    /// The tenant refused the email configuration it was asked to save (400
    /// `UpdateEmailConfigError`): its check of the connection with the given credentials
    /// failed, or a field is invalid. The previous configuration stays.
    #[error("failed to {operation}: the tenant refused the configuration{detail}")]
    EmailConfigRejected {
        /// The operation.
        operation: &'static str,
        /// What the tenant said (`code`, `title`), scrubbed of the password.
        detail: ApiErrors,
    },
    /// A non-idempotent request (`POST`) may or may not have been applied: the connection
    /// dropped or timed out after it was sent, or the tenant answered 5xx. Look the object
    /// up (e.g. [`TenantClient::find_csp_origins_by_origin`]) before trying again.
    ///
    /// [`TenantClient::find_csp_origins_by_origin`]: super::TenantClient::find_csp_origins_by_origin
    #[error("the outcome of {operation} is unknown: look it up before retrying")]
    OutcomeUnknown {
        /// The operation.
        operation: &'static str,
        /// What happened to the request.
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// A bounded CamelCase reason for conditions, events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::InvalidUrl { .. }
            | Error::UnsupportedUrl { .. }
            | Error::CaBundle { .. }
            | Error::InvalidConfig { .. }
            | Error::Tls(_)
            | Error::BuildClient(_) => "InvalidConfig",
            Error::Unauthorized { .. } => "Unauthorized",
            Error::Forbidden { .. } => "Forbidden",
            Error::NotFound { .. } => "NotFound",
            Error::Conflict { .. } => "Conflict",
            Error::LimitReached { .. } => "LimitReached",
            Error::BadRequest { .. } => "BadRequest",
            Error::RateLimited { .. } => "RateLimited",
            Error::TenantUnavailable { .. } => "TenantUnavailable",
            Error::UnexpectedStatus { .. } => "UnexpectedStatus",
            Error::Transport { .. } => "Transport",
            Error::InvalidResponse { .. } => "InvalidResponse",
            Error::ResponseTooLarge { .. } => "ResponseTooLarge",
            Error::IncompleteList { .. } => "IncompleteList",
            Error::Ambiguous { .. } => "Ambiguous",
            Error::RandomUnavailable { .. } => "RandomUnavailable",
            Error::OutcomeUnknown { .. } => "OutcomeUnknown",
            Error::UnsupportedEmailProvider { .. } => "Unsupported",
            Error::IncompleteEmailConfig { .. } => "IncompleteConfig",
            Error::EmailConfigRejected { .. } => "ConfigRejected",
        }
    }

    /// Whether retrying later, without any change to the spec or the credential, can help.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::RateLimited { .. }
                | Error::TenantUnavailable { .. }
                | Error::Transport { .. }
                | Error::IncompleteList { .. }
                | Error::RandomUnavailable { .. }
                | Error::OutcomeUnknown { .. }
        )
    }

    /// The HTTP status the tenant answered, for the variants that stand for one status.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Unauthorized { .. } => Some(401),
            Error::Forbidden { .. } => Some(403),
            Error::NotFound { .. } => Some(404),
            Error::RateLimited { .. } => Some(429),
            Error::TenantUnavailable { status, .. } | Error::UnexpectedStatus { status, .. } => {
                Some(*status)
            }
            Error::OutcomeUnknown { source, .. } => source.status(),
            _ => None,
        }
    }

    /// For [`Error::RateLimited`]: how long until the tenant's pause ends, the longest
    /// `Retry-After` known for the whole tenant. A controller requeues no earlier (see
    /// [`crate::controller::backoff`]).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Builds the error for a non-success `status` and its (already scrubbed) body.
    pub(crate) fn from_status(
        operation: &'static str,
        status: u16,
        detail: ApiErrors,
        credential: &CredentialSource,
    ) -> Error {
        let credential = credential.clone();
        match status {
            401 => Error::Unauthorized {
                operation,
                credential,
                detail,
            },
            403 if detail.mentions_limit() => Error::LimitReached { operation, detail },
            403 => Error::Forbidden {
                operation,
                credential,
                detail,
            },
            404 => Error::NotFound { operation, detail },
            400 | 409 | 422 if detail.mentions_limit() => Error::LimitReached { operation, detail },
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

    /// An [`Error::InvalidResponse`] for a body that does not decode.
    pub(crate) fn decode(operation: &'static str, err: &serde_json::Error) -> Error {
        // serde_json's message can quote the offending value, which may be a token: keep
        // only the category and position.
        Error::InvalidResponse {
            operation,
            problem: format!(
                "{:?} error at line {} column {}",
                err.classify(),
                err.line(),
                err.column()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> CredentialSource {
        CredentialSource::Secret {
            namespace: "ns".into(),
            name: "qlik".into(),
            key: "apiKey".into(),
        }
    }

    #[test]
    fn a_rate_limited_message_does_not_count_down() {
        // Conditions and events are built from it: a message that changed with the
        // remaining wait would be a status write on every reconcile during a pause.
        let at = |secs| Error::RateLimited {
            operation: "csp-origins.list",
            retry_after: Some(Duration::from_secs(secs)),
        };
        assert_eq!(at(600).to_string(), at(1).to_string());
        assert_eq!(at(599).retry_after(), Some(Duration::from_secs(599)));
    }

    #[test]
    fn a_body_beyond_the_cap_is_a_bounded_permanent_error() {
        let err = Error::ResponseTooLarge {
            operation: "csp-origins.list",
            status: 200,
            limit: 2_097_152,
        };
        assert_eq!(err.reason(), "ResponseTooLarge");
        assert!(!err.is_transient());
        assert_eq!(
            err.to_string(),
            "failed to csp-origins.list: the tenant's response (status 200) exceeds 2097152 bytes"
        );
    }

    #[test]
    fn statuses_map_to_reasons_and_transience() {
        let cases = [
            (400, "BadRequest", false),
            (401, "Unauthorized", false),
            (403, "Forbidden", false),
            (404, "NotFound", false),
            (409, "Conflict", false),
            (406, "UnexpectedStatus", false),
            (429, "RateLimited", true),
            (500, "TenantUnavailable", true),
            (503, "TenantUnavailable", true),
        ];
        for (status, reason, transient) in cases {
            let err =
                Error::from_status("csp-origins.list", status, ApiErrors::default(), &source());
            assert_eq!(err.reason(), reason, "{status}");
            assert_eq!(err.is_transient(), transient, "{status}");
            assert!(err.status().is_none_or(|s| s == status), "{status}");
        }
    }

    #[test]
    fn limit_errors_are_recognised_from_the_body() {
        let detail = ApiErrors::decode(
            br#"{"errors":[{"code":"OAUTH-14","title":"The max number of client secrets is 5"}]}"#,
            &[],
        );
        let err = Error::from_status("oauth-clients.create-secret", 409, detail, &source());
        assert_eq!(err.reason(), "LimitReached");
    }

    #[test]
    fn unauthorized_names_the_secret_the_credential_came_from() {
        let err = Error::from_status("csp-origins.list", 401, ApiErrors::default(), &source());
        assert_eq!(
            err.to_string(),
            "the tenant rejected the credential in Secret ns/qlik key apiKey (csp-origins.list)"
        );
    }

    #[test]
    fn decode_errors_do_not_quote_the_offending_value() {
        let err = serde_json::from_str::<u32>(r#""tok-en-value""#).unwrap_err();
        let shown = Error::decode("oauth.token", &err).to_string();
        assert!(!shown.contains("tok-en-value"), "{shown}");
        assert_eq!(
            Error::decode("oauth.token", &err).reason(),
            "InvalidResponse"
        );
    }

    #[test]
    fn an_incomplete_list_is_transient_and_says_what_the_tenant_said() {
        let err = Error::IncompleteList {
            operation: "data-connections.list",
            detail: ApiErrors::decode(
                br#"{"errors":[{"code":"DCERROR-0010","title":"Bad gateway"}]}"#,
                &[],
            ),
        };
        assert_eq!(err.reason(), "IncompleteList");
        assert!(err.is_transient());
        assert_eq!(
            err.to_string(),
            "failed to data-connections.list: the tenant left items out of the list: Bad gateway (DCERROR-0010)"
        );
    }

    #[test]
    fn outcome_unknown_is_transient_and_keeps_the_cause() {
        let err = Error::OutcomeUnknown {
            operation: "csp-origins.create",
            source: Box::new(Error::from_status(
                "csp-origins.create",
                502,
                ApiErrors::default(),
                &source(),
            )),
        };
        assert_eq!(err.reason(), "OutcomeUnknown");
        assert!(err.is_transient());
        assert_eq!(err.status(), Some(502));
        assert!(err.to_string().contains("look it up"));
    }
}
