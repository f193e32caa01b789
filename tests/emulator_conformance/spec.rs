//! Qlik's API definitions as JSON Schema, and the check that a reply conforms. No I/O
//! beyond reading the definition files.
//!
//! Translations from OpenAPI 3.0 to JSON Schema (draft 4, which OpenAPI 3.0 builds on):
//! `nullable: true` adds `"null"` to `type`; `oneOf` becomes `anyOf`, because the
//! definitions use `oneOf` for alternatives that overlap (oauth-clients' admin and plain
//! read responses accept the same documents, so strict `oneOf` would reject every body).
//! When a definition lists no response for a status the emulator sends (401 and 429 are
//! missing from several), the operation's `default` response is used, else its first error
//! response, else the API's error schema: Qlik answers those with the same error body.
//! On top of the schema, bodies may not carry properties the definition does not declare
//! (except [`ALLOWED_EXTRAS`]), so a misspelt field fails too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use qlik_csp_operator::emulator::Operation;
use serde_json::{Value, json};

/// Properties the emulator sends that the definitions do not declare, and why.
pub const ALLOWED_EXTRAS: &[(Operation, &str, &str)] = &[(
    Operation::OAuthToken,
    "expires_in",
    "RFC 6749 §5.1 field that OAuth clients rely on; Qlik's definition lists only expires_at",
)];

/// A reply as the checker sees it.
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub content_type: String,
    pub text: String,
    pub json: Option<Value>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn body(&self) -> &Value {
        self.json.as_ref().unwrap_or(&Value::Null)
    }

    pub fn error_code(&self) -> &str {
        self.body()["errors"][0]["code"]
            .as_str()
            .unwrap_or_default()
    }
}

/// The definitions folder, or `None` (after saying so) when it is absent outside CI.
pub fn spec_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/qlik-api/cloud");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{} not found: CI must provide Qlik's API definitions",
            dir.display()
        );
    }
    eprintln!("skipped: ../shared/qlik-api not found (it holds Qlik's API definitions; CI has it)");
    None
}

/// The loaded definitions, translated to JSON Schema.
pub struct Specs {
    docs: BTreeMap<&'static str, Value>,
}

impl Specs {
    pub fn load(dir: &Path) -> Specs {
        let mut docs = BTreeMap::new();
        for op in Operation::ALL {
            let file = op.spec_file();
            if docs.contains_key(file) {
                continue;
            }
            let path = dir.join(file);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()));
            let mut doc: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            to_json_schema(&mut doc);
            docs.insert(file, doc);
        }
        Specs { docs }
    }

    fn doc(&self, op: Operation) -> &Value {
        &self.docs[op.spec_file()]
    }

    /// The operation object of `op` in its definition.
    pub fn operation(&self, op: Operation) -> &Value {
        let found = &self.doc(op)["paths"][op.path_template()][op.method().to_lowercase()];
        assert!(
            found.is_object(),
            "{} {} is not in {}",
            op.method(),
            op.path_template(),
            op.spec_file()
        );
        found
    }

    /// The response object for `status`: the documented one, else `default`, else the
    /// operation's first JSON error response, else the API's own error schema (tenants/me
    /// documents only its 302).
    fn response(&self, op: Operation, status: u16) -> Value {
        let doc = self.doc(op);
        let deref = |response: &Value| match response.get("$ref").and_then(Value::as_str) {
            Some(r) => doc
                .pointer(r.trim_start_matches('#'))
                .cloned()
                .unwrap_or(Value::Null),
            None => response.clone(),
        };
        let responses = &self.operation(op)["responses"];
        if let Some(response) = responses
            .get(status.to_string())
            .or_else(|| responses.get("default"))
        {
            return deref(response);
        }
        let first_error = responses.as_object().and_then(|r| {
            r.iter()
                .filter(|(code, _)| code.starts_with('4') || code.starts_with('5'))
                .map(|(_, response)| deref(response))
                .find(|response| {
                    response
                        .pointer("/content/application~1json/schema")
                        .is_some()
                })
        });
        first_error.unwrap_or_else(|| {
            let name = ["Errors", "ErrorResponse"]
                .into_iter()
                .find(|n| doc["components"]["schemas"].get(n).is_some())
                .unwrap_or_else(|| panic!("{}: no error schema for {status}", op.name()));
            json!({"content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}}})
        })
    }

    /// Panics unless `reply` conforms to the definition of `op`.
    pub fn check(&self, op: Operation, reply: &Reply) {
        let doc = self.doc(op);
        let response = self.response(op, reply.status);
        let content = &response["content"];
        let context = || format!("{} answered {}: {}", op.name(), reply.status, reply.text);
        if content.is_null() {
            assert!(
                reply.text.is_empty(),
                "{}: the definition has no body here",
                context()
            );
            return;
        }
        if reply.content_type.starts_with("text/") {
            let media = reply.content_type.split(';').next().unwrap_or_default();
            assert!(
                content.get(media).is_some(),
                "{}: {media} is not a documented media type",
                context()
            );
            return;
        }
        assert!(
            reply.content_type.starts_with("application/json"),
            "{}: content type {:?}",
            context(),
            reply.content_type
        );
        let json = reply
            .json
            .as_ref()
            .unwrap_or_else(|| panic!("{}: not JSON", context()));
        let schema = &content["application/json"]["schema"];
        // The schema refers to `#/components/...` of its own document.
        let root = json!({
            "$ref": "#/definitions/response",
            "definitions": { "response": schema },
            "components": doc["components"],
        });
        let validator = jsonschema::draft4::options()
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("{}: the schema does not compile: {e}", op.name()));
        let errors: Vec<String> = validator
            .iter_errors(json)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", context());

        let mut undeclared = Vec::new();
        find_undeclared(doc, schema, json, String::new(), &mut undeclared);
        undeclared.retain(|path| {
            !ALLOWED_EXTRAS
                .iter()
                .any(|(o, field, _)| *o == op && path == &format!("/{field}"))
        });
        assert!(
            undeclared.is_empty(),
            "{}: properties not in the definition: {undeclared:?}",
            context()
        );
    }
}

