//! `SecretPush` against a real kube-apiserver and the tenant emulator: each target gets the
//! Secret's values when the SecretPush is created and once more per change of the Secret
//! (the emulator counts the tenant writes); the email password goes in with a `PUT` of the
//! whole configuration, which keeps the fields the operator does not own; Qlik's check and
//! SMTP verification failures are conditions, and a password the tenant's own check refuses
//! is not saved (the old one stays) nor retried; a deleted Secret is a condition and nothing is pushed; a restarted controller
//! pushes nothing it already pushed; a data connection that uses interactive OAuth is
//! refused once, not retried.
//!
//! The controller runs in process; the Secret is read by name every `pollEvery` (10 s
//! here), and with the metadata watch of labelled Secrets on, a change arrives without
//! waiting for the poll. Waits are on conditions with deadlines, never sleeps.

mod support;

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, Patch, PatchParams};
use qlik_csp_operator::api::SecretPush;
use qlik_csp_operator::api::secret_push::PUSH_SOURCE_LABEL;
use qlik_csp_operator::controller::secret_push::digest::KEY_SECRET_NAME;
use serde_json::{Value, json};
use support::eventually;
use support::tenant_rig::{Controller, DEADLINE, TENANT, TenantRig, from_json, meta};

/// Long enough for the secret scan of the end-to-end suite, distinct per use.
const DB_PASSWORD: &str = "db-password-0123456789-first";
const DB_PASSWORD_2: &str = "db-password-0123456789-second";
const CRM_TOKEN: &str = "crm-token-0123456789-first";
const CRM_TOKEN_2: &str = "crm-token-0123456789-second";
const SMTP_PASSWORD: &str = "smtp-password-0123456789-first";
const SMTP_PASSWORD_2: &str = "smtp-password-0123456789-second";
const SEEDED_SMTP_PASSWORD: &str = "seeded-smtp-password";

/// The controller with the Secret watch on or off (`--watch-push-secrets`).
async fn start_with(watch_secrets: bool) -> TenantRig {
    let rig = TenantRig::builder()
        .shared(move |shared| shared.settings.watch_push_secrets = watch_secrets)
        .run(Controller::SecretPush)
        .start()
        .await;
    rig.create_admin_secret().await;
    rig.create(&rig.qlik_tenant(TENANT, json!({}))).await;
    rig
}

/// Without the Secret watch: changes arrive with the poll (`pollEvery: 10s`).
async fn start() -> TenantRig {
    start_with(false).await
}

/// A Secret opted in to the controller's metadata watch.
fn source(name: &str, data: &[(&str, &str)]) -> Secret {
    let mut metadata = meta(name);
    metadata.labels = Some(BTreeMap::from([(
        PUSH_SOURCE_LABEL.to_owned(),
        "true".to_owned(),
    )]));
    Secret {
        metadata,
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Secret::default()
    }
}

fn push(name: &str, secret: &str, target: Value) -> SecretPush {
    push_polling(name, secret, target, "10s")
}

fn push_polling(name: &str, secret: &str, target: Value, poll_every: &str) -> SecretPush {
    from_json(json!({
        "apiVersion": "qlikops.io/v1alpha1", "kind": "SecretPush",
        "metadata": { "name": name },
        "spec": {
            "tenantRef": { "name": TENANT },
            "secretName": secret,
            "target": target,
            "pollEvery": poll_every,
        },
    }))
}

/// What this suite asks of the rig.
impl TenantRig {
    async fn set_secret(&self, name: &str, key: &str, value: &str) {
        let patch = json!({ "stringData": { key: value } });
        self.api::<Secret>()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }

    /// The Ready condition's (status, reason, message) once `ready` holds for it.
    async fn wait_ready(
        &self,
        name: &str,
        what: &str,
        ready: impl Fn(&str, &str) -> bool,
    ) -> (String, String, String) {
        let pushes = self.api::<SecretPush>();
        eventually(&format!("{name}: {what}"), DEADLINE, || async {
            let push = pushes.get(name).await.ok()?;
            let c = push
                .status?
                .conditions
                .into_iter()
                .find(|c| c.type_ == "Ready")?;
            ready(&c.status, &c.reason).then_some((c.status, c.reason, c.message))
        })
        .await
    }

