//! The `qlik-csp-operator` command: parses arguments and dispatches. No logic of its own.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use qlik_csp_operator::{api, controller, render};

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
    Run {
        /// Watch only this namespace (a namespaced install); all namespaces when absent.
        #[arg(long, env = "WATCH_NAMESPACE")]
        namespace: Option<String>,
        /// Log format: `json` (one object per line) or `text`.
        #[arg(long, env = "LOG_FORMAT", default_value = "json", value_parser = ["json", "text"])]
        log_format: String,
    },
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
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run {
            namespace,
            log_format,
        } => run(namespace, &log_format),
        Command::Crd => print_crds(),
        Command::Render { paths } => render(&paths),
    }
}

fn run(namespace: Option<String>, log_format: &str) -> ExitCode {
    qlik_csp_operator::telemetry::init_logging(log_format == "json");
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let settings = controller::Settings {
        watch_namespace: namespace,
        ..Default::default()
    };
    match runtime.block_on(controller::run_until_signal(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "the operator stopped");
            ExitCode::FAILURE
        }
    }
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
