//! What the emulated QRS site does beyond the shape of its answers and its concurrency:
//! filters, unknown paths, faults, the request log, and the `qrs` mode of the binary. Real
//! HTTPS with mutual TLS.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use qlik_csp_operator::emulator::qrs::client_tls_config;
use reqwest::Method;
use serde_json::{Value, json};

use super::support::qrs_site::{QrsSiteFixture, RecordedRequest, mismatched_xrfkeys};
#[tokio::test]
async fn filters_select_by_prefix_id_and_fields_and_unsupported_ones_get_400() {
    let qrs = QrsSiteFixture::start().await;
    let embed = qrs.seed_virtual_proxy("embed", "", &[]).await;
    qrs.seed_virtual_proxy("hub", "", &[]).await;
    let qrs = &qrs;
    let list = |query: String| {
        let path = format!("/qrs/virtualproxyconfig{query}");
        async move { qrs.api(Method::GET, &path, None).await }
    };
    let ids = |reply: Value| -> Vec<String> {
        reply
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(list("?filter=prefix%20eq%20'EMBED'".into()).await.json()),
        vec![embed.clone()]
    );
    assert_eq!(
        ids(list(format!("/full?filter=id%20eq%20{embed}")).await.json()),
        vec![embed.clone()]
    );
    let both = format!("/full?filter=prefix%20eq%20'embed'%20and%20id%20eq%20{embed}");
    assert_eq!(ids(list(both).await.json()), vec![embed.clone()]);
    assert_eq!(
        ids(list("/full?filter=prefix%20eq%20'none'".into())
            .await
            .json()),
        Vec::<String>::new()
    );
    assert_eq!(list("/count".into()).await.json(), json!(2));
    assert_eq!(
        list("/count?filter=prefix%20sw%20'h'".into()).await.json(),
        json!(1)
    );
    let condensed = list("?filter=prefix%20eq%20'hub'".into()).await.json();
    assert!(
        condensed[0].get("modifiedDate").is_none(),
        "the condensed list has no dates"
    );
    for filter in [
        "prefix%20like%20'x'",
        "owner.userId%20eq%20'x'",
        "(prefix%20eq%20'x')",
        "nope%20eq%201",
    ] {
        let refused = list(format!("/full?filter={filter}")).await;
        assert_eq!(refused.status, 400, "{filter}: {}", refused.text);
    }
}

#[tokio::test]
async fn unknown_paths_get_404_and_unserved_methods_405() {
    let qrs = QrsSiteFixture::start().await;
    assert_eq!(
        qrs.api(Method::GET, "/qrs/app/full", None).await.status,
        404
    );
    assert_eq!(
        qrs.api(Method::GET, "/api/v1/csp-origins", None)
            .await
            .status,
        404
    );
    assert_eq!(
        qrs.api(Method::DELETE, "/qrs/about", None).await.status,
        405
    );
    let about = qrs.api(Method::GET, "/qrs/About/", None).await;
    assert_eq!(about.json()["buildVersion"], "38.22.0");
    assert_eq!(about.json()["nodeType"], 1);
    let log = qrs.requests().await;
    assert_eq!(log[0].operation, "unknown");
    assert_eq!(log[3].operation, "about.get");
}

