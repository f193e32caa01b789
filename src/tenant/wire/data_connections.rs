//! Wire types of the `data-connections` API (`data-connections.json`): a connection as the
//! operator needs it to push credentials into it, and the credentials pushed. No I/O.
//!
//! # Guarantees
//! Nothing secret is kept from an answer: `ConnectionGet` carries `qConnectionSecret` (the
//! definition: "only included in the response of GET /data-connections/{qID}") and, with
//! `parseConnection=true`, `connectionProperties`, whose values may be credentials. The
//! secret is reduced to whether it is set, the properties to their names.

use std::collections::BTreeSet;

use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

use super::json_patch::JsonPatch;
use super::lenient;

/// The connection property Qlik's interactive-OAuth flow sets: "Use interactive auth or
/// separated credentials" (qlik.dev) creates such connections with
/// `connectionProperties.authCode` = the code copied from the browser consent.
const INTERACTIVE_OAUTH_PROPERTY: &str = "authCode";

/// A data connection (`ConnectionGet`), as far as pushing credentials needs it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct DataConnection {
    /// The connection id (`qID`).
    #[serde(rename = "qID")]
    pub id: String,
    /// Its name (`qName`); not unique across spaces.
    #[serde(rename = "qName", default)]
    pub name: String,
    /// The provider type of its connector (`qType`), e.g. `QvOdbcConnectorPackage.exe`.
    #[serde(rename = "qType", default)]
    pub connection_type: String,
    /// The data source id (`datasourceID`), e.g. `snowflake`.
    #[serde(rename = "datasourceID", default)]
    pub datasource_id: Option<String>,
    /// The space it belongs to; `None` for a personal connection.
    #[serde(default)]
    pub space: Option<String>,
    /// The id of the user who created it (`user`).
    #[serde(rename = "user", default)]
    pub created_by: Option<String>,
    /// The credential associated with it (`qCredentialsID`).
    #[serde(rename = "qCredentialsID", default)]
    pub credentials_id: Option<String>,
    /// Whether each user brings their own credentials (`qSeparateCredentials`, "a
    /// credential-less connection"): they live in `data-credentials`, not here.
    #[serde(
        rename = "qSeparateCredentials",
        default,
        deserialize_with = "lenient::flag"
    )]
    pub separate_credentials: bool,
    /// What the caller may do with it (`privileges`: `list`, `update`, `delete`, `read`,
    /// `change_owner`, `change_space`).
    #[serde(default, deserialize_with = "lenient::strings")]
    pub privileges: Vec<String>,
    /// Whether a connection-level secret is set (`qConnectionSecret` is non-empty; the
    /// value itself is dropped while decoding).
    #[serde(
        rename = "qConnectionSecret",
        default,
        deserialize_with = "non_empty_secret"
    )]
    pub has_connection_secret: bool,
    /// The names of its `connectionProperties` (only when asked with
    /// `parseConnection=true`); the values are dropped while decoding.
    #[serde(
        rename = "connectionProperties",
        default,
        deserialize_with = "lenient::key_names"
    )]
    pub property_names: BTreeSet<String>,
    /// When it was created.
    #[serde(default, deserialize_with = "lenient::timestamp")]
    pub created: Option<Timestamp>,
    /// When it was last updated.
    #[serde(default, deserialize_with = "lenient::timestamp")]
    pub updated: Option<Timestamp>,
}

impl DataConnection {
    /// Whether the connection authenticates with interactive OAuth, whose credentials a
    /// person grants in a browser and which the operator therefore cannot push (Qlik: such
    /// connections cannot be updated with credentials).
    ///
    /// # Evidence
    /// `ConnectionGet` has no field that says so. What the definition says about OAuth:
    /// `POST` takes `authUrlOnly` ("if datasource supports OAuth", answered with
    /// `DcaasConnectionCreateAuthResponse.authUrl`, a consent page), and `PATCH` takes the
    /// header `qlik-auth-code`, "required by certain datasources when patching": updating
    /// those connections needs a fresh code from that consent page, which no operator can
    /// obtain. Per connection, the only trace is in `connectionProperties` (read with
    /// `parseConnection=true`, "in the same format as required to create and update
    /// connections"): Qlik's guide creates interactive-OAuth connections with the property
    /// `authCode`. So a connection whose properties name `authCode` counts as interactive
    /// OAuth.
    ///
    /// Only meaningful on a connection read with `TenantClient::get_data_connection`
    /// (list items have no properties).
    ///
    /// A heuristic, and it fails safe: a false positive makes a caller refuse a connection
    /// it could have updated (and say why); a false negative makes the `PATCH` fail with
    /// the tenant's 400. Neither writes anything wrong.
    pub fn uses_interactive_oauth(&self) -> bool {
        self.property_names
            .iter()
            .any(|p| p.eq_ignore_ascii_case(INTERACTIVE_OAUTH_PROPERTY))
    }

