//! `/api/v1/transports/email-config`: the tenant's SMTP configuration (GET, PUT, PATCH)
//! and `actions/verify-connection`. No I/O: handlers take the state and a buffered request.
//!
//! Choices where Qlik's behaviour is not public:
//! - The tenant may have no configuration: GET then answers what the definition says,
//!   `{"isValid": false, "passwordExists": false}`, with `errorCode` `CONFIG_NOT_SET`; and
//!   verify-connection answers 404 `VERIFYCONNECTION-1` (`VerifyConnectionConfigNotFoundError`).
//!   The control API creates, replaces or deletes it.
//! - Only `BasicAuth` configurations exist. The password is stored, never returned: GET says
//!   `passwordExists`.
//! - PUT (`putEmailConfig`) replaces the whole configuration. `serviceProvider` must be
//!   `BasicAuth` (the emulator has no Microsoft 365: 400); `providerConfig` takes the
//!   fields of `putBasicAuthConfig` and no others, and needs `serverAddress`, `serverPort`
//!   (a number, at least 1), `emailAddress` and `emailPassword` to check a connection; a
//!   field absent from the body is absent after it (`senderName`, `username`,
//!   `securityType`). Input errors are 400 `INPUTCHECK-1` (the definition's example).
//!   Then, as the definition says ("Validation of the configuration is done as part of the
//!   request"; 204 "validated and saved", "Connection to the email server verified with
//!   provided credentials"), it checks the connection: the outcome is the one the control
//!   API set for verify-connection. A failure is 400 `UpdateEmailConfigError` (code
//!   `EMAIL-CONFIG-VERIFICATION-FAILED`, the SMTP message in the title) and **saves
//!   nothing**: the 204 is the one answer that says "saved", and a 400 ("Bad request") that
//!   changed the configuration would leave the tenant holding credentials it just called
//!   invalid. Neither the failure count nor the last verification changes then. A success
//!   stores the configuration, counts a credential write, and records the check as the last
//!   verification (`errorCode` `OK`).
//! - PATCH (`emailConfigPatch`, deprecated by Qlik in favour of PUT)
//!   takes `add`/`replace` (set) and `remove` (clear) on the definition's paths `/username`,
//!   `/serverAddress`, `/serverPort`, `/securityType`, `/emailAddress` and `/emailPassword`,
//!   all checked before any applies, and answers 204. Without a configuration it creates one
//!   from the patch. The definition's `op` enum is the single string
//!   `"replace, remove, add"` and it requires `value` even for `remove`; the emulator takes
//!   the RFC 6902 operations the description cites, and no value for `remove`.
//! - verify-connection answers the `smtpResult` the control API set (success by default).
//!   GET's `errorCode` and `isValid` reflect the last verification, as the definition's
//!   "Indicates error with this email configuration" implies: `INVALID_CREDENTIALS` after
//!   a failed login, `PROVIDER_ERROR` after `connectionFailed`, `INCOMPLETE_CONFIG` while the
//!   server address, port or sender address is missing, else `OK`. `status` carries the last
//!   failure's SMTP code and message, `authFailures` counts failed logins. A PATCH judges a
//!   new configuration: it clears the last verification and the failure count.

use hyper::StatusCode;
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::state::{Secret, State};
use super::wire::{ApiRequest, ApiResponse, QlikError, codes, optional_str, timestamp};

/// An SMTP (`BasicAuth`) configuration.
#[derive(Clone, Debug, Default)]
pub struct EmailConfig {
    pub username: Option<String>,
    pub email_address: Option<String>,
    pub server_address: Option<String>,
    pub server_port: Option<u16>,
    pub security_type: Option<String>,
    /// `senderName` (only in `providerConfig`; set by PUT and the control API).
    pub sender_name: Option<String>,
    pub password: Option<Secret>,
    pub modified: Option<Timestamp>,
    /// Successful PUT requests, and PATCH requests that set or cleared `/username` or
    /// `/emailPassword`.
    pub credential_writes: u64,
}

