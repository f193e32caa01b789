//! `cargo xtask demo`: the whole product on a laptop. A real etcd + kube-apiserver (with a
//! kube-controller-manager, so deletions cascade and namespaces go away), the tenant
//! emulator, the manifests of `examples/` applied as a user would (the tenant's URL pointed
//! at the emulator), and the operator running; then what a user should look at.
//! Runs until Ctrl-C; `--once` exits after showing the results.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::{Client, ResourceExt};
use qlik_csp_operator::api::{CspEntry, QlikTenant, SecretRotation};
use qlikops_testenv::ControlPlane;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::bench::cluster;
use crate::processes::{Emulator, Operator};
use crate::qrs_site::QrsSite;

pub const USAGE: &str =
    "demo [--once]   start a local control plane, the tenant emulator and the operator,
                   apply examples/ and show the results; --once exits 0 after showing them";

const DEADLINE: Duration = Duration::from_secs(120);
const FIELD_MANAGER: &str = "qlikops-demo";

pub fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let once = match args {
        [] => false,
        [flag] if flag == "--once" => true,
        _ => return Err(format!("usage: cargo xtask {USAGE}")),
    };
    let tools = crate::envtest::ensure(root)?;
    step("building the operator and the tenant emulator");
    let status = Command::new(crate::cargo())
        .current_dir(root)
        .args(["build", "--locked", "--bins"])
        .status()
        .map_err(|e| format!("failed to run cargo build: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build failed ({status})"));
    }
    let target = crate::target_dir(root);
    let work = target.join("demo");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)
        .map_err(|e| format!("failed to create {}: {e}", work.display()))?;

    step(
        "starting etcd, kube-apiserver and kube-controller-manager (garbage collector, \
         namespace controller) on loopback, with the CRDs from crds/",
    );
    let control_plane = ControlPlane::start(&tools, &root.join("crds"))?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("no async runtime: {e}"))?;
    runtime.block_on(demo(
        root,
        &control_plane,
        &target.join("debug"),
        &work,
        once,
    ))
}

async fn demo(
    root: &Path,
    control_plane: &ControlPlane,
    bins: &Path,
    work: &Path,
    once: bool,
) -> Result<(), String> {
    let objects = examples(&root.join("examples"))?;
    step("starting the tenant emulator (a Qlik Cloud tenant in memory, HTTPS)");
    // The OAuth clients the examples rotate secrets of exist on the emulated tenant.
    let clients: Vec<String> = objects
        .iter()
        .filter_map(|o| o["spec"]["credential"]["oauthClientSecret"]["clientId"].as_str())
        .map(|id| format!("--oauth-client={id}:demo-initial-secret-0123456789"))
        .collect();
    let clients: Vec<&str> = clients.iter().map(String::as_str).collect();
    let emulator = Emulator::start(bins, work, "acme", &clients)?;
    println!("    {}", emulator.url);
    let site = match objects.iter().find(|o| is_site(o)) {
        Some(tenant) => {
            step(
                "starting an emulated Qlik Sense Enterprise on Windows site (its QRS API: mutual TLS, Xrfkey)",
            );
            let prefixes = tenant["spec"]["clientManaged"]["virtualProxyPrefixes"]
                .as_array()
                .map(|p| p.iter().filter_map(Value::as_str).collect::<Vec<_>>())
                .unwrap_or_default();
            let site = QrsSite::start(bins, work, &prefixes)?;
            println!(
                "    {} (client certificate exported to {})",
                site.url,
                work.display()
            );
            Some(site)
        }
        None => None,
    };
    let client = control_plane.admin_client().await?;

    step("applying examples/ (the QlikTenants' URLs point at the emulators)");
    ensure_namespaces(&client, &objects).await?;
    for namespace in namespaces_of(&objects, "QlikTenant") {
        cluster::create_admin_secret(&client, &namespace).await?;
    }
    for mut object in objects {
        match (&site, object["kind"] == "QlikTenant", is_site(&object)) {
            (Some(site), true, true) => {
                create_certificate_secret(&client, &object, site).await?;
                object["spec"]["clientManaged"]["url"] = json!(site.url);
            }
            (_, true, _) => {
                object["spec"]["url"] = json!(emulator.url);
                object["spec"]["caBundle"] = json!(emulator.ca_pem);
            }
            _ => {}
        }
        apply(&client, &object).await?;
    }

    step("running the operator (logs: target/demo/operator.log)");
    let mut operator = Operator::start(
        bins,
        &control_plane.kubeconfig,
        &[
            "--log-format",
            "text",
            "--allowed-tenant-hosts",
            "127.0.0.1",
        ],
        work.join("operator.log"),
    )?;

    let result = show(&client).await;
    operator.check_alive()?;
    result?;
    if let Some(site) = &site {
        show_site(&client, site).await?;
    }
    show_cleanup(&client).await?;
    println!(
        "\nThe control plane is yours to explore:\n    export KUBECONFIG={}\n    kubectl get qlik -A",
        control_plane.kubeconfig.display()
    );
    if once {
        return Ok(());
    }
    println!("\nRunning; press Ctrl-C to stop (everything started here stops with it).");
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| format!("failed to wait for Ctrl-C: {e}"))?;
    Ok(())
}

