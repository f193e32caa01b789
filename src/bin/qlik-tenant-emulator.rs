//! `qlik-tenant-emulator`: runs the in-memory Qlik Cloud tenant of
//! [`qlik_csp_operator::emulator`] until interrupted, or with `qrs` a Qlik Sense
//! Enterprise on Windows site's QRS API ([`qlik_csp_operator::emulator::qrs`]). Parses
//! flags, starts, prints `listening on <base URL>` as the first line of stdout, waits for
//! Ctrl-C or SIGTERM.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use qlik_csp_operator::emulator::qrs::{QlikUser, QrsSite, QrsSiteConfig};
use qlik_csp_operator::emulator::{self, Emulator, EmulatorConfig};
use qlik_csp_operator::error_chain::error_chain;

const AFTER_HELP: &str = "\
Credentials given with --admin-api-key or --oauth-client are visible to other local users \
in the process list; prefer the environment variables. The emulator never logs a token or \
secret: request logs carry operation names and statuses only.";

/// An in-memory Qlik Cloud tenant for tests, benchmarks and demos: CSP origins, API keys,
/// OAuth client secrets and tokens, users/me and tenants/me, data and automation
/// connections, the email configuration and automations, with real auth, Qlik's limits,
/// tier rate limits, HTTPS with its own CA, and a control API for faults, counters, time
/// and seeding.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = AFTER_HELP,
    after_long_help = long_help(),
    args_conflicts_with_subcommands = true
)]
struct Args {
    /// Without a mode: the Qlik Cloud tenant (the flags below).
    #[command(subcommand)]
    mode: Option<Mode>,

    /// Address to listen on; port 0 picks a free port. The bound base URL is printed as
    /// the first line of stdout: "listening on https://127.0.0.1:38211".
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,

    /// Bearer token accepted as a tenant admin's API key (never expires). Repeatable;
    /// several may also be given comma-separated in the environment variable.
    #[arg(
        long = "admin-api-key",
        value_name = "TOKEN",
        env = "QLIK_EMULATOR_ADMIN_API_KEY",
        hide_env_values = true,
        value_delimiter = ','
    )]
    admin_api_keys: Vec<String>,

    /// M2M OAuth client allowed the client_credentials grant, as ID:SECRET; its secret
    /// counts towards the client's 5. Repeatable (comma-separated in the variable).
    #[arg(
        long = "oauth-client",
        value_name = "ID:SECRET",
        env = "QLIK_EMULATOR_OAUTH_CLIENT",
        hide_env_values = true,
        value_delimiter = ','
    )]
    oauth_clients: Vec<String>,

    /// Write the PEM of the CA that signed the serving certificate to this file.
    #[arg(long, value_name = "PATH")]
    ca_out: Option<PathBuf>,

    /// Serve plain HTTP instead of HTTPS (quick local use only; the operator requires
    /// HTTPS).
    #[arg(long)]
    plain_http: bool,

    /// Enforce Qlik's tier rate limits (per user: 1,000 reads and 100 writes per minute,
    /// evaluated over 5 minutes; 429 with Retry-After).
    #[arg(long, value_enum, default_value_t = Switch::On)]
    rate_limits: Switch,

    /// The tenant id (letters, digits, '-', '_'); random when absent.
    #[arg(long)]
    tenant_id: Option<String>,

    /// The tenant's name, as tenants/{id} reports it.
    #[arg(long, default_value = "emulated-tenant")]
    tenant_name: String,

    /// Names and addresses the serving certificate is valid for (repeatable).
    #[arg(long = "tls-name", value_name = "NAME", default_values_t = ["127.0.0.1".to_owned(), "localhost".to_owned()])]
    tls_names: Vec<String>,

    /// Tier 1 (read) limit per user per minute.
    #[arg(long, default_value_t = 1000)]
    reads_per_minute: u32,

    /// Tier 2 (write) limit per user per minute.
    #[arg(long, default_value_t = 100)]
    writes_per_minute: u32,

    /// Most CSP entries the tenant holds.
    #[arg(long, default_value_t = 256)]
    max_csp_entries: usize,

    /// The tenant's max_api_key_expiry (ISO 8601 duration).
    #[arg(long, default_value = "PT24H")]
    max_api_key_expiry: String,

    /// The tenant's max_keys_per_user (active API keys).
    #[arg(long, default_value_t = 5)]
    max_keys_per_user: u32,

    /// Lifetime of OAuth access tokens, in seconds.
    #[arg(long, default_value_t = 21600)]
    access_token_lifetime_secs: u64,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// A Qlik Sense Enterprise on Windows site's Repository Service (QRS) API: mutual TLS
    /// with a client certificate it issues, the Xrfkey and X-Qlik-User checks, virtual
    /// proxies and data connections with modifiedDate concurrency, and a control API.
    #[command(after_long_help = emulator::qrs::control::HELP)]
    Qrs(QrsArgs),
}

#[derive(Debug, clap::Args)]
struct QrsArgs {
    /// Address to listen on; port 0 picks a free port. The bound base URL is printed as
    /// the first line of stdout: "listening on https://127.0.0.1:38211".
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,

    /// Write the PEM of the site's CA (QMC's root.pem) to this file.
    #[arg(long, value_name = "PATH")]
    ca_out: Option<PathBuf>,

    /// Write the PEM of the client certificate the site accepts (QMC's client.pem).
    #[arg(long, value_name = "PATH")]
    client_cert_out: Option<PathBuf>,

