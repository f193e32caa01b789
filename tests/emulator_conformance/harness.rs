//! Starts an emulator with seeded credentials and sends requests whose answers are
//! checked against the definitions as they arrive (or, for the tests of the emulator's own
//! behaviour that need no definitions, not checked at all). I/O (HTTPS to the emulator).

use std::collections::BTreeSet;
use std::sync::Mutex;

use qlik_csp_operator::emulator::{Emulator, EmulatorConfig, Operation};
use serde_json::{Value, json};

use super::spec::{Reply, Specs, spec_dir};

pub const ADMIN: &str = "admin-token-for-conformance";
pub const CLIENT_ID: &str = "m2m-client";
pub const CLIENT_SECRET: &str = "m2m-secret-0001";

/// A running emulator, a client that trusts it and the definitions to check against.
pub struct Harness {
    pub emulator: Emulator,
    client: reqwest::Client,
    /// `None`: the answers are not checked (see [`unchecked`]).
    specs: Option<Specs>,
    /// (operation, status) pairs that were checked.
    checked: Mutex<BTreeSet<(Operation, u16)>>,
}

/// A request body.
pub enum Payload {
    None,
    Json(Value),
    Raw(&'static str, String),
}

impl Harness {
    pub async fn start(specs: Option<Specs>, config: EmulatorConfig) -> Harness {
        let config = EmulatorConfig {
            admin_api_keys: vec![ADMIN.to_owned()],
            oauth_clients: vec![(CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned())],
            ..config
        };
        let emulator = Emulator::start(config).await.expect("the emulator starts");
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(emulator.client_tls_config().expect("a TLS config"))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("a client");
        Harness {
            emulator,
            client,
            specs,
            checked: Mutex::new(BTreeSet::new()),
        }
    }

    pub fn url(&self, path_and_query: &str) -> String {
        if path_and_query.starts_with("https://") {
            path_and_query.to_owned()
        } else {
            format!("{}{path_and_query}", self.emulator.base_url())
        }
    }

    /// Sends `op` to `path_and_query` (or a full URL) and checks the answer.
    pub async fn send(
        &self,
        op: Operation,
        path_and_query: &str,
        token: Option<&str>,
        payload: Payload,
    ) -> Reply {
        self.send_with(op, path_and_query, token, payload, &[])
            .await
    }

    pub async fn admin(&self, op: Operation, path_and_query: &str) -> Reply {
        self.send(op, path_and_query, Some(ADMIN), Payload::None)
            .await
    }

    pub async fn admin_json(&self, op: Operation, path_and_query: &str, body: Value) -> Reply {
        self.send(op, path_and_query, Some(ADMIN), Payload::Json(body))
            .await
    }

    pub async fn anon(&self, op: Operation, path_and_query: &str) -> Reply {
        self.send(op, path_and_query, None, Payload::None).await
    }

    pub async fn send_with(
        &self,
        op: Operation,
        path_and_query: &str,
        token: Option<&str>,
        payload: Payload,
        headers: &[(&str, &str)],
    ) -> Reply {
        let method = reqwest::Method::from_bytes(op.method().as_bytes()).expect("a method");
        let mut request = self.client.request(method, self.url(path_and_query));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request = match payload {
            Payload::None => request,
            Payload::Json(value) => request.json(&value),
            Payload::Raw(content_type, body) => {
                request.header("content-type", content_type).body(body)
            }
        };
        let response = request.send().await.expect("the emulator answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = response.text().await.expect("a body");
        let json = serde_json::from_str(&text).ok();
        let reply = Reply {
            status,
            headers,
            content_type,
            text,
            json,
        };
        if let Some(specs) = &self.specs {
            if let Err(rejection) = specs.check(op, &reply) {
                panic!(
                    "{} answered {}: {rejection}\n{}",
                    op.name(),
                    reply.status,
                    reply.text
                );
            }
            self.checked.lock().unwrap().insert((op, status));
        }
        reply
    }

    pub async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.client.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the control API answers");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap_or(Value::Null)
    }

    pub async fn advance_clock(&self, seconds: u64) {
        self.control(
            reqwest::Method::POST,
            "/_emulator/clock/advance",
            Some(json!({ "seconds": seconds })),
        )
        .await;
    }

    pub async fn add_fault(&self, fault: Value) {
        self.control(reqwest::Method::POST, "/_emulator/faults", Some(fault))
            .await;
    }

    /// Panics unless each `(operation, status)` was checked.
    pub fn assert_covered(&self, expected: &[(Operation, u16)]) {
        let checked = self.checked.lock().unwrap();
        let missing: Vec<_> = expected
            .iter()
            .filter(|pair| !checked.contains(pair))
            .map(|(op, status)| format!("{} {status}", op.name()))
            .collect();
        assert!(missing.is_empty(), "not exercised: {missing:?}");
    }
}

pub async fn harness() -> Option<Harness> {
    harness_with(EmulatorConfig::default()).await
}

/// A harness checking every answer; `None` (skip) only when the definitions are missing
/// and the developer opted out (see [`spec_dir`]).
pub async fn harness_with(config: EmulatorConfig) -> Option<Harness> {
    let dir = spec_dir()?;
    Some(Harness::start(Some(Specs::load(&dir)), config).await)
}

/// A harness that checks no answer against the definitions, for tests of the emulator's
/// own behaviour: they run whether or not the definitions are there.
pub async fn unchecked(config: EmulatorConfig) -> Harness {
    Harness::start(None, config).await
}

pub fn entry(origin: &str) -> Value {
    json!({
        "name": format!("test/{origin}"),
        "origin": origin,
        "description": "conformance",
        "scriptSrc": true,
        "imgSrc": true,
    })
}
