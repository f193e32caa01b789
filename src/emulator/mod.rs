//! The tenant emulator: an in-memory Qlik Cloud tenant served over HTTPS, for tests,
//! benchmarks, the demo and users' own CI. Used by `src/bin/qlik-tenant-emulator.rs`.
//!
//! It serves the endpoints the operator uses, shaped by Qlik's definitions in
//! `../shared/qlik-api/cloud/` (checked by `tests/emulator_conformance.rs`), with real
//! auth, Qlik's limits and tier rate limits, and a control API under `/_emulator/`
//! ([`control::HELP`]) for faults, counters, the clock, reset, and seeding and reading
//! back the secret targets (data and automation connections, the email configuration,
//! automations).
//!
//! - [`Emulator`] (this file): configuration, start and stop. I/O.
//! - `server`: connections, TLS, reading requests. I/O.
//! - `dispatch`: the pipeline route → faults → auth → rate limit → handler → record.
//! - handlers, pure over the state: `csp_origins`, `api_keys`, `oauth`, `identity`,
//!   `data_connections`, `automation_connections`, `email_config`, `automations` (each
//!   with its own state), `control`, and `seeding` with `seed_connections` (the control
//!   API's part for those four).
//! - pure parts: [`routes`], `wire` (requests, responses, Qlik errors), `state`, `auth`,
//!   `paging`, `scim` (list filters), `rate_limit`, `faults`, `duration`, `record`,
//!   `random`, `tls`.
//! - [`qrs`]: a Qlik Sense Enterprise on Windows site's Repository Service (QRS) API with
//!   mutual TLS, the Xrfkey and `X-Qlik-User` checks and `modifiedDate` concurrency, on
//!   the same `server` and `tls` (`qlik-tenant-emulator qrs`).

mod api_keys;
mod auth;
mod automation_connections;
mod automations;
pub mod control;
mod csp_origins;
mod data_connections;
mod dispatch;
mod duration;
mod email_config;
mod faults;
mod identity;
mod oauth;
mod paging;
pub mod qrs;
mod random;
mod rate_limit;
mod record;
pub mod routes;
mod scim;
mod seed_connections;
mod seeding;
mod server;
mod state;
mod tls;
mod wire;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use routes::{Operation, Tier};
pub use wire::codes;

use dispatch::Shared;
use random::{Rng, fingerprint};
use rate_limit::Limits;
use state::{Settings, State};

/// How to start an emulator. `Default` gives Qlik's limits on a random loopback port.
#[derive(Clone)]
pub struct EmulatorConfig {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Bearer tokens accepted as a tenant admin's API keys; they never expire.
    pub admin_api_keys: Vec<String>,
    /// M2M OAuth clients `(client_id, client_secret)`; each acts as its own bot user.
    pub oauth_clients: Vec<(String, String)>,
    /// Serve plain HTTP instead of HTTPS (quick local use only).
    pub plain_http: bool,
    /// Enforce Qlik's tier rate limits.
    pub rate_limits: bool,
    /// Write the CA's PEM here at start.
    pub ca_out: Option<PathBuf>,
    /// The tenant id; random (32 letters and digits, like Qlik's) when `None`.
    pub tenant_id: Option<String>,
    pub tenant_name: String,
    /// Names and addresses the serving certificate is valid for.
    pub tls_names: Vec<String>,
    /// Tier 1 limit (Qlik: 1,000 per minute).
    pub reads_per_minute: u32,
    /// Tier 2 limit (Qlik: 100 per minute).
    pub writes_per_minute: u32,
    /// The window the per-minute limits are evaluated over (Qlik: 5 minutes).
    pub rate_limit_window: Duration,
    /// Qlik: 256.
    pub max_csp_entries: usize,
    /// ISO 8601 duration; Qlik's default `PT24H`.
    pub max_api_key_expiry: String,
    /// Qlik's default 5.
    pub max_keys_per_user: u32,
    /// Qlik: 5.
    pub max_client_secrets: usize,
    /// Qlik: about 6 hours.
    pub access_token_lifetime: Duration,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            admin_api_keys: Vec::new(),
            oauth_clients: Vec::new(),
            plain_http: false,
            rate_limits: true,
            ca_out: None,
            tenant_id: None,
            tenant_name: "emulated-tenant".to_owned(),
            tls_names: vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
            reads_per_minute: 1000,
            writes_per_minute: 100,
            rate_limit_window: Duration::from_secs(300),
            max_csp_entries: 256,
            max_api_key_expiry: "PT24H".to_owned(),
            max_keys_per_user: 5,
            max_client_secrets: 5,
            access_token_lifetime: Duration::from_secs(6 * 3600),
        }
    }
}

