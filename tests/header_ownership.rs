//! The `tenant` controller writes only ConfigMaps that are its own, against a real
//! kube-apiserver and the tenant emulator: a user's ConfigMap is left alone unless its owner
//! opts in (`qlikops.io/allow-header-from`), an opted-in one gets the header's key and
//! nothing else (never an owner reference, so deleting the tenant cannot garbage-collect
//! it), a key another writer holds is reported, not taken, and two tenants naming one
//! ConfigMap settle (the older keeps it) and then write nothing at all.
//!
//! Each test runs its own controller (drift interval 1 s, watching only the test's
//! namespace) against its own emulator. Waits are on conditions with deadlines.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use qlik_csp_operator::api::QlikTenant;
use qlik_csp_operator::api::ownership::{ALLOW_HEADER_FROM, MANAGED_BY_LABEL};
use qlik_csp_operator::controller::tenant::publish::{
    HEADER_SHA256, NGINX_CUSTOM_HEADERS, header_sha256,
};
use serde_json::json;
use support::tenant_rig::{Controller, DEADLINE, TenantRig, condition, from_json};

const HEADER_KEY: &str = "Content-Security-Policy";
/// How long two settled rivals are watched for a write.
const QUIET_WINDOW: Duration = Duration::from_secs(30);

/// The tenant controller running, and the admin Secret.
async fn start() -> TenantRig {
    let rig = TenantRig::builder().run(Controller::Tenant).start().await;
    rig.create_admin_secret().await;
    rig
}

/// What this suite asks of the rig.
impl TenantRig {
    /// A tenant publishing a local header made of `img-src <origin>` only to `config_map`.
    fn tenant(&self, name: &str, config_map: &str, origin: &str) -> QlikTenant {
        self.qlik_tenant(
            name,
            json!({
                "header": {
                    "configMapName": config_map,
                    "source": "Local",
                    "baseDirectives": { "img-src": [origin] },
                },
            }),
        )
    }

    async fn config_map(&self, name: &str) -> ConfigMap {
        self.api::<ConfigMap>()
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("failed to read ConfigMap {name}: {e}"))
    }

    /// Waits until tenant `name` has a `HeaderPublished` condition for its current
    /// generation (the controller has decided), and returns the tenant.
    async fn header_decided(&self, name: &str) -> QlikTenant {
        let api = self.api::<QlikTenant>();
        support::eventually(
            &format!("QlikTenant {name} to decide about its header"),
            DEADLINE,
            || {
                let api = api.clone();
                async move {
                    let tenant = api.get_opt(name).await.ok().flatten()?;
                    let decided = condition(&tenant, "HeaderPublished")?.observed_generation
                        == tenant.metadata.generation;
                    decided.then_some(tenant)
                }
            },
        )
        .await
    }

    /// Waits until tenant `name`'s `HeaderPublished` condition has `reason`.
    async fn header_reason(&self, name: &str, reason: &str) -> QlikTenant {
        let api = self.api::<QlikTenant>();
        support::eventually(
            &format!("QlikTenant {name} HeaderPublished reason {reason}"),
            DEADLINE,
            || {
                let api = api.clone();
                async move {
                    let tenant = api.get_opt(name).await.ok().flatten()?;
                    (condition(&tenant, "HeaderPublished")?.reason == reason).then_some(tenant)
                }
            },
        )
        .await
    }

    async fn delete_tenant(&self, name: &str) {
        let api = self.api::<QlikTenant>();
        api.delete(name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("failed to delete QlikTenant {name}: {e}"));
        support::eventually(&format!("QlikTenant {name} gone"), DEADLINE, || {
            let api = api.clone();
            async move { api.get_opt(name).await.ok()?.is_none().then_some(()) }
        })
        .await;
    }
}

fn reason_of(tenant: &QlikTenant, type_: &str) -> (String, String) {
    condition(tenant, type_).map_or_else(Default::default, |c| {
        (format!("{} {}", c.status, c.reason), c.message.clone())
    })
}

/// A user's ConfigMap `{foo: bar}`, opted in for `allow` if given.
fn users_config_map(name: &str, allow: Option<&str>) -> ConfigMap {
    let mut config_map: ConfigMap = from_json(json!({
        "metadata": { "name": name },
        "data": { "foo": "bar" },
    }));
    if let Some(tenant) = allow {
        config_map.metadata.annotations = Some(BTreeMap::from([(
            ALLOW_HEADER_FROM.to_owned(),
            tenant.to_owned(),
        )]));
    }
    config_map
}

fn data(config_map: &ConfigMap) -> BTreeMap<String, String> {
    config_map.data.clone().unwrap_or_default()
}

fn header_of(origin: &str) -> String {
    format!("img-src {origin}")
}

