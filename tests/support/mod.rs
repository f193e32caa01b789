//! Test harness: a real control plane per test binary and a fresh namespace per test.
//!
//! ```ignore
//! let env = support::TestEnv::new().await;
//! let entries: Api<CspEntry> = Api::namespaced(env.client.clone(), &env.namespace);
//! ```
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod browser;
pub mod control_plane;
pub mod edge_proxy;
pub mod emulator;
pub mod operator;
pub mod qrs_site;
pub mod reconciles;
pub mod retries;
pub mod secret_scan;
pub mod site;
pub mod tenant_rig;

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, PostParams};

pub use control_plane::ControlPlane;
pub use operator::{Operator, OperatorBuilder};
pub use qlikops_testenv::{Impersonation, client_from_kubeconfig};

/// An admin client and a namespace of its own for one test.
pub struct TestEnv {
    pub client: Client,
    pub namespace: String,
    pub control_plane: &'static ControlPlane,
}

impl TestEnv {
    /// Starts the control plane if needed and creates a fresh namespace.
    pub async fn new() -> TestEnv {
        TestEnv::on(control_plane::shared()).await
    }

    /// [`TestEnv::new`] on the control plane with the edges' CRDs (Gateway API, Traefik):
    /// see [`control_plane::with_edge_crds`].
    pub async fn with_edge_crds() -> TestEnv {
        TestEnv::on(control_plane::with_edge_crds()).await
    }

    /// A fresh namespace on `control_plane`.
    async fn on(control_plane: &'static ControlPlane) -> TestEnv {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let client = client_from_kubeconfig(&control_plane.kubeconfig, None)
            .await
            .unwrap_or_else(|e| panic!("failed to build the admin client: {e}"));
        let namespace = format!(
            "t{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let mut object = Namespace::default();
        object.metadata.name = Some(namespace.clone());
        namespaces
            .create(&PostParams::default(), &object)
            .await
            .unwrap_or_else(|e| panic!("failed to create namespace {namespace}: {e}"));
        TestEnv {
            client,
            namespace,
            control_plane,
        }
    }

    /// The operator binary on this namespace, as the admin (see [`Operator::builder`]).
    pub fn operator(&self) -> OperatorBuilder {
        Operator::builder(&self.namespace, &self.control_plane.kubeconfig)
    }

    /// A client that acts as ServiceAccount `namespace/name` (via impersonation), for RBAC tests.
    pub async fn client_as_service_account(&self, namespace: &str, name: &str) -> Client {
        let identity = service_account_identity(namespace, name);
        client_from_kubeconfig(&self.control_plane.kubeconfig, Some(identity))
            .await
            .unwrap_or_else(|e| panic!("failed to build an impersonating client: {e}"))
    }

    /// A kubeconfig file for a process (such as the operator binary) that acts as
    /// ServiceAccount `namespace/name`: the admin kubeconfig with `as`/`as-groups` set, so the
    /// apiserver authorizes every request with the ServiceAccount's RBAC.
    pub fn kubeconfig_as_service_account(&self, namespace: &str, name: &str) -> PathBuf {
        let path = &self.control_plane.kubeconfig;
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()));
        let mut config: serde_json::Value = serde_norway::from_str(&text)
            .unwrap_or_else(|e| panic!("failed to parse {}: {e}", path.display()));
        let identity = service_account_identity(namespace, name);
        let users = config["users"]
            .as_array_mut()
            .unwrap_or_else(|| panic!("{} has no users", path.display()));
        for user in users {
            user["user"]["as"] = serde_json::json!(identity.user);
            user["user"]["as-groups"] = serde_json::json!(identity.groups);
        }
        let out = self
            .control_plane
            .run_dir
            .join(format!("kubeconfig-{}-{namespace}-{name}", self.namespace));
        let yaml = serde_norway::to_string(&config).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&out, yaml)
            .unwrap_or_else(|e| panic!("failed to write {}: {e}", out.display()));
        out
    }
}

/// The user and groups the apiserver gives ServiceAccount `namespace/name`.
pub fn service_account_identity(namespace: &str, name: &str) -> Impersonation {
    Impersonation {
        user: format!("system:serviceaccount:{namespace}:{name}"),
        groups: vec![
            "system:serviceaccounts".to_owned(),
            format!("system:serviceaccounts:{namespace}"),
            "system:authenticated".to_owned(),
        ],
    }
}