    /// Whether each user brings their own credentials ([`Self::separate_credentials`]):
    /// patching the connection's credential fields does not reach them.
    pub fn uses_separate_credentials(&self) -> bool {
        self.separate_credentials
    }

    /// Whether the caller may update it, per its `privileges`.
    pub fn can_update(&self) -> bool {
        self.privileges.iter().any(|p| p == "update")
    }
}

fn non_empty_secret<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        // Held as a secret for the instant it takes to look at its length, then zeroed.
        serde_json::Value::String(s) => !SecretString::from(s).expose_secret().is_empty(),
        _ => false,
    })
}

/// Credentials to push into a data connection. Fields left `None` are not changed.
#[derive(Clone, Debug, Default)]
pub struct DataConnectionCredentials {
    /// `qUsername`: "any logon username associated with the data connection".
    pub username: Option<String>,
    /// `qPassword`: "any logon password associated with the data connection".
    pub password: Option<SecretString>,
    /// `qConnectionSecret`: "connection specific secret (or password)". An empty value
    /// clears the secret.
    pub connection_secret: Option<SecretString>,
}

impl DataConnectionCredentials {
    /// The `PatchRequest` body: a `replace` of each field that is set.
    pub(crate) fn patch(&self) -> JsonPatch<'_> {
        let mut patch = JsonPatch::default();
        if let Some(username) = &self.username {
            patch.replace("/qUsername", username);
        }
        if let Some(password) = &self.password {
            patch.replace_secret("/qPassword", password);
        }
        if let Some(secret) = &self.connection_secret {
            patch.replace_secret("/qConnectionSecret", secret);
        }
        patch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::wire::Page;
    use serde_json::json;

    /// `ConnectionGet` built from the definition's `example` fields (and the properties
    /// object of Qlik's interactive-OAuth guide).
    fn example() -> serde_json::Value {
        json!({
            "qID": "a7eb530e-475a-4864-bc12-dacf4b081e72",
            "qri": "qri:db:snowflake://BQ1-3F_BvWfxxCDDiz9vQepqHLAcHWqacoqwLq4wxWM",
            "tags": "[\"tag1, \"tag2\"]",
            "user": "rFdHeUOiVYgPX5iTbvL0x0Cs6F62QI",
            "links": {"self": {"href": "https://mytenant.us.qlikcloud.com/..."}},
            "qName": "MyConnection",
            "qType": "QvOdbcConnectorPackage.exe",
            "space": "6226583d53a69876774d4f96",
            "qLogOn": 1,
            "tenant": "xqFQ0k34vSR0d9G7J-vZtHZQkiYrCqc8",
            "created": "2022-04-08T10:00:28.287Z",
            "updated": "2022-04-09T10:00:28.287Z",
            "privileges": "[update, delete, read]",
            "datasourceID": "sfdc",
            "qArchitecture": 0,
            "qCredentialsID": "a4e00184-8743-4a44-a1a8-07bba573afea",
            "qEngineObjectID": "a7eb530e-475a-4864-bc12-dacf4b081e72",
            "qConnectStatement": "CUSTOM CONNECT TO \\\"provider=QvOdbcConnectorPackage.exe;driver=snowflake;server=...\\\"",
            "qConnectionSecret": "Connection_Specific_Secret",
            "connectionProperties": "{\"property1\": \"value\", \"property2\": \"value\"}",
            "qSeparateCredentials": true
        })
    }

