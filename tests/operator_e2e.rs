//! End to end: the `qlik-csp-operator run` binary against a real apiserver and the tenant
//! emulator, with the manifests of `examples/` applied as a user would: the tenant becomes
//! Ready, every CspEntry Ready, the header lands in the ConfigMap exactly as
//! `qlik-csp-operator render` previews it, the Ingress serving it is annotated, and every
//! SecretRotation becomes Ready with its credential in its Secret.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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

    let _operator = Operator(
        Command::new(env!("CARGO_BIN_EXE_qlik-csp-operator"))
            .args(["run", "--namespace", &ns, "--log-format", "text"])
            .env("KUBECONFIG", &env.control_plane.kubeconfig)
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
}
