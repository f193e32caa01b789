//! Wire types of the tenant email configuration (`transports.json`,
//! `/api/v1/transports/email-config`): the configuration as `getEmailConfig` returns it
//! (never with the password), the JSON Patch of its credentials, and the answer of
//! `actions/verify-connection`. No I/O.

use secrecy::SecretString;
use serde::Deserialize;

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
        assert!(patch["responses"]["204"].is_object());
    }
}
