//! A Qlik Sense Enterprise on Windows site's Repository Service (QRS) API, in memory, for
//! tests and the demo: what the operator uses of a client-managed site, shaped by Qlik's
//! `Repository.json` (`../shared/qlik-api/qrs/`, checked by `tests/emulator_qrs.rs`).
//!
//! - Mutual TLS, HTTP/1.1: a CA generated per site signs the serving certificate and a
//!   client certificate (CN `QlikClient`), like the `root.pem`, `client.pem` and
//!   `client_key.pem` the QMC exports. The server requires a client certificate chaining to
//!   that CA: without one, or with another CA's, the TLS handshake fails.
//! - Every QRS request needs a matching Xrfkey in the query and the header, and an
//!   accepted `X-Qlik-User` (`guard`), else 403.
//! - `GET /qrs/about`; virtual proxies (`virtual_proxies`: lists with `filter`, count, get,
//!   `PUT` with `modifiedDate` concurrency); data connections (`data_connections`: the
//!   password never returned).
//! - A control API under `/_emulator/` ([`control::HELP`]): seeding and reading back,
//!   an administrator's edits (now, or right after the operator's next read), the request
//!   log with the Xrfkeys seen, counters, faults.
//!
//! [`QrsSite`] (this file): configuration, start and stop; I/O. `dispatch`: the pipeline.
//! Pure: `routes`, `guard`, `filter`, `schema`, `api`, `state`, `record`, the handlers and
//! `control`. Connections, TLS and request reading are the cloud emulator's `server` and
//! `tls`.

mod api;
pub mod control;
mod data_connections;
mod dispatch;
mod filter;
mod guard;
mod record;
mod routes;
pub mod schema;
mod state;
mod virtual_proxies;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use super::Error;
pub use guard::{USER_REFUSAL, XSRF_REFUSAL};
pub use record::RecordedRequest;
pub use routes::QrsOperation;

use super::random::Rng;
use super::{server, tls};
use dispatch::Site;
use state::QrsState;

/// A user for `X-Qlik-User: UserDirectory=<directory>; UserId=<id>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QlikUser {
    pub directory: String,
    pub id: String,
}

impl QlikUser {
    /// Qlik's service account for API access, `INTERNAL\sa_api`.
    pub fn sa_api() -> QlikUser {
        QlikUser {
            directory: "INTERNAL".to_owned(),
            id: "sa_api".to_owned(),
        }
    }

    /// The `X-Qlik-User` header value naming this user.
    pub fn header_value(&self) -> String {
        format!("UserDirectory={}; UserId={}", self.directory, self.id)
    }
}

impl std::fmt::Display for QlikUser {
    /// `DIRECTORY\id`, as QRS writes `modifiedByUserName`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\\{}", self.directory, self.id)
    }
}

impl std::str::FromStr for QlikUser {
    type Err = String;

    /// `DIRECTORY\id`.
    fn from_str(text: &str) -> Result<QlikUser, String> {
        match text.split_once('\\') {
            Some((directory, id)) if !directory.is_empty() && !id.is_empty() => Ok(QlikUser {
                directory: directory.to_owned(),
                id: id.to_owned(),
            }),
            _ => Err(format!("{text:?} is not DIRECTORY\\id")),
        }
    }
}

/// How to start a site. `Default`: loopback, a free port, `INTERNAL\sa_api`, QSEoW
/// November 2022 (`38.22.0`, the version of the `Repository.json` it is checked against).
#[derive(Clone, Debug)]
pub struct QrsSiteConfig {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Names and addresses the serving certificate is valid for.
    pub tls_names: Vec<String>,
    /// The users an `X-Qlik-User` header may name; the first owns seeded data connections.
    pub users: Vec<QlikUser>,
    /// What `GET /qrs/about` reports as `buildVersion` (at most 43 characters).
    pub build_version: String,
}

impl Default for QrsSiteConfig {
    fn default() -> Self {
        QrsSiteConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            tls_names: vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
            users: vec![QlikUser::sa_api()],
            build_version: "38.22.0".to_owned(),
        }
    }
}

/// A running site. Dropping it (or [`QrsSite::shutdown`]) stops the server.
pub struct QrsSite {
    base_url: String,
    local_addr: SocketAddr,
    ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
    site: Arc<Site>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for QrsSite {
    // The client key is left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QrsSite")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// A client certificate and key (PEM) signed by a CA no site trusts, for "wrong
/// certificate" tests.
pub fn untrusted_client_identity() -> Result<(String, String), Error> {
    tls::untrusted_client_identity()
}

/// A rustls client configuration (ring provider) that trusts only `ca_pem` and presents
/// `cert_pem` with `key_pem`: what a QRS client needs, e.g. for
/// `reqwest::ClientBuilder::tls_backend_preconfigured`.
pub fn client_tls_config(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<rustls::ClientConfig, Error> {
    tls::client_config_with_identity(ca_pem, cert_pem, key_pem)
}

impl QrsSite {
    /// Binds, generates the CA and certificates, and serves in the background on the
    /// current Tokio runtime.
    pub async fn start(config: QrsSiteConfig) -> Result<QrsSite, Error> {
        if config.users.is_empty() {
            return Err(Error::Config(
                "a QRS site needs at least one user".to_owned(),
            ));
        }
        if config.build_version.is_empty() || config.build_version.chars().count() > 43 {
            return Err(Error::Config(
                "build_version must be 1 to 43 characters (About.buildVersion)".to_owned(),
            ));
        }
        let rng = Rng::from_os().map_err(Error::Random)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Listen {
                address: config.listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| Error::Listen {
            address: config.listen,
            source,
        })?;
        let base_url = format!("https://{}", super::connectable(local_addr));
        let tls = tls::generate_mutual(&config.tls_names)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
        let site = Arc::new(Site {
            state: Mutex::new(QrsState::new(rng)),
            started: Instant::now(),
            default_base: base_url.clone(),
            users: config.users,
            build_version: config.build_version,
        });
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server::serve(
            listener,
            Some(acceptor),
            site.clone(),
            stopped,
        ));
        tracing::info!(%base_url, "emulated QRS site listening");
        Ok(QrsSite {
            base_url,
            local_addr,
            ca_pem: tls.ca_pem,
            client_cert_pem: tls.client_cert_pem,
            client_key_pem: tls.client_key_pem,
            site,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `https://127.0.0.1:<port>`, without `/qrs`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The address the server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// PEM of the CA that signed the serving and the client certificate (QMC's `root.pem`).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// PEM of the client certificate, CN `QlikClient` (QMC's `client.pem`).
    pub fn client_cert_pem(&self) -> &str {
        &self.client_cert_pem
    }

    /// PKCS#8 PEM of the client certificate's key (QMC's `client_key.pem`).
    pub fn client_key_pem(&self) -> &str {
        &self.client_key_pem
    }

    /// A client configuration with this site's CA and client identity.
    pub fn client_tls_config(&self) -> Result<rustls::ClientConfig, Error> {
        client_tls_config(&self.ca_pem, &self.client_cert_pem, &self.client_key_pem)
    }

    /// Seeds a virtual proxy with `prefix`, `additionalResponseHeaders` and
    /// `websocketCrossOriginWhiteList` (as `POST /_emulator/qrs/virtualproxies` does,
    /// without checking lengths); its id.
    pub fn seed_virtual_proxy(&self, prefix: &str, headers: &str, allow_list: &[String]) -> String {
        let by = state::user_name(&self.site.users[0]);
        self.site
            .lock()
            .seed_virtual_proxy(prefix, "", headers, allow_list, &by)
    }

    /// Stops accepting, closes open connections and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for QrsSite {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
