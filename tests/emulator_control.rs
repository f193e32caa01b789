//! The emulator's control API (faults, counters, the request log, the clock, reset), its
//! transport options and the `qlik-tenant-emulator` binary, over real connections.

use std::time::{Duration, Instant};

use qlik_csp_operator::emulator::{Emulator, EmulatorConfig};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const ADMIN: &str = "admin-token-for-control-tests";
const CLIENT_ID: &str = "control-client";
const CLIENT_SECRET: &str = "control-secret-9876";
const ORIGINS: &str = "/api/v1/csp-origins";

struct Tenant {
    emulator: Emulator,
    client: reqwest::Client,
}

impl Tenant {
    async fn start(config: EmulatorConfig) -> Tenant {
        let config = EmulatorConfig {
            admin_api_keys: vec![ADMIN.to_owned()],
            oauth_clients: vec![(CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned())],
            ..config
        };
        let emulator = Emulator::start(config).await.expect("the emulator starts");
        // reqwest needs a TLS backend even for plain HTTP (the crate has no default provider).
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .tls_backend_preconfigured(emulator.client_tls_config().expect("TLS"))
            .build()
            .expect("a client");
        Tenant { emulator, client }
    }

    async fn default() -> Tenant {
        Tenant::start(EmulatorConfig::default()).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emulator.base_url())
    }

    async fn try_call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::Result<(StatusCode, Value)> {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.try_call(method, path, token, body)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    async fn control(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, body) = self.call(method, path, None, body).await;
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    async fn fault(&self, fault: Value) {
        self.control(Method::POST, "/_emulator/faults", Some(fault))
            .await;
    }

    async fn create(&self, origin: &str) -> reqwest::Result<(StatusCode, Value)> {
        self.try_call(
            Method::POST,
            ORIGINS,
            Some(ADMIN),
            Some(json!({"origin": origin, "imgSrc": true})),
        )
        .await
    }

    async fn origins(&self) -> Vec<String> {
        let (_, list) = self
            .call(
                Method::GET,
                &format!("{ORIGINS}?limit=100"),
                Some(ADMIN),
                None,
            )
            .await;
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["origin"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn counters(&self) -> Value {
        self.control(Method::GET, "/_emulator/counters", None).await
    }
}

#[tokio::test]
async fn a_drop_fault_closes_the_connection_without_an_answer_and_is_counted() {
    let t = Tenant::default().await;
    t.fault(json!({"method": "POST", "path": "/api/v1/csp-origins*", "fault": "drop", "times": 1}))
        .await;
    let dropped = t.create("a.example.com").await;
    assert!(dropped.is_err(), "{dropped:?}");
    assert!(
        t.origins().await.is_empty(),
        "a drop before processing has no effect"
    );
    let (status, _) = t.create("a.example.com").await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "the rule was used up");
    let counters = t.counters().await;
    assert_eq!(
        counters["operations"]["csp-origins.create"]["byStatus"]["dropped"],
        1
    );
    assert_eq!(counters["operations"]["csp-origins.create"]["requests"], 2);
}

#[tokio::test]
async fn faults_after_processing_hit_the_answer_but_the_change_took_effect() {
    let t = Tenant::default().await;
    t.fault(
        json!({"path": ORIGINS, "method": "POST", "fault": "drop", "when": "after", "times": 1}),
    )
    .await;
    assert!(t.create("after-drop.example.com").await.is_err());
    t.fault(json!({"path": ORIGINS, "method": "POST", "fault": "status", "status": 500, "when": "after", "times": 1}))
        .await;
    let (status, body) = t.create("after-500.example.com").await.unwrap();
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["errors"][0]["code"], "HTTP-500");
    assert_eq!(
        t.origins().await,
        vec!["after-drop.example.com", "after-500.example.com"]
    );
}