/// Whether `object` is a QlikTenant of a client-managed site.
fn is_site(object: &Value) -> bool {
    object["kind"] == "QlikTenant" && object["spec"]["clientManaged"].is_object()
}

/// The site tenant's certificate Secret, from the files the emulated site wrote, as
/// `kubectl create secret generic --from-file` would make it.
async fn create_certificate_secret(
    client: &Client,
    tenant: &Value,
    site: &QrsSite,
) -> Result<(), String> {
    let namespace = tenant["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    let name = tenant["spec"]["clientManaged"]["certificateSecretRef"]["name"]
        .as_str()
        .ok_or("the site's QlikTenant names no certificate Secret")?;
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": { "name": name, "namespace": namespace },
        "stringData": {
            "client.pem": site.client_pem,
            "client_key.pem": site.client_key_pem,
            "root.pem": site.ca_pem,
        },
    });
    apply(client, &secret).await
}

/// The site's QlikTenant and what its virtual proxies now carry.
async fn show_site(client: &Client, site: &QrsSite) -> Result<(), String> {
    let tenants: Api<QlikTenant> = Api::all(client.clone());
    let tenant = eventually(
        "the site's QlikTenant to publish into every virtual proxy",
        || async {
            tenants
                .list(&Default::default())
                .await
                .ok()?
                .items
                .into_iter()
                .filter(|t| t.spec.is_client_managed() && cluster::tenant_ready(t))
                .find(|t| {
                    let proxies = t.status.as_ref().map(|s| s.virtual_proxies.as_slice());
                    let proxies = proxies.unwrap_or_default();
                    !proxies.is_empty() && proxies.iter().all(|p| p.published)
                })
        },
    )
    .await?;
    let build = tenant.status.as_ref().and_then(|s| s.build_version.clone());
    step(&format!(
        "QlikTenant {}/{} (a client-managed site, build {}) is Ready",
        tenant.namespace().unwrap_or_default(),
        tenant.name_any(),
        build.as_deref().unwrap_or("?"),
    ));
    print_conditions(tenant.status.as_ref().map(|s| s.conditions.as_slice()));
    step("its virtual proxies' additionalResponseHeaders (read back from the site)");
    for proxy in site.virtual_proxies().await? {
        let prefix = proxy["prefix"].as_str().unwrap_or_default();
        println!("    prefix {prefix:?}:");
        let headers = proxy["additionalResponseHeaders"]
            .as_str()
            .unwrap_or_default();
        for line in headers.lines() {
            println!("      {line}");
        }
    }
    Ok(())
}

/// Waits for each result and prints it.
async fn show(client: &Client) -> Result<(), String> {
    let tenants: Api<QlikTenant> = Api::all(client.clone());
    let tenant = eventually("the QlikTenant to be Ready", || async {
        tenants
            .list(&Default::default())
            .await
            .ok()?
            .items
            .into_iter()
            .filter(|t| !t.spec.is_client_managed())
            .find(cluster::tenant_ready)
    })
    .await?;
    let namespace = tenant.namespace().unwrap_or_default();
    step(&format!(
        "QlikTenant {namespace}/{} is Ready",
        tenant.name_any()
    ));
    print_conditions(tenant.status.as_ref().map(|s| s.conditions.as_slice()));

    let entries: Api<CspEntry> = Api::namespaced(client.clone(), &namespace);
    let listed = eventually("every CspEntry to be Ready", || async {
        let list = entries.list(&Default::default()).await.ok()?.items;
        list.iter().all(cluster::entry_ready).then_some(list)
    })
    .await?;
    step("CspEntries, each synced to its tenant (or compiled locally for the site)");
    println!("    {:<16} {:<40} {:<8} REASON", "NAME", "ORIGIN", "READY");
    for entry in &listed {
        let ready = entry
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
        println!(
            "    {:<16} {:<40} {:<8} {}",
            entry.name_any(),
            entry.spec.origin,
            ready.map_or("-", |c| c.status.as_str()),
            ready.map_or("-", |c| c.reason.as_str()),
        );
    }

    let config_map_name = tenant
        .spec
        .header
        .clone()
        .and_then(|h| h.config_map_name)
        .ok_or("the example tenant publishes no header ConfigMap")?;
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let config_map = eventually("the header ConfigMap", || async {
        config_maps.get_opt(&config_map_name).await.ok().flatten()
    })
    .await?;
    step(&format!(
        "ConfigMap {namespace}/{config_map_name}: the header ingress-nginx serves"
    ));
    for (key, value) in config_map.data.unwrap_or_default() {
        println!("    {key}: {value}");
    }

    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &namespace);
    for ingress in ingresses
        .list(&Default::default())
        .await
        .map_err(|e| e.to_string())?
        .items
    {
        let annotations = ingress.annotations();
        if let Some(sha) = annotations.get("qlikops.io/header-sha256") {
            step(&format!(
                "Ingress {namespace}/{} annotated, so ingress-nginx reloads",
                ingress.name_any()
            ));
            println!("    qlikops.io/header-sha256: {sha}");
        }
    }

    show_rotation(client, &namespace).await
}

