//! The `qlik-csp-operator` command: parses arguments and dispatches. No logic of its own.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use qlik_csp_operator::controller::allowed_hosts::AllowedHosts;
use qlik_csp_operator::controller::leader::{self, LeaseSettings};
use qlik_csp_operator::error_chain::error_chain;
use qlik_csp_operator::{api, controller, import, preview, render};

/// Kubernetes operator for Qlik tenants' CSP allow-list, CSP header and credentials.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controllers, with the credentials of the in-cluster ServiceAccount or the
    /// current kubeconfig context.
    Run(Box<RunArgs>),
    /// Print the CustomResourceDefinitions as a multi-document YAML stream.
    Crd,
    /// Print the CSP header a `source: Local` tenant would publish, compiled offline from
    /// CspEntry (and QlikTenant) manifests, or every problem with its file and field.
    /// With several tenants in the input, each header follows a `# tenant ns/name` line.
    Render {
        /// Manifest files or directories (searched recursively for .yaml, .yml, .json).
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        paths: Vec<std::path::PathBuf>,
    },
    /// Write a tenant's CSP entries as CspEntry manifests (and a QlikTenant skeleton), so
    /// that applying them adopts every entry without a tenant write. Reads the tenant only.
    /// The credential comes from QLIK_API_KEY, or QLIK_CLIENT_ID and QLIK_CLIENT_SECRET.
    Import(ImportCommand),
    /// Preview what applying the CspEntry manifests would do to the live tenant: creates,
    /// updates, adoptions, deletes, problems and the header's size. Reads the tenant only.
    /// Exit code 0: no tenant write; 2: tenant writes; 1: an error. Credential as `import`.
    Plan(PlanCommand),
}

#[derive(clap::Args)]
struct ImportCommand {
    /// The tenant, e.g. https://acme.eu.qlikcloud.com.
    #[arg(long)]
    tenant_url: String,
    /// The namespace of the manifests written.
    #[arg(long)]
    namespace: String,
    /// The QlikTenant name the CspEntries refer to (spec.tenantRef.name).
    #[arg(long)]
    tenant_ref: String,
    /// A directory to write one file per manifest into; standard output when absent.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// Extra CA certificates (PEM) to trust besides the system's.
    #[arg(long)]
    ca_file: Option<std::path::PathBuf>,
}

#[derive(clap::Args)]
struct PlanCommand {
    /// Manifest files or directories (searched recursively for .yaml, .yml, .json).
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    paths: Vec<std::path::PathBuf>,
    /// The tenant; by default the QlikTenant manifest's spec.url.
    #[arg(long)]
    tenant_url: Option<String>,
    /// The QlikTenant as namespace/name, when the manifests name several.
    #[arg(long)]
    tenant: Option<String>,
    /// `text` for people, `json` for CI bots.
    #[arg(long, short = 'o', default_value = "text", value_parser = ["text", "json"])]
    output: String,
    /// Extra CA certificates (PEM) to trust besides the system's.
    #[arg(long)]
    ca_file: Option<std::path::PathBuf>,
    /// Also read the tenant's CspEntries from the current kubeconfig context (get and list
    /// only), so that deletes follow their status.id exactly as the operator makes them.
    #[arg(long)]
    cluster: bool,
}

