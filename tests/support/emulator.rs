//! The tenant emulator as tests drive it: [`start`] with a panic that says what failed, and
//! [`EmulatorControl`], a client for its control API under `/_emulator/` (faults, counters,
//! the request log, the clock, the generated header, and seeding and reading back the
//! secret targets). HTTPS to the emulator only; no kube.

use std::time::Duration;

use qlik_csp_operator::emulator::{Emulator, EmulatorConfig};
use reqwest::Method;
use serde_json::{Value, json};

/// Starts an emulator with `config`.
pub async fn start(config: EmulatorConfig) -> Emulator {
    Emulator::start(config)
        .await
        .unwrap_or_else(|e| panic!("failed to start the emulator: {e}"))
}

/// A client for the emulator's control API (see `qlik-tenant-emulator --help`).
#[derive(Clone)]
pub struct EmulatorControl {
    http: reqwest::Client,
    base_url: String,
}

impl EmulatorControl {
    /// A client trusting `emulator`'s CA.
    pub fn new(emulator: &Emulator) -> EmulatorControl {
        let tls = emulator
            .client_tls_config()
            .unwrap_or_else(|e| panic!("failed to build the emulator's TLS config: {e}"));
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .build()
            .unwrap_or_else(|e| panic!("failed to build the control client: {e}"));
        EmulatorControl {
            http,
            base_url: emulator.base_url(),
        }
    }

    /// A control call; fails the test unless it succeeds. Returns the JSON answer, or
    /// `Null` for an empty one.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base_url);
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "{url}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// `GET /_emulator/counters`.
    pub async fn counters(&self) -> Value {
        self.call(Method::GET, "/_emulator/counters", None).await
    }

    /// The requests the emulator served for `operation` (e.g. `api-keys.create`), `None`
    /// while it has served none.
    pub async fn counter(&self, operation: &str) -> Option<u64> {
        self.counters().await["operations"][operation]["requests"].as_u64()
    }

    /// The requests the emulator served for `operation`, 0 while it has served none.
    pub async fn count(&self, operation: &str) -> u64 {
        self.counter(operation).await.unwrap_or(0)
    }

    /// The requests for `operation` answered with `status` (e.g. `"200"`).
    pub async fn count_status(&self, operation: &str, status: &str) -> u64 {
        self.counters().await["operations"][operation]["byStatus"][status]
            .as_u64()
            .unwrap_or(0)
    }

    /// Every tenant request the emulator has seen (the control API is not counted).
    pub async fn total(&self) -> u64 {
        self.counters().await["total"].as_u64().unwrap_or(0)
    }

    /// The request log, in completion order.
    pub async fn requests(&self) -> Vec<Value> {
        let log = self.call(Method::GET, "/_emulator/requests", None).await;
        log["requests"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("no request log: {log}"))
    }

    /// The operations of the request log, in completion order.
    pub async fn operations(&self) -> Vec<String> {
        self.requests()
            .await
            .iter()
            .map(|r| r["operation"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Adds a fault rule (see `qlik-tenant-emulator --help`).
    pub async fn fault(&self, rule: Value) {
        self.call(Method::POST, "/_emulator/faults", Some(rule))
            .await;
    }

    /// The remaining uses of each fault rule, by id.
    pub async fn faults(&self) -> Vec<(String, Option<u64>)> {
        let listed = self.call(Method::GET, "/_emulator/faults", None).await;
        listed["faults"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|f| {
                (
                    f["id"].as_str().unwrap_or_default().to_owned(),
                    f["remaining"].as_u64(),
                )
            })
            .collect()
    }

    /// Moves the emulator's clock (key and secret expiry) forward.
    pub async fn advance_clock(&self, by: Duration) {
        let body = json!({ "seconds": by.as_secs() });
        self.call(Method::POST, "/_emulator/clock/advance", Some(body))
            .await;
    }

    /// Makes `generate-header` return exactly `header`.
    pub async fn set_generated_header(&self, header: &str) {
        let body = json!({ "header": header });
        self.call(Method::PUT, "/_emulator/generated-header", Some(body))
            .await;
    }

    /// Makes `generate-header` return the compiled header again.
    pub async fn clear_generated_header(&self) {
        self.call(Method::DELETE, "/_emulator/generated-header", None)
            .await;
    }

    /// Seeds a data connection (`{"name", "type"?, "username"?, "password"?,
    /// "connectionSecret"?, "interactiveOAuth"?, ...}`); its id.
    pub async fn add_data_connection(&self, seed: Value) -> String {
        let created = self
            .call(Method::POST, "/_emulator/data-connections", Some(seed))
            .await;
        created["id"].as_str().unwrap_or_default().to_owned()
    }

    /// What the tenant holds for a data connection, secrets included, with
    /// `credentialWrites`.
    pub async fn data_connection(&self, id: &str) -> Value {
        let path = format!("/_emulator/data-connections/{id}");
        self.call(Method::GET, &path, None).await
    }

    /// Seeds an automation connection (`{"name", "params": [{"name", "value"?, "secret"?}],
    /// "connected"?}`); answers `{"id", "params": [{"id", "name"}]}`.
    pub async fn add_automation_connection(&self, seed: Value) -> Value {
        self.call(
            Method::POST,
            "/_emulator/automation-connections",
            Some(seed),
        )
        .await
    }

    /// What the tenant holds for an automation connection, secret values included.
    pub async fn automation_connection(&self, id: &str) -> Value {
        let path = format!("/_emulator/automation-connections/{id}");
        self.call(Method::GET, &path, None).await
    }

    /// Sets what `actions/check` of the automation connection `id` answers.
    pub async fn set_check(&self, id: &str, connected: bool) {
        let path = format!("/_emulator/automation-connections/{id}/check");
        let body = json!({ "connected": connected });
        self.call(Method::PUT, &path, Some(body)).await;
    }

    /// Creates or replaces the email configuration (`{"username"?, "password"?, ...}`).
    pub async fn put_email_config(&self, seed: Value) {
        self.call(Method::PUT, "/_emulator/email-config", Some(seed))
            .await;
    }

    /// The email configuration as the tenant holds it, password included.
    pub async fn email_config(&self) -> Value {
        self.call(Method::GET, "/_emulator/email-config", None)
            .await
    }

    /// Sets what `verify-connection` answers (`{"success", "message"?,
    /// "smtpResponseCode"?, "connectionFailed"?}`).
    pub async fn set_verify(&self, outcome: Value) {
        self.call(Method::PUT, "/_emulator/email-config/verify", Some(outcome))
            .await;
    }

    /// Seeds an automation (`{"name", "state"?, "schedules"?, "lastRunStatus"?, ...}`);
    /// its id and execution token.
    pub async fn add_automation(&self, seed: Value) -> (String, String) {
        let created = self
            .call(Method::POST, "/_emulator/automations", Some(seed))
            .await;
        let field = |name: &str| created[name].as_str().unwrap_or_default().to_owned();
        (field("id"), field("executionToken"))
    }

    /// An automation as the tenant holds it: `{"id", "name", "state", "executionToken",
    /// "ownerId"}`.
    pub async fn automation(&self, id: &str) -> Value {
        let path = format!("/_emulator/automations/{id}");
        self.call(Method::GET, &path, None).await
    }
}