    fn decode(value: serde_json::Value) -> DataConnection {
        serde_json::from_value(value).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_definitions_example_connection_decodes_without_keeping_its_secret() {
        let c = decode(example());
        assert_eq!(c.id, "a7eb530e-475a-4864-bc12-dacf4b081e72");
        assert_eq!(c.name, "MyConnection");
        assert_eq!(c.connection_type, "QvOdbcConnectorPackage.exe");
        assert_eq!(c.datasource_id.as_deref(), Some("sfdc"));
        assert!(c.separate_credentials && c.uses_separate_credentials());
        assert!(c.has_connection_secret);
        // The example writes the list as a string: no privileges rather than a failure.
        assert!(c.privileges.is_empty() && !c.can_update());
        assert_eq!(
            c.property_names,
            BTreeSet::from(["property1".to_owned(), "property2".to_owned()])
        );
        assert!(!c.uses_interactive_oauth());
        assert!(c.created.is_some());
        let shown = format!("{c:?}");
        assert!(!shown.contains("Connection_Specific_Secret"), "{shown}");
        assert!(!shown.contains("snowflake;server"), "{shown}");
    }

    #[test]
    fn a_connection_with_an_auth_code_property_uses_interactive_oauth() {
        let mut value = example();
        value["connectionProperties"] =
            json!({"OAuthMechanism": "1", "Catalog": "gbq-example-catalog", "authCode": "x"});
        value["privileges"] = json!(["read", "update"]);
        value["qConnectionSecret"] = json!("");
        let c = decode(value);
        assert!(c.uses_interactive_oauth());
        assert!(c.can_update());
        assert!(!c.has_connection_secret);
    }

    #[test]
    fn a_connection_with_only_its_required_fields_decodes() {
        let c = decode(json!({"qID": "c1"}));
        assert_eq!(c.name, "");
        assert!(!c.separate_credentials && !c.has_connection_secret);
        assert!(c.property_names.is_empty());
        assert!(serde_json::from_value::<DataConnection>(json!({"qName": "x"})).is_err());
    }

    #[test]
    fn a_connections_page_with_errors_says_it_left_items_out() {
        let page: Page<DataConnection> = serde_json::from_value(json!({
            "data": [example()],
            "meta": {"count": 12},
            "links": {"self": {"href": "x"}, "next": {"href": "https://t/api/v1/data-connections?page=2"}},
            "errors": [{"code": "DCERROR-0010", "title": "Bad or invalid request", "status": 400}]
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(page.left_items_out());
        assert!(page.links.next.is_some());
        let page: Page<DataConnection> = serde_json::from_value(json!({"data": [], "errors": []}))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!page.left_items_out());
    }

    #[test]
    fn credentials_encode_as_replace_operations_of_the_set_fields_only() {
        let creds = DataConnectionCredentials {
            username: Some("svc".into()),
            password: Some(SecretString::from("pa55")),
            connection_secret: None,
        };
        assert_eq!(
            serde_json::to_value(creds.patch()).unwrap_or_default(),
            json!([
                {"op": "replace", "path": "/qUsername", "value": "svc"},
                {"op": "replace", "path": "/qPassword", "value": "pa55"},
            ])
        );
        let creds = DataConnectionCredentials {
            connection_secret: Some(SecretString::from("s3cr3t")),
            ..DataConnectionCredentials::default()
        };
        assert_eq!(
            serde_json::to_value(creds.patch()).unwrap_or_default(),
            json!([{"op": "replace", "path": "/qConnectionSecret", "value": "s3cr3t"}])
        );
        assert!(DataConnectionCredentials::default().patch().is_empty());
    }

    #[test]
    fn credentials_never_show_in_debug() {
        let creds = DataConnectionCredentials {
            username: Some("svc".into()),
            password: Some(SecretString::from("pa55-value")),
            connection_secret: Some(SecretString::from("conn-secret-value")),
        };
        let shown = format!("{creds:?} {creds:#?} {:?}", creds.patch());
        assert!(!shown.contains("pa55-value"), "{shown}");
        assert!(!shown.contains("conn-secret-value"), "{shown}");
    }

    #[test]
    fn the_wire_names_are_the_definitions() {
        let Some(def) = lenient::definition("data-connections.json") else {
            return;
        };
        let get = lenient::schema_properties(&def, "ConnectionGet");
        let decoded = [
            "qID",
            "qName",
            "qType",
            "datasourceID",
            "space",
            "user",
            "qCredentialsID",
            "qSeparateCredentials",
            "privileges",
            "qConnectionSecret",
            "connectionProperties",
            "created",
            "updated",
        ];
        for name in decoded {
            assert!(get.contains(name), "ConnectionGet has no {name}");
        }
        // The patched paths are fields of the connection as PUT writes it.
        let update = lenient::schema_properties(&def, "ConnectionUpdate");
        let creds = DataConnectionCredentials {
            username: Some("u".into()),
            password: Some(SecretString::from("p")),
            connection_secret: Some(SecretString::from("s")),
        };
        for op in creds.patch().0 {
            assert!(
                update.contains(&op.path[1..]),
                "ConnectionUpdate has no {}",
                op.path
            );
        }
        let ops =
            &def["components"]["schemas"]["PatchRequest"]["items"]["properties"]["op"]["enum"];
        assert!(
            ops.as_array()
                .is_some_and(|o| o.contains(&json!("replace")))
        );
        // PATCH needs no query parameter (`type` only addresses by name) and answers 204.
        let patch = &def["paths"]["/api/v1/data-connections/{qID}"]["patch"];
        assert!(patch["responses"]["204"].is_object());
        // The list filter the name lookup uses: `qName` is filterable.
        assert_eq!(
            def["components"]["schemas"]["ConnectionGet"]["properties"]["qName"]["x-qlik-filterable"],
            json!(true)
        );
    }
}
