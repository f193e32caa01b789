//! The `secret-rotation` controller against a real kube-apiserver and the tenant emulator:
//! full API key and OAuth secret rotations (expiry capping, schedule, manual trigger, grace
//! period, `<key>.previous`, rollout annotation), self-rotation while CspEntries keep
//! syncing, a Secret deleted by a user, a credential revoked in the console, and no value
//! (automation execution tokens included) in logs, status or events. Automation token
//! rotations have their own suite, `tests/automation_token_rotation.rs`.
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
use qlik_csp_operator::api::csp_entry::DirectiveName;
use qlik_csp_operator::api::ownership::{ALLOW_ROTATION_BY, MANAGED_BY, MANAGED_BY_LABEL};
use qlik_csp_operator::api::secret_rotation::{
    CREDENTIAL_REVISION, RolloutTarget, SECRET_ROTATION_LABEL, WorkloadKind,
    secret_rotation_label_value,
};
use qlik_csp_operator::api::{CspEntry, SecretRotation};
use qlik_csp_operator::controller::secret_rotation::Clock;
use qlik_csp_operator::tenant::{ApiKeyStatus, NewApiKey};
use rotation_rig::*;
use secrecy::ExposeSecret;
use serde_json::json;

fn uid(rotation: &SecretRotation) -> String {
    rotation.metadata.uid.clone().unwrap()
}

