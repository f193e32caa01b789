//! The `tenant` controller against a real kube-apiserver and the tenant emulator: the
//! connection check (`Ready` and its reasons), header publishing from both sources, no
//! write when nothing changed, invalid headers never published, Ingresses nudged, and
//! `observedGeneration` telling the truth.
//!
//! Each test runs its own controller (drift interval 1 s, watching only the test's
//! namespace) against its own emulator. Waits are on conditions with deadlines, never
//! sleeps.

mod support;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::Ingress;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use qlik_csp_operator::api::QlikTenant;
use qlik_csp_operator::api::csp_entry::DirectiveName;
use qlik_csp_operator::api::tenant::{HeaderSource, HeaderSpec};
use qlik_csp_operator::controller::tenant::publish::{HEADER_SHA256, header_sha256};
use qlik_csp_operator::csp::{Directive, Origin};
use qlik_csp_operator::tenant::CspOriginContent;
use serde_json::json;
use support::tenant_rig::{
    ADMIN_SECRET, Controller, DEADLINE, TENANT, TenantRig, condition, csp_entry as entry, ingress,
};

const WRONG_KEY: &str = "not-the-key-9876543210-zyxwvu";
const CONFIG_MAP: &str = "acme-csp";
const HEADER_KEY: &str = "Content-Security-Policy";

async fn start() -> TenantRig {
    TenantRig::builder().run(Controller::Tenant).start().await
}

/// What this suite asks of the rig.
impl TenantRig {
    /// QlikTenant [`TENANT`] publishing `header`, if given.
    fn tenant(&self, header: Option<HeaderSpec>) -> QlikTenant {
        self.qlik_tenant(TENANT, json!({ "header": header }))
    }

    async fn wait_condition(&self, type_: &str, status: &str, reason: &str) -> QlikTenant {
        self.wait_tenant(TENANT, &format!("{type_}={status} reason {reason}"), |t| {
            condition(t, type_)
                .filter(|c| c.status == status && c.reason == reason)
                .map(|_| t.clone())
        })
        .await
    }

    async fn config_map(&self) -> Option<ConfigMap> {
        self.api::<ConfigMap>()
            .get_opt(CONFIG_MAP)
            .await
            .unwrap_or_else(|e| panic!("failed to read the ConfigMap: {e}"))
    }

    /// Waits until the ConfigMap holds `value`, and returns it.
    async fn wait_config_map(&self, value: &str) -> ConfigMap {
        support::eventually(
            &format!("ConfigMap {CONFIG_MAP} to hold {value:?}"),
            DEADLINE,
            || async {
                self.config_map()
                    .await
                    .filter(|cm| header_value(cm).as_deref() == Some(value))
            },
        )
        .await
    }
}

fn header_spec(source: HeaderSource, base: Option<BTreeMap<String, Vec<String>>>) -> HeaderSpec {
    HeaderSpec {
        config_map_name: Some(CONFIG_MAP.to_owned()),
        key: HEADER_KEY.to_owned(),
        source,
        report_only: false,
        mode: None,
        base_directives: base,
        candidate_directives: None,
        targets: Vec::new(),
    }
}

fn default_self() -> Option<BTreeMap<String, Vec<String>>> {
    Some(BTreeMap::from([(
        "default-src".to_owned(),
        vec!["'self'".to_owned()],
    )]))
}

/// The kstatus progress condition present (`Reconciling` or `Stalled`, with its reason),
/// or `("", "")` when neither is; fails the test if both are, or one is not `True`.
fn progress(tenant: &QlikTenant) -> (&'static str, String) {
    let reconciling = condition(tenant, "Reconciling");
    let stalled = condition(tenant, "Stalled");
    assert!(reconciling.is_none() || stalled.is_none(), "both present");
    match (reconciling, stalled) {
        (Some(c), None) | (None, Some(c)) => {
            assert_eq!(c.status, "True");
            let type_ = if reconciling.is_some() {
                "Reconciling"
            } else {
                "Stalled"
            };
            (type_, c.reason.clone())
        }
        _ => ("", String::new()),
    }
}

fn header_value(cm: &ConfigMap) -> Option<String> {
    cm.data.as_ref()?.get(HEADER_KEY).cloned()
}

