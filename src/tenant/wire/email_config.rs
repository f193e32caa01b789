//! Wire types of the tenant email configuration (`transports.json`,
//! `/api/v1/transports/email-config`): the configuration as `getEmailConfig` returns it
//! (never with the password), the `PUT` body that replaces it with a new password
//! (`putEmailConfig`), the deprecated JSON Patch of its credentials, and the answer of
//! `actions/verify-connection`. No I/O.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::ser::{Serialize, SerializeStruct, Serializer};

use super::json_patch::JsonPatch;
use super::lenient;

/// The `errorCode` of a tenant that has no email configuration.
pub const CONFIG_NOT_SET: &str = "CONFIG_NOT_SET";

/// The tenant's email configuration (`getEmailConfig`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailConfig {
    /// "Indicates if password is defined for this smtp config. The password itself is not
    /// returned!"
    #[serde(default, deserialize_with = "lenient::flag")]
    pub password_exists: bool,
    /// Whether the configuration is valid.
    #[serde(default, deserialize_with = "lenient::flag")]
    pub is_valid: bool,
    /// `OK`, `CONFIG_NOT_SET`, `INCOMPLETE_CONFIG`, `INVALID_CREDENTIALS`,
    /// `PROVIDER_ERROR`.
    #[serde(default, deserialize_with = "lenient::text")]
    pub error_code: Option<String>,
    /// The SMTP user name.
    #[serde(default)]
    pub username: Option<String>,
    /// The address used for SMTP authentication.
    #[serde(default)]
    pub email_address: Option<String>,
    /// The SMTP server's name or address.
    #[serde(default)]
    pub server_address: Option<String>,
    /// The SMTP server's port.
    #[serde(default, deserialize_with = "lenient::number")]
    pub server_port: Option<f64>,
    /// `none`, `StartTLS` or `SSL/TLS`.
    #[serde(default)]
    pub security_type: Option<String>,
    /// `Microsoft365` or `BasicAuth`.
    #[serde(default)]
    pub service_provider: Option<String>,
    /// The provider's settings (either shape, without secrets).
    #[serde(default)]
    pub provider_config: Option<EmailProviderConfig>,
    /// The configuration's status.
    #[serde(default)]
    pub status: Option<SmtpConfigStatus>,
    /// How many authentications failed.
    #[serde(default, deserialize_with = "lenient::number")]
    pub auth_failures: Option<f64>,
    /// The tenant.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// "Last modification time. Formatted as a ISO 8601 string."
    #[serde(default)]
    pub modification_time: Option<String>,
}

impl EmailConfig {
    /// Whether this is the answer for a tenant without a configuration. The definition:
    /// "If configuration does not exist in database then { isValid false, passwordExists
    /// false} is returned"; its `errorCode`s include `CONFIG_NOT_SET`.
    pub fn is_unset(&self) -> bool {
        self.error_code.as_deref() == Some(CONFIG_NOT_SET)
            || (!self.is_valid
                && !self.password_exists
                && self.username.is_none()
                && self.email_address.is_none()
                && self.server_address.is_none()
                && self.service_provider.is_none()
                && self.provider_config.is_none())
    }
}

/// `providerConfig`: the fields of `getBasicAuthConfig` and `getMicrosoft365Config`, all
/// optional (neither carries a secret).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailProviderConfig {
    /// BasicAuth: the SMTP user name.
    #[serde(default)]
    pub username: Option<String>,
    /// BasicAuth: the sender's name.
    #[serde(default)]
    pub sender_name: Option<String>,
    /// BasicAuth: the SMTP server.
    #[serde(default)]
    pub server_address: Option<String>,
    /// BasicAuth: its port.
    #[serde(default, deserialize_with = "lenient::number")]
    pub server_port: Option<f64>,
    /// BasicAuth: `none`, `StartTLS` or `SSL/TLS`.
    #[serde(default)]
    pub security_type: Option<String>,
    /// Both: the From address.
    #[serde(default)]
    pub email_address: Option<String>,
    /// Microsoft365: the client id.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Microsoft365: the Entra tenant id.
    #[serde(default)]
    pub provider_tenant_id: Option<String>,
}

