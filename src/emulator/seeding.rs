//! The control API's part for the secret targets: routing for data and automation
//! connections (served by `seed_connections`), the email configuration and automations;
//! seeding them, reading back what clients pushed into them (secret values included: this
//! is the test's view of the server), and setting the outcomes of `actions/check` and
//! `verify-connection`. See [`super::control::HELP`]. No I/O: it reads and changes the
//! shared state. Errors are `{"error": "..."}`.

use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::automations::{self, STATES};
use super::control::error;
use super::dispatch::Shared;
use super::email_config::{EmailConfig, VerifyOutcome};
use super::seed_connections::{
    add_automation_connection, add_data_connection, automation_connection, data_connection,
    set_check,
};
use super::state::Secret;
use super::wire::{ApiRequest, ApiResponse};

const DATA_CONNECTIONS: &str = "/_emulator/data-connections";
const AUTOMATION_CONNECTIONS: &str = "/_emulator/automation-connections";
const EMAIL_CONFIG: &str = "/_emulator/email-config";
const VERIFY: &str = "/_emulator/email-config/verify";
const AUTOMATIONS: &str = "/_emulator/automations";
/// `lastRunStatus` values of the automations definition.
const RUN_STATUSES: [&str; 10] = [
    "failed",
    "finished",
    "finished with warnings",
    "must stop",
    "not started",
    "paused",
    "running",
    "starting",
    "stopped",
    "exceeded limit",
];

/// Answers `request` when its path is one of this module's, else `None`.
pub fn handle(shared: &Shared, request: &ApiRequest) -> Option<ApiResponse> {
    let path = request.path.trim_end_matches('/');
    let method = &request.method;
    let item = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('/'))
            .filter(|id| !id.is_empty() && !id.contains('/'))
    };
    let check = path
        .strip_prefix(AUTOMATION_CONNECTIONS)
        .and_then(|rest| rest.strip_suffix("/check"))
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|id| !id.is_empty() && !id.contains('/'));
    let not_allowed = || {
        error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed here"),
        )
    };
    Some(match path {
        DATA_CONNECTIONS if method == Method::POST => add_data_connection(shared, request),
        AUTOMATION_CONNECTIONS if method == Method::POST => {
            add_automation_connection(shared, request)
        }
        AUTOMATIONS if method == Method::POST => add_automation(shared, request),
        EMAIL_CONFIG => match *method {
            Method::PUT => put_email_config(shared, request),
            Method::GET => email_config(shared),
            Method::DELETE => {
                let mut state = shared.lock();
                let email = &mut state.email;
                email.config = None;
                email.last_verify = None;
                email.auth_failures = 0;
                ApiResponse::no_content()
            }
            _ => not_allowed(),
        },
        VERIFY if method == Method::PUT => set_verify(shared, request),
        DATA_CONNECTIONS | AUTOMATION_CONNECTIONS | AUTOMATIONS | VERIFY => not_allowed(),
        _ => match (
            item(DATA_CONNECTIONS),
            item(AUTOMATION_CONNECTIONS),
            item(AUTOMATIONS),
            check,
        ) {
            (Some(id), ..) if method == Method::GET => data_connection(shared, id),
            (_, Some(id), ..) if method == Method::GET => automation_connection(shared, id),
            (_, _, Some(id), _) if method == Method::GET => automation(shared, id),
            (.., Some(id)) if method == Method::PUT => set_check(shared, request, id),
            (None, None, None, None) => return None,
            _ => not_allowed(),
        },
    })
}

pub(super) fn parse<'a, T: Deserialize<'a>>(request: &'a ApiRequest) -> Result<T, ApiResponse> {
    serde_json::from_slice(&request.body)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("invalid body: {e}")))
}

pub(super) fn not_found(what: &str, id: &str) -> ApiResponse {
    error(StatusCode::NOT_FOUND, format!("no {what} with id {id:?}"))
}

