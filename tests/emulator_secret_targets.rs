//! The emulator's secret targets as scenarios over real HTTPS: data connections,
//! automation connections, the email configuration and automations, seeded and read back
//! through the control API (the test's view of the server) and changed through Qlik's
//! endpoints (the operator's view). Conformance to the definitions is
//! `emulator_conformance`'s job; these tests pin the behaviour.

mod support;

use qlik_csp_operator::emulator::{Emulator, EmulatorConfig, codes};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::emulator::EmulatorControl;

const ADMIN: &str = "admin-token-for-secret-target-tests";

struct Tenant {
    emulator: Emulator,
    control: EmulatorControl,
    http: reqwest::Client,
}

/// A Qlik answer: status, raw text (to look for leaked secrets) and JSON.
struct Answer {
    status: StatusCode,
    text: String,
    json: Value,
}

impl Tenant {
    async fn start() -> Tenant {
        let emulator = support::emulator::start(EmulatorConfig {
            admin_api_keys: vec![ADMIN.to_owned()],
            ..EmulatorConfig::default()
        })
        .await;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(emulator.client_tls_config().expect("TLS"))
            .build()
            .expect("a client");
        let control = EmulatorControl::new(&emulator);
        Tenant {
            emulator,
            control,
            http,
        }
    }

    async fn api(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let url = format!("{}{path}", self.emulator.base_url());
        let mut request = self.http.request(method, &url).bearer_auth(ADMIN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, text, json }
    }

    async fn get(&self, path: &str) -> Answer {
        self.api(Method::GET, path, None).await
    }
}

fn patch(path: &str, value: &str) -> Value {
    json!([{ "op": "replace", "path": path, "value": value }])
}

#[tokio::test]
async fn pushed_secrets_are_stored_and_never_returned() {
    let t = Tenant::start().await;
    let id = t
        .control
        .add_data_connection(
            json!({"name": "warehouse", "username": "svc", "password": "seeded-pw-1"}),
        )
        .await;
    let one = format!("/api/v1/data-connections/{id}");
    let pushed = t
        .api(
            Method::PATCH,
            &one,
            Some(patch("/qPassword", "pushed-pw-2")),
        )
        .await;
    assert_eq!(pushed.status, StatusCode::NO_CONTENT);
    let put = json!({"qID": id, "qEngineObjectID": id, "qName": "warehouse", "qType": "postgres",
                     "qConnectStatement": "CUSTOM CONNECT TO \"provider=postgres\"",
                     "qConnectionSecret": "pushed-secret-3"});
    assert_eq!(
        t.api(Method::PUT, &one, Some(put)).await.status,
        StatusCode::NO_CONTENT
    );
    for answer in [t.get(&one).await, t.get("/api/v1/data-connections").await] {
        assert_eq!(answer.status, StatusCode::OK);
        for secret in ["seeded-pw-1", "pushed-pw-2", "pushed-secret-3"] {
            assert!(
                !answer.text.contains(secret),
                "{secret} leaked: {}",
                answer.text
            );
        }
    }
    let held = t.control.data_connection(&id).await;
    assert_eq!(held["password"], "pushed-pw-2");
    assert_eq!(held["connectionSecret"], "pushed-secret-3");
    assert_eq!(held["username"], "svc", "PUT without qUsername keeps it");
    assert_eq!(held["credentialWrites"], 2);

    let seeded = t
        .control
        .add_automation_connection(json!({"name": "crm", "params": [
            {"name": "apiKey", "value": "seeded-key-4", "secret": true},
            {"name": "region", "value": "eu"},
        ]}))
        .await;
    let conn = seeded["id"].as_str().unwrap();
    let key_id = seeded["params"][0]["id"].as_str().unwrap();
    let path = format!("/api/v1/automation-connections/{conn}");
    let body = json!({"params": [{"id": key_id, "value": "pushed-key-5"}]});
    let put = t.api(Method::PUT, &path, Some(body)).await;
    assert_eq!(put.status, StatusCode::OK);
    for answer in [put, t.get(&path).await] {
        assert!(!answer.text.contains("seeded-key-4") && !answer.text.contains("pushed-key-5"));
        assert_eq!(answer.json["params"][1]["value"], "eu");
    }
    let held = t.control.automation_connection(conn).await;
    assert_eq!(held["params"][0]["value"], "pushed-key-5");
    assert_eq!(held["credentialWrites"], 1);

    t.control
        .put_email_config(json!({"username": "mailer"}))
        .await;
    let email = "/api/v1/transports/email-config";
    assert_eq!(t.get(email).await.json["passwordExists"], false);
    let pushed = t
        .api(
            Method::PATCH,
            email,
            Some(patch("/emailPassword", "smtp-pw-6")),
        )
        .await;
    assert_eq!(pushed.status, StatusCode::NO_CONTENT);
    let got = t.get(email).await;
    assert_eq!(got.json["passwordExists"], true);
    assert!(!got.text.contains("smtp-pw-6"), "{}", got.text);
    let held = t.control.email_config().await;
    assert_eq!(
        (&held["password"], &held["username"]),
        (&json!("smtp-pw-6"), &json!("mailer"))
    );
    assert_eq!(held["credentialWrites"], 1);
}

