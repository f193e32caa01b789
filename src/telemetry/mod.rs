//! Logs, metrics and health endpoints.
//!
//! - [`metrics`]: the Prometheus registry (`qlikops_*`), injectable.
//! - [`health`]: readiness of the controllers' watches.
//! - [`server`]: `/healthz`, `/readyz` and `/metrics` over HTTP.

pub mod health;
pub mod metrics;
pub mod server;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, for log collectors.
    Json,
    /// Human-readable text.
    Text,
}

/// Installs the global log subscriber writing to stderr. `RUST_LOG`, when set, is a full
/// filter (`info,kube=debug`) and wins over `level` (`error`, `warn`, `info`, `debug`,
/// `trace`, or itself a filter).
pub fn init_logging(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Only fails when a subscriber is already installed, which is then kept.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
