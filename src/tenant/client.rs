//! The HTTP core of [`TenantClient`]: building the client, and sending one logical request
//! with rate limiting, authentication, retries and error mapping. Does network I/O.
//!
//! # Retries
//! - `429`: the whole tenant pauses for `Retry-After` (or a backoff when absent), however
//!   long (up to [`MAX_PAUSE`]): every clone of the client, so every controller, holds
//!   its requests to the tenant until then. A pause up to
//!   [`RetryPolicy::max_retry_after`] is waited out and the request retried, `POST`
//!   included (the tenant did not process it). During a longer pause every request fails
//!   at once, without a network call, with [`Error::RateLimited`] carrying the remaining
//!   wait, so that no caller sleeps for minutes and controllers requeue for the pause's
//!   end instead.
//! - `5xx`, timeouts and dropped connections: idempotent requests (`GET`, `PUT`,
//!   `PATCH`, `DELETE`, and `POST` actions marked safe to repeat, such as enabling an
//!   automation or checking a connection) are retried with capped, jittered exponential
//!   backoff. Any other `POST` is not: it may have been applied, so it fails with
//!   [`Error::OutcomeUnknown`] and the caller looks the object up first. Connection
//!   failures before anything was sent are retried for every method.
//! - `401`: retried once with a fresh access token (OAuth), or with the new credential if
//!   it was swapped while the request was in flight.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, LOCATION};
use reqwest::{Method, StatusCode};
use secrecy::zeroize::Zeroize;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use url::Url;

use super::auth::{Auth, Bearer, Credential, CredentialSource};
use super::error::{ApiErrors, Error};
use super::rate_limit::{Budget, RateLimiter, RateLimits};
use super::retry::{RetryPolicy, jitter, throttle_delay};
use super::tls;
use super::urls::{next_page, parse_base_url, same_origin};
use super::wire::Page;

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("qlik-csp-operator/", env!("CARGO_PKG_VERSION"));

/// The most pages one list follows before the tenant's paging is considered broken.
const MAX_PAGES: usize = 1_000;

/// The longest tenant-wide pause a `Retry-After` can impose; a longer one (or a date far
/// ahead) counts as this long, after which one request asks again. Bounds what a broken or
/// hostile tenant answer can do, and keeps the arithmetic on instants from overflowing.
pub const MAX_PAUSE: Duration = Duration::from_secs(3600);

/// The default cap on a response body: 2 MiB. Qlik's largest answers are pages of at most
/// 100 entries; a CSP entry is at most 512 + 256 + 1,024 characters of name, origin and
/// description (Qlik's `maxLength`s) plus an id, two dates and 13 booleans, about 11 KB
/// even if every character were sent `\u`-escaped, so a page stays under 1.2 MB; the
/// compiled header is at most 6,144 characters (37 KB escaped); API key pages are
/// smaller. Anything larger is not a Qlik answer, and the cap bounds the memory one
/// request can take.
pub const MAX_RESPONSE_BYTES: usize = 2 * 1024 * 1024;

/// A response body read up to a cap.
pub(crate) enum Capped {
    Body(Vec<u8>),
    /// Longer than the cap (by its `Content-Length`, or once read that far).
    TooLarge,
}

