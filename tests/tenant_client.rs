//! The tenant client against the tenant emulator over real HTTPS: every operation, paging,
//! `429 Retry-After` (and the tenant-wide pause it starts), 5xx, unknown outcomes and
//! their reconciliation, auth failures, OAuth token reuse and refresh, credential swaps,
//! response bodies beyond the cap, and secrets kept out of logs and errors.
//!
//! Waits are asserted from the emulator's request log and counters, never with sleeps.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qlik_csp_operator::csp::{Directive, Origin};
use qlik_csp_operator::emulator::{Emulator, EmulatorConfig};
use qlik_csp_operator::tenant::{
    ApiKeyStatus, ClientConfig, Credential, CredentialSource, CspOriginContent, CspOriginQuery,
    Deleted, Error, NewApiKey, RateLimits, RetryPolicy, TenantClient, USER_AGENT,
};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use support::emulator::EmulatorControl;

const ADMIN_KEY: &str = "admin-api-key-0123456789abcdef";
const CLIENT_ID: &str = "operator-m2m";
const CLIENT_SECRET: &str = "m2m-client-secret-0123456789abcdef";

/// An emulator with one admin API key and one OAuth client, and a way to drive it.
struct Tenant {
    emulator: Emulator,
    control: EmulatorControl,
}

impl Tenant {
    async fn start() -> Tenant {
        Tenant::start_with(EmulatorConfig::default()).await
    }

    async fn start_with(config: EmulatorConfig) -> Tenant {
        let emulator = support::emulator::start(EmulatorConfig {
            admin_api_keys: vec![ADMIN_KEY.to_owned()],
            oauth_clients: vec![(CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned())],
            ..config
        })
        .await;
        let control = EmulatorControl::new(&emulator);
        Tenant { emulator, control }
    }

    /// Test defaults: the emulator's CA, short backoffs, budgets that never delay a test.
    fn config(&self) -> ClientConfig {
        ClientConfig {
            ca_bundle: Some(self.emulator.ca_pem().to_owned()),
            request_timeout: Duration::from_secs(10),
            rate_limits: RateLimits {
                writes_per_minute: 10_000,
                reads_per_minute: 10_000,
            },
            retry: RetryPolicy {
                initial_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(100),
                ..RetryPolicy::default()
            },
            ..ClientConfig::new(self.emulator.base_url())
        }
    }

    fn client_with(&self, config: ClientConfig, credential: Credential) -> TenantClient {
        TenantClient::new(config, credential, secret_source("qlik-admin", "apiKey"))
            .unwrap_or_else(|e| panic!("failed to build the client: {e}"))
    }

    fn api_key_client(&self) -> TenantClient {
        self.client_with(self.config(), Credential::api_key(ADMIN_KEY))
    }

    fn oauth_client(&self) -> TenantClient {
        self.client_with(
            self.config(),
            Credential::oauth_client(CLIENT_ID, CLIENT_SECRET),
        )
    }

    async fn fault(&self, fault: Value) {
        self.control.fault(fault).await;
    }

    async fn counters(&self) -> Value {
        self.control.counters().await
    }

    /// How many requests the emulator saw for `operation`, optionally with `status`.
    async fn count(&self, operation: &str, status: Option<&str>) -> u64 {
        match status {
            None => self.control.count(operation).await,
            Some(s) => self.control.count_status(operation, s).await,
        }
    }

    /// The requests for `operation`, in the order they arrived.
    async fn requests(&self, operation: &str) -> Vec<Value> {
        let mut requests: Vec<Value> = self
            .control
            .requests()
            .await
            .into_iter()
            .filter(|r| r["operation"] == operation)
            .collect();
        requests.sort_by_key(|r| r["atMs"].as_u64().unwrap_or(0));
        requests
    }
}

fn secret_source(name: &str, key: &str) -> CredentialSource {
    CredentialSource::Secret {
        namespace: "team-a".to_owned(),
        name: name.to_owned(),
        key: key.to_owned(),
    }
}

