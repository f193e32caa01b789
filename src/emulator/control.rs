//! The control API under `/_emulator/` (no auth): faults, counters, the request log, the
//! clock and reset; `seeding` serves the part for the secret targets. No I/O: it reads and
//! changes the shared state. Errors are `{"error": "..."}`: this API is the emulator's
//! own, not Qlik's.

use std::time::Duration;

use hyper::{Method, StatusCode};
use jiff::SignedDuration;
use serde::Deserialize;
use serde_json::{Value, json};

use super::dispatch::Shared;
use super::faults::{Fault, FaultSpec};
use super::seeding;
use super::wire::{ApiRequest, ApiResponse, timestamp};

/// The reference printed by `qlik-tenant-emulator --help`.
pub const HELP: &str = r#"QLIK ENDPOINTS (Authorization: Bearer <admin key | issued API key | access token>):
  GET|POST            /api/v1/csp-origins                     limit<=100, next/prev cursors
  GET|PUT|DELETE      /api/v1/csp-origins/{id}
  GET                 /api/v1/csp-origins/actions/generate-header
  GET|POST            /api/v1/api-keys                        startingAfter/endingBefore
  GET|DELETE          /api/v1/api-keys/{id}
  GET                 /api/v1/api-keys/configs/{tenantId}
  GET                 /api/v1/oauth-clients/{id}
  POST                /api/v1/oauth-clients/{id}/client-secrets
  DELETE              /api/v1/oauth-clients/{id}/client-secrets/{hint}
  POST                /oauth/token                            client_credentials, no bearer
  GET                 /api/v1/users/me (301), /api/v1/users/{userId}
  GET                 /api/v1/tenants/me (302), /api/v1/tenants/{tenantId}
  GET                 /api/v1/data-connections                filter (SCIM), spaceId, sort,
                                                              limit<=100, page, dataName
  GET|PATCH|PUT       /api/v1/data-connections/{qID}          ?type=connectionname: by name;
                                                              PATCH/PUT answer 204
  GET                 /api/v1/automation-connections          filter, sort, limit<=200, cursor
  GET|PUT             /api/v1/automation-connections/{id}     PUT params by id
  POST                /api/v1/automation-connections/{id}/actions/check
  GET|PUT|PATCH       /api/v1/transports/email-config         PUT replaces the BasicAuth
                                                              config once the verify outcome
                                                              (below) succeeds: 204, else
                                                              400 and the old config stays;
                                                              PATCH (deprecated) answers 204
  POST                /api/v1/transports/email-config/actions/verify-connection
  GET|POST            /api/v1/automations                     filter, sort, limit<=200, cursor
  GET|DELETE          /api/v1/automations/{id}
  POST                /api/v1/automations/{id}/actions/{copy|enable|disable}
  Secret values (qPassword, qConnectionSecret, secret automation connection params, the
  SMTP password) are stored and never returned by these endpoints.