/// What verify-connection answers (Qlik's `smtpResult`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyOutcome {
    pub success: bool,
    pub message: Option<String>,
    pub smtp_response_code: Option<i64>,
    pub connection_failed: bool,
}

impl VerifyOutcome {
    /// A login the server accepted.
    pub fn success() -> VerifyOutcome {
        VerifyOutcome {
            success: true,
            message: None,
            smtp_response_code: Some(250),
            connection_failed: false,
        }
    }

    fn json(&self) -> Value {
        let mut object = json!({
            "success": self.success,
            "connectionFailed": self.connection_failed,
        });
        if let Some(message) = &self.message {
            object["message"] = json!(message);
        }
        if let Some(code) = self.smtp_response_code {
            object["smtpResponseCode"] = json!(code);
        }
        object
    }
}

/// The email configuration, the outcome verify-connection gives, and what it last gave.
#[derive(Debug)]
pub struct EmailConfigState {
    pub config: Option<EmailConfig>,
    pub verify: VerifyOutcome,
    pub last_verify: Option<VerifyOutcome>,
    pub auth_failures: u64,
}

impl Default for EmailConfigState {
    fn default() -> Self {
        EmailConfigState {
            config: None,
            verify: VerifyOutcome::success(),
            last_verify: None,
            auth_failures: 0,
        }
    }
}

impl EmailConfigState {
    /// Qlik's `errorCode` for the configuration as it stands.
    pub fn error_code(&self) -> &'static str {
        let Some(config) = &self.config else {
            return "CONFIG_NOT_SET";
        };
        if config.server_address.is_none()
            || config.server_port.is_none()
            || config.email_address.is_none()
        {
            return "INCOMPLETE_CONFIG";
        }
        match &self.last_verify {
            Some(v) if !v.success && v.connection_failed => "PROVIDER_ERROR",
            Some(v) if !v.success => "INVALID_CREDENTIALS",
            _ => "OK",
        }
    }
}

/// `GET /api/v1/transports/email-config`.
pub fn get(state: &State) -> ApiResponse {
    let email = &state.email;
    let error_code = email.error_code();
    let Some(config) = &email.config else {
        return ApiResponse::json(
            StatusCode::OK,
            json!({"isValid": false, "passwordExists": false, "errorCode": error_code}),
        );
    };
    let mut provider = Map::new();
    let mut put = |name: &str, value: Option<Value>| {
        if let Some(value) = value {
            provider.insert(name.to_owned(), value);
        }
    };
    put("username", config.username.as_ref().map(|v| json!(v)));
    put(
        "emailAddress",
        config.email_address.as_ref().map(|v| json!(v)),
    );
    put(
        "serverAddress",
        config.server_address.as_ref().map(|v| json!(v)),
    );
    put("serverPort", config.server_port.map(|v| json!(v)));
    put(
        "securityType",
        config.security_type.as_ref().map(|v| json!(v)),
    );
    let status = match &email.last_verify {
        Some(v) if !v.success => json!({
            "statusCode": v.smtp_response_code.unwrap_or(0),
            "statusReason": v.message.clone().unwrap_or_else(|| "verification failed".into()),
        }),
        _ => json!({"statusCode": 0, "statusReason": "OK"}),
    };
    let mut body = Value::Object(provider.clone());
    // `senderName` is a field of `getBasicAuthConfig` only, not of `getEmailConfig`.
    if let Some(sender_name) = &config.sender_name {
        provider.insert("senderName".to_owned(), json!(sender_name));
    }
    body["providerConfig"] = Value::Object(provider);
    body["tenantId"] = json!(state.settings.tenant_id);
    body["serviceProvider"] = json!("BasicAuth");
    body["passwordExists"] = json!(config.password.is_some());
    body["isValid"] = json!(error_code == "OK");
    body["errorCode"] = json!(error_code);
    body["status"] = status;
    body["authFailures"] = json!(email.auth_failures);
    if let Some(modified) = config.modified {
        body["modificationTime"] = json!(timestamp(modified));
        body["lastUpdated"] = json!(timestamp(modified));
    }
    ApiResponse::json(StatusCode::OK, body)
}

