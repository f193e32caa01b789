//! The request pipeline of a QRS site: faults (before) → Xrfkey check → `X-Qlik-User`
//! check → route → handler → faults (after) → record. Async only for injected latency; the
//! state is locked for the synchronous parts and never across an await.
//!
//! The Xrfkey and user checks come before routing, as on a real site: a request to a path
//! the site does not serve still gets the 403 when its key is wrong.

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use hyper::StatusCode;

use super::super::dispatch::Reply;
use super::super::faults::{Action, When};
use super::super::server::Handler;
use super::super::wire::{ApiRequest, ApiResponse};
use super::api::{self, text};
use super::guard::{self, Xrfkeys};
use super::record::RecordedRequest;
use super::routes::{self, QrsOperation, RouteError};
use super::state::QrsState;
use super::{QlikUser, control, data_connections, virtual_proxies};

/// What the connections of one site share.
#[derive(Debug)]
pub struct Site {
    pub state: Mutex<QrsState>,
    pub started: Instant,
    pub default_base: String,
    pub users: Vec<QlikUser>,
    pub build_version: String,
}

impl Site {
    /// The state; a poisoned lock is taken over (see the cloud emulator's `Shared::lock`).
    pub fn lock(&self) -> MutexGuard<'_, QrsState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

impl Handler for Site {
    fn scheme(&self) -> &'static str {
        "https"
    }

    fn default_base(&self) -> &str {
        &self.default_base
    }

    fn too_large(&self, limit: usize) -> ApiResponse {
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request bodies are limited to {limit} bytes"),
        )
    }

    async fn handle(&self, request: ApiRequest) -> Reply {
        if request.path == "/_emulator" || request.path.starts_with("/_emulator/") {
            return Reply::Respond(control::handle(self, &request));
        }
        handle_api(self, request).await
    }
}

async fn handle_api(site: &Site, request: ApiRequest) -> Reply {
    let at_ms = site.elapsed_ms();
    let method = request.method.as_str().to_owned();
    let keys = Xrfkeys::collect(
        &request.query,
        request
            .headers
            .get_all("x-qlik-xrfkey")
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    let user_header = request.header("x-qlik-user").map(str::to_owned);
    let route = routes::route(&method, &request.path);
    let operation = route.as_ref().ok().map(|r| r.operation);
    let finish = |reply: Reply| {
        let (status, dropped) = match &reply {
            Reply::Respond(r) => (r.status.as_u16(), false),
            Reply::Drop => (0, true),
        };
        let name = operation.map_or("unknown", QrsOperation::name);
        tracing::info!(operation = name, status, "qrs request");
        let entry = RecordedRequest {
            method: method.clone(),
            path: request.path.clone(),
            operation: name.to_owned(),
            status,
            dropped,
            xrfkey_query: keys.query.clone(),
            xrfkey_header: keys.header.clone(),
            user: user_header.clone(),
            at_ms,
        };
        site.lock().record.add(operation, entry);
        reply
    };

    match take_fault(site, &method, &request.path, When::Before) {
        Some(Action::Delay(d)) => tokio::time::sleep(d).await,
        Some(Action::Respond {
            status,
            retry_after,
        }) => return finish(Reply::Respond(fault_response(status, retry_after))),
        Some(Action::Drop) => return finish(Reply::Drop),
        None => {}
    }

    let mut response = if !keys.pass() {
        text(StatusCode::FORBIDDEN, guard::XSRF_REFUSAL)
    } else {
        match guard::accepted_user(user_header.as_deref(), &site.users) {
            None => text(StatusCode::FORBIDDEN, guard::USER_REFUSAL),
            Some(user) => match route {
                Ok(route) => {
                    let id = route.id.as_deref().unwrap_or_default();
                    let mut state = site.lock();
                    process(&mut state, site, route.operation, id, &request, user)
                }
                Err(RouteError::NotFound) => text(
                    StatusCode::NOT_FOUND,
                    format!("the emulated site serves no endpoint at {}", request.path),
                ),
                Err(RouteError::MethodNotAllowed) => text(
                    StatusCode::METHOD_NOT_ALLOWED,
                    format!("{method} is not served on {}", request.path),
                ),
            },
        }
    };

    match take_fault(site, &method, &request.path, When::After) {
        Some(Action::Delay(d)) => tokio::time::sleep(d).await,
        Some(Action::Respond {
            status,
            retry_after,
        }) => response = fault_response(status, retry_after),
        Some(Action::Drop) => return finish(Reply::Drop),
        None => {}
    }
    finish(Reply::Respond(response))
}

fn process(
    state: &mut QrsState,
    site: &Site,
    operation: QrsOperation,
    id: &str,
    request: &ApiRequest,
    user: &QlikUser,
) -> ApiResponse {
    match operation {
        QrsOperation::AboutGet => api::about(&site.build_version),
        QrsOperation::VirtualProxyList => virtual_proxies::list(state, request),
        QrsOperation::VirtualProxyFull => virtual_proxies::full(state, request),
        QrsOperation::VirtualProxyCount => virtual_proxies::count(state, request),
        QrsOperation::VirtualProxyGet => virtual_proxies::get(state, id),
        QrsOperation::VirtualProxyUpdate => virtual_proxies::update(state, request, id, user),
        QrsOperation::DataConnectionFull => data_connections::full(state, request),
        QrsOperation::DataConnectionGet => data_connections::get(state, id),
        QrsOperation::DataConnectionUpdate => data_connections::update(state, request, id, user),
    }
}

fn take_fault(site: &Site, method: &str, path: &str, when: When) -> Option<Action> {
    let mut state = site.lock();
    let QrsState { faults, rng, .. } = &mut *state;
    faults.take(method, path, when, || rng.unit())
}

fn fault_response(status: u16, retry_after: Option<u64>) -> ApiResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let response = text(status, "injected by the emulator's fault rules");
    match retry_after {
        Some(secs) => response.with_header(hyper::header::RETRY_AFTER, &secs.to_string()),
        None => response,
    }
}
