//! What a real site refuses before any endpoint runs, over real HTTPS with mutual TLS: a
//! missing or mismatched Xrfkey (403 with QRS's message, even on unknown paths), a
//! missing or unknown `X-Qlik-User` (403), and a client without the site's certificate
//! (the TLS handshake fails: the client sees an error, never a response).

use qlik_csp_operator::emulator::qrs::{
    QlikUser, USER_REFUSAL, XSRF_REFUSAL, client_tls_config, untrusted_client_identity,
};

use super::support::qrs_site::QrsSiteFixture;

/// A request with the given Xrfkey query parameter and header, as `sa_api`.
async fn with_keys(
    qrs: &QrsSiteFixture,
    path: &str,
    query: Option<&str>,
    header: Option<&str>,
) -> (u16, String, String) {
    let url = match query {
        Some(key) => format!("{}{path}?xrfkey={key}", qrs.base_url()),
        None => format!("{}{path}", qrs.base_url()),
    };
    let mut request = qrs
        .http
        .get(&url)
        .header("X-Qlik-User", QlikUser::sa_api().header_value());
    if let Some(key) = header {
        request = request.header("X-Qlik-Xrfkey", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    (status, content_type, response.text().await.unwrap())
}

#[tokio::test]
async fn a_missing_or_mismatched_xrfkey_gets_403_with_qliks_message() {
    let qrs = QrsSiteFixture::start().await;
    let key = "abcdefghIJKLMN09";
    let cases: [(&str, Option<&str>, Option<&str>); 8] = [
        ("no header", Some(key), None),
        ("no query parameter", None, Some(key)),
        ("neither", None, None),
        ("different keys", Some(key), Some("abcdefghIJKLMN08")),
        ("too short", Some("abcdefgh"), Some("abcdefgh")),
        (
            "too long",
            Some("abcdefghIJKLMN0123"),
            Some("abcdefghIJKLMN0123"),
        ),
        (
            "not alphanumeric",
            Some("abcdefgh-JKLMN09"),
            Some("abcdefgh-JKLMN09"),
        ),
        ("empty", Some(""), Some("")),
    ];
    for path in ["/qrs/about", "/qrs/no-such-endpoint"] {
        for (case, query, header) in cases {
            let (status, content_type, body) = with_keys(&qrs, path, query, header).await;
            assert_eq!(
                (status, body.as_str()),
                (403, XSRF_REFUSAL),
                "{case} on {path}"
            );
            assert!(
                content_type.starts_with("text/plain"),
                "{case}: {content_type}"
            );
        }
    }
    let (status, _, body) = with_keys(&qrs, "/qrs/about", Some(key), Some(key)).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = with_keys(&qrs, "/qrs/about?Xrfkey=x", None, None).await;
    assert_eq!(status, 403);
    let log = qrs.requests().await;
    assert_eq!(log.len(), 2 * cases.len() + 2);
    let different = &log[3];
    assert_eq!(
        (
            different.xrfkey_query.as_deref(),
            different.xrfkey_header.as_deref(),
            different.status
        ),
        (Some(key), Some("abcdefghIJKLMN08"), 403),
        "the log shows what was sent"
    );
}

#[tokio::test]
async fn a_missing_or_unknown_qlik_user_gets_403() {
    let qrs = QrsSiteFixture::start().await;
    let key = "0123456789abcdef";
    let url = format!("{}/qrs/about?xrfkey={key}", qrs.base_url());
    let send = |user: Option<&str>| {
        let mut request = qrs.http.get(&url).header("X-Qlik-Xrfkey", key);
        if let Some(user) = user {
            request = request.header("X-Qlik-User", user);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    for user in [
        None,
        Some("UserDirectory=INTERNAL; UserId=sa_repository"),
        Some("UserDirectory=OTHER; UserId=sa_api"),
        Some("UserId=sa_api"),
        Some("INTERNAL\\sa_api"),
    ] {
        assert_eq!(send(user).await, (403, USER_REFUSAL.to_owned()), "{user:?}");
    }
    for user in [
        "UserDirectory=INTERNAL; UserId=sa_api",
        "UserId=sa_api;UserDirectory=INTERNAL",
        "userdirectory = Internal ; userid = SA_API",
    ] {
        assert_eq!(send(Some(user)).await.0, 200, "{user}");
    }
}

/// A client trusting the site's CA that presents `identity` (or no certificate).
fn client(ca_pem: &str, identity: Option<(&str, &str)>) -> reqwest::Client {
    let tls = match identity {
        Some((cert, key)) => client_tls_config(ca_pem, cert, key).unwrap(),
        None => qlik_csp_operator::emulator::client_tls_config_for(ca_pem).unwrap(),
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_client_without_the_sites_certificate_fails_in_the_handshake() {
    let qrs = QrsSiteFixture::start().await;
    let key = "0123456789abcdef";
    let url = format!("{}/qrs/about?xrfkey={key}", qrs.base_url());
    let ca = qrs.site.ca_pem();
    let (cert, private_key) = untrusted_client_identity().unwrap();
    for (case, client) in [
        ("no client certificate", client(ca, None)),
        (
            "another CA's certificate",
            client(ca, Some((&cert, &private_key))),
        ),
    ] {
        let sent = client
            .get(&url)
            .header("X-Qlik-Xrfkey", key)
            .header("X-Qlik-User", QlikUser::sa_api().header_value())
            .send()
            .await;
        assert!(sent.is_err(), "{case}: got a response {sent:?}");
    }
    assert!(
        qrs.requests().await.is_empty(),
        "no request reached the site"
    );
    let trusted = client(
        ca,
        Some((qrs.site.client_cert_pem(), qrs.site.client_key_pem())),
    );
    let response = trusted
        .get(&url)
        .header("X-Qlik-Xrfkey", key)
        .header("X-Qlik-User", QlikUser::sa_api().header_value())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        qrs.site
            .client_cert_pem()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    assert!(
        qrs.site
            .client_key_pem()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
}