fn origin(s: &str) -> Origin {
    Origin::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn entry(name: &str, origin_text: &str, directives: &[Directive]) -> CspOriginContent {
    CspOriginContent::new(
        name,
        &origin(origin_text),
        directives.iter().copied(),
        false,
        "test",
    )
}

fn ok<T>(result: Result<T, Error>) -> T {
    result.unwrap_or_else(|e| panic!("{e} ({})", e.reason()))
}

#[tokio::test]
async fn every_csp_origin_operation_round_trips_through_the_emulator() {
    let tenant = Tenant::start().await;
    let client = tenant.api_key_client();

    let created = ok(client
        .create_csp_origin(&entry(
            "team-a/cdn",
            "https://cdn.example.com",
            &[Directive::ScriptSrc],
        ))
        .await);
    assert_eq!(created.content.origin, "https://cdn.example.com");
    assert!(created.content.script_src && !created.content.img_src);

    let fetched = ok(client.get_csp_origin(&created.id).await);
    assert_eq!(fetched.content, created.content);

    let mut content = fetched.content.clone();
    *content.flag_mut(Directive::ImgSrc) = true;
    content.connect_src_wss = true;
    let updated = ok(client.update_csp_origin(&created.id, &content).await);
    assert_eq!(
        updated.content.directives().into_iter().collect::<Vec<_>>(),
        [Directive::ImgSrc, Directive::ScriptSrc]
    );
    assert!(updated.content.connect_src_wss);

    let listed = ok(client.list_csp_origins().await);
    assert_eq!(listed.len(), 1);
    let found = ok(client
        .find_csp_origins_by_origin("HTTPS://CDN.EXAMPLE.COM")
        .await);
    assert_eq!(found.len(), 1);
    assert!(
        ok(client
            .find_csp_origins_by_origin("https://other.example.com")
            .await)
        .is_empty()
    );

    let header = ok(client.generate_csp_header().await);
    assert!(
        header.contains("script-src") && header.contains("https://cdn.example.com"),
        "{header}"
    );

    assert_eq!(
        ok(client.delete_csp_origin(&created.id).await),
        Deleted::Deleted
    );
    assert_eq!(
        ok(client.delete_csp_origin(&created.id).await),
        Deleted::AlreadyGone
    );
    let gone = client.get_csp_origin(&created.id).await.err();
    assert_eq!(gone.as_ref().map(Error::reason), Some("NotFound"));
}

#[tokio::test]
async fn listing_follows_the_next_links_across_pages() {
    let tenant = Tenant::start().await;
    let client = tenant.api_key_client();
    for i in 0..130 {
        ok(client
            .create_csp_origin(&entry(
                &format!("e{i}"),
                &format!("https://h{i}.example.com"),
                &[Directive::ImgSrc],
            ))
            .await);
    }
    let query = CspOriginQuery {
        limit: Some(50),
        ..CspOriginQuery::default()
    };
    let all = ok(client.list_csp_origins_with(&query).await);
    assert_eq!(all.len(), 130);
    let mut ids: Vec<&str> = all.iter().map(|e| e.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 130, "no entry twice");
    assert_eq!(tenant.count("csp-origins.list", Some("200")).await, 3);
}

#[tokio::test]
async fn a_429_is_retried_no_sooner_than_its_retry_after() {
    let tenant = Tenant::start().await;
    let client = tenant.api_key_client();
    tenant
        .fault(json!({"method": "GET", "path": "/api/v1/csp-origins", "fault": "status", "status": 429, "retryAfter": 1, "times": 1}))
        .await;

    ok(client.list_csp_origins().await);

    let requests = tenant.requests("csp-origins.list").await;
    let statuses: Vec<u64> = requests
        .iter()
        .map(|r| r["status"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(statuses, [429, 200]);
    let at = |r: &Value| r["atMs"].as_u64().unwrap_or(0);
    let waited = at(&requests[1]) - at(&requests[0]);
    assert!(
        waited >= 1000,
        "retried after {waited} ms, Retry-After was 1 s"
    );
}

#[tokio::test]
async fn a_retry_after_longer_than_the_client_accepts_fails_as_rate_limited() {
    let tenant = Tenant::start().await;
    let client = tenant.api_key_client();
    tenant
        .fault(json!({"path": "/api/v1/csp-origins", "fault": "status", "status": 429, "retryAfter": 3600, "times": 1}))
        .await;

    let err = client.list_csp_origins().await.err();
    assert_eq!(err.as_ref().map(Error::reason), Some("RateLimited"));
    assert_eq!(
        err.as_ref().and_then(Error::retry_after),
        Some(Duration::from_secs(3600))
    );
    assert!(err.is_some_and(|e| e.is_transient()));
    assert_eq!(tenant.count("csp-origins.list", None).await, 1);
}

#[tokio::test]
async fn a_long_retry_after_pauses_the_whole_tenant_and_requests_fail_unsent_until_it_ends() {
    let tenant = Tenant::start().await;
    let client = tenant.api_key_client();
    tenant
        .fault(json!({"path": "/api/v1/csp-origins", "fault": "status", "status": 429, "retryAfter": 600, "times": 1}))
        .await;

    let first = client.list_csp_origins().await.err();
    assert_eq!(
        first.as_ref().and_then(Error::retry_after),
        Some(Duration::from_secs(600))
    );
    // Another operation, from a clone (as another controller holds it), on a path the
    // fault does not cover: refused inside the client, with the remaining wait.
    let other = client.clone();
    let refused = other.tenant_id().await.err();
    assert_eq!(refused.as_ref().map(Error::reason), Some("RateLimited"));
    let remaining = refused.as_ref().and_then(Error::retry_after);
    assert!(
        remaining.is_some_and(|d| d <= Duration::from_secs(600) && d > Duration::from_secs(590)),
        "{remaining:?}"
    );
    assert!(refused.is_some_and(|e| e.is_transient()));
    let paused = other.paused_for();
    assert!(
        paused.is_some_and(|d| d > Duration::from_secs(590)),
        "{paused:?}"
    );
    assert_eq!(
        tenant.counters().await["total"],
        1,
        "only the first request reached the tenant"
    );

    // A client built to replace this one (new settings) keeps the pause.
    let replacement = tenant.api_key_client();
    assert_eq!(replacement.paused_for(), None);
    replacement.carry_pause_from(&client);
    let refused = replacement.list_csp_origins().await.err();
    assert!(refused.and_then(|e| e.retry_after()) > Some(Duration::from_secs(590)));
    assert_eq!(tenant.counters().await["total"], 1);
}

#[tokio::test]
async fn a_retry_after_beyond_an_hour_pauses_for_an_hour() {
    let tenant = Tenant::start().await;
    let client = tenant.api_key_client();
    tenant
        .fault(json!({"path": "/api/v1/csp-origins", "fault": "status", "status": 429, "retryAfter": 10_000_000_000u64, "times": 1}))
        .await;
    let err = client.list_csp_origins().await.err();
    assert_eq!(
        err.as_ref().and_then(Error::retry_after),
        Some(qlik_csp_operator::tenant::client::MAX_PAUSE)
    );
}

#[tokio::test]
async fn server_errors_on_reads_are_retried_until_success() {
    let tenant = Tenant::start().await;
    let client = tenant.api_key_client();
    tenant
        .fault(json!({"method": "GET", "path": "/api/v1/csp-origins*", "fault": "status", "status": 503, "times": 2}))
        .await;

    ok(client.list_csp_origins().await);

    assert_eq!(tenant.count("csp-origins.list", Some("503")).await, 2);
    assert_eq!(tenant.count("csp-origins.list", Some("200")).await, 1);
}

#[tokio::test]
async fn server_errors_are_given_up_after_the_bounded_attempts() {
    let tenant = Tenant::start().await;
    let client = tenant.api_key_client();
    tenant
        .fault(json!({"method": "GET", "path": "/api/v1/csp-origins*", "fault": "status", "status": 500}))
        .await;

    let err = client.list_csp_origins().await.err();
    assert_eq!(err.as_ref().map(Error::reason), Some("TenantUnavailable"));
    assert_eq!(
        tenant.count("csp-origins.list", None).await,
        u64::from(RetryPolicy::default().max_attempts)
    );
}

/// The entries' backoff caps its waits at a minute while the tenant answers (see
/// `controller::backoff`): only a real answer may count, never a 5xx or a 429.
#[tokio::test]
async fn the_client_remembers_when_the_tenant_last_answered_and_5xx_or_429_are_no_answer() {
    let tenant = Tenant::start().await;
    let client = tenant.api_key_client();
    assert_eq!(client.answered_at(), None, "nothing sent yet");
    tenant
        .fault(json!({"method": "GET", "path": "/api/v1/csp-origins*", "fault": "status", "status": 500}))
        .await;
    let err = client.list_csp_origins().await.err();
    assert_eq!(err.as_ref().map(Error::reason), Some("TenantUnavailable"));
    assert_eq!(client.answered_at(), None, "a 5xx is no answer");
    tenant
        .fault(json!({"path": "/api/v1/tenants/me", "fault": "status", "status": 429, "retryAfter": 3600, "times": 1}))
        .await;
    let err = client.tenant_id().await.err();
    assert_eq!(err.as_ref().map(Error::reason), Some("RateLimited"));
    assert_eq!(client.answered_at(), None, "a 429 is no answer");

    let before = tokio::time::Instant::now();
    let other = tenant.api_key_client();
    ok(other.tenant_id().await);
    let answered = other.answered_at();
    assert!(answered.is_some_and(|at| at >= before), "{answered:?}");
    assert_eq!(client.answered_at(), None, "each client keeps its own");
}

#[tokio::test]
async fn a_create_whose_response_times_out_is_an_unknown_outcome_found_by_origin() {
    let tenant = Tenant::start().await;
    let client = tenant.client_with(
        ClientConfig {
            request_timeout: Duration::from_millis(1000),
            ..tenant.config()
        },
        Credential::api_key(ADMIN_KEY),
    );
    tenant
        .fault(json!({"method": "POST", "path": "/api/v1/csp-origins", "fault": "latency", "latencyMs": 5000, "when": "after", "times": 1}))
        .await;

    let content = entry(
        "team-a/app",
        "https://app.example.com",
        &[Directive::FrameAncestors],
    );
    let err = client.create_csp_origin(&content).await.err();
    assert_eq!(err.as_ref().map(Error::reason), Some("OutcomeUnknown"));
    assert!(err.is_some_and(|e| e.is_transient()));
    // The emulator logs a request when its response completes, and this one is still held
    // back: any completed create would be a retry (409, the origin exists).
    assert_eq!(
        tenant.count("csp-origins.create", None).await,
        0,
        "a POST is never retried blindly"
    );

    let found = ok(client
        .find_csp_origins_by_origin("https://app.example.com")
        .await);
    assert_eq!(
        found.len(),
        1,
        "the create happened once, and the caller can adopt it"
    );
    assert_eq!(ok(client.list_csp_origins().await).len(), 1);
}

#[tokio::test]
async fn a_create_whose_connection_drops_is_an_unknown_outcome_found_by_origin() {
    let tenant = Tenant::start().await;
    let client = tenant.api_key_client();
    tenant
        .fault(json!({"method": "POST", "path": "/api/v1/csp-origins", "fault": "drop", "when": "after", "times": 1}))
        .await;

    let content = entry(
        "team-a/app",
        "https://app.example.com",
        &[Directive::FrameAncestors],
    );
    let err = client.create_csp_origin(&content).await.err();
    assert_eq!(err.as_ref().map(Error::reason), Some("OutcomeUnknown"));
    assert_eq!(tenant.count("csp-origins.create", None).await, 1);
    assert_eq!(
        ok(client
            .find_csp_origins_by_origin("https://app.example.com")
            .await)
        .len(),
        1
    );
}

#[tokio::test]
async fn a_server_error_on_a_create_is_an_unknown_outcome_not_a_retry() {
    let tenant = Tenant::start().await;
    let client = tenant.api_key_client();
    tenant
        .fault(json!({"method": "POST", "path": "/api/v1/csp-origins", "fault": "status", "status": 500, "when": "after", "times": 1}))
        .await;

    let err = client
        .create_csp_origin(&entry("n", "https://a.example.com", &[Directive::ImgSrc]))
        .await
        .err();
    assert_eq!(err.as_ref().map(Error::reason), Some("OutcomeUnknown"));
    assert_eq!(err.and_then(|e| e.status()), Some(500));
    assert_eq!(tenant.count("csp-origins.create", None).await, 1);
    assert_eq!(
        ok(client
            .find_csp_origins_by_origin("https://a.example.com")
            .await)
        .len(),
        1
    );
}

#[tokio::test]
async fn a_429_on_a_create_is_retried_because_nothing_was_applied() {
    let tenant = Tenant::start().await;
    let client = tenant.api_key_client();
    tenant
        .fault(json!({"method": "POST", "path": "/api/v1/csp-origins", "fault": "status", "status": 429, "retryAfter": 0, "times": 1}))
        .await;

    ok(client
        .create_csp_origin(&entry("n", "https://a.example.com", &[Directive::ImgSrc]))
        .await);
    assert_eq!(tenant.count("csp-origins.create", Some("201")).await, 1);
    assert_eq!(ok(client.list_csp_origins().await).len(), 1);
}

#[tokio::test]
async fn a_rejected_api_key_names_the_secret_it_came_from() {
    let tenant = Tenant::start().await;
    let client = TenantClient::new(
        tenant.config(),
        Credential::api_key("not-a-key-the-tenant-issued"),
        secret_source("qlik-admin", "apiKey"),
    )
    .unwrap_or_else(|e| panic!("{e}"));

    let err = client.list_csp_origins().await.err();
    let message = err.as_ref().map(ToString::to_string).unwrap_or_default();
    assert_eq!(err.as_ref().map(Error::reason), Some("Unauthorized"));
    assert!(
        message.starts_with(
            "the tenant rejected the credential in Secret team-a/qlik-admin key apiKey"
        ),
        "{message}"
    );
    assert!(!message.contains("not-a-key-the-tenant-issued"));
    assert!(!format!("{err:?}").contains("not-a-key-the-tenant-issued"));
    assert!(!err.is_some_and(|e| e.is_transient()));
    assert_eq!(
        tenant.count("csp-origins.list", None).await,
        1,
        "an API key 401 is not retried"
    );
}

#[tokio::test]
async fn a_rejected_oauth_secret_names_the_secret_it_came_from() {
    let tenant = Tenant::start().await;
    let client = TenantClient::new(
        tenant.config(),
        Credential::oauth_client(CLIENT_ID, "wrong-secret-value"),
        secret_source("qlik-m2m", "clientSecret"),
    )
    .unwrap_or_else(|e| panic!("{e}"));

    let err = client.list_csp_origins().await.err();
    let message = err.as_ref().map(ToString::to_string).unwrap_or_default();
    assert_eq!(err.as_ref().map(Error::reason), Some("Unauthorized"));
    assert!(
        message.contains("Secret team-a/qlik-m2m key clientSecret"),
        "{message}"
    );
    assert!(!message.contains("wrong-secret-value"));
    assert_eq!(tenant.count("csp-origins.list", None).await, 0);
}

#[tokio::test]
async fn oauth_tokens_are_reused_and_refreshed_after_they_expire() {
    let tenant = Tenant::start().await;
    let client = tenant.oauth_client();

    for _ in 0..5 {
        ok(client.list_csp_origins().await);
    }
    assert_eq!(
        tenant.count("oauth.token", None).await,
        1,
        "one token for five calls"
    );

    // Past the emulator's 6-hour token lifetime: the cached token is now rejected.
    tenant
        .control
        .advance_clock(Duration::from_secs(7 * 3600))
        .await;
    ok(client.list_csp_origins().await);
    ok(client.list_csp_origins().await);

    assert_eq!(
        tenant.count("oauth.token", Some("200")).await,
        2,
        "refreshed once after expiry"
    );
    assert_eq!(tenant.count("csp-origins.list", Some("401")).await, 1);
    assert_eq!(tenant.count("csp-origins.list", Some("200")).await, 7);
}

#[tokio::test]
async fn concurrent_requests_share_one_token_request() {
    let tenant = Tenant::start().await;
    let client = tenant.oauth_client();
    let calls = (0..8).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.list_csp_origins().await.map(|_| ()) })
    });
    for call in futures::future::join_all(calls).await {
        ok(call.unwrap_or_else(|e| panic!("{e}")));
    }
    assert_eq!(tenant.count("oauth.token", None).await, 1);
}