CONTROL API (no authentication; JSON, camelCase; never under /api):
  POST   /_emulator/faults          add a fault rule; answers 201 {"id": "..."}
         {"method": "POST",                 optional; any method when absent
          "path": "/api/v1/csp-origins*",   glob over the path, '*' matches anything
          "fault": "latency" | "status" | "drop",
          "latencyMs": 2000,                for latency
          "status": 429,                    for status (400-599)
          "retryAfter": 3,                  seconds, sets Retry-After
          "when": "before" | "after",       default before; after = the request took
                                            effect, then the fault hits its response
          "times": 1,                       optional: only the next N matching requests
          "fraction": 0.5}                  optional: this fraction of matching requests
         In each phase the first matching rule (in the order added) applies.
  GET    /_emulator/faults          {"faults": [{"id", "remaining"}]}
  DELETE /_emulator/faults          remove every rule (204)
  GET    /_emulator/counters        {"operations": {"csp-origins.create": {"requests": n,
                                      "byStatus": {"201": n, "dropped": n}}, ...},
                                     "total": n}
                                    every operation is listed: csp-origins.{list, get,
                                    create, update, delete, generate-header},
                                    api-keys.{list, get, create, delete, get-config},
                                    oauth-clients.{get, create-secret, delete-secret},
                                    oauth.token, users.{me, get}, tenants.{me, get},
                                    data-connections.{list, get, patch, put},
                                    automation-connections.{list, get, put, check},
                                    email-config.{get, patch, put,
                                    verify-connection},
                                    automations.{list, create, get, delete, copy,
                                    enable, disable}
  GET    /_emulator/requests        {"requests": [{"method", "path", "operation",
                                      "status" (0 if dropped), "dropped", "atMs",
                                      "subject"?}]}
                                    atMs: real milliseconds from start to arrival;
                                    subject: what a create named (a csp-origin's
                                    origin, an API key's description);
                                    the latest 100000 requests, in completion order
  GET    /_emulator/clock           {"now": RFC 3339}: real time + offset; drives key and
                                    token expiry, timestamps and rate-limit windows
  POST   /_emulator/clock/advance   {"seconds": N} -> {"now": ...}
  PUT    /_emulator/generated-header {"header": "..."}: generate-header returns exactly
                                    this value (JSON or text) instead of the header compiled
                                    from the entries: a tenant that returns a broken or
                                    hostile header (204)
  GET    /_emulator/generated-header {"header": "..." | null}: the override, if any
  DELETE /_emulator/generated-header back to the compiled header (204)
  POST   /_emulator/reset           clear entries, issued keys, secrets and tokens,
                                    connections, the email configuration, automations,
                                    the check and verify outcomes, faults, counters, the
                                    log, rate windows, the clock offset and the
                                    generated-header override; seeded credentials stay
                                    valid (204)

  Seeding and reading back the secret targets (reads show secret values: they are the
  test's view of the server; "credentialWrites" counts successful API writes of
  credentials):
  POST   /_emulator/data-connections {"name": "pg", "type": "postgres",  type optional
          "username"?, "password"?, "connectionSecret"?, "connectStatement"?,
          "datasourceID"?, "spaceId"?, "interactiveOAuth": false}
                                    -> 201 {"id": "<uuid>"}; interactiveOAuth: PATCH/PUT
                                    of credentials is refused (400)
  GET    /_emulator/data-connections/{id}  {"id", "name", "username", "password",
                                    "connectionSecret", "interactiveOAuth",
                                    "credentialWrites"}
  POST   /_emulator/automation-connections {"name": "crm", "connectorId"?, "spaceId"?,
          "params": [{"name": "apiKey", "value"?: "...", "secret"?: true}],
          "connected"?: true}       -> 201 {"id", "params": [{"id", "name"}]}
  GET    /_emulator/automation-connections/{id}  {"id", "name", "connected",
                                    "credentialWrites", "params": [{"id", "name",
                                    "secret", "value"}]}
  PUT    /_emulator/automation-connections/{id}/check {"connected": false}
                                    what actions/check answers (default true) (204)
  PUT    /_emulator/email-config    {"username"?, "password"?, "emailAddress"?,
          "serverAddress"?, "serverPort"?, "securityType"?, "senderName"?}
                                    create or replace (204);
                                    defaults noreply@example.com, smtp.example.com, 587,
                                    StartTLS; the tenant starts without one
  GET    /_emulator/email-config    {"username", "password", "emailAddress",
                                    "serverAddress", "serverPort", "securityType",
                                    "senderName", "credentialWrites"}; 404 when there
                                    is none
  DELETE /_emulator/email-config    back to no configuration (204)
  PUT    /_emulator/email-config/verify {"success": false, "message"?,
          "smtpResponseCode"?, "connectionFailed"?}  what verify-connection answers
                                    and how PUT's check of the connection ends
                                    (default success; a failure defaults to 535) (204)
  POST   /_emulator/automations     {"name": "x", "state"?: "available" | "disabled" |
          "unavailable", "description"?, "spaceId"?, "workspace"?, "schedules"?:
          [{"startAt", "stopAt", "interval", "timezone"}], "maxConcurrentRuns"?,
          "lastRunStatus"?}          -> 201 {"id", "executionToken"}
  GET    /_emulator/automations/{id}  {"id", "name", "state", "executionToken", "ownerId"}
"#;

/// Answers a request under `/_emulator/`.
pub fn handle(shared: &Shared, request: &ApiRequest) -> ApiResponse {
    let path = request.path.trim_end_matches('/');
    let method = &request.method;
    match (path, method) {
        ("/_emulator/faults", &Method::POST) => add_fault(shared, request),
        ("/_emulator/faults", &Method::GET) => {
            let faults: Vec<Value> = shared
                .lock()
                .faults
                .list()
                .into_iter()
                .map(|(id, remaining)| json!({ "id": id, "remaining": remaining }))
                .collect();
            ApiResponse::json(StatusCode::OK, json!({ "faults": faults }))
        }
        ("/_emulator/faults", &Method::DELETE) => {
            shared.lock().faults.clear();
            ApiResponse::no_content()
        }
        ("/_emulator/counters", &Method::GET) => {
            ApiResponse::json(StatusCode::OK, shared.lock().record.counters_json())
        }
        ("/_emulator/requests", &Method::GET) => {
            ApiResponse::json(StatusCode::OK, shared.lock().record.requests_json())
        }
        ("/_emulator/clock", &Method::GET) => clock(shared),
        ("/_emulator/clock/advance", &Method::POST) => advance_clock(shared, request),
        ("/_emulator/reset", &Method::POST) => {
            shared.lock().reset();
            ApiResponse::no_content()
        }
        ("/_emulator/generated-header", &Method::PUT) => set_generated_header(shared, request),
        ("/_emulator/generated-header", &Method::GET) => {
            let header = shared.lock().generated_header.clone();
            ApiResponse::json(StatusCode::OK, json!({ "header": header }))
        }
        ("/_emulator/generated-header", &Method::DELETE) => {
            shared.lock().generated_header = None;
            ApiResponse::no_content()
        }
        (
            "/_emulator/faults"
            | "/_emulator/counters"
            | "/_emulator/requests"
            | "/_emulator/clock"
            | "/_emulator/clock/advance"
            | "/_emulator/reset"
            | "/_emulator/generated-header",
            _,
        ) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed here"),
        ),
        _ => seeding::handle(shared, request).unwrap_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                format!("no control endpoint at {path}; see qlik-tenant-emulator --help"),
            )
        }),
    }
}

