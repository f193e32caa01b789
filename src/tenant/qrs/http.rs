//! The HTTP core of [`QrsClient`]: sending one logical request (`call`) with the Xrfkey
//! and `X-Qlik-User`, the site-wide pause, retries, and the error for a refused client
//! certificate (`refusal`) or a failure status (`status`). Does network I/O.
//!
//! # Retries
//! As the cloud client (`tenant::client`): a `429` pauses every request to the site for
//! `Retry-After` and is retried when the pause is short enough; `5xx`, timeouts and
//! dropped connections are retried with capped, jittered backoff for idempotent requests
//! (`GET`, `PUT`), and connect failures for every method. A `PUT` retried after its first
//! attempt was applied gets `409` (the entity's `modifiedDate` moved on): the caller
//! re-reads, finds its change in place, and has nothing left to write. A `401`/`403`, or a
//! client certificate the site refuses in the handshake, is never retried.
//!
//! Every attempt draws a new Xrfkey.

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use rustls::AlertDescription;
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use url::Url;

use super::QrsClient;
use super::call::QrsCall;
use super::refusal::client_certificate_refusal;
use super::status::error_for_status;
use super::xrfkey::{XRFKEY_HEADER, new_xrfkey};
use crate::tenant::client::{Capped, MAX_PAUSE, decode, read_capped};
use crate::tenant::rate_limit::PausedTooLong;
use crate::tenant::retry::{jitter, throttle_delay};
use crate::tenant::{ApiError, ApiErrors, Error};

/// The header naming the user the request acts as.
pub const QLIK_USER_HEADER: &str = "X-Qlik-User";

/// Waits shorter than this are scheduling noise, not a pause.
const NOTABLE_WAIT: std::time::Duration = std::time::Duration::from_millis(5);

/// A successful response.
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: Vec<u8>,
}

/// Why one exchange gave no [`Answer`].
enum Failed {
    Transport(reqwest::Error),
    TooLarge { status: u16 },
}

impl From<reqwest::Error> for Failed {
    fn from(mut error: reqwest::Error) -> Failed {
        // The query holds this request's random Xrfkey: in a message it would make every
        // failure read differently, and a status written on each one would wake the next
        // reconcile, in a loop. The rest of the URL (host, path) says where it went.
        if let Some(url) = error.url_mut() {
            url.set_query(None);
        }
        Failed::Transport(error)
    }
}