#[tokio::test]
async fn latency_delays_the_answer_by_at_least_the_injected_time() {
    let t = Tenant::default().await;
    t.fault(json!({"path": "/api/v1/tenants/*", "fault": "latency", "latencyMs": 300}))
        .await;
    let started = Instant::now();
    let (status, _) = t
        .call(Method::GET, "/api/v1/tenants/me", Some(ADMIN), None)
        .await;
    assert_eq!(status, StatusCode::FOUND);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    let unaffected = Instant::now();
    t.call(Method::GET, "/api/v1/users/me", Some(ADMIN), None)
        .await;
    assert!(unaffected.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn times_and_fraction_limit_which_matching_requests_a_fault_hits() {
    let t = Tenant::default().await;
    t.fault(json!({"path": "/api/v1/users/me", "fault": "status", "status": 503, "times": 2}))
        .await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            t.call(Method::GET, "/api/v1/users/me", Some(ADMIN), None)
                .await
                .0
                .as_u16(),
        );
    }
    assert_eq!(statuses, vec![503, 503, 301, 301]);

    t.control(Method::DELETE, "/_emulator/faults", None).await;
    t.fault(
        json!({"path": "/api/v1/tenants/me", "fault": "status", "status": 500, "fraction": 0.5}),
    )
    .await;
    let mut failed = 0;
    for _ in 0..200 {
        if t.call(Method::GET, "/api/v1/tenants/me", Some(ADMIN), None)
            .await
            .0
            == StatusCode::INTERNAL_SERVER_ERROR
        {
            failed += 1;
        }
    }
    // Binomial(200, 0.5) falls outside 50..=150 with probability below 1e-12.
    assert!((50..=150).contains(&failed), "{failed} of 200");
}

#[tokio::test]
async fn the_request_log_records_operations_statuses_arrival_times_and_subjects() {
    let t = Tenant::default().await;
    t.call(Method::GET, ORIGINS, None, None).await;
    t.create("log.example.com").await.unwrap();
    t.call(Method::GET, "/api/v1/nowhere", Some(ADMIN), None)
        .await;
    let log = t.control(Method::GET, "/_emulator/requests", None).await;
    let requests = log["requests"].as_array().unwrap();
    let summary: Vec<(&str, &str, u64)> = requests
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap(),
                r["operation"].as_str().unwrap(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("GET", "csp-origins.list", 401),
            ("POST", "csp-origins.create", 201),
            ("GET", "unknown", 404),
        ]
    );
    let at: Vec<u64> = requests
        .iter()
        .map(|r| r["atMs"].as_u64().unwrap())
        .collect();
    assert!(at.windows(2).all(|w| w[0] <= w[1]), "{at:?}");
    // A create names what it made, so writes can be counted per entry.
    let subjects: Vec<Option<&str>> = requests.iter().map(|r| r["subject"].as_str()).collect();
    assert_eq!(subjects, [None, Some("log.example.com"), None]);
    assert_eq!(t.counters().await["total"], 3);
}

#[tokio::test]
async fn reset_clears_the_tenant_but_keeps_seeded_credentials() {
    let t = Tenant::default().await;
    t.create("reset.example.com").await.unwrap();
    let (_, key) = t
        .call(
            Method::POST,
            "/api/v1/api-keys",
            Some(ADMIN),
            Some(json!({"description": "temp"})),
        )
        .await;
    let key_token = key["token"].as_str().unwrap().to_owned();
    t.fault(json!({"path": "/api/v1/tenants/me", "fault": "status", "status": 500}))
        .await;
    t.control(
        Method::POST,
        "/_emulator/clock/advance",
        Some(json!({"seconds": 86400 * 30})),
    )
    .await;

    t.control(Method::POST, "/_emulator/reset", None).await;
    assert_eq!(t.counters().await["total"], 0);
    assert!(t.origins().await.is_empty());
    let (status, _) = t
        .call(Method::GET, "/api/v1/users/me", Some(&key_token), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "issued keys are gone");
    let (status, _) = t
        .call(Method::GET, "/api/v1/tenants/me", Some(ADMIN), None)
        .await;
    assert_eq!(
        status,
        StatusCode::FOUND,
        "faults are gone, the admin key still works"
    );
    let form = format!(
        "grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}"
    );
    let token = t
        .client
        .post(t.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        token.status(),
        StatusCode::OK,
        "the seeded client secret still works"
    );
    let clock = t.control(Method::GET, "/_emulator/clock", None).await;
    let now: jiff::Timestamp = clock["now"].as_str().unwrap().parse().unwrap();
    let skew = now.duration_since(jiff::Timestamp::now()).abs();
    assert!(
        skew < jiff::SignedDuration::from_secs(60),
        "the clock offset is cleared: {skew:?}"
    );
}

