//! The `run` command's process: the health and metrics endpoint, leader election, the
//! controllers and signals. Does I/O.
//!
//! # Lifecycle
//! 1. Listen on the metrics address (a bind failure stops the process at once).
//! 2. With leader election: stand by (ready) until this process holds the Lease.
//! 3. Run the controllers until SIGTERM/Ctrl-C, then let the reconciles in flight finish,
//!    then release the Lease so a standby takes over at once, and exit 0.
//! 4. If the Lease is lost, stop at once with an error (exit 1): another replica may
//!    already lead, and Kubernetes restarts the pod as a standby.

use std::net::SocketAddr;

use kube::Client;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::leader::{Elector, LeaderError, LeaseSettings};
use super::{Runtime, Settings};
use crate::telemetry::server::{self, Endpoints};

/// How the process runs, besides what the controllers need ([`Settings`]).
#[derive(Clone, Debug)]
pub struct Options {
    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    pub metrics_address: SocketAddr,
    /// The Lease to hold before reconciling; `None` runs the controllers at once.
    pub leader_election: Option<LeaseSettings>,
}

/// Why the process stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No Kubernetes client (no in-cluster config, no kubeconfig).
    #[error("failed to connect to the Kubernetes API")]
    Connect(#[source] kube::Error),
    /// The metrics address is taken or invalid.
    #[error("failed to listen on {address} for health and metrics")]
    Listen {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// Leader election failed.
    #[error(transparent)]
    Leader(#[from] LeaderError),
    /// The Lease was lost while leading.
    #[error("lost the leader Lease; stopping so that only the new leader reconciles")]
    LeaseLost,
    /// The controllers ended without being asked to.
    #[error("the controllers stopped unexpectedly")]
    ControllersStopped,
}

/// Connects with the in-cluster or kubeconfig credentials and runs until SIGTERM or Ctrl-C
/// (see the module documentation).
pub async fn run_until_signal(settings: Settings, options: Options) -> Result<(), RunError> {
    let kube = Client::try_default().await.map_err(RunError::Connect)?;
    let runtime = Runtime::default();
    let listener = TcpListener::bind(options.metrics_address)
        .await
        .map_err(|source| RunError::Listen {
            address: options.metrics_address,
            source,
        })?;
    let address = listener.local_addr().unwrap_or(options.metrics_address);
    tracing::info!(%address, "serving /healthz, /readyz and /metrics");
    let endpoints = Endpoints {
        metrics: runtime.metrics.clone(),
        readiness: runtime.readiness.clone(),
    };
    let stop_server = CancellationToken::new();
    let server = tokio::spawn(server::serve(
        listener,
        endpoints,
        stop_server.clone().cancelled_owned(),
    ));
    let shutdown = runtime.shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing the reconciles in flight");
        shutdown.cancel();
    });

    let result = lead_and_run(kube, settings, options.leader_election, runtime).await;
    stop_server.cancel();
    let _ = server.await;
    result
}

async fn lead_and_run(
    kube: Client,
    settings: Settings,
    lease: Option<LeaseSettings>,
    runtime: Runtime,
) -> Result<(), RunError> {
    let Some(lease) = lease else {
        return run_controllers(kube, settings, runtime).await;
    };
    runtime.readiness.set_standby(true);
    tracing::info!(lease = %lease.name, namespace = %lease.namespace, identity = %lease.identity, "waiting for the leader Lease");
    let mut elector = Elector::start(kube.clone(), lease).await?;
    tokio::select! {
        acquired = elector.acquired() => acquired?,
        () = runtime.shutdown.cancelled() => {
            release(elector).await;
            return Ok(());
        }
    }
    runtime.readiness.set_standby(false);
    tracing::info!("acquired the leader Lease: starting the controllers");
    let result = tokio::select! {
        result = run_controllers(kube, settings, runtime) => result,
        () = elector.lost() => Err(RunError::LeaseLost),
    };
    // A lost Lease is not ours to release (and the apiserver may be unreachable).
    if !matches!(result, Err(RunError::LeaseLost)) {
        release(elector).await;
    }
    result
}

async fn release(elector: Elector) {
    match elector.release().await {
        Ok(()) => tracing::info!("released the leader Lease"),
        Err(error) => {
            tracing::warn!(%error, "failed to release the leader Lease; it expires on its own")
        }
    }
}

async fn run_controllers(
    kube: Client,
    settings: Settings,
    runtime: Runtime,
) -> Result<(), RunError> {
    tracing::info!(namespace = ?settings.watch_namespace, allowed_tenant_hosts = %settings.allowed_tenant_hosts, "starting the controllers");
    let shutdown = runtime.shutdown.clone();
    super::run(kube, settings, runtime).await;
    if shutdown.is_cancelled() {
        tracing::info!("the controllers finished their work");
        Ok(())
    } else {
        Err(RunError::ControllersStopped)
    }
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
