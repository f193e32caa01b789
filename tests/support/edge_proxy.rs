//! An edge in front of a test's namespace: traefik (built by `cargo xtask envtest`) on a
//! free loopback port, configured from the test control plane by its `kubernetesCRD`
//! (IngressRoute, Middleware) and `kubernetesGateway` (Gateway API) providers, and a tiny
//! in-process HTTP [`Backend`] that routes reach through a Service. Spawns a process, serves
//! HTTP and writes Kubernetes objects.
//!
//! ```ignore
//! let env = TestEnv::with_edge_crds().await; // the edges' CRDs are installed
//! let backend = Backend::start("hello").await;
//! backend.expose(&env, "app").await;        // Service and TraefikService `app`
//! let proxy = EdgeProxy::start(&env);
//! // ... create an IngressRoute or an HTTPRoute for host `app.test` ...
//! let served = proxy.wait_for("the route", "app.test", "/", |s| s.status == 200).await;
//! ```
//!
//! How the backend is reached without a cluster network: the apiserver refuses a loopback
//! address in an EndpointSlice ("may not be in the loopback range (127.0.0.0/8, ::1/128)"),
//! so a Service without selector plus a hand-made EndpointSlice cannot point at 127.0.0.1.
//! Instead the backend's Service is of type ExternalName (`127.0.0.1`), which traefik's
//! `kubernetesCRD` provider proxies to when `allowExternalNameServices` is on; its
//! `kubernetesGateway` provider refuses ExternalName Services, so an HTTPRoute reaches the
//! backend through a TraefikService (a backendRef of kind `TraefikService`, which traefik
//! supports) that weighs that Service. (traefik's `kubernetesIngressNGINX` provider, enabled
//! through [`EdgeProxy::start_with`], proxies to the same ExternalName Service.)

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::Bytes;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Value, json};

use super::TestEnv;

/// How long a route may take to be served: traefik's start, its informers' first sync and
/// its providers' throttle.
pub const ROUTE_DEADLINE: Duration = Duration::from_secs(60);
/// The field manager of the objects this fixture and its tests apply.
pub const FIELD_MANAGER: &str = "qlikops-edge-test";
/// The `controllerName` of traefik's Gateway API provider.
pub const GATEWAY_CONTROLLER: &str = "traefik.io/gateway-controller";
/// The label a GatewayClass needs to be this namespace's proxy's (value: the namespace).
pub const GATEWAY_CLASS_LABEL: &str = "qlikops.io/edge-proxy";

/// A running traefik watching one namespace; killed and reaped on drop.
pub struct EdgeProxy {
    child: Child,
    /// Port of the `web` entrypoint (HTTP) on 127.0.0.1; a Gateway listener uses it.
    pub web_port: u16,
    /// Where traefik logs (debug level).
    pub log: PathBuf,
    http: reqwest::Client,
}

/// One response the proxy served.
#[derive(Debug)]
pub struct Served {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Served {
    /// Every value of header `name`, in order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .get_all(name)
            .iter()
            .map(|value| value.to_str().unwrap_or("<not UTF-8>"))
            .collect()
    }
}

impl Drop for EdgeProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl EdgeProxy {
    /// Starts traefik against `env`'s control plane, watching `env.namespace` only, with the
    /// admin's token; Gateway API objects are served only for GatewayClasses labelled
    /// [`GATEWAY_CLASS_LABEL`]`=<namespace>`, so that tests running at once keep apart.
    pub fn start(env: &TestEnv) -> EdgeProxy {
        EdgeProxy::start_with(env, &[])
    }

