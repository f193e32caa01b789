//! Qlik's API definitions as JSON Schema, and the check that a reply conforms: a
//! [`Rejection`] says why one does not. No I/O beyond reading the definition files.
//!
//! Translations from OpenAPI 3.0 to JSON Schema (draft 4, which OpenAPI 3.0 builds on):
//! `nullable: true` adds `"null"` to `type`; `oneOf` becomes `anyOf`, because the
//! definitions use `oneOf` for alternatives that overlap (oauth-clients' admin and plain
//! read responses accept the same documents, so strict `oneOf` would reject every body).
//! A response header whose schema is an object declaring that same header (api-keys'
//! `RetryAfterHeader`) is checked against that property's schema.
//!
//! Strictness, beyond the schema:
//! - a status the operation does not list fails, unless [`UNDOCUMENTED_STATUSES`] names
//!   the pair with its reason (then the body is checked against the operation's `default`
//!   response, else its first JSON error response, else the API's error schema);
//! - the content type must be one the response documents, and text bodies (`text/plain`,
//!   `text/html`) are checked against their media type's schema too;
//! - documented response headers that are present are checked against their schema;
//! - bodies may not carry properties the definition does not declare (except
//!   [`ALLOWED_EXTRAS`]), at any depth, and an object under an `anyOf` must be declared by
//!   one branch alone (see `closed.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use qlik_csp_operator::emulator::Operation;
use serde_json::{Value, json};

use super::closed::{self, Issue};

/// Properties the emulator sends that the definitions do not declare, and why.
pub const ALLOWED_EXTRAS: &[(Operation, &str, &str)] = &[(
    Operation::OAuthToken,
    "expires_in",
    "RFC 6749 §5.1 field that OAuth clients rely on; Qlik's definition lists only expires_at",
)];

const NO_TOKEN: &str = "every Qlik API answers a missing, expired or revoked token with 401; \
                        this definition does not list it";
const RATE_LIMITED: &str = "every operation has an x-qlik-tier rate limit answered with 429; \
                            this definition does not list it";
const ONLY_DEFAULT: &str = "this definition documents errors only as `default`";

/// Statuses the emulator sends that a definition does not list, and why Qlik sends them
/// anyway. Any other undocumented status is a [`Rejection::UndocumentedStatus`].
pub const UNDOCUMENTED_STATUSES: &[(Operation, u16, &str)] = &[
    (Operation::ApiKeysList, 401, NO_TOKEN),
    (Operation::ApiKeysGet, 401, NO_TOKEN),
    (Operation::ApiKeysCreate, 401, NO_TOKEN),
    (Operation::ApiKeysDelete, 401, NO_TOKEN),
    (Operation::ApiKeysGetConfig, 401, NO_TOKEN),
    (Operation::UsersMe, 401, NO_TOKEN),
    (Operation::UsersGet, 401, NO_TOKEN),
    (Operation::TenantsMe, 401, NO_TOKEN),
    (Operation::TenantsGet, 401, NO_TOKEN),
    (Operation::DataConnectionsList, 401, NO_TOKEN),
    (Operation::DataConnectionsGet, 401, NO_TOKEN),
    (Operation::DataConnectionsPatch, 401, NO_TOKEN),
    (Operation::DataConnectionsPut, 401, NO_TOKEN),
    (Operation::EmailConfigGet, 401, NO_TOKEN),
    (Operation::EmailConfigPatch, 401, NO_TOKEN),
    (Operation::EmailConfigPut, 401, NO_TOKEN),
    (Operation::EmailConfigVerifyConnection, 401, NO_TOKEN),
    (Operation::CspOriginsCreate, 429, RATE_LIMITED),
    (Operation::OAuthToken, 429, RATE_LIMITED),
    (Operation::DataConnectionsPatch, 429, RATE_LIMITED),
    (Operation::AutomationConnectionsCheck, 429, RATE_LIMITED),
    (
        Operation::ApiKeysGetConfig,
        404,
        "another tenant's id; this definition documents errors only as `default`",
    ),
    (Operation::ApiKeysGetConfig, 500, ONLY_DEFAULT),
    (Operation::TenantsGet, 503, ONLY_DEFAULT),
    (Operation::EmailConfigVerifyConnection, 500, ONLY_DEFAULT),
];

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