#[tokio::test]
async fn an_api_key_rotates_on_schedule_with_capped_expiry_grace_period_and_rollout() {
    let rig = Rig::start(|c| c.max_api_key_expiry = "PT1H".to_owned()).await;
    let running = Running::start_keeping_grace(&rig, false);
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
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("SecretRotation", uid(&created).as_str(), Some(true))
    );
    assert_eq!(
        secret.labels().get(MANAGED_BY_LABEL).map(String::as_str),
        Some(MANAGED_BY)
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
    let done = rig.settle("reports", 2, "api-keys.list").await;
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
    assert_eq!(rig.count("api-keys.create").await, 2, "two keys created");
    assert_eq!(
        rig.count("api-keys.delete").await,
        1,
        "the first one revoked"
    );
    // Two rotations, each rolled out (one target missing); the first had nothing to
    // revoke.
    assert_eq!(
        rig.event_counts(&created).await,
        events(&[
            ("Normal", "RotationStarted", 2),
            ("Normal", "Created", 2),
            ("Normal", "RolledOut", 2),
            ("Warning", "RolloutTargetMissing", 2),
            ("Normal", "Revoked", 1),
        ])
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
    let second = rig.settle("m2m", 2, "oauth-clients.get").await;
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
    rig.settle("m2m", 3, "oauth-clients.get").await;
    let secret3 = rig
        .secret_value("m2m-secret", "client-secret")
        .await
        .unwrap();
    assert!(rig.client_secret_works(&secret3).await);
    assert_eq!(rig.hints().await.len(), 2);
    // Three rotations, no more (the same request annotation does not rotate again); the
    // first had nothing to revoke.
    assert_eq!(rig.count("oauth-clients.create-secret").await, 3);
    assert_eq!(rig.count("oauth-clients.delete-secret").await, 2);
    assert_eq!(
        rig.event_counts(&created).await,
        events(&[
            ("Normal", "RotationStarted", 3),
            ("Normal", "Created", 3),
            ("Normal", "Revoked", 2),
        ])
    );
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
    let recreated = rig.settle("app", 2, "api-keys.list").await;
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
    assert_eq!(rig.count("api-keys.create").await, 2);
    assert_eq!(rig.count("api-keys.delete").await, 1, "the lost key");
    assert_eq!(
        rig.event_counts(&created).await,
        events(&[
            ("Normal", "RotationStarted", 1),
            ("Warning", "SecretMissing", 1),
            ("Normal", "Created", 2),
            ("Normal", "Revoked", 1),
        ])
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

    let second = rig.settle("app", 2, "api-keys.list").await;
    let token2 = rig.secret_value("app-qlik", "token").await.unwrap();
    assert!(rig.api_key_works(&token2).await);
    assert_ne!(second.status.unwrap().current.unwrap().id.unwrap(), id1);
    let keys = rig.keys_of(&created).await;
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].status, ApiKeyStatus::Active);
    assert_eq!(rig.count("api-keys.create").await, 2);
    assert_eq!(
        rig.count("api-keys.delete").await,
        1,
        "the console's: nothing left to revoke"
    );
    assert_eq!(
        rig.event_counts(&created).await,
        events(&[
            ("Normal", "RotationStarted", 1),
            ("Warning", "CredentialRevoked", 1),
            ("Normal", "Created", 2),
        ])
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
    // A Secret of the user's (opened to the rotation) stays: its key keeps working.
    rig.create(&users_secret(
        "users-secret",
        &[("note", "kept")],
        Some("users"),
    ))
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
    let key = rig.settle("key", 1, "api-keys.list").await;
    let m2m = rig.settle("m2m", 1, "oauth-clients.get").await;
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
        support::tenant_rig::csp_entry(name, origin, &[DirectiveName::ScriptSrc], false)
    };
    let ready = |e: &CspEntry| {
        e.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
    };
    rig.create(&entry("cdn", "https://cdn.example.com")).await;

    // The SecretRotation rotates the very key the QlikTenant authenticates with: the
    // Secret's owner opts in.
    let opt_in = json!({ "metadata": { "annotations": { ALLOW_ROTATION_BY: "operator" } } });
    rig.api::<Secret>()
        .patch(
            ADMIN_SECRET,
            &PatchParams::default(),
            &Patch::Merge(&opt_in),
        )
        .await
        .unwrap();
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
    let (automation, seeded_token) = rig.seed_automation("Relay", "available").await;
    let token = rig
        .create(&automation_rotation(
            "relay",
            "relay-run",
            &automation,
            Duration::ZERO,
        ))
        .await;
    rig.wait_settled("key", 1).await;
    rig.wait_settled("m2m", 1).await;
    rig.wait_settled("relay", 1).await;
    let mut values = vec![
        rig.secret_value("key-qlik", "token").await.unwrap(),
        rig.secret_value("m2m-secret", "client-secret")
            .await
            .unwrap(),
        rig.secret_value("relay-run", "token").await.unwrap(),
        seeded_token,
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
        serde_json::to_string(&rig.rotation("relay").await.status).unwrap(),
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
    drop((key, oauth, token));
}

fn ready_of(rotation: &SecretRotation) -> (String, String, String) {
    condition(rotation, "Ready").map_or_else(Default::default, |c| {
        (c.status.clone(), c.reason.clone(), c.message.clone())
    })
}

/// A Secret of the user's named by a SecretRotation without the user's consent is never
/// written and nothing is created for it; with the opt-in annotation it is rotated, and
/// never gets an owner reference.
#[tokio::test]
async fn a_users_secret_is_written_only_after_it_opts_in_and_nothing_is_created_before() {
    let rig = Rig::start(|_| {}).await;
    let _running = Running::start(&rig, false);
    let db = rig
        .create(&users_secret("db", &[("password", "x")], None))
        .await;
    let mut rotation = api_key_rotation("db-password", "db", Duration::ZERO);
    rotation.spec.secret.key = "password".to_owned();
    rig.create(&rotation).await;
    // Another SecretRotation's own Secret is not this one's either.
    rig.create(&api_key_rotation("first", "shared-qlik", Duration::ZERO))
        .await;
    rig.wait_settled("first", 1).await;
    let shared_before = rig.secret("shared-qlik").await.unwrap();
    rig.create(&api_key_rotation("second", "shared-qlik", Duration::ZERO))
        .await;

    for name in ["db-password", "second"] {
        let refused = rig
            .wait_rotation(name, "Ready=False SecretNotOwned", |r| {
                condition(r, "Ready").is_some_and(|c| c.reason == "SecretNotOwned")
            })
            .await;
        let (status, _, message) = ready_of(&refused);
        assert_eq!(status, "False");
        assert!(
            message.contains(&format!("qlikops.io/allow-rotation-by={name}")),
            "{message}"
        );
        assert_eq!(condition(&refused, "Stalled").unwrap().status, "True");
    }
    rig.wait_reconciles("api-keys.list", 3).await;
    assert_eq!(
        rig.count("api-keys.create").await,
        1,
        "only the first SecretRotation's own Secret got a key"
    );
    let untouched = rig.secret("db").await.unwrap();
    assert_eq!(
        untouched.metadata.resource_version, db.metadata.resource_version,
        "the user's Secret is not written"
    );
    let shared_after = rig.secret("shared-qlik").await.unwrap();
    assert_eq!(
        shared_after.metadata.resource_version,
        shared_before.metadata.resource_version
    );

    // The owner opts in: the rotation proceeds, without taking the Secret over.
    let opt_in = json!({ "metadata": { "annotations": { ALLOW_ROTATION_BY: "db-password" } } });
    rig.api::<Secret>()
        .patch("db", &PatchParams::default(), &Patch::Merge(&opt_in))
        .await
        .unwrap();
    rig.wait_settled("db-password", 1).await;
    let rotated = rig.secret("db").await.unwrap();
    assert!(rotated.owner_references().is_empty(), "no owner reference");
    assert_eq!(rotated.labels().get(MANAGED_BY_LABEL), None);
    let token = rig.secret_value("db", "password").await.unwrap();
    assert!(rig.api_key_works(&token).await);
}

/// Secrets written by earlier operator versions carry the controller owner reference to the
/// SecretRotation but not the managed-by label: after an upgrade they are still its own (not
/// `SecretNotOwned`), and the next write labels them.
#[tokio::test]
async fn a_secret_of_an_earlier_version_without_the_label_is_still_rotated_and_labelled() {
    let rig = Rig::start(|_| {}).await;
    let running = Running::start(&rig, false);
    let created = rig
        .create(&api_key_rotation("app", "app-qlik", Duration::ZERO))
        .await;
    rig.wait_settled("app", 1).await;
    let strip = json!({ "metadata": { "labels": { MANAGED_BY_LABEL: null } } });
    rig.api::<Secret>()
        .patch("app-qlik", &PatchParams::default(), &Patch::Merge(&strip))
        .await
        .unwrap();
    assert_eq!(
        rig.secret("app-qlik")
            .await
            .unwrap()
            .labels()
            .get(MANAGED_BY_LABEL),
        None
    );

    rig.request_rotation(
        "app",
        running.clock.now() + jiff::SignedDuration::from_secs(1),
    )
    .await;
    let done = rig.settle("app", 2, "api-keys.list").await;
    let secret = rig.secret("app-qlik").await.unwrap();
    assert_eq!(
        secret.labels().get(MANAGED_BY_LABEL).map(String::as_str),
        Some(MANAGED_BY),
        "the write labels it again"
    );
    let owners: Vec<(&str, Option<bool>)> = secret
        .owner_references()
        .iter()
        .map(|r| (r.uid.as_str(), r.controller))
        .collect();
    assert_eq!(owners, vec![(uid(&created).as_str(), Some(true))]);
    let token = rig.secret_value("app-qlik", "token").await.unwrap();
    assert!(rig.api_key_works(&token).await);
    let keys = rig.keys_of(&created).await;
    assert_eq!(
        keys.iter().map(|k| Some(k.id.clone())).collect::<Vec<_>>(),
        vec![done.status.unwrap().current.unwrap().id]
    );
}

/// A name of 70 characters used to give the Secret an invalid label value: the write failed
/// and the key was deleted and created again every few seconds.
#[tokio::test]
async fn a_seventy_character_name_rotates_once_with_a_valid_label() {
    let rig = Rig::start(|_| {}).await;
    let _running = Running::start(&rig, false);
    let name = format!("reports-{}", "a".repeat(62));
    assert_eq!(name.len(), 70);
    let created = rig
        .create(&api_key_rotation(&name, "long-qlik", Duration::ZERO))
        .await;
    rig.wait_settled(&name, 1).await;
    rig.wait_reconciles("api-keys.list", 3).await;
    assert_eq!(rig.count("api-keys.create").await, 1, "one key created");
    assert_eq!(rig.count("api-keys.delete").await, 0, "none deleted");
    let value = secret_rotation_label_value(&name);
    assert_eq!(value.len(), 63);
    let selected = rig
        .api::<Secret>()
        .list(&ListParams::default().labels(&format!("{SECRET_ROTATION_LABEL}={value}")))
        .await
        .unwrap();
    let names: Vec<String> = selected.items.iter().map(|s| s.name_any()).collect();
    assert_eq!(names, vec!["long-qlik".to_owned()], "the selector finds it");
    assert_eq!(rig.keys_of(&created).await.len(), 1);
}

/// An immutable Secret cannot take a credential: the rotation stalls before creating one.
#[tokio::test]
async fn an_immutable_secret_stalls_the_rotation_and_no_key_is_created_or_deleted() {
    let rig = Rig::start(|_| {}).await;
    let _running = Running::start(&rig, false);
    let mut frozen = users_secret("frozen", &[("token", "x")], Some("frozen"));
    frozen.immutable = Some(true);
    rig.create(&frozen).await;
    rig.create(&api_key_rotation("frozen", "frozen", Duration::ZERO))
        .await;
    // A sustained window: the operator looks at it again and again.
    rig.wait_reconciles("api-keys.list", 6).await;
    assert!(
        rig.count("api-keys.create").await <= 1,
        "at most one key is created for a Secret that cannot be written"
    );
    assert_eq!(rig.count("api-keys.delete").await, 0, "no key is deleted");
    let stalled = rig.rotation("frozen").await;
    let (status, reason, message) = ready_of(&stalled);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "SecretImmutable")
    );
    assert!(message.contains("immutable"), "{message}");
    assert_eq!(condition(&stalled, "Stalled").unwrap().status, "True");
    assert_eq!(rig.count("api-keys.create").await, 0, "nothing was created");
}

