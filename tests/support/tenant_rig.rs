//! What a controller suite stands on: a fresh namespace, its own tenant emulator with an
//! admin API key, the Secret holding that key and QlikTenants pointing at the emulator,
//! the controllers under test running in process (aborted when the rig is dropped), and
//! probes of both sides. Does I/O: the apiserver and the emulator.
//!
//! ```ignore
//! let rig = TenantRig::builder().run(Controller::Tenant).start().await;
//! rig.create_admin_secret().await;
//! rig.create(&rig.qlik_tenant(TENANT, json!({ "header": { "configMapName": "csp" } }))).await;
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use qlik_csp_operator::api::csp_entry::{CspEntrySpec, DeletionPolicy, DirectiveName};
use qlik_csp_operator::api::{CspEntry, QlikTenant, TenantRef};
use qlik_csp_operator::controller::allowed_hosts::AllowedHosts;
use qlik_csp_operator::controller::tenant::publish::NGINX_CUSTOM_HEADERS;
use qlik_csp_operator::controller::{Shared, csp_entry, secret_push, tenant};
use qlik_csp_operator::emulator::{Emulator, EmulatorConfig};
use qlik_csp_operator::tenant::{ClientConfig, Credential, CredentialSource, TenantClient};
use serde_json::{Value, json};

use super::TestEnv;
use super::emulator::{self, EmulatorControl};

/// The API key the emulator accepts as the tenant's admin.
pub const ADMIN_KEY: &str = "rig-admin-key-0123456789abcdef0123";
/// The Secret holding [`ADMIN_KEY`], and its key.
pub const ADMIN_SECRET: &str = "qlik-admin";
pub const ADMIN_SECRET_KEY: &str = "api-key";
/// The usual QlikTenant name.
pub const TENANT: &str = "acme";
/// How long a rig waits for anything.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A controller the rig runs in process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Controller {
    Tenant,
    CspEntry,
    SecretPush,
}

/// A change to the controllers' shared state before they start.
type SharedTweak = Box<dyn FnOnce(&mut Shared) + Send>;

/// How a [`TenantRig`] starts; see [`TenantRig::builder`].
pub struct TenantRigBuilder {
    emulator: EmulatorConfig,
    debounce: Duration,
    drift: Option<Duration>,
    allowed_hosts: AllowedHosts,
    tweak: Option<SharedTweak>,
    controllers: Vec<Controller>,
    edge_crds: bool,
}

impl TenantRigBuilder {
    /// Runs on the control plane that also has the edges' CRDs (Gateway API, Traefik).
    pub fn edge_crds(mut self) -> Self {
        self.edge_crds = true;
        self
    }

    /// Adjusts the emulator's configuration (it already accepts [`ADMIN_KEY`]).
    pub fn emulator(mut self, tweak: impl FnOnce(&mut EmulatorConfig)) -> Self {
        tweak(&mut self.emulator);
        self
    }

    /// The time between a change and its reconcile (default 200 ms).
    pub fn debounce(mut self, debounce: Duration) -> Self {
        self.debounce = debounce;
        self
    }

    /// The drift-check interval (default 1 s, see [`super::controller_shared`]).
    pub fn drift(mut self, drift: Duration) -> Self {
        self.drift = Some(drift);
        self
    }

    /// The tenant hosts the controllers may talk to (default: the emulator's loopback).
    pub fn allowed_hosts(mut self, hosts: AllowedHosts) -> Self {
        self.allowed_hosts = hosts;
        self
    }

    /// Adjusts the controllers' shared state before they start.
    pub fn shared(mut self, tweak: impl FnOnce(&mut Shared) + Send + 'static) -> Self {
        self.tweak = Some(Box::new(tweak));
        self
    }

    /// Runs `controller` in process for the rig's namespace.
    pub fn run(mut self, controller: Controller) -> Self {
        self.controllers.push(controller);
        self
    }

    /// A namespace, the emulator and the controllers asked for. Creates no object.
    pub async fn start(self) -> TenantRig {
        let env = if self.edge_crds {
            TestEnv::with_edge_crds().await
        } else {
            TestEnv::new().await
        };
        let emulator = emulator::start(self.emulator).await;
        let control = EmulatorControl::new(&emulator);
        let shared = super::controller_shared_with_hosts(&env, self.debounce, self.allowed_hosts);
        let mut shared =
            Arc::into_inner(shared).unwrap_or_else(|| panic!("the shared state is not shared yet"));
        if let Some(drift) = self.drift {
            shared.settings.drift_interval_override = Some(drift);
        }
        if let Some(tweak) = self.tweak {
            tweak(&mut shared);
        }
        let mut rig = TenantRig {
            env,
            emulator,
            control,
            shared: Arc::new(shared),
            tasks: Vec::new(),
        };
        for controller in self.controllers {
            rig.start_controller(controller);
        }
        rig
    }
}