/// Why a reply does not conform to the definition of its operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The operation does not list this status (and [`UNDOCUMENTED_STATUSES`] does not
    /// allow it).
    #[error("status {0} is not documented for this operation")]
    UndocumentedStatus(u16),
    /// The response documents no body, but one came.
    #[error("the definition documents no body here, got {0} bytes")]
    UnexpectedBody(usize),
    /// The response does not document this content type (the media type, lowercase).
    #[error("content type {0:?} is not documented here")]
    UndocumentedMediaType(String),
    /// A JSON media type, but the body does not parse.
    #[error("the body is not JSON")]
    NotJson,
    /// The body breaks the schema.
    #[error("the body breaks the schema: {0:?}")]
    Schema(Vec<Violation>),
    /// A documented response header breaks its schema.
    #[error("header {name} breaks its schema: {violations:?}")]
    Header {
        name: String,
        violations: Vec<Violation>,
    },
    /// Properties the definition does not declare, as JSON pointers.
    #[error("properties not in the definition: {0:?}")]
    Undeclared(Vec<String>),
    /// Objects (JSON pointers) whose properties are each declared by some `anyOf` branch,
    /// but not all by one.
    #[error("objects mixing properties of different anyOf branches: {0:?}")]
    MixedBranches(Vec<String>),
    /// The definition itself cannot be used (missing operation, schema that does not
    /// compile): a fault of the definitions or of this checker, not of the reply.
    #[error("unusable definition: {0}")]
    Definition(String),
}

/// One schema error: where in the instance, which keyword, and the validator's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub at: String,
    pub keyword: String,
    pub message: String,
}