/// While the Secret write fails, the credential created for the revision is kept (its value
/// in memory, its id in status) and only the write is retried; once the write goes
/// through, that same credential is published.
#[tokio::test]
async fn a_failing_secret_write_creates_one_credential_and_retries_only_the_write() {
    let rig = Rig::start(|_| {}).await;
    let failing = FailingSecretWrites::install(&rig, "app-qlik").await;
    let _running = Running::start(&rig, false);
    let created = rig
        .create(&api_key_rotation("app", "app-qlik", Duration::ZERO))
        .await;
    support::eventually("a key created", DEADLINE, || async {
        (rig.count("api-keys.create").await >= 1).then_some(())
    })
    .await;
    // A sustained window of failing writes.
    rig.wait_reconciles("api-keys.list", 8).await;
    assert_eq!(
        rig.count("api-keys.create").await,
        1,
        "exactly one key is created while the Secret write fails"
    );
    assert_eq!(rig.count("api-keys.delete").await, 0, "no key is deleted");
    let keys = rig.keys_of(&created).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    let retrying = rig.rotation("app").await;
    let (status, reason, message) = ready_of(&retrying);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "RotationFailing")
    );
    assert!(message.contains("write the Secret"), "{message}");
    assert_eq!(condition(&retrying, "Reconciling").unwrap().status, "True");
    let recorded = retrying.status.as_ref().unwrap().pending.clone().unwrap();
    assert_eq!(
        recorded.created.and_then(|c| c.id).as_deref(),
        Some(keys[0].id.as_str()),
        "the created key is recorded in status"
    );
    // The retries write nothing: no status flipping between reasons.
    rig.wait_reconciles("api-keys.list", 4).await;
    assert_eq!(
        rig.rotation("app").await.metadata.resource_version,
        retrying.metadata.resource_version,
        "a retried write does not rewrite the status"
    );

    failing.remove().await;
    let done = rig.settle("app", 1, "api-keys.list").await;
    assert_eq!(
        done.status.unwrap().current.unwrap().id.as_deref(),
        Some(keys[0].id.as_str()),
        "the key created first is the one published"
    );
    let token = rig.secret_value("app-qlik", "token").await.unwrap();
    assert!(rig.api_key_works(&token).await);
    assert_eq!(rig.count("api-keys.create").await, 1);
    assert_eq!(rig.count("api-keys.delete").await, 0);
}