/// A control API error: `{"error": message}`.
pub(super) fn error(status: StatusCode, message: String) -> ApiResponse {
    ApiResponse::json(status, json!({ "error": message }))
}

fn add_fault(shared: &Shared, request: &ApiRequest) -> ApiResponse {
    let spec: FaultSpec = match serde_json::from_slice(&request.body) {
        Ok(spec) => spec,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid fault: {e}")),
    };
    let mut state = shared.lock();
    let id = format!("fault-{}", state.new_id());
    match Fault::new(id.clone(), spec) {
        Ok(fault) => {
            state.faults.add(fault);
            ApiResponse::json(StatusCode::CREATED, json!({ "id": id }))
        }
        Err(reason) => error(StatusCode::BAD_REQUEST, format!("invalid fault: {reason}")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GeneratedHeader {
    header: String,
}

/// Any string is taken as it is, control characters included: the point is to play a
/// tenant whose header the operator must refuse.
fn set_generated_header(shared: &Shared, request: &ApiRequest) -> ApiResponse {
    match serde_json::from_slice::<GeneratedHeader>(&request.body) {
        Ok(GeneratedHeader { header }) => {
            shared.lock().generated_header = Some(header);
            ApiResponse::no_content()
        }
        Err(e) => error(
            StatusCode::BAD_REQUEST,
            format!("expected {{\"header\": \"...\"}}: {e}"),
        ),
    }
}

fn clock(shared: &Shared) -> ApiResponse {
    let now = shared.lock().now();
    ApiResponse::json(StatusCode::OK, json!({ "now": timestamp(now) }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    seconds: f64,
}

fn advance_clock(shared: &Shared, request: &ApiRequest) -> ApiResponse {
    let advance: Advance = match serde_json::from_slice(&request.body) {
        Ok(a) => a,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"seconds\": N}}: {e}"),
            );
        }
    };
    if !(advance.seconds.is_finite() && advance.seconds >= 0.0 && advance.seconds < 1e10) {
        return error(
            StatusCode::BAD_REQUEST,
            "seconds must be a non-negative number (the clock only moves forward)".to_owned(),
        );
    }
    let by = SignedDuration::try_from(Duration::from_secs_f64(advance.seconds))
        .unwrap_or(SignedDuration::ZERO);
    {
        let mut state = shared.lock();
        state.clock_offset = state.clock_offset.saturating_add(by);
    }
    clock(shared)
}
