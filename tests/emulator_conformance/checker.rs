//! The checker's own tests: every rule rejects a reply that breaks it, for the reason it
//! names (asserted, not just "some panic"), and accepts the same reply without the break
//! (the positive control), at the top level and nested (inside `data[]`, `links`, `allOf`
//! members and `anyOf` branches). Pure: definitions only, no emulator.

use qlik_csp_operator::emulator::Operation;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::spec::{Rejection, Reply, Specs, UNDOCUMENTED_STATUSES, spec_dir};

fn reply(status: u16, content_type: &str, text: String, headers: &[(&str, &str)]) -> Reply {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    Reply {
        status,
        headers: map,
        content_type: content_type.to_owned(),
        json: serde_json::from_str(&text).ok(),
        text,
    }
}

fn json_reply(status: u16, body: Value) -> Reply {
    reply(status, "application/json", body.to_string(), &[])
}

fn text_reply(status: u16, content_type: &str, text: &str) -> Reply {
    reply(status, content_type, text.to_owned(), &[])
}

/// What the bad reply must be rejected for.
enum Expect {
    Exactly(Rejection),
    /// A `Schema` rejection with exactly these `(instance path, keyword)` violations.
    Schema(&'static [(&'static str, &'static str)]),
    /// A `Header` rejection of this header with these violations.
    Header(&'static str, &'static [(&'static str, &'static str)]),
}

struct Case {
    name: &'static str,
    op: Operation,
    good: Reply,
    bad: Reply,
    expect: Expect,
}

fn case(name: &'static str, op: Operation, good: Reply, bad: Reply, expect: Expect) -> Case {
    Case {
        name,
        op,
        good,
        bad,
        expect,
    }
}

fn run(specs: &Specs, cases: Vec<Case>) {
    for Case {
        name,
        op,
        good,
        bad,
        expect,
    } in cases
    {
        assert_eq!(
            specs.check(op, &good),
            Ok(()),
            "{name}: the positive control is rejected"
        );
        let rejection = specs
            .check(op, &bad)
            .expect_err(&format!("{name}: accepted {}", bad.text));
        match expect {
            Expect::Exactly(expected) => assert_eq!(rejection, expected, "{name}"),
            Expect::Schema(violations) => {
                assert!(
                    matches!(rejection, Rejection::Schema(_)),
                    "{name}: {rejection}"
                );
                assert_eq!(rejection.violations(), violations, "{name}: {rejection}");
            }
            Expect::Header(header, violations) => {
                assert!(
                    matches!(&rejection, Rejection::Header { name, .. } if name == header),
                    "{name}: {rejection}"
                );
                assert_eq!(rejection.violations(), violations, "{name}: {rejection}");
            }
        }
    }
}

/// `value` with `pointer` set to `to` (or removed when `to` is `None`).
fn with(value: &Value, pointer: &str, to: Option<Value>) -> Value {
    let mut value = value.clone();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let target = value.pointer_mut(parent).unwrap();
    match (target, to) {
        (Value::Object(map), Some(to)) => {
            map.insert(key.to_owned(), to);
        }
        (Value::Object(map), None) => {
            map.remove(key);
        }
        (Value::Array(items), Some(to)) => items[key.parse::<usize>().unwrap()] = to,
        (other, _) => panic!("{pointer} is in {other}"),
    }
    value
}

#[test]
fn the_checker_rejects_bodies_that_break_the_definitions_and_says_why() {
    use Expect::*;
    use Operation::*;
    let Some(dir) = spec_dir() else { return };
    let specs = Specs::load(&dir);

    let entry = json!({"id": "e1", "origin": "https://a.example.com", "imgSrc": true});
    let entries = json!({
        "data": [entry, with(&entry, "/id", Some(json!("e2")))],
        "links": {"self": {"href": "https://t.example.com/api/v1/csp-origins"},
                  "next": {"href": "https://t.example.com/api/v1/csp-origins?next=x"}},
    });
    let key = json!({
        "id": "k1", "tenantId": "t", "description": "d", "status": "active", "sub": "u",
        "subType": "user", "expiry": "2030-01-01T00:00:00.000Z", "createdByUser": "u",
    });
    let keys = json!({
        "data": [key],
        "links": {"self": {"href": "https://t.example.com/api/v1/api-keys"},
                  "next": {"href": "https://t.example.com/api/v1/api-keys?startingAfter=k1"}},
    });
    let client = json!({
        "clientId": "c", "clientName": "c", "appType": "web", "ownerId": "u",
        "createdAt": "2030-01-01T00:00:00.000Z",
        "clientSecrets": [{"hint": "abcd", "createdAt": "2030-01-01T00:00:00.000Z"}],
        "allowedAuthMethods": ["client_secret"],
    });
    let tenant_error =
        json!({"errors": [{"code": "TENANTS-8", "title": "Not found", "status": "404"}]});
    let csp_error = json!({"errors": [{"code": "CSP-1", "title": "Not found"}]});
    let rate_limited = |retry_after: &str| {
        let body = json!({"errors": [{"code": "LIMIT", "title": "Too many requests"}]});
        reply(
            429,
            "application/json",
            body.to_string(),
            &[("retry-after", retry_after)],
        )
    };

    run(
        &specs,
        vec![
            // The top level.
            case(
                "a property of the wrong type",
                CspOriginsGet,
                json_reply(200, entry.clone()),
                json_reply(200, with(&entry, "/id", Some(json!(5)))),
                Schema(&[("/id", "type")]),
            ),
            case(
                "a property nobody declares",
                CspOriginsGet,
                json_reply(200, entry.clone()),
                json_reply(200, with(&entry, "/createdAt", Some(json!("x")))),
                Exactly(Rejection::Undeclared(vec!["/createdAt".into()])),
            ),
            case(
                "a required property missing",
                ApiKeysGet,
                json_reply(200, key.clone()),
                json_reply(200, with(&key, "/sub", None)),
                Schema(&[("", "required")]),
            ),
            case(
                "a date that is not one",
                ApiKeysGet,
                json_reply(200, key.clone()),
                json_reply(200, with(&key, "/expiry", Some(json!("tomorrow")))),
                Schema(&[("/expiry", "format")]),
            ),
            case(
                "a value outside the enum",
                ApiKeysGet,
                json_reply(200, key.clone()),
                json_reply(200, with(&key, "/status", Some(json!("paused")))),
                Schema(&[("/status", "enum")]),
            ),
            // allOf: CSPEntry's own `id` plus CSPEntryContent's `origin` (at most 256).
            case(
                "a constraint of an allOf member",
                CspOriginsGet,
                json_reply(200, entry.clone()),
                json_reply(200, with(&entry, "/origin", Some(json!("a".repeat(257))))),
                Schema(&[("/origin", "maxLength")]),
            ),
            // Inside data[].
            case(
                "a wrong type inside data[]",
                CspOriginsList,
                json_reply(200, entries.clone()),
                json_reply(200, with(&entries, "/data/1/imgSrc", Some(json!("yes")))),
                Schema(&[("/data/1/imgSrc", "type")]),
            ),
            case(
                "an undeclared property inside data[]",
                CspOriginsList,
                json_reply(200, entries.clone()),
                json_reply(200, with(&entries, "/data/1/extra", Some(json!(1)))),
                Exactly(Rejection::Undeclared(vec!["/data/1/extra".into()])),
            ),
            case(
                "a missing required property inside data[]",
                ApiKeysList,
                json_reply(200, keys.clone()),
                json_reply(200, with(&keys, "/data/0/status", None)),
                Schema(&[("/data/0", "required")]),
            ),
            // Inside links.
            case(
                "a wrong type inside links",
                CspOriginsList,
                json_reply(200, entries.clone()),
                json_reply(200, with(&entries, "/links/next/href", Some(json!(5)))),
                Schema(&[("/links/next/href", "type")]),
            ),
            case(
                "a link that is not a URI",
                ApiKeysList,
                json_reply(200, keys.clone()),
                json_reply(
                    200,
                    with(&keys, "/links/next/href", Some(json!("not a uri"))),
                ),
                Schema(&[("/links/next/href", "format")]),
            ),
            case(
                "a link nobody declares",
                CspOriginsList,
                json_reply(200, entries.clone()),
                json_reply(
                    200,
                    with(&entries, "/links/first", Some(json!({"href": "x"}))),
                ),
                Exactly(Rejection::Undeclared(vec!["/links/first".into()])),
            ),
            case(
                "an undeclared property inside a link",
                CspOriginsList,
                json_reply(200, entries.clone()),
                json_reply(200, with(&entries, "/links/next/rel", Some(json!("next")))),
                Exactly(Rejection::Undeclared(vec!["/links/next/rel".into()])),
            ),
            // anyOf branches (admin or plain read), each allOf OAuthClientBase.
            case(
                "no anyOf branch fits",
                OAuthClientsGet,
                json_reply(200, client.clone()),
                json_reply(200, with(&client, "/clientName", None)),
                Schema(&[("", "anyOf")]),
            ),
            case(
                "an undeclared property inside an anyOf branch",
                OAuthClientsGet,
                json_reply(200, client.clone()),
                json_reply(
                    200,
                    with(&client, "/clientSecrets/0/secret", Some(json!("s"))),
                ),
                Exactly(Rejection::Undeclared(vec![
                    "/clientSecrets/0/secret".into(),
                ])),
            ),
            case(
                "a property no anyOf branch declares",
                OAuthClientsGet,
                json_reply(200, client.clone()),
                json_reply(200, with(&client, "/clientSecret", Some(json!("s")))),
                Exactly(Rejection::Undeclared(vec!["/clientSecret".into()])),
            ),
            // Statuses.
            case(
                "an undocumented status, where the operation has a default",
                TenantsGet,
                json_reply(404, tenant_error.clone()),
                json_reply(500, tenant_error.clone()),
                Exactly(Rejection::UndocumentedStatus(500)),
            ),
            case(
                "an undocumented status",
                CspOriginsGet,
                json_reply(404, csp_error.clone()),
                json_reply(418, csp_error.clone()),
                Exactly(Rejection::UndocumentedStatus(418)),
            ),
            case(
                "an error body of the wrong shape",
                TenantsGet,
                json_reply(404, tenant_error.clone()),
                json_reply(
                    404,
                    with(&tenant_error, "/errors/0/status", Some(json!(404))),
                ),
                Schema(&[("/errors/0/status", "type")]),
            ),
            case(
                "a body where the definition has none",
                CspOriginsDelete,
                text_reply(204, "", ""),
                json_reply(204, json!({"unexpected": true})),
                Exactly(Rejection::UnexpectedBody(19)),
            ),
            case(
                "a body that is not JSON",
                CspOriginsGet,
                json_reply(200, entry.clone()),
                text_reply(200, "application/json", "{\"id\":"),
                Exactly(Rejection::NotJson),
            ),
            // Media types and text bodies.
            case(
                "a text media type the status does not document",
                CspOriginsGenerateHeader,
                text_reply(200, "text/plain; charset=utf-8", "default-src 'self'"),
                text_reply(200, "text/html; charset=utf-8", "default-src 'self'"),
                Exactly(Rejection::UndocumentedMediaType("text/html".into())),
            ),
            case(
                "text where the status documents only JSON",
                CspOriginsGenerateHeader,
                json_reply(406, csp_error.clone()),
                text_reply(406, "text/plain", "no"),
                Exactly(Rejection::UndocumentedMediaType("text/plain".into())),
            ),
            case(
                "JSON where the status documents only text",
                UsersMe,
                text_reply(301, "text/html; charset=utf-8", "<a href=\"x\">Moved</a>"),
                json_reply(301, json!({"location": "x"})),
                Exactly(Rejection::UndocumentedMediaType("application/json".into())),
            ),
            // Documented headers (api-keys wraps retry-after's schema in an object).
            case(
                "a retry-after that is not a number",
                UsersMe,
                rate_limited("3"),
                rate_limited("soon"),
                Header("retry-after", &[("", "type")]),
            ),
            case(
                "a wrapped retry-after that is not a number",
                ApiKeysList,
                rate_limited("3"),
                rate_limited("in a while"),
                Header("retry-after", &[("", "type")]),
            ),
        ],
    );
}

/// Definitions written for the rules Qlik's own do not exercise: `anyOf` branches with
/// disjoint properties, and a `text/plain` schema with constraints.
fn synthetic_specs() -> Specs {
    let branch = |own: &[&str]| {
        let mut properties = serde_json::Map::new();
        properties.insert("kind".into(), json!({"type": "string"}));
        for p in own {
            properties.insert((*p).into(), json!({"type": "string"}));
        }
        json!({"type": "object", "required": ["kind"], "properties": properties})
    };
    let shape =
        json!({"anyOf": [{"$ref": "#/components/schemas/A"}, {"$ref": "#/components/schemas/B"}]});
    let tenants = json!({
        "paths": {
            "/api/v1/tenants/{tenantId}": {"get": {"responses": {
                "200": {"content": {"application/json": {"schema": shape}}},
            }}},
            "/api/v1/tenants/me": {"get": {"responses": {
                "302": {"content": {"application/json": {"schema": {
                    "type": "object",
                    "properties": {"data": {"type": "array", "items": shape}},
                }}}},
            }}},
        },
        "components": {"schemas": {"A": branch(&["a1", "a2"]), "B": branch(&["b1"])}},
    });
    let csp = json!({
        "paths": {"/api/v1/csp-origins/actions/generate-header": {"get": {"responses": {
            "200": {"content": {"text/plain": {"schema": {
                "type": "string", "maxLength": 40, "pattern": "^[ -~]*$",
            }}}},
        }}}},
        "components": {"schemas": {}},
    });
    Specs::from_documents([("tenants.json", tenants), ("csp-origins.json", csp)])
}

#[test]
fn the_checker_rejects_mixed_anyof_branches_and_checks_text_bodies() {
    use Expect::*;
    use Operation::*;
    let specs = synthetic_specs();
    let a = json!({"kind": "a", "a1": "x", "a2": "y"});
    let b = json!({"kind": "b", "b1": "z"});
    let mixed = json!({"kind": "a", "a1": "x", "b1": "z"});
    let page = |items: Vec<Value>| json_reply(302, json!({"data": items}));
    let header = "text/plain; charset=utf-8";

    assert_eq!(specs.check(TenantsGet, &json_reply(200, b.clone())), Ok(()));
    run(
        &specs,
        vec![
            case(
                "properties of two anyOf branches in one object",
                TenantsGet,
                json_reply(200, a.clone()),
                json_reply(200, mixed.clone()),
                Exactly(Rejection::MixedBranches(vec![String::new()])),
            ),
            case(
                "two anyOf branches mixed inside data[]",
                TenantsMe,
                page(vec![a.clone(), b.clone()]),
                page(vec![a.clone(), mixed.clone()]),
                Exactly(Rejection::MixedBranches(vec!["/data/1".into()])),
            ),
            case(
                "a property no anyOf branch declares",
                TenantsGet,
                json_reply(200, a.clone()),
                json_reply(200, with(&a, "/zz", Some(json!("x")))),
                Exactly(Rejection::Undeclared(vec!["/zz".into()])),
            ),
            case(
                "a text body longer than its schema allows",
                CspOriginsGenerateHeader,
                text_reply(200, header, "default-src 'self'"),
                text_reply(
                    200,
                    header,
                    &format!("default-src 'self' {}", "x".repeat(30)),
                ),
                Schema(&[("", "maxLength")]),
            ),
            case(
                "a text body breaking its schema's pattern",
                CspOriginsGenerateHeader,
                text_reply(200, header, "default-src 'self'; img-src x"),
                text_reply(200, header, "default-src 'self';\r\nimg-src x"),
                Schema(&[("", "pattern")]),
            ),
        ],
    );
}

#[test]
fn each_undocumented_status_the_checker_allows_is_really_undocumented() {
    let Some(dir) = spec_dir() else { return };
    let specs = Specs::load(&dir);
    for (op, status, reason) in UNDOCUMENTED_STATUSES {
        assert!(!reason.is_empty());
        assert!(
            !specs.documents(*op, *status),
            "{} now documents {status}: drop it from UNDOCUMENTED_STATUSES",
            op.name()
        );
    }
}
