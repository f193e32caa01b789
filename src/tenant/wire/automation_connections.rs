//! Wire types of the `automation-connections` API (`automation-connections.json`): a
//! connection of Qlik Automate with its parameters, the `PUT` that sets parameter values,
//! and the answer of `actions/check`. No I/O.
//!
//! # Guarantees
//! Parameter values are [`SecretString`]s both ways: a connection's parameters hold its
//! credentials (API keys, passwords), and the GET answer includes their `value`s.

use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use serde::ser::{Serialize, SerializeStruct, Serializer};
use serde::{Deserialize, Deserializer};

use super::lenient;

/// An automation connection (`AutomationConnectionDetailObject`).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutomationConnection {
    /// Its id.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// The automation connector it is a connection of.
    #[serde(default)]
    pub connector_id: Option<String>,
    /// Its owner.
    #[serde(default)]
    pub owner_id: Option<String>,
    /// Its space.
    #[serde(default)]
    pub space_id: Option<String>,
    /// "When true, the automation connection is connected."
    #[serde(default, deserialize_with = "lenient::optional_flag")]
    pub is_connected: Option<bool>,
    /// The OAuth account it is connected with, for OAuth connectors.
    #[serde(default)]
    pub oauth_account_name: Option<String>,
    /// Its parameters (credentials among them).
    #[serde(default, deserialize_with = "params")]
    pub params: Vec<AutomationConnectionParam>,
    /// When it was created.
    #[serde(default, deserialize_with = "lenient::timestamp")]
    pub created_at: Option<Timestamp>,
    /// When it was last updated.
    #[serde(default, deserialize_with = "lenient::timestamp")]
    pub updated_at: Option<Timestamp>,
}

impl AutomationConnection {
    /// The parameter with `name` (e.g. `api_key`), whose [`AutomationConnectionParam::id`]
    /// is what [`AutomationConnectionParamValue`] sets.
    pub fn param(&self, name: &str) -> Option<&AutomationConnectionParam> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// One parameter of an automation connection (`AutomationConnectionParamObject`).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutomationConnectionParam {
    /// Its id: what a `PUT` names it by.
    pub id: String,
    /// Its name, e.g. `region`.
    #[serde(default)]
    pub name: String,
    /// Its field type, e.g. `enum`, `string`.
    #[serde(default)]
    pub field_type: Option<String>,
    /// Whether it may be left empty.
    #[serde(default, deserialize_with = "lenient::flag")]
    pub is_optional: bool,
    /// Its current value, which may be a credential.
    #[serde(default, deserialize_with = "secret_text")]
    pub value: Option<SecretString>,
}

/// Parameters that lack an `id` are dropped rather than failing the connection: they
/// cannot be named in a `PUT` anyway.
fn params<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<AutomationConnectionParam>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Array(items) => items
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect(),
        _ => Vec::new(),
    })
}

fn secret_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    Ok(lenient::text(d)?.map(SecretString::from))
}

/// A value to set on one parameter (`AutomationConnectionParamPutObject`, keyed by `id`).
#[derive(Clone, Debug)]
pub struct AutomationConnectionParamValue {
    /// The parameter's id ([`AutomationConnectionParam::id`]).
    pub id: String,
    /// The value.
    pub value: SecretString,
}

impl Serialize for AutomationConnectionParamValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut param = serializer.serialize_struct("AutomationConnectionParamPutObject", 2)?;
        param.serialize_field("id", &self.id)?;
        param.serialize_field("value", self.value.expose_secret())?;
        param.end()
    }
}

/// The body of `PUT /api/v1/automation-connections/{id}` (`AutomationConnectionPutRequestObject`).
/// Neither field is required ("updates the specified properties"), so `name` is left out
/// and the connection keeps its name.
#[derive(Debug, serde::Serialize)]
pub(crate) struct AutomationConnectionPut<'a> {
    pub(crate) params: &'a [AutomationConnectionParamValue],
}

/// The answer of `actions/check` (`AutomationConnectionCheckObject`), which defines the
/// status twice, as `connected` and `is_connected`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AutomationConnectionCheck {
    /// Whether the connection is connected: `connected`, else `is_connected`, else `false`.
    pub connected: bool,
}