    async fn pushes_of(&self, name: &str) -> i64 {
        let push = self.api::<SecretPush>().get(name).await.unwrap();
        push.status.map_or(0, |s| s.pushes)
    }

    /// Successful reconciles of the secret-push controller so far.
    fn reconciles(&self) -> u64 {
        let text = self.shared.runtime.metrics.encode(jiff::Timestamp::now());
        text.lines()
            .find_map(|line| {
                line.strip_prefix(
                    r#"qlikops_reconcile_total{controller="secret-push",result="success"} "#,
                )
            })
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    }

    /// Waits until the controller has reconciled `n` more times (its polls).
    async fn wait_reconciles(&self, n: u64) {
        let from = self.reconciles();
        eventually(&format!("{n} more reconciles"), DEADLINE, || async {
            (self.reconciles() >= from + n).then_some(())
        })
        .await;
    }
}

/// Seeds the three targets; their ids.
async fn seed_targets(rig: &TenantRig) -> (String, String) {
    let connection = rig
        .control
        .add_data_connection(json!({
            "name": "warehouse", "type": "postgres", "username": "old", "password": "seeded-db-password",
        }))
        .await;
    let crm = rig
        .control
        .add_automation_connection(json!({
            "name": "crm",
            "params": [
                { "name": "region", "value": "eu" },
                { "name": "apiKey", "value": "seeded-crm-token", "secret": true },
            ],
        }))
        .await;
    let crm = crm["id"].as_str().unwrap().to_owned();
    rig.control
        .put_email_config(json!({
            "username": "mailer", "password": SEEDED_SMTP_PASSWORD,
            "serverAddress": "smtp.acme.example", "serverPort": 2525,
            "securityType": "SSL/TLS", "senderName": "Acme reports",
        }))
        .await;
    (connection, crm)
}

async fn create_pushes(rig: &TenantRig, crm: &str) {
    rig.create(&source(
        "db",
        &[("username", "app"), ("password", DB_PASSWORD)],
    ))
    .await;
    rig.create(&source("crm", &[("token", CRM_TOKEN)])).await;
    rig.create(&source("smtp", &[("password", SMTP_PASSWORD)]))
        .await;
    let db = json!({ "dataConnection": { "name": "warehouse",
        "fields": { "qUsername": "username", "qPassword": "password" } } });
    let crm = json!({ "automationConnection": { "id": crm, "fields": { "apiKey": "token" } } });
    let smtp = json!({ "tenantEmail": { "fields": { "emailPassword": "password" } } });
    rig.create(&push("db", "db", db)).await;
    rig.create(&push("crm", "crm", crm)).await;
    rig.create(&push("smtp", "smtp", smtp)).await;
}

fn is_ready(status: &str, _: &str) -> bool {
    status == "True"
}

