//! `/api/v1/data-connections`: list, get, PATCH and PUT, for the connections whose
//! credentials the operator pushes. No I/O: handlers take the state and a buffered request.
//!
//! Choices where Qlik's behaviour is not public:
//! - Connections are made through the control API only (`POST /_emulator/data-connections`).
//! - `qPassword` and `qConnectionSecret` are stored, never returned. The definition says
//!   `GET /data-connections/{qID}` includes `qConnectionSecret`; the emulator leaves it out,
//!   so that a client cannot come to depend on reading a secret back. `qUsername` is not
//!   returned either: `ConnectionGet` does not declare it.
//! - PATCH (`PatchRequest`) takes `add`/`replace` (set) and `remove` (clear) on `/qName`,
//!   `/qConnectStatement`, `/qUsername`, `/qPassword` and `/qConnectionSecret`; other paths
//!   and removing a required field are a 400. All operations are checked before any applies.
//! - PUT (`ConnectionUpdate`) needs its required fields, with `qID` and `qEngineObjectID`
//!   equal to the connection's id. `qName`, `qConnectStatement` and `qType` are replaced;
//!   each of `qUsername`, `qPassword`, `qConnectionSecret` is set when present, cleared when
//!   `""` and kept when absent: the rule the definition spells out for `qConnectionSecret`.
//! - A connection that authenticates by interactive OAuth refuses credentials in PATCH or
//!   PUT with 400 `DATA-CONNECTIONS-INTERACTIVE-OAUTH`: its credentials come from the
//!   provider's consent flow (the `qlik-auth-code` header), not from a pushed password, so
//!   the body is invalid for it. 400 is the definition's "invalid data in body"; 403 there
//!   means "no access to the connection or space", which would send a client looking for
//!   a permission problem.
//! - A name another connection has is a 409, as the definition says.
//! - List: `filter` (SCIM over `qName`, `qType`, `datasourceID`, `created`, `updated`),
//!   `spaceId`, `sort` (`qName`, `qType`, `created`, `updated`, with `+`/`-`; default
//!   creation order), `caseinsensitive`, `limit` (1 to 100; everything when absent),
//!   `page` (cursor from the links) and `dataName` (the name of the `data` member; empty is
//!   the documented 400). The other parameters (datafiles, personal, owner...) are accepted
//!   and ignored: the emulator has no datafiles or personal spaces.

use std::collections::BTreeMap;

use hyper::StatusCode;
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::paging::{self, SortKey};
use super::random::is_uuid;
use super::scim;
use super::state::{Secret, State};
use super::wire::{ApiRequest, ApiResponse, QlikError, codes, optional_str, timestamp};

const PATH: &str = "/api/v1/data-connections";
const FILTERABLE: &[&str] = &["qName", "qType", "datasourceID", "created", "updated"];
const SORTABLE: &[&str] = &["qName", "qType", "created", "updated"];

/// A data connection.
#[derive(Clone, Debug)]
pub struct DataConnection {
    pub id: String,
    /// Creation order.
    pub seq: u64,
    pub name: String,
    pub q_type: String,
    pub connect_statement: String,
    pub datasource_id: Option<String>,
    pub space: Option<String>,
    pub owner: String,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub connection_secret: Option<Secret>,
    /// Authenticates by interactive OAuth: refuses pushed credentials.
    pub interactive_oauth: bool,
    /// Successful PATCH or PUT requests that set or cleared a credential field.
    pub credential_writes: u64,
}

/// The tenant's data connections.
#[derive(Debug, Default)]
pub struct DataConnections {
    pub by_id: BTreeMap<String, DataConnection>,
    next_seq: u64,
}

impl DataConnections {
    /// The next creation-order number.
    pub fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// The id of the connection named `name`, if any (other than `except`).
    pub fn named(&self, name: &str, except: Option<&str>) -> Option<&str> {
        self.by_id
            .values()
            .find(|c| c.name == name && Some(c.id.as_str()) != except)
            .map(|c| c.id.as_str())
    }
}

