//! End to end: the `qlik-csp-operator run` binary against a real apiserver and the tenant
//! emulator, with the manifests of `examples/` applied as a user would: the tenant becomes
//! Ready, every CspEntry Ready, the header lands in the ConfigMap exactly as
//! `qlik-csp-operator render` previews it, the Ingress serving it is annotated, and every
//! SecretRotation becomes Ready with its credential in its Secret.
//!
//! The operator runs as in a cluster: with leader election, its health and metrics endpoint
//! on a loopback port, and the emulator's host allowed. The test scrapes `/readyz` and
//! `/metrics`, then sends SIGTERM: the process exits 0 and leaves the Lease free.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::ApiResource;
use qlik_csp_operator::api::{CspEntry, QlikTenant, SecretRotation};
use qlik_csp_operator::controller::tenant::publish::{HEADER_SHA256, header_sha256};
use qlik_csp_operator::emulator::{Emulator, EmulatorConfig};
use serde::Deserialize;
use serde_json::{Value, json};
use support::{TestEnv, eventually};

const KEY: &str = "e2e-admin-key-0123456789abcdef";
const DEADLINE: Duration = Duration::from_secs(60);

/// Kills the operator when the test ends, passes or panics.
struct Operator(Child);

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn examples() -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut objects = Vec::new();
    for file in [
        "qlik-tenant.yaml",
        "csp-entries.yaml",
        "secret-rotation.yaml",
    ] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        for document in serde_norway::Deserializer::from_str(&text) {
            objects.push(Value::deserialize(document).unwrap());
        }
    }
    objects
}

