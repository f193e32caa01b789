//! The QRS entities the client reads and writes, as the QRS definition
//! (`qlik-api/qrs/Repository.json`) spells them. No I/O.
//!
//! A virtual proxy or data connection is written back whole (`PUT`), so each keeps the
//! whole JSON object as read: every field an administrator set goes back unchanged,
//! including fields this version of the operator does not know, and `modifiedDate` goes
//! back as read, which is how the site detects a concurrent change. The typed accessors
//! read and set only the fields the operator owns.
//!
//! # Guarantees
//! No `Debug` output shows a field that may hold a secret (a data connection's
//! `password` and `connectionstring`, a virtual proxy's `oidcClientSecret`): `Debug`
//! shows the id, name or prefix and `modifiedDate` only.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// `GET /qrs/about`: what the site runs. Only `buildVersion` is required; other fields,
/// and any the definition does not name, are read leniently.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct About {
    /// The repository's build, e.g. `38.22.0`.
    pub build_version: String,
    /// When it was built.
    #[serde(default)]
    pub build_date: Option<String>,
    /// The database behind the repository, e.g. `QSR`.
    #[serde(default)]
    pub database_provider: Option<String>,
    /// `0` undefined, `1` central node, `2` rim node.
    #[serde(default)]
    pub node_type: Option<i64>,
    /// Deprecated by Qlik.
    #[serde(default)]
    pub shared_persistence: Option<bool>,
    /// Whether the site still needs bootstrapping.
    #[serde(default)]
    pub requires_bootstrap: Option<bool>,
    /// Whether the site is a single node only.
    #[serde(default)]
    pub single_node_only: Option<bool>,
}

/// Why a JSON object read from the site is not a usable entity. Names the field, never a
/// value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the {kind} has no {field}")]
pub struct InvalidEntity {
    /// `virtual proxy` or `data connection`.
    pub kind: &'static str,
    /// The missing field, e.g. `modifiedDate`.
    pub field: &'static str,
}

/// A non-empty string field of `fields`.
fn text<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    fields
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Checks the fields every entity needs: `id` and `modifiedDate`.
fn require_id_and_date(
    kind: &'static str,
    fields: &Map<String, Value>,
) -> Result<(), InvalidEntity> {
    for field in ["id", "modifiedDate"] {
        if text(fields, field).is_none() {
            return Err(InvalidEntity { kind, field });
        }
    }
    Ok(())
}

/// Defines an entity type: `TryFrom` the JSON object (checking `id` and `modifiedDate`),
/// serde both ways as that object, and the accessors all entities have.
macro_rules! entity {
    ($name:ident, $kind:literal) => {
        impl TryFrom<Map<String, Value>> for $name {
            type Error = InvalidEntity;

            fn try_from(fields: Map<String, Value>) -> Result<Self, InvalidEntity> {
                require_id_and_date($kind, &fields)?;
                Ok($name { fields })
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let fields = Map::deserialize(d)?;
                $name::try_from(fields).map_err(serde::de::Error::custom)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.fields.serialize(s)
            }
        }

        impl $name {
            /// The entity's id (a UUID).
            pub fn id(&self) -> &str {
                text(&self.fields, "id").unwrap_or_default()
            }

            /// `modifiedDate` as read: sent back unchanged in a `PUT`, so that the site can
            /// refuse it if someone changed the entity in between.
            pub fn modified_date(&self) -> &str {
                text(&self.fields, "modifiedDate").unwrap_or_default()
            }

            /// Every field, as read (and as changed through the setters).
            pub fn fields(&self) -> &Map<String, Value> {
                &self.fields
            }

            /// Every field, as read (and as changed through the setters).
            pub fn into_fields(self) -> Map<String, Value> {
                self.fields
            }
        }
    };
}

/// A virtual proxy (`VirtualProxyConfig`), every field as read.
#[derive(Clone, PartialEq)]
pub struct VirtualProxy {
    fields: Map<String, Value>,
}

entity!(VirtualProxy, "virtual proxy");