fn sha_annotation(annotations: Option<&BTreeMap<String, String>>) -> Option<String> {
    annotations?.get(HEADER_SHA256).cloned()
}

#[tokio::test]
async fn a_tenant_with_a_good_key_becomes_ready_with_its_tenant_id() {
    let h = start().await;
    h.create_admin_secret().await;
    h.create(&h.tenant(None)).await;

    let tenant = h.wait_condition("Ready", "True", "Connected").await;
    let status = tenant.status.as_ref().unwrap();
    assert_eq!(status.tenant_id.as_deref(), Some(h.emulator.tenant_id()));
    assert_eq!(
        progress(&tenant),
        ("", String::new()),
        "done: neither kstatus condition"
    );
    assert_eq!(status.observed_generation, tenant.metadata.generation);
    assert!(status.header.is_none());
    assert!(condition(&tenant, "HeaderPublished").is_none());
}

#[tokio::test]
async fn a_missing_secret_is_reported_and_the_tenant_becomes_ready_once_it_exists() {
    let h = start().await;
    h.create(&h.tenant(None)).await;

    let tenant = h.wait_condition("Ready", "False", "SecretNotFound").await;
    let message = &condition(&tenant, "Ready").unwrap().message;
    assert!(message.contains(ADMIN_SECRET), "{message}");

    h.create_admin_secret().await;
    let tenant = h.wait_condition("Ready", "True", "Connected").await;
    assert_eq!(
        tenant.status.unwrap().tenant_id.as_deref(),
        Some(h.emulator.tenant_id())
    );
}

#[tokio::test]
async fn a_wrong_key_is_unauthorized_and_the_message_names_the_secret_not_the_value() {
    let h = start().await;
    h.create_admin_secret_with(WRONG_KEY).await;
    h.create(&h.tenant(None)).await;

    let tenant = h.wait_condition("Ready", "False", "Unauthorized").await;
    let message = &condition(&tenant, "Ready").unwrap().message;
    assert!(message.contains(ADMIN_SECRET), "{message}");
    // kstatus: a wrong key needs a user, so the tenant is Stalled, not Reconciling.
    assert_eq!(progress(&tenant), ("Stalled", "Unauthorized".to_owned()));
    assert!(!message.contains(WRONG_KEY), "{message}");
    let status_json = serde_json::to_string(&tenant.status).unwrap();
    assert!(!status_json.contains(WRONG_KEY));

    let events: Api<Event> = h.api();
    let notes = support::eventually("an Unauthorized event", DEADLINE, || async {
        let listed = events.list(&ListParams::default()).await.ok()?;
        let notes: Vec<String> = listed
            .items
            .iter()
            .map(|e| format!("{:?} {:?}", e.reason, e.note))
            .collect();
        notes
            .iter()
            .any(|n| n.contains("Unauthorized"))
            .then_some(notes)
    })
    .await;
    assert!(notes.iter().all(|n| !n.contains(WRONG_KEY)), "{notes:?}");
}

#[tokio::test]
async fn an_unreachable_tenant_is_reported_as_unreachable() {
    let h = start().await;
    h.create_admin_secret().await;
    let mut tenant = h.tenant(Some(header_spec(HeaderSource::Tenant, None)));
    // Nothing listens on port 1.
    tenant.spec.url = Some("https://127.0.0.1:1".to_owned());
    h.create(&tenant).await;

    let tenant = h.wait_condition("Ready", "False", "Unreachable").await;
    let message = &condition(&tenant, "Ready").unwrap().message;
    assert!(message.contains("could not reach the tenant"), "{message}");
    // kstatus: an unreachable tenant is retried, so it is Reconciling, not Stalled.
    assert_eq!(progress(&tenant), ("Reconciling", "Unreachable".to_owned()));
    let header = condition(&tenant, "HeaderPublished").unwrap();
    assert_eq!(
        (header.status.as_str(), header.reason.as_str()),
        ("False", "TenantNotReady")
    );
    assert!(h.config_map().await.is_none());
}

