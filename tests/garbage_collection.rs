//! What a deletion removes, on a control plane that collects garbage as a cluster does
//! (kube-controller-manager's garbage collector and namespace controller, started by the
//! harness) with the operator's controllers running:
//!
//! - a deleted namespace goes away with everything in it (never `Terminating` for ever);
//! - the header ConfigMap the operator created for a QlikTenant goes with the QlikTenant;
//! - the Secret the operator created for a SecretRotation goes with the SecretRotation;
//! - a user's ConfigMap that a QlikTenant names for its header stays, with the user's data,
//!   when the QlikTenant is deleted (the operator never makes it its own).
//!
//! Garbage collection is asynchronous: each test waits, with a deadline, for an object the
//! collector must delete, then checks what must remain.

mod rotation_rig;
mod support;

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams};
use kube::{Resource, ResourceExt};
use qlik_csp_operator::api::{QlikTenant, SecretRotation};
use qlik_csp_operator::controller::{secret_rotation, tenant};
use rotation_rig::*;
use serde_json::json;

/// Long enough for a controller-manager that started with the test binary to sync its
/// caches on a loaded two-core machine, then act.
const GC_DEADLINE: Duration = Duration::from_secs(120);

/// Operator controllers running for one test; stopped on drop.
struct Running(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// The tenant and secret-rotation controllers, watching the rig's namespace.
fn run_operator(rig: &Rig) -> Running {
    let shared = support::controller_shared(&rig.env, Duration::from_millis(100));
    Running(vec![
        tokio::spawn(tenant::run::run(shared.clone())),
        tokio::spawn(secret_rotation::run(shared)),
    ])
}

/// Polls `probe` until it returns `Some`; after `deadline`, fails with `what` and how the
/// controller-manager is doing.
async fn wait_for<T, F, Fut>(rig: &Rig, what: &str, deadline: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = Instant::now() + deadline;
    let mut poll = tokio::time::interval(Duration::from_millis(200));
    loop {
        poll.tick().await;
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < until,
            "timed out after {deadline:?} waiting for {what}\n{}",
            rig.env.control_plane.controller_manager_report()
        );
    }
}

/// Waits until the object `name` of `api` no longer exists.
async fn wait_gone<K>(rig: &Rig, api: &Api<K>, name: &str, what: &str)
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    wait_for(
        rig,
        &format!("{what} to be deleted"),
        GC_DEADLINE,
        || async {
            api.get_opt(name)
                .await
                .unwrap_or_else(|e| panic!("failed to read {name}: {e}"))
                .is_none()
                .then_some(())
        },
    )
    .await;
}

/// A QlikTenant `name` of the rig's tenant, publishing its header to ConfigMap `config_map`.
fn header_tenant(rig: &Rig, name: &str, config_map: &str) -> QlikTenant {
    let mut tenant = serde_json::to_value(rig.tenant()).unwrap();
    tenant["metadata"]["name"] = json!(name);
    tenant["spec"]["header"] = json!({ "configMapName": config_map });
    serde_json::from_value(tenant).unwrap()
}

fn config_map(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: meta(name),
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        ..ConfigMap::default()
    }
}

/// Whether `object` has an owner reference to `owner`.
fn owned_by<K: Resource, O: Resource>(object: &K, owner: &O) -> bool {
    let uid = owner.meta().uid.as_deref();
    object
        .owner_references()
        .iter()
        .any(|r| Some(r.uid.as_str()) == uid)
}

#[tokio::test]
async fn a_deleted_namespace_goes_away_with_everything_in_it() {
    let rig = Rig::start(|_| {}).await;
    // The rig's namespace holds a Secret, a QlikTenant (a custom resource, so the namespace
    // controller must discover and delete it) and, here, a ConfigMap.
    rig.create(&config_map("settings", &[("a", "b")])).await;
    let namespaces: Api<Namespace> = Api::all(rig.client());
    namespaces
        .delete(rig.ns(), &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&rig, &namespaces, rig.ns(), "the namespace").await;
    let tenants: Api<QlikTenant> = Api::all(rig.client());
    let left = tenants.list(&Default::default()).await.unwrap();
    assert!(
        left.iter()
            .all(|t| t.namespace().as_deref() != Some(rig.ns())),
        "a QlikTenant outlived its namespace"
    );
}

