//! The `secret-rotation` controller against a real kube-apiserver and the tenant emulator:
//! full API key and OAuth secret rotations (expiry capping, schedule, manual trigger, grace
//! period, `<key>.previous`, rollout annotation), self-rotation while CspEntries keep
//! syncing, a Secret deleted by a user, a credential revoked in the console, and no value
//! in logs, status or events.
//!
//! Each test runs its own controllers (namespace-scoped, health checks every second) on a
//! clock that the test moves together with the emulator's, so hours pass at once. Waits
//! are on conditions with deadlines, never sleeps.

mod rotation_rig;
mod support;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use qlik_csp_operator::api::csp_entry::{CspEntrySpec, DeletionPolicy, DirectiveName};
use qlik_csp_operator::api::secret_rotation::{
    CREDENTIAL_REVISION, RolloutTarget, SECRET_ROTATION_LABEL, WorkloadKind,
};
use qlik_csp_operator::api::{CspEntry, SecretRotation, TenantRef};
use qlik_csp_operator::controller::csp_entry::remote_cache::RemoteCache;
use qlik_csp_operator::controller::secret_rotation::{self, Clock, OffsetClock};
use qlik_csp_operator::controller::tenant_clients::TenantClients;
use qlik_csp_operator::controller::{Shared, csp_entry, tenant};
use qlik_csp_operator::tenant::{ApiKeyStatus, ClientConfig, NewApiKey};
use rotation_rig::*;
use secrecy::ExposeSecret;
use serde_json::json;

/// Controllers that stop when the test ends.
struct Running {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    clock: OffsetClock,
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Running {
    /// The rotation controller, and with `all` the tenant and CspEntry controllers too.
    fn start(rig: &Rig, all: bool) -> Running {
        let shared: Arc<Shared> = support::controller_shared(&rig.env, Duration::from_millis(100));
        Running::with_shared(shared, all)
    }

    /// As [`Running::start`], but tenant clients trust a credential Secret for an hour: only
    /// the rotation's own notice makes them read it again.
    fn start_with_long_secret_cache(rig: &Rig, all: bool) -> Running {
        let short = support::controller_shared(&rig.env, Duration::from_millis(100));
        let template = ClientConfig {
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
            ..ClientConfig::new("https://set-per-tenant.invalid")
        };
        let shared = Arc::new(Shared {
            kube: short.kube.clone(),
            tenants: TenantClients::new(template, Duration::from_secs(3600))
                .with_allowed_hosts(support::test_allowed_hosts()),
            remote: RemoteCache::default(),
            settings: short.settings.clone(),
            runtime: Default::default(),
        });
        Running::with_shared(shared, all)
    }

    fn with_shared(shared: Arc<Shared>, all: bool) -> Running {
        let clock = OffsetClock::default();
        let mut tasks = vec![tokio::spawn(secret_rotation::run_with_clock(
            shared.clone(),
            Arc::new(clock.clone()),
        ))];
        if all {
            tasks.push(tokio::spawn(tenant::run::run(shared.clone())));
            tasks.push(tokio::spawn(csp_entry::run(shared)));
        }
        Running { tasks, clock }
    }

    /// Moves the controller's and the emulator's clocks together.
    async fn advance(&self, rig: &Rig, by: Duration) {
        rig.advance_emulator(by).await;
        self.clock.advance(by);
    }
}

fn uid(rotation: &SecretRotation) -> String {
    rotation.metadata.uid.clone().unwrap()
}

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name },
        "spec": {
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "app", "image": "example.invalid/app" }] },
            },
        },
    }))
    .unwrap()
}

fn template_revision(deployment: &Deployment) -> Option<String> {
    deployment
        .spec
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(CREDENTIAL_REVISION)
        .cloned()
}