/// The SecretRotation of the examples: its first credential, then a rotation on request.
async fn show_rotation(client: &Client, namespace: &str) -> Result<(), String> {
    let rotations: Api<SecretRotation> = Api::namespaced(client.clone(), namespace);
    let listed = rotations
        .list(&Default::default())
        .await
        .map_err(|e| e.to_string())?
        .items;
    // An API key shows the most: an id and an expiry.
    let Some(rotation) = listed
        .iter()
        .find(|r| r.spec.credential.api_key.is_some())
        .or(listed.first())
        .cloned()
    else {
        return Ok(());
    };
    let name = rotation.name_any();
    let first = eventually("the SecretRotation's first credential", || async {
        let r = rotations.get(&name).await.ok()?;
        (r.status.as_ref()?.revision >= 1
            && is_ready(r.status.as_ref().map(|s| s.conditions.as_slice())))
        .then_some(r)
    })
    .await?;
    let revision = first.status.as_ref().map_or(0, |s| s.revision);
    step(&format!(
        "SecretRotation {namespace}/{name}: credential revision {revision} in Secret {}",
        first.spec.secret.name
    ));
    print_rotation(&first);

    step("requesting a rotation now (annotation qlikops.io/rotate-requested-at)");
    let now = jiff::Timestamp::now().to_string();
    rotations
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(
                json!({ "metadata": { "annotations": { "qlikops.io/rotate-requested-at": now } } }),
            ),
        )
        .await
        .map_err(|e| format!("failed to request a rotation: {e}"))?;
    let rotated = eventually("the requested rotation", || async {
        let r = rotations.get(&name).await.ok()?;
        (r.status.as_ref()?.revision > revision).then_some(r)
    })
    .await?;
    step(&format!(
        "rotated: revision {}; the previous credential stays valid under <key>.previous until the grace period ends",
        rotated.status.as_ref().map_or(0, |s| s.revision)
    ));
    print_rotation(&rotated);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    if let Ok(secret) = secrets.get(&rotated.spec.secret.name).await {
        let keys: Vec<String> = secret.data.unwrap_or_default().into_keys().collect();
        println!(
            "    Secret {} keys (values never shown): {}",
            rotated.spec.secret.name,
            keys.join(", ")
        );
    }
    Ok(())
}

fn print_rotation(rotation: &SecretRotation) {
    let Some(status) = &rotation.status else {
        return;
    };
    println!("    phase: {:?}", status.phase);
    if let Some(current) = &status.current {
        println!(
            "    current: {} expires {}",
            current
                .id
                .as_deref()
                .or(current.hint.as_deref())
                .unwrap_or("-"),
            current
                .expires_at
                .as_ref()
                .map_or("never".to_owned(), |t| t.0.to_string()),
        );
    }
    if let Some(next) = &status.next_rotation_at {
        println!("    next rotation: {}", next.0);
    }
}

