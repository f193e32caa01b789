//! The emulated QRS site (`qlik_csp_operator::emulator::qrs`) over real HTTPS with mutual
//! TLS: conformance with Qlik's `Repository.json` (`../shared/qlik-api/qrs/`, read in
//! place; the checker is `emulator_qrs/swagger.rs`, the Swagger 2 mode of the cloud
//! checker), and what a real site refuses: a missing or mismatched Xrfkey, an unknown
//! `X-Qlik-User`, a client without the site's certificate (`emulator_qrs/refusals.rs`).
//! `modifiedDate` concurrency, the size limit, secrets and administrator edits are in
//! `emulator_qrs/concurrency.rs`; filters, faults, the request log and the binary in
//! `emulator_qrs/behaviour.rs`.
//!
//! Without the definition the tests that need it fail, unless the developer opted out with
//! `cargo xtask test --without-qlik-definitions`.

#[path = "emulator_qrs/behaviour.rs"]
mod behaviour;
#[path = "emulator_conformance/closed.rs"]
mod closed;
#[path = "emulator_qrs/concurrency.rs"]
mod concurrency;
#[path = "emulator_qrs/refusals.rs"]
mod refusals;
mod support;
#[path = "emulator_qrs/swagger.rs"]
mod swagger;

use std::collections::BTreeSet;

use qlik_csp_operator::emulator::qrs::QrsOperation;
use qlik_csp_operator::emulator::qrs::schema::{self, Kind};
use reqwest::Method;
use serde_json::{Value, json};
use support::qrs_site::{QrsReply, QrsSiteFixture};
use swagger::{Rejection, Repository, definition_path};

fn repository() -> Option<Repository> {
    definition_path().map(|path| Repository::load(&path))
}

#[test]
fn every_emulated_operation_is_in_qliks_definition_with_a_documented_200() {
    let Some(repository) = repository() else {
        return;
    };
    for op in QrsOperation::ALL {
        let operation = repository.operation(op).unwrap_or_else(|| {
            panic!(
                "{} {} is not in Repository.json",
                op.method(),
                op.path_template()
            )
        });
        assert!(
            operation["responses"].get("200").is_some(),
            "{} documents no 200",
            op.name()
        );
    }
}