/// Polls `probe` until it returns `Some`, failing the test with `what` after `deadline`.
/// For state that has no watchable condition; prefer `kube::runtime::wait` where there is one.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = Instant::now() + deadline;
    let mut poll = tokio::time::interval(Duration::from_millis(100));
    loop {
        poll.tick().await;
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < until,
            "timed out after {deadline:?} waiting for {what}"
        );
    }
}

/// [`eventually`] for a probe that says what it still waits for: `Err(pending)` until done;
/// the timeout names the last `pending`.
pub async fn eventually_explained<T, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let until = Instant::now() + deadline;
    let mut poll = tokio::time::interval(Duration::from_millis(100));
    loop {
        poll.tick().await;
        match probe().await {
            Ok(value) => return value,
            Err(pending) => assert!(
                Instant::now() < until,
                "timed out after {deadline:?} waiting for {what}; still pending:\n{pending}"
            ),
        }
    }
}

/// Whether `status` (of any kind) has a `Ready` condition that is `True`.
pub fn is_ready(status: Option<&serde_json::Value>) -> bool {
    status
        .and_then(|s| s["conditions"].as_array())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// Waits until object `name` of `api` is Ready (see [`is_ready`]), and returns it.
pub async fn wait_ready<K>(api: &Api<K>, name: &str, deadline: Duration) -> K
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned,
    K: serde::Serialize + std::fmt::Debug,
{
    let what = format!("{} {name} to be Ready", K::kind(&()));
    eventually(&what, deadline, || async {
        let object = api.get(name).await.ok()?;
        is_ready(serde_json::to_value(&object).ok()?.get("status")).then_some(object)
    })
    .await
}

/// Controller state for tests: the test's namespace only, drift checks every second, short
/// tenant-client backoffs, `debounce` between a change and its reconcile, and tenant hosts
/// allowed: the emulator's loopback address only (the operator's default allows only Qlik
/// Cloud).
pub fn controller_shared(
    env: &TestEnv,
    debounce: Duration,
) -> std::sync::Arc<qlik_csp_operator::controller::Shared> {
    controller_shared_with_hosts(env, debounce, test_allowed_hosts())
}

/// [`controller_shared`] with these tenant hosts allowed.
pub fn controller_shared_with_hosts(
    env: &TestEnv,
    debounce: Duration,
    allowed_hosts: qlik_csp_operator::controller::allowed_hosts::AllowedHosts,
) -> std::sync::Arc<qlik_csp_operator::controller::Shared> {
    use qlik_csp_operator::controller::csp_entry::remote_cache::RemoteCache;
    use qlik_csp_operator::controller::tenant_clients::TenantClients;
    use qlik_csp_operator::controller::{Runtime, Settings, Shared};
    use qlik_csp_operator::tenant::{ClientConfig, RetryPolicy};
    let template = ClientConfig {
        request_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
        retry: RetryPolicy {
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
            ..RetryPolicy::default()
        },
        ..ClientConfig::new("https://set-per-tenant.invalid")
    };
    std::sync::Arc::new(Shared {
        kube: env.client.clone(),
        tenants: TenantClients::new(template, Duration::from_secs(1))
            .with_allowed_hosts(allowed_hosts.clone()),
        remote: RemoteCache::default(),
        turns: Default::default(),
        entries: Default::default(),
        clock: std::sync::Arc::new(qlik_csp_operator::controller::clock::SystemClock),
        settings: Settings {
            drift_interval_override: Some(Duration::from_secs(1)),
            grace_period_override: None,
            debounce,
            watch_namespace: Some(env.namespace.clone()),
            allowed_tenant_hosts: allowed_hosts,
            // The test's namespace stands in for the operator's (the digest key's Secret).
            operator_namespace: Some(env.namespace.clone()),
            watch_push_secrets: false,
        },
        runtime: Runtime::default(),
    })
}

/// The hosts tests let the operator talk to: the emulator's loopback address.
pub fn test_allowed_hosts() -> qlik_csp_operator::controller::allowed_hosts::AllowedHosts {
    qlik_csp_operator::controller::allowed_hosts::AllowedHosts::parse(["127.0.0.1", "localhost"])
        .unwrap_or_else(|e| panic!("{e}"))
}
