//! `/api/v1/automation-connections`: list, get, PUT and `actions/check`, for the
//! automation connections whose parameters the operator pushes. No I/O: handlers take the
//! state and a buffered request.
//!
//! Choices where Qlik's behaviour is not public:
//! - Connections and their parameters are made through the control API only
//!   (`POST /_emulator/automation-connections`); a parameter is secret or not.
//! - PUT (`AutomationConnectionPutRequestObject`) renames when `name` is given and sets the
//!   value of each parameter in `params`, found by its `id` (`AutomationConnectionParamPutObject`
//!   has no name); parameters not listed keep their value, an unknown id is a 400 and
//!   nothing changes. It answers 200 with the connection, as the definition says.
//! - GET shows each parameter (`AutomationConnectionParamObject`) with its `id`, `name`,
//!   `order` and `fieldType` (`password` for secret ones, else `string`); `value` is
//!   optional there, and is left out for secret parameters: a pushed secret is never
//!   returned.
//! - `actions/check` answers `{"connected", "is_connected"}` (the definition has both
//!   spellings) with the outcome the control API set, `true` by default; `isConnected`
//!   follows it.
//! - List: `filter` (SCIM over `name`, `connectorId`, `ownerId`, `spaceId`), `sort` (the
//!   definition's enum, default `id`), `limit` (1 to 200, default 100) and `cursor`;
//!   `listAll` is accepted and ignored (every caller is a tenant admin).

use std::collections::BTreeMap;

use hyper::StatusCode;
use jiff::Timestamp;
use serde_json::{Value, json};

use super::paging::{self, SortKey};
use super::scim;
use super::state::{Secret, State};
use super::wire::{ApiRequest, ApiResponse, QlikError, optional_str, timestamp};

const PATH: &str = "/api/v1/automation-connections";
const FILTERABLE: &[&str] = &["name", "connectorId", "ownerId", "spaceId"];
const SORTABLE: &[&str] = &["id", "name", "createdAt", "updatedAt"];
/// The definition's limits for `limit`.
const MAX_LIMIT: usize = 200;
const DEFAULT_LIMIT: usize = 100;

/// An automation connection.
#[derive(Clone, Debug)]
pub struct AutomationConnection {
    pub id: String,
    pub name: String,
    pub connector_id: String,
    pub owner_id: String,
    pub space_id: Option<String>,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub params: Vec<Param>,
    /// What `actions/check` reports.
    pub connected: bool,
    /// Successful PUT requests that set parameter values.
    pub credential_writes: u64,
}

/// One parameter of an automation connection.
#[derive(Clone, Debug)]
pub struct Param {
    pub id: String,
    pub name: String,
    pub secret: bool,
    pub value: Option<Secret>,
}

/// The tenant's automation connections.
#[derive(Debug, Default)]
pub struct AutomationConnections {
    pub by_id: BTreeMap<String, AutomationConnection>,
}

fn summary_json(c: &AutomationConnection) -> Value {
    let mut object = json!({
        "id": c.id,
        "name": c.name,
        "connectorId": c.connector_id,
        "ownerId": c.owner_id,
        "createdAt": timestamp(c.created),
        "updatedAt": timestamp(c.updated),
        "isConnected": c.connected,
    });
    if let Some(space) = &c.space_id {
        object["spaceId"] = json!(space);
    }
    object
}

fn detail_json(c: &AutomationConnection) -> Value {
    let params: Vec<Value> = c
        .params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut param = json!({
                "id": p.id,
                "name": p.name,
                "order": i + 1,
                "fieldType": if p.secret { "password" } else { "string" },
                "isOptional": false,
            });
            if let (false, Some(value)) = (p.secret, &p.value) {
                param["value"] = json!(value.expose());
            }
            param
        })
        .collect();
    let mut object = summary_json(c);
    object["params"] = Value::Array(params);
    object
}

fn attribute(c: &AutomationConnection, name: &str) -> Option<Value> {
    match name {
        "name" => Some(json!(c.name)),
        "connectorId" => Some(json!(c.connector_id)),
        "ownerId" => Some(json!(c.owner_id)),
        "spaceId" => c.space_id.as_ref().map(|s| json!(s)),
        _ => None,
    }
}

