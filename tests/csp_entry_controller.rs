//! The csp-entry controller on a real apiserver against the tenant emulator: create, update,
//! delete, orphan, adopt, duplicate origin, tenant limit, tenant down and back, console drift.
//! The tenant's readiness is set by hand here (it is the tenant controller's job, tested on
//! its own), so these tests exercise this controller alone.

mod support;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use qlik_csp_operator::api::{CspEntry, QlikTenant};
use qlik_csp_operator::controller::tenant_turns::TURNS_PER_TENANT;
use qlik_csp_operator::controller::{Shared, csp_entry};
use qlik_csp_operator::csp::{Directive, Origin};
use qlik_csp_operator::emulator::{Emulator, EmulatorConfig};
use qlik_csp_operator::tenant::wire::{CspOrigin, CspOriginContent};
use qlik_csp_operator::tenant::{ClientConfig, Credential, CredentialSource, TenantClient};
use serde_json::{Value, json};
use support::{TestEnv, eventually};

const KEY: &str = "csp-entry-test-admin-key-0123456789";
const DEADLINE: Duration = Duration::from_secs(30);

struct Setup {
    env: TestEnv,
    /// Kept alive for the test; dropping it stops the tenant.
    _emulator: Emulator,
    tenant: TenantClient,
    entries: Api<CspEntry>,
    /// What the running controller shares: its tenants' turns are read by the tests.
    shared: Arc<Shared>,
}

impl Setup {
    /// CspEntry `first` created on the tenant for `https://shared.example.com` (`img-src`):
    /// the owner of that origin in the duplicate scenarios.
    async fn with_shared_origin_owned_by_first() -> Setup {
        let setup = Setup::start(EmulatorConfig::default()).await;
        setup
            .apply("first", spec("https://shared.example.com", &["img-src"]))
            .await;
        setup.wait_ready("first", "True", "Created").await;
        setup
    }

    async fn start(config: EmulatorConfig) -> Setup {
        let env = TestEnv::new().await;
        let emulator = Emulator::start(EmulatorConfig {
            admin_api_keys: vec![KEY.into()],
            ..config
        })
        .await
        .unwrap_or_else(|e| panic!("failed to start the emulator: {e}"));
        let ns = env.namespace.clone();
        let secret: Secret = serde_json::from_value(json!({
            "metadata": { "name": "qlik-admin" },
            "stringData": { "api-key": KEY },
        }))
        .unwrap();
        Api::<Secret>::namespaced(env.client.clone(), &ns)
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
        let tenant: QlikTenant = serde_json::from_value(json!({
            "apiVersion": "qlikops.io/v1alpha1", "kind": "QlikTenant",
            "metadata": { "name": "acme" },
            "spec": {
                "url": emulator.base_url(),
                "caBundle": emulator.ca_pem(),
                "credentials": { "apiKey": { "secretRef": { "name": "qlik-admin", "key": "api-key" } } },
            },
        }))
        .unwrap();
        Api::<QlikTenant>::namespaced(env.client.clone(), &ns)
            .create(&PostParams::default(), &tenant)
            .await
            .unwrap();
        set_tenant_ready(&env.client, &ns, true).await;

        let shared = support::controller_shared(&env, Duration::from_millis(50));
        tokio::spawn(csp_entry::run(shared.clone()));

        let mut config = ClientConfig::new(emulator.base_url());
        config.ca_bundle = Some(emulator.ca_pem().to_owned());
        let source = CredentialSource::Described("the test".into());
        let tenant = TenantClient::new(config, Credential::api_key(KEY), source).unwrap();
        let entries = Api::namespaced(env.client.clone(), &ns);
        Setup {
            env,
            _emulator: emulator,
            tenant,
            entries,
            shared,
        }
    }

    async fn apply(&self, name: &str, spec: Value) {
        let object = json!({
            "apiVersion": "qlikops.io/v1alpha1", "kind": "CspEntry",
            "metadata": { "name": name }, "spec": spec,
        });
        let params = PatchParams::apply("test").force();
        self.entries
            .patch(name, &params, &Patch::Apply(&object))
            .await
            .unwrap();
    }