#[tokio::test]
async fn a_swapped_api_key_is_used_from_the_next_request() {
    let tenant = Tenant::start().await;
    let admin = tenant.api_key_client();
    let client = tenant.api_key_client();
    let new_key = ok(admin
        .create_api_key(&NewApiKey {
            description: "rotated [qlikops.io/rotation=team-a/x]".to_owned(),
            expiry: Some("PT1H".to_owned()),
        })
        .await);

    let rotated = secret_source("qlik-admin-rotated", "apiKey");
    client.set_credential(
        Credential::api_key(new_key.token.expose_secret()),
        rotated.clone(),
    );
    assert_eq!(client.credential_source(), rotated);
    ok(client.list_csp_origins().await);

    // Revoke the new key: the client must now fail, naming the new source, which proves it
    // was the one in use.
    assert_eq!(
        ok(admin.delete_api_key(&new_key.key.id).await),
        Deleted::Deleted
    );
    let err = client
        .list_csp_origins()
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("Secret team-a/qlik-admin-rotated key apiKey"),
        "{err}"
    );
}

#[tokio::test]
async fn a_swapped_oauth_secret_replaces_the_cached_token() {
    let tenant = Tenant::start().await;
    let client = tenant.oauth_client();
    ok(client.list_csp_origins().await);
    let old_hint = ok(client.get_oauth_client(CLIENT_ID).await)
        .client_secrets
        .first()
        .map(|s| s.hint.clone())
        .unwrap_or_default();

    // Self-rotation: the client creates its own next secret, switches to it, and revokes
    // the old one.
    let created = ok(client.create_oauth_client_secret(CLIENT_ID).await);
    client.set_credential(
        Credential::oauth_client(CLIENT_ID, created.client_secret.expose_secret()),
        secret_source("qlik-m2m", "clientSecret"),
    );
    assert_eq!(
        ok(client
            .delete_oauth_client_secret(CLIENT_ID, &old_hint)
            .await),
        Deleted::Deleted
    );
    ok(client.list_csp_origins().await);

    assert_eq!(
        tenant.count("oauth.token", Some("200")).await,
        2,
        "a new token after the swap"
    );
    let hints: Vec<String> = ok(client.get_oauth_client(CLIENT_ID).await)
        .client_secrets
        .into_iter()
        .map(|s| s.hint)
        .collect();
    assert_eq!(hints, [created.hint]);
}