fn connection_json(state: &State, request: &ApiRequest, c: &DataConnection) -> Value {
    let mut object = json!({
        "qID": c.id,
        "qEngineObjectID": c.id,
        "qName": c.name,
        "qType": c.q_type,
        "qConnectStatement": c.connect_statement,
        "qLogOn": 0,
        "qArchitecture": 0,
        "qSeparateCredentials": false,
        "privileges": ["list", "read", "update", "delete"],
        "tenant": state.settings.tenant_id,
        "user": c.owner,
        "tags": [],
        "created": timestamp(c.created),
        "updated": timestamp(c.updated),
        "links": {"self": {"href": request.url(&format!("{PATH}/{}", c.id), &[])}},
    });
    if let Some(datasource) = &c.datasource_id {
        object["datasourceID"] = json!(datasource);
    }
    if let Some(space) = &c.space {
        object["space"] = json!(space);
    }
    object
}

fn attribute(c: &DataConnection, name: &str) -> Option<Value> {
    match name {
        "qName" => Some(json!(c.name)),
        "qType" => Some(json!(c.q_type)),
        "datasourceID" => c.datasource_id.as_ref().map(|d| json!(d)),
        "created" => Some(json!(timestamp(c.created))),
        "updated" => Some(json!(timestamp(c.updated))),
        _ => None,
    }
}

/// `GET /api/v1/data-connections`.
pub fn list(state: &State, request: &ApiRequest) -> Result<ApiResponse, QlikError> {
    let data_name = request.query_param("dataName").unwrap_or("data");
    if data_name.is_empty() {
        return Err(QlikError::bad_request("dataName must not be empty"));
    }
    let limit = paging::limit_up_to(request, paging::MAX_LIMIT)?;
    let (sort, field, descending) = paging::sort(request, SORTABLE, "")?;
    let fold = request.query_param("caseinsensitive") == Some("true");
    let filter = match request.query_param("filter") {
        Some(text) => Some(scim::parse(text, FILTERABLE).map_err(QlikError::bad_request)?),
        None => None,
    };
    let space = request.query_param("spaceId");
    let position = paging::position(request, "page", sort)?;

    let key_of = |c: &DataConnection| -> SortKey {
        let value = match field {
            "" => format!("{:016x}", c.seq),
            other => attribute(c, other)
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        };
        let value = if fold { value.to_lowercase() } else { value };
        (value, c.id.clone())
    };
    let items: Vec<(SortKey, &DataConnection)> = state
        .data_connections
        .by_id
        .values()
        .filter(|c| space.is_none_or(|s| c.space.as_deref() == Some(s)))
        .filter(|c| {
            filter
                .as_ref()
                .is_none_or(|f| f.matches(&|a| attribute(c, a)))
        })
        .map(|c| (key_of(c), c))
        .collect();
    let count = items.len();
    let page = paging::paginate(items, descending, &position, limit.unwrap_or(usize::MAX));
    let (next, prev) = paging::cursor_links(request, PATH, "page", sort, &page);
    let mut links = Map::new();
    links.insert(
        "self".into(),
        json!({"href": request.url(PATH, &request.query)}),
    );
    if let Some(next) = next {
        links.insert("next".into(), json!({ "href": next }));
    }
    if let Some(prev) = prev {
        links.insert("prev".into(), json!({ "href": prev }));
    }
    let data: Vec<Value> = page
        .items
        .iter()
        .map(|(_, c)| connection_json(state, request, c))
        .collect();
    let mut body = Map::new();
    body.insert(data_name.to_owned(), Value::Array(data));
    body.insert("meta".into(), json!({ "count": count }));
    body.insert("links".into(), Value::Object(links));
    Ok(ApiResponse::json(StatusCode::OK, Value::Object(body)))
}

/// The id of the connection `q_id` names: an id, or a name with `?type=connectionname`.
fn find(state: &State, request: &ApiRequest, q_id: &str) -> Result<String, QlikError> {
    let connections = &state.data_connections;
    match request.query_param("type") {
        Some("connectionname") => connections.named(q_id, None).map(str::to_owned),
        Some(other) => {
            return Err(QlikError::bad_request(format!(
                "type must be connectionname, got {other:?}"
            )));
        }
        None if !is_uuid(q_id) => {
            return Err(QlikError::bad_request(format!(
                "the qID {q_id:?} is not a valid UUID"
            )));
        }
        None => connections.by_id.get(q_id).map(|c| c.id.clone()),
    }
    .ok_or_else(|| QlikError::not_found(format!("no data connection {q_id:?}")))
}

