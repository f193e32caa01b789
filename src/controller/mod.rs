//! The controllers, one module per concern, and what they share.
//!
//! - [`tenant`]: `QlikTenant` connection check and header publishing.
//! - [`csp_entry`]: `CspEntry` sync with the tenant's `csp-origins`.
//! - [`secret_rotation`]: `SecretRotation`, credentials rotated into Secrets.
//! - [`secret_push`]: `SecretPush`, values from Secrets pushed into the tenant.
//! - [`tenant_clients`]: one tenant client per `QlikTenant`, shared; [`site_clients`]: the
//!   QRS client of a client-managed site.
//! - [`tenant_turns`]: how many reconciles work on one tenant at once.
//! - [`entry_feed`]: one watch and store of the CspEntries, for the csp-entry and tenant
//!   controllers.
//! - [`conditions`]: kstatus-style conditions without churn.
//! - [`own_writes`]: the status and finalizer writes to the objects a controller reconciles.
//! - [`clock`]: the wall clock decisions read `now` from.
//! - [`backoff`]: the requeue after a failed reconcile, honouring tenant pauses.
//! - [`allowed_hosts`]: which tenant hosts the operator may send credentials to.
//! - [`leader`]: leader election on a Lease.
//! - [`process`]: the `run` command: endpoints, leader election, controllers, signals.
//! - [`rbac`]: every Kubernetes permission the operator uses (the chart's RBAC follows it).
//! - [`profile`]: heap profiling with dhat (`dhat-heap` feature only).

pub mod allowed_hosts;
pub mod backoff;
pub mod clock;
pub mod conditions;
pub mod csp_entry;
pub mod entry_feed;
pub mod leader;
pub mod own_writes;
pub mod process;
pub mod profile;
pub mod rbac;
pub mod secret_push;
pub mod secret_rotation;
pub mod site_clients;
pub mod tenant;
pub mod tenant_changes;
pub mod tenant_clients;
pub mod tenant_turns;

use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use kube::Client;
use kube::runtime::reflector::Store;
use tokio_util::sync::CancellationToken;

use crate::telemetry::health::Readiness;
use crate::telemetry::metrics::Metrics;
use crate::tenant::ClientConfig;

use self::allowed_hosts::AllowedHosts;
use self::clock::{Clock, SystemClock};
use self::csp_entry::remote_cache::RemoteCache;
use self::entry_feed::EntryFeed;
use self::tenant_clients::TenantClients;
use self::tenant_turns::TenantTurns;

pub use self::process::{Options, RunError, run_until_signal};

/// The operator's name: field manager prefix, event reporter and finalizer domain.
pub const OPERATOR_NAME: &str = "qlik-csp-operator";

/// What every controller shares.
pub struct Shared {
    pub kube: Client,
    pub tenants: TenantClients,
    pub remote: RemoteCache,
    /// A few csp-entry reconciles per tenant at once; the rest wait in line.
    pub turns: TenantTurns,
    /// The CspEntries, watched once for the csp-entry and tenant controllers.
    pub entries: EntryFeed,
    /// Where every controller reads the time (once per reconcile).
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
    pub runtime: Runtime,
}

/// What the process provides the controllers: where to report, and when to stop.
#[derive(Clone, Debug, Default)]
pub struct Runtime {
    /// The Prometheus registry: reconciles (see [`Runtime::observe`]), tenant requests,
    /// header sizes, credential expiry.
    pub metrics: Arc<Metrics>,
    /// Each controller registers here and reports when its watches have synced.
    pub readiness: Readiness,
    /// Cancelled on SIGTERM: controllers stop taking new work and finish the current
    /// reconciles (`Controller::graceful_shutdown_on`).
    pub shutdown: CancellationToken,
}

impl Runtime {
    /// Registers `controller` for `/readyz` now; the returned future marks it ready once
    /// `store` holds its first full list. Run it alongside the controller.
    pub fn ready_when_synced<K>(
        &self,
        controller: &'static str,
        store: Store<K>,
    ) -> impl Future<Output = ()> + Send + 'static
    where
        K: kube::Resource + Clone + Send + Sync + 'static,
        K::DynamicType: Eq + Hash + Clone + Send + Sync,
    {
        let synced = self.readiness.register(controller);
        async move {
            if store.wait_until_ready().await.is_ok() {
                synced.ready();
            }
        }
    }

    /// `reconcile` as `Controller::run` takes it, each call recorded by
    /// [`Runtime::observe`] under `controller`.
    pub fn observed<K, C, T: 'static, E: 'static, F, Fut>(
        &self,
        controller: &'static str,
        reason: fn(&E) -> &'static str,
        reconcile: F,
    ) -> impl FnMut(Arc<K>, Arc<C>) -> BoxFuture<'static, Result<T, E>>
    where
        F: Fn(Arc<K>, Arc<C>) -> Fut,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let runtime = self.clone();
        move |object, context| {
            let runtime = runtime.clone();
            let reconcile = reconcile(object, context);
            Box::pin(async move { runtime.observe(controller, reason, reconcile).await })
        }
    }

    /// Runs `reconcile` and records it in the metrics under `controller`, with the error's
    /// bounded `reason` when it fails.
    pub async fn observe<T, E>(
        &self,
        controller: &str,
        reason: impl FnOnce(&E) -> &'static str,
        reconcile: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let started = tokio::time::Instant::now();
        let result = reconcile.await;
        let failed = result.as_ref().err().map(reason);
        self.metrics
            .reconciled(controller, started.elapsed(), failed);
        result
    }
}