#[tokio::test]
async fn api_keys_are_created_found_by_marker_listed_and_deleted() {
    let tenant = Tenant::start().await;
    let client = tenant.api_key_client();
    let tenant_id = ok(client.tenant_id().await);
    assert_eq!(tenant_id, tenant.emulator.tenant_id());

    let config = ok(client.api_keys_config(&tenant_id).await);
    assert_eq!(config.max_keys_per_user(), 5);
    assert_eq!(
        config.max_api_key_expiry(),
        Some(Duration::from_secs(24 * 3600))
    );

    let marker = "[qlikops.io/rotation=team-a/keys]";
    let created = ok(client
        .create_api_key(&NewApiKey {
            description: format!("operator key {marker}"),
            expiry: Some("PT12H".to_owned()),
        })
        .await);
    assert!(!created.token.expose_secret().is_empty());
    assert_eq!(created.key.status, ApiKeyStatus::Active);
    assert!(!format!("{created:?}").contains(created.token.expose_secret()));

    // The token works on its own.
    let own = tenant.client_with(
        tenant.config(),
        Credential::api_key(created.token.expose_secret()),
    );
    ok(own.list_csp_origins().await);

    let fetched = ok(client.get_api_key(&created.key.id).await);
    assert_eq!(fetched.description, created.key.description);
    assert!(
        ok(client.list_api_keys().await)
            .iter()
            .any(|k| k.id == created.key.id)
    );
    let found = ok(client.find_api_keys_by_description_marker(marker).await);
    assert_eq!(
        found.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
        [created.key.id.as_str()]
    );

    assert_eq!(
        ok(client.delete_api_key(&created.key.id).await),
        Deleted::Deleted
    );
    assert_eq!(
        ok(client.delete_api_key(&created.key.id).await),
        Deleted::AlreadyGone
    );
}