    /// Waits until the entry's Ready condition has `status` and `reason` for its current
    /// generation (what `kubectl wait --for=condition=Ready` relies on).
    async fn wait_ready(&self, name: &str, status: &str, reason: &str) -> CspEntry {
        let what = format!("CspEntry {name} Ready={status} {reason}");
        eventually(&what, DEADLINE, || async {
            let entry = self.entries.get(name).await.ok()?;
            let ready = entry
                .status
                .as_ref()?
                .conditions
                .iter()
                .find(|c| c.type_ == "Ready")?
                .clone();
            let current = ready.observed_generation == entry.metadata.generation;
            (current && ready.status == status && ready.reason == reason).then_some(entry)
        })
        .await
    }

    async fn remote(&self) -> Vec<CspOrigin> {
        self.tenant.list_csp_origins().await.unwrap()
    }
}

async fn set_tenant_ready(client: &Client, namespace: &str, ready: bool) {
    let (status, reason) = if ready {
        ("True", "Connected")
    } else {
        ("False", "Unreachable")
    };
    let patch = json!({ "status": { "conditions": [{
        "type": "Ready", "status": status, "reason": reason, "message": "set by the test",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }]}});
    Api::<QlikTenant>::namespaced(client.clone(), namespace)
        .patch_status("acme", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

/// The kstatus progress condition present (`Reconciling` or `Stalled`, with its reason and
/// for the current generation), or `("", "")` when neither is.
fn progress(entry: &CspEntry) -> (&'static str, String) {
    let conditions = &entry.status.as_ref().unwrap().conditions;
    let find = |type_| conditions.iter().find(|c| c.type_ == type_);
    match (find("Reconciling"), find("Stalled")) {
        (Some(_), Some(_)) => panic!("both Reconciling and Stalled: {conditions:?}"),
        (Some(c), None) | (None, Some(c)) => {
            assert_eq!(c.status, "True");
            assert_eq!(c.observed_generation, entry.metadata.generation);
            let type_ = if c.type_ == "Reconciling" {
                "Reconciling"
            } else {
                "Stalled"
            };
            (type_, c.reason.clone())
        }
        (None, None) => ("", String::new()),
    }
}

fn spec(origin: &str, directives: &[&str]) -> Value {
    json!({ "tenantRef": { "name": "acme" }, "origin": origin, "directives": directives })
}

#[tokio::test]
async fn an_entry_is_created_updated_and_deleted_on_the_tenant() {
    let setup = Setup::start(EmulatorConfig::default()).await;
    setup
        .apply("cdn", spec("https://cdn.example.com", &["script-src"]))
        .await;
    let entry = setup.wait_ready("cdn", "True", "Created").await;
    let remote = setup.remote().await;
    assert_eq!(remote.len(), 1);
    assert_eq!(
        entry.status.as_ref().and_then(|s| s.id.as_deref()),
        Some(remote[0].id.as_str())
    );
    assert_eq!(
        remote[0].content.name,
        format!("{}/cdn", setup.env.namespace)
    );
    assert_eq!(
        remote[0].content.directives(),
        [Directive::ScriptSrc].into()
    );

    setup
        .apply(
            "cdn",
            spec("https://cdn.example.com", &["script-src", "img-src"]),
        )
        .await;
    setup.wait_ready("cdn", "True", "Updated").await;
    let remote = setup.remote().await;
    assert_eq!(
        remote[0].content.directives(),
        [Directive::ImgSrc, Directive::ScriptSrc].into()
    );

    setup
        .entries
        .delete("cdn", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the CspEntry to be gone", DEADLINE, || async {
        setup
            .entries
            .get_opt("cdn")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        setup.remote().await.is_empty(),
        "the tenant's entry is deleted with the resource"
    );
}

/// A burst for one tenant is worked on a few entries at a time (see `tenant_turns`); the
/// rest wait in line and are woken as turns come free. If a wake were lost, the entries
/// behind it would never sync: nothing else reconciles them in this test.
#[tokio::test]
async fn a_burst_larger_than_the_tenants_turns_syncs_every_entry_once() {
    let setup = Setup::start(EmulatorConfig::default()).await;
    let names: Vec<String> = (0..3 * TURNS_PER_TENANT)
        .map(|i| format!("burst-{i}"))
        .collect();
    futures::future::join_all(names.iter().enumerate().map(|(i, name)| {
        setup.apply(
            name,
            spec(&format!("https://burst{i}.example.com"), &["img-src"]),
        )
    }))
    .await;
    for name in &names {
        setup.wait_ready(name, "True", "Created").await;
    }
    let remote = setup.remote().await;
    let mut origins: Vec<&str> = remote.iter().map(|r| r.content.origin.as_str()).collect();
    origins.sort_unstable();
    origins.dedup();
    assert_eq!(
        (remote.len(), origins.len()),
        (names.len(), names.len()),
        "one tenant entry per CspEntry"
    );
    eventually("every turn given back", DEADLINE, || async {
        (setup.shared.turns.busy_tenants() == 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_orphaned_entry_stays_on_the_tenant() {
    let setup = Setup::start(EmulatorConfig::default()).await;
    let mut orphan = spec("https://keep.example.com", &["img-src"]);
    orphan["deletionPolicy"] = json!("Orphan");
    setup.apply("keep", orphan).await;
    setup.wait_ready("keep", "True", "Created").await;
    setup
        .entries
        .delete("keep", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the CspEntry to be gone", DEADLINE, || async {
        setup
            .entries
            .get_opt("keep")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(setup.remote().await.len(), 1);
}

#[tokio::test]
async fn an_existing_entry_with_the_same_origin_is_adopted_not_duplicated() {
    let setup = Setup::start(EmulatorConfig::default()).await;
    let origin = Origin::parse("https://legacy.example.com").unwrap();
    let content = CspOriginContent::new(
        "clicked in the console",
        &origin,
        [Directive::FontSrc],
        false,
        String::new(),
    );
    let existing = setup.tenant.create_csp_origin(&content).await.unwrap();

    setup
        .apply("legacy", spec("https://legacy.example.com", &["font-src"]))
        .await;
    let entry = setup.wait_ready("legacy", "True", "Adopted").await;
    assert_eq!(entry.status.and_then(|s| s.id), Some(existing.id.clone()));
    let remote = setup.remote().await;
    assert_eq!(remote.len(), 1, "no second entry for the same origin");
    assert_eq!(
        remote[0], existing,
        "adopting writes nothing: the console's name stays"
    );

    // The first write the spec asks for names the entry after the resource.
    setup
        .apply(
            "legacy",
            spec("https://legacy.example.com", &["font-src", "img-src"]),
        )
        .await;
    setup.wait_ready("legacy", "True", "Updated").await;
    let remote = setup.remote().await;
    assert_eq!(
        remote[0].content.name,
        format!("{}/legacy", setup.env.namespace)
    );
}

#[tokio::test]
async fn an_entry_clicked_in_the_console_after_the_tenant_was_listed_is_adopted_quietly() {
    // `first` has made the controller list the tenant; this entry comes after that list.
    let setup = Setup::with_shared_origin_owned_by_first().await;
    let origin = Origin::parse("https://late.example.com").unwrap();
    let content = CspOriginContent::new("late", &origin, [Directive::FontSrc], false, "");
    let existing = setup.tenant.create_csp_origin(&content).await.unwrap();

    setup
        .apply("late", spec("https://late.example.com", &["font-src"]))
        .await;
    let entry = setup.wait_ready("late", "True", "Adopted").await;
    assert_eq!(entry.status.and_then(|s| s.id), Some(existing.id));
    // The create planned from the older list is refused by the tenant (one entry per
    // origin); that is a stale list, not a rejected spec: no warning, no Ready=False.
    let events: Api<Event> = Api::namespaced(setup.env.client.clone(), &setup.env.namespace);
    let events = events.list(&Default::default()).await.unwrap();
    let warnings: Vec<String> = events
        .items
        .iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("late"))
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .map(|e| format!("{:?}: {:?}", e.reason, e.note))
        .collect();
    assert_eq!(warnings, Vec::<String>::new());
    assert_eq!(
        setup.remote().await.len(),
        2,
        "no second entry for the origin"
    );
}

#[tokio::test]
async fn the_younger_of_two_entries_for_one_origin_reports_a_duplicate() {
    let setup = Setup::with_shared_origin_owned_by_first().await;
    setup
        .apply("second", spec("https://SHARED.example.com", &["font-src"]))
        .await;
    let second = setup.wait_ready("second", "False", "DuplicateOrigin").await;
    assert_eq!(progress(&second), ("Stalled", "DuplicateOrigin".to_owned()));
    let first = setup.entries.get("first").await.unwrap();
    assert_eq!(progress(&first), ("", String::new()));
    let remote = setup.remote().await;
    assert_eq!(remote.len(), 1);
    assert_eq!(
        remote[0].content.directives(),
        [Directive::ImgSrc].into(),
        "the owner's entry is untouched"
    );
}

#[tokio::test]
async fn an_entry_moved_onto_a_claimed_origin_takes_its_old_origin_off_the_tenant() {
    let setup = Setup::with_shared_origin_owned_by_first().await;
    setup
        .apply("second", spec("https://mine.example.com", &["font-src"]))
        .await;
    setup.wait_ready("second", "True", "Created").await;

    // The edit moves `second` onto the origin `first` owns.
    setup
        .apply("second", spec("https://shared.example.com", &["font-src"]))
        .await;
    let second = setup.wait_ready("second", "False", "DuplicateOrigin").await;
    assert_eq!(
        second.status.and_then(|s| s.id),
        None,
        "a duplicate tracks no remote entry, so deleting it can delete none"
    );
    let origins = |remote: Vec<CspOrigin>| -> Vec<(String, String)> {
        let pairs = remote
            .into_iter()
            .map(|r| (r.content.name, r.content.origin));
        pairs.collect()
    };
    let namespace = &setup.env.namespace;
    let owners_only = vec![(
        format!("{namespace}/first"),
        "https://shared.example.com".to_owned(),
    )];
    assert_eq!(
        origins(setup.remote().await),
        owners_only,
        "the origin the spec no longer names is no longer allowed"
    );

    setup
        .entries
        .delete("second", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the duplicate to be gone", DEADLINE, || async {
        let gone = setup.entries.get_opt("second").await.ok()?.is_none();
        gone.then_some(())
    })
    .await;
    assert_eq!(
        origins(setup.remote().await),
        owners_only,
        "the owner's entry outlives the duplicate"
    );
}

#[tokio::test]
async fn a_full_tenant_reports_the_limit_and_disturbs_nothing() {
    let setup = Setup::start(EmulatorConfig {
        max_csp_entries: 1,
        ..EmulatorConfig::default()
    })
    .await;
    setup
        .apply("one", spec("https://one.example.com", &["img-src"]))
        .await;
    setup.wait_ready("one", "True", "Created").await;
    setup
        .apply("two", spec("https://two.example.com", &["img-src"]))
        .await;
    setup.wait_ready("two", "False", "TenantLimitReached").await;
    let remote = setup.remote().await;
    assert_eq!(remote.len(), 1);
    assert_eq!(remote[0].content.origin, "https://one.example.com");
}

#[tokio::test]
async fn entries_wait_for_their_tenant_and_sync_once_it_recovers() {
    let setup = Setup::start(EmulatorConfig::default()).await;
    set_tenant_ready(&setup.env.client, &setup.env.namespace, false).await;
    setup
        .apply("cdn", spec("https://cdn.example.com", &["img-src"]))
        .await;
    let waiting = setup.wait_ready("cdn", "False", "TenantNotReady").await;
    assert_eq!(
        progress(&waiting),
        ("Reconciling", "TenantNotReady".to_owned())
    );
    assert!(setup.remote().await.is_empty());
    set_tenant_ready(&setup.env.client, &setup.env.namespace, true).await;
    let synced = setup.wait_ready("cdn", "True", "Created").await;
    assert_eq!(
        progress(&synced),
        ("", String::new()),
        "done: neither condition"
    );
    assert_eq!(setup.remote().await.len(), 1);
}

#[tokio::test]
async fn a_change_made_in_the_console_is_reverted() {
    let setup = Setup::start(EmulatorConfig::default()).await;
    setup
        .apply("cdn", spec("https://cdn.example.com", &["script-src"]))
        .await;
    let entry = setup.wait_ready("cdn", "True", "Created").await;
    let id = entry.status.and_then(|s| s.id).unwrap();
    let mut drifted = setup.tenant.get_csp_origin(&id).await.unwrap().content;
    drifted.script_src = false;
    drifted.object_src = true;
    setup.tenant.update_csp_origin(&id, &drifted).await.unwrap();

    eventually("the console change to be reverted", DEADLINE, || async {
        let remote = setup.tenant.get_csp_origin(&id).await.ok()?;
        (remote.content.directives() == [Directive::ScriptSrc].into()).then_some(())
    })
    .await;
    assert_eq!(setup.remote().await.len(), 1);
}
