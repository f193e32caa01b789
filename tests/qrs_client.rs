//! The QRS client against the emulated Qlik Sense Enterprise on Windows site over real
//! mutual TLS: the connection check, virtual proxies found by prefix and written back
//! whole, a stale `modifiedDate`, a refused client certificate, data connection
//! credentials, retries and the metrics hook. The site refuses any request without a
//! matching Xrfkey, and every test ends by checking its log for them.
//!
//! Waits are the client's own (its backoff and `Retry-After`); the tests never sleep.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use qlik_csp_operator::emulator::qrs::untrusted_client_identity;
use qlik_csp_operator::tenant::qrs::{
    ClientIdentity, QlikUser, QrsClient, QrsClientConfig, QrsDataConnection, RequestObserver,
    header_value, with_header,
};
use qlik_csp_operator::tenant::{Error, RetryPolicy};
use secrecy::SecretString;
use serde_json::{Map, Value, json};
use support::qrs_site::QrsSiteFixture;

const CSP: &str = "Content-Security-Policy";

/// The fields the site changes on every write, left out when comparing an entity.
const BOOKKEEPING: [&str; 2] = ["modifiedDate", "modifiedByUserName"];

fn config_for(site: &QrsSiteFixture, cert: &str, key: &str, user: QlikUser) -> QrsClientConfig {
    let identity = ClientIdentity::from_pem(cert, key).unwrap_or_else(|e| panic!("{e}"));
    let mut config = QrsClientConfig::new(site.base_url(), identity, user);
    config.ca_bundle = Some(site.site.ca_pem().to_owned());
    config.retry = RetryPolicy {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        ..RetryPolicy::default()
    };
    config
}

/// A client with the site's own client certificate, acting as `INTERNAL\sa_api`.
fn config(site: &QrsSiteFixture) -> QrsClientConfig {
    config_for(
        site,
        site.site.client_cert_pem(),
        site.site.client_key_pem(),
        QlikUser::new("INTERNAL", "sa_api"),
    )
}

fn client(site: &QrsSiteFixture) -> QrsClient {
    QrsClient::new(config(site)).unwrap_or_else(|e| panic!("{e}"))
}

fn without(value: &Value, fields: &[&str]) -> Map<String, Value> {
    let mut map = value.as_object().cloned().unwrap_or_default();
    for field in fields {
        map.remove(*field);
    }
    map
}

/// Records every request (operation and status) and pause the client reports.
#[derive(Default)]
struct Recorder {
    requests: Mutex<Vec<(&'static str, Option<u16>)>>,
    waits: Mutex<Vec<Duration>>,
}

impl RequestObserver for Recorder {
    fn request(&self, operation: &'static str, status: Option<u16>) {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((operation, status));
    }