impl QrsClient {
    /// The URL of `/qrs/<segments>`, each segment percent-encoded as needed.
    pub(super) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.clear().push("qrs").extend(segments);
        }
        url
    }

    /// Sends `call` and decodes the JSON answer.
    pub(super) async fn call_json<T: DeserializeOwned>(&self, call: QrsCall) -> Result<T, Error> {
        let answer = self.execute(&call).await?;
        decode(call.operation, &answer.body)
    }

    /// Sends `call` with the pause, retries and error mapping; returns a 2xx answer.
    pub(super) async fn execute(&self, call: &QrsCall) -> Result<Answer, Error> {
        let op = call.operation;
        let config = &self.inner.config;
        let policy = config.retry;
        let max_attempts = policy.max_attempts.max(1);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let waiting = Instant::now();
            let paused = self.inner.pause.wait(policy.max_retry_after).await;
            let waited = waiting.elapsed();
            if let (Some(observer), true) = (&config.observer, waited >= NOTABLE_WAIT) {
                observer.rate_limit_wait(waited);
            }
            if let Err(PausedTooLong(remaining)) = paused {
                return Err(Error::RateLimited {
                    operation: op,
                    retry_after: Some(remaining),
                });
            }
            let xrfkey = new_xrfkey(&self.inner.rng)
                .map_err(|_| Error::RandomUnavailable { operation: op })?;
            let started = Instant::now();
            let result = self.send_once(call, &xrfkey).await;
            let elapsed_ms = started.elapsed().as_millis() as u64;
            if let Some(observer) = &config.observer {
                observer.request(
                    op,
                    match &result {
                        Ok(answer) => Some(answer.status.as_u16()),
                        Err(Failed::TooLarge { status }) => Some(*status),
                        Err(Failed::Transport(_)) => None,
                    },
                );
            }
            let answer = match result {
                Ok(answer) => answer,
                Err(Failed::TooLarge { status }) => {
                    let limit = config.max_response_bytes;
                    tracing::warn!(
                        operation = op,
                        status,
                        limit,
                        "the site's response is too large"
                    );
                    let err = Error::ResponseTooLarge {
                        operation: op,
                        status,
                        limit,
                    };
                    if !call.idempotent() && (200..300).contains(&status) {
                        return Err(Error::OutcomeUnknown {
                            operation: op,
                            source: Box::new(err),
                        });
                    }
                    return Err(err);
                }
                Err(Failed::Transport(err)) => {
                    if let Some(alert) = client_certificate_refusal(&err) {
                        tracing::warn!(operation = op, alert = ?alert, "the site refused the client certificate");
                        return Err(self.refused(op, alert));
                    }
                    let maybe_applied = !err.is_connect();
                    tracing::debug!(operation = op, method = %call.method, path = call.url.path(), attempt, elapsed_ms, error = %err, "QRS request failed");
                    let err = Error::Transport {
                        operation: op,
                        source: err,
                    };
                    if maybe_applied && !call.idempotent() {
                        return Err(Error::OutcomeUnknown {
                            operation: op,
                            source: Box::new(err),
                        });
                    }
                    if attempt >= max_attempts {
                        return Err(err);
                    }
                    let delay = policy.backoff(attempt, jitter());
                    tracing::warn!(
                        operation = op,
                        attempt,
                        delay_ms = delay.as_millis() as u64,
                        "retrying after a transport error"
                    );
                    tokio::time::sleep(delay).await;
                    continue;
                }
            };
            let status = answer.status.as_u16();
            tracing::debug!(operation = op, method = %call.method, path = call.url.path(), status, attempt, elapsed_ms, "QRS request");
            match status {
                200..=299 => return Ok(answer),
                429 => {
                    let (asked, delay) =
                        throttle_delay(&answer.headers, &policy, attempt, MAX_PAUSE);
                    let now = Instant::now();
                    let remaining = self
                        .inner
                        .pause
                        .pause_until(now + delay)
                        .saturating_duration_since(now);
                    tracing::warn!(
                        operation = op,
                        attempt,
                        retry_after_s = asked.map(|d| d.as_secs()),
                        paused_ms = remaining.as_millis() as u64,
                        "rate limited by the site: pausing requests to it"
                    );
                    if attempt >= max_attempts || remaining > policy.max_retry_after {
                        return Err(Error::RateLimited {
                            operation: op,
                            retry_after: Some(remaining),
                        });
                    }
                }
                500..=599 if call.idempotent() => {
                    if attempt >= max_attempts {
                        return Err(self.status_error(call, &answer));
                    }
                    let delay = policy.backoff(attempt, jitter());
                    tracing::warn!(
                        operation = op,
                        status,
                        attempt,
                        delay_ms = delay.as_millis() as u64,
                        "retrying after a server error"
                    );
                    tokio::time::sleep(delay).await;
                }
                500..=599 => {
                    return Err(Error::OutcomeUnknown {
                        operation: op,
                        source: Box::new(self.status_error(call, &answer)),
                    });
                }
                _ => return Err(self.status_error(call, &answer)),
            }
        }
    }

    /// One HTTP exchange, body included (at most `max_response_bytes` of it).
    async fn send_once(&self, call: &QrsCall, xrfkey: &str) -> Result<Answer, Failed> {
        let mut request = self
            .inner
            .http
            .request(call.method.clone(), call.url_with(xrfkey))
            .header(ACCEPT, "application/json")
            .header(XRFKEY_HEADER, xrfkey)
            .header(QLIK_USER_HEADER, self.inner.user_header.clone());
        if let Some(body) = &call.body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let mut response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        match read_capped(&mut response, self.inner.config.max_response_bytes).await? {
            Capped::Body(body) => Ok(Answer {
                status,
                headers,
                body,
            }),
            Capped::TooLarge => Err(Failed::TooLarge {
                status: status.as_u16(),
            }),
        }
    }

    fn status_error(&self, call: &QrsCall, answer: &Answer) -> Error {
        let secrets: Vec<&str> = call.secrets.iter().map(|s| s.expose_secret()).collect();
        let detail = ApiErrors::decode_text(&answer.body, &secrets);
        error_for_status(
            call.operation,
            answer.status.as_u16(),
            detail,
            &self.inner.credential,
        )
    }

    /// The error for a client certificate the site refused in the handshake.
    fn refused(&self, operation: &'static str, alert: AlertDescription) -> Error {
        Error::Unauthorized {
            operation,
            credential: self.inner.credential.clone(),
            detail: ApiErrors(vec![ApiError {
                code: Some(format!("{alert:?}")),
                title: Some(
                    "the site refused the client certificate in the TLS handshake".to_owned(),
                ),
                ..ApiError::default()
            }]),
        }
    }
}