/// `GET /api/v1/automation-connections`.
pub fn list(state: &State, request: &ApiRequest) -> Result<ApiResponse, QlikError> {
    let limit = paging::limit_up_to(request, MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT);
    let (sort, field, descending) = paging::sort(request, SORTABLE, "id")?;
    let filter = match request.query_param("filter") {
        Some(text) => Some(scim::parse(text, FILTERABLE).map_err(QlikError::bad_request)?),
        None => None,
    };
    let position = paging::position(request, "cursor", sort)?;
    let key_of = |c: &AutomationConnection| -> SortKey {
        let value = match field {
            "name" => c.name.clone(),
            "createdAt" => timestamp(c.created),
            "updatedAt" => timestamp(c.updated),
            _ => c.id.clone(),
        };
        (value, c.id.clone())
    };
    let items: Vec<(SortKey, &AutomationConnection)> = state
        .automation_connections
        .by_id
        .values()
        .filter(|c| {
            filter
                .as_ref()
                .is_none_or(|f| f.matches(&|a| attribute(c, a)))
        })
        .map(|c| (key_of(c), c))
        .collect();
    let page = paging::paginate(items, descending, &position, limit);
    let (next, prev) = paging::cursor_links(request, PATH, "cursor", sort, &page);
    let data: Vec<Value> = page.items.iter().map(|(_, c)| summary_json(c)).collect();
    Ok(ApiResponse::json(
        StatusCode::OK,
        json!({ "data": data, "links": paging::nullable_links(next, prev) }),
    ))
}

fn find<'a>(state: &'a State, id: &str) -> Result<&'a AutomationConnection, QlikError> {
    state
        .automation_connections
        .by_id
        .get(id)
        .ok_or_else(|| QlikError::not_found(format!("no automation connection {id:?}")))
}

/// `GET /api/v1/automation-connections/{id}`.
pub fn get(state: &State, id: &str) -> Result<ApiResponse, QlikError> {
    Ok(ApiResponse::json(
        StatusCode::OK,
        detail_json(find(state, id)?),
    ))
}

/// `PUT /api/v1/automation-connections/{id}`.
pub fn put(
    state: &mut State,
    request: &ApiRequest,
    id: &str,
    now: Timestamp,
) -> Result<ApiResponse, QlikError> {
    let connection = find(state, id)?;
    let body = request.object_body()?;
    let name = optional_str(&body, "name")?.map(str::to_owned);
    if name.as_deref() == Some("") {
        return Err(QlikError::bad_request("name must not be empty"));
    }
    let mut values: Vec<(usize, String)> = Vec::new();
    match body.get("params") {
        None | Some(Value::Null) => {}
        Some(Value::Array(params)) => {
            for param in params {
                let object = param
                    .as_object()
                    .ok_or_else(|| QlikError::bad_request("each param must be an object"))?;
                let param_id = optional_str(object, "id")?
                    .ok_or_else(|| QlikError::bad_request("each param needs its id"))?;
                let value = optional_str(object, "value")?
                    .ok_or_else(|| QlikError::bad_request("each param needs a string value"))?;
                let index = connection
                    .params
                    .iter()
                    .position(|p| p.id == param_id)
                    .ok_or_else(|| {
                        QlikError::bad_request(format!(
                            "the connection has no parameter with id {param_id:?}"
                        ))
                    })?;
                values.push((index, value.to_owned()));
            }
        }
        Some(_) => return Err(QlikError::bad_request("params must be an array")),
    }
    let Some(connection) = state.automation_connections.by_id.get_mut(id) else {
        return Err(QlikError::not_found(format!(
            "no automation connection {id:?}"
        )));
    };
    if let Some(name) = name {
        connection.name = name;
    }
    if !values.is_empty() {
        connection.credential_writes += 1;
    }
    for (index, value) in values {
        connection.params[index].value = Some(Secret::new(value));
    }
    connection.updated = now;
    Ok(ApiResponse::json(StatusCode::OK, detail_json(connection)))
}

/// `POST /api/v1/automation-connections/{id}/actions/check`.
pub fn check(state: &State, id: &str) -> Result<ApiResponse, QlikError> {
    let connected = find(state, id)?.connected;
    Ok(ApiResponse::json(
        StatusCode::OK,
        json!({ "connected": connected, "is_connected": connected }),
    ))
}