/// Operator-wide settings (from the command line).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Replaces every tenant's `syncInterval`. For tests and benchmarks, where the CRD's 30 s
    /// minimum is too slow; not exposed to users.
    pub drift_interval_override: Option<Duration>,
    /// Replaces every SecretRotation's `gracePeriod`. For tests and benchmarks, where the
    /// CRD's 1 m minimum is too slow; a hidden `run` flag that logs a warning when set.
    pub grace_period_override: Option<Duration>,
    /// How long a controller waits for more changes to an object before reconciling it.
    /// Zero by default: bursts coalesce without it (the tenant controller publishes once
    /// the entries have settled, see [`tenant::pacing`]), and any wait adds to the latency
    /// of every edit.
    pub debounce: Duration,
    /// Watch only this namespace (a namespaced install); all namespaces when `None`.
    pub watch_namespace: Option<String>,
    /// The hosts a `QlikTenant` may point at; others get `Ready=False HostNotAllowed` and
    /// their Secret is never read. Defaults to Qlik's cloud domains only.
    pub allowed_tenant_hosts: AllowedHosts,
    /// The namespace the operator runs in (`POD_NAMESPACE`): where it keeps its own
    /// Secret (the SecretPush digest key). `None` outside a cluster.
    pub operator_namespace: Option<String>,
    /// Watch the metadata of Secrets labelled `qlikops.io/push-source=true`, so that a
    /// SecretPush pushes within seconds of its Secret changing (needs list/watch on
    /// Secrets: off by default, chart value `secretPush.watchSecrets`).
    pub watch_push_secrets: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            drift_interval_override: None,
            grace_period_override: None,
            debounce: Duration::ZERO,
            watch_namespace: None,
            allowed_tenant_hosts: AllowedHosts::default(),
            operator_namespace: None,
            watch_push_secrets: false,
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

/// The objects in `store` whose `spec.tenantRef` (read by `tenant_of`) names `tenant`: what
/// a QlikTenant event wakes in the csp-entry and secret-rotation controllers.
pub fn naming_tenant<K>(
    store: &kube::runtime::reflector::Store<K>,
    tenant: &crate::api::QlikTenant,
    tenant_of: impl Fn(&K) -> &str,
) -> Vec<kube::runtime::reflector::ObjectRef<K>>
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    use kube::ResourceExt;
    let namespace = tenant.namespace();
    let name = tenant.name_any();
    store
        .state()
        .iter()
        .filter(|o| o.namespace() == namespace && tenant_of(o) == name)
        .map(|o| kube::runtime::reflector::ObjectRef::from_obj(o.as_ref()))
        .collect()
}

/// What of a QlikTenant the objects naming it wait on: its `Ready` status (a
/// `predicate_filter` key, so that a tenant's other status writes wake nobody).
pub fn tenant_readiness(tenant: &crate::api::QlikTenant) -> Option<u64> {
    let ready = tenant
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.as_str());
    Some(match ready {
        None => 0,
        Some("True") => 1,
        Some(_) => 2,
    })
}

/// Who reports a controller's events: the controller, and the pod it runs in (`POD_NAME`,
/// set by the chart) so `kubectl get events` tells replicas apart.
pub fn event_reporter(controller: &str) -> kube::runtime::events::Reporter {
    kube::runtime::events::Reporter {
        controller: controller.to_owned(),
        instance: std::env::var("POD_NAME").ok(),
    }
}

/// Logs a failed reconcile (already recorded in the object's status and the metrics) at
/// debug level: the `for_each` of every controller's stream.
pub async fn log_failure<T, E: std::fmt::Display>(controller: &'static str, result: Result<T, E>) {
    if let Err(error) = result {
        tracing::debug!(controller, %error, "reconcile failed");
    }
}

/// Runs every controller until their watches end or `runtime.shutdown` is cancelled and
/// the reconciles in flight have finished.
pub async fn run(kube: Client, settings: Settings, runtime: Runtime) {
    profile::start();
    // The URL, CA and budgets come from each QlikTenant; the template gives the rest.
    let mut template = ClientConfig::new("https://tenant.invalid");
    template.observer = Some(runtime.metrics.clone());
    let shared = Arc::new(Shared {
        kube,
        tenants: TenantClients::new(template, SECRET_MAX_AGE)
            .with_allowed_hosts(settings.allowed_tenant_hosts.clone()),
        remote: RemoteCache::default(),
        turns: TenantTurns::default(),
        entries: EntryFeed::default(),
        clock: Arc::new(SystemClock),
        settings,
        runtime,
    });
    tokio::join!(
        tenant::run::run(shared.clone()),
        csp_entry::run(shared.clone()),
        secret_rotation::run(shared.clone()),
        secret_push::run(shared)
    );
}
