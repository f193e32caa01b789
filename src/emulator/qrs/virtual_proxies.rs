//! `/qrs/virtualproxyconfig`: the condensed list, the full list, the count, one proxy, and
//! its update (see `api` for the rules of an update and the errors). Pure over the state.
//!
//! A read that returns a proxy with an armed administrator's edit (the control API's
//! `edit-after-next-read`) applies that edit right after the answer is built: the answer
//! shows the state before the edit, so the caller's next `PUT` carries a stale
//! `modifiedDate`. Reads that arm this are `GET /{id}` and `GET /full`; the condensed list
//! carries no `modifiedDate` and does not.

use hyper::StatusCode;
use jiff::Timestamp;
use serde_json::Value;

use super::super::random::is_uuid;
use super::super::wire::{ApiRequest, ApiResponse};
use super::QlikUser;
use super::api::{self, not_found, text};
use super::schema::{self, NOT_CONDENSED, VIRTUAL_PROXY_CONFIG};
use super::state::{Entity, QrsState, later_than, user_name};

const KIND: &str = "virtual proxy";

fn full_view(entity: &Entity) -> Value {
    Value::Object(entity.fields.clone())
}

fn condensed_view(entity: &Entity) -> Value {
    let mut fields = entity.fields.clone();
    for name in NOT_CONDENSED {
        fields.remove(*name);
    }
    Value::Object(fields)
}

fn selected(state: &QrsState, request: &ApiRequest) -> Result<Vec<Entity>, ApiResponse> {
    let filter = api::filter(request)?;
    let filterable = schema::filterable(VIRTUAL_PROXY_CONFIG);
    Ok(
        api::select(&state.virtual_proxies, filter.as_ref(), &filterable)?
            .into_iter()
            .cloned()
            .collect(),
    )
}

/// `GET /qrs/virtualproxyconfig`: `VirtualProxyConfigCondensed[]`.
pub fn list(state: &QrsState, request: &ApiRequest) -> ApiResponse {
    match selected(state, request) {
        Ok(kept) => ApiResponse::json(
            StatusCode::OK,
            Value::Array(kept.iter().map(condensed_view).collect()),
        ),
        Err(refused) => refused,
    }
}

/// `GET /qrs/virtualproxyconfig/full`: `VirtualProxyConfig[]`.
pub fn full(state: &mut QrsState, request: &ApiRequest) -> ApiResponse {
    let kept = match selected(state, request) {
        Ok(kept) => kept,
        Err(refused) => return refused,
    };
    let response = ApiResponse::json(
        StatusCode::OK,
        Value::Array(kept.iter().map(full_view).collect()),
    );
    let read: Vec<String> = kept.iter().map(|e| e.id().to_owned()).collect();
    state.fire_armed(&read);
    response
}

/// `GET /qrs/virtualproxyconfig/count`: an integer.
pub fn count(state: &QrsState, request: &ApiRequest) -> ApiResponse {
    match selected(state, request) {
        Ok(kept) => ApiResponse::json(StatusCode::OK, Value::from(kept.len())),
        Err(refused) => refused,
    }
}

/// `GET /qrs/virtualproxyconfig/{id}`: `VirtualProxyConfig`.
pub fn get(state: &mut QrsState, id: &str) -> ApiResponse {
    let found = is_uuid(id)
        .then(|| state.virtual_proxy_mut(id).map(|e| full_view(e)))
        .flatten();
    match found {
        Some(view) => {
            state.fire_armed(&[id.to_owned()]);
            ApiResponse::json(StatusCode::OK, view)
        }
        None => not_found(KIND, id),
    }
}

/// `PUT /qrs/virtualproxyconfig/{id}`: the whole entity with the `modifiedDate` it was read
/// with; answers the stored entity.
pub fn update(
    state: &mut QrsState,
    request: &ApiRequest,
    id: &str,
    user: &QlikUser,
) -> ApiResponse {
    let Some(stored) = is_uuid(id).then(|| state.virtual_proxy_mut(id)).flatten() else {
        return not_found(KIND, id);
    };
    let body = match api::update_body(request, stored) {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    match schema::merge(VIRTUAL_PROXY_CONFIG, &stored.fields, &body) {
        Ok(merged) => {
            stored.fields = merged;
            let at = later_than(stored.modified, Timestamp::now());
            stored.touch(at, &user_name(user));
            ApiResponse::json(StatusCode::OK, full_view(stored))
        }
        Err(reason) => text(StatusCode::BAD_REQUEST, reason),
    }
}