#[tokio::test]
async fn each_target_gets_the_values_on_create_and_once_more_per_change() {
    let rig = start().await;
    let (connection, crm) = seed_targets(&rig).await;
    create_pushes(&rig, &crm).await;
    for name in ["db", "crm", "smtp"] {
        rig.wait_ready(name, "pushed", is_ready).await;
    }
    let held = rig.control.data_connection(&connection).await;
    assert_eq!(
        (held["username"].as_str(), held["password"].as_str()),
        (Some("app"), Some(DB_PASSWORD))
    );
    let held = rig.control.automation_connection(&crm).await;
    let api_key = held["params"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "apiKey");
    assert_eq!(api_key.and_then(|p| p["value"].as_str()), Some(CRM_TOKEN));
    let region = held["params"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "region");
    assert_eq!(
        region.and_then(|p| p["value"].as_str()),
        Some("eu"),
        "other parameters stay"
    );
    let email = rig.control.email_config().await;
    assert_eq!(email["password"], SMTP_PASSWORD);
    // The PUT replaced the whole configuration: everything but the password is as it was.
    assert_eq!(
        (
            &email["username"],
            &email["serverAddress"],
            &email["serverPort"],
            &email["securityType"],
            &email["senderName"],
            &email["emailAddress"],
        ),
        (
            &json!("mailer"),
            &json!("smtp.acme.example"),
            &json!(2525),
            &json!("SSL/TLS"),
            &json!("Acme reports"),
            &json!("noreply@example.com"),
        )
    );
    let status = rig
        .api::<SecretPush>()
        .get("db")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(status.target_id.as_deref(), Some(connection.as_str()));
    assert!(status.pushed_digest.unwrap().starts_with("hmac-sha256:"));
    let control = &rig.control;
    let writes = |op| control.count(op);
    assert_eq!(writes("data-connections.patch").await, 1);
    assert_eq!(writes("automation-connections.put").await, 1);
    assert_eq!(writes("email-config.put").await, 1);
    assert_eq!(
        writes("email-config.patch").await,
        0,
        "the sunset PATCH is not used"
    );

    // One change of each Secret: one more write each, at the next poll.
    rig.set_secret("db", "password", DB_PASSWORD_2).await;
    rig.set_secret("crm", "token", CRM_TOKEN_2).await;
    rig.set_secret("smtp", "password", SMTP_PASSWORD_2).await;
    for name in ["db", "crm", "smtp"] {
        eventually(&format!("{name} pushed twice"), DEADLINE, || async {
            (rig.pushes_of(name).await == 2).then_some(())
        })
        .await;
    }
    assert_eq!(
        rig.control.data_connection(&connection).await["password"],
        DB_PASSWORD_2
    );
    assert_eq!(
        rig.control.email_config().await["password"],
        SMTP_PASSWORD_2
    );
    // Every SecretPush polled its Secret again since: still one write per change.
    rig.wait_reconciles(3).await;
    assert_eq!(writes("data-connections.patch").await, 2);
    assert_eq!(writes("automation-connections.put").await, 2);
    assert_eq!(writes("email-config.put").await, 2);

    // No value reached a status or an event (the end-to-end suite scans the logs too).
    let statuses = serde_json::to_string(
        &rig.api::<SecretPush>()
            .list(&Default::default())
            .await
            .unwrap(),
    )
    .unwrap();
    let events =
        serde_json::to_string(&rig.api::<Event>().list(&Default::default()).await.unwrap())
            .unwrap();
    assert!(events.contains("Pushed"), "the events were recorded");
    for value in [
        DB_PASSWORD,
        DB_PASSWORD_2,
        CRM_TOKEN,
        CRM_TOKEN_2,
        SMTP_PASSWORD,
        SMTP_PASSWORD_2,
    ] {
        assert!(!statuses.contains(value), "a pushed value is in a status");
        assert!(!events.contains(value), "a pushed value is in an event");
    }
}

#[tokio::test]
async fn a_failed_check_or_verification_is_a_condition_with_qliks_answer() {
    let rig = start().await;
    let (_, crm) = seed_targets(&rig).await;
    rig.control.set_check(&crm, false).await;
    // The SMTP server echoes the password: it must not reach the condition.
    rig.control
        .set_verify(json!({ "success": false,
            "message": format!("535 5.7.8 authentication failed for {SMTP_PASSWORD}") }))
        .await;
    create_pushes(&rig, &crm).await;
    let failed = |status: &str, reason: &str| status == "False" && reason == "VerificationFailed";
    let (_, _, crm_message) = rig.wait_ready("crm", "check failed", failed).await;
    assert!(crm_message.contains("not connected"), "{crm_message}");
    let (_, _, smtp_message) = rig.wait_ready("smtp", "verification failed", failed).await;
    // The tenant checks the connection before it saves: the PUT was refused, with Qlik's
    // code and title, and the old password is still the tenant's.
    assert!(
        smtp_message.contains("EMAIL-CONFIG-VERIFICATION-FAILED"),
        "{smtp_message}"
    );
    assert!(smtp_message.contains("535"), "{smtp_message}");
    assert!(smtp_message.contains("old one stays"), "{smtp_message}");
    assert!(!smtp_message.contains(SMTP_PASSWORD));
    assert_eq!(
        rig.control.email_config().await["password"],
        SEEDED_SMTP_PASSWORD
    );
    let status = rig
        .api::<SecretPush>()
        .get("smtp")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(status.pushes, 0, "a refused PUT is no push");
    assert!(status.refused.is_some(), "{status:?}");
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Stalled" && c.status == "True"),
        "{status:?}"
    );
    // Refused for good: the same values are not sent again (for an hour), and there is no
    // saved password to verify.
    rig.wait_reconciles(3).await;
    assert_eq!(rig.control.count("email-config.put").await, 1);
    assert_eq!(rig.control.count_status("email-config.put", "400").await, 1);
    assert_eq!(rig.control.count("email-config.patch").await, 0);
    assert_eq!(rig.control.count("email-config.verify-connection").await, 0);
}