/// A namespace, an emulator and the controllers under test; they stop on drop.
pub struct TenantRig {
    pub env: TestEnv,
    pub emulator: Emulator,
    pub control: EmulatorControl,
    /// The state the in-process controllers share (their metrics, caches, settings).
    pub shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for TenantRig {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl TenantRig {
    /// An emulator accepting [`ADMIN_KEY`], no controller, debounce 200 ms, drift 1 s.
    pub fn builder() -> TenantRigBuilder {
        TenantRigBuilder {
            emulator: EmulatorConfig {
                admin_api_keys: vec![ADMIN_KEY.to_owned()],
                ..EmulatorConfig::default()
            },
            debounce: Duration::from_millis(200),
            drift: None,
            allowed_hosts: super::test_allowed_hosts(),
            tweak: None,
            controllers: Vec::new(),
            edge_crds: false,
        }
    }

    /// Starts `controller` now (after objects it must find already there, say).
    pub fn start_controller(&mut self, controller: Controller) {
        let shared = self.shared.clone();
        self.tasks.push(match controller {
            Controller::Tenant => tokio::spawn(tenant::run::run(shared)),
            Controller::CspEntry => tokio::spawn(csp_entry::run(shared)),
            Controller::SecretPush => tokio::spawn(secret_push::run(shared)),
        });
    }

    /// Stops the controllers (and every task the rig runs) now.
    pub fn stop(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }

    /// Runs `task` until the rig is dropped (a watch the test reads, say).
    pub fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.push(tokio::spawn(task));
    }

    pub fn client(&self) -> Client {
        self.env.client.clone()
    }

    pub fn ns(&self) -> &str {
        &self.env.namespace
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
        K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        Api::namespaced(self.client(), self.ns())
    }

    pub async fn create<K>(&self, object: &K) -> K
    where
        K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
        K: Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
    {
        self.api::<K>()
            .create(&PostParams::default(), object)
            .await
            .unwrap_or_else(|e| panic!("failed to create {}: {e}", object.name_any()))
    }

    /// Creates Secret `name` with `data` (as `stringData`).
    pub async fn create_secret(&self, name: &str, data: &[(&str, &str)]) -> Secret {
        self.create(&secret(name, data)).await
    }

    /// Creates [`ADMIN_SECRET`] holding [`ADMIN_KEY`].
    pub async fn create_admin_secret(&self) -> Secret {
        self.create_admin_secret_with(ADMIN_KEY).await
    }

    /// Creates [`ADMIN_SECRET`] holding `value` (a key the tenant refuses, say).
    pub async fn create_admin_secret_with(&self, value: &str) -> Secret {
        self.create(&admin_secret(value)).await
    }

    /// QlikTenant `name` on the emulator (its URL and CA) with the API key of
    /// [`ADMIN_SECRET`]; the fields of `spec` (e.g. `header`, `credentials`) are set over
    /// that. What is left out takes the CRD's defaults.
    pub fn qlik_tenant(&self, name: &str, spec: Value) -> QlikTenant {
        let mut tenant: QlikTenant = from_json(tenant_json(&self.emulator, name, spec));
        tenant.metadata.namespace = Some(self.ns().to_owned());
        tenant
    }

    /// Merge-patches the spec of QlikTenant `name`.
    pub async fn patch_tenant_spec(&self, name: &str, spec: Value) -> QlikTenant {
        self.api::<QlikTenant>()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": spec })),
            )
            .await
            .unwrap_or_else(|e| panic!("failed to patch QlikTenant {name}: {e}"))
    }