/// One field a PATCH sets (`Some`) or clears (`None`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Change {
    Username(Option<String>),
    EmailAddress(Option<String>),
    ServerAddress(Option<String>),
    ServerPort(Option<u16>),
    SecurityType(Option<String>),
    Password(Option<String>),
}

fn parse_patch(body: &Value) -> Result<Vec<Change>, QlikError> {
    let operations = body
        .as_array()
        .ok_or_else(|| QlikError::bad_request("the body must be a JSON Patch array"))?;
    let mut changes = Vec::new();
    for operation in operations {
        let object = operation
            .as_object()
            .ok_or_else(|| QlikError::bad_request("each patch operation must be an object"))?;
        let path = optional_str(object, "path")?.unwrap_or_default();
        let value = match optional_str(object, "op")?.unwrap_or_default() {
            "add" | "replace" => Some(
                optional_str(object, "value")?
                    .ok_or_else(|| QlikError::bad_request(format!("{path} needs a string value")))?
                    .to_owned(),
            ),
            "remove" => None,
            other => {
                return Err(QlikError::bad_request(format!(
                    "op must be add, replace or remove, got {other:?}"
                )));
            }
        };
        changes.push(match path {
            "/username" => Change::Username(value),
            "/emailAddress" => Change::EmailAddress(value),
            "/serverAddress" => Change::ServerAddress(value),
            "/securityType" => Change::SecurityType(value),
            "/emailPassword" => Change::Password(value),
            "/serverPort" => Change::ServerPort(match value {
                None => None,
                Some(port) => Some(port.parse().ok().filter(|p| *p >= 1).ok_or_else(|| {
                    QlikError::bad_request(format!(
                        "serverPort must be a port number, got {port:?}"
                    ))
                })?),
            }),
            other => {
                return Err(QlikError::bad_request(format!(
                    "path must be /username, /serverAddress, /serverPort, /securityType, \
                     /emailAddress or /emailPassword, got {other:?}"
                )));
            }
        });
    }
    Ok(changes)
}

/// `PATCH /api/v1/transports/email-config`.
pub fn patch(
    state: &mut State,
    request: &ApiRequest,
    now: Timestamp,
) -> Result<ApiResponse, QlikError> {
    let changes = parse_patch(&request.json_body()?)?;
    let email = &mut state.email;
    let config = email.config.get_or_insert_with(EmailConfig::default);
    let mut credentials = false;
    for change in changes {
        match change {
            Change::Username(v) => {
                credentials = true;
                config.username = v;
            }
            Change::Password(v) => {
                credentials = true;
                config.password = v.map(Secret::new);
            }
            Change::EmailAddress(v) => config.email_address = v,
            Change::ServerAddress(v) => config.server_address = v,
            Change::ServerPort(v) => config.server_port = v,
            Change::SecurityType(v) => config.security_type = v,
        }
    }
    if credentials {
        config.credential_writes += 1;
    }
    config.modified = Some(now);
    email.last_verify = None;
    email.auth_failures = 0;
    Ok(ApiResponse::no_content())
}

/// The fields of `putBasicAuthConfig`.
const PUT_BASIC_AUTH_FIELDS: [&str; 7] = [
    "username",
    "senderName",
    "serverPort",
    "emailAddress",
    "securityType",
    "emailPassword",
    "serverAddress",
];

fn input_check(title: impl Into<String>) -> QlikError {
    QlikError::bad_request(title).with_code(codes::EMAIL_CONFIG_INPUT_CHECK)
}

