//! The Argo CD health checks in `docs/argocd/argocd-cm-health.yaml`, run in a real Lua
//! interpreter (mlua, Lua 5.4; Argo CD embeds gopher-lua, Lua 5.1: the scripts use only what
//! both have) against objects the controllers wrote on a real apiserver: a Ready tenant and
//! CspEntry are Healthy, a DuplicateOrigin CspEntry and a tenant whose Secret is missing are
//! Degraded, a CspEntry waiting for its tenant is Progressing, and a CspEntry and a
//! SecretRotation whose QlikTenant does not exist are both Degraded. The kstatus rules that the
//! controllers do not produce on demand (an unobserved generation, Stalled, Reconciling,
//! Rotating) are checked on edited copies of those real objects.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use mlua::serde::SerializeOptions;
use mlua::{Lua, LuaSerdeExt, Table};
use qlik_csp_operator::api::{CspEntry, QlikTenant, SecretRotation};
use qlik_csp_operator::controller::{csp_entry, secret_rotation, tenant};
use qlik_csp_operator::emulator::{Emulator, EmulatorConfig};
use serde_json::{Value, json};
use support::{TestEnv, eventually};

const KEY: &str = "argocd-health-admin-key-0123456789";
const DEADLINE: Duration = Duration::from_secs(30);
const KINDS: [&str; 3] = ["QlikTenant", "CspEntry", "SecretRotation"];

/// The health script of each kind, from the documented argocd-cm snippet.
fn scripts() -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/argocd/argocd-cm-health.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()));
    let config_map: Value = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let mut scripts = BTreeMap::new();
    for kind in KINDS {
        let key = format!("resource.customizations.health.qlikops.io_{kind}");
        let script = config_map["data"][&key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} missing from {}", path.display()));
        scripts.insert(kind.to_owned(), script.to_owned());
    }
    scripts
}

/// Runs `script` as Argo CD does: the object as global `obj`, the returned table's
/// `status` and `message`.
fn health(script: &str, object: &Value) -> (String, String) {
    let lua = Lua::new();
    let options = SerializeOptions::new()
        .serialize_none_to_null(false)
        .serialize_unit_to_null(false);
    let obj = lua
        .to_value_with(object, options)
        .unwrap_or_else(|e| panic!("{e}"));
    lua.globals()
        .set("obj", obj)
        .unwrap_or_else(|e| panic!("{e}"));
    let hs: Table = lua
        .load(script)
        .eval()
        .unwrap_or_else(|e| panic!("the health script failed: {e}"));
    let status: String = hs.get("status").unwrap_or_else(|e| panic!("{e}"));
    let message: Option<String> = hs.get("message").unwrap_or_else(|e| panic!("{e}"));
    (status, message.unwrap_or_default())
}

fn condition(object: &Value, type_: &str) -> Option<Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .cloned()
}

fn ready_reason(object: &Value) -> Option<String> {
    let ready = condition(object, "Ready")?;
    if object["status"]["observedGeneration"] != object["metadata"]["generation"] {
        return None;
    }
    Some(format!(
        "{}/{}",
        ready["status"].as_str()?,
        ready["reason"].as_str()?
    ))
}

#[test]
fn the_three_kinds_share_one_script() {
    let scripts = scripts();
    let first = &scripts["QlikTenant"];
    assert!(scripts.values().all(|s| s == first));
}