/// `smtpConfigStatus`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SmtpConfigStatus {
    /// The status code.
    #[serde(default, deserialize_with = "lenient::number")]
    pub status_code: Option<f64>,
    /// The reason, e.g. `OK`.
    #[serde(default, deserialize_with = "lenient::text")]
    pub status_reason: Option<String>,
}

/// The answer of `actions/verify-connection` (`smtpResult`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SmtpVerification {
    /// Whether the handshake (and login) succeeded.
    #[serde(default, deserialize_with = "lenient::flag")]
    pub success: bool,
    /// The SMTP middleware's message: the mail server's words, unbounded; cut it before
    /// putting it into a status or an event.
    #[serde(default, deserialize_with = "lenient::text")]
    pub message: Option<String>,
    /// Whether the server could not be reached at all (name, refused, timeout, TLS
    /// mismatch).
    #[serde(default, deserialize_with = "lenient::flag")]
    pub connection_failed: bool,
    /// The SMTP reply code. Defined as an integer but described as a string such as
    /// `"250 2.6.0"`: either is accepted, as text.
    #[serde(default, deserialize_with = "lenient::text")]
    pub smtp_response_code: Option<String>,
}

/// `serviceProvider` of an SMTP server with user name and password.
pub const BASIC_AUTH: &str = "BasicAuth";
/// `serviceProvider` of Microsoft 365 (OAuth client credentials, no SMTP password).
pub const MICROSOFT_365: &str = "Microsoft365";

/// Why no `PUT` body can be built from a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PutRefusal {
    /// The provider is not `BasicAuth` (`Microsoft365`: its secret is a `clientSecret`).
    Provider(String),
    /// These fields, which the `PUT` must send and the operator does not own, are absent.
    Missing(Vec<&'static str>),
}

/// The `putEmailConfig` body for `BasicAuth`: every non-secret field as the tenant returned
/// it, the user name when given, and the password.
///
/// # Guarantees
/// `Debug` shows `[REDACTED]` for the password; only serializing the body (for the request)
/// exposes it.
#[derive(Clone)]
pub(crate) struct EmailConfigPut<'a> {
    pub(crate) server_address: &'a str,
    pub(crate) server_port: f64,
    pub(crate) email_address: &'a str,
    pub(crate) username: &'a str,
    pub(crate) security_type: Option<&'a str>,
    pub(crate) sender_name: Option<&'a str>,
    pub(crate) password: &'a SecretString,
}

impl<'a> EmailConfigPut<'a> {
    /// The body that puts `password` (and `username`, when given) into `current`.
    /// `providerConfig`'s fields win over the top-level ones, which are the fallback
    /// (older answers carry only those). A configuration without `serviceProvider` is taken
    /// as `BasicAuth`: the top-level fields are that provider's.
    pub(crate) fn basic_auth(
        current: &'a EmailConfig,
        password: &'a SecretString,
        username: Option<&'a str>,
    ) -> Result<EmailConfigPut<'a>, PutRefusal> {
        let provider = current.service_provider.as_deref().unwrap_or(BASIC_AUTH);
        if provider != BASIC_AUTH {
            return Err(PutRefusal::Provider(provider.to_owned()));
        }
        let given = current.provider_config.as_ref();
        let pick = |nested: Option<&'a Option<String>>, top: &'a Option<String>| {
            nested
                .and_then(Option::as_deref)
                .or(top.as_deref())
                .filter(|v| !v.is_empty())
        };
        let server_address = pick(given.map(|g| &g.server_address), &current.server_address);
        let email_address = pick(given.map(|g| &g.email_address), &current.email_address);
        let username = username.or_else(|| pick(given.map(|g| &g.username), &current.username));
        let security_type = pick(given.map(|g| &g.security_type), &current.security_type);
        let sender_name = given.and_then(|g| g.sender_name.as_deref());
        let server_port = given
            .and_then(|g| g.server_port)
            .or(current.server_port)
            .filter(|p| *p >= 1.0);
        match (server_address, server_port, email_address, username) {
            (Some(server_address), Some(server_port), Some(email_address), Some(username)) => {
                Ok(EmailConfigPut {
                    server_address,
                    server_port,
                    email_address,
                    username,
                    security_type,
                    sender_name,
                    password,
                })
            }
            _ => {
                let missing = [
                    ("serverAddress", server_address.is_none()),
                    ("serverPort", server_port.is_none()),
                    ("emailAddress", email_address.is_none()),
                    ("username", username.is_none()),
                ];
                Err(PutRefusal::Missing(
                    missing
                        .into_iter()
                        .filter_map(|(name, absent)| absent.then_some(name))
                        .collect(),
                ))
            }
        }
    }
}