/// `GET /api/v1/data-connections/{qID}`.
pub fn get(state: &State, request: &ApiRequest, q_id: &str) -> Result<ApiResponse, QlikError> {
    let id = find(state, request, q_id)?;
    let connection = &state.data_connections.by_id[&id];
    let mut object = connection_json(state, request, connection);
    if request.query_param("parseConnection") == Some("true") {
        object["connectionProperties"] = connection_properties(connection);
    }
    Ok(ApiResponse::json(StatusCode::OK, object))
}

/// `connectionProperties` (`parseConnection=true`): the `key=value;` pairs of the connect
/// statement. An interactive-OAuth connection also has `authCode`, the property Qlik's
/// interactive-authentication guide creates such connections with (its value, the code
/// from the browser consent, is spent: the emulator shows an empty one).
fn connection_properties(c: &DataConnection) -> Value {
    let mut properties = serde_json::Map::new();
    for pair in c.connect_statement.split(';') {
        if let Some((key, value)) = pair.split_once('=')
            && !key.trim().is_empty()
        {
            properties.insert(key.trim().to_owned(), json!(value.trim()));
        }
    }
    if c.interactive_oauth {
        properties.insert("authCode".to_owned(), json!(""));
    }
    Value::Object(properties)
}

/// A field PATCH can change, with the value to set (`None`: clear).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Change {
    Name(String),
    ConnectStatement(String),
    Type(String),
    Username(Option<String>),
    Password(Option<String>),
    ConnectionSecret(Option<String>),
}

impl Change {
    fn is_credential(&self) -> bool {
        matches!(
            self,
            Change::Username(_) | Change::Password(_) | Change::ConnectionSecret(_)
        )
    }
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
        let op = optional_str(object, "op")?.unwrap_or_default();
        let path = optional_str(object, "path")?.unwrap_or_default();
        let value = match op {
            "add" | "replace" => match object.get("value") {
                Some(Value::String(s)) => Some(s.clone()),
                _ => {
                    return Err(QlikError::bad_request(format!(
                        "{op} {path} needs a string value"
                    )));
                }
            },
            "remove" => None,
            other => {
                return Err(QlikError::bad_request(format!(
                    "op must be add, replace or remove, got {other:?}"
                )));
            }
        };
        let required = |value: Option<String>| {
            value.filter(|v| !v.is_empty()).ok_or_else(|| {
                QlikError::bad_request(format!("{path} is required and cannot be removed"))
            })
        };
        changes.push(match path {
            "/qName" => Change::Name(required(value)?),
            "/qConnectStatement" => Change::ConnectStatement(required(value)?),
            "/qUsername" => Change::Username(value),
            "/qPassword" => Change::Password(value),
            "/qConnectionSecret" => Change::ConnectionSecret(value),
            other => {
                return Err(QlikError::bad_request(format!(
                    "the emulator cannot patch {other:?}; it patches /qName, \
                     /qConnectStatement, /qUsername, /qPassword and /qConnectionSecret"
                )));
            }
        });
    }
    Ok(changes)
}

/// Checks `changes` against the connection `id`, then applies them all.
fn apply(
    state: &mut State,
    id: &str,
    changes: Vec<Change>,
    now: Timestamp,
) -> Result<(), QlikError> {
    let connection = &state.data_connections.by_id[id];
    let credentials = changes.iter().any(Change::is_credential);
    if credentials && connection.interactive_oauth {
        return Err(QlikError::bad_request(
            "this connection authenticates by interactive OAuth; its credentials cannot be set",
        )
        .with_code(codes::DATA_CONNECTION_INTERACTIVE_OAUTH));
    }
    for change in &changes {
        if let Change::Name(name) = change
            && state.data_connections.named(name, Some(id)).is_some()
        {
            return Err(QlikError::status(StatusCode::CONFLICT)
                .with_code(codes::DATA_CONNECTION_DUPLICATE_NAME)
                .with_detail(format!("a data connection named {name:?} already exists")));
        }
    }
    let Some(connection) = state.data_connections.by_id.get_mut(id) else {
        return Err(QlikError::not_found(format!("no data connection {id:?}")));
    };
    for change in changes {
        match change {
            Change::Name(v) => connection.name = v,
            Change::ConnectStatement(v) => connection.connect_statement = v,
            Change::Type(v) => connection.q_type = v,
            Change::Username(v) => connection.username = v,
            Change::Password(v) => connection.password = v.map(Secret::new),
            Change::ConnectionSecret(v) => connection.connection_secret = v.map(Secret::new),
        }
    }
    connection.updated = now;
    if credentials {
        connection.credential_writes += 1;
    }
    Ok(())
}