#[tokio::test]
async fn a_put_replaces_the_email_config_only_when_its_connection_check_passes() {
    let t = Tenant::start().await;
    t.control
        .put_email_config(json!({"username": "mailer", "password": "old-pw-7",
                                 "senderName": "Reports", "securityType": "SSL/TLS"}))
        .await;
    let email = "/api/v1/transports/email-config";
    let put = |password: &str| {
        json!({"serviceProvider": "BasicAuth", "providerConfig": {
            "serverAddress": "smtp.example.com", "serverPort": 587,
            "emailAddress": "noreply@example.com", "username": "svc", "emailPassword": password}})
    };

    // The check fails: 400 UpdateEmailConfigError, and the tenant keeps what it had.
    t.control
        .set_verify(json!({"success": false, "message": "535 5.7.8 bad new-pw-8"}))
        .await;
    let refused = t.api(Method::PUT, email, Some(put("new-pw-8"))).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        refused.json["errors"][0]["code"],
        codes::EMAIL_CONFIG_VERIFICATION_FAILED
    );
    let held = t.control.email_config().await;
    assert_eq!(
        (&held["password"], &held["username"], &held["senderName"]),
        (&json!("old-pw-7"), &json!("mailer"), &json!("Reports"))
    );
    assert_eq!(held["credentialWrites"], 0);
    let judged = t.get(email).await.json;
    assert_eq!(
        (&judged["errorCode"], &judged["authFailures"]),
        (&json!("OK"), &json!(0)),
        "a refused PUT changes nothing"
    );

    // The check passes: the body is the whole configuration (no senderName, no
    // securityType now), and the password is never answered.
    t.control.set_verify(json!({"success": true})).await;
    let saved = t.api(Method::PUT, email, Some(put("new-pw-8"))).await;
    assert_eq!(saved.status, StatusCode::NO_CONTENT);
    let held = t.control.email_config().await;
    assert_eq!(
        (
            &held["password"],
            &held["username"],
            &held["credentialWrites"]
        ),
        (&json!("new-pw-8"), &json!("svc"), &json!(1))
    );
    assert_eq!(
        (&held["senderName"], &held["securityType"]),
        (&Value::Null, &Value::Null),
        "PUT replaces, it does not merge"
    );
    let got = t.get(email).await;
    assert!(!got.text.contains("new-pw-8"), "{}", got.text);
    assert_eq!(
        (&got.json["passwordExists"], &got.json["errorCode"]),
        (&json!(true), &json!("OK"))
    );
    // A PUT without a password cannot be checked: refused before any check.
    let mut without = put("x");
    without["providerConfig"]
        .as_object_mut()
        .unwrap()
        .remove("emailPassword");
    let incomplete = t.api(Method::PUT, email, Some(without)).await;
    assert_eq!(
        (incomplete.status, &incomplete.json["errors"][0]["code"]),
        (
            StatusCode::BAD_REQUEST,
            &json!(codes::EMAIL_CONFIG_INPUT_CHECK)
        )
    );
    assert_eq!(t.control.email_config().await["credentialWrites"], 1);
}