fn to_json_schema(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.remove("nullable") == Some(Value::Bool(true))
                && let Some(Value::String(t)) = map.get("type").cloned()
            {
                map.insert("type".to_owned(), json!([t, "null"]));
            }
            if let Some(one_of) = map.remove("oneOf") {
                map.insert("anyOf".to_owned(), one_of);
            }
            map.values_mut().for_each(to_json_schema);
        }
        Value::Array(items) => items.iter_mut().for_each(to_json_schema),
        _ => {}
    }
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    let mut schema = schema;
    while let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        schema = doc
            .pointer(reference.trim_start_matches('#'))
            .unwrap_or(&Value::Null);
    }
    schema
}

/// Subschemas that apply to the same instance: the schema and its `allOf`/`anyOf` branches.
fn branches<'a>(doc: &'a Value, schema: &'a Value, out: &mut Vec<&'a Value>) {
    let schema = resolve(doc, schema);
    out.push(schema);
    for key in ["allOf", "anyOf"] {
        if let Some(list) = schema.get(key).and_then(Value::as_array) {
            for branch in list {
                branches(doc, branch, out);
            }
        }
    }
}

fn find_undeclared(
    doc: &Value,
    schema: &Value,
    instance: &Value,
    at: String,
    out: &mut Vec<String>,
) {
    let mut all = Vec::new();
    branches(doc, schema, &mut all);
    match instance {
        Value::Object(map) => {
            let declares = all.iter().any(|s| s.get("properties").is_some());
            let open = all.iter().any(|s| s.get("additionalProperties").is_some());
            if !declares || open {
                return;
            }
            for (key, value) in map {
                let subs: Vec<&Value> = all
                    .iter()
                    .filter_map(|s| s.get("properties").and_then(|p| p.get(key)))
                    .collect();
                // OAuthClientBase requires `ownerId` without declaring it.
                let required = all.iter().any(|s| {
                    s.get("required")
                        .and_then(Value::as_array)
                        .is_some_and(|r| r.iter().any(|n| n == key))
                });
                if subs.is_empty() && !required {
                    out.push(format!("{at}/{key}"));
                }
                for sub in subs {
                    find_undeclared(doc, sub, value, format!("{at}/{key}"), out);
                }
            }
        }
        Value::Array(items) => {
            for s in &all {
                if let Some(item_schema) = s.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        find_undeclared(doc, item_schema, item, format!("{at}/{i}"), out);
                    }
                }
            }
        }
        _ => {}
    }
}