#[tokio::test]
async fn the_clock_only_moves_forward_and_reports_its_time() {
    let t = Tenant::default().await;
    let before = t.control(Method::GET, "/_emulator/clock", None).await;
    let after = t
        .control(
            Method::POST,
            "/_emulator/clock/advance",
            Some(json!({"seconds": 3600})),
        )
        .await;
    let before: jiff::Timestamp = before["now"].as_str().unwrap().parse().unwrap();
    let after: jiff::Timestamp = after["now"].as_str().unwrap().parse().unwrap();
    assert!(after.duration_since(before) >= jiff::SignedDuration::from_secs(3600));
    let (status, _) = t
        .call(
            Method::POST,
            "/_emulator/clock/advance",
            None,
            Some(json!({"seconds": -1})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_control_api_refuses_invalid_faults_and_unknown_endpoints() {
    let t = Tenant::default().await;
    for fault in [
        json!({"path": "*", "fault": "latency"}),
        json!({"path": "*", "fault": "explode"}),
        json!({"path": "*", "fault": "status", "status": 200}),
        json!({"path": "*", "fault": "drop", "bogus": 1}),
    ] {
        let (status, body) = t
            .call(Method::POST, "/_emulator/faults", None, Some(fault.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{fault}");
        assert!(
            body["error"].as_str().unwrap().starts_with("invalid fault"),
            "{body}"
        );
    }
    assert_eq!(
        t.call(Method::GET, "/_emulator/nothing", None, None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.call(Method::PUT, "/_emulator/reset", None, None).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let listed = t.control(Method::GET, "/_emulator/faults", None).await;
    assert_eq!(listed["faults"], json!([]));
}

#[tokio::test]
async fn malformed_requests_get_qlik_errors_not_a_crash() {
    let t = Tenant::default().await;
    let bodies = ["", "[", "null", "{\"origin\": 7}", "\u{0}"];
    for body in bodies {
        let response = t
            .client
            .post(t.url(ORIGINS))
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body:?}");
        let error: Value = response.json().await.unwrap();
        assert!(error["errors"][0]["code"].is_string());
    }
    let huge = "x".repeat(2 * 1024 * 1024);
    let response = t
        .client
        .post(t.url(ORIGINS))
        .bearer_auth(ADMIN)
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = t.call(Method::PATCH, ORIGINS, Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _) = t
        .call(Method::GET, "/api/v1/tenants/me", Some(ADMIN), None)
        .await;
    assert_eq!(status, StatusCode::FOUND, "still serving");
}

#[tokio::test]
async fn plain_http_serves_the_same_api() {
    let t = Tenant::start(EmulatorConfig {
        plain_http: true,
        ..EmulatorConfig::default()
    })
    .await;
    assert!(t.emulator.base_url().starts_with("http://127.0.0.1:"));
    let (status, _) = t
        .call(Method::GET, "/api/v1/tenants/me", Some(ADMIN), None)
        .await;
    assert_eq!(status, StatusCode::FOUND);
}

#[tokio::test]
async fn the_ca_is_written_out_and_the_certificate_is_valid_for_localhost() {
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    let t = Tenant::start(EmulatorConfig {
        ca_out: Some(ca_path.clone()),
        ..EmulatorConfig::default()
    })
    .await;
    assert_eq!(
        std::fs::read_to_string(&ca_path).unwrap(),
        t.emulator.ca_pem()
    );
    let url = format!(
        "https://localhost:{}/api/v1/tenants/me",
        t.emulator.local_addr().port()
    );
    let response = t.client.get(&url).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("https://localhost:"),
        "links use the host the client used: {location}"
    );
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let t = Tenant::default().await;
    let base = t.emulator.base_url();
    let client = t.client.clone();
    t.emulator.shutdown().await;
    assert!(
        client
            .get(format!("{base}/api/v1/tenants/me"))
            .send()
            .await
            .is_err()
    );
}

mod binary {
    use std::process::Stdio;
    use std::time::Duration;

    use qlik_csp_operator::emulator::client_tls_config_for;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
    use tokio::process::Command;

    const BINARY: &str = env!("CARGO_BIN_EXE_qlik-tenant-emulator");

    #[tokio::test]
    async fn help_documents_every_flag_and_the_control_api() {
        let output = Command::new(BINARY).arg("--help").output().await.unwrap();
        assert!(output.status.success());
        let help = String::from_utf8(output.stdout).unwrap();
        for needle in [
            "--listen",
            "--admin-api-key",
            "QLIK_EMULATOR_ADMIN_API_KEY",
            "--oauth-client",
            "--ca-out",
            "--plain-http",
            "--rate-limits",
            "--tenant-id",
            "POST   /_emulator/faults",
            "DELETE /_emulator/faults",
            "GET    /_emulator/counters",
            "GET    /_emulator/requests",
            "GET    /_emulator/clock",
            "POST   /_emulator/clock/advance",
            "POST   /_emulator/reset",
            "\"retryAfter\"",
            "\"fraction\"",
        ] {
            assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
        }
    }

    #[tokio::test]
    async fn a_malformed_oauth_client_is_refused_without_echoing_the_secret() {
        let output = Command::new(BINARY)
            .args(["--oauth-client", "client-without-colon-s3cr3t"])
            .output()
            .await
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("ID:SECRET"), "{stderr}");
        assert!(!stderr.contains("s3cr3t"), "{stderr}");
        assert!(output.stdout.is_empty());
    }

    #[tokio::test]
    async fn the_binary_prints_its_url_first_and_never_logs_credentials() {
        let admin = "binary-admin-token-5f1e";
        let secret = "binary-client-secret-77aa";
        let dir = tempfile::tempdir().unwrap();
        let ca_path = dir.path().join("ca.pem");
        let mut child = Command::new(BINARY)
            .args(["--listen", "127.0.0.1:0", "--ca-out"])
            .arg(&ca_path)
            .args([
                "--oauth-client",
                &format!("bin-client:{secret}"),
                "--tenant-id",
                "bin-tenant",
            ])
            .env("QLIK_EMULATOR_ADMIN_API_KEY", admin)
            .env("RUST_LOG", "trace")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(60), stdout.read_line(&mut line))
            .await
            .expect("the first line within a minute")
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line: {line:?}"))
            .to_owned();
        assert!(base.starts_with("https://127.0.0.1:"), "{base}");

        let ca = std::fs::read_to_string(&ca_path).unwrap();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(client_tls_config_for(&ca).unwrap())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let token: serde_json::Value = client
            .post(format!("{base}/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=client_credentials&client_id=bin-client&client_secret={secret}"
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let access = token["access_token"].as_str().unwrap().to_owned();
        let key: serde_json::Value = client
            .post(format!("{base}/api/v1/api-keys"))
            .bearer_auth(&access)
            .json(&serde_json::json!({"description": "from the binary test"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key_token = key["token"].as_str().unwrap().to_owned();
        let tenant = client
            .get(format!("{base}/api/v1/tenants/me"))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap();
        assert!(
            tenant.headers()["location"]
                .to_str()
                .unwrap()
                .ends_with("/api/v1/tenants/bin-tenant")
        );
        let refused = client
            .get(format!("{base}/api/v1/users/me"))
            .bearer_auth("wrong-token-3c3c")
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), reqwest::StatusCode::UNAUTHORIZED);

        child.start_kill().unwrap();
        child.wait().await.unwrap();
        let mut logs = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut logs)
            .await
            .unwrap();
        assert!(
            logs.contains("oauth.token"),
            "logs name operations:\n{logs}"
        );
        for credential in [admin, secret, &access, &key_token, "wrong-token-3c3c"] {
            assert!(
                !logs.contains(credential),
                "a credential leaked into the logs:\n{logs}"
            );
        }
    }
}
