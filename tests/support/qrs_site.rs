//! An emulated QRS site (a Qlik Sense Enterprise on Windows site's Repository Service) as
//! tests drive it: [`QrsSiteFixture::start`] runs a [`QrsSite`] in process, with a reqwest
//! client that presents the site's client certificate, and async helpers for the site's
//! control API (seeding, reading back with secrets, an administrator's edits, the request
//! log). HTTPS with mutual TLS to the site only; no kube.
//!
//! ```ignore
//! let qrs = support::qrs_site::QrsSiteFixture::start().await;
//! let proxy = qrs.seed_virtual_proxy("embed", "X-Frame-Options: DENY", &["app.example.com"]).await;
//! // ... run the operator against qrs.base_url() with qrs.site.ca_pem() etc. ...
//! qrs.assert_every_request_carried_a_matching_xrfkey().await;
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use qlik_csp_operator::emulator::qrs::{QlikUser, QrsSite, QrsSiteConfig};
use reqwest::Method;
use serde_json::{Value, json};

pub use qlik_csp_operator::emulator::qrs::RecordedRequest;

/// A running site and a client with its identity.
pub struct QrsSiteFixture {
    pub site: QrsSite,
    /// Trusts the site's CA and presents its client certificate.
    pub http: reqwest::Client,
}

/// A QRS answer as a test sees it.
#[derive(Debug)]
pub struct QrsReply {
    pub status: u16,
    pub content_type: String,
    pub text: String,
}

impl QrsReply {
    /// The body as JSON; fails the test when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.text))
    }
}