impl fmt::Debug for EmailConfigPut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailConfigPut")
            .field("server_address", &self.server_address)
            .field("server_port", &self.server_port)
            .field("email_address", &self.email_address)
            .field("username", &self.username)
            .field("security_type", &self.security_type)
            .field("sender_name", &self.sender_name)
            .field("password", &"[REDACTED]")
            .finish()
    }
}

/// `putBasicAuthConfig`.
struct BasicAuthConfig<'b, 'a>(&'b EmailConfigPut<'a>);

impl Serialize for BasicAuthConfig<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut s = serializer.serialize_struct("putBasicAuthConfig", 7)?;
        s.serialize_field("serverAddress", c.server_address)?;
        // A whole number as an integer: `587`, not `587.0`.
        if c.server_port.fract() == 0.0 && c.server_port <= f64::from(u32::MAX) {
            s.serialize_field("serverPort", &(c.server_port as u32))?;
        } else {
            s.serialize_field("serverPort", &c.server_port)?;
        }
        s.serialize_field("emailAddress", c.email_address)?;
        s.serialize_field("username", c.username)?;
        if let Some(security_type) = c.security_type {
            s.serialize_field("securityType", security_type)?;
        } else {
            s.skip_field("securityType")?;
        }
        if let Some(sender_name) = c.sender_name {
            s.serialize_field("senderName", sender_name)?;
        } else {
            s.skip_field("senderName")?;
        }
        s.serialize_field("emailPassword", c.password.expose_secret())?;
        s.end()
    }
}

impl Serialize for EmailConfigPut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("putEmailConfig", 2)?;
        s.serialize_field("serviceProvider", BASIC_AUTH)?;
        s.serialize_field("providerConfig", &BasicAuthConfig(self))?;
        s.end()
    }
}