impl Rejection {
    /// `(instance path, keyword)` of each schema violation, for asserting the reason.
    pub fn violations(&self) -> Vec<(&str, &str)> {
        match self {
            Rejection::Schema(v) | Rejection::Header { violations: v, .. } => v
                .iter()
                .map(|v| (v.at.as_str(), v.keyword.as_str()))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// The variable `cargo xtask test --without-qlik-definitions` sets to `1`: only then may
/// a test that needs the definitions skip when they are missing.
pub const WITHOUT_DEFINITIONS_VAR: &str = "QLIKOPS_WITHOUT_QLIK_DEFINITIONS";

/// The definitions folder. When it is missing the test fails, unless the developer opted
/// out ([`WITHOUT_DEFINITIONS_VAR`]`=1`): then `None`, and the caller skips.
pub fn spec_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/qlik-api/cloud");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var(WITHOUT_DEFINITIONS_VAR).as_deref() == Ok("1") {
        eprintln!(
            "skipped: {} not found and {WITHOUT_DEFINITIONS_VAR}=1",
            dir.display()
        );
        return None;
    }
    panic!(
        "{} not found: this test checks the emulator against Qlik's API definitions, which \
         must be there. Provide them, or run `cargo xtask test --without-qlik-definitions` \
         to skip the tests that need them knowingly",
        dir.display()
    );
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
            let doc: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            docs.insert(file, doc);
        }
        Specs::from_documents(docs)
    }

    /// Definitions given in memory, keyed by file name (as [`Operation::spec_file`] names
    /// them), for testing the checker itself.
    pub fn from_documents(docs: impl IntoIterator<Item = (&'static str, Value)>) -> Specs {
        let docs = docs
            .into_iter()
            .map(|(file, mut doc)| {
                to_json_schema(&mut doc);
                (file, doc)
            })
            .collect();
        Specs { docs }
    }

    fn doc(&self, op: Operation) -> Result<&Value, Rejection> {
        self.docs
            .get(op.spec_file())
            .ok_or_else(|| Rejection::Definition(format!("{} is not loaded", op.spec_file())))
    }

    fn find_operation(&self, op: Operation) -> Result<&Value, Rejection> {
        let found = &self.doc(op)?["paths"][op.path_template()][op.method().to_lowercase()];
        if found.is_object() {
            Ok(found)
        } else {
            Err(Rejection::Definition(format!(
                "{} {} is not in {}",
                op.method(),
                op.path_template(),
                op.spec_file()
            )))
        }
    }

    /// The operation object of `op` in its definition; panics when it is missing.
    pub fn operation(&self, op: Operation) -> &Value {
        self.find_operation(op).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Whether the definition of `op` lists `status` itself (not as `default`).
    pub fn documents(&self, op: Operation, status: u16) -> bool {
        self.find_operation(op)
            .is_ok_and(|o| o["responses"].get(status.to_string()).is_some())
    }

    /// The response object for `status`: the documented one; for a pair
    /// [`UNDOCUMENTED_STATUSES`] allows, `default`, else the operation's first JSON error
    /// response, else the API's own error schema (tenants/me documents only its 302).
    fn response(&self, op: Operation, status: u16) -> Result<Value, Rejection> {
        let doc = self.doc(op)?;
        let responses = &self.find_operation(op)?["responses"];
        if let Some(response) = responses.get(status.to_string()) {
            return Ok(deref(doc, response));
        }
        if !UNDOCUMENTED_STATUSES
            .iter()
            .any(|(o, s, _)| *o == op && *s == status)
        {
            return Err(Rejection::UndocumentedStatus(status));
        }
        if let Some(default) = responses.get("default") {
            return Ok(deref(doc, default));
        }
        let first_error = responses.as_object().and_then(|r| {
            r.iter()
                .filter(|(code, _)| code.starts_with('4') || code.starts_with('5'))
                .map(|(_, response)| deref(doc, response))
                .find(|response| {
                    response
                        .pointer("/content/application~1json/schema")
                        .is_some()
                })
        });
        if let Some(response) = first_error {
            return Ok(response);
        }
        let name = ["Errors", "ErrorResponse"]
            .into_iter()
            .find(|n| doc["components"]["schemas"].get(n).is_some())
            .ok_or_else(|| Rejection::Definition(format!("{}: no error schema", op.name())))?;
        Ok(
            json!({"content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}}}),
        )
    }

    /// `Ok` when `reply` conforms to the definition of `op`, else the first reason it does
    /// not (status, headers, content type, schema, then undeclared properties).
    pub fn check(&self, op: Operation, reply: &Reply) -> Result<(), Rejection> {
        let doc = self.doc(op)?;
        let response = self.response(op, reply.status)?;
        check_headers(doc, &response, reply)?;
        let content = response
            .get("content")
            .and_then(Value::as_object)
            .filter(|c| !c.is_empty());
        let Some(content) = content else {
            return match reply.text.len() {
                0 => Ok(()),
                n => Err(Rejection::UnexpectedBody(n)),
            };
        };
        let media = reply
            .content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let schema = content
            .get(&media)
            .map(|m| &m["schema"])
            .ok_or_else(|| Rejection::UndocumentedMediaType(media.clone()))?;
        let instance = if media == "application/json" || media.ends_with("+json") {
            reply.json.clone().ok_or(Rejection::NotJson)?
        } else {
            Value::String(reply.text.clone())
        };
        validate(doc, schema, &instance)?.map_err(Rejection::Schema)?;

        let mut issues = closed::issues(doc, schema, &instance, "", &|s: &Value, i: &Value| {
            matches!(validate(doc, s, i), Ok(Ok(())))
        });
        issues.sort();
        issues.dedup();
        issues.retain(|issue| {
            !ALLOWED_EXTRAS
                .iter()
                .any(|(o, field, _)| *o == op && *issue == Issue::Undeclared(format!("/{field}")))
        });
        let mixed: Vec<String> = issues
            .iter()
            .filter_map(|i| match i {
                Issue::Mixed(at) => Some(at.clone()),
                Issue::Undeclared(_) => None,
            })
            .collect();
        if !mixed.is_empty() {
            return Err(Rejection::MixedBranches(mixed));
        }
        if !issues.is_empty() {
            let undeclared = issues
                .into_iter()
                .map(|i| match i {
                    Issue::Undeclared(at) | Issue::Mixed(at) => at,
                })
                .collect();
            return Err(Rejection::Undeclared(undeclared));
        }
        Ok(())
    }
}

/// Checks each documented header the reply carries against its schema.
fn check_headers(doc: &Value, response: &Value, reply: &Reply) -> Result<(), Rejection> {
    let Some(headers) = response.get("headers").and_then(Value::as_object) else {
        return Ok(());
    };
    for (name, header) in headers {
        let Some(value) = reply.headers.get(name.as_str()) else {
            continue;
        };
        let header = deref(doc, header);
        let mut schema = closed::resolve(doc, &header["schema"]);
        // A header schema written as an object that declares the header itself.
        if schema["type"] == "object"
            && let Some(inner) = schema["properties"].get(name.as_str())
        {
            schema = closed::resolve(doc, inner);
        }
        let text = value.to_str().unwrap_or_default();
        let numeric = matches!(schema["type"].as_str(), Some("integer" | "number"));
        let instance = match serde_json::from_str::<Value>(text) {
            Ok(number @ Value::Number(_)) if numeric => number,
            _ => Value::String(text.to_owned()),
        };
        validate(doc, schema, &instance)?.map_err(|violations| Rejection::Header {
            name: name.clone(),
            violations,
        })?;
    }
    Ok(())
}

/// Validates `instance` against `schema`, which may refer to `#/components/...` of `doc`.
/// The outer error is a schema that does not compile.
fn validate(
    doc: &Value,
    schema: &Value,
    instance: &Value,
) -> Result<Result<(), Vec<Violation>>, Rejection> {
    let root = json!({
        "$ref": "#/definitions/checked",
        "definitions": { "checked": schema },
        "components": doc["components"],
    });
    let validator = jsonschema::draft4::options()
        .should_validate_formats(true)
        .build(&root)
        .map_err(|e| Rejection::Definition(format!("the schema does not compile: {e}")))?;
    let violations: Vec<Violation> = validator
        .iter_errors(instance)
        .map(|e| Violation {
            at: e.instance_path().as_str().to_owned(),
            keyword: e.kind().keyword().to_owned(),
            message: e.to_string(),
        })
        .collect();
    Ok(if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    })
}

fn deref(doc: &Value, response: &Value) -> Value {
    closed::resolve(doc, response).clone()
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