    /// Waits until QlikTenant `name` satisfies `probe`, and returns what it returned.
    pub async fn wait_tenant<T>(
        &self,
        name: &str,
        what: &str,
        probe: impl Fn(&QlikTenant) -> Option<T>,
    ) -> T {
        let api = self.api::<QlikTenant>();
        super::eventually(what, DEADLINE, || {
            let api = api.clone();
            let probe = &probe;
            async move {
                api.get_opt(name)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|t| probe(&t))
            }
        })
        .await
    }

    /// A tenant client of the emulator with `credential` (said to come from a Secret of
    /// the rig's namespace).
    pub fn tenant_client(&self, credential: Credential) -> TenantClient {
        let config = ClientConfig {
            ca_bundle: Some(self.emulator.ca_pem().to_owned()),
            ..ClientConfig::new(self.emulator.base_url())
        };
        let source = CredentialSource::Secret {
            namespace: self.ns().to_owned(),
            name: "under-test".to_owned(),
            key: "value".to_owned(),
        };
        TenantClient::new(config, credential, source)
            .unwrap_or_else(|e| panic!("failed to build a tenant client: {e}"))
    }

    /// How many reconciles of the tenant controller failed with `reason` so far (its
    /// `qlikops_reconcile_errors_total` metric).
    pub fn tenant_failures(&self, reason: &str) -> u64 {
        let text = self.shared.runtime.metrics.encode(jiff::Timestamp::now());
        let prefix =
            format!("qlikops_reconcile_errors_total{{controller=\"tenant\",reason=\"{reason}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    }

    /// The tenant's admin, as a client of its own.
    pub fn admin(&self) -> TenantClient {
        self.tenant_client(Credential::api_key(ADMIN_KEY))
    }
}

pub fn meta(name: &str) -> kube::api::ObjectMeta {
    kube::api::ObjectMeta {
        name: Some(name.to_owned()),
        ..kube::api::ObjectMeta::default()
    }
}

/// QlikTenant `name` as a user writes it: on `emulator` (its URL and CA) with the API key
/// of [`ADMIN_SECRET`]; the fields of `spec` (e.g. `header`, `credentials`) are set over
/// that, and what is left out is left to the CRD's defaults.
pub fn tenant_json(emulator: &Emulator, name: &str, spec: Value) -> Value {
    let mut full = json!({
        "url": emulator.base_url(),
        "caBundle": emulator.ca_pem(),
        "credentials": {
            "apiKey": { "secretRef": { "name": ADMIN_SECRET, "key": ADMIN_SECRET_KEY } },
        },
    });
    if let Value::Object(fields) = spec {
        for (field, value) in fields {
            full[field] = value;
        }
    }
    json!({
        "apiVersion": "qlikops.io/v1alpha1",
        "kind": "QlikTenant",
        "metadata": { "name": name },
        "spec": full,
    })
}

/// CspEntry `name` of tenant [`TENANT`] allowing `origin` for `directives`.
pub fn csp_entry(
    name: &str,
    origin: &str,
    directives: &[DirectiveName],
    web_socket: bool,
) -> CspEntry {
    CspEntry::new(
        name,
        CspEntrySpec {
            tenant_ref: TenantRef {
                name: TENANT.to_owned(),
            },
            origin: origin.to_owned(),
            directives: directives.to_vec(),
            allow_web_socket: web_socket,
            description: None,
            deletion_policy: DeletionPolicy::Delete,
        },
    )
}

/// Secret `name` with `data` (as `stringData`).
pub fn secret(name: &str, data: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: meta(name),
        string_data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Secret::default()
    }
}

/// [`ADMIN_SECRET`] holding `key` under [`ADMIN_SECRET_KEY`], as `examples/` expect it.
pub fn admin_secret(key: &str) -> Secret {
    secret(ADMIN_SECRET, &[(ADMIN_SECRET_KEY, key)])
}

/// Ingress `name` (backend `web:80`); with `custom_headers` (`<namespace>/<ConfigMap>`),
/// annotated for ingress-nginx to serve the headers of that ConfigMap.
pub fn ingress(name: &str, custom_headers: Option<String>) -> Ingress {
    let mut object: Ingress = from_json(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": { "name": name },
        "spec": { "defaultBackend": { "service": { "name": "web", "port": { "number": 80 } } } },
    }));
    if let Some(reference) = custom_headers {
        object.metadata.annotations = Some(BTreeMap::from([(
            NGINX_CUSTOM_HEADERS.to_owned(),
            reference,
        )]));
    }
    object
}

/// What the objects of `examples/` expect around them in `env`'s namespace: the admin
/// Secret holding `key`, and Ingress `reports` serving the header of ConfigMap
/// `qlik-csp-header`.
pub async fn create_example_surroundings(env: &TestEnv, key: &str) {
    Api::<Secret>::namespaced(env.client.clone(), &env.namespace)
        .create(&PostParams::default(), &admin_secret(key))
        .await
        .unwrap_or_else(|e| panic!("failed to create the admin Secret: {e}"));
    let reference = format!("{}/qlik-csp-header", env.namespace);
    Api::<Ingress>::namespaced(env.client.clone(), &env.namespace)
        .create(&PostParams::default(), &ingress("reports", Some(reference)))
        .await
        .unwrap_or_else(|e| panic!("failed to create the Ingress: {e}"));
}

pub fn from_json<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap_or_else(|e| panic!("bad test object: {e}"))
}

/// Condition `type_` of a QlikTenant.
pub fn condition<'a>(tenant: &'a QlikTenant, type_: &str) -> Option<&'a Condition> {
    tenant
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}