#[tokio::test]
async fn an_interactive_oauth_connection_refuses_credentials_but_not_a_rename() {
    let t = Tenant::start().await;
    let id = t
        .control
        .add_data_connection(
            json!({"name": "sfdc", "type": "salesforce", "interactiveOAuth": true}),
        )
        .await;
    let one = format!("/api/v1/data-connections/{id}");
    for field in ["/qPassword", "/qUsername", "/qConnectionSecret"] {
        let refused = t.api(Method::PATCH, &one, Some(patch(field, "x"))).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{field}");
        assert_eq!(
            refused.json["errors"][0]["code"],
            codes::DATA_CONNECTION_INTERACTIVE_OAUTH
        );
    }
    let put = json!({"qID": id, "qEngineObjectID": id, "qName": "sfdc", "qType": "salesforce",
                     "qConnectStatement": "x", "qPassword": "x"});
    assert_eq!(
        t.api(Method::PUT, &one, Some(put)).await.status,
        StatusCode::BAD_REQUEST
    );
    let renamed = t
        .api(Method::PATCH, &one, Some(patch("/qName", "sfdc-2")))
        .await;
    assert_eq!(renamed.status, StatusCode::NO_CONTENT);
    let held = t.control.data_connection(&id).await;
    assert_eq!(
        (&held["name"], &held["password"], &held["credentialWrites"]),
        (&json!("sfdc-2"), &Value::Null, &json!(0))
    );
}

#[tokio::test]
async fn connections_are_found_by_name_and_listed_under_the_data_name_asked_for() {
    let t = Tenant::start().await;
    let id = t
        .control
        .add_data_connection(json!({"name": "by name"}))
        .await;
    let by_name = "/api/v1/data-connections/by%20name?type=connectionname";
    assert_eq!(t.get(by_name).await.json["qID"], json!(id));
    let pushed = t
        .api(Method::PATCH, by_name, Some(patch("/qPassword", "pw")))
        .await;
    assert_eq!(pushed.status, StatusCode::NO_CONTENT);
    assert_eq!(t.control.data_connection(&id).await["password"], "pw");
    let listed = t.get("/api/v1/data-connections?dataName=connections").await;
    assert_eq!(listed.json["connections"][0]["qID"], json!(id));
    assert!(listed.json.get("data").is_none());
}

#[tokio::test]
async fn check_and_verify_outcomes_are_set_by_the_control_api() {
    let t = Tenant::start().await;
    let seeded = t
        .control
        .add_automation_connection(json!({"name": "crm"}))
        .await;
    let conn = seeded["id"].as_str().unwrap();
    let check = format!("/api/v1/automation-connections/{conn}/actions/check");
    assert_eq!(
        t.api(Method::POST, &check, None).await.json["connected"],
        true
    );
    t.control.set_check(conn, false).await;
    let failing = t.api(Method::POST, &check, None).await;
    assert_eq!(
        failing.json,
        json!({"connected": false, "is_connected": false})
    );
    let detail = t
        .get(&format!("/api/v1/automation-connections/{conn}"))
        .await;
    assert_eq!(detail.json["isConnected"], false);

    let email = "/api/v1/transports/email-config";
    let verify = format!("{email}/actions/verify-connection");
    assert_eq!(
        t.api(Method::POST, &verify, None).await.status,
        StatusCode::NOT_FOUND
    );
    t.control
        .put_email_config(json!({"username": "mailer", "password": "pw"}))
        .await;
    let ok = t.api(Method::POST, &verify, None).await;
    assert_eq!(
        (&ok.json["success"], &ok.json["smtpResponseCode"]),
        (&json!(true), &json!(250))
    );

    t.control
        .set_verify(
            json!({"success": false, "connectionFailed": true, "message": "connect ETIMEDOUT"}),
        )
        .await;
    let unreachable = t.api(Method::POST, &verify, None).await;
    assert_eq!(
        unreachable.json,
        json!({"success": false, "connectionFailed": true, "message": "connect ETIMEDOUT"})
    );
    assert_eq!(t.get(email).await.json["errorCode"], "PROVIDER_ERROR");

    t.control.set_verify(json!({"success": false})).await;
    let refused = t.api(Method::POST, &verify, None).await;
    assert_eq!(refused.json["smtpResponseCode"], 535);
    let judged = t.get(email).await.json;
    assert_eq!(
        (&judged["errorCode"], &judged["authFailures"]),
        (&json!("INVALID_CREDENTIALS"), &json!(1))
    );
    assert_eq!(judged["isValid"], false);

    // A new password is a new configuration: the old verdict no longer applies.
    t.api(Method::PATCH, email, Some(patch("/emailPassword", "pw2")))
        .await;
    let fresh = t.get(email).await.json;
    assert_eq!(
        (&fresh["errorCode"], &fresh["authFailures"]),
        (&json!("OK"), &json!(0))
    );
}

