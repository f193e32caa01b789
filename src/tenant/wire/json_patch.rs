//! JSON Patch bodies (RFC 6902) as the `data-connections` (`PatchRequest`) and
//! `transports` (`emailConfigPatch`) APIs take them, for values that may be credentials.
//! No I/O.
//!
//! # Guarantees
//! A secret value is held as a borrowed [`SecretString`]: `Debug` shows `[REDACTED]` in its
//! place, and only serializing the body (for the request) exposes it. [`JsonPatch::secrets`]
//! names the values the client must scrub from the tenant's error answers.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::ser::{Serialize, SerializeStruct, Serializer};

/// One operation's value.
#[derive(Clone, Copy)]
pub(crate) enum PatchValue<'a> {
    /// A value that may be shown (a user name).
    Plain(&'a str),
    /// A credential.
    Secret(&'a SecretString),
}

impl fmt::Debug for PatchValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatchValue::Plain(v) => fmt::Debug::fmt(v, f),
            PatchValue::Secret(_) => f.write_str("[REDACTED]"),
        }
    }
}

/// One `replace` operation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PatchOp<'a> {
    /// The JSON Pointer of the field, e.g. `/qPassword`.
    pub(crate) path: &'static str,
    /// The new value.
    pub(crate) value: PatchValue<'a>,
}

impl Serialize for PatchOp<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut op = serializer.serialize_struct("PatchOp", 3)?;
        op.serialize_field("op", "replace")?;
        op.serialize_field("path", self.path)?;
        match self.value {
            PatchValue::Plain(v) => op.serialize_field("value", v)?,
            PatchValue::Secret(v) => op.serialize_field("value", v.expose_secret())?,
        }
        op.end()
    }
}

/// A JSON Patch document of `replace` operations: serializes as the bare array both APIs
/// take.
#[derive(Clone, Debug, Default)]
pub(crate) struct JsonPatch<'a>(pub(crate) Vec<PatchOp<'a>>);

impl<'a> JsonPatch<'a> {
    /// Adds `replace` of `path` with a value that may be shown.
    pub(crate) fn replace(&mut self, path: &'static str, value: &'a str) {
        self.0.push(PatchOp {
            path,
            value: PatchValue::Plain(value),
        });
    }

    /// Adds `replace` of `path` with a credential.
    pub(crate) fn replace_secret(&mut self, path: &'static str, value: &'a SecretString) {
        self.0.push(PatchOp {
            path,
            value: PatchValue::Secret(value),
        });
    }

    /// Whether there is nothing to change.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The credentials in the document, to scrub from error answers.
    pub(crate) fn secrets(&self) -> impl Iterator<Item = &'a SecretString> + '_ {
        self.0.iter().filter_map(|op| match op.value {
            PatchValue::Secret(s) => Some(s),
            PatchValue::Plain(_) => None,
        })
    }
}

impl Serialize for JsonPatch<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_patch_serializes_as_an_array_of_replace_operations() {
        let password = SecretString::from("hunter2");
        let mut patch = JsonPatch::default();
        patch.replace("/username", "svc");
        patch.replace_secret("/emailPassword", &password);
        assert_eq!(
            serde_json::to_value(&patch).unwrap_or_default(),
            json!([
                {"op": "replace", "path": "/username", "value": "svc"},
                {"op": "replace", "path": "/emailPassword", "value": "hunter2"},
            ])
        );
        assert_eq!(patch.secrets().count(), 1);
    }

    #[test]
    fn a_patch_debug_output_never_contains_a_secret_value() {
        let password = SecretString::from("hunter2");
        let mut patch = JsonPatch::default();
        patch.replace("/qUsername", "svc");
        patch.replace_secret("/qPassword", &password);
        let shown = format!("{patch:?} {patch:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("svc") && shown.contains("[REDACTED]"),
            "{shown}"
        );
    }
}