#[tokio::test]
async fn the_header_config_map_the_operator_created_goes_with_its_qlik_tenant() {
    let rig = Rig::start(|_| {}).await;
    let _operator = run_operator(&rig);
    let tenant = rig.create(&header_tenant(&rig, "web", "web-csp")).await;
    let config_maps = rig.api::<ConfigMap>();
    wait_for(
        &rig,
        "the operator to create the header ConfigMap",
        DEADLINE,
        || async {
            let map = config_maps.get_opt("web-csp").await.ok()??;
            owned_by(&map, &tenant).then_some(())
        },
    )
    .await;

    rig.api::<QlikTenant>()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&rig, &config_maps, "web-csp", "the header ConfigMap").await;
}

#[tokio::test]
async fn a_secret_the_operator_created_goes_with_its_secret_rotation() {
    let rig = Rig::start(|_| {}).await;
    let _operator = run_operator(&rig);
    let rotation = rig
        .create(&api_key_rotation("reports", "reports-key", Duration::ZERO))
        .await;
    rig.wait_settled("reports", 1).await;
    let secrets = rig.api::<Secret>();
    let secret = secrets.get("reports-key").await.unwrap();
    assert!(
        owned_by(&secret, &rotation),
        "the Secret the operator created is owned by its SecretRotation: {:?}",
        secret.owner_references()
    );

    rig.api::<SecretRotation>()
        .delete("reports", &DeleteParams::default())
        .await
        .unwrap();
    // The finalizer revokes the credential first; then the SecretRotation is gone and the
    // collector deletes the Secret.
    wait_gone(&rig, &secrets, "reports-key", "the rotated Secret").await;
    // The admin Secret, which no SecretRotation owns, stays.
    assert!(secrets.get_opt(ADMIN_SECRET).await.unwrap().is_some());
}

#[tokio::test]
async fn a_users_config_map_named_by_a_qlik_tenant_survives_the_tenant_with_its_data() {
    let rig = Rig::start(|_| {}).await;
    let _operator = run_operator(&rig);
    let config_maps = rig.api::<ConfigMap>();
    rig.create(&config_map("app", &[("foo", "bar")])).await;
    let tenant = rig.create(&header_tenant(&rig, "web", "app")).await;
    // A ConfigMap the QlikTenant does own (made so here, by the test): its deletion shows
    // that the collector has dealt with the QlikTenant's dependents.
    let mut control = config_map("web-control", &[]);
    control.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "qlikops.io/v1alpha1".to_owned(),
        kind: "QlikTenant".to_owned(),
        name: "web".to_owned(),
        uid: tenant.uid().unwrap(),
        ..OwnerReference::default()
    }]);
    rig.create(&control).await;

    // Whatever the operator decides about `app`, it has decided once the header condition
    // describes the current generation.
    let tenants = rig.api::<QlikTenant>();
    wait_for(
        &rig,
        "the QlikTenant's HeaderPublished condition",
        DEADLINE,
        || async {
            let tenant = tenants.get("web").await.ok()?;
            let status = tenant.status.as_ref()?;
            let current = status.observed_generation == tenant.metadata.generation;
            let decided = status
                .conditions
                .iter()
                .any(|c| c.type_ == "HeaderPublished");
            (current && decided).then_some(())
        },
    )
    .await;

    tenants
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(
        &rig,
        &config_maps,
        "web-control",
        "the QlikTenant's own ConfigMap",
    )
    .await;
    let app = config_maps.get_opt("app").await.unwrap();
    let app = app.unwrap_or_else(|| {
        panic!("the user's ConfigMap `app` was garbage-collected with the QlikTenant")
    });
    assert!(
        !owned_by(&app, &tenant),
        "the user's ConfigMap `app` is owned by the deleted QlikTenant, so the collector \
         deletes it: {:?}",
        app.owner_references()
    );
    assert_eq!(
        app.data.unwrap_or_default().get("foo").map(String::as_str),
        Some("bar"),
        "the user's data in `app`"
    );
}