/// The definition's property of `definition` named `name`, as the emulator's [`Kind`].
fn kind_in_definition(raw: &Value, definition: &str, name: &str) -> Kind {
    let property = &raw["definitions"][definition]["properties"][name];
    let read_only = [
        "id",
        "createdDate",
        "modifiedDate",
        "modifiedByUserName",
        "schemaPath",
        "privileges",
    ];
    if read_only.contains(&name) {
        return Kind::ReadOnly;
    }
    if property.get("$ref").is_some() {
        return Kind::Object;
    }
    match property["type"].as_str() {
        Some("string") => Kind::Text {
            min: property["minLength"].as_u64().unwrap_or(0) as usize,
            max: property["maxLength"].as_u64().map(|m| m as usize),
        },
        Some("integer") if property.get("enum").is_some() => {
            let values: Vec<i64> = property["enum"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect();
            Kind::Choice(Box::leak(values.into_boxed_slice()))
        }
        Some("integer") => Kind::Integer {
            min: property["minimum"].as_i64().unwrap(),
            max: property["maximum"].as_i64().unwrap(),
        },
        Some("boolean") => Kind::Flag,
        Some("array") if property["items"]["type"] == "string" => Kind::Texts,
        Some("array") => Kind::Objects,
        other => panic!("{definition}.{name}: unexpected type {other:?}"),
    }
}

#[test]
fn the_emulators_property_limits_are_the_definitions() {
    let Some(repository) = repository() else {
        return;
    };
    let raw = repository.raw();
    for (definition, table) in [
        ("VirtualProxyConfig", schema::VIRTUAL_PROXY_CONFIG),
        ("DataConnection", schema::DATA_CONNECTION),
    ] {
        let declared: BTreeSet<&str> = raw["definitions"][definition]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let emulated: BTreeSet<&str> = table.iter().map(|(name, _)| *name).collect();
        assert_eq!(emulated, declared, "{definition}: the properties differ");
        for (name, kind) in table {
            assert_eq!(
                *kind,
                kind_in_definition(raw, definition, name),
                "{definition}.{name}"
            );
        }
    }
    let condensed: BTreeSet<&str> = raw["definitions"]["VirtualProxyConfigCondensed"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for (name, _) in schema::VIRTUAL_PROXY_CONFIG {
        assert_eq!(
            condensed.contains(name),
            !schema::NOT_CONDENSED.contains(name),
            "VirtualProxyConfigCondensed.{name}"
        );
    }
}

fn check(repository: &Repository, op: QrsOperation, reply: &QrsReply) {
    assert_eq!(reply.status, 200, "{}: {}", op.name(), reply.text);
    if let Err(rejection) = repository.check(op, reply.status, &reply.content_type, &reply.text) {
        panic!(
            "{} does not conform: {rejection:?}\n{}",
            op.name(),
            reply.text
        );
    }
}

#[tokio::test]
async fn every_endpoints_200_conforms_to_qliks_definition() {
    use QrsOperation::*;
    let Some(repository) = repository() else {
        return;
    };
    let qrs = QrsSiteFixture::start().await;
    let embed = qrs
        .seed_virtual_proxy("embed", "X-Frame-Options: DENY", &["app.example.com"])
        .await;
    qrs.seed_virtual_proxy("", "", &[]).await;
    let connection = qrs
        .seed_data_connection("postgres-prod", "reader", "s3cret")
        .await;

    check(
        &repository,
        AboutGet,
        &qrs.api(Method::GET, "/qrs/about", None).await,
    );
    check(
        &repository,
        VirtualProxyList,
        &qrs.api(Method::GET, "/qrs/virtualproxyconfig", None).await,
    );
    let full = qrs
        .api(Method::GET, "/qrs/virtualproxyconfig/full", None)
        .await;
    check(&repository, VirtualProxyFull, &full);
    assert_eq!(full.json().as_array().unwrap().len(), 2);
    let filtered = qrs
        .api(
            Method::GET,
            "/qrs/virtualproxyconfig/full?filter=prefix%20eq%20'embed'",
            None,
        )
        .await;
    check(&repository, VirtualProxyFull, &filtered);
    check(
        &repository,
        VirtualProxyCount,
        &qrs.api(Method::GET, "/qrs/virtualproxyconfig/count", None)
            .await,
    );
    let path = format!("/qrs/virtualproxyconfig/{embed}");
    let got = qrs.api(Method::GET, &path, None).await;
    check(&repository, VirtualProxyGet, &got);
    let mut entity = got.json();
    entity["additionalResponseHeaders"] =
        json!("X-Frame-Options: DENY\r\nContent-Security-Policy: frame-ancestors 'self'");
    check(
        &repository,
        VirtualProxyUpdate,
        &qrs.api(Method::PUT, &path, Some(&entity)).await,
    );

    check(
        &repository,
        DataConnectionFull,
        &qrs.api(Method::GET, "/qrs/dataconnection/full", None).await,
    );
    let path = format!("/qrs/dataconnection/{connection}");
    let got = qrs.api(Method::GET, &path, None).await;
    check(&repository, DataConnectionGet, &got);
    let mut entity = got.json();
    entity["password"] = json!("n3w");
    check(
        &repository,
        DataConnectionUpdate,
        &qrs.api(Method::PUT, &path, Some(&entity)).await,
    );

    let counters = qrs.counters().await;
    for op in QrsOperation::ALL {
        assert!(
            counters["operations"][op.name()]["byStatus"]["200"].as_u64() >= Some(1),
            "{} was not exercised",
            op.name()
        );
    }
    qrs.assert_every_request_carried_a_matching_xrfkey().await;
}

#[test]
fn the_checker_rejects_answers_that_break_the_definition_and_accepts_qrs_own_quirks() {
    use QrsOperation::*;
    let Some(repository) = repository() else {
        return;
    };
    let json = "application/json; charset=utf-8";
    let proxy = json!({
        "id": "0b6a1b4e-4b43-4c3a-9a1f-3b2f2c1d0e9f",
        "modifiedDate": "2026-12-02T10:00:00.123Z",
        "prefix": "embed",
        "sessionCookieHeaderName": "X-Qlik-Session-embed",
        "sessionInactivityTimeout": 30,
        "defaultVirtualProxy": false,
        "privileges": null,
        "sessionCookieDomain": "",
        "authenticationModuleRedirectUri": "",
        "websocketCrossOriginWhiteList": ["app.example.com"],
    });
    let with = |pointer: &str, value: Option<Value>| {
        let mut changed = proxy.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let object = changed
            .pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap();
        match value {
            Some(value) => object.insert(key.to_owned(), value),
            None => object.remove(key),
        };
        changed.to_string()
    };
    let check = |op, text: &str| repository.check(op, 200, json, text);
    assert_eq!(
        check(VirtualProxyGet, &proxy.to_string()),
        Ok(()),
        "the positive control"
    );
    let schema_error = |text: &str| match check(VirtualProxyGet, text) {
        Err(Rejection::Schema(violations)) => violations,
        other => panic!("expected a schema rejection, got {other:?}"),
    };
    let long = "x".repeat(1025);
    assert_eq!(
        schema_error(&with("/additionalResponseHeaders", Some(json!(long)))),
        vec![(
            "/additionalResponseHeaders".to_owned(),
            "maxLength".to_owned()
        )]
    );
    assert_eq!(
        schema_error(&with("/modifiedDate", Some(json!("2 December 2026")))),
        vec![("/modifiedDate".to_owned(), "format".to_owned())]
    );
    assert_eq!(
        schema_error(&with("/sessionInactivityTimeout", None)),
        vec![(String::new(), "required".to_owned())]
    );
    assert_eq!(
        schema_error(&with("/sessionCookieHeaderName", Some(json!("")))),
        vec![(
            "/sessionCookieHeaderName".to_owned(),
            "minLength".to_owned()
        )],
        "a required string stays strict"
    );
    assert_eq!(
        schema_error(&with(
            "/websocketCrossOriginWhiteList",
            Some(json!("app.example.com"))
        )),
        vec![(
            "/websocketCrossOriginWhiteList".to_owned(),
            "type".to_owned()
        )]
    );
    assert!(matches!(
        check(
            VirtualProxyGet,
            &with("/authenticationModuleRedirectUri", Some(json!("not a uri")))
        ),
        Err(Rejection::Schema(_))
    ));
    assert_eq!(
        check(VirtualProxyGet, &with("/madeUp", Some(json!(1)))),
        Err(Rejection::Undeclared(vec!["/madeUp".to_owned()]))
    );
    assert_eq!(
        check(
            VirtualProxyList,
            &format!(
                "[{}]",
                with("/createdDate", Some(json!("2026-12-02T10:00:00.123Z")))
            )
        ),
        Err(Rejection::Undeclared(vec![
            "/0/createdDate".to_owned(),
            "/0/modifiedDate".to_owned()
        ])),
        "the condensed list declares no dates"
    );
    assert_eq!(check(VirtualProxyCount, "2"), Ok(()));
    assert!(matches!(
        check(VirtualProxyCount, "\"2\""),
        Err(Rejection::Schema(_))
    ));
    assert_eq!(
        repository.check(AboutGet, 200, "text/plain", "{}"),
        Err(Rejection::UndocumentedMediaType("text/plain".to_owned()))
    );
    assert_eq!(
        repository.check(AboutGet, 409, json, "{}"),
        Err(Rejection::UndocumentedStatus(409))
    );
}