pub(super) fn expose(secret: &Option<Secret>) -> Value {
    json!(secret.as_ref().map(Secret::expose))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct EmailConfigSeed {
    username: Option<String>,
    password: Option<String>,
    #[serde(default = "default_email_address")]
    email_address: String,
    #[serde(default = "default_server_address")]
    server_address: String,
    #[serde(default = "default_server_port")]
    server_port: u16,
    #[serde(default = "default_security_type")]
    security_type: String,
    sender_name: Option<String>,
}

fn default_email_address() -> String {
    "noreply@example.com".to_owned()
}

fn default_server_address() -> String {
    "smtp.example.com".to_owned()
}

fn default_server_port() -> u16 {
    587
}

fn default_security_type() -> String {
    "StartTLS".to_owned()
}

fn put_email_config(shared: &Shared, request: &ApiRequest) -> ApiResponse {
    let seed: EmailConfigSeed = match parse(request) {
        Ok(seed) => seed,
        Err(response) => return response,
    };
    if seed.server_port == 0 {
        return error(
            StatusCode::BAD_REQUEST,
            "serverPort must be at least 1".to_owned(),
        );
    }
    let mut state = shared.lock();
    let now = state.now();
    let email = &mut state.email;
    email.config = Some(EmailConfig {
        username: seed.username,
        email_address: Some(seed.email_address),
        server_address: Some(seed.server_address),
        server_port: Some(seed.server_port),
        security_type: Some(seed.security_type),
        sender_name: seed.sender_name,
        password: seed.password.map(Secret::new),
        modified: Some(now),
        credential_writes: 0,
    });
    email.last_verify = None;
    email.auth_failures = 0;
    ApiResponse::no_content()
}

fn email_config(shared: &Shared) -> ApiResponse {
    let state = shared.lock();
    let Some(c) = &state.email.config else {
        return error(
            StatusCode::NOT_FOUND,
            "the tenant has no email configuration".to_owned(),
        );
    };
    ApiResponse::json(
        StatusCode::OK,
        json!({
            "username": c.username,
            "password": expose(&c.password),
            "emailAddress": c.email_address,
            "serverAddress": c.server_address,
            "serverPort": c.server_port,
            "securityType": c.security_type,
            "senderName": c.sender_name,
            "credentialWrites": c.credential_writes,
        }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct VerifySeed {
    success: bool,
    message: Option<String>,
    smtp_response_code: Option<i64>,
    #[serde(default)]
    connection_failed: bool,
}

fn set_verify(shared: &Shared, request: &ApiRequest) -> ApiResponse {
    let seed: VerifySeed = match parse(request) {
        Ok(seed) => seed,
        Err(response) => return response,
    };
    let outcome = if seed.success {
        VerifyOutcome {
            message: seed.message,
            smtp_response_code: seed.smtp_response_code.or(Some(250)),
            ..VerifyOutcome::success()
        }
    } else {
        let code = seed
            .smtp_response_code
            .or((!seed.connection_failed).then_some(535));
        let message = seed
            .message
            .unwrap_or_else(|| match seed.connection_failed {
                true => "connect ECONNREFUSED".to_owned(),
                false => "535 5.7.8 Authentication credentials invalid".to_owned(),
            });
        VerifyOutcome {
            success: false,
            message: Some(message),
            smtp_response_code: code,
            connection_failed: seed.connection_failed,
        }
    };
    shared.lock().email.verify = outcome;
    ApiResponse::no_content()
}

/// The members of an automation seed beyond `AutomationDetailRequestObject`'s.
const AUTOMATION_EXTRAS: [&str; 2] = ["state", "lastRunStatus"];
const AUTOMATION_FIELDS: [&str; 6] = [
    "name",
    "description",
    "spaceId",
    "workspace",
    "schedules",
    "maxConcurrentRuns",
];

fn add_automation(shared: &Shared, request: &ApiRequest) -> ApiResponse {
    let mut body: Map<String, Value> = match parse(request) {
        Ok(body) => body,
        Err(response) => return response,
    };
    if let Some(key) = body.keys().find(|k| {
        !AUTOMATION_FIELDS.contains(&k.as_str()) && !AUTOMATION_EXTRAS.contains(&k.as_str())
    }) {
        return error(StatusCode::BAD_REQUEST, format!("unknown field {key:?}"));
    }
    let mut text = |name: &str| match body.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(error(
            StatusCode::BAD_REQUEST,
            format!("{name} must be a string"),
        )),
    };
    let (seeded_state, last_run_status) = match (text("state"), text("lastRunStatus")) {
        (Ok(state), Ok(status)) => (state.unwrap_or_else(|| "available".to_owned()), status),
        (Err(response), _) | (_, Err(response)) => return response,
    };
    let Some(seeded_state) = STATES.into_iter().find(|s| *s == seeded_state) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("state must be one of {STATES:?}"),
        );
    };
    if last_run_status
        .as_deref()
        .is_some_and(|s| !RUN_STATUSES.contains(&s))
    {
        return error(
            StatusCode::BAD_REQUEST,
            format!("lastRunStatus must be one of {RUN_STATUSES:?}"),
        );
    }
    if !matches!(body.get("name"), Some(Value::String(n)) if !n.is_empty()) {
        return error(StatusCode::BAD_REQUEST, "name is required".to_owned());
    }
    let mut state = shared.lock();
    let now = state.now();
    let owner = state.settings.admin_user_id.clone();
    let mut automation = match automations::build(&mut state, &body, &owner, now) {
        Ok(automation) => automation,
        Err(e) => {
            return error(StatusCode::BAD_REQUEST, e.detail.unwrap_or(e.title));
        }
    };
    automation.state = seeded_state;
    automation.last_run_at = last_run_status.as_ref().map(|_| now);
    automation.last_run_status = last_run_status;
    let reply = json!({ "id": automation.id, "executionToken": automation.execution_token });
    state
        .automations
        .by_id
        .insert(automation.id.clone(), automation);
    ApiResponse::json(StatusCode::CREATED, reply)
}

fn automation(shared: &Shared, id: &str) -> ApiResponse {
    let state = shared.lock();
    let Some(a) = state.automations.by_id.get(id) else {
        return not_found("automation", id);
    };
    ApiResponse::json(
        StatusCode::OK,
        json!({
            "id": a.id,
            "name": a.name,
            "state": a.state,
            "executionToken": a.execution_token,
            "ownerId": a.owner_id,
        }),
    )
}