/// Reads `response`'s body, at most `limit` bytes. Chunk by chunk: a body without
/// `Content-Length` (or lying about it) stops at the cap, not at the end of the stream.
pub(crate) async fn read_capped(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<Capped, reqwest::Error> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Ok(Capped::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len().saturating_add(chunk.len()) > limit {
            return Ok(Capped::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Capped::Body(body))
}

/// Told about every request and rate-limit wait (metrics). Implementations must be cheap
/// and must not block: they run on the request path.
pub trait RequestObserver: Send + Sync {
    /// One HTTP exchange of `operation` (a stable name such as `csp-origins.list`) ended
    /// with `status`, or with no response (`None`: connect error, timeout, reset).
    fn request(&self, operation: &'static str, status: Option<u16>);
    /// A request waited `waited` for the client's rate limit or a tenant's 429 pause.
    fn rate_limit_wait(&self, waited: Duration);
}

/// Waits shorter than this are scheduling noise, not rate limiting.
const NOTABLE_WAIT: Duration = Duration::from_millis(5);

/// How to reach one tenant.
#[derive(Clone)]
pub struct ClientConfig {
    /// `https://<tenant>.<region>.qlikcloud.com`, without a path.
    pub base_url: String,
    /// Extra CA certificates (PEM) to trust besides the platform roots, e.g. the emulator's.
    pub ca_bundle: Option<String>,
    /// The limit on establishing a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// The limit on one attempt of one request, from sending to the end of the body.
    pub request_timeout: Duration,
    /// The client's own budgets.
    pub rate_limits: RateLimits,
    /// How to retry.
    pub retry: RetryPolicy,
    /// How long before expiry a cached OAuth access token is replaced.
    pub token_refresh_margin: Duration,
    /// Allows `http://` URLs. Only for local experiments with `qlik-tenant-emulator
    /// --plain-http`: credentials would cross the network in clear text.
    pub allow_plain_http: bool,
    /// Told about every request (for metrics); `None` observes nothing.
    pub observer: Option<Arc<dyn RequestObserver>>,
    /// The most bytes of a response body read; a longer body fails the request with
    /// [`Error::ResponseTooLarge`].
    pub max_response_bytes: usize,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url)
            .field("ca_bundle", &self.ca_bundle.as_ref().map(|_| "<PEM>"))
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("rate_limits", &self.rate_limits)
            .field("retry", &self.retry)
            .field("token_refresh_margin", &self.token_refresh_margin)
            .field("allow_plain_http", &self.allow_plain_http)
            .field("observer", &self.observer.is_some())
            .field("max_response_bytes", &self.max_response_bytes)
            .finish()
    }
}

impl ClientConfig {
    /// Defaults for `base_url`: 10 s to connect, 30 s per attempt, the default budgets and
    /// retries, tokens replaced 5 minutes before expiry, HTTPS only, bodies up to
    /// [`MAX_RESPONSE_BYTES`].
    pub fn new(base_url: impl Into<String>) -> ClientConfig {
        ClientConfig {
            base_url: base_url.into(),
            ca_bundle: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            rate_limits: RateLimits::default(),
            retry: RetryPolicy::default(),
            token_refresh_margin: Duration::from_secs(300),
            allow_plain_http: false,
            observer: None,
            max_response_bytes: MAX_RESPONSE_BYTES,
        }
    }
}

/// The outcome of a delete: a remote "not found" counts as done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deleted {
    /// The tenant deleted it now.
    Deleted,
    /// It was not there (deleted earlier, by someone else, or by a retried request).
    AlreadyGone,
}

/// A typed client for one Qlik Cloud tenant. Cheap to clone; clones share the connection
/// pool, the credential, the token cache and the rate limiter.
///
/// Operations are in [`super::csp_origins`], [`super::api_keys`],
/// [`super::oauth_clients`], [`super::identity`], [`super::data_connections`],
/// [`super::automation_connections`], [`super::email_config`] and [`super::automations`].
#[derive(Clone)]
pub struct TenantClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    config: ClientConfig,
    auth: Auth,
    limiter: RateLimiter,
    /// When the tenant last answered a request (any status but 429 and 5xx): whether it is
    /// serving requests at all, which a caller's backoff takes into account.
    answered_at: std::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for TenantClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantClient")
            .field("base_url", &self.inner.base.as_str())
            .field("auth", &self.inner.auth)
            .field("rate_limits", &self.inner.config.rate_limits)
            .finish_non_exhaustive()
    }
}

/// One logical request.
///
/// Not `Debug`, and its body is never logged: a body may carry a credential the operator
/// pushes into the tenant (a password in a JSON Patch, a connection parameter). Such
/// values are also named in [`Call::redacting`], so that a tenant echoing one in its error
/// answer does not put it into an [`Error`]; the body bytes are zeroed when the call is
/// dropped.
pub(crate) struct Call {
    pub(crate) operation: &'static str,
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) body: Option<(&'static str, Vec<u8>)>,
    /// Whether sending it twice has the effect of sending it once.
    pub(crate) idempotent: bool,
    pub(crate) authenticated: bool,
    /// Whether a 3xx is the answer (the `*/me` endpoints redirect).
    pub(crate) redirect: bool,
    /// Secrets the body carries, scrubbed from the tenant's error answers like the
    /// client's own credential.
    pub(crate) secrets: Vec<SecretString>,
}

impl Drop for Call {
    fn drop(&mut self) {
        if let Some((_, body)) = &mut self.body {
            body.zeroize();
        }
    }
}