    fn rate_limit_wait(&self, waited: Duration) {
        self.waits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(waited);
    }
}

impl Recorder {
    fn requests(&self) -> Vec<(&'static str, Option<u16>)> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[tokio::test]
async fn about_reports_the_build_and_every_request_carries_a_fresh_matching_xrfkey() {
    let site = QrsSiteFixture::start().await;
    let client = client(&site);
    for _ in 0..3 {
        let about = client.about().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(about.build_version, "38.22.0");
    }
    assert_eq!(
        site.assert_every_request_carried_a_matching_xrfkey().await,
        3
    );
    site.assert_xrfkeys_are_fresh().await;
    for request in site.requests().await {
        assert_eq!(
            request.user.as_deref(),
            Some("UserDirectory=INTERNAL; UserId=sa_api")
        );
    }
}

#[tokio::test]
async fn a_virtual_proxy_is_found_by_its_prefix_ignoring_case_or_not_at_all() {
    let site = QrsSiteFixture::start().await;
    let embed = site.seed_virtual_proxy("embed", "", &[]).await;
    site.seed_virtual_proxy("embedded", "", &[]).await;
    let quoted = site.seed_virtual_proxy("o'brien", "", &[]).await;
    let client = client(&site);

    for prefix in ["embed", "EMBED"] {
        let found = client.virtual_proxy_by_prefix(prefix).await;
        let found = found.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            found.as_ref().map(|p| p.id()),
            Some(embed.as_str()),
            "{prefix}"
        );
    }
    let found = client.virtual_proxy_by_prefix("o'brien").await;
    let found = found.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(found.map(|p| p.id().to_owned()), Some(quoted));
    let none = client.virtual_proxy_by_prefix("missing").await;
    assert!(none.unwrap_or_else(|e| panic!("{e}")).is_none());

    let by_id = client.virtual_proxy(&embed).await;
    assert_eq!(by_id.unwrap_or_else(|e| panic!("{e}")).prefix(), "embed");
    let missing = client
        .virtual_proxy("00000000-0000-4000-8000-000000000000")
        .await;
    assert_eq!(missing.err().map(|e| e.reason()), Some("NotFound"));

    // Two proxies with one prefix: the client will not guess which to change.
    site.seed_virtual_proxy("Embed", "", &[]).await;
    let err = client.virtual_proxy_by_prefix("embed").await.err();
    assert_eq!(
        err.as_ref().map(Error::reason),
        Some("Ambiguous"),
        "{err:?}"
    );
    assert!(!err.is_some_and(|e| e.is_transient()));

    site.assert_every_request_carried_a_matching_xrfkey().await;
}

#[tokio::test]
async fn a_put_changes_only_the_fields_set_and_sends_every_other_field_back_unchanged() {
    let site = QrsSiteFixture::start().await;
    let admin_headers =
        "X-Frame-Options: DENY\r\ncontent-security-policy: old\r\nX-Custom:  keep  me ";
    let id = site
        .seed_virtual_proxy("embed", admin_headers, &["admin.example.com"])
        .await;
    let before = site.virtual_proxy(&id).await;
    let client = client(&site);

    let mut proxy = client
        .virtual_proxy_by_prefix("embed")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no proxy"));
    let headers = with_header(
        proxy.additional_response_headers(),
        CSP,
        Some("frame-ancestors 'self' https://app.example.com"),
    );
    proxy.set_additional_response_headers(headers);
    let mut hosts: Vec<String> = proxy
        .websocket_cross_origin_white_list()
        .into_iter()
        .map(str::to_owned)
        .collect();
    hosts.push("app.example.com".to_owned());
    proxy.set_websocket_cross_origin_white_list(hosts);
    let read_date = proxy.modified_date().to_owned();
    let written = client
        .update_virtual_proxy(&proxy)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(written.modified_date(), read_date);

    let after = site.virtual_proxy(&id).await;
    assert_eq!(
        after["additionalResponseHeaders"],
        json!(
            "X-Frame-Options: DENY\r\nContent-Security-Policy: frame-ancestors 'self' https://app.example.com\r\nX-Custom:  keep  me "
        )
    );
    assert_eq!(
        after["websocketCrossOriginWhiteList"],
        json!(["admin.example.com", "app.example.com"])
    );
    let owned = ["additionalResponseHeaders", "websocketCrossOriginWhiteList"];
    let ignore: Vec<&str> = BOOKKEEPING.iter().chain(&owned).copied().collect();
    assert_eq!(without(&after, &ignore), without(&before, &ignore));
    assert_eq!(
        header_value(written.additional_response_headers(), CSP),
        Some("frame-ancestors 'self' https://app.example.com")
    );
    site.assert_every_request_carried_a_matching_xrfkey().await;
}

#[tokio::test]
async fn a_stale_put_is_a_conflict_and_the_change_redone_on_a_fresh_read_keeps_the_admins_edit() {
    let site = QrsSiteFixture::start().await;
    let id = site.seed_virtual_proxy("embed", "X-A: 1", &[]).await;
    site.edit_after_next_read(&id, "X-A: 1\nX-Admin: 2").await;
    let client = client(&site);

    let mut proxy = client
        .virtual_proxy(&id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    proxy.set_additional_response_headers(with_header(
        proxy.additional_response_headers(),
        CSP,
        Some("default-src 'self'"),
    ));
    let err = client.update_virtual_proxy(&proxy).await.err();
    assert_eq!(err.as_ref().map(Error::reason), Some("Conflict"), "{err:?}");
    assert!(!err.is_some_and(|e| e.is_transient()));
    assert_eq!(
        site.virtual_proxy(&id).await["additionalResponseHeaders"],
        json!("X-A: 1\nX-Admin: 2"),
        "the stale write changed nothing"
    );

    let mut proxy = client
        .virtual_proxy(&id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    proxy.set_additional_response_headers(with_header(
        proxy.additional_response_headers(),
        CSP,
        Some("default-src 'self'"),
    ));
    client
        .update_virtual_proxy(&proxy)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        site.virtual_proxy(&id).await["additionalResponseHeaders"],
        json!("X-A: 1\nX-Admin: 2\nContent-Security-Policy: default-src 'self'")
    );
    site.assert_every_request_carried_a_matching_xrfkey().await;
}

#[tokio::test]
async fn a_client_certificate_the_site_does_not_trust_is_unauthorized_not_an_outage() {
    let site = QrsSiteFixture::start().await;
    let (cert, key) = untrusted_client_identity().unwrap_or_else(|e| panic!("{e}"));
    let recorder = Arc::new(Recorder::default());
    let mut config = config_for(&site, &cert, &key, QlikUser::new("INTERNAL", "sa_api"));
    config.observer = Some(recorder.clone());
    let client = QrsClient::new(config).unwrap_or_else(|e| panic!("{e}"));

    let err = client.about().await.err();
    assert_eq!(
        err.as_ref().map(Error::reason),
        Some("Unauthorized"),
        "{err:?}"
    );
    let err = err.unwrap_or_else(|| panic!("accepted"));
    assert!(!err.is_transient());
    assert!(
        err.to_string()
            .contains("the site refused the client certificate in the TLS handshake"),
        "{err}"
    );
    // Refused once, not retried: retrying cannot help until the certificate changes.
    assert_eq!(recorder.requests(), [("qrs.about", None)]);
    assert!(site.requests().await.is_empty(), "a request got through");
}

#[tokio::test]
async fn a_user_the_site_does_not_accept_is_forbidden() {
    let site = QrsSiteFixture::start().await;
    let config = config_for(
        &site,
        site.site.client_cert_pem(),
        site.site.client_key_pem(),
        QlikUser::new("INTERNAL", "nobody"),
    );
    let client = QrsClient::new(config).unwrap_or_else(|e| panic!("{e}"));
    let err = client.about().await.err();
    assert_eq!(
        err.as_ref().map(Error::reason),
        Some("Forbidden"),
        "{err:?}"
    );
    let shown = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(shown.contains("INTERNAL\\nobody"), "{shown}");
    assert!(!shown.contains("bug in the operator"), "{shown}");
    site.assert_every_request_carried_a_matching_xrfkey().await;
}

#[tokio::test]
async fn data_connection_credentials_are_stored_and_the_password_never_shows_in_an_error() {
    let site = QrsSiteFixture::start().await;
    let id = site
        .seed_data_connection("Sales DB", "old-user", "old-pw")
        .await;
    site.seed_data_connection("Sales DB 2", "other", "other-pw")
        .await;
    let client = client(&site);

    let found = client
        .data_connections_named("sales db")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        found.iter().map(|c| c.id()).collect::<Vec<_>>(),
        [id.as_str()]
    );
    let first_read = found.into_iter().next().unwrap_or_else(|| panic!("none"));

    let password = SecretString::from("n3w-Pa55word!");
    let written = client
        .update_data_connection_credentials(&first_read, Some("svc-user"), Some(&password))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(written.username(), Some("svc-user"));
    let stored = site.data_connection(&id).await;
    assert_eq!(stored["username"], json!("svc-user"));
    assert_eq!(stored["password"], json!("n3w-Pa55word!"));

    // A username alone keeps the password: the masked one as read is not sent back.
    let fresh = client
        .data_connection(&id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    client
        .update_data_connection_credentials(&fresh, Some("svc-user-2"), None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let stored = site.data_connection(&id).await;
    assert_eq!(stored["username"], json!("svc-user-2"));
    assert_eq!(stored["password"], json!("n3w-Pa55word!"));

    // A push from a stale read is refused, and the error does not carry the password.
    let newer = SecretString::from("an0ther-Pa55word!");
    let err = client
        .update_data_connection_credentials(&first_read, None, Some(&newer))
        .await
        .err()
        .unwrap_or_else(|| panic!("a stale push was accepted"));
    assert_eq!(err.reason(), "Conflict");
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains("an0ther-Pa55word!") && !shown.contains("n3w-Pa55word!"),
        "{shown}"
    );
    assert_eq!(
        site.data_connection(&id).await["password"],
        json!("n3w-Pa55word!")
    );

    // Nothing to push: nothing sent.
    let before = site.requests().await.len();
    let same = client
        .update_data_connection_credentials(&fresh, None, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(same, fresh);
    assert_eq!(site.requests().await.len(), before);

    // A connection that is gone.
    let mut gone: Map<String, Value> = fresh.into_fields();
    gone.insert(
        "id".to_owned(),
        json!("00000000-0000-4000-8000-000000000000"),
    );
    let gone = QrsDataConnection::try_from(gone).unwrap_or_else(|e| panic!("{e}"));
    let err = client
        .update_data_connection_credentials(&gone, None, Some(&newer))
        .await
        .err();
    assert_eq!(err.as_ref().map(Error::reason), Some("NotFound"));
    assert!(!format!("{err:?}").contains("an0ther-Pa55word!"));
    site.assert_every_request_carried_a_matching_xrfkey().await;
}

#[tokio::test]
async fn server_errors_drops_and_429s_are_retried_each_attempt_with_a_fresh_xrfkey() {
    let site = QrsSiteFixture::start().await;
    let recorder = Arc::new(Recorder::default());
    let mut config = config(&site);
    config.observer = Some(recorder.clone());
    let client = QrsClient::new(config).unwrap_or_else(|e| panic!("{e}"));

    site.fault(json!({"path": "/qrs/about", "fault": "status", "status": 503, "times": 1}))
        .await;
    site.fault(json!({"path": "/qrs/about", "fault": "drop", "times": 1}))
        .await;
    client.about().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        recorder.requests(),
        [
            ("qrs.about", Some(503)),
            ("qrs.about", None),
            ("qrs.about", Some(200))
        ]
    );

    site.fault(json!({"path": "/qrs/about", "fault": "status", "status": 429, "retryAfter": 1, "times": 1}))
        .await;
    client.about().await.unwrap_or_else(|e| panic!("{e}"));
    let waits = recorder
        .waits
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    assert!(
        waits.iter().any(|w| *w >= Duration::from_millis(900)),
        "the 429 pause was not waited out: {waits:?}"
    );

    // A pause longer than the client waits out fails at once, unsent, for every clone.
    site.fault(json!({"path": "/qrs/about", "fault": "status", "status": 429, "retryAfter": 3600, "times": 1}))
        .await;
    let err = client.about().await.err();
    assert_eq!(err.as_ref().map(Error::reason), Some("RateLimited"));
    let sent = site.requests().await.len();
    let clone = client.clone();
    let err = clone.virtual_proxy_by_prefix("embed").await.err();
    assert!(
        err.and_then(|e| e.retry_after())
            .is_some_and(|d| d > Duration::from_secs(3500))
    );
    assert_eq!(
        site.requests().await.len(),
        sent,
        "a request was sent during the pause"
    );
    let rebuilt = QrsClient::new(self::config(&site)).unwrap_or_else(|e| panic!("{e}"));
    rebuilt.carry_pause_from(&client);
    assert!(rebuilt.paused_for().is_some());

    site.assert_every_request_carried_a_matching_xrfkey().await;
    site.assert_xrfkeys_are_fresh().await;
}

#[tokio::test]
async fn every_request_is_observed_under_a_stable_operation_name() {
    let site = QrsSiteFixture::start().await;
    let proxy_id = site.seed_virtual_proxy("embed", "", &[]).await;
    let connection_id = site.seed_data_connection("DB", "u", "p").await;
    let recorder = Arc::new(Recorder::default());
    let mut config = config(&site);
    config.observer = Some(recorder.clone());
    let client = QrsClient::new(config).unwrap_or_else(|e| panic!("{e}"));

    let ok = |r: Result<(), Error>| r.unwrap_or_else(|e| panic!("{e}"));
    ok(client.about().await.map(drop));
    ok(client.virtual_proxy_by_prefix("embed").await.map(drop));
    let proxy = client
        .virtual_proxy(&proxy_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    ok(client.update_virtual_proxy(&proxy).await.map(drop));
    ok(client.data_connections_named("DB").await.map(drop));
    let connection = client
        .data_connection(&connection_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let password = SecretString::from("pw");
    ok(client
        .update_data_connection_credentials(&connection, None, Some(&password))
        .await
        .map(drop));

    let ops: Vec<_> = recorder.requests();
    assert_eq!(
        ops,
        [
            ("qrs.about", Some(200)),
            ("qrs.virtualproxyconfig.list", Some(200)),
            ("qrs.virtualproxyconfig.get", Some(200)),
            ("qrs.virtualproxyconfig.put", Some(200)),
            ("qrs.dataconnection.list", Some(200)),
            ("qrs.dataconnection.get", Some(200)),
            ("qrs.dataconnection.put", Some(200)),
        ]
    );
    site.assert_every_request_carried_a_matching_xrfkey().await;
}