    /// Write the PKCS#8 PEM of the client certificate's key (QMC's client_key.pem); the
    /// file is readable by its owner only.
    #[arg(long, value_name = "PATH")]
    client_key_out: Option<PathBuf>,

    /// A user X-Qlik-User may name, as DIRECTORY\ID (repeatable); the first owns seeded
    /// data connections.
    #[arg(long = "user", value_name = "DIR\\ID", default_values_t = [QlikUser::sa_api()])]
    users: Vec<QlikUser>,

    /// Names and addresses the serving certificate is valid for (repeatable).
    #[arg(long = "tls-name", value_name = "NAME", default_values_t = ["127.0.0.1".to_owned(), "localhost".to_owned()])]
    tls_names: Vec<String>,

    /// What GET /qrs/about reports as buildVersion.
    #[arg(long, default_value = "38.22.0")]
    build_version: String,

    /// Seed a virtual proxy with this prefix (repeatable); each is printed after the first
    /// line as "virtual-proxy <prefix> <id>".
    #[arg(long = "seed-virtual-proxy", value_name = "PREFIX")]
    seed_virtual_proxies: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Switch {
    On,
    Off,
}

/// Parsed after clap, not by a clap value parser: clap would echo a rejected value, and
/// this one holds a secret.
fn parse_client(raw: &str) -> Option<(String, String)> {
    match raw.split_once(':') {
        Some((id, secret)) if !id.is_empty() && !secret.is_empty() => {
            Some((id.to_owned(), secret.to_owned()))
        }
        _ => None,
    }
}

fn long_help() -> String {
    format!("{}\n\n{AFTER_HELP}", emulator::control::HELP)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    if let Some(Mode::Qrs(qrs)) = args.mode {
        return run_qrs(qrs).await;
    }
    let Some(oauth_clients) = args
        .oauth_clients
        .iter()
        .map(|raw| parse_client(raw))
        .collect::<Option<Vec<_>>>()
    else {
        eprintln!(
            "qlik-tenant-emulator: --oauth-client expects ID:SECRET with both parts non-empty"
        );
        return ExitCode::from(2);
    };
    let config = EmulatorConfig {
        listen: args.listen,
        admin_api_keys: args.admin_api_keys,
        oauth_clients,
        plain_http: args.plain_http,
        rate_limits: args.rate_limits == Switch::On,
        ca_out: args.ca_out,
        tenant_id: args.tenant_id,
        tenant_name: args.tenant_name,
        tls_names: args.tls_names,
        reads_per_minute: args.reads_per_minute,
        writes_per_minute: args.writes_per_minute,
        max_csp_entries: args.max_csp_entries,
        max_api_key_expiry: args.max_api_key_expiry,
        max_keys_per_user: args.max_keys_per_user,
        access_token_lifetime: std::time::Duration::from_secs(args.access_token_lifetime_secs),
        ..EmulatorConfig::default()
    };
    let emulator = match Emulator::start(config).await {
        Ok(emulator) => emulator,
        Err(error) => {
            eprintln!("qlik-tenant-emulator: {}", error_chain(&error));
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    let printed =
        writeln!(stdout, "listening on {}", emulator.base_url()).and_then(|()| stdout.flush());
    drop(stdout);
    if let Err(error) = printed {
        eprintln!("qlik-tenant-emulator: failed to write to stdout: {error}");
        return ExitCode::FAILURE;
    }
    tracing::info!(tenant_id = emulator.tenant_id(), "tenant ready");

    wait_for_signal().await;
    emulator.shutdown().await;
    ExitCode::SUCCESS
}

/// `qlik-tenant-emulator qrs`.
async fn run_qrs(args: QrsArgs) -> ExitCode {
    let config = QrsSiteConfig {
        listen: args.listen,
        tls_names: args.tls_names,
        users: args.users,
        build_version: args.build_version,
    };
    let site = match QrsSite::start(config).await {
        Ok(site) => site,
        Err(error) => {
            eprintln!("qlik-tenant-emulator qrs: {}", error_chain(&error));
            return ExitCode::FAILURE;
        }
    };
    let outputs = [
        (&args.ca_out, site.ca_pem(), false),
        (&args.client_cert_out, site.client_cert_pem(), false),
        (&args.client_key_out, site.client_key_pem(), true),
    ];
    for (path, pem, private) in outputs {
        if let Some(path) = path
            && let Err(error) = write_pem(path, pem, private)
        {
            eprintln!(
                "qlik-tenant-emulator qrs: failed to write {}: {error}",
                path.display()
            );
            return ExitCode::FAILURE;
        }
    }
    let mut lines = vec![format!("listening on {}", site.base_url())];
    for prefix in &args.seed_virtual_proxies {
        let id = site.seed_virtual_proxy(prefix, "", &[]);
        lines.push(format!("virtual-proxy {prefix} {id}"));
    }
    let mut stdout = std::io::stdout().lock();
    let printed = lines
        .iter()
        .try_for_each(|line| writeln!(stdout, "{line}"))
        .and_then(|()| stdout.flush());
    drop(stdout);
    if let Err(error) = printed {
        eprintln!("qlik-tenant-emulator qrs: failed to write to stdout: {error}");
        return ExitCode::FAILURE;
    }
    wait_for_signal().await;
    site.shutdown().await;
    ExitCode::SUCCESS
}

/// Writes `pem` to `path`; a `private` file is created readable by its owner only.
fn write_pem(path: &std::path::Path, pem: &str, private: bool) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    options.open(path)?.write_all(pem.as_bytes())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
