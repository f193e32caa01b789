//! A typed client for the Repository Service (QRS) API of a client-managed site (Qlik
//! Sense Enterprise on Windows): the connection check, virtual proxies (their
//! `additionalResponseHeaders` and host allow list) and data connection credentials.
//! Does network I/O (HTTPS only, with mutual TLS).
//!
//! ```no_run
//! # use qlik_csp_operator::tenant::qrs::{ClientIdentity, QlikUser, QrsClient, QrsClientConfig};
//! # async fn example(cert: String, key: String) -> Result<(), qlik_csp_operator::tenant::Error> {
//! let client = QrsClient::new(QrsClientConfig::new(
//!     "https://qlik.corp.example:4242",
//!     ClientIdentity::from_pem(cert, key)?,
//!     QlikUser::new("INTERNAL", "sa_api"),
//! ))?;
//! let build = client.about().await?.build_version;
//! # Ok(()) }
//! ```
//!
//! It shares the cloud client's conventions: one [`Error`] type with bounded reasons,
//! capped jittered retries of idempotent requests, a site-wide pause on `429
//! Retry-After`, a cap on response bodies, the [`RequestObserver`] metrics hook
//! (operations named `qrs.*`), and no credential in any error: pushed passwords are
//! scrubbed from what the site answers. What differs is the site's protocol:
//! - Authentication is the client certificate exported from the QMC (mutual TLS) plus
//!   the user to act as (`X-Qlik-User`); there is no token. A site that refuses the
//!   certificate in the handshake gives [`Error::Unauthorized`], not a transport error.
//! - Every request (every attempt of a retry too) carries a fresh random Xrfkey in the
//!   `xrfkey` query parameter and the `X-Qlik-Xrfkey` header ([`xrfkey`]).
//! - Entities are changed by GET-modify-PUT of the whole entity with the `modifiedDate`
//!   it was read with; a stale one gives 409, [`Error::Conflict`]: read again and redo.
//!   [`VirtualProxy`] and [`QrsDataConnection`] therefore keep every field as read.
//! - The site sets no rate limits, so there are no budgets, only the 429 pause.
//!
//! Modules: `call` (one request, its URL, the filter syntax), `http` (sending, retries),
//! `status` (error mapping), [`identity`] (certificate, key,
//! user), `refusal` (the handshake alerts), [`wire`] (the entities), `virtual_proxies`,
//! `data_connections` (the operations), [`response_headers`] (editing one line of
//! `additionalResponseHeaders`, pure), [`xrfkey`].

mod call;
mod data_connections;
mod http;
pub mod identity;
mod refusal;
pub mod response_headers;
mod status;
mod virtual_proxies;
pub mod wire;
pub mod xrfkey;

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderValue;
use tokio::time::Instant;
use url::Url;

pub use identity::{ClientIdentity, QlikUser};
pub use response_headers::{ADDITIONAL_RESPONSE_HEADERS_MAX, header_value, with_header};
pub use wire::{About, InvalidEntity, QrsDataConnection, VirtualProxy};

pub use super::client::RequestObserver;
use super::client::{MAX_RESPONSE_BYTES, USER_AGENT};
use super::rate_limit::Pause;
use super::urls::parse_base_url;
use super::{CredentialSource, Error, RetryPolicy, tls};

/// How to reach one client-managed site's QRS API.
#[derive(Clone)]
pub struct QrsClientConfig {
    /// `https://<host>:4242`, without a path.
    pub base_url: String,
    /// The client certificate and key (QMC: `client.pem`, `client_key.pem`).
    pub identity: ClientIdentity,
    /// Extra CA certificates (PEM) to trust besides the platform roots: the site's own CA
    /// (QMC: `root.pem`), which signed its server certificate.
    pub ca_bundle: Option<String>,
    /// The user to act as (`X-Qlik-User`).
    pub user: QlikUser,
    /// The limit on establishing a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// The limit on one attempt of one request, from sending to the end of the body.
    pub request_timeout: Duration,
    /// How to retry.
    pub retry: RetryPolicy,
    /// Told about every request (for metrics); `None` observes nothing.
    pub observer: Option<Arc<dyn RequestObserver>>,
    /// The most bytes of a response body read; a longer body fails the request with
    /// [`Error::ResponseTooLarge`].
    pub max_response_bytes: usize,
}