/// `run` flags; each has an environment variable for container manifests.
#[derive(clap::Args)]
struct RunArgs {
    /// Watch only this namespace (a namespaced install); all namespaces when absent. One
    /// namespace at most: for several, run one operator per namespace.
    #[arg(long, env = "WATCH_NAMESPACE", value_parser = one_namespace)]
    namespace: Option<String>,
    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    #[arg(long, env = "METRICS_ADDRESS", default_value = "0.0.0.0:8080")]
    metrics_address: std::net::SocketAddr,
    /// Log format: `json` (one object per line) or `text`. Default: `text` when stderr is a
    /// terminal, `json` otherwise (in a cluster).
    #[arg(long, env = "LOG_FORMAT", value_parser = ["json", "text"])]
    log_format: Option<String>,
    /// Log level (`error`, `warn`, `info`, `debug`, `trace`) or a filter such as
    /// `info,kube=debug`. `RUST_LOG`, when set, takes precedence.
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Hosts a QlikTenant's URL may name, comma-separated: exact hosts or a leading `*.`
    /// wildcard. Others get `Ready=False, reason HostNotAllowed`, and their Secret is never
    /// read.
    #[arg(
        long,
        env = "ALLOWED_TENANT_HOSTS",
        value_delimiter = ',',
        default_value = "*.qlikcloud.com,*.qlikcloudgov.com"
    )]
    allowed_tenant_hosts: Vec<String>,
    /// Hold a Lease before reconciling, so that only one replica works at a time. Default:
    /// on in a cluster (`KUBERNETES_SERVICE_HOST` set), off elsewhere.
    #[arg(long, env = "LEADER_ELECTION", num_args = 0..=1, default_missing_value = "true")]
    leader_election: Option<bool>,
    /// The Lease's namespace. Default: `POD_NAMESPACE`, else the ServiceAccount's namespace.
    #[arg(long, env = "LEADER_ELECTION_NAMESPACE")]
    leader_election_namespace: Option<String>,
    /// The Lease's name.
    #[arg(
        long,
        env = "LEADER_ELECTION_LEASE_NAME",
        default_value = "qlik-csp-operator"
    )]
    leader_election_lease_name: String,
    /// Seconds a leader keeps the Lease without renewing it; a standby takes over within
    /// this time after the leader stops.
    #[arg(long, env = "LEADER_ELECTION_LEASE_SECONDS", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(2..=3600))]
    leader_election_lease_seconds: u64,
    /// The namespace the operator runs in, where it keeps its own Secret (the SecretPush
    /// digest key). Default: `POD_NAMESPACE`, else the ServiceAccount's namespace.
    #[arg(long, env = "OPERATOR_NAMESPACE")]
    operator_namespace: Option<String>,
    /// Watch the metadata of Secrets labelled `qlikops.io/push-source=true`, so a
    /// SecretPush pushes within seconds of its Secret changing instead of at its next poll.
    /// Needs list/watch on Secrets (chart value `secretPush.watchSecrets`).
    #[arg(long, env = "WATCH_PUSH_SECRETS", num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    watch_push_secrets: bool,
    /// Replaces every SecretRotation's `gracePeriod` (e.g. `1s`). For the project's tests and
    /// benchmarks only: it shortens how long a replaced credential keeps working.
    #[arg(long, env = "QLIKOPS_GRACE_PERIOD_OVERRIDE", hide = true)]
    grace_period_override: Option<kube::core::Duration>,
}

/// Where the in-cluster ServiceAccount's namespace is mounted.
const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

fn one_namespace(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.contains(',') {
        return Err("only one namespace is supported; leave it out to watch all".to_owned());
    }
    Ok(value.to_owned())
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run(args) => run(*args),
        Command::Crd => print_crds(),
        Command::Render { paths } => render(&paths),
        Command::Import(command) => import(command),
        Command::Plan(command) => plan(command),
    }
}

fn run(args: RunArgs) -> ExitCode {
    use qlik_csp_operator::telemetry::{self, LogFormat};
    let format = match args.log_format.as_deref() {
        Some("json") => LogFormat::Json,
        Some(_) => LogFormat::Text,
        None if std::io::stderr().is_terminal() => LogFormat::Text,
        None => LogFormat::Json,
    };
    telemetry::init_logging(format, &args.log_level);
    one_malloc_arena();
    let (settings, options) = match configure(args) {
        Ok(configured) => configured,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(controller::run_until_signal(settings, options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %error_chain(&e), "the operator stopped");
            ExitCode::FAILURE
        }
    }
}

/// Makes glibc's allocator keep one arena instead of up to eight per core. Its threads
/// (the runtime's workers, the blocking pool's DNS lookups) otherwise each take an arena,
/// and every arena keeps the memory its thread freed: at 10,000 CspEntries the operator's
/// peak RSS was 2.4 MiB lower with one (`cargo xtask bench --only scale`), for a program
/// that mostly waits on the network and never contends for the allocator. Not needed with
/// musl or other allocators, which have no per-thread arenas.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn one_malloc_arena() {
    // SAFETY: `mallopt` only sets a parameter of the allocator, which glibc makes safe to
    // call at any time; it is called once, before the async runtime starts its threads.
    let set = unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    if set != 1 {
        tracing::debug!("glibc refused M_ARENA_MAX=1; the allocator keeps its defaults");
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn one_malloc_arena() {}

/// The controllers' settings and the process options from the flags.
fn configure(args: RunArgs) -> Result<(controller::Settings, controller::Options), String> {
    let allowed_tenant_hosts = AllowedHosts::parse(&args.allowed_tenant_hosts)
        .map_err(|e| format!("--allowed-tenant-hosts: {e}"))?;
    let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    let operator_namespace = args
        .operator_namespace
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .or_else(|| std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE).ok())
        .map(|ns| ns.trim().to_owned())
        .filter(|ns| !ns.is_empty());
    let leader_election = if args.leader_election.unwrap_or(in_cluster) {
        let namespace = args
            .leader_election_namespace
            .or_else(|| operator_namespace.clone())
            .ok_or("leader election needs a namespace for its Lease: set --leader-election-namespace (or POD_NAMESPACE)")?;
        let pod =
            std::env::var("POD_NAME").unwrap_or_else(|_| controller::OPERATOR_NAME.to_owned());
        Some(LeaseSettings {
            name: args.leader_election_lease_name,
            namespace,
            identity: leader::identity(&pod),
            duration: Duration::from_secs(args.leader_election_lease_seconds),
        })
    } else {
        None
    };
    let grace_period_override = args.grace_period_override.map(Duration::from);
    if let Some(grace) = grace_period_override {
        tracing::warn!(
            grace_seconds = grace.as_secs_f64(),
            "every SecretRotation's gracePeriod is overridden (a test and benchmark setting)"
        );
    }
    let settings = controller::Settings {
        watch_namespace: args.namespace.filter(|ns| !ns.is_empty()),
        allowed_tenant_hosts,
        grace_period_override,
        operator_namespace,
        watch_push_secrets: args.watch_push_secrets,
        ..Default::default()
    };
    let options = controller::Options {
        metrics_address: args.metrics_address,
        leader_election,
    };
    Ok((settings, options))
}