impl Call {
    pub(crate) fn new(operation: &'static str, method: Method, url: Url) -> Call {
        let idempotent = method != Method::POST;
        Call {
            operation,
            method,
            url,
            body: None,
            idempotent,
            authenticated: true,
            redirect: false,
            secrets: Vec::new(),
        }
    }

    /// Declares secrets the body carries: they are replaced by `[REDACTED]` in anything
    /// the tenant answers that ends up in an [`Error`].
    pub(crate) fn redacting<'a>(
        mut self,
        secrets: impl IntoIterator<Item = &'a SecretString>,
    ) -> Call {
        self.secrets.extend(secrets.into_iter().cloned());
        self
    }

    /// Marks a `POST` that is safe to send twice (an action that sets a state or only
    /// checks one), so that 5xx and timeouts are retried instead of reported as
    /// [`Error::OutcomeUnknown`].
    pub(crate) fn retry_safe(mut self) -> Call {
        self.idempotent = true;
        self
    }

    pub(crate) fn json<B: serde::Serialize>(mut self, body: &B) -> Result<Call, Error> {
        let bytes = serde_json::to_vec(body).map_err(|e| Error::InvalidResponse {
            operation: self.operation,
            problem: format!("failed to encode the request body: {:?}", e.classify()),
        })?;
        self.body = Some(("application/json", bytes));
        Ok(self)
    }

    fn budget(&self) -> Budget {
        if self.method == Method::GET {
            Budget::Read
        } else {
            Budget::Write
        }
    }
}

/// A response the operation expects (2xx, or 3xx for redirecting endpoints).
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

/// Why one exchange gave no [`Answer`].
#[derive(Debug)]
enum Failed {
    /// No complete response: connect error, timeout, reset.
    Transport(reqwest::Error),
    /// The body is longer than `max_response_bytes`; reading stopped there.
    TooLarge { status: u16 },
}

impl From<reqwest::Error> for Failed {
    fn from(error: reqwest::Error) -> Failed {
        Failed::Transport(error)
    }
}

/// What to do after one attempt.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    Done,
    Reauthenticate,
    /// 429: pause the tenant, then retry.
    Throttled,
    /// 5xx on an idempotent request.
    Backoff,
    /// 5xx on a request that may have been applied.
    Unknown,
    Fail,
}

fn next_after_status(
    status: u16,
    idempotent: bool,
    may_reauthenticate: bool,
    expect_redirect: bool,
) -> Next {
    match status {
        200..=299 => Next::Done,
        300..=399 if expect_redirect => Next::Done,
        401 if may_reauthenticate => Next::Reauthenticate,
        429 => Next::Throttled,
        500..=599 if idempotent => Next::Backoff,
        500..=599 => Next::Unknown,
        _ => Next::Fail,
    }
}

impl TenantClient {
    /// Builds a client for the tenant at `config.base_url`, authenticating with
    /// `credential`, which came from `source` (named in error messages, never the value).
    ///
    /// # Errors
    /// [`Error::InvalidUrl`], [`Error::UnsupportedUrl`] (not `https://host[:port]`),
    /// [`Error::CaBundle`], [`Error::Tls`], [`Error::BuildClient`].
    pub fn new(
        config: ClientConfig,
        credential: Credential,
        source: CredentialSource,
    ) -> Result<TenantClient, Error> {
        let base = parse_base_url(&config.base_url, config.allow_plain_http)?;
        let tls = tls::client_config(config.ca_bundle.as_deref())?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .https_only(!config.allow_plain_http)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .build()
            .map_err(Error::BuildClient)?;
        Ok(TenantClient {
            inner: Arc::new(Inner {
                http,
                base,
                limiter: RateLimiter::new(config.rate_limits),
                auth: Auth::new(credential, source),
                config,
                answered_at: std::sync::Mutex::default(),
            }),
        })
    }

    /// Swaps the credential (e.g. after rotating it) without rebuilding the client. The
    /// cached access token is dropped; requests in flight that get a 401 retry once with
    /// the new credential.
    pub fn set_credential(&self, credential: Credential, source: CredentialSource) {
        tracing::info!(
            tenant = self.inner.base.as_str(),
            kind = credential.kind(),
            source = %source,
            "tenant credential swapped"
        );
        self.inner.auth.set(credential, source);
    }