impl std::fmt::Debug for QrsClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QrsClientConfig")
            .field("base_url", &self.base_url)
            .field("identity", &self.identity)
            .field("ca_bundle", &self.ca_bundle.as_ref().map(|_| "<PEM>"))
            .field("user", &self.user)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .field("observer", &self.observer.is_some())
            .field("max_response_bytes", &self.max_response_bytes)
            .finish()
    }
}

impl QrsClientConfig {
    /// Defaults like the cloud client's: 10 s to connect, 30 s per attempt, the default
    /// retries, bodies up to [`MAX_RESPONSE_BYTES`], no extra CA.
    pub fn new(
        base_url: impl Into<String>,
        identity: ClientIdentity,
        user: QlikUser,
    ) -> QrsClientConfig {
        QrsClientConfig {
            base_url: base_url.into(),
            identity,
            ca_bundle: None,
            user,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            observer: None,
            max_response_bytes: MAX_RESPONSE_BYTES,
        }
    }
}

/// A typed client for one site's QRS API. Cheap to clone; clones share the connection
/// pool and the site-wide pause.
///
/// A new certificate (rotated in its Secret) needs a new client: build one, and
/// [`QrsClient::carry_pause_from`] the old one.
#[derive(Clone)]
pub struct QrsClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    /// The `X-Qlik-User` header, checked once.
    user_header: HeaderValue,
    /// Named in `Unauthorized`/`Forbidden` errors: the certificate's source and the user.
    credential: CredentialSource,
    pause: Pause,
    config: QrsClientConfig,
    rng: ring::rand::SystemRandom,
}

impl std::fmt::Debug for QrsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QrsClient")
            .field("base_url", &self.inner.base.as_str())
            .field("credential", &self.inner.credential)
            .finish_non_exhaustive()
    }
}

impl QrsClient {
    /// Builds a client for the site at `config.base_url`.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`], [`Error::UnsupportedUrl`] (not `https://host[:port]`),
    /// [`Error::InvalidConfig`] (certificate, key or user), [`Error::CaBundle`],
    /// [`Error::Tls`], [`Error::BuildClient`].
    pub fn new(config: QrsClientConfig) -> Result<QrsClient, Error> {
        let base = parse_base_url(&config.base_url, false)?;
        let user_header = config.user.header()?;
        let (chain, key) = config.identity.der()?;
        let tls = tls::mutual_client_config(config.ca_bundle.as_deref(), chain, key)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .build()
            .map_err(Error::BuildClient)?;
        let credential = CredentialSource::Described(format!(
            "{} (user {})",
            config.identity.source(),
            config.user
        ));
        Ok(QrsClient {
            inner: Arc::new(Inner {
                http,
                base,
                user_header,
                credential,
                pause: Pause::default(),
                config,
                rng: ring::rand::SystemRandom::new(),
            }),
        })
    }

    /// The site's base URL, `https://host:port` without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.inner.base.as_str().trim_end_matches('/')
    }

    /// The user the client acts as.
    pub fn user(&self) -> &QlikUser {
        &self.inner.config.user
    }

    /// The remaining site-wide pause a `429 Retry-After` imposed, if one is in force.
    pub fn paused_for(&self) -> Option<Duration> {
        self.inner.pause.paused_for(Instant::now())
    }

    /// Takes over `previous`'s site-wide pause, if longer than this client's: for a
    /// client built to replace another for the same site (a rotated certificate, a new
    /// CA), so that rebuilding the client does not end a pause the site asked for.
    pub fn carry_pause_from(&self, previous: &QrsClient) {
        if let Some(until) = previous.inner.pause.paused_until() {
            self.inner.pause.pause_until(until);
        }
    }
}
