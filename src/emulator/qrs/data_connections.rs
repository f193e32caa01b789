//! `/qrs/dataconnection`: the full list, one connection, and its update (see `api` for the
//! rules of an update and the errors). Pure over the state.
//!
//! The password is kept apart from the entity and never returned: every answer carries
//! `"password": ""`, as Qlik's own example of a data connection shows it. An update that
//! carries `password` sets it to exactly that value (`""` included), one that omits it
//! keeps the stored password; so a client that reads a connection, changes the user name
//! and writes it back with the `""` it read clears the password: a client must always send
//! the password it means.

use hyper::StatusCode;
use jiff::Timestamp;
use serde_json::{Value, json};

use super::super::random::is_uuid;
use super::super::state::Secret;
use super::super::wire::{ApiRequest, ApiResponse};
use super::QlikUser;
use super::api::{self, not_found, text};
use super::schema::{self, DATA_CONNECTION};
use super::state::{DataConnection, QrsState, later_than, user_name};

const KIND: &str = "data connection";

/// A data connection as the API shows it: the password masked.
fn view(connection: &DataConnection) -> Value {
    let mut fields = connection.entity.fields.clone();
    fields.insert("password".to_owned(), json!(""));
    Value::Object(fields)
}

/// A data connection as the control API shows it: the password in clear, with the count of
/// credential writes.
pub fn control_view(connection: &DataConnection) -> Value {
    let mut fields = connection.entity.fields.clone();
    fields.insert("password".to_owned(), json!(connection.password.expose()));
    fields.insert(
        "credentialWrites".to_owned(),
        json!(connection.credential_writes),
    );
    Value::Object(fields)
}

/// `GET /qrs/dataconnection/full`: `DataConnection[]`.
pub fn full(state: &QrsState, request: &ApiRequest) -> ApiResponse {
    let filter = match api::filter(request) {
        Ok(filter) => filter,
        Err(refused) => return refused,
    };
    let filterable = schema::filterable(DATA_CONNECTION);
    let mut kept = Vec::new();
    for connection in &state.data_connections {
        let entities = api::select([&connection.entity], filter.as_ref(), &filterable);
        match entities {
            Ok(e) if !e.is_empty() => kept.push(view(connection)),
            Ok(_) => {}
            Err(refused) => return refused,
        }
    }
    ApiResponse::json(StatusCode::OK, Value::Array(kept))
}

/// `GET /qrs/dataconnection/{id}`: `DataConnection`.
pub fn get(state: &mut QrsState, id: &str) -> ApiResponse {
    match is_uuid(id).then(|| state.data_connection_mut(id)).flatten() {
        Some(connection) => ApiResponse::json(StatusCode::OK, view(connection)),
        None => not_found(KIND, id),
    }
}

/// `PUT /qrs/dataconnection/{id}`: the whole entity with the `modifiedDate` it was read
/// with, `username` and `password` included; answers the stored entity (password masked).
pub fn update(
    state: &mut QrsState,
    request: &ApiRequest,
    id: &str,
    user: &QlikUser,
) -> ApiResponse {
    let Some(stored) = is_uuid(id).then(|| state.data_connection_mut(id)).flatten() else {
        return not_found(KIND, id);
    };
    let body = match api::update_body(request, &stored.entity) {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let mut merged = match schema::merge(DATA_CONNECTION, &stored.entity.fields, &body) {
        Ok(merged) => merged,
        Err(reason) => return text(StatusCode::BAD_REQUEST, reason),
    };
    if let Some(Value::String(password)) = merged.remove("password") {
        stored.password = Secret::new(password);
    }
    let credentials = ["username", "password"]
        .iter()
        .any(|name| body.get(*name).is_some_and(Value::is_string));
    if credentials {
        stored.credential_writes += 1;
    }
    stored.entity.fields = merged;
    let at = later_than(stored.entity.modified, Timestamp::now());
    stored.entity.touch(at, &user_name(user));
    ApiResponse::json(StatusCode::OK, view(stored))
}