/// Deletes a throwaway namespace and waits for it to go, as it would on a real cluster (the
/// controller-manager's namespace controller empties and removes it).
async fn show_cleanup(client: &Client) -> Result<(), String> {
    step("deleting a namespace: it goes away with what is in it, as on a real cluster");
    let name = "demo-cleanup";
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace = serde_json::from_value(json!({ "metadata": { "name": name } }))
        .map_err(|e| e.to_string())?;
    namespaces
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Apply(&namespace),
        )
        .await
        .map_err(|e| format!("failed to create namespace {name}: {e}"))?;
    let config_map: ConfigMap =
        serde_json::from_value(json!({ "metadata": { "name": "settings" }, "data": { "a": "b" } }))
            .map_err(|e| e.to_string())?;
    Api::<ConfigMap>::namespaced(client.clone(), name)
        .patch(
            "settings",
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Apply(&config_map),
        )
        .await
        .map_err(|e| format!("failed to create ConfigMap {name}/settings: {e}"))?;
    let started = std::time::Instant::now();
    namespaces
        .delete(name, &Default::default())
        .await
        .map_err(|e| format!("failed to delete namespace {name}: {e}"))?;
    eventually(&format!("namespace {name} to be gone"), || async {
        namespaces.get_opt(name).await.ok()?.is_none().then_some(())
    })
    .await?;
    println!(
        "    namespace {name} and its ConfigMap gone after {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn is_ready(
    conditions: Option<&[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]>,
) -> bool {
    conditions
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

fn print_conditions(
    conditions: Option<&[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]>,
) {
    for c in conditions.unwrap_or_default() {
        println!("    {}={} {}: {}", c.type_, c.status, c.reason, c.message);
    }
}

fn step(what: &str) {
    println!("\n==> {what}");
}

async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = std::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = probe().await {
            return Ok(value);
        }
        if std::time::Instant::now() > until {
            return Err(format!(
                "timed out after {DEADLINE:?} waiting for {what}; see target/demo/operator.log"
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every YAML document under `dir`, in path order.
fn examples(dir: &Path) -> Result<Vec<Value>, String> {
    let mut paths = Vec::new();
    collect_yaml(dir, &mut paths)?;
    paths.sort();
    let mut objects = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("failed to read {}: {e}", path.display()))?;
        for document in serde_norway::Deserializer::from_str(&text) {
            let value =
                Value::deserialize(document).map_err(|e| format!("{}: {e}", path.display()))?;
            if value.is_object() {
                objects.push(value);
            }
        }
    }
    Ok(objects)
}

/// Examples the demo leaves out: the other edges' folders need the Gateway API's or
/// Traefik's CRDs, which the demo's control plane does not have, and repeat the QlikTenant
/// for their edge; external-secrets' needs its operator; the SecretPushes need targets in
/// the tenant (a data connection, an automation connection, an email configuration) and
/// their Secrets, which tests/operator_e2e.rs seeds.
const LEFT_OUT: [&str; 4] = [
    "gateway-api",
    "traefik",
    "external-secrets",
    "secret-push.yaml",
];

fn collect_yaml(dir: &Path, into: &mut Vec<PathBuf>) -> Result<(), String> {
    for entry in
        std::fs::read_dir(dir).map_err(|e| format!("failed to read {}: {e}", dir.display()))?
    {
        let path = entry.map_err(|e| e.to_string())?.path();
        let left_out = path
            .file_name()
            .is_some_and(|n| LEFT_OUT.iter().any(|left| n == *left));
        if left_out {
            continue;
        }
        if path.is_dir() {
            collect_yaml(&path, into)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            into.push(path);
        }
    }
    Ok(())
}

fn namespaces_of(objects: &[Value], kind: &str) -> Vec<String> {
    let mut names: Vec<String> = objects
        .iter()
        .filter(|o| o["kind"] == kind)
        .filter_map(|o| o["metadata"]["namespace"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names.dedup();
    names
}

async fn ensure_namespaces(client: &Client, objects: &[Value]) -> Result<(), String> {
    let mut names: Vec<&str> = objects
        .iter()
        .filter_map(|o| o["metadata"]["namespace"].as_str())
        .collect();
    names.sort();
    names.dedup();
    let api: Api<Namespace> = Api::all(client.clone());
    for name in names {
        let namespace: Namespace = serde_json::from_value(json!({ "metadata": { "name": name } }))
            .map_err(|e| e.to_string())?;
        api.patch(
            name,
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Apply(&namespace),
        )
        .await
        .map_err(|e| format!("failed to create namespace {name}: {e}"))?;
    }
    Ok(())
}

/// Server-side applies one manifest, as `kubectl apply --server-side` would.
async fn apply(client: &Client, object: &Value) -> Result<(), String> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, capabilities) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .map_err(|e| format!("unknown kind {api_version}/{kind}: {e}"))?;
    let api: Api<DynamicObject> =
        match (capabilities.scope, object["metadata"]["namespace"].as_str()) {
            (kube::discovery::Scope::Namespaced, Some(namespace)) => {
                Api::namespaced_with(client.clone(), namespace, &resource)
            }
            (kube::discovery::Scope::Namespaced, None) => {
                Api::default_namespaced_with(client.clone(), &resource)
            }
            (kube::discovery::Scope::Cluster, _) => Api::all_with(client.clone(), &resource),
        };
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .map_err(|e| format!("failed to apply {kind} {name}: {e}"))?;
    println!("    applied {kind} {name}");
    Ok(())
}