#[tokio::test]
async fn oauth_client_secrets_are_created_seen_as_hints_and_deleted_by_hint() {
    let tenant = Tenant::start().await;
    let client = tenant.api_key_client();
    let before = ok(client.get_oauth_client(CLIENT_ID).await);
    assert_eq!(before.client_id, CLIENT_ID);

    let created = ok(client.create_oauth_client_secret(CLIENT_ID).await);
    assert!(!format!("{created:?}").contains(created.client_secret.expose_secret()));
    let after = ok(client.get_oauth_client(CLIENT_ID).await);
    assert_eq!(after.client_secrets.len(), before.client_secrets.len() + 1);
    assert!(after.client_secrets.iter().any(|s| s.hint == created.hint));

    assert_eq!(
        ok(client
            .delete_oauth_client_secret(CLIENT_ID, &created.hint)
            .await),
        Deleted::Deleted
    );
    assert_eq!(
        ok(client
            .delete_oauth_client_secret(CLIENT_ID, &created.hint)
            .await),
        Deleted::AlreadyGone
    );
    assert_eq!(
        ok(client.get_oauth_client(CLIENT_ID).await).client_secrets,
        before.client_secrets
    );
}

#[tokio::test]
async fn the_sixth_oauth_secret_is_a_reached_limit() {
    let tenant = Tenant::start().await;
    let client = tenant.api_key_client();
    let existing = ok(client.get_oauth_client(CLIENT_ID).await)
        .client_secrets
        .len();
    for _ in existing..5 {
        ok(client.create_oauth_client_secret(CLIENT_ID).await);
    }
    let err = client.create_oauth_client_secret(CLIENT_ID).await.err();
    assert_eq!(err.as_ref().map(Error::reason), Some("LimitReached"));
    assert!(!err.is_some_and(|e| e.is_transient()));
}