#[cfg(test)]
mod tests {
    use reqwest::Method;
    use secrecy::SecretString;

    use super::*;
    use crate::tenant::qrs::{ClientIdentity, QlikUser, QrsClientConfig};

    fn client() -> QrsClient {
        let identity = ClientIdentity::from_pem(
            include_str!("testdata/ec_cert.pem"),
            include_str!("testdata/ec_sec1_key.pem"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let config = QrsClientConfig::new(
            "https://qlik.example:4242",
            identity,
            QlikUser::new("INTERNAL", "sa_api"),
        );
        QrsClient::new(config).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_password_the_request_carries_is_scrubbed_from_the_sites_error_answer() {
        let client = client();
        let password = SecretString::from(r#"db-"pa55""#);
        let call = QrsCall::new(
            "qrs.dataconnection.put",
            Method::PUT,
            client.url(&["dataconnection", "x"]),
        )
        .redacting([password]);
        let answer = Answer {
            status: StatusCode::BAD_REQUEST,
            headers: HeaderMap::new(),
            body: br#"password db-"pa55" refused in {"password":"db-\"pa55\""}"#.to_vec(),
        };
        let err = client.status_error(&call, &answer);
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("pa55"), "{shown}");
        assert!(shown.contains("refused"), "{shown}");
        assert_eq!(err.reason(), "BadRequest");
    }

    #[test]
    fn urls_are_under_qrs_and_the_client_shows_no_key() {
        let client = client();
        assert_eq!(client.base_url(), "https://qlik.example:4242");
        assert_eq!(
            client.url(&["virtualproxyconfig", "a/b"]).as_str(),
            "https://qlik.example:4242/qrs/virtualproxyconfig/a%2Fb"
        );
        let key_line = include_str!("testdata/ec_sec1_key.pem")
            .lines()
            .nth(1)
            .unwrap_or_default();
        let shown = format!("{client:?} {:?}", client.inner.config);
        assert!(!shown.contains(key_line), "{shown}");
        assert!(shown.contains("INTERNAL\\\\sa_api"), "{shown}");
    }

    #[test]
    fn a_refused_certificate_is_unauthorized_and_names_the_alert() {
        let err = client().refused("qrs.about", AlertDescription::UnknownCA);
        assert_eq!(err.reason(), "Unauthorized");
        assert!(!err.is_transient());
        assert_eq!(
            err.to_string(),
            "the tenant rejected the credential in the client certificate (user INTERNAL\\sa_api) (qrs.about): the site refused the client certificate in the TLS handshake (UnknownCA)"
        );
    }
}