/// The configuration a `putEmailConfig` body describes (without the bookkeeping).
fn parse_put(body: &Value) -> Result<EmailConfig, QlikError> {
    let object = body
        .as_object()
        .ok_or_else(|| input_check("the body must be a JSON object"))?;
    if let Some(name) = object
        .keys()
        .find(|k| *k != "serviceProvider" && *k != "providerConfig")
    {
        return Err(input_check(format!(
            "{name} is not a field of putEmailConfig"
        )));
    }
    let provider = optional_str(object, "serviceProvider")
        .map_err(|_| input_check("serviceProvider is not a string"))?;
    match provider {
        Some("BasicAuth") => {}
        Some("Microsoft365") => {
            return Err(input_check(
                "the emulator serves only BasicAuth configurations",
            ));
        }
        _ => {
            return Err(input_check(
                "serviceProvider must be Microsoft365 or BasicAuth",
            ));
        }
    }
    let config = object
        .get("providerConfig")
        .and_then(Value::as_object)
        .ok_or_else(|| input_check("providerConfig is not an object"))?;
    if let Some(name) = config
        .keys()
        .find(|k| !PUT_BASIC_AUTH_FIELDS.contains(&k.as_str()))
    {
        return Err(input_check(format!(
            "{name} is not a field of putBasicAuthConfig"
        )));
    }
    let text = |name: &str| -> Result<Option<String>, QlikError> {
        optional_str(config, name)
            .map(|v| v.map(str::to_owned))
            .map_err(|_| input_check(format!("{name} is not a string")))
    };
    let required = |name: &str| -> Result<String, QlikError> {
        text(name)?
            .filter(|v| !v.is_empty())
            .ok_or_else(|| input_check(format!("{name} is required")))
    };
    let server_port = match config.get("serverPort") {
        None | Some(Value::Null) => return Err(input_check("serverPort is required")),
        Some(port) => port
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p >= 1)
            .ok_or_else(|| input_check("serverPort is not a port number"))?,
    };
    Ok(EmailConfig {
        username: text("username")?,
        email_address: Some(required("emailAddress")?),
        server_address: Some(required("serverAddress")?),
        server_port: Some(server_port),
        security_type: text("securityType")?,
        sender_name: text("senderName")?,
        password: Some(Secret::new(required("emailPassword")?)),
        modified: None,
        credential_writes: 0,
    })
}

/// `PUT /api/v1/transports/email-config`.
pub fn put(
    state: &mut State,
    request: &ApiRequest,
    now: Timestamp,
) -> Result<ApiResponse, QlikError> {
    let body = request
        .json_body()
        .map_err(|_| input_check("the request body is not valid JSON"))?;
    let mut config = parse_put(&body)?;
    let email = &mut state.email;
    let outcome = email.verify.clone();
    if !outcome.success {
        // Nothing is saved (see the module doc).
        let why = outcome
            .message
            .clone()
            .or_else(|| outcome.smtp_response_code.map(|c| c.to_string()))
            .unwrap_or_else(|| "no answer".to_owned());
        let what = if outcome.connection_failed {
            "Could not connect to the email server"
        } else {
            "The email server refused the provided credentials"
        };
        return Err(input_check(format!("{what}: {why}"))
            .with_code(codes::EMAIL_CONFIG_VERIFICATION_FAILED));
    }
    config.credential_writes = email.config.as_ref().map_or(0, |c| c.credential_writes) + 1;
    config.modified = Some(now);
    email.config = Some(config);
    email.last_verify = Some(outcome);
    email.auth_failures = 0;
    Ok(ApiResponse::no_content())
}