#[tokio::test]
async fn the_tenant_id_and_the_current_user_come_from_the_me_redirects() {
    let tenant = Tenant::start().await;
    for client in [tenant.api_key_client(), tenant.oauth_client()] {
        assert_eq!(ok(client.tenant_id().await), tenant.emulator.tenant_id());
        let user = ok(client.current_user().await);
        assert_eq!(user.tenant_id, tenant.emulator.tenant_id());
        let t = ok(client.get_tenant(&user.tenant_id).await);
        assert_eq!(t.id, tenant.emulator.tenant_id());
    }
    assert_eq!(tenant.count("tenants.me", None).await, 2);
    assert_eq!(tenant.count("users.me", None).await, 2);
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_transport_error() {
    let tenant = Tenant::start().await;
    let client = tenant.client_with(
        ClientConfig {
            ca_bundle: None,
            ..tenant.config()
        },
        Credential::api_key(ADMIN_KEY),
    );
    let err = client.list_csp_origins().await.err();
    assert_eq!(err.as_ref().map(Error::reason), Some("Transport"));
    assert_eq!(tenant.count("csp-origins.list", None).await, 0);
}

#[tokio::test]
async fn plain_http_is_refused_by_default() {
    let tenant = Tenant::start_with(EmulatorConfig {
        plain_http: true,
        ..EmulatorConfig::default()
    })
    .await;
    let config = ClientConfig::new(tenant.emulator.base_url());
    let refused = TenantClient::new(
        config.clone(),
        Credential::api_key(ADMIN_KEY),
        secret_source("s", "k"),
    )
    .err();
    assert_eq!(refused.as_ref().map(Error::reason), Some("InvalidConfig"));
    assert!(refused.is_some_and(|e| e.to_string().contains("https")));
}

#[tokio::test]
async fn an_explicitly_allowed_plain_http_tenant_receives_the_operator_user_agent() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A bare socket, so the test sees the request exactly as sent.
    let listener = ok_io(tokio::net::TcpListener::bind("127.0.0.1:0").await);
    let address = ok_io(listener.local_addr());
    let server = tokio::spawn(async move {
        let (mut socket, _) = ok_io(listener.accept().await);
        let mut head = Vec::new();
        let mut buffer = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let read = ok_io(socket.read(&mut buffer).await);
            if read == 0 {
                break;
            }
            head.extend_from_slice(&buffer[..read]);
        }
        let body = r#"{"data":[],"links":{}}"#;
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        ok_io(socket.write_all(answer.as_bytes()).await);
        String::from_utf8_lossy(&head).to_lowercase()
    });

    let mut config = ClientConfig::new(format!("http://{address}"));
    config.allow_plain_http = true;
    let client = ok(TenantClient::new(
        config,
        Credential::api_key(ADMIN_KEY),
        secret_source("s", "k"),
    ));
    assert!(ok(client.list_csp_origins().await).is_empty());
    let head = server.await.unwrap_or_else(|e| panic!("{e}"));
    let expected = format!("user-agent: {}", USER_AGENT.to_lowercase());
    assert!(head.contains(&expected), "no {expected:?} in:\n{head}");
}