fn is_ready(status: Option<&Value>) -> bool {
    status
        .and_then(|s| s["conditions"].as_array())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

#[tokio::test]
async fn the_examples_become_ready_and_their_header_reaches_the_config_map_and_ingress() {
    let env = TestEnv::new().await;
    let ns = env.namespace.clone();
    let emulator = Emulator::start(EmulatorConfig {
        admin_api_keys: vec![KEY.into()],
        // The OAuth client of examples/secret-rotation.yaml.
        oauth_clients: vec![(
            "6c1e9a0f27b34d58a1f0e2d4c3b5a697".into(),
            "e2e-seeded-client-secret-0123456789".into(),
        )],
        ..Default::default()
    })
    .await
    .unwrap();

    let secret: Secret = serde_json::from_value(
        json!({ "metadata": { "name": "qlik-admin" }, "stringData": { "api-key": KEY } }),
    )
    .unwrap();
    Api::<Secret>::namespaced(env.client.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let ingress: Ingress = serde_json::from_value(json!({
        "metadata": {
            "name": "reports",
            "annotations": { "nginx.ingress.kubernetes.io/custom-headers": format!("{ns}/qlik-csp-header") },
        },
        "spec": { "defaultBackend": { "service": { "name": "reports", "port": { "number": 80 } } } },
    }))
    .unwrap();
    Api::<Ingress>::namespaced(env.client.clone(), &ns)
        .create(&PostParams::default(), &ingress)
        .await
        .unwrap();

    let mut entry_names = Vec::new();
    let mut rotation_names = Vec::new();
    for mut object in examples() {
        object["metadata"]["namespace"] = json!(ns);
        let resource = match object["kind"].as_str() {
            Some("QlikTenant") => {
                // The example points at a real tenant; point it at the emulator instead.
                object["spec"]["url"] = json!(emulator.base_url());
                object["spec"]["caBundle"] = json!(emulator.ca_pem());
                ApiResource::erase::<QlikTenant>(&())
            }
            Some("CspEntry") => {
                entry_names.push(object["metadata"]["name"].as_str().unwrap().to_owned());
                ApiResource::erase::<CspEntry>(&())
            }
            Some("SecretRotation") => {
                rotation_names.push(object["metadata"]["name"].as_str().unwrap().to_owned());
                ApiResource::erase::<SecretRotation>(&())
            }
            other => panic!("unexpected kind {other:?} in examples/"),
        };
        let api: Api<DynamicObject> = Api::namespaced_with(env.client.clone(), &ns, &resource);
        let object: DynamicObject = serde_json::from_value(object).unwrap();
        api.create(&PostParams::default(), &object).await.unwrap();
    }

    let metrics_address = free_loopback_address();
    let mut operator = Operator(
        Command::new(env!("CARGO_BIN_EXE_qlik-csp-operator"))
            .args(["run", "--namespace", &ns, "--log-format", "text"])
            .args(["--metrics-address", &metrics_address])
            .args(["--allowed-tenant-hosts", "*.qlikcloud.com,127.0.0.1"])
            .args(["--leader-election", "--leader-election-namespace", &ns])
            .args(["--leader-election-lease-seconds", "5"])
            .env("KUBECONFIG", &env.control_plane.kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );

    let tenants: Api<QlikTenant> = Api::namespaced(env.client.clone(), &ns);
    eventually("the QlikTenant to be Ready", DEADLINE, || async {
        let tenant = tenants.get("acme").await.ok()?;
        is_ready(serde_json::to_value(&tenant).ok()?.get("status")).then_some(())
    })
    .await;
    let entries: Api<CspEntry> = Api::namespaced(env.client.clone(), &ns);
    for name in &entry_names {
        eventually(
            &format!("CspEntry {name} to be Ready"),
            DEADLINE,
            || async {
                let entry = entries.get(name).await.ok()?;
                is_ready(serde_json::to_value(&entry).ok()?.get("status")).then_some(())
            },
        )
        .await;
    }

    let rotations: Api<SecretRotation> = Api::namespaced(env.client.clone(), &ns);
    for name in &rotation_names {
        eventually(
            &format!("SecretRotation {name} to be Ready"),
            DEADLINE,
            || async {
                let rotation = rotations.get(name).await.ok()?;
                is_ready(serde_json::to_value(&rotation).ok()?.get("status")).then_some(())
            },
        )
        .await;
        let secret = &rotations.get(name).await.unwrap().spec.secret;
        let stored = Api::<Secret>::namespaced(env.client.clone(), &ns)
            .get(&secret.name)
            .await
            .unwrap();
        assert!(
            stored.data.unwrap().contains_key(&secret.key),
            "{name}: no {}",
            secret.key
        );
    }

    let examples_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let preview = qlik_csp_operator::render::render_paths(&[examples_dir]).unwrap();
    let expected = preview[0].header.clone();
    let config_maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    eventually("the header in the ConfigMap", DEADLINE, || async {
        let map = config_maps.get_opt("qlik-csp-header").await.ok()??;
        let value = map.data?.get("Content-Security-Policy")?.clone();
        (value == expected).then_some(())
    })
    .await;

    let ingresses: Api<Ingress> = Api::namespaced(env.client.clone(), &ns);
    let sha = header_sha256(&expected);
    eventually(
        "the Ingress annotated with the header's sha",
        DEADLINE,
        || async {
            let ingress = ingresses.get("reports").await.ok()?;
            let annotations = ingress.metadata.annotations?;
            (annotations.get(HEADER_SHA256) == Some(&sha)).then_some(())
        },
    )
    .await;

    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &ns);
    let holder = || async {
        let lease = leases.get_opt(LEASE).await.ok()??;
        lease.spec?.holder_identity.filter(|h| !h.is_empty())
    };
    assert!(holder().await.is_some(), "the leader holds the Lease");

    let http = reqwest::Client::new();
    let base = format!("http://{metrics_address}");
    let readyz = eventually("/readyz to answer 200", DEADLINE, || async {
        let response = http.get(format!("{base}/readyz")).send().await.ok()?;
        let ok = response.status() == reqwest::StatusCode::OK;
        ok.then_some(response.text().await.ok()?)
    })
    .await;
    assert_eq!(
        readyz,
        "tenant: synced\ncsp-entry: synced\nsecret-rotation: synced\n"
    );
    let healthz = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(healthz.status(), reqwest::StatusCode::OK);

    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), reqwest::StatusCode::OK);
    let metrics = metrics.text().await.unwrap();
    for series in [
        r#"qlikops_reconcile_total{controller="tenant",result="success"}"#,
        r#"qlikops_reconcile_total{controller="csp-entry",result="success"}"#,
        r#"qlikops_reconcile_duration_seconds_count{controller="csp-entry"}"#,
        r#"qlikops_tenant_requests_total{operation="tenants.me",status="302"}"#,
        r#"qlikops_tenant_requests_total{operation="csp-origins.create",status="201"}"#,
        &format!(r#"qlikops_header_bytes{{namespace="{ns}",tenant="acme"}}"#),
        r#"qlikops_reconcile_total{controller="secret-rotation",result="success"}"#,
        &format!(r#"qlikops_credential_expiry_seconds{{namespace="{ns}",name="reports-api-key"}}"#),
    ] {
        let value = sample(&metrics, series).unwrap_or_else(|| panic!("{series} in\n{metrics}"));
        assert!(value > 0.0, "{series} is {value}");
    }
    assert_eq!(
        sample(
            &metrics,
            &format!(r#"qlikops_header_bytes{{namespace="{ns}",tenant="acme"}}"#)
        ),
        Some(expected.len() as f64)
    );
    // The example's key asks for 24h, the tenant's cap.
    let expiry = sample(
        &metrics,
        &format!(r#"qlikops_credential_expiry_seconds{{namespace="{ns}",name="reports-api-key"}}"#),
    );
    assert!(expiry.is_some_and(|s| s <= 86_400.0), "{expiry:?}");
    for secret in [KEY, "127.0.0.1", "https://"] {
        assert!(!metrics.contains(secret), "/metrics contains {secret:?}");
    }

    // SIGTERM: the operator finishes, exits 0 and releases the Lease.
    let pid = i32::try_from(operator.0.id()).unwrap();
    // SAFETY: kill(2) on our own child's pid has no memory effects.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let child = std::sync::Mutex::new(&mut operator.0);
    let status = eventually("the operator to exit after SIGTERM", DEADLINE, || {
        let exited = child.lock().unwrap().try_wait().unwrap();
        async move { exited }
    })
    .await;
    assert!(status.success(), "the operator exited with {status}");
    assert_eq!(holder().await, None, "the Lease was released");
}

/// The default `--leader-election-lease-name`.
const LEASE: &str = "qlik-csp-operator";

/// A loopback address with a port free right now (the operator binds it a moment later).
fn free_loopback_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// The value of the sample whose name and labels are exactly `series`.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}