impl std::fmt::Debug for EmulatorConfig {
    // Credentials are shown as counts only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let client_ids: Vec<&str> = self
            .oauth_clients
            .iter()
            .map(|(id, _)| id.as_str())
            .collect();
        f.debug_struct("EmulatorConfig")
            .field("listen", &self.listen)
            .field(
                "admin_api_keys",
                &format_args!("<{} redacted>", self.admin_api_keys.len()),
            )
            .field("oauth_clients", &client_ids)
            .field("plain_http", &self.plain_http)
            .field("rate_limits", &self.rate_limits)
            .field("ca_out", &self.ca_out)
            .field("tenant_id", &self.tenant_id)
            .field("tenant_name", &self.tenant_name)
            .field("tls_names", &self.tls_names)
            .field("reads_per_minute", &self.reads_per_minute)
            .field("writes_per_minute", &self.writes_per_minute)
            .field("rate_limit_window", &self.rate_limit_window)
            .field("max_csp_entries", &self.max_csp_entries)
            .field("max_api_key_expiry", &self.max_api_key_expiry)
            .field("max_keys_per_user", &self.max_keys_per_user)
            .field("max_client_secrets", &self.max_client_secrets)
            .field("access_token_lifetime", &self.access_token_lifetime)
            .finish()
    }
}

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is inconsistent.
    #[error("invalid emulator configuration: {0}")]
    Config(String),
    /// Binding the listen address failed.
    #[error("failed to listen on {address}")]
    Listen {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// Generating the CA or the serving certificate failed.
    #[error("failed to generate the emulator's certificates")]
    Certificate(#[source] rcgen::Error),
    /// Building the TLS configuration failed.
    #[error("failed to configure TLS")]
    Tls(#[source] rustls::Error),
    /// Writing the CA to `ca_out` failed.
    #[error("failed to write the CA certificate to {path}")]
    WriteCa {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The operating system gave no random seed.
    #[error("failed to seed the emulator's random generator")]
    Random(#[source] random::SeedError),
}

/// A running emulator. Dropping it (or [`Emulator::shutdown`]) stops the server.
pub struct Emulator {
    base_url: String,
    local_addr: SocketAddr,
    ca_pem: String,
    tenant_id: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("base_url", &self.base_url)
            .field("tenant_id", &self.tenant_id)
            .finish_non_exhaustive()
    }
}

/// A rustls client configuration that trusts only the emulator CA in `ca_pem` (as
/// `qlik-tenant-emulator --ca-out` writes it), for an emulator running in another process.
pub fn client_tls_config_for(ca_pem: &str) -> Result<rustls::ClientConfig, Error> {
    tls::client_config(ca_pem)
}

impl Emulator {
    /// Binds, generates the CA (and writes it to `ca_out`), and serves in the background
    /// on the current Tokio runtime.
    pub async fn start(config: EmulatorConfig) -> Result<Emulator, Error> {
        let mut rng = Rng::from_os().map_err(Error::Random)?;
        let settings = settings(&config, &mut rng)?;
        let tenant_id = settings.tenant_id.clone();

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
        let scheme = if config.plain_http { "http" } else { "https" };
        let base_url = format!("{scheme}://{}", connectable(local_addr));

        let tls = tls::generate(&config.tls_names)?;
        if let Some(path) = &config.ca_out {
            std::fs::write(path, &tls.ca_pem).map_err(|source| Error::WriteCa {
                path: path.clone(),
                source,
            })?;
        }
        let acceptor =
            (!config.plain_http).then(|| tokio_rustls::TlsAcceptor::from(tls.config.clone()));

        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(settings, rng)),
            started: Instant::now(),
            scheme,
            default_base: base_url.clone(),
        });
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server::serve(listener, acceptor, shared, stopped));
        tracing::info!(%base_url, "qlik tenant emulator listening");
        Ok(Emulator {
            base_url,
            local_addr,
            ca_pem: tls.ca_pem,
            tenant_id,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `https://127.0.0.1:<port>` (or `http://` with `plain_http`).
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The address the server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// PEM of the CA that signed the serving certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A rustls client configuration (ring provider) that trusts only this emulator's CA,
    /// e.g. for `reqwest::ClientBuilder::tls_backend_preconfigured`.
    pub fn client_tls_config(&self) -> Result<rustls::ClientConfig, Error> {
        client_tls_config_for(&self.ca_pem)
    }

    /// The emulated tenant's id.
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
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

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// An address clients can connect to: an unspecified bind address becomes loopback.
fn connectable(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => format!("127.0.0.1:{}", addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => format!("[::1]:{}", addr.port()),
        _ => addr.to_string(),
    }
}

fn settings(config: &EmulatorConfig, rng: &mut Rng) -> Result<Settings, Error> {
    let max_api_key_expiry_duration = duration::parse(&config.max_api_key_expiry)
        .map_err(|e| Error::Config(format!("max_api_key_expiry: {e}")))?;
    if config.admin_api_keys.iter().any(|k| k.trim().is_empty()) {
        return Err(Error::Config("an admin API key is empty".to_owned()));
    }
    let mut seeded_clients = Vec::new();
    for (client_id, secret) in &config.oauth_clients {
        if client_id.is_empty() || secret.is_empty() {
            return Err(Error::Config(
                "OAuth clients need a non-empty id and secret".to_owned(),
            ));
        }
        if seeded_clients
            .iter()
            .any(|c: &state::SeededClient| &c.client_id == client_id)
        {
            return Err(Error::Config(format!(
                "OAuth client {client_id:?} is given twice"
            )));
        }
        seeded_clients.push(state::seeded_client(client_id, secret, rng));
    }
    if config.max_client_secrets == 0 {
        return Err(Error::Config(
            "max_client_secrets must be at least 1".to_owned(),
        ));
    }
    let tenant_id = match &config.tenant_id {
        Some(id)
            if !id.is_empty()
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            id.clone()
        }
        Some(id) => {
            return Err(Error::Config(format!(
                "tenant id {id:?} must be letters, digits, '-' or '_'"
            )));
        }
        None => rng.alphanumeric(32),
    };
    Ok(Settings {
        tenant_id,
        tenant_name: config.tenant_name.clone(),
        hostnames: config.tls_names.clone(),
        admin_user_id: rng.hex(24),
        admin_key_fingerprints: config
            .admin_api_keys
            .iter()
            .map(|k| fingerprint(k))
            .collect(),
        seeded_clients,
        rate_limits: config.rate_limits,
        limits: Limits {
            reads_per_minute: config.reads_per_minute,
            writes_per_minute: config.writes_per_minute,
            window: config.rate_limit_window,
        },
        max_csp_entries: config.max_csp_entries,
        max_api_key_expiry: config.max_api_key_expiry.clone(),
        max_api_key_expiry_duration,
        max_keys_per_user: config.max_keys_per_user,
        max_client_secrets: config.max_client_secrets,
        access_token_lifetime: config.access_token_lifetime,
        started_at: jiff::Timestamp::now(),
    })
}