/// A plain-HTTP server on loopback that answers every request with `200` and `body`
/// bytes of JSON-ish filler, announced with `Content-Length` or sent chunked without one.
/// Returns its address and how many bytes it managed to write before the client hung up.
async fn oversized_server(
    body: usize,
    announce_length: bool,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<usize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = ok_io(tokio::net::TcpListener::bind("127.0.0.1:0").await);
    let address = ok_io(listener.local_addr());
    let server = tokio::spawn(async move {
        let (mut socket, _) = ok_io(listener.accept().await);
        let mut head = Vec::new();
        let mut buffer = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let read = ok_io(socket.read(&mut buffer).await);
            if read == 0 {
                break;
            }
            head.extend_from_slice(&buffer[..read]);
        }
        let framing = if announce_length {
            format!("content-length: {body}")
        } else {
            "transfer-encoding: chunked".to_owned()
        };
        let start = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{framing}\r\nconnection: close\r\n\r\n"
        );
        if socket.write_all(start.as_bytes()).await.is_err() {
            return 0;
        }
        let piece = vec![b' '; 64 * 1024];
        let mut written = 0;
        while written < body {
            let n = piece.len().min(body - written);
            let sent = if announce_length {
                socket.write_all(&piece[..n]).await
            } else {
                let mut chunk = format!("{n:x}\r\n").into_bytes();
                chunk.extend_from_slice(&piece[..n]);
                chunk.extend_from_slice(b"\r\n");
                socket.write_all(&chunk).await
            };
            if sent.is_err() {
                break;
            }
            written += n;
        }
        written
    });
    (address, server)
}

