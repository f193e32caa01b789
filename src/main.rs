//! The `qlik-csp-operator` command: parses arguments and dispatches. No logic of its own.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use qlik_csp_operator::api;

/// Kubernetes operator for Qlik tenants' CSP allow-list, CSP header and credentials.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions as a multi-document YAML stream.
    Crd,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Crd => print_crds(),
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