/// `PATCH /api/v1/data-connections/{qID}`.
pub fn patch(
    state: &mut State,
    request: &ApiRequest,
    q_id: &str,
    now: Timestamp,
) -> Result<ApiResponse, QlikError> {
    let id = find(state, request, q_id)?;
    let changes = parse_patch(&request.json_body()?)?;
    apply(state, &id, changes, now)?;
    Ok(ApiResponse::no_content())
}

/// `PUT /api/v1/data-connections/{qID}`.
pub fn put(
    state: &mut State,
    request: &ApiRequest,
    q_id: &str,
    now: Timestamp,
) -> Result<ApiResponse, QlikError> {
    let id = find(state, request, q_id)?;
    let body = request.object_body()?;
    let required = |name: &str| {
        optional_str(&body, name)?
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| QlikError::bad_request(format!("{name} is required")))
    };
    for name in ["qID", "qEngineObjectID"] {
        if required(name)? != id {
            return Err(QlikError::bad_request(format!(
                "{name} must be the id of the connection being updated"
            )));
        }
    }
    if let Some(log_on) = optional_str(&body, "qLogOn")?
        && !["0", "1", "LOG_ON_SERVICE_USER", "LOG_ON_CURRENT_USER"].contains(&log_on)
    {
        return Err(QlikError::bad_request(
            "qLogOn must be 0, 1, LOG_ON_SERVICE_USER or LOG_ON_CURRENT_USER",
        ));
    }
    let mut changes = vec![
        Change::Name(required("qName")?),
        Change::ConnectStatement(required("qConnectStatement")?),
        Change::Type(required("qType")?),
    ];
    let credential = |name: &str| -> Result<Option<Option<String>>, QlikError> {
        Ok(optional_str(&body, name)?.map(|v| Some(v.to_owned()).filter(|v| !v.is_empty())))
    };
    if let Some(v) = credential("qUsername")? {
        changes.push(Change::Username(v));
    }
    if let Some(v) = credential("qPassword")? {
        changes.push(Change::Password(v));
    }
    if let Some(v) = credential("qConnectionSecret")? {
        changes.push(Change::ConnectionSecret(v));
    }
    apply(state, &id, changes, now)?;
    Ok(ApiResponse::no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_set_clear_and_refuse_what_the_emulator_cannot_change() {
        let body = json!([
            {"op": "replace", "path": "/qPassword", "value": "s3cret"},
            {"op": "add", "path": "/qUsername", "value": "svc"},
            {"op": "remove", "path": "/qConnectionSecret"},
        ]);
        assert_eq!(
            parse_patch(&body).unwrap(),
            vec![
                Change::Password(Some("s3cret".into())),
                Change::Username(Some("svc".into())),
                Change::ConnectionSecret(None),
            ]
        );
        for bad in [
            json!({"op": "replace", "path": "/qPassword", "value": "x"}),
            json!([{"op": "move", "path": "/qPassword", "value": "x"}]),
            json!([{"op": "replace", "path": "/qPassword", "value": 5}]),
            json!([{"op": "replace", "path": "/qPassword"}]),
            json!([{"op": "remove", "path": "/qName"}]),
            json!([{"op": "replace", "path": "/qName", "value": ""}]),
            json!([{"op": "replace", "path": "/space", "value": "x"}]),
        ] {
            assert!(parse_patch(&bad).is_err(), "{bad}");
        }
    }
}
