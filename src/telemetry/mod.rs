//! Logs (and, later, metrics and health endpoints).

use tracing_subscriber::EnvFilter;

/// Installs the global log subscriber: JSON lines for log collectors, or text for people.
/// The level comes from `RUST_LOG` (default `info`).
pub fn init_logging(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Only fails when a subscriber is already installed, which is then kept.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
