//! Qlik's QRS definition (`../shared/qlik-api/qrs/Repository.json`, Swagger 2.0, read in
//! place, never copied) as JSON Schema, and the check that an answer conforms: a
//! [`Rejection`] says why one does not. No I/O beyond reading the definition.
//!
//! The Swagger 2 mode of the cloud checker (`emulator_conformance/spec.rs`, which reads
//! OpenAPI 3): schemas are under `responses.<status>.schema` and `#/definitions/`, the
//! media type is JSON (the definition has no `produces`; QRS answers JSON), and the same
//! closed-world rule applies (`emulator_conformance/closed.rs`, shared): a body may carry
//! only the properties its definition declares, at any depth.
//!
//! Two facts of QRS that its definition does not encode are translated, each narrowly:
//! - `privileges` is `null` unless the request asks `?privileges=true` (Qlik's own examples
//!   of data connections show `"privileges": null`), yet is declared an array: a property
//!   named `privileges` also accepts `null`.
//! - QRS writes an unset optional string as `""` (Qlik's examples: `"engineObjectId": ""`,
//!   virtual proxies created with `"sessionCookieDomain": ""`), which a declared
//!   `format: uri` or `minLength: 1` would refuse: such a string property, when its object
//!   does not `require` it, also accepts `""`. Required strings, and other formats (dates,
//!   GUIDs), stay strict.

use std::path::{Path, PathBuf};

use qlik_csp_operator::emulator::qrs::QrsOperation;
use serde_json::{Value, json};

use super::closed::{self, Issue};

/// Why an answer does not conform to its operation's definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The operation does not document this status.
    UndocumentedStatus(u16),
    /// Not `application/json` (the media type, lowercase).
    UndocumentedMediaType(String),
    /// The body does not parse as JSON.
    NotJson,
    /// Schema violations as `(instance path, keyword)`.
    Schema(Vec<(String, String)>),
    /// Properties the definition does not declare, as JSON pointers.
    Undeclared(Vec<String>),
    /// The definition cannot be used (missing operation, schema that does not compile).
    Definition(String),
}

/// The variable `cargo xtask test --without-qlik-definitions` sets to `1`.
pub const WITHOUT_DEFINITIONS_VAR: &str = "QLIKOPS_WITHOUT_QLIK_DEFINITIONS";

/// `Repository.json`. When it is missing the test fails, unless the developer opted out
/// ([`WITHOUT_DEFINITIONS_VAR`]`=1`): then `None`, and the caller skips.
pub fn definition_path() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/qlik-api/qrs/Repository.json");
    if path.is_file() {
        return Some(path);
    }
    if std::env::var(WITHOUT_DEFINITIONS_VAR).as_deref() == Ok("1") {
        eprintln!(
            "skipped: {} not found and {WITHOUT_DEFINITIONS_VAR}=1",
            path.display()
        );
        return None;
    }
    panic!(
        "{} not found: this test checks the emulated QRS site against Qlik's definition, \
         which must be there. Provide it, or run `cargo xtask test --without-qlik-definitions` \
         to skip the tests that need it knowingly",
        path.display()
    );
}

/// The definition, translated (see the module doc).
pub struct Repository {
    doc: Value,
    raw: Value,
}

impl Repository {
    pub fn load(path: &Path) -> Repository {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()));
        let doc: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        Repository::from_document(doc)
    }

    pub fn from_document(raw: Value) -> Repository {
        let mut doc = raw.clone();
        translate(&mut doc);
        Repository { doc, raw }
    }

    /// The definition as published (untranslated), e.g. to compare property limits.
    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// The operation object of `op` (`paths[/template][method]`), if the definition has it.
    pub fn operation(&self, op: QrsOperation) -> Option<&Value> {
        let found = &self.raw["paths"][op.path_template()][op.method().to_ascii_lowercase()];
        found.is_object().then_some(found)
    }

    /// `Ok` when an answer of `op` with `status`, `content_type` and body `text` conforms.
    pub fn check(
        &self,
        op: QrsOperation,
        status: u16,
        content_type: &str,
        text: &str,
    ) -> Result<(), Rejection> {
        let operation = &self.doc["paths"][op.path_template()][op.method().to_ascii_lowercase()];
        if !operation.is_object() {
            return Err(Rejection::Definition(format!(
                "{} {} is not in the definition",
                op.method(),
                op.path_template()
            )));
        }
        let response = operation["responses"]
            .get(status.to_string())
            .ok_or(Rejection::UndocumentedStatus(status))?;
        let Some(schema) = response.get("schema") else {
            return if text.is_empty() {
                Ok(())
            } else {
                Err(Rejection::Definition(
                    "a body where none is documented".into(),
                ))
            };
        };
        let media = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if media != "application/json" {
            return Err(Rejection::UndocumentedMediaType(media));
        }
        let instance: Value = serde_json::from_str(text).map_err(|_| Rejection::NotJson)?;
        self.validate(schema, &instance)?
            .map_err(Rejection::Schema)?;
        let mut issues =
            closed::issues(&self.doc, schema, &instance, "", &|s: &Value, i: &Value| {
                matches!(self.validate(s, i), Ok(Ok(())))
            });
        issues.sort();
        issues.dedup();
        if issues.is_empty() {
            return Ok(());
        }
        Err(Rejection::Undeclared(
            issues
                .into_iter()
                .map(|i| match i {
                    Issue::Undeclared(at) | Issue::Mixed(at) => at,
                })
                .collect(),
        ))
    }

    fn validate(
        &self,
        schema: &Value,
        instance: &Value,
    ) -> Result<Result<(), Vec<(String, String)>>, Rejection> {
        let root = json!({ "allOf": [schema], "definitions": self.doc["definitions"] });
        let validator = jsonschema::draft4::options()
            .should_validate_formats(true)
            .build(&root)
            .map_err(|e| Rejection::Definition(format!("the schema does not compile: {e}")))?;
        let violations: Vec<(String, String)> = validator
            .iter_errors(instance)
            .map(|e| {
                (
                    e.instance_path().as_str().to_owned(),
                    e.kind().keyword().to_owned(),
                )
            })
            .collect();
        Ok(if violations.is_empty() {
            Ok(())
        } else {
            Err(violations)
        })
    }
}

/// Applies the translations of the module doc to every object schema in `value`.
fn translate(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let required: Vec<String> = map
                .get("required")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(|n| n.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if let Some(Value::Object(properties)) = map.get_mut("properties") {
                for (name, property) in properties.iter_mut() {
                    if name == "privileges" && property["type"] == "array" {
                        property["type"] = json!(["array", "null"]);
                    }
                    let strict_string = property["type"] == "string"
                        && (property["format"] == "uri"
                            || property["minLength"].as_u64().is_some_and(|m| m > 0));
                    if strict_string && !required.contains(name) {
                        let original = property.take();
                        *property = json!({
                            "anyOf": [{"type": "string", "maxLength": 0}, original],
                        });
                    }
                }
            }
            map.values_mut().for_each(translate);
        }
        Value::Array(items) => items.iter_mut().for_each(translate),
        _ => {}
    }
}
