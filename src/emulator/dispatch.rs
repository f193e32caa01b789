//! The request pipeline for Qlik endpoints: route → faults (before) → authenticate →
//! rate limit → handler → faults (after) → record. Async only for injected latency; the
//! state is locked for the synchronous parts and never across an await.

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use hyper::StatusCode;

use super::faults::{Action, When};
use super::record::Outcome;
use super::routes::{self, Operation, Route, RouteError};
use super::state::State;
use super::wire::{ApiRequest, ApiResponse, ErrorShape, QlikError};
use super::{
    api_keys, auth, automation_connections, automations, csp_origins, data_connections,
    email_config, identity, oauth,
};

/// What the server shares between connections.
#[derive(Debug)]
pub struct Shared {
    pub state: Mutex<State>,
    /// Real start time, for `atMs` in the request log.
    pub started: Instant,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// Base URL for links when a request has no usable `Host` header.
    pub default_base: String,
}

impl Shared {
    /// The state; a handler that panicked cannot leave it half-written in a way that
    /// matters more than stopping the emulator would, so a poisoned lock is taken over.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// How to answer.
#[derive(Debug)]
pub enum Reply {
    Respond(ApiResponse),
    /// Close the connection without a response.
    Drop,
}

/// Runs one Qlik request through the pipeline.
pub async fn handle(shared: &Shared, request: ApiRequest) -> Reply {
    let at_ms = shared.elapsed_ms();
    let method = request.method.as_str().to_owned();
    let route = routes::route(&method, &request.path);
    let operation = route.as_ref().ok().map(|r| r.operation);
    let subject = operation.and_then(|op| subject(op, &request));
    let error_shape = match &route {
        Ok(r) => r.operation.error_shape(),
        Err(RouteError::MethodNotAllowed(op)) => op.error_shape(),
        Err(RouteError::NotFound) => ErrorShape::NoStatus,
    };
    let finish = |reply: Reply| {
        let outcome = match &reply {
            Reply::Respond(r) => Outcome::Status(r.status.as_u16()),
            Reply::Drop => Outcome::Dropped,
        };
        tracing::info!(
            operation = operation.map_or("unknown", Operation::name),
            status = match outcome {
                Outcome::Status(s) => s,
                Outcome::Dropped => 0,
            },
            "request"
        );
        shared.lock().record.add(
            operation,
            &method,
            &request.path,
            outcome,
            at_ms,
            subject.clone(),
        );
        reply
    };

    match take_fault(shared, &method, &request.path, When::Before) {
        Some(Action::Delay(d)) => tokio::time::sleep(d).await,
        Some(Action::Respond {
            status,
            retry_after,
        }) => {
            return finish(Reply::Respond(fault_response(
                status,
                retry_after,
                error_shape,
            )));
        }
        Some(Action::Drop) => return finish(Reply::Drop),
        None => {}
    }

    let mut response = match &route {
        Ok(route) => {
            let mut state = shared.lock();
            process(&mut state, route, &request).unwrap_or_else(|e| e.into_response(error_shape))
        }
        Err(RouteError::NotFound) => QlikError::status(StatusCode::NOT_FOUND)
            .with_detail(format!(
                "the emulator serves no endpoint at {}",
                request.path
            ))
            .into_response(error_shape),
        Err(RouteError::MethodNotAllowed(_)) => QlikError::status(StatusCode::METHOD_NOT_ALLOWED)
            .with_detail(format!("{} is not allowed on {}", method, request.path))
            .into_response(error_shape),
    };

    match take_fault(shared, &method, &request.path, When::After) {
        Some(Action::Delay(d)) => tokio::time::sleep(d).await,
        Some(Action::Respond {
            status,
            retry_after,
        }) => response = fault_response(status, retry_after, error_shape),
        Some(Action::Drop) => return finish(Reply::Drop),
        None => {}
    }
    finish(Reply::Respond(response))
}

/// What a create names, for the request log: the origin of a csp-origin, the description
/// of an API key (which carries the operator's marker and revision). Read leniently: a
/// body the handler refuses simply has no subject.
fn subject(operation: Operation, request: &ApiRequest) -> Option<String> {
    let field = match operation {
        Operation::CspOriginsCreate => "origin",
        Operation::ApiKeysCreate => "description",
        _ => return None,
    };
    let body: serde_json::Value = serde_json::from_slice(&request.body).ok()?;
    body.get(field)?.as_str().map(str::to_owned)
}

fn take_fault(shared: &Shared, method: &str, path: &str, when: When) -> Option<Action> {
    let mut state = shared.lock();
    let State { faults, rng, .. } = &mut *state;
    faults.take(method, path, when, || rng.unit())
}

fn fault_response(status: u16, retry_after: Option<u64>, error_shape: ErrorShape) -> ApiResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let error = match retry_after {
        Some(secs) if status == StatusCode::TOO_MANY_REQUESTS => QlikError::rate_limited(secs),
        Some(secs) => QlikError {
            retry_after: Some(secs),
            ..QlikError::status(status)
        },
        None => QlikError::status(status).with_detail("injected by the emulator's fault rules"),
    };
    error.into_response(error_shape)
}