    /// Where the current credential came from.
    pub fn credential_source(&self) -> CredentialSource {
        self.inner.auth.source()
    }

    /// The tenant's base URL.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// The remaining tenant-wide pause a `429 Retry-After` imposed, if one is in force.
    pub fn paused_for(&self) -> Option<Duration> {
        self.inner.limiter.paused_for(Instant::now())
    }

    /// When the tenant last answered a request of this client with anything but `429` or a
    /// `5xx` (a `404` is an answer too). `None` before its first answer.
    pub fn answered_at(&self) -> Option<Instant> {
        *self
            .inner
            .answered_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes over `previous`'s tenant-wide pause, if longer than this client's: for a
    /// client built to replace another for the same tenant (new URL, CA or budgets), so
    /// that rebuilding the client does not end a pause the tenant asked for.
    pub fn carry_pause_from(&self, previous: &TenantClient) {
        if let Some(until) = previous.inner.limiter.paused_until() {
            self.inner.limiter.pause_until(until);
        }
    }

    pub(crate) fn auth(&self) -> &Auth {
        &self.inner.auth
    }

    pub(crate) fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The URL of an API path given as segments, each percent-encoded as needed.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.clear().extend(segments);
        }
        url
    }

    /// GETs `url` and decodes the JSON answer.
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        url: Url,
    ) -> Result<T, Error> {
        let answer = self
            .execute(&Call::new(operation, Method::GET, url))
            .await?;
        decode(operation, &answer.body)
    }

    /// Sends `call` and decodes the JSON answer.
    pub(crate) async fn call_json<T: DeserializeOwned>(&self, call: Call) -> Result<T, Error> {
        let answer = self.execute(&call).await?;
        decode(call.operation, &answer.body)
    }

    /// DELETEs `url`; 404 counts as done.
    pub(crate) async fn delete(&self, operation: &'static str, url: Url) -> Result<Deleted, Error> {
        match self
            .execute(&Call::new(operation, Method::DELETE, url))
            .await
        {
            Ok(_) => Ok(Deleted::Deleted),
            Err(Error::NotFound { .. }) => Ok(Deleted::AlreadyGone),
            Err(e) => Err(e),
        }
    }

    /// GETs every page of a list, following `links.next.href` from `first`.
    ///
    /// A page that answers 200 but says, in an `errors` array beside its `data`, that some
    /// items were left out (the `data-connections` list does when a dependency fails)
    /// fails the list with [`Error::IncompleteList`]: a list with holes would let a caller
    /// conclude that something is absent.
    pub(crate) async fn list_all<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        first: Url,
    ) -> Result<Vec<T>, Error> {
        let mut items = Vec::new();
        let mut url = first;
        let mut seen = std::collections::HashSet::new();
        loop {
            let page: Page<T> = self.get_json(operation, url).await?;
            if page.left_items_out() {
                let body = serde_json::json!({ "errors": page.errors }).to_string();
                return Err(Error::IncompleteList {
                    operation,
                    detail: self.scrubbed_errors(body.as_bytes(), &[]),
                });
            }
            items.extend(page.data);
            let Some(next) = next_page(&self.inner.base, &page.links) else {
                return Ok(items);
            };
            if seen.len() >= MAX_PAGES || !seen.insert(next.to_string()) {
                return Err(Error::InvalidResponse {
                    operation,
                    problem: "the list's next links never end".to_owned(),
                });
            }
            url = next;
        }
    }

    /// Sends `call` with rate limiting, authentication and retries; returns the answer the
    /// operation expects or the mapped error.
    pub(crate) async fn execute(&self, call: &Call) -> Result<Answer, Error> {
        let op = call.operation;
        let policy = self.inner.config.retry;
        let max_attempts = policy.max_attempts.max(1);
        let mut attempt = 0u32;
        let mut reauthenticated = false;
        loop {
            attempt += 1;
            let waiting = Instant::now();
            let acquired = self
                .inner
                .limiter
                .acquire(call.budget(), policy.max_retry_after)
                .await;
            let waited = waiting.elapsed();
            if let (Some(observer), true) = (&self.inner.config.observer, waited >= NOTABLE_WAIT) {
                observer.rate_limit_wait(waited);
            }
            if let Err(paused) = acquired {
                return Err(Error::RateLimited {
                    operation: op,
                    retry_after: Some(paused.0),
                });
            }
            let bearer = if call.authenticated {
                Some(self.bearer().await?)
            } else {
                None
            };
            let started = Instant::now();
            let result = self.send_once(call, bearer.as_ref()).await;
            let elapsed_ms = started.elapsed().as_millis() as u64;
            if let Some(observer) = &self.inner.config.observer {
                let status = match &result {
                    Ok(answer) => Some(answer.status.as_u16()),
                    Err(Failed::TooLarge { status }) => Some(*status),
                    Err(Failed::Transport(_)) => None,
                };
                observer.request(op, status);
            }
            let answer = match result {
                Ok(answer) => answer,
                Err(Failed::TooLarge { status }) => {
                    let limit = self.inner.config.max_response_bytes;
                    tracing::warn!(
                        operation = op,
                        status,
                        limit,
                        "the tenant's response is too large"
                    );
                    let err = Error::ResponseTooLarge {
                        operation: op,
                        status,
                        limit,
                    };
                    // A create the tenant accepted, whose answer could not be read.
                    if !call.idempotent && (200..300).contains(&status) {
                        return Err(Error::OutcomeUnknown {
                            operation: op,
                            source: Box::new(err),
                        });
                    }
                    return Err(err);
                }
                Err(Failed::Transport(err)) => {
                    // A connect error means nothing reached the tenant.
                    let maybe_applied = !err.is_connect();
                    tracing::debug!(operation = op, method = %call.method, path = call.url.path(), attempt, elapsed_ms, error = %err, "tenant request failed");
                    let err = Error::Transport {
                        operation: op,
                        source: err,
                    };
                    if maybe_applied && !call.idempotent {
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
            if status != 429 && status < 500 {
                let now = Instant::now();
                *self
                    .inner
                    .answered_at
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(now);
            }
            tracing::debug!(operation = op, method = %call.method, path = call.url.path(), status, attempt, elapsed_ms, "tenant request");
            let may_reauthenticate =
                !reauthenticated && bearer.as_ref().is_some_and(|b| self.may_reauthenticate(b));
            match next_after_status(status, call.idempotent, may_reauthenticate, call.redirect) {
                Next::Done => return Ok(answer),
                Next::Reauthenticate => {
                    if let Some(b) = &bearer {
                        self.inner.auth.invalidate(b);
                    }
                    reauthenticated = true;
                    attempt -= 1;
                    tracing::info!(
                        operation = op,
                        "the tenant answered 401: retrying once with a fresh credential"
                    );
                }
                Next::Throttled => {
                    let (asked, delay) =
                        throttle_delay(&answer.headers, &policy, attempt, MAX_PAUSE);
                    // Recorded whatever its length: every request to this tenant, from any
                    // controller, waits or fails fast until it ends.
                    let now = Instant::now();
                    let remaining = self
                        .inner
                        .limiter
                        .pause_until(now + delay)
                        .saturating_duration_since(now);
                    tracing::warn!(
                        operation = op,
                        attempt,
                        retry_after_s = asked.map(|d| d.as_secs()),
                        paused_ms = remaining.as_millis() as u64,
                        "rate limited by the tenant: pausing requests to it"
                    );
                    if attempt >= max_attempts || remaining > policy.max_retry_after {
                        return Err(Error::RateLimited {
                            operation: op,
                            retry_after: Some(remaining),
                        });
                    }
                }
                Next::Backoff => {
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
                Next::Unknown => {
                    return Err(Error::OutcomeUnknown {
                        operation: op,
                        source: Box::new(self.status_error(call, &answer)),
                    });
                }
                Next::Fail => return Err(self.status_error(call, &answer)),
            }
        }
    }

    /// One HTTP exchange, body included (at most `max_response_bytes` of it).
    async fn send_once(&self, call: &Call, bearer: Option<&Bearer>) -> Result<Answer, Failed> {
        let mut request = self
            .inner
            .http
            .request(call.method.clone(), call.url.clone())
            .header(ACCEPT, "application/json");
        if let Some(bearer) = bearer {
            // reqwest marks the header sensitive, which keeps it out of its Debug output.
            request = request.bearer_auth(bearer.token.expose_secret());
        }
        if let Some((content_type, body)) = &call.body {
            request = request
                .header(CONTENT_TYPE, *content_type)
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

    /// Whether a 401 for a request sent with `bearer` may be cured by retrying: a cached
    /// access token may have expired early or been revoked, or the credential was swapped.
    fn may_reauthenticate(&self, bearer: &Bearer) -> bool {
        bearer.token_id.is_some() || bearer.generation != self.inner.auth.generation()
    }

    fn status_error(&self, call: &Call, answer: &Answer) -> Error {
        let detail = self.scrubbed_errors(&answer.body, &call.secrets);
        Error::from_status(
            call.operation,
            answer.status.as_u16(),
            detail,
            &self.inner.auth.source(),
        )
    }

    /// The errors in `body`, scrubbed of the client's credentials and of `extra`.
    fn scrubbed_errors(&self, body: &[u8], extra: &[SecretString]) -> ApiErrors {
        let held = self.inner.auth.secrets();
        let secrets: Vec<&str> = held
            .iter()
            .chain(extra)
            .map(|s| s.expose_secret())
            .collect();
        ApiErrors::decode(body, &secrets)
    }

    /// The `Location` of a redirect answer, resolved against the tenant.
    pub(crate) fn location(&self, operation: &'static str, answer: &Answer) -> Result<Url, Error> {
        answer
            .headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|href| same_origin(&self.inner.base, href))
            .ok_or_else(|| Error::InvalidResponse {
                operation,
                problem: format!("expected a redirect with a Location, got {}", answer.status),
            })
    }
}

/// Decodes a JSON body without letting any of its values into the error.
pub(crate) fn decode<T: DeserializeOwned>(
    operation: &'static str,
    body: &[u8],
) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::decode(operation, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_decide_between_done_retry_and_failure() {
        use Next::*;
        let cases = [
            (200, true, false, false, Done),
            (201, false, false, false, Done),
            (302, true, false, true, Done),
            (302, true, false, false, Fail),
            (401, true, true, false, Reauthenticate),
            (401, true, false, false, Fail),
            (429, false, false, false, Throttled),
            (503, true, false, false, Backoff),
            (503, false, false, false, Unknown),
            (500, false, false, false, Unknown),
            (404, true, false, false, Fail),
        ];
        for (status, idempotent, reauth, redirect, want) in cases {
            assert_eq!(
                next_after_status(status, idempotent, reauth, redirect),
                want,
                "{status} idempotent={idempotent}"
            );
        }
    }

    #[test]
    fn the_user_agent_names_the_operator_and_its_version() {
        assert_eq!(
            USER_AGENT,
            format!("qlik-csp-operator/{}", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn a_secret_the_request_carries_is_scrubbed_from_the_tenants_error_answer() {
        let client = TenantClient::new(
            ClientConfig::new("https://tenant.example"),
            Credential::api_key("api-key-value"),
            CredentialSource::Described("test".into()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let password = SecretString::from("smtp-pa55");
        let call = Call::new(
            "email-config.patch",
            Method::PATCH,
            client.url(&["api", "v1", "transports", "email-config"]),
        )
        .redacting([&password]);
        let answer = Answer {
            status: StatusCode::BAD_REQUEST,
            headers: HeaderMap::new(),
            body: br#"{"errors":[{"code":"INPUTCHECK-1","title":"smtp-pa55 is not valid for api-key-value"}]}"#
                .to_vec(),
        };
        let err = client.status_error(&call, &answer);
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("smtp-pa55"), "{shown}");
        assert!(!shown.contains("api-key-value"), "{shown}");
        assert!(shown.contains("INPUTCHECK-1"), "{shown}");
        assert_eq!(err.reason(), "BadRequest");
    }

    #[test]
    fn patch_is_idempotent_and_post_only_when_marked_safe_to_repeat() {
        let url = Url::parse("https://tenant.example/x").unwrap_or_else(|e| panic!("{e}"));
        assert!(Call::new("x", Method::PATCH, url.clone()).idempotent);
        assert!(!Call::new("x", Method::POST, url.clone()).idempotent);
        assert!(Call::new("x", Method::POST, url).retry_safe().idempotent);
    }

    #[test]
    fn the_client_debug_output_never_contains_the_secret() {
        let client = TenantClient::new(
            ClientConfig::new("https://tenant.example"),
            Credential::oauth_client("id", "client-secret-value"),
            CredentialSource::Described("test".into()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let shown = format!("{client:?} {client:#?}");
        assert!(!shown.contains("client-secret-value"), "{shown}");
        assert!(shown.contains("tenant.example"));
    }
}