#[tokio::test]
async fn a_copy_has_a_new_id_and_token_keeps_the_definition_and_starts_disabled() {
    let t = Tenant::start().await;
    let (id, token) = t
        .control
        .add_automation(json!({
            "name": "rotate me", "description": "nightly", "spaceId": "space-1",
            "workspace": {"blocks": [{"type": "start"}]}, "maxConcurrentRuns": 3,
            "schedules": [{"startAt": "2024-01-01 00:00:00", "interval": 3600, "timezone": "UTC"}],
            "lastRunStatus": "finished",
        }))
        .await;
    let path = format!("/api/v1/automations/{id}");
    let original = t.get(&path).await.json;
    assert_eq!(original["executionToken"], json!(token));
    assert_eq!(original["lastRunStatus"], "finished");

    let copied = t
        .api(
            Method::POST,
            &format!("{path}/actions/copy"),
            Some(json!({"name": "rotated"})),
        )
        .await;
    assert_eq!(copied.status, StatusCode::CREATED);
    let copy_id = copied.json["id"].as_str().unwrap().to_owned();
    let copy = t.get(&format!("/api/v1/automations/{copy_id}")).await.json;
    assert_ne!(copy_id, id);
    assert_ne!(copy["executionToken"], original["executionToken"]);
    assert_eq!(copy["name"], "rotated");
    assert_eq!(copy["state"], "disabled");
    for kept in [
        "description",
        "spaceId",
        "workspace",
        "maxConcurrentRuns",
        "runMode",
        "ownerId",
    ] {
        assert_eq!(copy[kept], original[kept], "{kept}");
    }
    let (theirs, ours) = (&original["schedules"][0], &copy["schedules"][0]);
    assert_ne!(theirs["id"], ours["id"]);
    for kept in ["startAt", "interval", "timezone"] {
        assert_eq!(theirs[kept], ours[kept], "{kept}");
    }
    assert!(copy.get("lastRunStatus").is_none() && copy.get("lastRunAt").is_none());
    assert_eq!(
        t.control.automation(&copy_id).await["executionToken"],
        copy["executionToken"]
    );
    assert_eq!(
        t.get(&path).await.json["executionToken"],
        json!(token),
        "the original keeps its token"
    );

    let enabled = t
        .api(
            Method::POST,
            &format!("/api/v1/automations/{copy_id}/actions/enable"),
            None,
        )
        .await;
    assert_eq!(enabled.status, StatusCode::NO_CONTENT);
    assert_eq!(t.control.automation(&copy_id).await["state"], "available");
    t.api(Method::POST, &format!("{path}/actions/disable"), None)
        .await;
    assert_eq!(t.control.automation(&id).await["state"], "disabled");
}

