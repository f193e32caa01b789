//! The control API's part for data and automation connections: seeding them, reading
//! back what clients pushed (secret values included: this is the test's view of the
//! server), and setting what `actions/check` answers. Routed by [`super::seeding`]. No I/O.

use hyper::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::automation_connections::{AutomationConnection, Param};
use super::control::error;
use super::data_connections::DataConnection;
use super::dispatch::Shared;
use super::seeding::{expose, not_found, parse};
use super::state::Secret;
use super::wire::{ApiRequest, ApiResponse};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DataConnectionSeed {
    name: String,
    #[serde(rename = "type", default = "default_type")]
    q_type: String,
    connect_statement: Option<String>,
    #[serde(rename = "datasourceID")]
    datasource_id: Option<String>,
    space_id: Option<String>,
    username: Option<String>,
    password: Option<String>,
    connection_secret: Option<String>,
    #[serde(default, rename = "interactiveOAuth")]
    interactive_oauth: bool,
}

fn default_type() -> String {
    "postgres".to_owned()
}

pub fn add_data_connection(shared: &Shared, request: &ApiRequest) -> ApiResponse {
    let seed: DataConnectionSeed = match parse(request) {
        Ok(seed) => seed,
        Err(response) => return response,
    };
    let mut state = shared.lock();
    if seed.name.is_empty() || state.data_connections.named(&seed.name, None).is_some() {
        return error(
            StatusCode::BAD_REQUEST,
            format!("the name {:?} is empty or taken", seed.name),
        );
    }
    let now = state.now();
    let id = state.rng.uuid();
    let seq = state.data_connections.next_seq();
    let connection = DataConnection {
        id: id.clone(),
        seq,
        connect_statement: seed.connect_statement.unwrap_or_else(|| {
            format!(
                "CUSTOM CONNECT TO \"provider={};host=emulated\"",
                seed.q_type
            )
        }),
        name: seed.name,
        q_type: seed.q_type,
        datasource_id: seed.datasource_id,
        space: seed.space_id,
        owner: state.settings.admin_user_id.clone(),
        created: now,
        updated: now,
        username: seed.username,
        password: seed.password.map(Secret::new),
        connection_secret: seed.connection_secret.map(Secret::new),
        interactive_oauth: seed.interactive_oauth,
        credential_writes: 0,
    };
    state.data_connections.by_id.insert(id.clone(), connection);
    ApiResponse::json(StatusCode::CREATED, json!({ "id": id }))
}

pub fn data_connection(shared: &Shared, id: &str) -> ApiResponse {
    let state = shared.lock();
    let Some(c) = state.data_connections.by_id.get(id) else {
        return not_found("data connection", id);
    };
    ApiResponse::json(
        StatusCode::OK,
        json!({
            "id": c.id,
            "name": c.name,
            "username": c.username,
            "password": expose(&c.password),
            "connectionSecret": expose(&c.connection_secret),
            "interactiveOAuth": c.interactive_oauth,
            "credentialWrites": c.credential_writes,
        }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AutomationConnectionSeed {
    name: String,
    connector_id: Option<String>,
    space_id: Option<String>,
    #[serde(default)]
    params: Vec<ParamSeed>,
    #[serde(default = "yes")]
    connected: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamSeed {
    name: String,
    value: Option<String>,
    #[serde(default)]
    secret: bool,
}

fn yes() -> bool {
    true
}

pub fn add_automation_connection(shared: &Shared, request: &ApiRequest) -> ApiResponse {
    let seed: AutomationConnectionSeed = match parse(request) {
        Ok(seed) => seed,
        Err(response) => return response,
    };
    let mut names: Vec<&str> = seed.params.iter().map(|p| p.name.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) || names.contains(&"") {
        return error(
            StatusCode::BAD_REQUEST,
            "parameter names must be non-empty and unique".to_owned(),
        );
    }
    let mut state = shared.lock();
    let now = state.now();
    let id = state.rng.uuid();
    let params: Vec<Param> = seed
        .params
        .into_iter()
        .map(|p| Param {
            id: state.rng.uuid(),
            name: p.name,
            secret: p.secret,
            value: p.value.map(Secret::new),
        })
        .collect();
    let ids: Vec<Value> = params
        .iter()
        .map(|p| json!({ "id": p.id, "name": p.name }))
        .collect();
    let connection = AutomationConnection {
        id: id.clone(),
        name: seed.name,
        connector_id: seed.connector_id.unwrap_or_else(|| state.rng.uuid()),
        owner_id: state.settings.admin_user_id.clone(),
        space_id: seed.space_id,
        created: now,
        updated: now,
        params,
        connected: seed.connected,
        credential_writes: 0,
    };
    state
        .automation_connections
        .by_id
        .insert(id.clone(), connection);
    ApiResponse::json(StatusCode::CREATED, json!({ "id": id, "params": ids }))
}

pub fn automation_connection(shared: &Shared, id: &str) -> ApiResponse {
    let state = shared.lock();
    let Some(c) = state.automation_connections.by_id.get(id) else {
        return not_found("automation connection", id);
    };
    let params: Vec<Value> = c
        .params
        .iter()
        .map(|p| json!({"id": p.id, "name": p.name, "secret": p.secret, "value": expose(&p.value)}))
        .collect();
    ApiResponse::json(
        StatusCode::OK,
        json!({
            "id": c.id,
            "name": c.name,
            "connected": c.connected,
            "credentialWrites": c.credential_writes,
            "params": params,
        }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckOutcome {
    connected: bool,
}

pub fn set_check(shared: &Shared, request: &ApiRequest, id: &str) -> ApiResponse {
    let outcome: CheckOutcome = match parse(request) {
        Ok(outcome) => outcome,
        Err(response) => return response,
    };
    match shared.lock().automation_connections.by_id.get_mut(id) {
        Some(c) => {
            c.connected = outcome.connected;
            ApiResponse::no_content()
        }
        None => not_found("automation connection", id),
    }
}