#[tokio::test]
async fn a_users_config_map_is_not_taken_over_and_survives_the_tenant() {
    let h = start().await;
    let created = h.create(&users_config_map("app", None)).await;
    h.create(&h.tenant("acme", "app", "https://a.example.com"))
        .await;

    let tenant = h.header_decided("acme").await;
    let (reason, message) = reason_of(&tenant, "HeaderPublished");
    let app = h.config_map("app").await;
    assert_eq!(
        reason,
        "False ConfigMapNotOwned",
        "{message}; the ConfigMap's owners now: {:?}",
        app.owner_references()
    );
    assert!(
        message.contains(&format!("{ALLOW_HEADER_FROM}: acme")),
        "{message}"
    );
    assert_eq!(reason_of(&tenant, "Stalled").0, "True ConfigMapNotOwned");
    assert_eq!(
        app.resource_version(),
        created.resource_version(),
        "the ConfigMap was written: {app:?}"
    );
    assert_eq!(data(&app), BTreeMap::from([("foo".into(), "bar".into())]));
    assert!(app.owner_references().is_empty());

    h.delete_tenant("acme").await;
    let app = h.config_map("app").await;
    assert_eq!(data(&app), BTreeMap::from([("foo".into(), "bar".into())]));
    assert!(app.owner_references().is_empty());
    assert_eq!(app.resource_version(), created.resource_version());
}

#[tokio::test]
async fn an_opted_in_config_map_gets_the_header_but_never_an_owner_reference() {
    let h = start().await;
    // Opted in for another tenant first: still not acme's.
    h.create(&users_config_map("app", Some("globex"))).await;
    h.create(&h.tenant("acme", "app", "https://a.example.com"))
        .await;
    let tenant = h.header_decided("acme").await;
    let (reason, message) = reason_of(&tenant, "HeaderPublished");
    assert_eq!(reason, "False ConfigMapNotOwned", "{message}");
    assert!(message.contains("globex"), "{message}");

    let opt_in = json!({ "metadata": { "annotations": { ALLOW_HEADER_FROM: "acme" } } });
    h.api::<ConfigMap>()
        .patch("app", &PatchParams::default(), &Patch::Merge(&opt_in))
        .await
        .unwrap_or_else(|e| panic!("failed to opt in: {e}"));
    h.header_reason("acme", "Published").await;

    let expected = header_of("https://a.example.com");
    let app = h.config_map("app").await;
    assert_eq!(
        data(&app),
        BTreeMap::from([
            ("foo".into(), "bar".into()),
            (HEADER_KEY.into(), expected.clone())
        ])
    );
    assert!(
        app.owner_references().is_empty(),
        "{:?}",
        app.owner_references()
    );
    assert!(!app.labels().contains_key(MANAGED_BY_LABEL), "{app:?}");
    assert_eq!(
        app.annotations().get(HEADER_SHA256),
        Some(&header_sha256(&expected))
    );
    assert_eq!(
        app.annotations().get(ALLOW_HEADER_FROM).map(String::as_str),
        Some("acme")
    );

    h.delete_tenant("acme").await;
    let app = h.config_map("app").await;
    assert_eq!(data(&app).get("foo").map(String::as_str), Some("bar"));
    assert!(app.owner_references().is_empty());
}

#[tokio::test]
async fn a_key_another_writer_holds_in_an_opted_in_config_map_is_reported_not_taken() {
    let h = start().await;
    let mut config_map = users_config_map("app", Some("acme"));
    config_map
        .data
        .get_or_insert_default()
        .insert(HEADER_KEY.to_owned(), "default-src 'none'".to_owned());
    let created = h.create(&config_map).await;
    h.create(&h.tenant("acme", "app", "https://a.example.com"))
        .await;

    let tenant = h.header_decided("acme").await;
    let (reason, message) = reason_of(&tenant, "HeaderPublished");
    assert_eq!(reason, "False ConfigMapKeyConflict", "{message}");
    assert!(message.contains(HEADER_KEY), "{message}");
    let app = h.config_map("app").await;
    assert_eq!(app.resource_version(), created.resource_version());

    // The user gives the key up: the header is written at once.
    let remove = json!({ "data": { HEADER_KEY: null } });
    h.api::<ConfigMap>()
        .patch("app", &PatchParams::default(), &Patch::Merge(&remove))
        .await
        .unwrap_or_else(|e| panic!("failed to remove the key: {e}"));
    h.header_reason("acme", "Published").await;
    let app = h.config_map("app").await;
    assert_eq!(
        data(&app).get(HEADER_KEY),
        Some(&header_of("https://a.example.com"))
    );
    assert!(app.owner_references().is_empty());
}

