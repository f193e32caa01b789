//! The controllers, one module per concern, and what they share.
//!
//! - [`tenant`]: `QlikTenant` connection check and header publishing.
//! - [`csp_entry`]: `CspEntry` sync with the tenant's `csp-origins`.
//! - [`secret_rotation`]: `SecretRotation`, credentials rotated into Secrets.
//! - [`tenant_clients`]: one tenant client per `QlikTenant`, shared.
//! - [`conditions`]: kstatus-style conditions without churn.

pub mod conditions;
pub mod csp_entry;
pub mod secret_rotation;
pub mod tenant;
pub mod tenant_clients;

use std::sync::Arc;
use std::time::Duration;

use kube::Client;

use crate::tenant::ClientConfig;

use self::csp_entry::remote_cache::RemoteCache;
use self::tenant_clients::TenantClients;

/// The operator's name: field manager prefix, event reporter and finalizer domain.
pub const OPERATOR_NAME: &str = "qlik-csp-operator";

/// What every controller shares.
pub struct Shared {
    pub kube: Client,
    pub tenants: TenantClients,
    pub remote: RemoteCache,
    pub settings: Settings,
}

/// Operator-wide settings (from the command line).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Replaces every tenant's `syncInterval`. For tests and benchmarks, where the CRD's 30 s
    /// minimum is too slow; not exposed to users.
    pub drift_interval_override: Option<Duration>,
    /// How long a controller waits for more changes before reconciling, so a burst of
    /// changes coalesces into one reconcile.
    pub debounce: Duration,
    /// Watch only this namespace (a namespaced install); all namespaces when `None`.
    pub watch_namespace: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            drift_interval_override: None,
            debounce: Duration::from_millis(500),
            watch_namespace: None,
        }
    }
}

impl Settings {
    /// The API for `K` in the watched namespace, or in all namespaces.
    pub fn api<K>(&self, kube: &Client) -> kube::Api<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match &self.watch_namespace {
            Some(namespace) => kube::Api::namespaced(kube.clone(), namespace),
            None => kube::Api::all(kube.clone()),
        }
    }

    /// The drift interval for a tenant whose `syncInterval` is `configured`.
    pub fn drift_interval(&self, configured: Duration) -> Duration {
        self.drift_interval_override.unwrap_or(configured)
    }
}

/// How long a tenant's credential Secret is trusted before it is read again.
const SECRET_MAX_AGE: Duration = Duration::from_secs(30);

/// Runs every controller until their watches end.
pub async fn run(kube: Client, settings: Settings) {
    // The URL, CA and budgets come from each QlikTenant; the template gives the rest.
    let template = ClientConfig::new("https://tenant.invalid");
    let shared = Arc::new(Shared {
        kube,
        tenants: TenantClients::new(template, SECRET_MAX_AGE),
        remote: RemoteCache::default(),
        settings,
    });
    tokio::join!(
        tenant::run::run(shared.clone()),
        csp_entry::run(shared.clone()),
        secret_rotation::run(shared)
    );
}

/// Connects with the in-cluster or kubeconfig credentials and runs until SIGTERM or Ctrl-C.
pub async fn run_until_signal(settings: Settings) -> Result<(), kube::Error> {
    let kube = Client::try_default().await?;
    tracing::info!(namespace = ?settings.watch_namespace, "starting the controllers");
    tokio::select! {
        () = run(kube, settings) => tracing::warn!("the controllers stopped"),
        () = shutdown_signal() => tracing::info!("shutting down"),
    }
    Ok(())
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