#[tokio::test]
async fn a_response_body_beyond_the_cap_fails_with_a_bounded_error() {
    use qlik_csp_operator::tenant::client::MAX_RESPONSE_BYTES;
    // 64 MiB: what a broken or hostile endpoint could stream at the operator.
    let huge = 64 * 1024 * 1024;
    for announce_length in [true, false] {
        let (address, server) = oversized_server(huge, announce_length).await;
        let mut config = ClientConfig::new(format!("http://{address}"));
        config.allow_plain_http = true;
        let client = ok(TenantClient::new(
            config,
            Credential::api_key(ADMIN_KEY),
            secret_source("s", "k"),
        ));
        let err = client.list_csp_origins().await.err();
        assert_eq!(
            err.as_ref().map(Error::reason),
            Some("ResponseTooLarge"),
            "length announced: {announce_length}"
        );
        let message = err.as_ref().map(ToString::to_string).unwrap_or_default();
        assert!(
            message.contains(&MAX_RESPONSE_BYTES.to_string()) && message.len() < 200,
            "{message}"
        );
        assert!(err.is_some_and(|e| !e.is_transient()), "not retried later");
        drop(client);
        let written = server.await.unwrap_or_else(|e| panic!("{e}"));
        assert!(
            written < huge,
            "the client read the whole body (length announced: {announce_length})"
        );
    }
}

#[tokio::test]
async fn the_cap_applies_to_the_tenants_real_answers() {
    let tenant = Tenant::start().await;
    let client = tenant.api_key_client();
    for i in 0..20 {
        let name = format!("n{i}");
        let origin = format!("https://e{i}.example.com");
        ok(client
            .create_csp_origin(&entry(&name, &origin, &[Directive::ImgSrc]))
            .await);
    }
    let small = tenant.client_with(
        ClientConfig {
            max_response_bytes: 2048,
            ..tenant.config()
        },
        Credential::api_key(ADMIN_KEY),
    );
    let err = small.list_csp_origins().await.err();
    assert_eq!(err.as_ref().map(Error::reason), Some("ResponseTooLarge"));
    assert_eq!(
        tenant.count("csp-origins.list", Some("200")).await,
        1,
        "not retried"
    );
    // The default takes every answer Qlik's definitions allow; here, all 20 entries.
    assert_eq!(ok(client.list_csp_origins().await).len(), 20);
}

fn ok_io<T>(result: std::io::Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("{e}"))
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

#[tokio::test]
async fn secrets_never_reach_logs_or_error_messages() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // The default runtime of #[tokio::test] runs every task on this thread, so a
    // thread-local subscriber sees the client, hyper and the emulator alike.
    let _guard = tracing::subscriber::set_default(subscriber);

    let tenant = Tenant::start().await;
    let oauth = tenant.oauth_client();
    let mut errors = Vec::new();
    ok(oauth.list_csp_origins().await);
    let new_secret = ok(oauth.create_oauth_client_secret(CLIENT_ID).await);
    let new_key = ok(oauth
        .create_api_key(&NewApiKey {
            description: "marker".to_owned(),
            expiry: None,
        })
        .await);
    oauth.set_credential(
        Credential::oauth_client(CLIENT_ID, "wrong-secret-value"),
        secret_source("m2m", "s"),
    );
    errors.extend(oauth.list_csp_origins().await.err());
    let key_client = tenant.client_with(tenant.config(), Credential::api_key("wrong-key-value"));
    errors.extend(key_client.list_csp_origins().await.err());
    tenant
        .fault(json!({"path": "/api/v1/csp-origins", "fault": "status", "status": 500}))
        .await;
    errors.extend(tenant.api_key_client().list_csp_origins().await.err());
    assert_eq!(errors.len(), 3);

    let secrets = [
        ADMIN_KEY,
        CLIENT_SECRET,
        "wrong-secret-value",
        "wrong-key-value",
        new_secret.client_secret.expose_secret(),
        new_key.token.expose_secret(),
    ];
    let logged = logs.text();
    assert!(
        logged.contains("csp-origins.list"),
        "the capture works: {logged:.200}"
    );
    let shown: Vec<String> = errors
        .iter()
        .flat_map(|e| {
            [
                e.to_string(),
                format!("{e:?}"),
                format!("{:?}", std::error::Error::source(e)),
            ]
        })
        .chain([format!("{oauth:?}"), format!("{key_client:?}")])
        .collect();
    for secret in secrets {
        assert!(!logged.contains(secret), "a secret is in the logs");
        for text in &shown {
            assert!(!text.contains(secret), "a secret is in {text}");
        }
    }
    assert!(
        !logged.to_ascii_lowercase().contains("bearer "),
        "an Authorization header is in the logs"
    );
}
