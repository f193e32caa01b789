//! Conformance of the secret targets: data-connections, automation-connections,
//! transports (email-config) and automations. Every answer, success or error, is checked
//! against its definition as it arrives; objects are seeded through the control API.

use qlik_csp_operator::emulator::{Operation, codes};
use reqwest::Method;
use serde_json::{Value, json};

use super::harness::{Harness, harness};

/// Follows `links.next.href` from `first` to the end; the ids seen, in order.
async fn all_pages(h: &Harness, op: Operation, first: &str, id_field: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut page = h.admin(op, first).await;
    loop {
        assert_eq!(page.status, 200, "{}", page.text);
        let data = page.body()["data"].as_array().unwrap().clone();
        seen.extend(
            data.iter()
                .map(|d| d[id_field].as_str().unwrap().to_owned()),
        );
        match page.body()["links"]["next"]["href"].as_str() {
            Some(next) => {
                let next = next.to_owned();
                page = h.admin(op, &next).await;
            }
            None => return seen,
        }
    }
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn data_connections_answers_conform_including_patch_put_and_errors() {
    use Operation::*;
    let Some(h) = harness().await else { return };
    let path = "/api/v1/data-connections";
    let seed = |body: Value| h.control(Method::POST, "/_emulator/data-connections", Some(body));
    let main = id(&seed(json!({"name": "pg-main", "username": "svc", "password": "old"})).await);
    let oauth =
        id(&seed(json!({"name": "crm", "type": "salesforce", "interactiveOAuth": true})).await);
    let mut ids = vec![main.clone(), oauth.clone()];
    for i in 0..3 {
        ids.push(id(&seed(
            json!({"name": format!("extra-{i}"), "type": "rest"}),
        )
        .await));
    }

    let all = h.admin(DataConnectionsList, path).await;
    assert_eq!(all.body()["meta"]["count"], 5);
    assert_eq!(
        all_pages(&h, DataConnectionsList, &format!("{path}?limit=2"), "qID").await,
        ids
    );
    let second = h
        .admin(DataConnectionsList, &format!("{path}?limit=2"))
        .await;
    let next = second.body()["links"]["next"]["href"]
        .as_str()
        .unwrap()
        .to_owned();
    let third = h.admin(DataConnectionsList, &next).await;
    let prev = third.body()["links"]["prev"]["href"]
        .as_str()
        .unwrap()
        .to_owned();
    let back = h.admin(DataConnectionsList, &prev).await;
    assert_eq!(back.body()["data"][0]["qID"], json!(ids[0]));
    let by_name = h
        .admin(
            DataConnectionsList,
            &format!("{path}?filter=qName eq \"PG-MAIN\""),
        )
        .await;
    assert_eq!(by_name.body()["data"][0]["qID"], json!(main));
    assert_eq!(by_name.body()["meta"]["count"], 1);
    let sorted = h
        .admin(DataConnectionsList, &format!("{path}?sort=-qName&limit=1"))
        .await;
    assert_eq!(sorted.body()["data"][0]["qName"], "pg-main");
    for query in [
        "dataName=",
        "filter=owner eq \"x\"",
        "limit=101",
        "sort=qPassword",
        "page=zz",
    ] {
        let refused = h
            .admin(DataConnectionsList, &format!("{path}?{query}"))
            .await;
        assert_eq!(refused.status, 400, "{query}");
    }

    let one = format!("{path}/{main}");
    let got = h.admin(DataConnectionsGet, &one).await;
    assert_eq!((got.status, &got.body()["qName"]), (200, &json!("pg-main")));
    let named = h
        .admin(
            DataConnectionsGet,
            &format!("{path}/pg-main?type=connectionname"),
        )
        .await;
    assert_eq!(named.body()["qID"], json!(main));
    assert_eq!(
        h.admin(DataConnectionsGet, &format!("{path}/not-a-uuid"))
            .await
            .status,
        400
    );
    let unknown = format!("{path}/00000000-0000-4000-8000-000000000000");
    assert_eq!(h.admin(DataConnectionsGet, &unknown).await.status, 404);

    let patch = {
        let h = &h;
        move |target: String, body: Value| async move {
            h.admin_json(DataConnectionsPatch, &target, body).await
        }
    };
    let new_password = json!([{"op": "replace", "path": "/qPassword", "value": "new"}]);
    assert_eq!(patch(one.clone(), new_password.clone()).await.status, 204);
    assert_eq!(
        patch(unknown.clone(), new_password.clone()).await.status,
        404
    );
    let bad = patch(
        one.clone(),
        json!([{"op": "copy", "path": "/qPassword", "value": "x"}]),
    )
    .await;
    assert_eq!(bad.status, 400);
    let refused = patch(format!("{path}/{oauth}"), new_password).await;
    assert_eq!(
        (refused.status, refused.error_code()),
        (400, codes::DATA_CONNECTION_INTERACTIVE_OAUTH)
    );
    let taken = patch(
        one.clone(),
        json!([{"op": "replace", "path": "/qName", "value": "extra-0"}]),
    )
    .await;
    assert_eq!(
        (taken.status, taken.error_code()),
        (409, codes::DATA_CONNECTION_DUPLICATE_NAME)
    );

    let update = |name: &str| {
        json!({"qID": main, "qEngineObjectID": main, "qName": name, "qType": "postgres",
               "qConnectStatement": "CUSTOM CONNECT TO \"provider=postgres\"",
               "qUsername": "svc2", "qPassword": "newer"})
    };
    assert_eq!(
        h.admin_json(DataConnectionsPut, &one, update("pg-main"))
            .await
            .status,
        204
    );
    assert_eq!(
        h.admin_json(DataConnectionsPut, &unknown, update("x"))
            .await
            .status,
        404
    );
    assert_eq!(
        h.admin_json(DataConnectionsPut, &one, update("extra-1"))
            .await
            .status,
        409
    );
    let incomplete = json!({"qID": main, "qName": "pg-main"});
    assert_eq!(
        h.admin_json(DataConnectionsPut, &one, incomplete)
            .await
            .status,
        400
    );

    for op in [
        DataConnectionsList,
        DataConnectionsGet,
        DataConnectionsPatch,
        DataConnectionsPut,
    ] {
        let target = if op == DataConnectionsList {
            path
        } else {
            one.as_str()
        };
        assert_eq!(h.anon(op, target).await.status, 401);
    }
    h.assert_covered(&[
        (DataConnectionsList, 200),
        (DataConnectionsList, 400),
        (DataConnectionsList, 401),
        (DataConnectionsGet, 200),
        (DataConnectionsGet, 400),
        (DataConnectionsGet, 401),
        (DataConnectionsGet, 404),
        (DataConnectionsPatch, 204),
        (DataConnectionsPatch, 400),
        (DataConnectionsPatch, 401),
        (DataConnectionsPatch, 404),
        (DataConnectionsPatch, 409),
        (DataConnectionsPut, 204),
        (DataConnectionsPut, 400),
        (DataConnectionsPut, 401),
        (DataConnectionsPut, 404),
        (DataConnectionsPut, 409),
    ]);
}

#[tokio::test]
async fn automation_connections_answers_conform_including_put_and_check() {
    use Operation::*;
    let Some(h) = harness().await else { return };
    let path = "/api/v1/automation-connections";
    let seeded = h
        .control(
            Method::POST,
            "/_emulator/automation-connections",
            Some(json!({"name": "crm", "params": [
                {"name": "region", "value": "eu"},
                {"name": "apiKey", "value": "k1", "secret": true},
            ]})),
        )
        .await;
    let conn = id(&seeded);
    let key_param = id(&seeded["params"][1]);
    let mut ids = vec![conn.clone()];
    for i in 0..2 {
        let other = json!({"name": format!("other-{i}")});
        ids.push(id(&h
            .control(
                Method::POST,
                "/_emulator/automation-connections",
                Some(other),
            )
            .await));
    }
    ids.sort();

    assert_eq!(
        all_pages(
            &h,
            AutomationConnectionsList,
            &format!("{path}?limit=1"),
            "id"
        )
        .await,
        ids
    );
    let filtered = h
        .admin(
            AutomationConnectionsList,
            &format!("{path}?filter=name eq \"crm\"&sort=-name"),
        )
        .await;
    assert_eq!(filtered.body()["data"].as_array().unwrap().len(), 1);
    assert_eq!(filtered.body()["links"]["next"]["href"], Value::Null);
    for query in [
        "limit=201",
        "sort=connectorId",
        "filter=secret pr",
        "cursor=zz",
    ] {
        let refused = h
            .admin(AutomationConnectionsList, &format!("{path}?{query}"))
            .await;
        assert_eq!(refused.status, 400, "{query}");
    }

    let one = format!("{path}/{conn}");
    let got = h.admin(AutomationConnectionsGet, &one).await;
    assert_eq!(got.body()["params"][0]["value"], "eu");
    assert!(
        got.body()["params"][1].get("value").is_none(),
        "{}",
        got.text
    );
    let unknown = format!("{path}/nope");
    assert_eq!(
        h.admin(AutomationConnectionsGet, &unknown).await.status,
        404
    );

    let put = json!({"params": [{"id": key_param, "value": "k2"}]});
    let updated = h
        .admin_json(AutomationConnectionsPut, &one, put.clone())
        .await;
    assert_eq!(updated.status, 200);
    assert!(updated.body()["params"][1].get("value").is_none());
    assert_eq!(
        h.admin_json(AutomationConnectionsPut, &unknown, put)
            .await
            .status,
        404
    );
    let wrong_param = json!({"params": [{"id": "nope", "value": "x"}]});
    assert_eq!(
        h.admin_json(AutomationConnectionsPut, &one, wrong_param)
            .await
            .status,
        400
    );

    let check = format!("{one}/actions/check");
    let checked = h.admin(AutomationConnectionsCheck, &check).await;
    assert_eq!(
        checked.body(),
        &json!({"connected": true, "is_connected": true})
    );
    let control = format!("/_emulator/automation-connections/{conn}/check");
    h.control(Method::PUT, &control, Some(json!({"connected": false})))
        .await;
    let failing = h.admin(AutomationConnectionsCheck, &check).await;
    assert_eq!(failing.body()["connected"], false);
    let missing = format!("{unknown}/actions/check");
    assert_eq!(
        h.admin(AutomationConnectionsCheck, &missing).await.status,
        404
    );

    for (op, target) in [
        (AutomationConnectionsList, path.to_owned()),
        (AutomationConnectionsGet, one.clone()),
        (AutomationConnectionsPut, one.clone()),
        (AutomationConnectionsCheck, check.clone()),
    ] {
        assert_eq!(h.anon(op, &target).await.status, 401);
    }
    h.assert_covered(&[
        (AutomationConnectionsList, 200),
        (AutomationConnectionsList, 400),
        (AutomationConnectionsList, 401),
        (AutomationConnectionsGet, 200),
        (AutomationConnectionsGet, 401),
        (AutomationConnectionsGet, 404),
        (AutomationConnectionsPut, 200),
        (AutomationConnectionsPut, 400),
        (AutomationConnectionsPut, 401),
        (AutomationConnectionsPut, 404),
        (AutomationConnectionsCheck, 200),
        (AutomationConnectionsCheck, 401),
        (AutomationConnectionsCheck, 404),
    ]);
}

#[tokio::test]
async fn email_config_answers_conform_with_and_without_a_configuration() {
    use Operation::*;
    let Some(h) = harness().await else { return };
    let path = "/api/v1/transports/email-config";
    let verify = format!("{path}/actions/verify-connection");

    let none = h.admin(EmailConfigGet, path).await;
    assert_eq!(none.body()["errorCode"], "CONFIG_NOT_SET");
    let not_found = h.admin(EmailConfigVerifyConnection, &verify).await;
    assert_eq!(
        (not_found.status, not_found.error_code()),
        (404, codes::EMAIL_CONFIG_NOT_FOUND)
    );

    let config = json!({"username": "mailer", "password": "pw1"});
    h.control(Method::PUT, "/_emulator/email-config", Some(config))
        .await;
    let got = h.admin(EmailConfigGet, path).await;
    assert_eq!(
        (&got.body()["errorCode"], &got.body()["passwordExists"]),
        (&json!("OK"), &json!(true))
    );
    let ok = h.admin(EmailConfigVerifyConnection, &verify).await;
    assert_eq!(ok.body()["success"], true);

    let failure =
        json!({"success": false, "message": "535 bad credentials", "smtpResponseCode": 535});
    h.control(Method::PUT, "/_emulator/email-config/verify", Some(failure))
        .await;
    let failed = h.admin(EmailConfigVerifyConnection, &verify).await;
    assert_eq!(
        (
            &failed.body()["success"],
            &failed.body()["smtpResponseCode"]
        ),
        (&json!(false), &json!(535))
    );
    let judged = h.admin(EmailConfigGet, path).await;
    assert_eq!(judged.body()["errorCode"], "INVALID_CREDENTIALS");
    assert_eq!(judged.body()["isValid"], false);
    assert_eq!(judged.body()["status"]["statusCode"], 535);

    let patch = json!([{"op": "replace", "path": "/emailPassword", "value": "pw2"},
                       {"op": "replace", "path": "/username", "value": "mailer2"}]);
    assert_eq!(
        h.admin_json(EmailConfigPatch, path, patch).await.status,
        204
    );
    let bad = json!([{"op": "replace", "path": "/senderName", "value": "x"}]);
    assert_eq!(h.admin_json(EmailConfigPatch, path, bad).await.status, 400);
    let incomplete = json!([{"op": "remove", "path": "/serverAddress", "value": ""}]);
    assert_eq!(
        h.admin_json(EmailConfigPatch, path, incomplete)
            .await
            .status,
        204
    );
    assert_eq!(
        h.admin(EmailConfigGet, path).await.body()["errorCode"],
        "INCOMPLETE_CONFIG"
    );

    // PUT replaces the whole configuration once the connection check passes.
    let put = |password: &str| {
        json!({"serviceProvider": "BasicAuth", "providerConfig": {
            "serverAddress": "smtp.acme.example", "serverPort": 465, "securityType": "SSL/TLS",
            "emailAddress": "reports@acme.example", "senderName": "Acme", "username": "svc",
            "emailPassword": password}})
    };
    let refused = h.admin_json(EmailConfigPut, path, put("pw3")).await;
    assert_eq!(
        (refused.status, refused.error_code()),
        (400, codes::EMAIL_CONFIG_VERIFICATION_FAILED),
        "the verify outcome is still a failure"
    );
    assert!(
        refused.body()["errors"][0]["title"]
            .as_str()
            .is_some_and(|t| t.contains("535 bad credentials")),
        "{}",
        refused.text
    );
    h.control(
        Method::PUT,
        "/_emulator/email-config/verify",
        Some(json!({"success": true})),
    )
    .await;
    let mut typo = put("pw3");
    typo["providerConfig"]["serverPort"] = json!("465");
    let bad = h.admin_json(EmailConfigPut, path, typo).await;
    assert_eq!(
        (bad.status, bad.error_code()),
        (400, codes::EMAIL_CONFIG_INPUT_CHECK)
    );
    assert_eq!(
        h.admin_json(EmailConfigPut, path, put("pw3")).await.status,
        204
    );
    let replaced = h.admin(EmailConfigGet, path).await;
    assert_eq!(replaced.body()["errorCode"], "OK");
    assert_eq!(
        replaced.body()["providerConfig"],
        json!({"serverAddress": "smtp.acme.example", "serverPort": 465,
               "securityType": "SSL/TLS", "emailAddress": "reports@acme.example",
               "senderName": "Acme", "username": "svc"})
    );
    assert!(!replaced.text.contains("pw3"), "{}", replaced.text);

    for (op, target) in [
        (EmailConfigGet, path),
        (EmailConfigPatch, path),
        (EmailConfigPut, path),
        (EmailConfigVerifyConnection, verify.as_str()),
    ] {
        assert_eq!(h.anon(op, target).await.status, 401);
    }
    h.assert_covered(&[
        (EmailConfigGet, 200),
        (EmailConfigGet, 401),
        (EmailConfigPatch, 204),
        (EmailConfigPatch, 400),
        (EmailConfigPatch, 401),
        (EmailConfigPut, 204),
        (EmailConfigPut, 400),
        (EmailConfigPut, 401),
        (EmailConfigVerifyConnection, 200),
        (EmailConfigVerifyConnection, 401),
        (EmailConfigVerifyConnection, 404),
    ]);
}

#[tokio::test]
async fn automations_answers_conform_including_copy_enable_and_disable() {
    use Operation::*;
    let Some(h) = harness().await else { return };
    let path = "/api/v1/automations";
    let body = json!({
        "name": "rotate [qlikops:abc]", "description": "d", "workspace": {"blocks": []},
        "schedules": [{"startAt": "2024-01-01 00:00:00", "interval": 3599, "timezone": "UTC"}],
    });
    let created = h.admin_json(AutomationsCreate, path, body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let original = id(created.body());
    assert_eq!(created.body()["schedules"][0]["interval"], 3600);
    assert_eq!(created.body()["state"], "available");
    let refused = h
        .admin_json(AutomationsCreate, path, json!({"workspace": []}))
        .await;
    assert_eq!(refused.status, 400);
    let mut ids = vec![original.clone()];
    for i in 0..2 {
        let other = h
            .admin_json(
                AutomationsCreate,
                path,
                json!({"name": format!("other-{i}")}),
            )
            .await;
        ids.push(id(other.body()));
    }
    ids.sort();

    assert_eq!(
        all_pages(&h, AutomationsList, &format!("{path}?limit=2"), "id").await,
        ids
    );
    let marked = h
        .admin(
            AutomationsList,
            &format!("{path}?filter=name co \"[qlikops:abc]\""),
        )
        .await;
    assert_eq!(marked.body()["data"][0]["id"], json!(original));
    assert_eq!(marked.body()["data"].as_array().unwrap().len(), 1);
    for query in [
        "limit=0",
        "sort=executionToken",
        "filter=name eq",
        "cursor=zz",
    ] {
        assert_eq!(
            h.admin(AutomationsList, &format!("{path}?{query}"))
                .await
                .status,
            400,
            "{query}"
        );
    }

    let one = format!("{path}/{original}");
    let got = h.admin(AutomationsGet, &one).await;
    assert!(
        got.body()["executionToken"]
            .as_str()
            .is_some_and(|t| t.len() == 64)
    );
    let unknown = format!("{path}/00000000-0000-4000-8000-000000000000");
    assert_eq!(h.admin(AutomationsGet, &unknown).await.status, 404);

    let copied = h
        .admin_json(
            AutomationsCopy,
            &format!("{one}/actions/copy"),
            json!({"name": "copy"}),
        )
        .await;
    assert_eq!(copied.status, 201);
    let copy = format!("{path}/{}", id(copied.body()));
    assert_eq!(
        h.admin(AutomationsGet, &copy).await.body()["state"],
        "disabled"
    );
    let nameless = h
        .admin_json(AutomationsCopy, &format!("{one}/actions/copy"), json!({}))
        .await;
    assert_eq!(nameless.status, 400);
    let missing_copy = h
        .admin_json(
            AutomationsCopy,
            &format!("{unknown}/actions/copy"),
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(missing_copy.status, 404);

    for (op, action) in [
        (AutomationsEnable, "enable"),
        (AutomationsDisable, "disable"),
    ] {
        assert_eq!(
            h.admin(op, &format!("{copy}/actions/{action}"))
                .await
                .status,
            204
        );
        assert_eq!(
            h.admin(op, &format!("{unknown}/actions/{action}"))
                .await
                .status,
            404
        );
    }
    assert_eq!(h.admin(AutomationsDelete, &copy).await.status, 204);
    assert_eq!(h.admin(AutomationsDelete, &copy).await.status, 404);

    for (op, target) in [
        (AutomationsList, path.to_owned()),
        (AutomationsCreate, path.to_owned()),
        (AutomationsGet, one.clone()),
        (AutomationsDelete, one.clone()),
        (AutomationsCopy, format!("{one}/actions/copy")),
        (AutomationsEnable, format!("{one}/actions/enable")),
        (AutomationsDisable, format!("{one}/actions/disable")),
    ] {
        assert_eq!(h.anon(op, &target).await.status, 401);
    }
    h.assert_covered(&[
        (AutomationsList, 200),
        (AutomationsList, 400),
        (AutomationsList, 401),
        (AutomationsCreate, 201),
        (AutomationsCreate, 400),
        (AutomationsCreate, 401),
        (AutomationsGet, 200),
        (AutomationsGet, 401),
        (AutomationsGet, 404),
        (AutomationsDelete, 204),
        (AutomationsDelete, 401),
        (AutomationsDelete, 404),
        (AutomationsCopy, 201),
        (AutomationsCopy, 400),
        (AutomationsCopy, 401),
        (AutomationsCopy, 404),
        (AutomationsEnable, 204),
        (AutomationsEnable, 401),
        (AutomationsEnable, 404),
        (AutomationsDisable, 204),
        (AutomationsDisable, 401),
        (AutomationsDisable, 404),
    ]);
}

#[tokio::test]
async fn injected_faults_on_the_secret_targets_answer_in_each_apis_error_shape() {
    use Operation::*;
    let Some(h) = harness().await else { return };
    let faults = [
        (DataConnectionsPatch, "/api/v1/data-connections/x", 429),
        (DataConnectionsList, "/api/v1/data-connections", 502),
        (
            AutomationConnectionsCheck,
            "/api/v1/automation-connections/x/actions/check",
            429,
        ),
        (
            EmailConfigVerifyConnection,
            "/api/v1/transports/email-config/actions/verify-connection",
            500,
        ),
        (AutomationsCopy, "/api/v1/automations/x/actions/copy", 503),
    ];
    for (op, target, status) in faults {
        h.add_fault(json!({"path": target, "fault": "status", "status": status, "retryAfter": 3, "times": 1}))
            .await;
        let reply = h.admin_json(op, target, json!([])).await;
        assert_eq!(reply.status, status, "{}", op.name());
        assert_eq!(reply.header("retry-after"), Some("3"));
    }
    h.assert_covered(&[
        (DataConnectionsPatch, 429),
        (DataConnectionsList, 502),
        (AutomationConnectionsCheck, 429),
        (EmailConfigVerifyConnection, 500),
        (AutomationsCopy, 503),
    ]);
}