#[tokio::test]
async fn a_deleted_secret_is_reported_by_name_and_nothing_is_pushed() {
    let rig = start().await;
    let (_, crm) = seed_targets(&rig).await;
    create_pushes(&rig, &crm).await;
    rig.wait_ready("smtp", "pushed", is_ready).await;
    rig.api::<Secret>()
        .delete("smtp", &DeleteParams::default())
        .await
        .unwrap();
    let gone = |status: &str, reason: &str| status == "False" && reason == "SecretNotFound";
    let (_, _, message) = rig.wait_ready("smtp", "Secret missing", gone).await;
    assert!(message.contains(&format!("{}/smtp", rig.ns())), "{message}");
    rig.wait_reconciles(3).await;
    assert_eq!(rig.control.count("email-config.put").await, 1);
    assert_eq!(rig.control.email_config().await["password"], SMTP_PASSWORD);
}

#[tokio::test]
async fn a_restarted_controller_pushes_nothing_it_already_pushed() {
    let mut rig = start().await;
    let (_, crm) = seed_targets(&rig).await;
    create_pushes(&rig, &crm).await;
    for name in ["db", "crm", "smtp"] {
        rig.wait_ready(name, "pushed", is_ready).await;
    }
    rig.stop();
    rig.start_controller(Controller::SecretPush);
    // Each SecretPush is reconciled at start (its first watch event) and polled after.
    rig.wait_reconciles(6).await;
    assert_eq!(rig.control.count("data-connections.patch").await, 1);
    assert_eq!(rig.control.count("automation-connections.put").await, 1);
    assert_eq!(rig.control.count("email-config.put").await, 1);
    // What made that possible: the digest key outlives the process, in the operator's
    // namespace.
    rig.api::<Secret>().get(KEY_SECRET_NAME).await.unwrap();
}

#[tokio::test]
async fn an_interactive_oauth_connection_is_refused_once_and_not_retried() {
    let rig = start().await;
    rig.control
        .add_data_connection(
            json!({ "name": "drive", "type": "google-drive", "interactiveOAuth": true }),
        )
        .await;
    rig.create(&source("drive", &[("password", DB_PASSWORD)]))
        .await;
    let target =
        json!({ "dataConnection": { "name": "drive", "fields": { "qPassword": "password" } } });
    rig.create(&push("drive", "drive", target)).await;
    let refused = |status: &str, reason: &str| status == "False" && reason == "Unsupported";
    let (_, _, message) = rig.wait_ready("drive", "refused", refused).await;
    assert!(message.contains("interactive OAuth"), "{message}");
    let stalled = rig
        .api::<SecretPush>()
        .get("drive")
        .await
        .unwrap()
        .status
        .unwrap();
    assert!(
        stalled
            .conditions
            .iter()
            .any(|c| c.type_ == "Stalled" && c.status == "True")
    );
    let tries = rig.control.count("data-connections.get").await;
    rig.wait_reconciles(2).await;
    assert_eq!(
        rig.control.count("data-connections.get").await,
        tries,
        "not retried"
    );
    assert_eq!(rig.control.count("data-connections.patch").await, 0);
}

#[tokio::test]
async fn with_the_secret_watch_a_labelled_secret_is_pushed_without_waiting_for_the_poll() {
    let rig = start_with(true).await;
    rig.control
        .put_email_config(json!({ "username": "mailer", "password": SEEDED_SMTP_PASSWORD }))
        .await;
    rig.create(&source("smtp", &[("password", SMTP_PASSWORD)]))
        .await;
    let smtp = json!({ "tenantEmail": { "fields": { "emailPassword": "password" } } });
    // A poll a day: only the watch can bring the change within the deadline.
    rig.create(&push_polling("smtp", "smtp", smtp, "24h")).await;
    rig.wait_ready("smtp", "pushed", is_ready).await;
    rig.set_secret("smtp", "password", SMTP_PASSWORD_2).await;
    eventually("the changed password in the tenant", DEADLINE, || async {
        (rig.control.email_config().await["password"] == SMTP_PASSWORD_2).then_some(())
    })
    .await;
    assert_eq!(rig.control.count("email-config.put").await, 2);
}