#[tokio::test]
async fn health_follows_the_conditions_the_controllers_write() {
    let env = TestEnv::new().await;
    let ns = env.namespace.clone();
    let emulator = Emulator::start(EmulatorConfig {
        admin_api_keys: vec![KEY.into()],
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("failed to start the emulator: {e}"));
    let secret: Secret = serde_json::from_value(
        json!({ "metadata": { "name": "qlik-admin" }, "stringData": { "api-key": KEY } }),
    )
    .unwrap();
    Api::<Secret>::namespaced(env.client.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let tenants: Api<QlikTenant> = Api::namespaced(env.client.clone(), &ns);
    for (name, secret) in [("acme", "qlik-admin"), ("broken", "no-such-secret")] {
        let tenant: QlikTenant = serde_json::from_value(json!({
            "apiVersion": "qlikops.io/v1alpha1", "kind": "QlikTenant",
            "metadata": { "name": name },
            "spec": {
                "url": emulator.base_url(),
                "caBundle": emulator.ca_pem(),
                "credentials": { "apiKey": { "secretRef": { "name": secret, "key": "api-key" } } },
            },
        }))
        .unwrap();
        tenants
            .create(&PostParams::default(), &tenant)
            .await
            .unwrap();
    }
    let entries: Api<CspEntry> = Api::namespaced(env.client.clone(), &ns);
    // `first` and `second` claim one origin: the younger one reports DuplicateOrigin.
    for (name, tenant, origin) in [
        ("first", "acme", "https://cdn.example.com"),
        ("second", "acme", "https://cdn.example.com"),
        ("waiting", "broken", "https://other.example.com"),
        ("lost", "absent", "https://lost.example.com"),
    ] {
        let entry: CspEntry = serde_json::from_value(json!({
            "apiVersion": "qlikops.io/v1alpha1", "kind": "CspEntry",
            "metadata": { "name": name },
            "spec": { "tenantRef": { "name": tenant }, "origin": origin, "directives": ["img-src"] },
        }))
        .unwrap();
        entries
            .create(&PostParams::default(), &entry)
            .await
            .unwrap();
        if name == "first" {
            // Creation timestamps have a one-second resolution; make `first` the older.
            eventually("a new second on the apiserver clock", DEADLINE, || async {
                let now = jiff::Timestamp::now();
                let created = entries
                    .get("first")
                    .await
                    .ok()?
                    .metadata
                    .creation_timestamp?;
                (now.as_second() > created.0.as_second()).then_some(())
            })
            .await;
        }
    }

    // A SecretRotation naming the same missing tenant as the CspEntry `lost`.
    let rotations: Api<SecretRotation> = Api::namespaced(env.client.clone(), &ns);
    let rotation: SecretRotation = serde_json::from_value(json!({
        "apiVersion": "qlikops.io/v1alpha1", "kind": "SecretRotation",
        "metadata": { "name": "lost" },
        "spec": {
            "tenantRef": { "name": "absent" },
            "credential": { "apiKey": {} },
            "secret": { "name": "lost-qlik", "key": "token" },
        },
    }))
    .unwrap();
    rotations
        .create(&PostParams::default(), &rotation)
        .await
        .unwrap();

    let shared = support::controller_shared(&env, Duration::from_millis(50));
    tokio::spawn(tenant::run::run(shared.clone()));
    tokio::spawn(secret_rotation::run(shared.clone()));
    tokio::spawn(csp_entry::run(shared));

    let scripts = scripts();
    let settled = |kind: &'static str, name: &'static str, expected: &'static str| {
        let (tenants, entries, rotations) = (tenants.clone(), entries.clone(), rotations.clone());
        async move {
            eventually(
                &format!("{kind} {name} to report {expected}"),
                DEADLINE,
                || async {
                    let object = match kind {
                        "QlikTenant" => serde_json::to_value(tenants.get(name).await.ok()?),
                        "SecretRotation" => serde_json::to_value(rotations.get(name).await.ok()?),
                        _ => serde_json::to_value(entries.get(name).await.ok()?),
                    }
                    .ok()?;
                    (ready_reason(&object).as_deref() == Some(expected)).then_some(object)
                },
            )
            .await
        }
    };

    let acme = settled("QlikTenant", "acme", "True/Connected").await;
    assert_eq!(health(&scripts["QlikTenant"], &acme).0, "Healthy");

    let broken = settled("QlikTenant", "broken", "False/SecretNotFound").await;
    let (status, message) = health(&scripts["QlikTenant"], &broken);
    assert_eq!(status, "Degraded");
    assert!(
        message.starts_with("SecretNotFound: ") && message.contains("no-such-secret"),
        "{message}"
    );

    let first = settled("CspEntry", "first", "True/Created").await;
    let (status, message) = health(&scripts["CspEntry"], &first);
    assert_eq!(
        (status.as_str(), message.starts_with("Created")),
        ("Healthy", true)
    );

    let second = settled("CspEntry", "second", "False/DuplicateOrigin").await;
    let (status, message) = health(&scripts["CspEntry"], &second);
    assert_eq!(status, "Degraded");
    assert!(message.starts_with("DuplicateOrigin: "), "{message}");

    let waiting = settled("CspEntry", "waiting", "False/TenantNotReady").await;
    let (status, message) = health(&scripts["CspEntry"], &waiting);
    assert_eq!(status, "Progressing");
    assert!(message.starts_with("TenantNotReady"), "{message}");

    // A missing QlikTenant needs a person whatever the kind: both Degraded, naming it.
    let absent = format!("{ns}/absent");
    for kind in ["CspEntry", "SecretRotation"] {
        let lost = settled(kind, "lost", "False/TenantNotFound").await;
        let (status, message) = health(&scripts[kind], &lost);
        assert_eq!(status, "Degraded", "{kind}: {message}");
        assert!(
            message.starts_with("TenantNotFound: ") && message.contains(&absent),
            "{kind}: {message}"
        );
    }

    // kstatus rules, on edited copies of the real objects.
    let script = &scripts["CspEntry"];
    let mut edited = first.clone();
    edited["metadata"]["generation"] = json!(first["metadata"]["generation"].as_i64().unwrap() + 1);
    let (status, message) = health(script, &edited);
    assert_eq!(status, "Progressing");
    assert!(message.contains("observe generation"), "{message}");

    let mut no_status = first.clone();
    no_status.as_object_mut().unwrap().remove("status");
    assert_eq!(health(script, &no_status).0, "Progressing");

    for (type_, expected) in [
        ("Stalled", "Degraded"),
        ("Reconciling", "Progressing"),
        ("Rotating", "Progressing"),
    ] {
        let mut edited = first.clone();
        edited["status"]["conditions"]
            .as_array_mut()
            .unwrap()
            .push(json!({
                "type": type_, "status": "True", "reason": "Testing", "message": "edited copy",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }));
        let (status, message) = health(&scripts["SecretRotation"], &edited);
        assert_eq!(
            (status.as_str(), message.as_str()),
            (expected, "Testing: edited copy")
        );
        // The same condition at False changes nothing.
        let last = edited["status"]["conditions"]
            .as_array_mut()
            .unwrap()
            .last_mut()
            .unwrap();
        last["status"] = json!("False");
        assert_eq!(health(script, &edited).0, "Healthy", "{type_}=False");
    }
}
