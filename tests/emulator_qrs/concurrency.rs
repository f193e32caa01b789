//! `modifiedDate` concurrency on the emulated QRS site, over real HTTPS with mutual TLS:
//! a stale `PUT` gets 409 and a fresh one a strictly later date, the 1,024-character limit
//! of `additionalResponseHeaders`, the data connection password that is never returned,
//! and an administrator's edit right after the next read, which makes the reader's `PUT`
//! stale.

use jiff::Timestamp;
use reqwest::Method;
use serde_json::{Value, json};

use super::support::qrs_site::QrsSiteFixture;

fn date(entity: &Value) -> Timestamp {
    entity["modifiedDate"]
        .as_str()
        .unwrap_or_else(|| panic!("no modifiedDate in {entity}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_stale_put_gets_409_and_a_fresh_one_stores_the_entity_with_a_later_modified_date() {
    let qrs = QrsSiteFixture::start().await;
    let id = qrs
        .seed_virtual_proxy("embed", "X-Frame-Options: DENY", &[])
        .await;
    let path = format!("/qrs/virtualproxyconfig/{id}");
    let read = qrs.api(Method::GET, &path, None).await.json();
    assert_eq!(read["modifiedByUserName"], "INTERNAL\\sa_api");

    let mut fresh = read.clone();
    fresh["additionalResponseHeaders"] = json!("X-Frame-Options: DENY\r\nX-Extra: 1");
    fresh["madeUp"] = json!("ignored");
    let put = qrs.api(Method::PUT, &path, Some(&fresh)).await;
    assert_eq!(put.status, 200, "{}", put.text);
    let stored = put.json();
    assert!(
        date(&stored) > date(&read),
        "{} then {}",
        read["modifiedDate"],
        stored["modifiedDate"]
    );
    assert_eq!(
        stored["additionalResponseHeaders"],
        "X-Frame-Options: DENY\r\nX-Extra: 1"
    );
    assert_eq!(stored["modifiedByUserName"], "INTERNAL\\sa_api");
    assert_eq!(stored["createdDate"], read["createdDate"]);
    assert!(
        stored.get("madeUp").is_none(),
        "unknown properties are not stored"
    );
    assert_eq!(
        qrs.virtual_proxy(&id).await,
        stored,
        "the answer is what is stored"
    );

    // Written back at once: the clock may not have moved, the date still must.
    let mut again = stored.clone();
    again["description"] = json!("second write");
    let second = qrs.api(Method::PUT, &path, Some(&again)).await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert!(date(&second.json()) > date(&stored));

    let mut stale = read.clone();
    stale["additionalResponseHeaders"] = json!("X-Stale: 1");
    let refused = qrs.api(Method::PUT, &path, Some(&stale)).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert!(refused.content_type.starts_with("text/plain"));
    let mut undated = second.json();
    undated.as_object_mut().unwrap().remove("modifiedDate");
    assert_eq!(
        qrs.api(Method::PUT, &path, Some(&undated)).await.status,
        409
    );
    let mut invented = second.json();
    invented["modifiedDate"] = json!("2099-01-01T00:00:00.000Z");
    assert_eq!(
        qrs.api(Method::PUT, &path, Some(&invented)).await.status,
        409
    );
    assert_eq!(
        qrs.virtual_proxy(&id).await["additionalResponseHeaders"],
        "X-Frame-Options: DENY\r\nX-Extra: 1",
        "nothing refused was stored"
    );

    let mut other_id = second.json();
    other_id["id"] = json!("0b6a1b4e-4b43-4c3a-9a1f-3b2f2c1d0e9f");
    assert_eq!(
        qrs.api(Method::PUT, &path, Some(&other_id)).await.status,
        400
    );
    let not_json = qrs.api(Method::PUT, &path, Some(&json!("text"))).await;
    assert_eq!(not_json.status, 400);
    let missing = "/qrs/virtualproxyconfig/0b6a1b4e-4b43-4c3a-9a1f-3b2f2c1d0e9f";
    assert_eq!(
        qrs.api(Method::PUT, missing, Some(&second.json()))
            .await
            .status,
        404
    );
    assert_eq!(qrs.api(Method::GET, missing, None).await.status, 404);
    assert_eq!(
        qrs.api(Method::GET, "/qrs/virtualproxyconfig/not-a-guid", None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn additional_response_headers_over_1024_characters_are_refused() {
    let qrs = QrsSiteFixture::start().await;
    let id = qrs.seed_virtual_proxy("embed", "", &[]).await;
    let path = format!("/qrs/virtualproxyconfig/{id}");
    let read = qrs.api(Method::GET, &path, None).await.json();
    let header = |length: usize| format!("X-Long: {}", "a".repeat(length - 8));

    let mut over = read.clone();
    over["additionalResponseHeaders"] = json!(header(1025));
    let refused = qrs.api(Method::PUT, &path, Some(&over)).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(
        refused.text.contains("additionalResponseHeaders"),
        "{}",
        refused.text
    );
    assert_eq!(
        qrs.virtual_proxy(&id).await["additionalResponseHeaders"],
        ""
    );

    let mut prefix = read.clone();
    prefix["prefix"] = json!("p".repeat(101));
    assert_eq!(qrs.api(Method::PUT, &path, Some(&prefix)).await.status, 400);

    let mut exactly = read.clone();
    exactly["additionalResponseHeaders"] = json!(header(1024));
    let stored = qrs.api(Method::PUT, &path, Some(&exactly)).await;
    assert_eq!(stored.status, 200, "{}", stored.text);
    assert_eq!(
        stored.json()["additionalResponseHeaders"]
            .as_str()
            .unwrap()
            .len(),
        1024
    );
}

#[tokio::test]
async fn the_password_is_never_returned_and_a_put_sets_the_credentials() {
    let qrs = QrsSiteFixture::start().await;
    let secret = "pa55-w0rd-only-the-site-knows";
    let id = qrs
        .seed_data_connection("postgres-prod", "reader", secret)
        .await;
    qrs.seed_data_connection("other", "x", "y").await;
    let path = format!("/qrs/dataconnection/{id}");

    let full = qrs.api(Method::GET, "/qrs/dataconnection/full", None).await;
    let got = qrs.api(Method::GET, &path, None).await;
    for reply in [&full, &got] {
        assert_eq!(reply.status, 200);
        assert!(
            !reply.text.contains(secret),
            "the password leaked: {}",
            reply.text
        );
    }
    let read = got.json();
    assert_eq!(read["password"], "");
    assert_eq!(read["username"], "reader");
    assert_eq!(read["owner"]["userId"], "sa_api");
    assert_eq!(qrs.data_connection(&id).await["password"], secret);

    let mut write = read.clone();
    write["username"] = json!("writer");
    write["password"] = json!("n3w-pa55");
    let put = qrs.api(Method::PUT, &path, Some(&write)).await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert!(!put.text.contains("n3w-pa55"));
    assert_eq!(put.json()["password"], "");
    assert!(date(&put.json()) > date(&read));
    let stored = qrs.data_connection(&id).await;
    assert_eq!(
        (
            &stored["username"],
            &stored["password"],
            &stored["credentialWrites"]
        ),
        (&json!("writer"), &json!("n3w-pa55"), &json!(1))
    );

    let stale = qrs.api(Method::PUT, &path, Some(&write)).await;
    assert_eq!(stale.status, 409, "the same modifiedDate again is stale");
    let mut keep = put.json();
    keep.as_object_mut().unwrap().remove("password");
    keep["name"] = json!("postgres-production");
    assert_eq!(qrs.api(Method::PUT, &path, Some(&keep)).await.status, 200);
    assert_eq!(
        qrs.data_connection(&id).await["password"],
        "n3w-pa55",
        "a PUT without a password keeps it"
    );

    let by_name = qrs
        .api(
            Method::GET,
            "/qrs/dataconnection/full?filter=name%20eq%20'POSTGRES-production'",
            None,
        )
        .await
        .json();
    assert_eq!(by_name.as_array().unwrap().len(), 1);
    let by_password = qrs
        .api(
            Method::GET,
            "/qrs/dataconnection/full?filter=password%20eq%20'n3w-pa55'",
            None,
        )
        .await;
    assert_eq!(by_password.status, 400, "no filtering on secrets");
}

#[tokio::test]
async fn an_edit_after_the_next_read_makes_the_readers_put_stale() {
    let qrs = QrsSiteFixture::start().await;
    let id = qrs
        .seed_virtual_proxy("embed", "X-Frame-Options: DENY", &["app.example.com"])
        .await;
    let path = format!("/qrs/virtualproxyconfig/{id}");

    // By id.
    qrs.edit_after_next_read(&id, "X-Admin: 1").await;
    let read = qrs.api(Method::GET, &path, None).await.json();
    assert_eq!(
        read["additionalResponseHeaders"], "X-Frame-Options: DENY",
        "the read shows the state before the edit"
    );
    let edited = qrs.virtual_proxy(&id).await;
    assert_eq!(edited["additionalResponseHeaders"], "X-Admin: 1");
    assert_eq!(edited["modifiedByUserName"], "INTERNAL\\qmc_admin");
    assert!(date(&edited) > date(&read));
    let mut mine = read.clone();
    mine["additionalResponseHeaders"] = json!("X-Operator: 1");
    assert_eq!(qrs.api(Method::PUT, &path, Some(&mine)).await.status, 409);

    // It fired once: the re-read and its PUT go through.
    let reread = qrs.api(Method::GET, &path, None).await.json();
    assert_eq!(reread["additionalResponseHeaders"], "X-Admin: 1");
    let mut retry = reread.clone();
    retry["additionalResponseHeaders"] = json!("X-Admin: 1\r\nX-Operator: 1");
    assert_eq!(qrs.api(Method::PUT, &path, Some(&retry)).await.status, 200);

    // Through the full list, found by prefix.
    qrs.edit_after_next_read(&id, "X-Admin: 2").await;
    let listed = qrs
        .api(
            Method::GET,
            "/qrs/virtualproxyconfig/full?filter=prefix%20eq%20'embed'",
            None,
        )
        .await
        .json();
    let mut from_list = listed[0].clone();
    assert_eq!(
        from_list["additionalResponseHeaders"],
        "X-Admin: 1\r\nX-Operator: 1"
    );
    from_list["additionalResponseHeaders"] = json!("X-Operator: 2");
    assert_eq!(
        qrs.api(Method::PUT, &path, Some(&from_list)).await.status,
        409
    );
    assert_eq!(
        qrs.virtual_proxy(&id).await["additionalResponseHeaders"],
        "X-Admin: 2"
    );

    // An immediate edit of the allow list, as in the QMC.
    let edited = qrs
        .edit_allow_list(&id, &["app.example.com", "admin.example.com"])
        .await;
    assert_eq!(
        edited["websocketCrossOriginWhiteList"],
        json!(["app.example.com", "admin.example.com"])
    );
    let edited = qrs.edit_virtual_proxy(&id, "X-Admin: 3").await;
    assert_eq!(edited["additionalResponseHeaders"], "X-Admin: 3");
}