/// The `emailConfigPatch` body: `replace` of `/emailPassword`, and of `/username` when
/// given.
pub(crate) fn credentials_patch<'a>(
    password: &'a SecretString,
    username: Option<&'a str>,
) -> JsonPatch<'a> {
    let mut patch = JsonPatch::default();
    if let Some(username) = username {
        patch.replace("/username", username);
    }
    patch.replace_secret("/emailPassword", password);
    patch
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `getEmailConfig` from the definition's `example` fields.
    fn example() -> serde_json::Value {
        json!({
            "status": {"statusCode": 0, "statusReason": "OK"},
            "isValid": true,
            "tenantId": "mcdd-mkw_Ebo0fR2vLl8_YsQYFsYrTdP",
            "username": "john.smith@company.com",
            "errorCode": "INVALID_CREDENTIALS",
            "serverPort": 587,
            "lastUpdated": "2022-06-30T09:57:40.954Z",
            "authFailures": 0,
            "emailAddress": "john.smith@company.com",
            "securityType": "StartTLS",
            "serverAddress": "smtp.company.com",
            "passwordExists": true,
            "providerConfig": {
                "username": "john.smith@company.com", "senderName": "John", "serverPort": 587,
                "emailAddress": "abc@example.com", "securityType": "StartTLS",
                "serverAddress": "smtp.company.com"
            },
            "serviceProvider": "BasicAuth",
            "modificationTime": "2022-06-30T09:57:40.954Z"
        })
    }

    #[test]
    fn the_definitions_example_config_decodes() {
        let c: EmailConfig = serde_json::from_value(example()).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.password_exists && c.is_valid);
        assert_eq!(c.error_code.as_deref(), Some("INVALID_CREDENTIALS"));
        assert_eq!(c.username.as_deref(), Some("john.smith@company.com"));
        assert_eq!(c.server_port, Some(587.0));
        assert_eq!(
            c.provider_config
                .as_ref()
                .and_then(|p| p.sender_name.as_deref()),
            Some("John")
        );
        assert_eq!(
            c.status.as_ref().and_then(|s| s.status_reason.as_deref()),
            Some("OK")
        );
        assert!(!c.is_unset());
    }

    #[test]
    fn the_answer_for_a_tenant_without_a_config_is_unset() {
        let unset = [
            json!({"isValid": false, "passwordExists": false}),
            json!({"isValid": false, "passwordExists": false, "errorCode": "CONFIG_NOT_SET"}),
            json!({}),
        ];
        for body in unset {
            let c: EmailConfig =
                serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("{e}"));
            assert!(c.is_unset(), "{body}");
        }
        let incomplete: EmailConfig = serde_json::from_value(json!({
            "isValid": false, "passwordExists": false, "serverAddress": "smtp.example",
            "errorCode": "INCOMPLETE_CONFIG"
        }))
        .unwrap_or_default();
        assert!(!incomplete.is_unset());
    }

    #[test]
    fn a_verification_decodes_with_the_response_code_as_number_or_string() {
        let v: SmtpVerification = serde_json::from_value(json!({
            "message": "535 5.7.8 auth failed", "success": false, "connectionFailed": false,
            "smtpResponseCode": 535
        }))
        .unwrap_or_default();
        assert_eq!(v.smtp_response_code.as_deref(), Some("535"));
        assert!(!v.success && !v.connection_failed);
        let v: SmtpVerification =
            serde_json::from_value(json!({"success": true, "smtpResponseCode": "250 2.6.0"}))
                .unwrap_or_default();
        assert_eq!(v.smtp_response_code.as_deref(), Some("250 2.6.0"));
        assert!(v.success);
    }

    #[test]
    fn the_put_is_the_current_basic_auth_config_with_the_password() {
        let current: EmailConfig =
            serde_json::from_value(example()).unwrap_or_else(|e| panic!("{e}"));
        let password = SecretString::from("smtp-pa55");
        let put = EmailConfigPut::basic_auth(&current, &password, None)
            .unwrap_or_else(|e| panic!("{e:?}"));
        // `providerConfig` wins: its emailAddress (the From address) is abc@example.com.
        let full = json!({"serviceProvider": "BasicAuth", "providerConfig": {
            "serverAddress": "smtp.company.com", "serverPort": 587,
            "emailAddress": "abc@example.com", "username": "john.smith@company.com",
            "securityType": "StartTLS", "senderName": "John", "emailPassword": "smtp-pa55"}});
        assert_eq!(serde_json::to_value(&put).unwrap_or_default(), full);
        assert!(!format!("{put:?}").contains("smtp-pa55"), "{put:?}");
        let renamed = EmailConfigPut::basic_auth(&current, &password, Some("svc@acme.example"))
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            serde_json::to_value(&renamed).unwrap_or_default()["providerConfig"]["username"],
            json!("svc@acme.example")
        );
        // An answer with only the top-level fields (no providerConfig, no serviceProvider).
        let flat: EmailConfig = serde_json::from_value(json!({
            "serverAddress": "smtp.example", "serverPort": 25, "emailAddress": "a@example",
            "username": "a", "passwordExists": true
        }))
        .unwrap_or_default();
        let put =
            EmailConfigPut::basic_auth(&flat, &password, None).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            serde_json::to_value(&put).unwrap_or_default(),
            json!({"serviceProvider": "BasicAuth", "providerConfig": {
                "serverAddress": "smtp.example", "serverPort": 25, "emailAddress": "a@example",
                "username": "a", "emailPassword": "smtp-pa55"}})
        );
    }

    #[test]
    fn no_put_is_built_for_microsoft_365_or_an_incomplete_config() {
        let password = SecretString::from("p");
        let m365: EmailConfig = serde_json::from_value(json!({
            "serviceProvider": "Microsoft365", "isValid": true,
            "providerConfig": {"clientId": "c", "providerTenantId": "t", "emailAddress": "a@b"}
        }))
        .unwrap_or_default();
        assert_eq!(
            EmailConfigPut::basic_auth(&m365, &password, Some("u")).map(|_| ()),
            Err(PutRefusal::Provider(MICROSOFT_365.to_owned()))
        );
        let incomplete: EmailConfig = serde_json::from_value(json!({
            "serviceProvider": "BasicAuth", "serverAddress": "smtp.example",
            "providerConfig": {"serverPort": 0, "emailAddress": ""}
        }))
        .unwrap_or_default();
        assert_eq!(
            EmailConfigPut::basic_auth(&incomplete, &password, None).map(|_| ()),
            Err(PutRefusal::Missing(vec![
                "serverPort",
                "emailAddress",
                "username"
            ]))
        );
    }

    #[test]
    fn the_credentials_patch_replaces_the_password_and_optionally_the_username() {
        let password = SecretString::from("smtp-pa55");
        assert_eq!(
            serde_json::to_value(credentials_patch(&password, Some("svc@acme.example")))
                .unwrap_or_default(),
            json!([
                {"op": "replace", "path": "/username", "value": "svc@acme.example"},
                {"op": "replace", "path": "/emailPassword", "value": "smtp-pa55"},
            ])
        );
        let patch = credentials_patch(&password, None);
        assert_eq!(
            serde_json::to_value(&patch).unwrap_or_default(),
            json!([{"op": "replace", "path": "/emailPassword", "value": "smtp-pa55"}])
        );
        assert!(!format!("{patch:?}").contains("smtp-pa55"));
    }

    #[test]
    fn the_wire_names_are_the_definitions() {
        let Some(def) = lenient::definition("transports.json") else {
            return;
        };
        let get = lenient::schema_properties(&def, "getEmailConfig");
        for name in lenient::field_names(&example()) {
            assert!(get.contains(&name), "getEmailConfig has no {name}");
        }
        let basic = lenient::schema_properties(&def, "getBasicAuthConfig");
        let m365 = lenient::schema_properties(&def, "getMicrosoft365Config");
        for name in [
            "username",
            "senderName",
            "serverAddress",
            "serverPort",
            "securityType",
            "emailAddress",
        ] {
            assert!(basic.contains(name), "getBasicAuthConfig has no {name}");
        }
        for name in ["clientId", "providerTenantId", "emailAddress"] {
            assert!(m365.contains(name), "getMicrosoft365Config has no {name}");
        }
        let paths =
            &def["components"]["schemas"]["emailConfigFieldPatch"]["properties"]["path"]["enum"];
        let password = SecretString::from("p");
        for op in credentials_patch(&password, Some("u")).0 {
            assert!(
                paths
                    .as_array()
                    .is_some_and(|p| p.contains(&json!(op.path))),
                "emailConfigFieldPatch does not allow {}",
                op.path
            );
        }
        let result = lenient::schema_properties(&def, "smtpResult");
        for name in ["success", "message", "connectionFailed", "smtpResponseCode"] {
            assert!(result.contains(name), "smtpResult has no {name}");
        }
        // Deprecated in favour of PUT, with a sunset: see `tenant::email_config`.
        let patch = &def["paths"]["/api/v1/transports/email-config"]["patch"];
        assert_eq!(patch["x-qlik-deprecated"], json!(true));
        assert_eq!(patch["x-qlik-deprecated-sunset"], json!("2026-11"));
        assert!(patch["responses"]["204"].is_object());
        // The PUT body's names are `putEmailConfig`'s and `putBasicAuthConfig`'s.
        let put = &def["paths"]["/api/v1/transports/email-config"]["put"];
        assert_eq!(put["x-qlik-deprecated"], json!(false));
        assert!(put["responses"]["204"].is_object() && put["responses"]["400"].is_object());
        let current: EmailConfig = serde_json::from_value(example()).unwrap_or_default();
        let body = serde_json::to_value(
            EmailConfigPut::basic_auth(&current, &password, None)
                .unwrap_or_else(|e| panic!("{e:?}")),
        )
        .unwrap_or_default();
        let envelope = lenient::schema_properties(&def, "putEmailConfig");
        for name in lenient::field_names(&body) {
            assert!(envelope.contains(&name), "putEmailConfig has no {name}");
        }
        let basic = lenient::schema_properties(&def, "putBasicAuthConfig");
        for name in lenient::field_names(&body["providerConfig"]) {
            assert!(basic.contains(&name), "putBasicAuthConfig has no {name}");
        }
        let rejected = lenient::schema_properties(&def, "UpdateEmailConfigError");
        assert!(rejected.contains("errors"));
    }
}