impl VirtualProxy {
    /// The prefix in the proxy's URLs (`""` for the default virtual proxy).
    pub fn prefix(&self) -> &str {
        self.fields
            .get("prefix")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The headers the proxy adds to its responses, one `Name: value` per line (edit one
    /// line with [`super::with_header`]); `""` when unset.
    pub fn additional_response_headers(&self) -> &str {
        self.fields
            .get("additionalResponseHeaders")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// Replaces `additionalResponseHeaders` (at most
    /// [`super::ADDITIONAL_RESPONSE_HEADERS_MAX`] characters; the site refuses more).
    pub fn set_additional_response_headers(&mut self, headers: String) {
        self.fields.insert(
            "additionalResponseHeaders".to_owned(),
            Value::String(headers),
        );
    }

    /// The host allow list (`websocketCrossOriginWhiteList`): the hosts whose web pages
    /// may open sessions through the proxy. Entries that are not strings are skipped.
    pub fn websocket_cross_origin_white_list(&self) -> Vec<&str> {
        self.fields
            .get("websocketCrossOriginWhiteList")
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// Replaces the host allow list.
    pub fn set_websocket_cross_origin_white_list(&mut self, hosts: Vec<String>) {
        self.fields.insert(
            "websocketCrossOriginWhiteList".to_owned(),
            Value::Array(hosts.into_iter().map(Value::String).collect()),
        );
    }
}

impl fmt::Debug for VirtualProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtualProxy")
            .field("id", &self.id())
            .field("prefix", &self.prefix())
            .field("modified_date", &self.modified_date())
            .finish_non_exhaustive()
    }
}

/// A data connection (`DataConnection`), every field as read. The site may answer its
/// `password` (encrypted, or not at all); it is never shown.
#[derive(Clone, PartialEq)]
pub struct QrsDataConnection {
    fields: Map<String, Value>,
}

entity!(QrsDataConnection, "data connection");

impl QrsDataConnection {
    /// The connection's name (unique on the site, compared case-insensitively).
    pub fn name(&self) -> &str {
        self.fields
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The user the connection logs on as, if set.
    pub fn username(&self) -> Option<&str> {
        self.fields.get("username").and_then(Value::as_str)
    }

    /// The entity to send back with `username` and `password` replaced by those given.
    /// A `username` not given stays as read; a `password` not given is left out: the site
    /// answers it masked (`""`), and sending that back would set the password to it,
    /// while a `PUT` without `password` keeps the stored one.
    pub(crate) fn with_credentials(
        &self,
        username: Option<&str>,
        password: Option<&str>,
    ) -> Map<String, Value> {
        let mut fields = self.fields.clone();
        if let Some(username) = username {
            fields.insert("username".to_owned(), Value::String(username.to_owned()));
        }
        match password {
            Some(password) => {
                fields.insert("password".to_owned(), Value::String(password.to_owned()));
            }
            None => {
                fields.remove("password");
            }
        }
        fields
    }
}

impl fmt::Debug for QrsDataConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QrsDataConnection")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("username", &self.username())
            .field("modified_date", &self.modified_date())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn about_needs_only_the_build_version() {
        let about: About = serde_json::from_value(json!({
            "buildVersion": "38.22.0", "nodeType": 1, "somethingNew": [1], "buildDate": null
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(about.build_version, "38.22.0");
        assert_eq!(about.node_type, Some(1));
        assert!(serde_json::from_value::<About>(json!({"buildDate": "x"})).is_err());
    }

    #[test]
    fn an_entity_without_id_or_modified_date_is_refused_by_name() {
        let cases = [
            (json!({"modifiedDate": "2024-01-01T00:00:00.000Z"}), "id"),
            (json!({"id": "", "modifiedDate": "x"}), "id"),
            (json!({"id": "a"}), "modifiedDate"),
            (json!({"id": "a", "modifiedDate": 3}), "modifiedDate"),
        ];
        for (value, field) in cases {
            let err = VirtualProxy::try_from(object(value.clone())).err();
            assert_eq!(err.map(|e| e.field), Some(field), "{value}");
            let err = QrsDataConnection::try_from(object(value.clone())).err();
            assert_eq!(
                err.map(|e| e.to_string()),
                Some(format!("the data connection has no {field}"))
            );
        }
    }

    #[test]
    fn a_virtual_proxy_round_trips_every_field_and_changes_only_what_is_set() {
        let read = json!({
            "id": "6c3a9d1e-0000-4000-8000-000000000001",
            "modifiedDate": "2024-05-01T10:00:00.123Z",
            "prefix": "embed",
            "additionalResponseHeaders": "X-A: 1",
            "websocketCrossOriginWhiteList": ["a.example", 7, "b.example"],
            "oidcClientSecret": "oidc-secret-value",
            "somethingNew": {"nested": [1, 2]},
        });
        let mut proxy: VirtualProxy =
            serde_json::from_value(read.clone()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(proxy.prefix(), "embed");
        assert_eq!(
            proxy.websocket_cross_origin_white_list(),
            ["a.example", "b.example"]
        );
        assert_eq!(serde_json::to_value(&proxy).ok(), Some(read.clone()));

        proxy.set_additional_response_headers("X-A: 1\r\nX-B: 2".to_owned());
        proxy.set_websocket_cross_origin_white_list(vec!["c.example".to_owned()]);
        let mut want = read;
        want["additionalResponseHeaders"] = json!("X-A: 1\r\nX-B: 2");
        want["websocketCrossOriginWhiteList"] = json!(["c.example"]);
        assert_eq!(serde_json::to_value(&proxy).ok(), Some(want));
        assert_eq!(proxy.modified_date(), "2024-05-01T10:00:00.123Z");
        assert!(!format!("{proxy:?}").contains("oidc-secret-value"));
    }

    #[test]
    fn absent_fields_read_as_empty() {
        let proxy = VirtualProxy::try_from(object(json!({"id": "a", "modifiedDate": "d"})))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(proxy.prefix(), "");
        assert_eq!(proxy.additional_response_headers(), "");
        assert!(proxy.websocket_cross_origin_white_list().is_empty());
    }

    #[test]
    fn credentials_replace_only_the_fields_given_and_debug_hides_secrets() {
        let connection = QrsDataConnection::try_from(object(json!({
            "id": "a", "modifiedDate": "d", "name": "Sales DB", "username": "old",
            "password": "old-password", "connectionstring": "Server=x;Pwd=conn-secret",
        })))
        .unwrap_or_else(|e| panic!("{e}"));
        let shown = format!("{connection:?}");
        assert!(
            !shown.contains("old-password") && !shown.contains("conn-secret"),
            "{shown}"
        );
        assert!(shown.contains("Sales DB"), "{shown}");

        let fields = connection.with_credentials(None, Some("new-password"));
        assert_eq!(fields["username"], json!("old"));
        assert_eq!(fields["password"], json!("new-password"));
        assert_eq!(fields["modifiedDate"], json!("d"));
        // The masked password as read is not sent back: that would overwrite the real one.
        let fields = connection.with_credentials(Some("new"), None);
        assert_eq!(fields["username"], json!("new"));
        assert_eq!(fields.get("password"), None);
        assert_eq!(
            fields["connectionstring"],
            json!("Server=x;Pwd=conn-secret")
        );
    }
}