    /// [`EdgeProxy::start`] with more static configuration (`--name=value` arguments), e.g.
    /// another provider.
    pub fn start_with(env: &TestEnv, extra_args: &[String]) -> EdgeProxy {
        let control_plane = env.control_plane;
        let traefik = control_plane.bin_dir.join("traefik");
        let web_port = free_port();
        let log = control_plane
            .run_dir
            .join(format!("traefik-{}.log", env.namespace));
        let file = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("failed to create {}: {e}", log.display()));
        let stderr = file
            .try_clone()
            .unwrap_or_else(|e| panic!("failed to open {}: {e}", log.display()));
        let mut command = Command::new(&traefik);
        command
            .arg("--global.checkNewVersion=false")
            .arg("--global.sendAnonymousUsage=false")
            .arg("--log.level=DEBUG")
            .arg("--log.noColor=true")
            .arg(format!("--entryPoints.web.address=127.0.0.1:{web_port}"))
            // Reloads as soon as the objects change (default 2 s): tests wait for them.
            .arg("--providers.providersThrottleDuration=100ms");
        for provider in ["kubernetesCRD", "kubernetesGateway"] {
            command
                .arg(format!(
                    "--providers.{provider}.endpoint={}",
                    control_plane.url
                ))
                .arg(format!(
                    "--providers.{provider}.token={}",
                    control_plane.admin_token_file.display()
                ))
                .arg(format!(
                    "--providers.{provider}.certAuthFilePath={}",
                    control_plane.ca_file.display()
                ))
                .arg(format!(
                    "--providers.{provider}.namespaces={}",
                    env.namespace
                ));
        }
        command
            // The backend's Service is an ExternalName (see the module's documentation).
            .arg("--providers.kubernetesCRD.allowExternalNameServices=true")
            .arg(format!(
                "--providers.kubernetesGateway.labelSelector={GATEWAY_CLASS_LABEL}={}",
                env.namespace
            ))
            .args(extra_args)
            // Either would make traefik ignore the endpoint and token above.
            .env_remove("KUBECONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBERNETES_SERVICE_PORT")
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(stderr);
        qlikops_testenv::die_with_parent(&mut command);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start {}: {e}", traefik.display()));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_else(|e| panic!("failed to build an HTTP client: {e}"));
        EdgeProxy {
            child,
            web_port,
            log,
            http,
        }
    }

    /// traefik's process id (the same before and after a reload).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of traefik's log, for a failure message.
    pub fn log_tail(&self) -> String {
        qlikops_testenv::tail(&self.log)
    }

    /// `GET http://<host><path>` through the `web` entrypoint.
    pub async fn get(&self, host: &str, path: &str) -> Result<Served, String> {
        let response = self
            .http
            .get(format!("http://127.0.0.1:{}{path}", self.web_port))
            .header(reqwest::header::HOST, host)
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .text()
            .await
            .map_err(|e| format!("failed to read the body: {e}"))?;
        Ok(Served {
            status,
            headers,
            body,
        })
    }

    /// Polls `GET http://<host><path>` until `accept` takes the response, and returns it.
    /// Fails the test after [`ROUTE_DEADLINE`] with the last answer, whether traefik is still
    /// running, and its log's tail.
    pub async fn wait_for(
        &mut self,
        what: &str,
        host: &str,
        path: &str,
        accept: impl Fn(&Served) -> bool,
    ) -> Served {
        let until = Instant::now() + ROUTE_DEADLINE;
        let mut poll = tokio::time::interval(Duration::from_millis(100));
        loop {
            poll.tick().await;
            let last = match self.get(host, path).await {
                Ok(served) if accept(&served) => return served,
                Ok(served) => format!("{served:?}"),
                Err(message) => message,
            };
            let exited = self.child.try_wait().ok().flatten();
            if Instant::now() > until || exited.is_some() {
                let state = exited.map_or("running".to_owned(), |s| format!("exited ({s})"));
                panic!(
                    "timed out after {ROUTE_DEADLINE:?} waiting for {what} (GET http://{host}{path} \
                     on port {}); last answer: {last}\ntraefik is {state}; {} (tail):\n{}",
                    self.web_port,
                    self.log.display(),
                    self.log_tail()
                );
            }
        }
    }
}

/// An HTTP server in the test process answering every request with 200 and `body`
/// (`text/plain`, no other header of its own); stops on drop.
pub struct Backend {
    /// Its port on 127.0.0.1.
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Backend {
    pub async fn start(body: &'static str) -> Backend {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("failed to bind the backend: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("the backend has no address: {e}"))
            .port();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let service = hyper::service::service_fn(move |_request| async move {
                    let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
                    response.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static("text/plain"),
                    );
                    Ok::<_, std::convert::Infallible>(response)
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
                );
            }
        });
        Backend { port, task }
    }

    /// Exposes the backend as `name`: see [`expose_port`].
    pub async fn expose(&self, env: &TestEnv, name: &str) {
        expose_port(env, name, self.port).await;
    }
}

/// Makes Service `name` (type ExternalName, `127.0.0.1`, port `port`) and TraefikService
/// `name` (all weight on that Service) in `env`'s namespace, for a server of the test on
/// 127.0.0.1:`port`: an IngressRoute routes to the Service (at `port`), an HTTPRoute to the
/// TraefikService (see the module's documentation for why).
pub async fn expose_port(env: &TestEnv, name: &str, port: u16) {
    let service = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "type": "ExternalName",
            "externalName": "127.0.0.1",
            // traefik dials the Service's port of an ExternalName Service.
            "ports": [{"name": "http", "port": port}],
        },
    });
    Api::<Service>::namespaced(env.client.clone(), &env.namespace)
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Apply(&service),
        )
        .await
        .unwrap_or_else(|e| panic!("failed to create Service {name}: {e}"));
    let traefik_service = json!({
        "apiVersion": "traefik.io/v1alpha1", "kind": "TraefikService",
        "metadata": {"name": name},
        "spec": {"weighted": {"services": [{"name": name, "port": port}]}},
    });
    apply(env, &traefik_service, true).await;
}

/// An API for a kind that has no Rust type here (Traefik's, Gateway API's), in `env`'s
/// namespace, or cluster-wide when `namespaced` is false.
pub fn dynamic_api(
    env: &TestEnv,
    api_version: &str,
    kind: &str,
    namespaced: bool,
) -> Api<DynamicObject> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    if namespaced {
        Api::namespaced_with(env.client.clone(), &env.namespace, &resource)
    } else {
        Api::all_with(env.client.clone(), &resource)
    }
}

/// Server-side applies `object` (with `apiVersion`, `kind` and `metadata.name`) as
/// [`FIELD_MANAGER`], in `env`'s namespace unless the kind is cluster-scoped.
pub async fn apply(env: &TestEnv, object: &Value, namespaced: bool) -> DynamicObject {
    let field = |name: &str| {
        object
            .pointer(name)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("the object has no {name}: {object}"))
    };
    let (api_version, kind, name) = (
        field("/apiVersion"),
        field("/kind"),
        field("/metadata/name"),
    );
    dynamic_api(env, api_version, kind, namespaced)
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(object),
        )
        .await
        .unwrap_or_else(|e| panic!("failed to apply {kind} {name}: {e}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap_or_else(|e| panic!("failed to find a free port: {e}"))
        .port()
}