#[tokio::test]
async fn deleting_an_automation_removes_it_and_its_token() {
    let t = Tenant::start().await;
    let (id, _) = t.control.add_automation(json!({"name": "doomed"})).await;
    let (keep, _) = t.control.add_automation(json!({"name": "kept"})).await;
    let path = format!("/api/v1/automations/{id}");
    assert_eq!(
        t.api(Method::DELETE, &path, None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(t.get(&path).await.status, StatusCode::NOT_FOUND);
    let listed = t.get("/api/v1/automations").await.json;
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![keep.as_str()]);
    let url = format!("{}/_emulator/automations/{id}", t.emulator.base_url());
    let gone = t.http.get(url).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn counters_count_every_new_operation_and_reset_clears_the_targets() {
    let t = Tenant::start().await;
    let data = t.control.add_data_connection(json!({"name": "pg"})).await;
    let conn = t
        .control
        .add_automation_connection(json!({"name": "crm"}))
        .await;
    let conn = conn["id"].as_str().unwrap().to_owned();
    t.control.put_email_config(json!({})).await;
    let (automation, _) = t.control.add_automation(json!({"name": "a"})).await;
    let calls: Vec<(Method, String, Option<Value>, &str)> = vec![
        (
            Method::GET,
            "/api/v1/data-connections".into(),
            None,
            "data-connections.list",
        ),
        (
            Method::GET,
            format!("/api/v1/data-connections/{data}"),
            None,
            "data-connections.get",
        ),
        (
            Method::PATCH,
            format!("/api/v1/data-connections/{data}"),
            Some(json!([])),
            "data-connections.patch",
        ),
        (
            Method::PUT,
            format!("/api/v1/data-connections/{data}"),
            Some(json!({})),
            "data-connections.put",
        ),
        (
            Method::GET,
            "/api/v1/automation-connections".into(),
            None,
            "automation-connections.list",
        ),
        (
            Method::GET,
            format!("/api/v1/automation-connections/{conn}"),
            None,
            "automation-connections.get",
        ),
        (
            Method::PUT,
            format!("/api/v1/automation-connections/{conn}"),
            Some(json!({})),
            "automation-connections.put",
        ),
        (
            Method::POST,
            format!("/api/v1/automation-connections/{conn}/actions/check"),
            None,
            "automation-connections.check",
        ),
        (
            Method::GET,
            "/api/v1/transports/email-config".into(),
            None,
            "email-config.get",
        ),
        (
            Method::PATCH,
            "/api/v1/transports/email-config".into(),
            Some(json!([])),
            "email-config.patch",
        ),
        (
            Method::PUT,
            "/api/v1/transports/email-config".into(),
            Some(json!({})),
            "email-config.put",
        ),
        (
            Method::POST,
            "/api/v1/transports/email-config/actions/verify-connection".into(),
            None,
            "email-config.verify-connection",
        ),
        (
            Method::GET,
            "/api/v1/automations".into(),
            None,
            "automations.list",
        ),
        (
            Method::POST,
            "/api/v1/automations".into(),
            Some(json!({"name": "b"})),
            "automations.create",
        ),
        (
            Method::GET,
            format!("/api/v1/automations/{automation}"),
            None,
            "automations.get",
        ),
        (
            Method::POST,
            format!("/api/v1/automations/{automation}/actions/copy"),
            Some(json!({"name": "c"})),
            "automations.copy",
        ),
        (
            Method::POST,
            format!("/api/v1/automations/{automation}/actions/disable"),
            None,
            "automations.disable",
        ),
        (
            Method::POST,
            format!("/api/v1/automations/{automation}/actions/enable"),
            None,
            "automations.enable",
        ),
        (
            Method::DELETE,
            format!("/api/v1/automations/{automation}"),
            None,
            "automations.delete",
        ),
    ];
    for (method, path, body, _) in &calls {
        t.api(method.clone(), path, body.clone()).await;
    }
    let counters = t.control.counters().await;
    for (_, path, _, name) in &calls {
        assert_eq!(
            counters["operations"][name]["requests"], 1,
            "{name} ({path})"
        );
    }
    assert_eq!(
        counters["operations"]["data-connections.put"]["byStatus"]["400"],
        1
    );
    assert_eq!(
        counters["operations"]["automations.copy"]["byStatus"]["201"],
        1
    );

    t.control.call(Method::POST, "/_emulator/reset", None).await;
    for path in [
        "/api/v1/data-connections",
        "/api/v1/automation-connections",
        "/api/v1/automations",
    ] {
        assert_eq!(t.get(path).await.json["data"], json!([]), "{path}");
    }
    assert_eq!(
        t.get("/api/v1/transports/email-config").await.json["errorCode"],
        "CONFIG_NOT_SET"
    );
}

#[tokio::test]
async fn faults_apply_to_the_new_operations_unchanged() {
    let t = Tenant::start().await;
    let id = t.control.add_data_connection(json!({"name": "pg"})).await;
    let one = format!("/api/v1/data-connections/{id}");
    t.control
        .fault(
            json!({"method": "PATCH", "path": "/api/v1/data-connections/*", "fault": "status",
                      "status": 500, "when": "after", "times": 1}),
        )
        .await;
    let failed = t
        .api(Method::PATCH, &one, Some(patch("/qPassword", "pw")))
        .await;
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        failed.json["errors"][0]["status"], 500,
        "data-connections' error shape"
    );
    assert_eq!(
        t.control.data_connection(&id).await["password"],
        "pw",
        "the write took effect"
    );

    t.control
        .fault(
            json!({"path": "/api/v1/transports/*", "fault": "status", "status": 503, "times": 1}),
        )
        .await;
    let unavailable = t.get("/api/v1/transports/email-config").await;
    assert_eq!(unavailable.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        unavailable.json["errors"][0]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec!["code", "title"],
        "transports' errors have a code and a title only"
    );
}

#[tokio::test]
async fn the_control_api_refuses_malformed_seeds() {
    let t = Tenant::start().await;
    let refused = |path: &'static str, body: Value| {
        let url = format!("{}{path}", t.emulator.base_url());
        let request = t.http.post(url).json(&body);
        async move { request.send().await.unwrap().status() }
    };
    t.control.add_data_connection(json!({"name": "pg"})).await;
    for (path, body) in [
        ("/_emulator/data-connections", json!({"name": "pg"})),
        (
            "/_emulator/data-connections",
            json!({"name": "x", "bogus": 1}),
        ),
        (
            "/_emulator/automation-connections",
            json!({"name": "x", "params": [{"name": "a"}, {"name": "a"}]}),
        ),
        (
            "/_emulator/automations",
            json!({"name": "x", "state": "paused"}),
        ),
        (
            "/_emulator/automations",
            json!({"name": "x", "lastRunStatus": "done"}),
        ),
        ("/_emulator/automations", json!({"state": "available"})),
    ] {
        assert_eq!(
            refused(path, body.clone()).await,
            StatusCode::BAD_REQUEST,
            "{path} {body}"
        );
    }
}

#[tokio::test]
async fn help_documents_the_secret_target_endpoints() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_qlik-tenant-emulator"))
        .arg("--help")
        .output()
        .await
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for needle in [
        "/api/v1/data-connections/{qID}",
        "/api/v1/automation-connections/{id}/actions/check",
        "/api/v1/transports/email-config/actions/verify-connection",
        "GET|PUT|PATCH       /api/v1/transports/email-config",
        "email-config.{get, patch, put,",
        "/api/v1/automations/{id}/actions/{copy|enable|disable}",
        "POST   /_emulator/data-connections",
        "GET    /_emulator/data-connections/{id}",
        "PUT    /_emulator/automation-connections/{id}/check",
        "PUT    /_emulator/email-config",
        "PUT    /_emulator/email-config/verify",
        "POST   /_emulator/automations",
        "GET    /_emulator/automations/{id}",
        "automations.{list, create, get, delete, copy,",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
}