async fn event_reasons(rig: &Rig, rotation: &SecretRotation) -> Vec<(String, String)> {
    let events: kube::Api<Event> = rig.api();
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.uid.clone()) == rotation.metadata.uid)
        .map(|e| (e.type_.unwrap_or_default(), e.reason.unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn an_api_key_rotates_on_schedule_with_capped_expiry_grace_period_and_rollout() {
    let rig = Rig::start(|c| c.max_api_key_expiry = "PT1H".to_owned()).await;
    let running = Running::start(&rig, false);
    rig.create(&deployment("reports")).await;
    let mut rotation = api_key_rotation("reports", "reports-qlik", Duration::from_secs(120));
    rotation.spec.credential.api_key.as_mut().unwrap().expiry =
        Some(Duration::from_secs(48 * 3600).into());
    rotation.spec.rollout_targets = vec![
        RolloutTarget {
            kind: WorkloadKind::Deployment,
            name: "reports".to_owned(),
        },
        RolloutTarget {
            kind: WorkloadKind::StatefulSet,
            name: "not-there".to_owned(),
        },
    ];
    let created = rig.create(&rotation).await;

    // The first credential: capped to the tenant's 1 h, in a Secret the rotation owns.
    let first = rig.wait_settled("reports", 1).await;
    let ready = condition(&first, "Ready").unwrap();
    assert_eq!(ready.reason, "ExpiryCapped");
    assert!(
        ready.message.contains("ExpiryCapped: asked for 48h"),
        "{}",
        ready.message
    );
    let status = first.status.clone().unwrap();
    let current = status.current.clone().unwrap();
    let lifetime = current
        .expires_at
        .clone()
        .unwrap()
        .0
        .duration_since(current.created_at.clone().unwrap().0);
    assert_eq!(lifetime.as_secs(), 3600);
    // renewBefore defaults to a third of the lifetime.
    assert_eq!(
        status.next_rotation_at.unwrap().0,
        current.expires_at.clone().unwrap().0 - jiff::SignedDuration::from_mins(20)
    );
    let secret = rig.secret("reports-qlik").await.unwrap();
    let owner = &secret.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("SecretRotation", uid(&created).as_str())
    );
    assert_eq!(
        secret
            .labels()
            .get(SECRET_ROTATION_LABEL)
            .map(String::as_str),
        Some("reports")
    );
    assert_eq!(
        secret
            .annotations()
            .get(CREDENTIAL_REVISION)
            .map(String::as_str),
        Some("1")
    );
    let token1 = rig.secret_value("reports-qlik", "token").await.unwrap();
    assert!(rig.api_key_works(&token1).await);
    let deployments: kube::Api<Deployment> = rig.api();
    assert_eq!(
        template_revision(&deployments.get("reports").await.unwrap()).as_deref(),
        Some("1")
    );
    assert_eq!(rig.keys_of(&created).await.len(), 1);

    // 41 minutes on, the key is due (renewal 20 minutes before its expiry).
    running.advance(&rig, Duration::from_secs(41 * 60)).await;
    let draining = rig
        .wait_rotation("reports", "revision 2 draining", |r| {
            r.status.as_ref().is_some_and(|s| {
                s.revision == 2
                    && s.phase == qlik_csp_operator::api::secret_rotation::Phase::Draining
            })
        })
        .await;
    let token2 = rig.secret_value("reports-qlik", "token").await.unwrap();
    assert_ne!(token1, token2);
    assert_eq!(
        rig.secret_value("reports-qlik", "token.previous")
            .await
            .as_deref(),
        Some(token1.as_str())
    );
    assert!(
        rig.api_key_works(&token1).await,
        "the old key works during the grace period"
    );
    assert!(rig.api_key_works(&token2).await);
    assert_eq!(
        template_revision(&deployments.get("reports").await.unwrap()).as_deref(),
        Some("2")
    );
    let previous = draining.status.as_ref().unwrap().previous.clone().unwrap();
    assert_eq!(previous.id, current.id);

    // After the grace period the old key is revoked and `.previous` removed.
    running.advance(&rig, Duration::from_secs(121)).await;
    let done = rig.wait_settled("reports", 2).await;
    assert_eq!(
        rig.secret_value("reports-qlik", "token.previous").await,
        None
    );
    assert!(!rig.api_key_works(&token1).await, "the old key is revoked");
    assert!(rig.api_key_works(&token2).await);
    let keys = rig.keys_of(&created).await;
    assert_eq!(keys.len(), 1, "exactly one key remains");
    assert_eq!(
        Some(&keys[0].id),
        done.status.unwrap().current.unwrap().id.as_ref()
    );
    let reasons = event_reasons(&rig, &created).await;
    for wanted in ["Created", "RolledOut", "Revoked"] {
        assert!(
            reasons.iter().any(|(_, r)| r == wanted),
            "no {wanted} event in {reasons:?}"
        );
    }
    assert!(
        reasons
            .iter()
            .any(|(t, r)| t == "Warning" && r == "RolloutTargetMissing")
    );
}

#[tokio::test]
async fn an_oauth_secret_rotates_on_request_and_on_schedule() {
    let rig = Rig::start(|_| {}).await;
    let running = Running::start(&rig, false);
    let created = rig
        .create(&oauth_rotation("m2m", "m2m-secret", Duration::ZERO))
        .await;
    let first = rig.wait_settled("m2m", 1).await;
    let secret1 = rig
        .secret_value("m2m-secret", "client-secret")
        .await
        .unwrap();
    assert!(rig.client_secret_works(&secret1).await);
    let hint1 = first
        .status
        .as_ref()
        .unwrap()
        .current
        .clone()
        .unwrap()
        .hint
        .unwrap();
    let hints = rig.hints().await;
    assert_eq!(
        hints.len(),
        2,
        "the seeded secret and the rotated one: {hints:?}"
    );
    assert!(hints.contains(&hint1));
    assert!(
        rig.client_secret_works(CLIENT_SECRET).await,
        "a secret it did not create is left alone"
    );

    // A manual request rotates once.
    let requested = running.clock.now();
    rig.request_rotation("m2m", requested).await;
    let second = rig.wait_settled("m2m", 2).await;
    let secret2 = rig
        .secret_value("m2m-secret", "client-secret")
        .await
        .unwrap();
    assert!(rig.client_secret_works(&secret2).await);
    assert!(
        !rig.client_secret_works(&secret1).await,
        "the old secret is revoked"
    );
    let hints = rig.hints().await;
    assert_eq!(hints.len(), 2, "{hints:?}");
    assert!(!hints.contains(&hint1));
    let status = second.status.clone().unwrap();
    let current = status.current.unwrap();
    assert_eq!(
        status.next_rotation_at.unwrap().0,
        current.created_at.unwrap().0 + jiff::SignedDuration::from_hours(24)
    );

    // rotateEvery (24 h) later, it rotates on its own.
    running
        .advance(&rig, Duration::from_secs(24 * 3600 + 60))
        .await;
    rig.wait_settled("m2m", 3).await;
    let secret3 = rig
        .secret_value("m2m-secret", "client-secret")
        .await
        .unwrap();
    assert!(rig.client_secret_works(&secret3).await);
    assert_eq!(rig.hints().await.len(), 2);
    // The same request annotation does not rotate again.
    assert_eq!(rig.rotation("m2m").await.status.unwrap().revision, 3);
    // Events of one reason are aggregated into one series.
    let reasons = event_reasons(&rig, &created).await;
    for wanted in ["RotationStarted", "Created", "Revoked"] {
        assert!(
            reasons.iter().any(|(_, r)| r == wanted),
            "no {wanted} event in {reasons:?}"
        );
    }
}

#[tokio::test]
async fn a_secret_deleted_by_a_user_is_recreated_with_a_fresh_credential() {
    let rig = Rig::start(|_| {}).await;
    let _running = Running::start(&rig, false);
    let created = rig
        .create(&api_key_rotation("app", "app-qlik", Duration::ZERO))
        .await;
    rig.wait_settled("app", 1).await;
    let token1 = rig.secret_value("app-qlik", "token").await.unwrap();

    rig.api::<Secret>()
        .delete("app-qlik", &DeleteParams::default())
        .await
        .unwrap();
    let recreated = rig.wait_settled("app", 2).await;
    let token2 = rig.secret_value("app-qlik", "token").await.unwrap();
    assert_ne!(token1, token2);
    assert!(rig.api_key_works(&token2).await);
    assert!(!rig.api_key_works(&token1).await, "the lost key is revoked");
    let keys = rig.keys_of(&created).await;
    assert_eq!(keys.len(), 1);
    assert_eq!(
        Some(&keys[0].id),
        recreated.status.unwrap().current.unwrap().id.as_ref()
    );
    let reasons = event_reasons(&rig, &created).await;
    assert!(
        reasons
            .iter()
            .any(|(t, r)| t == "Warning" && r == "SecretMissing"),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn a_key_revoked_in_the_console_is_detected_reported_and_replaced() {
    let rig = Rig::start(|_| {}).await;
    let _running = Running::start(&rig, false);
    let created = rig
        .create(&api_key_rotation("app", "app-qlik", Duration::ZERO))
        .await;
    let first = rig.wait_settled("app", 1).await;
    let id1 = first.status.unwrap().current.unwrap().id.unwrap();
    rig.admin().delete_api_key(&id1).await.unwrap();

    let second = rig.wait_settled("app", 2).await;
    let token2 = rig.secret_value("app-qlik", "token").await.unwrap();
    assert!(rig.api_key_works(&token2).await);
    assert_ne!(second.status.unwrap().current.unwrap().id.unwrap(), id1);
    let keys = rig.keys_of(&created).await;
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].status, ApiKeyStatus::Active);
    let reasons = event_reasons(&rig, &created).await;
    assert!(
        reasons
            .iter()
            .any(|(t, r)| t == "Warning" && r == "CredentialRevoked"),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn the_key_limit_is_reported_and_nothing_in_use_is_revoked() {
    let rig = Rig::start(|c| c.max_keys_per_user = 1).await;
    let _running = Running::start(&rig, false);
    let created = rig
        .create(&api_key_rotation("app", "app-qlik", Duration::ZERO))
        .await;
    rig.wait_settled("app", 1).await;
    let token1 = rig.secret_value("app-qlik", "token").await.unwrap();
    rig.request_rotation(
        "app",
        jiff::Timestamp::now() + jiff::SignedDuration::from_secs(5),
    )
    .await;
    let stuck = rig
        .wait_rotation("app", "Ready=False KeyLimitReached", |r| {
            condition(r, "Ready")
                .is_some_and(|c| c.status == "False" && c.reason == "KeyLimitReached")
        })
        .await;
    assert_eq!(condition(&stuck, "Stalled").unwrap().status, "True");
    assert_eq!(
        rig.secret_value("app-qlik", "token").await.as_deref(),
        Some(token1.as_str())
    );
    assert!(
        rig.api_key_works(&token1).await,
        "the key in use is not revoked"
    );
    assert_eq!(rig.keys_of(&created).await.len(), 1);
}

#[tokio::test]
async fn the_client_secret_limit_is_reported_and_nothing_in_use_is_revoked() {
    // The seeded secret and the rotated one fill a client that holds 2.
    let rig = Rig::start(|c| c.max_client_secrets = 2).await;
    let _running = Running::start(&rig, false);
    rig.create(&oauth_rotation("m2m", "m2m-secret", Duration::ZERO))
        .await;
    rig.wait_settled("m2m", 1).await;
    let secret1 = rig
        .secret_value("m2m-secret", "client-secret")
        .await
        .unwrap();
    rig.request_rotation(
        "m2m",
        jiff::Timestamp::now() + jiff::SignedDuration::from_secs(1),
    )
    .await;
    let stuck = rig
        .wait_rotation("m2m", "Ready=False SecretLimitReached", |r| {
            condition(r, "Ready")
                .is_some_and(|c| c.status == "False" && c.reason == "SecretLimitReached")
        })
        .await;
    assert_eq!(condition(&stuck, "Stalled").unwrap().status, "True");
    assert_eq!(condition(&stuck, "Rotating").unwrap().status, "True");
    assert!(
        rig.client_secret_works(&secret1).await,
        "the secret in use is not revoked"
    );
    assert!(rig.client_secret_works(CLIENT_SECRET).await);
    assert_eq!(rig.hints().await.len(), 2);
}

#[tokio::test]
async fn an_unknown_oauth_client_stalls_with_a_clear_reason_and_no_secret_is_written() {
    let rig = Rig::start(|_| {}).await;
    let _running = Running::start(&rig, false);
    let mut rotation = oauth_rotation("ghost", "ghost-secret", Duration::ZERO);
    rotation
        .spec
        .credential
        .oauth_client_secret
        .as_mut()
        .unwrap()
        .client_id = "no-such-client".to_owned();
    rig.create(&rotation).await;
    let stalled = rig
        .wait_rotation("ghost", "Stalled=True OAuthClientNotFound", |r| {
            condition(r, "Stalled")
                .is_some_and(|c| c.status == "True" && c.reason == "OAuthClientNotFound")
        })
        .await;
    let ready = condition(&stalled, "Ready").unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "OAuthClientNotFound")
    );
    assert!(
        ready.message.contains("no-such-client"),
        "{}",
        ready.message
    );
    assert_eq!(
        stalled.status.as_ref().unwrap().observed_generation,
        stalled.metadata.generation
    );
    assert!(rig.secret("ghost-secret").await.is_none());
}

#[tokio::test]
async fn a_deleted_rotation_revokes_what_nobody_can_use_and_keeps_a_users_secret_working() {
    let rig = Rig::start(|_| {}).await;
    let _running = Running::start(&rig, false);
    // Its own Secret goes with it: its secret is revoked.
    let owned = rig
        .create(&oauth_rotation("owned", "owned-secret", Duration::ZERO))
        .await;
    // A Secret of the user's stays: its key keeps working.
    rig.create(&Secret {
        metadata: meta("users-secret"),
        string_data: Some(std::collections::BTreeMap::from([(
            "note".to_owned(),
            "kept".to_owned(),
        )])),
        ..Secret::default()
    })
    .await;
    let users = rig
        .create(&api_key_rotation("users", "users-secret", Duration::ZERO))
        .await;
    let owned_hint = rig
        .wait_settled("owned", 1)
        .await
        .status
        .unwrap()
        .current
        .unwrap()
        .hint;
    rig.wait_settled("users", 1).await;
    let token = rig.secret_value("users-secret", "token").await.unwrap();
    for name in ["owned", "users"] {
        assert!(
            rig.rotation(name)
                .await
                .finalizers()
                .contains(&"qlikops.io/secret-rotation".to_owned())
        );
        rig.api::<SecretRotation>()
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    support::eventually("both SecretRotations gone", DEADLINE, || async {
        let api = rig.api::<SecretRotation>();
        (api.get_opt("owned").await.unwrap().is_none()
            && api.get_opt("users").await.unwrap().is_none())
        .then_some(())
    })
    .await;
    let hints = rig.hints().await;
    assert!(
        !hints.contains(&owned_hint.unwrap()),
        "the owned secret's credential is revoked"
    );
    assert_eq!(hints.len(), 1, "only the seeded secret remains: {hints:?}");
    assert!(
        rig.api_key_works(&token).await,
        "the user's Secret keeps a working key"
    );
    assert_eq!(rig.keys_of(&users).await.len(), 1);
    assert_eq!(
        rig.secret_value("users-secret", "note").await.as_deref(),
        Some("kept")
    );
    drop(owned);
}

/// The tenant creates the credential but its answer is lost (a 5xx after the fact): the
/// value is gone, so the credential must be found (marker or unknown hint) and revoked,
/// and a new one created.
#[tokio::test]
async fn a_lost_create_answer_is_recovered_without_leaking_a_credential() {
    let rig = Rig::start(|_| {}).await;
    let _running = Running::start(&rig, false);
    for (method_path, rotation) in [
        (
            "/api/v1/api-keys",
            api_key_rotation("key", "key-qlik", Duration::ZERO),
        ),
        (
            "/api/v1/oauth-clients/*/client-secrets",
            oauth_rotation("m2m", "m2m-secret", Duration::ZERO),
        ),
    ] {
        rig.fault(json!({
            "method": "POST", "path": method_path, "fault": "status", "status": 503,
            "when": "after", "times": 1,
        }))
        .await;
        rig.create(&rotation).await;
    }
    let key = rig.wait_settled("key", 1).await;
    let m2m = rig.wait_settled("m2m", 1).await;
    let token = rig.secret_value("key-qlik", "token").await.unwrap();
    assert!(rig.api_key_works(&token).await);
    let keys = rig.keys_of(&key).await;
    assert_eq!(keys.len(), 1, "the stranded key is revoked: {keys:?}");
    let secret = rig
        .secret_value("m2m-secret", "client-secret")
        .await
        .unwrap();
    assert!(rig.client_secret_works(&secret).await);
    let hints = rig.hints().await;
    assert_eq!(
        hints.len(),
        2,
        "the seeded secret and one rotated: {hints:?}"
    );
    assert!(hints.contains(&m2m.status.unwrap().current.unwrap().hint.unwrap()));
    let creates: Vec<_> = rig
        .requests()
        .await
        .into_iter()
        .filter(|r| r["method"] == "POST" && r["status"] == 503)
        .collect();
    assert_eq!(creates.len(), 2, "both faults hit: {creates:?}");
}

#[tokio::test]
async fn self_rotation_keeps_the_operator_working_while_csp_entries_sync() {
    let rig = Rig::start(|_| {}).await;
    // The operator starts with a key issued by the tenant (so it can be revoked), read from
    // the Secret the SecretRotation then rotates.
    let bootstrap = rig
        .admin()
        .create_api_key(&NewApiKey {
            description: "bootstrap key, created by hand".to_owned(),
            expiry: None,
        })
        .await
        .unwrap();
    let patch = json!({ "stringData": { ADMIN_SECRET_KEY: bootstrap.token.expose_secret() } });
    rig.api::<Secret>()
        .patch(ADMIN_SECRET, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    // Tenant clients that trusted the Secret for an hour would keep a revoked key and be
    // refused, unless the rotation has them read it again at once.
    let running = Running::start_with_long_secret_cache(&rig, true);
    let entries: kube::Api<CspEntry> = rig.api();
    let entry = |name: &str, origin: &str| {
        CspEntry::new(
            name,
            CspEntrySpec {
                tenant_ref: TenantRef {
                    name: TENANT.to_owned(),
                },
                origin: origin.to_owned(),
                directives: vec![DirectiveName::ScriptSrc],
                allow_web_socket: false,
                description: None,
                deletion_policy: DeletionPolicy::Delete,
            },
        )
    };
    let ready = |e: &CspEntry| {
        e.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
    };
    rig.create(&entry("cdn", "https://cdn.example.com")).await;

    // The SecretRotation rotates the very key the QlikTenant authenticates with.
    let mut rotation = api_key_rotation("operator", ADMIN_SECRET, Duration::from_secs(2));
    rotation.spec.secret.key = ADMIN_SECRET_KEY.to_owned();
    let created = rig.create(&rotation).await;
    rig.wait_settled("operator", 1).await;
    let own1 = rig
        .secret_value(ADMIN_SECRET, ADMIN_SECRET_KEY)
        .await
        .unwrap();
    assert_ne!(own1, bootstrap.token.expose_secret());
    // The hand-made key is not the operator's to revoke; its owner revokes it now, and the
    // operator must already be using its own.
    assert!(rig.api_key_works(bootstrap.token.expose_secret()).await);
    rig.admin().delete_api_key(&bootstrap.key.id).await.unwrap();
    // A user's Secret is not taken over: no owner reference.
    assert!(
        rig.secret(ADMIN_SECRET)
            .await
            .unwrap()
            .owner_references()
            .is_empty()
    );

    rig.request_rotation(
        "operator",
        running.clock.now() + jiff::SignedDuration::from_secs(1),
    )
    .await;
    rig.create(&entry("fonts", "https://fonts.example.com"))
        .await;
    rig.wait_settled("operator", 2).await;
    let own2 = rig
        .secret_value(ADMIN_SECRET, ADMIN_SECRET_KEY)
        .await
        .unwrap();

    // The operator now works with its new key only: a new entry still syncs.
    rig.create(&entry("live", "https://live.example.com")).await;
    for name in ["cdn", "fonts", "live"] {
        support::eventually(&format!("CspEntry {name} Ready"), DEADLINE, || async {
            entries.get(name).await.ok().filter(|e| ready(e))
        })
        .await;
    }
    assert!(rig.api_key_works(&own2).await);
    let keys = rig.keys_of(&created).await;
    assert_eq!(
        keys.len(),
        1,
        "{keys:?} {:?}",
        rig.rotation("operator").await.status
    );
    let refused: Vec<_> = rig
        .requests()
        .await
        .into_iter()
        .filter(|r| r["status"] == 401)
        .collect();
    assert!(refused.is_empty(), "the operator was refused: {refused:?}");
    // Probed last: the test's own refused request would count above.
    assert!(
        !rig.api_key_works(&own1).await,
        "the operator's previous key is revoked"
    );
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn credentials_never_reach_logs_status_or_events() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // The test's current-thread runtime runs the controller's tasks on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);

    let rig = Rig::start(|_| {}).await;
    let _running = Running::start(&rig, false);
    let key = rig
        .create(&api_key_rotation("key", "key-qlik", Duration::ZERO))
        .await;
    let oauth = rig
        .create(&oauth_rotation("m2m", "m2m-secret", Duration::ZERO))
        .await;
    rig.wait_settled("key", 1).await;
    rig.wait_settled("m2m", 1).await;
    let mut values = vec![
        rig.secret_value("key-qlik", "token").await.unwrap(),
        rig.secret_value("m2m-secret", "client-secret")
            .await
            .unwrap(),
    ];
    rig.request_rotation(
        "key",
        jiff::Timestamp::now() + jiff::SignedDuration::from_secs(1),
    )
    .await;
    rig.wait_settled("key", 2).await;
    values.push(rig.secret_value("key-qlik", "token").await.unwrap());

    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        logged.contains("secret-rotation"),
        "the capture works: {logged:.300}"
    );
    let statuses = [
        serde_json::to_string(&rig.rotation("key").await.status).unwrap(),
        serde_json::to_string(&rig.rotation("m2m").await.status).unwrap(),
    ];
    let events: kube::Api<Event> = rig.api();
    let events =
        serde_json::to_string(&events.list(&ListParams::default()).await.unwrap()).unwrap();
    for value in &values {
        assert!(
            !logged.contains(value.as_str()),
            "a credential is in the logs"
        );
        for status in &statuses {
            assert!(
                !status.contains(value.as_str()),
                "a credential is in a status"
            );
        }
        assert!(
            !events.contains(value.as_str()),
            "a credential is in an event"
        );
    }
    drop((key, oauth));
}