/// Another user of the tenant writes this SecretRotation's marker (its uid is readable by
/// anyone who can read the SecretRotation) into a key of theirs; status is edited to name
/// that key as the previous one. The operator deletes neither.
#[tokio::test]
async fn a_key_of_another_user_carrying_the_marker_is_never_deleted() {
    let rig = Rig::start(|_| {}).await;
    let running = Running::start(&rig, false);
    let created = rig
        .create(&api_key_rotation("app", "app-qlik", Duration::ZERO))
        .await;
    rig.wait_settled("app", 1).await;
    let forged = rig
        .other_user()
        .create_api_key(&NewApiKey {
            description: format!("not the operator's [qlikops:{}:1]", uid(&created)),
            expiry: None,
        })
        .await
        .unwrap();
    let forged_token = forged.token.expose_secret().to_owned();
    assert_eq!(rig.keys_of(&created).await.len(), 2, "the marker matches");

    // A rotation and its stray sweeps.
    rig.request_rotation(
        "app",
        running.clock.now() + jiff::SignedDuration::from_secs(1),
    )
    .await;
    rig.settle("app", 2, "api-keys.list").await;
    assert!(
        rig.api_key_works(&forged_token).await,
        "the other user's key is not deleted"
    );
    assert_eq!(
        rig.count("api-keys.delete").await,
        1,
        "only the operator's first key"
    );

    // Status names it as the previous credential, due for revoking.
    let edit = json!({ "status": {
        "phase": "Revoking",
        "previous": { "id": forged.key.id, "revokeAfter": "2020-01-01T00:00:00Z" },
    } });
    rig.api::<SecretRotation>()
        .patch_status("app", &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap();
    rig.settle("app", 2, "api-keys.list").await;
    assert_eq!(
        rig.event_counts(&created)
            .await
            .get(&("Warning".to_owned(), "CredentialNotOwned".to_owned())),
        Some(&1),
        "one warning says the key named by status was left alone"
    );
    assert!(
        rig.api_key_works(&forged_token).await,
        "a key named by an edited status is not revoked"
    );
    assert_eq!(rig.count("api-keys.delete").await, 1);
}

/// The operator's create answer is lost while a console user (with the operator's own
/// identity) adds a secret to the same client: the two new hints cannot be told apart, so
/// neither is revoked and the rotation waits for a person.
#[tokio::test]
async fn a_secret_added_in_the_console_during_a_lost_create_is_never_revoked() {
    let rig = Rig::start(|_| {}).await;
    let _running = Running::start(&rig, false);
    let (console_hint, console_secret) =
        console_secret_during_a_lost_create(&rig, &rig.admin()).await;
    let waiting = rig
        .wait_rotation("m2m", "Ready=False AmbiguousSecret", |r| {
            condition(r, "Ready").is_some_and(|c| c.reason == "AmbiguousSecret")
        })
        .await;
    assert_eq!(condition(&waiting, "Stalled").unwrap().status, "True");
    rig.wait_reconciles("oauth-clients.get", 2).await;
    assert!(
        rig.client_secret_works(&console_secret).await,
        "the console user's secret is not revoked"
    );
    assert_eq!(rig.count("oauth-clients.delete-secret").await, 0);
    let hints = rig.hints().await;
    assert_eq!(
        hints.len(),
        3,
        "seeded, console and the lost one: {hints:?}"
    );

    // A person deletes the lost one and resumes.
    let seeded = CLIENT_SECRET[CLIENT_SECRET.len() - 4..].to_owned();
    let lost = hints
        .iter()
        .find(|h| **h != seeded && **h != console_hint)
        .unwrap()
        .clone();
    rig.admin()
        .delete_oauth_client_secret(CLIENT_ID, &lost)
        .await
        .unwrap();
    rig.request_rotation(
        "m2m",
        jiff::Timestamp::now() + jiff::SignedDuration::from_secs(1),
    )
    .await;
    let done = rig.settle("m2m", 1, "oauth-clients.get").await;
    assert!(rig.client_secret_works(&console_secret).await);
    assert_eq!(
        rig.count("oauth-clients.delete-secret").await,
        1,
        "the person's delete; the operator revoked nothing"
    );
    let current = done.status.unwrap().current.unwrap().hint.unwrap();
    let mut hints = rig.hints().await;
    hints.sort();
    let mut expected = vec![seeded, console_hint, current];
    expected.sort();
    assert_eq!(hints, expected);
}

/// As above, but the console user is another user of the tenant: the operator's lost
/// secret is the one new hint its identity created, so it alone is revoked.
#[tokio::test]
async fn another_users_console_secret_survives_a_lost_create_and_the_lost_one_is_revoked() {
    let rig = Rig::start(|_| {}).await;
    let _running = Running::start(&rig, false);
    let (console_hint, console_secret) =
        console_secret_during_a_lost_create(&rig, &rig.other_user()).await;
    let done = rig.settle("m2m", 1, "oauth-clients.get").await;
    assert!(
        rig.client_secret_works(&console_secret).await,
        "the other user's secret is not revoked"
    );
    assert_eq!(
        rig.count("oauth-clients.delete-secret").await,
        1,
        "the lost one"
    );
    let seeded = CLIENT_SECRET[CLIENT_SECRET.len() - 4..].to_owned();
    let current = done.status.unwrap().current.unwrap().hint.unwrap();
    let mut hints = rig.hints().await;
    hints.sort();
    let mut expected = vec![seeded, console_hint, current];
    expected.sort();
    assert_eq!(hints, expected);
}

/// Starts an OAuth rotation whose first create is slowed down; while it is in flight,
/// `console` adds a secret to the client; then the create's answer is lost (a 503 after it
/// took effect). Returns the console secret's hint and value.
async fn console_secret_during_a_lost_create(
    rig: &Rig,
    console: &qlik_csp_operator::tenant::TenantClient,
) -> (String, String) {
    let path = "/api/v1/oauth-clients/*/client-secrets";
    rig.fault(json!({
        "method": "POST", "path": path, "fault": "latency", "latencyMs": 4000, "times": 1,
    }))
    .await;
    rig.create(&oauth_rotation("m2m", "m2m-secret", Duration::ZERO))
        .await;
    support::eventually("the operator's create in flight", DEADLINE, || async {
        rig.faults()
            .await
            .iter()
            .all(|(_, remaining)| *remaining == Some(0))
            .then_some(())
    })
    .await;
    let added = console.create_oauth_client_secret(CLIENT_ID).await.unwrap();
    rig.fault(json!({
        "method": "POST", "path": path, "fault": "status", "status": 503,
        "when": "after", "times": 1,
    }))
    .await;
    (added.hint, added.client_secret.expose_secret().to_owned())
}

/// A deleted SecretRotation revokes a credential it created but could not write, and
/// holds the previous one until its grace period is over.
#[tokio::test]
async fn deletion_revokes_a_created_credential_that_never_reached_the_secret() {
    let rig = Rig::start(|_| {}).await;
    let failing = FailingSecretWrites::install(&rig, "app-qlik").await;
    let _running = Running::start(&rig, false);
    let created = rig
        .create(&api_key_rotation("app", "app-qlik", Duration::ZERO))
        .await;
    rig.wait_rotation("app", "Ready=False RotationFailing", |r| {
        condition(r, "Ready").is_some_and(|c| c.reason == "RotationFailing")
    })
    .await;
    assert!(rig.count("api-keys.create").await >= 1);
    rig.api::<SecretRotation>()
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    support::eventually("the SecretRotation gone", DEADLINE, || async {
        rig.api::<SecretRotation>()
            .get_opt("app")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    failing.remove().await;
    let left = rig.keys_of(&created).await;
    assert!(left.is_empty(), "a key was left on the tenant: {left:?}");
}

#[tokio::test]
async fn deletion_waits_for_the_grace_period_before_revoking_the_previous_credential() {
    let rig = Rig::start(|_| {}).await;
    let running = Running::start_keeping_grace(&rig, false);
    rig.create(&api_key_rotation(
        "app",
        "app-qlik",
        Duration::from_secs(3600),
    ))
    .await;
    rig.wait_settled("app", 1).await;
    let token1 = rig.secret_value("app-qlik", "token").await.unwrap();
    rig.request_rotation(
        "app",
        running.clock.now() + jiff::SignedDuration::from_secs(1),
    )
    .await;
    rig.wait_rotation("app", "revision 2 draining", |r| {
        r.status.as_ref().is_some_and(|s| {
            s.revision == 2 && s.phase == qlik_csp_operator::api::secret_rotation::Phase::Draining
        })
    })
    .await;
    let token2 = rig.secret_value("app-qlik", "token").await.unwrap();
    rig.api::<SecretRotation>()
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    let held = rig
        .wait_rotation("app", "held by its finalizer", |r| {
            condition(r, "Ready").is_some_and(|c| c.reason == "Finalizing")
        })
        .await;
    assert!(held.metadata.deletion_timestamp.is_some());
    assert!(
        rig.api_key_works(&token1).await,
        "the previous key works until its grace period ends"
    );
    running.advance(&rig, Duration::from_secs(3601)).await;
    support::eventually("the SecretRotation gone", DEADLINE, || async {
        rig.api::<SecretRotation>()
            .get_opt("app")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        !rig.api_key_works(&token1).await,
        "the previous key is revoked"
    );
    assert!(
        !rig.api_key_works(&token2).await,
        "the current key goes with its own Secret"
    );
}