#[tokio::test]
async fn faults_answer_an_error_or_drop_the_connection_for_the_next_calls() {
    let qrs = QrsSiteFixture::start().await;
    qrs.fault(json!({"method": "GET", "path": "/qrs/about", "fault": "status", "status": 503, "times": 2}))
        .await;
    assert_eq!(qrs.api(Method::GET, "/qrs/about", None).await.status, 503);
    assert_eq!(qrs.api(Method::GET, "/qrs/about", None).await.status, 503);
    assert_eq!(qrs.api(Method::GET, "/qrs/about", None).await.status, 200);
    qrs.fault(json!({"path": "/qrs/virtualproxyconfig*", "fault": "drop", "times": 1}))
        .await;
    let url = format!(
        "{}/qrs/virtualproxyconfig?xrfkey=0123456789abcdef",
        qrs.base_url()
    );
    let dropped = qrs
        .http
        .get(&url)
        .header("X-Qlik-Xrfkey", "0123456789abcdef")
        .header("X-Qlik-User", "UserDirectory=INTERNAL; UserId=sa_api")
        .send()
        .await;
    assert!(dropped.is_err(), "{dropped:?}");
    assert_eq!(
        qrs.api(Method::GET, "/qrs/virtualproxyconfig", None)
            .await
            .status,
        200
    );
    let counters = qrs.counters().await;
    assert_eq!(counters["operations"]["about.get"]["byStatus"]["503"], 2);
    assert_eq!(
        counters["operations"]["virtualproxyconfig.list"]["byStatus"]["dropped"],
        1
    );
}

#[tokio::test]
async fn the_request_log_shows_each_calls_xrfkeys_so_a_test_can_prove_they_matched() {
    let qrs = QrsSiteFixture::start().await;
    qrs.api(Method::GET, "/qrs/about", None).await;
    qrs.api(Method::GET, "/qrs/virtualproxyconfig/full", None)
        .await;
    assert_eq!(
        qrs.assert_every_request_carried_a_matching_xrfkey().await,
        2
    );
    qrs.assert_xrfkeys_are_fresh().await;
    let log = qrs.requests().await;
    assert_eq!(
        log[0].user.as_deref(),
        Some("UserDirectory=INTERNAL; UserId=sa_api")
    );
    assert_eq!(log[1].operation, "virtualproxyconfig.full");

    let url = format!("{}/qrs/about?xrfkey=0123456789abcdef", qrs.base_url());
    let refused = qrs
        .http
        .get(&url)
        .header("X-Qlik-Xrfkey", "0123456789abcdeX")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let log = qrs.requests().await;
    let bad: Vec<&RecordedRequest> = mismatched_xrfkeys(&log);
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].xrfkey_header.as_deref(), Some("0123456789abcdeX"));

    qrs.clear_requests().await;
    assert!(qrs.requests().await.is_empty());
    assert_eq!(qrs.counters().await["total"], 0);
}

/// The binary in `qrs` mode, killed on drop.
struct Binary(Child);

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_serves_a_qrs_site_and_writes_its_client_identity() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| dir.path().join(name);
    let mut child = Command::new(env!("CARGO_BIN_EXE_qlik-tenant-emulator"))
        .arg("qrs")
        .args(["--ca-out", file("root.pem").to_str().unwrap()])
        .args(["--client-cert-out", file("client.pem").to_str().unwrap()])
        .args(["--client-key-out", file("client_key.pem").to_str().unwrap()])
        .args(["--user", "ACME\\svc_qlikops"])
        .args(["--seed-virtual-proxy", "embed"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _binary = Binary(child);
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().unwrap().unwrap();
    let base = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{first}"))
        .to_owned();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let seeded = lines.next().unwrap().unwrap();
    let id = seeded
        .strip_prefix("virtual-proxy embed ")
        .unwrap_or_else(|| panic!("{seeded}"))
        .to_owned();

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file("client_key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the key is readable by its owner only");
    }
    let read = |name: &str| std::fs::read_to_string(file(name)).unwrap();
    let tls = client_tls_config(
        &read("root.pem"),
        &read("client.pem"),
        &read("client_key.pem"),
    )
    .unwrap();
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap();
    let url = format!("{base}/qrs/virtualproxyconfig/{id}?xrfkey=0123456789abcdef");
    let get = |user: &'static str| {
        http.get(&url)
            .header("X-Qlik-Xrfkey", "0123456789abcdef")
            .header("X-Qlik-User", user)
            .send()
    };
    let response = get("UserDirectory=ACME; UserId=svc_qlikops").await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["prefix"], "embed");
    assert_eq!(
        get("UserDirectory=INTERNAL; UserId=sa_api")
            .await
            .unwrap()
            .status(),
        403,
        "only --user is accepted"
    );
}