fn print_crds() -> ExitCode {
    let mut out = std::io::stdout().lock();
    for (_, crd) in api::crds() {
        let written = api::crd_yaml(&crd)
            .map_err(|e| e.to_string())
            .and_then(|yaml| write!(out, "---\n{yaml}").map_err(|e| e.to_string()));
        if let Err(message) = written {
            eprintln!("error: failed to print CRDs: {message}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

fn render(paths: &[std::path::PathBuf]) -> ExitCode {
    match render::render_paths(paths) {
        Ok(rendered) if rendered.is_empty() => {
            eprintln!("error: no CspEntry in the input");
            ExitCode::FAILURE
        }
        Ok(rendered) => {
            let several = rendered.len() > 1;
            for tenant in rendered {
                let (namespace, name) = &tenant.tenant;
                if !tenant.tenant_found {
                    eprintln!(
                        "note: QlikTenant {namespace}/{name} is not in the input: compiled without its baseDirectives"
                    );
                }
                if several {
                    println!("# tenant {namespace}/{name} ({} entries)", tenant.entries);
                }
                println!("{}", tenant.header);
            }
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for problem in &problems {
                eprintln!("error: {problem}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Runs a command's future on a small runtime (the commands make a few requests); an
/// error is printed with its causes and becomes exit code 1.
fn block_on<T, E: std::error::Error>(
    future: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: failed to start the async runtime: {e}");
            ExitCode::FAILURE
        })?;
    runtime.block_on(future).map_err(|e| {
        eprintln!("error: {}", error_chain(&e));
        ExitCode::FAILURE
    })
}

fn import(command: ImportCommand) -> ExitCode {
    let args = import::ImportArgs {
        tenant_url: command.tenant_url,
        namespace: command.namespace,
        tenant_ref: command.tenant_ref,
        out: command.out,
        ca_file: command.ca_file,
    };
    let mut stdout = std::io::stdout().lock();
    let imported = match block_on(import::run(&args, &mut stdout)) {
        Ok(imported) => imported,
        Err(code) => return code,
    };
    for refused in &imported.refused {
        eprintln!(
            "skipped: entry {} ({:?}, origin {:?}): {}",
            refused.remote_id, refused.remote_name, refused.origin, refused.reason
        );
    }
    let place = args
        .out
        .map(|dir| format!(" into {}", dir.display()))
        .unwrap_or_default();
    eprintln!(
        "imported {} entries{place}; skipped {}",
        imported.entries.len(),
        imported.refused.len()
    );
    ExitCode::SUCCESS
}

/// `plan`'s exit code when applying the manifests writes to the tenant.
const PLAN_HAS_CHANGES: u8 = 2;

fn plan(command: PlanCommand) -> ExitCode {
    let args = preview::PlanArgs {
        paths: command.paths,
        tenant_url: command.tenant_url,
        tenant: command.tenant,
        ca_file: command.ca_file,
        cluster: command.cluster,
    };
    let preview = match block_on(preview::run(&args)) {
        Ok(preview) => preview,
        Err(code) => return code,
    };
    if command.output == "json" {
        println!("{}", preview::json(&preview));
    } else {
        print!("{}", preview::text(&preview));
    }
    if preview.writes() > 0 {
        ExitCode::from(PLAN_HAS_CHANGES)
    } else {
        ExitCode::SUCCESS
    }
}