impl<'de> Deserialize<'de> for AutomationConnectionCheck {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            #[serde(default, deserialize_with = "lenient::optional_flag")]
            connected: Option<bool>,
            #[serde(default, deserialize_with = "lenient::optional_flag")]
            is_connected: Option<bool>,
        }
        let wire = Wire::deserialize(d)?;
        Ok(AutomationConnectionCheck {
            connected: wire.connected.or(wire.is_connected).unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `AutomationConnectionDetailObject` from the definition's `example` fields, with a
    /// credential parameter.
    fn example() -> serde_json::Value {
        json!({
            "id": "e0e720d0-4947-11ec-a1d2-9559fa35801d",
            "name": "connection",
            "error": {},
            "params": [
                {
                    "id": "39a90780-8874-11ee-b16c-89512345678", "meta": [], "name": "region",
                    "order": 1, "value": "eu", "fieldType": "enum", "isOptional": "false",
                    "paramOptions": [{"id": "39a90780-8874-11ee-b16c-89512345678", "value": "eu"}]
                },
                {"id": "p2", "name": "api_key", "value": "param-secret-value", "fieldType": "string"},
                {"name": "no id"}
            ],
            "ownerId": "sWYAHxZxhtcmBT7Ptc5xJ5I6N7HxwnEy",
            "spaceId": "5f0f78b239ff4f0001234567",
            "createdAt": "2021-12-23T12:28:21.000000Z",
            "updatedAt": "2021-12-23T12:28:21.000000Z",
            "connectorId": "e0e720d0-4947-11ec-a1d2-9559fa35801d",
            "isConnected": true,
            "oauthAccountName": "oauth"
        })
    }

    #[test]
    fn the_definitions_example_connection_decodes_with_its_values_redacted() {
        let c: AutomationConnection =
            serde_json::from_value(example()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.name, "connection");
        assert_eq!(c.is_connected, Some(true));
        assert_eq!(c.params.len(), 2, "the parameter without an id is dropped");
        assert_eq!(c.param("api_key").map(|p| p.id.as_str()), Some("p2"));
        assert!(!c.params[0].is_optional);
        assert_eq!(
            c.param("api_key")
                .and_then(|p| p.value.as_ref())
                .map(|v| v.expose_secret()),
            Some("param-secret-value")
        );
        assert!(c.created_at.is_some());
        let shown = format!("{c:?}");
        assert!(!shown.contains("param-secret-value"), "{shown}");
    }

    #[test]
    fn the_put_body_names_parameters_by_id_and_leaves_the_name_alone() {
        let params = [AutomationConnectionParamValue {
            id: "p2".into(),
            value: SecretString::from("new-key"),
        }];
        let body =
            serde_json::to_value(AutomationConnectionPut { params: &params }).unwrap_or_default();
        assert_eq!(body, json!({"params": [{"id": "p2", "value": "new-key"}]}));
        let shown = format!("{params:?}");
        assert!(!shown.contains("new-key"), "{shown}");
    }

    #[test]
    fn a_check_reads_connected_or_is_connected() {
        let cases = [
            (json!({"connected": true}), true),
            (json!({"is_connected": true}), true),
            (json!({"connected": false, "is_connected": true}), false),
            (json!({}), false),
        ];
        for (body, want) in cases {
            let check: AutomationConnectionCheck =
                serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(check.connected, want, "{body}");
        }
    }

    #[test]
    fn the_wire_names_are_the_definitions() {
        let Some(def) = lenient::definition("automation-connections.json") else {
            return;
        };
        let detail = lenient::schema_properties(&def, "AutomationConnectionDetailObject");
        for name in lenient::field_names(&example()) {
            assert!(
                detail.contains(&name),
                "AutomationConnectionDetailObject has no {name}"
            );
        }
        let param = lenient::schema_properties(&def, "AutomationConnectionParamObject");
        for name in lenient::field_names(&example()["params"][0]) {
            assert!(
                param.contains(&name),
                "AutomationConnectionParamObject has no {name}"
            );
        }
        let params = [AutomationConnectionParamValue {
            id: "p".into(),
            value: SecretString::from("v"),
        }];
        let body =
            serde_json::to_value(AutomationConnectionPut { params: &params }).unwrap_or_default();
        let put = lenient::schema_properties(&def, "AutomationConnectionPutRequestObject");
        assert!(lenient::field_names(&body).is_subset(&put));
        let put_param = lenient::schema_properties(&def, "AutomationConnectionParamPutObject");
        assert_eq!(lenient::field_names(&body["params"][0]), put_param);
        // `name` is optional in the PUT body (no `required`), so it may be left out.
        assert!(
            def["components"]["schemas"]["AutomationConnectionPutRequestObject"]["required"]
                .is_null()
        );
        let check = lenient::schema_properties(&def, "AutomationConnectionCheckObject");
        assert!(check.contains("connected") && check.contains("is_connected"));
    }
}