#[tokio::test]
async fn a_local_header_is_compiled_exactly_from_the_tenants_two_entries() {
    let h = start().await;
    h.create_admin_secret().await;
    h.create(&entry(
        "frames",
        "https://a.example.com",
        &[DirectiveName::FrameSrc],
        true,
    ))
    .await;
    h.create(&entry(
        "scripts",
        "https://b.example.com:8443",
        &[DirectiveName::ScriptSrc, DirectiveName::ImgSrc],
        false,
    ))
    .await;
    let mut unrelated = entry(
        "other-tenant",
        "https://c.example.com",
        &[DirectiveName::ImgSrc],
        false,
    );
    unrelated.spec.tenant_ref.name = "globex".to_owned();
    h.create(&unrelated).await;
    h.create(&h.tenant(Some(header_spec(HeaderSource::Local, default_self()))))
        .await;

    let expected = "default-src 'self'; connect-src wss://a.example.com; \
                    frame-src https://a.example.com; img-src https://b.example.com:8443; \
                    script-src https://b.example.com:8443";
    let cm = h.wait_config_map(expected).await;
    assert_eq!(
        sha_annotation(cm.metadata.annotations.as_ref()),
        Some(header_sha256(expected))
    );
    let owner = &cm.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("QlikTenant", TENANT)
    );
    assert_eq!(owner.controller, Some(true));

    let tenant = h
        .wait_condition("HeaderPublished", "True", "Published")
        .await;
    let published = tenant.status.unwrap().header.unwrap();
    assert_eq!(published.sha256, header_sha256(expected));
    assert_eq!(published.length as usize, expected.len());
    assert_eq!(published.origins, 3);
}

#[tokio::test]
async fn a_tenant_sourced_header_equals_the_tenants_generated_header() {
    let h = start().await;
    let admin = h.admin();
    let origin = Origin::parse("https://embed.example.com").unwrap();
    admin
        .create_csp_origin(&CspOriginContent::new(
            "embed",
            &origin,
            [Directive::FrameAncestors],
            false,
            "test",
        ))
        .await
        .unwrap_or_else(|e| panic!("failed to create the tenant entry: {e}"));
    let expected = admin
        .generate_csp_header()
        .await
        .unwrap_or_else(|e| panic!("failed to generate the header: {e}"));
    assert!(expected.contains("https://embed.example.com"), "{expected}");

    h.create_admin_secret().await;
    h.create(&h.tenant(Some(header_spec(HeaderSource::Tenant, None))))
        .await;

    h.wait_config_map(&expected).await;
    h.wait_condition("HeaderPublished", "True", "Published")
        .await;
}

#[tokio::test]
async fn an_unchanged_header_is_not_written_again_over_several_drift_intervals() {
    let h = start().await;
    h.create_admin_secret().await;
    h.create(&h.tenant(Some(header_spec(HeaderSource::Tenant, None))))
        .await;
    h.wait_condition("HeaderPublished", "True", "Published")
        .await;
    h.wait_condition("Ready", "True", "Connected").await;
    let config_map_version = h.config_map().await.unwrap().resource_version();
    let tenant_version = h
        .api::<QlikTenant>()
        .get(TENANT)
        .await
        .unwrap()
        .resource_version();

    let headers = h.control.count("csp-origins.generate-header").await;
    let checks = h.control.count("tenants.me").await;
    support::eventually("3 more drift checks", DEADLINE, || async {
        let more_headers = h.control.count("csp-origins.generate-header").await >= headers + 3;
        let more_checks = h.control.count("tenants.me").await >= checks + 3;
        (more_headers && more_checks).then_some(())
    })
    .await;

    assert_eq!(
        h.config_map().await.unwrap().resource_version(),
        config_map_version
    );
    let tenant = h.api::<QlikTenant>().get(TENANT).await.unwrap();
    assert_eq!(
        tenant.resource_version(),
        tenant_version,
        "the status was rewritten"
    );
}