/// `POST /api/v1/transports/email-config/actions/verify-connection`.
pub fn verify_connection(state: &mut State) -> Result<ApiResponse, QlikError> {
    let email = &mut state.email;
    if email.config.is_none() {
        return Err(QlikError::not_found("No email config for tenant")
            .with_code(codes::EMAIL_CONFIG_NOT_FOUND));
    }
    let outcome = email.verify.clone();
    if !outcome.success && !outcome.connection_failed {
        email.auth_failures += 1;
    }
    let body = outcome.json();
    email.last_verify = Some(outcome);
    Ok(ApiResponse::json(StatusCode::OK, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_code_follows_completeness_and_the_last_verification() {
        let mut email = EmailConfigState::default();
        assert_eq!(email.error_code(), "CONFIG_NOT_SET");
        email.config = Some(EmailConfig::default());
        assert_eq!(email.error_code(), "INCOMPLETE_CONFIG");
        email.config = Some(EmailConfig {
            server_address: Some("smtp.example.com".into()),
            server_port: Some(587),
            email_address: Some("noreply@example.com".into()),
            ..EmailConfig::default()
        });
        assert_eq!(email.error_code(), "OK");
        let failed = VerifyOutcome {
            success: false,
            message: Some("535 authentication failed".into()),
            smtp_response_code: Some(535),
            connection_failed: false,
        };
        email.last_verify = Some(failed.clone());
        assert_eq!(email.error_code(), "INVALID_CREDENTIALS");
        email.last_verify = Some(VerifyOutcome {
            connection_failed: true,
            ..failed
        });
        assert_eq!(email.error_code(), "PROVIDER_ERROR");
    }

    #[test]
    fn a_put_needs_what_a_connection_check_needs_and_takes_only_the_definitions_fields() {
        let good = json!({"serviceProvider": "BasicAuth", "providerConfig": {
            "serverAddress": "smtp.example.com", "serverPort": 587,
            "emailAddress": "noreply@example.com", "emailPassword": "pw",
            "username": "mailer", "senderName": "Qlik", "securityType": "StartTLS"}});
        let config = parse_put(&good).unwrap();
        assert_eq!(
            (config.server_port, config.sender_name.as_deref()),
            (Some(587), Some("Qlik"))
        );
        assert_eq!(config.password.as_ref().map(Secret::expose), Some("pw"));
        let without = |field: &str| {
            let mut body = good.clone();
            body["providerConfig"]
                .as_object_mut()
                .unwrap()
                .remove(field);
            body
        };
        assert!(parse_put(&without("username")).is_ok());
        let with = |field: &str, value: Value| {
            let mut body = good.clone();
            body["providerConfig"][field] = value;
            body
        };
        for bad in [
            without("serverAddress"),
            without("serverPort"),
            without("emailAddress"),
            without("emailPassword"),
            with("serverPort", json!(0)),
            with("serverPort", json!("587")),
            with("serverAddress", json!(1)),
            with("clientSecret", json!("s")),
            json!({"serviceProvider": "Microsoft365", "providerConfig": {}}),
            json!({"providerConfig": good["providerConfig"].clone()}),
            json!({"serviceProvider": "BasicAuth"}),
            json!([]),
        ] {
            let err = parse_put(&bad).unwrap_err();
            assert_eq!(
                (err.status, err.code.as_str()),
                (StatusCode::BAD_REQUEST, codes::EMAIL_CONFIG_INPUT_CHECK),
                "{bad}"
            );
        }
    }

    #[test]
    fn patches_take_the_definitions_paths_and_refuse_the_rest() {
        let body = json!([
            {"op": "replace", "path": "/emailPassword", "value": "pw"},
            {"op": "remove", "path": "/username", "value": ""},
            {"op": "add", "path": "/serverPort", "value": "587"},
        ]);
        assert_eq!(
            parse_patch(&body).unwrap(),
            vec![
                Change::Password(Some("pw".into())),
                Change::Username(None),
                Change::ServerPort(Some(587)),
            ]
        );
        for bad in [
            json!([{"op": "replace", "path": "/senderName", "value": "x"}]),
            json!([{"op": "replace", "path": "/serverPort", "value": "0"}]),
            json!([{"op": "replace", "path": "/serverPort", "value": "http"}]),
            json!([{"op": "replace", "path": "/username"}]),
            json!([{"op": "test", "path": "/username", "value": "x"}]),
            json!({"op": "replace", "path": "/username", "value": "x"}),
        ] {
            assert!(parse_patch(&bad).is_err(), "{bad}");
        }
    }
}
