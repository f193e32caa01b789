//! Lenient field decoders for the APIs whose definitions and examples disagree on a
//! field's type (a list given as a string, a number as a string, an object as JSON text):
//! a value of an unexpected shape decodes to the field's empty value instead of failing
//! the whole answer. Values are never quoted in errors. No I/O.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// An RFC 3339 timestamp; `None` when absent, null or not a timestamp.
pub(crate) fn timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A string, or a number or boolean as text; `None` otherwise.
pub(crate) fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    })
}

/// A string; empty for `null` or anything else (`PaginationLink.href` is nullable).
pub(crate) fn string_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        _ => String::new(),
    })
}

/// A boolean, or `"true"`/`"false"`; `false` otherwise.
pub(crate) fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Bool(b) => b,
        Value::String(s) => s.trim().eq_ignore_ascii_case("true"),
        _ => false,
    })
}

/// A boolean, or `"true"`/`"false"`; `None` when absent or of another shape.
pub(crate) fn optional_flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Bool(b) => Some(b),
        Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    })
}

/// A number, or a number written as a string; `None` otherwise.
pub(crate) fn number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// The strings of an array (other items skipped); empty for anything but an array.
pub(crate) fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    })
}

/// The keys of an object, or of an object written as JSON text (the definitions' examples
/// do that); the values are dropped unread, since they may be credentials.
pub(crate) fn key_names<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<String>, D::Error> {
    let object = match Value::deserialize(d)? {
        Value::Object(map) => map,
        Value::String(s) => match serde_json::from_str::<Value>(&s) {
            Ok(Value::Object(map)) => map,
            _ => return Ok(BTreeSet::new()),
        },
        _ => return Ok(BTreeSet::new()),
    };
    Ok(object.into_iter().map(|(k, _)| k).collect())
}

/// The definitions of `file` (under `../shared/qlik-api/cloud/`), read in place. When they
/// are missing the test fails, unless `QLIKOPS_WITHOUT_QLIK_DEFINITIONS=1` (as
/// `cargo xtask test --without-qlik-definitions` sets): then `None`, and the caller skips.
#[cfg(test)]
pub(crate) fn definition(file: &str) -> Option<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/qlik-api/cloud")
        .join(file);
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"))),
        Err(_) if std::env::var("QLIKOPS_WITHOUT_QLIK_DEFINITIONS").as_deref() == Ok("1") => {
            eprintln!("skipped: {} not found", path.display());
            None
        }
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

/// The property names of the component schema `name` in a definition.
#[cfg(test)]
pub(crate) fn schema_properties(definition: &Value, name: &str) -> BTreeSet<String> {
    definition["components"]["schemas"][name]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no schema {name}"))
        .keys()
        .cloned()
        .collect()
}

/// The JSON field names `value` has (the wire names a type decodes or encodes).
#[cfg(test)]
pub(crate) fn field_names(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Deserialize)]
    struct Sample {
        #[serde(default, deserialize_with = "timestamp")]
        at: Option<Timestamp>,
        #[serde(default, deserialize_with = "text")]
        code: Option<String>,
        #[serde(default, deserialize_with = "flag")]
        on: bool,
        #[serde(default, deserialize_with = "number")]
        port: Option<f64>,
        #[serde(default, deserialize_with = "strings")]
        list: Vec<String>,
        #[serde(default, deserialize_with = "key_names")]
        keys: BTreeSet<String>,
    }

    #[test]
    fn values_of_the_documented_or_the_example_shape_decode() {
        let s: Sample = serde_json::from_value(json!({
            "at": "2021-12-23T12:28:21.000000Z", "code": 250, "on": "true", "port": "587",
            "list": "[update, delete, read]", "keys": "{\"a\": \"x\", \"b\": 1}"
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(s.at.is_some());
        assert_eq!(s.code.as_deref(), Some("250"));
        assert!(s.on);
        assert_eq!(s.port, Some(587.0));
        assert!(s.list.is_empty());
        assert_eq!(s.keys, BTreeSet::from(["a".to_owned(), "b".to_owned()]));
    }

    #[test]
    fn values_of_another_shape_decode_to_nothing_rather_than_failing() {
        let s: Sample = serde_json::from_value(json!({
            "at": "yesterday", "code": {"x": 1}, "on": 1, "port": null, "list": [1, "a"],
            "keys": [1]
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((s.at, s.code, s.on, s.port), (None, None, false, None));
        assert_eq!(s.list, ["a"]);
        assert!(s.keys.is_empty());
        let s: Sample = serde_json::from_value(json!({})).unwrap_or_else(|e| panic!("{e}"));
        assert!(s.list.is_empty() && !s.on);
    }
}