/// A fresh 16-character alphanumeric Xrfkey (unique in this process).
pub fn fresh_xrfkey() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("Tk{:014}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The requests of `log` whose Xrfkey was missing in the query or the header, differed
/// between them, or was not 16 characters of `[0-9A-Za-z]`.
pub fn mismatched_xrfkeys(log: &[RecordedRequest]) -> Vec<&RecordedRequest> {
    log.iter()
        .filter(|r| {
            let valid = |k: &str| k.len() == 16 && k.bytes().all(|b| b.is_ascii_alphanumeric());
            !(r.xrfkey_query.is_some()
                && r.xrfkey_query == r.xrfkey_header
                && r.xrfkey_query.as_deref().is_some_and(valid))
        })
        .collect()
}

impl QrsSiteFixture {
    /// A site with the default configuration (`INTERNAL\sa_api`, 38.22.0).
    pub async fn start() -> QrsSiteFixture {
        QrsSiteFixture::start_with(QrsSiteConfig::default()).await
    }

    /// A site with `config`.
    pub async fn start_with(config: QrsSiteConfig) -> QrsSiteFixture {
        let site = QrsSite::start(config)
            .await
            .unwrap_or_else(|e| panic!("failed to start the QRS site: {e}"));
        let tls = site
            .client_tls_config()
            .unwrap_or_else(|e| panic!("failed to build the QRS client TLS config: {e}"));
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .build()
            .unwrap_or_else(|e| panic!("failed to build the QRS client: {e}"));
        QrsSiteFixture { site, http }
    }

    /// `https://127.0.0.1:<port>` (no `/qrs`).
    pub fn base_url(&self) -> String {
        self.site.base_url()
    }

    /// A QRS API call as a well-behaved client makes it: `path_and_query` (e.g.
    /// `/qrs/about` or `/qrs/virtualproxyconfig/full?filter=...`, already encoded) gets a
    /// fresh Xrfkey in the query and the header, and `INTERNAL\sa_api` in `X-Qlik-User`.
    pub async fn api(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> QrsReply {
        let key = fresh_xrfkey();
        let separator = if path_and_query.contains('?') {
            '&'
        } else {
            '?'
        };
        let url = format!("{}{path_and_query}{separator}xrfkey={key}", self.base_url());
        let mut request = self
            .http
            .request(method, &url)
            .header("X-Qlik-Xrfkey", &key)
            .header("X-Qlik-User", QlikUser::sa_api().header_value());
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = response.text().await.unwrap_or_default();
        QrsReply {
            status,
            content_type,
            text,
        }
    }

    /// A control call; fails the test unless it succeeds. The JSON answer, or `Null`.
    pub async fn control(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base_url());
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

    /// Seeds a virtual proxy with `prefix`, `additionalResponseHeaders` = `headers` and
    /// `websocketCrossOriginWhiteList` = `allow_list`; its id.
    pub async fn seed_virtual_proxy(
        &self,
        prefix: &str,
        headers: &str,
        allow_list: &[&str],
    ) -> String {
        let body = json!({
            "prefix": prefix,
            "description": format!("{prefix} (seeded by the test)"),
            "additionalResponseHeaders": headers,
            "websocketCrossOriginWhiteList": allow_list,
        });
        let created = self
            .control(Method::POST, "/_emulator/qrs/virtualproxies", Some(body))
            .await;
        created["id"].as_str().unwrap_or_default().to_owned()
    }

    /// Virtual proxy `id` as the site stores it.
    pub async fn virtual_proxy(&self, id: &str) -> Value {
        let path = format!("/_emulator/qrs/virtualproxies/{id}");
        self.control(Method::GET, &path, None).await
    }

    /// Every virtual proxy as the site stores it.
    pub async fn virtual_proxies(&self) -> Vec<Value> {
        let all = self
            .control(Method::GET, "/_emulator/qrs/virtualproxies", None)
            .await;
        all["virtualProxies"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// An administrator sets `additionalResponseHeaders` of `id` in the QMC now
    /// (`modifiedDate` moves on); the proxy afterwards.
    pub async fn edit_virtual_proxy(&self, id: &str, headers: &str) -> Value {
        let path = format!("/_emulator/qrs/virtualproxies/{id}/edit");
        let body = json!({ "additionalResponseHeaders": headers });
        self.control(Method::POST, &path, Some(body)).await
    }

    /// An administrator's edit of `websocketCrossOriginWhiteList` of `id`, now.
    pub async fn edit_allow_list(&self, id: &str, allow_list: &[&str]) -> Value {
        let path = format!("/_emulator/qrs/virtualproxies/{id}/edit");
        let body = json!({ "websocketCrossOriginWhiteList": allow_list });
        self.control(Method::POST, &path, Some(body)).await
    }

    /// Arms an administrator's edit of `additionalResponseHeaders` of `id` that happens
    /// right after the next API read of that proxy (`GET /{id}` or `/full`): the reader's
    /// following `PUT` is stale.
    pub async fn edit_after_next_read(&self, id: &str, headers: &str) {
        let path = format!("/_emulator/qrs/virtualproxies/{id}/edit-after-next-read");
        let body = json!({ "additionalResponseHeaders": headers });
        self.control(Method::POST, &path, Some(body)).await;
    }

    /// Seeds a data connection `name` with `user` and `password`; its id.
    pub async fn seed_data_connection(&self, name: &str, user: &str, password: &str) -> String {
        let body = json!({ "name": name, "username": user, "password": password });
        let created = self
            .control(Method::POST, "/_emulator/qrs/dataconnections", Some(body))
            .await;
        created["id"].as_str().unwrap_or_default().to_owned()
    }

    /// Data connection `id` as the site stores it, password and `credentialWrites` included.
    pub async fn data_connection(&self, id: &str) -> Value {
        let path = format!("/_emulator/qrs/dataconnections/{id}");
        self.control(Method::GET, &path, None).await
    }

    /// Every request to a QRS path the site has seen, in completion order.
    pub async fn requests(&self) -> Vec<RecordedRequest> {
        let log = self.control(Method::GET, "/_emulator/requests", None).await;
        serde_json::from_value(log["requests"].clone())
            .unwrap_or_else(|e| panic!("unreadable request log ({e}): {log}"))
    }

    /// Forgets the request log and the counters.
    pub async fn clear_requests(&self) {
        self.control(Method::DELETE, "/_emulator/requests", None)
            .await;
    }

    /// `{"operations": {name: {"requests", "byStatus"}}, "total"}`.
    pub async fn counters(&self) -> Value {
        self.control(Method::GET, "/_emulator/counters", None).await
    }

    /// Adds a fault rule (as the cloud emulator's: `{"method"?, "path", "fault": "status" |
    /// "drop" | "latency", "status"?, "times"?, ...}`).
    pub async fn fault(&self, rule: Value) {
        self.control(Method::POST, "/_emulator/faults", Some(rule))
            .await;
    }

    /// Fails the test unless the site saw at least one request and every request carried
    /// the same valid Xrfkey in the query and the header; the number of requests.
    pub async fn assert_every_request_carried_a_matching_xrfkey(&self) -> usize {
        let log = self.requests().await;
        assert!(
            !log.is_empty(),
            "the QRS site saw no request: nothing to check the Xrfkeys of"
        );
        let bad = mismatched_xrfkeys(&log);
        assert!(
            bad.is_empty(),
            "requests without a matching Xrfkey: {bad:#?}"
        );
        log.len()
    }

    /// Fails the test unless no two requests the site saw shared an Xrfkey (a client
    /// makes a fresh one per call).
    pub async fn assert_xrfkeys_are_fresh(&self) {
        let log = self.requests().await;
        let mut keys: Vec<&str> = log
            .iter()
            .filter_map(|r| r.xrfkey_query.as_deref())
            .collect();
        let total = keys.len();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), total, "an Xrfkey was used twice: {log:#?}");
    }
}
