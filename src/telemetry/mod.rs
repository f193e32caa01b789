//! Logs, metrics and health endpoints.
//!
//! - [`metrics`]: the Prometheus registry (`qlikops_*`), injectable.
//! - [`health`]: readiness of the controllers' watches.
//! - [`server`]: `/healthz`, `/readyz` and `/metrics` over HTTP.

pub mod health;
pub mod metrics;
pub mod server;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, for log collectors.
    Json,
    /// Human-readable text, coloured only when stderr is a terminal.
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
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ))
        .with_writer(std::io::stderr);
    // Only fails when a subscriber is already installed, which is then kept.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Whether text logs are coloured: only on a terminal (escape codes in a redirected file or
/// a pipe are noise to `grep` and log collectors), and never when `NO_COLOR` is set to a
/// non-empty value (<https://no-color.org>).
fn colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|value| value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::colour;

    #[test]
    fn text_logs_are_coloured_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some("".into())));
        assert!(!colour(true, Some("1".into())));
        assert!(!colour(false, None));
        assert!(!colour(false, Some("1".into())));
    }
}