/// Authenticates, rate-limits and runs the handler of `route`.
fn process(
    state: &mut State,
    route: &Route,
    request: &ApiRequest,
) -> Result<ApiResponse, QlikError> {
    let now = state.now();
    let operation = route.operation;
    let param = |i: usize| route.params.get(i).map(String::as_str).unwrap_or_default();
    if operation == Operation::OAuthToken {
        return oauth::token(state, request, now);
    }
    let principal = auth::authenticate(state, request.header("authorization"), now)?;
    state.check_rate(&principal.user_id, operation.tier(), now)?;
    match operation {
        Operation::CspOriginsList => csp_origins::list(state, request),
        Operation::CspOriginsGet => csp_origins::get(state, param(0)),
        Operation::CspOriginsCreate => csp_origins::create(state, request, now),
        Operation::CspOriginsUpdate => csp_origins::update(state, request, param(0), now),
        Operation::CspOriginsDelete => csp_origins::delete(state, param(0)),
        Operation::CspOriginsGenerateHeader => csp_origins::generate_header(state, request),
        Operation::ApiKeysList => api_keys::list(state, request, now),
        Operation::ApiKeysGet => api_keys::get(state, param(0), now),
        Operation::ApiKeysCreate => api_keys::create(state, request, &principal, now),
        Operation::ApiKeysDelete => api_keys::delete(state, param(0)),
        Operation::ApiKeysGetConfig => api_keys::get_config(state, param(0)),
        Operation::OAuthClientsGet => oauth::get_client(state, param(0)),
        Operation::OAuthClientsCreateSecret => {
            oauth::create_secret(state, param(0), &principal, now)
        }
        Operation::OAuthClientsDeleteSecret => oauth::delete_secret(state, param(0), param(1)),
        Operation::OAuthToken => oauth::token(state, request, now),
        Operation::UsersMe => Ok(identity::users_me(request, &principal)),
        Operation::UsersGet => identity::get_user(state, request, param(0)),
        Operation::TenantsMe => Ok(identity::tenants_me(state, request)),
        Operation::TenantsGet => identity::get_tenant(state, request, param(0)),
        Operation::DataConnectionsList => data_connections::list(state, request),
        Operation::DataConnectionsGet => data_connections::get(state, request, param(0)),
        Operation::DataConnectionsPatch => data_connections::patch(state, request, param(0), now),
        Operation::DataConnectionsPut => data_connections::put(state, request, param(0), now),
        Operation::AutomationConnectionsList => automation_connections::list(state, request),
        Operation::AutomationConnectionsGet => automation_connections::get(state, param(0)),
        Operation::AutomationConnectionsPut => {
            automation_connections::put(state, request, param(0), now)
        }
        Operation::AutomationConnectionsCheck => automation_connections::check(state, param(0)),
        Operation::EmailConfigGet => Ok(email_config::get(state)),
        Operation::EmailConfigPatch => email_config::patch(state, request, now),
        Operation::EmailConfigPut => email_config::put(state, request, now),
        Operation::EmailConfigVerifyConnection => email_config::verify_connection(state),
        Operation::AutomationsList => automations::list(state, request),
        Operation::AutomationsCreate => automations::create(state, request, &principal, now),
        Operation::AutomationsGet => automations::get(state, param(0)),
        Operation::AutomationsDelete => automations::delete(state, param(0)),
        Operation::AutomationsCopy => automations::copy(state, request, param(0), &principal, now),
        Operation::AutomationsEnable => automations::set_enabled(state, param(0), true, now),
        Operation::AutomationsDisable => automations::set_enabled(state, param(0), false, now),
    }
}