#[tokio::test]
async fn a_config_map_the_operator_created_carries_its_label_and_its_tenant_as_owner() {
    let h = start().await;
    let tenant = h
        .create(&h.tenant("acme", "acme-csp", "https://a.example.com"))
        .await;
    h.header_reason("acme", "Published").await;
    let created = h.config_map("acme-csp").await;
    assert_eq!(
        created.labels().get(MANAGED_BY_LABEL).map(String::as_str),
        Some("qlik-csp-operator")
    );
    let owners = created.owner_references();
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(Some(&owners[0].uid), tenant.meta().uid.as_ref());
    assert_eq!(owners[0].controller, Some(true));
}

#[tokio::test]
async fn two_tenants_naming_one_config_map_settle_and_then_write_nothing() {
    let h = start().await;
    let ns = h.env.namespace.clone();
    let ingress: Ingress = from_json(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "web",
            "annotations": { NGINX_CUSTOM_HEADERS: format!("{ns}/shared") },
        },
        "spec": { "defaultBackend": { "service": { "name": "web", "port": { "number": 80 } } } },
    }));
    h.create(&ingress).await;
    // Back to back, as `kubectl apply -f dir/` would, without waiting for either to be
    // reconciled. (One after the other, so that the controller has seen the older
    // whenever it reconciles the younger: a tenant it has not seen cannot claim anything.)
    let alpha = h
        .create(&h.tenant("alpha", "shared", "https://alpha.example.com"))
        .await;
    let beta = h
        .create(&h.tenant("beta", "shared", "https://beta.example.com"))
        .await;
    let precedence = |t: &QlikTenant| {
        (
            t.meta().creation_timestamp.clone().map(|c| c.0),
            t.name_any(),
        )
    };
    assert!(precedence(&alpha) < precedence(&beta));
    let (older, younger) = ("alpha".to_owned(), "beta".to_owned());
    let expected = header_of(&format!("https://{older}.example.com"));

    // Settled: the older publishes, the younger reports the conflict, the edge serves the
    // older's header.
    let api = h.api::<QlikTenant>();
    let (config_maps, ingresses) = (h.api::<ConfigMap>(), h.api::<Ingress>());
    // Polled by hand to count the writes seen while settling, for the failure message.
    let mut versions_seen = std::collections::BTreeSet::new();
    let until = Instant::now() + DEADLINE;
    let mut poll = tokio::time::interval(Duration::from_millis(100));
    let settled = loop {
        poll.tick().await;
        let first = api.get(&older).await.unwrap();
        let second = api.get(&younger).await.unwrap();
        let cm = config_maps.get_opt("shared").await.unwrap();
        let web = ingresses.get("web").await.unwrap();
        versions_seen.insert(("ConfigMap", cm.as_ref().and_then(|c| c.resource_version())));
        versions_seen.insert(("Ingress", web.resource_version()));
        let states = (
            reason_of(&first, "HeaderPublished").0,
            reason_of(&second, "HeaderPublished").0,
        );
        if let Some(cm) = cm
            && states == ("True Published".into(), "False ConfigMapConflict".into())
            && data(&cm).get(HEADER_KEY) == Some(&expected)
            && web.annotations().get(HEADER_SHA256) == Some(&header_sha256(&expected))
        {
            break (first, second, cm, web);
        }
        assert!(
            Instant::now() < until,
            "not settled after {DEADLINE:?}: {older} and {younger} report {states:?}; \
             ConfigMap and Ingress versions seen: {}",
            versions_seen.len()
        );
    };
    let (first, second, cm, web) = settled;
    let message = reason_of(&second, "HeaderPublished").1;
    assert!(message.contains(&older), "{message}");
    let owners = cm.owner_references();
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(owners[0].name, older);

    // Then nothing is written: not the ConfigMap, not the Ingress (each write would reload
    // ingress-nginx), not either status.
    let versions = |cm: &ConfigMap, web: &Ingress, a: &QlikTenant, b: &QlikTenant| {
        [
            cm.resource_version(),
            web.resource_version(),
            a.resource_version(),
            b.resource_version(),
        ]
    };
    let settled_versions = versions(&cm, &web, &first, &second);
    let until = Instant::now() + QUIET_WINDOW;
    let mut looks = 0;
    let mut every = tokio::time::interval(Duration::from_millis(250));
    while Instant::now() < until {
        every.tick().await;
        let now = versions(
            &config_maps.get("shared").await.unwrap(),
            &ingresses.get("web").await.unwrap(),
            &api.get(&older).await.unwrap(),
            &api.get(&younger).await.unwrap(),
        );
        assert_eq!(
            now, settled_versions,
            "written after settling (ConfigMap, Ingress, {older}, {younger})"
        );
        looks += 1;
    }
    assert!(looks > 10, "observed the quiet window only {looks} times");
}