#[tokio::test]
async fn an_invalid_header_is_never_published_and_the_last_good_one_stays() {
    let h = start().await;
    h.create_admin_secret().await;
    h.create(&entry(
        "good",
        "https://good.example.com",
        &[DirectiveName::ImgSrc],
        false,
    ))
    .await;
    h.create(&h.tenant(Some(header_spec(HeaderSource::Local, default_self()))))
        .await;
    let good = "default-src 'self'; img-src https://good.example.com";
    h.wait_config_map(good).await;
    h.wait_condition("HeaderPublished", "True", "Published")
        .await;

    // 40 origins of about 190 characters: well over the 6,144-character cap.
    let label = |c: char| c.to_string().repeat(58);
    for i in 0..40 {
        let origin = format!(
            "https://h{i}-{}.{}.{}.example.com",
            label('x'),
            label('y'),
            label('z')
        );
        h.create(&entry(
            &format!("long-{i}"),
            &origin,
            &[DirectiveName::FrameSrc],
            false,
        ))
        .await;
    }

    let tenant = h
        .wait_condition("HeaderPublished", "False", "InvalidHeader")
        .await;
    let message = &condition(&tenant, "HeaderPublished").unwrap().message;
    assert!(message.contains("6144"), "{message}");
    let cm = h.config_map().await.unwrap();
    assert_eq!(header_value(&cm).as_deref(), Some(good));
    assert_eq!(
        tenant.status.unwrap().header.unwrap().sha256,
        header_sha256(good)
    );
    assert_eq!(
        condition(&h.api::<QlikTenant>().get(TENANT).await.unwrap(), "Ready")
            .map(|c| c.status.clone()),
        Some("True".to_owned())
    );
}

#[tokio::test]
async fn only_ingresses_that_reference_the_config_map_get_the_header_sha() {
    let h = start().await;
    let ns = h.ns().to_owned();
    h.create(&ingress("served", Some(format!("{ns}/{CONFIG_MAP}"))))
        .await;
    h.create(&ingress("other-map", Some(format!("{ns}/unrelated"))))
        .await;
    h.create(&ingress("plain", None)).await;
    h.create_admin_secret().await;
    h.create(&entry(
        "cdn",
        "https://cdn.example.com",
        &[DirectiveName::ScriptSrc],
        false,
    ))
    .await;
    h.create(&h.tenant(Some(header_spec(HeaderSource::Local, default_self()))))
        .await;

    let value = "default-src 'self'; script-src https://cdn.example.com";
    h.wait_config_map(value).await;
    let ingresses: Api<Ingress> = h.api();
    support::eventually(
        "the served Ingress to carry the header's sha",
        DEADLINE,
        || async {
            let served = ingresses.get("served").await.ok()?;
            (sha_annotation(served.metadata.annotations.as_ref()) == Some(header_sha256(value)))
                .then_some(())
        },
    )
    .await;
    for name in ["other-map", "plain"] {
        let other = ingresses.get(name).await.unwrap();
        assert_eq!(
            sha_annotation(other.metadata.annotations.as_ref()),
            None,
            "{name}"
        );
    }

    // A header change bumps the annotation again.
    h.create(&entry(
        "fonts",
        "https://fonts.example.com",
        &[DirectiveName::FontSrc],
        false,
    ))
    .await;
    let changed = "default-src 'self'; font-src https://fonts.example.com; script-src https://cdn.example.com";
    h.wait_config_map(changed).await;
    support::eventually(
        "the served Ingress to carry the new sha",
        DEADLINE,
        || async {
            let served = ingresses.get("served").await.ok()?;
            (sha_annotation(served.metadata.annotations.as_ref()) == Some(header_sha256(changed)))
                .then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn the_ready_condition_describes_the_current_generation_for_kubectl_wait() {
    let h = start().await;
    h.create_admin_secret().await;
    let created = h.create(&h.tenant(None)).await;
    h.wait_condition("Ready", "True", "Connected").await;

    let patch = json!({ "spec": { "syncInterval": "5m" } });
    let patched = h
        .api::<QlikTenant>()
        .patch(TENANT, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let generation = patched.metadata.generation;
    assert!(generation > created.metadata.generation);

    // What `kubectl wait --for=condition=Ready` and kstatus check.
    h.wait_tenant(TENANT, "Ready for the new generation", |t| {
        let ready = condition(t, "Ready")?;
        let current = ready.status == "True"
            && ready.observed_generation == t.metadata.generation
            && t.status.as_ref()?.observed_generation == t.metadata.generation;
        current.then_some(())
    })
    .await;
    assert_eq!(
        generation,
        h.api::<QlikTenant>()
            .get(TENANT)
            .await
            .unwrap()
            .metadata
            .generation
    );

    h.api::<QlikTenant>()
        .delete(TENANT, &DeleteParams::default())
        .await
        .unwrap();
}
