//! `/api/v1/automations`: list, create, get, delete, and `actions/copy`, `actions/enable`,
//! `actions/disable`, for the automations whose execution tokens the operator rotates. No
//! I/O: handlers take the state and a buffered request. Runs are not emulated.
//!
//! Choices where Qlik's behaviour is not public:
//! - A new automation is `available` (the schema's default; Qlik's help: "When users create
//!   automations, they are enabled by default") with a new 64-character `executionToken`.
//!   `runMode` is `scheduled` when it has schedules, else `manual`. Schedule intervals are
//!   rounded to the minute, as the definition says.
//! - The detail (`AutomationDetailResponseObject`) carries `executionToken` and `workspace`.
//!   The list leaves both out, though `AutomationListObject` declares them (optional): a
//!   client must read a token from the detail, which works whichever way Qlik lists them.
//! - List: `filter` (SCIM over `name`, `runMode`, `lastRunStatus`, `ownerId`, `spaceId`),
//!   `sort` (the definition's enum, default `id`), `limit` (1 to 200, default 100) and
//!   `cursor`; `listAll` is accepted and ignored (every caller is a tenant admin).
//! - enable sets `state` to `available`, disable to `disabled`; both answer 204.
//!
//! What `actions/copy` keeps, and why: the request is only `{name}` and the answer only
//! `{id}`, so the definitions say nothing directly. The copy keeps what a client can give
//! when it creates an automation (`AutomationDetailRequestObject`): `workspace`,
//! `description`, `spaceId`, `maxConcurrentRuns` and the schedules' `startAt`, `stopAt`,
//! `interval` and `timezone` (so `runMode` too), and takes the given `name`. What the
//! response schema marks `readOnly` is the server's own and made anew: a new `id`, a new
//! `executionToken` (the point of copying, for a rotation), new schedule ids without
//! `lastStartedAt`, `createdAt`/`updatedAt` now, no `lastRun`, `lastRunAt` or
//! `lastRunStatus` (run history does not carry over), and the caller as `ownerId` (Qlik:
//! "When a user duplicates an existing automation, they will become the owner of the
//! duplicate"). The copy is `disabled`: nothing in the definitions says so, but a copy that
//! keeps the original's schedules must not start running beside it before the caller
//! enables it, and a client that enables the copy explicitly is right whatever Qlik does.

use std::collections::BTreeMap;

use hyper::StatusCode;
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::auth::Principal;
use super::paging::{self, SortKey};
use super::scim;
use super::state::State;
use super::wire::{ApiRequest, ApiResponse, QlikError, optional_str, timestamp};

const PATH: &str = "/api/v1/automations";
const FILTERABLE: &[&str] = &["name", "runMode", "lastRunStatus", "ownerId", "spaceId"];
const SORTABLE: &[&str] = &[
    "id",
    "name",
    "runMode",
    "state",
    "createdAt",
    "updatedAt",
    "lastRunAt",
    "lastRunStatus",
    "maxConcurrentRuns",
];
const MAX_LIMIT: usize = 200;
const DEFAULT_LIMIT: usize = 100;
/// Qlik's `state` values.
pub const STATES: [&str; 3] = ["available", "unavailable", "disabled"];

/// An automation.
#[derive(Clone, Debug)]
pub struct Automation {
    pub id: String,
    pub name: String,
    pub description: String,
    pub space_id: Option<String>,
    pub owner_id: String,
    pub workspace: Value,
    pub schedules: Vec<Schedule>,
    pub max_concurrent_runs: u64,
    /// One of [`STATES`].
    pub state: &'static str,
    pub execution_token: String,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub last_run_status: Option<String>,
    pub last_run_at: Option<Timestamp>,
}

/// One schedule of an automation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub id: String,
    pub start_at: Option<String>,
    pub stop_at: Option<String>,
    pub interval: Option<i64>,
    pub timezone: Option<String>,
}

/// The tenant's automations.
#[derive(Debug, Default)]
pub struct Automations {
    pub by_id: BTreeMap<String, Automation>,
}

impl Automation {
    fn run_mode(&self) -> &'static str {
        if self.schedules.is_empty() {
            "manual"
        } else {
            "scheduled"
        }
    }

    fn summary_json(&self) -> Value {
        let mut object = json!({
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "state": self.state,
            "ownerId": self.owner_id,
            "runMode": self.run_mode(),
            "createdAt": timestamp(self.created),
            "updatedAt": timestamp(self.updated),
            "maxConcurrentRuns": self.max_concurrent_runs,
            "snippetIds": [],
            "endpointIds": [],
            "connectorIds": [],
        });
        if let Some(space) = &self.space_id {
            object["spaceId"] = json!(space);
        }
        if let Some(status) = &self.last_run_status {
            object["lastRunStatus"] = json!(status);
        }
        if let Some(at) = self.last_run_at {
            object["lastRunAt"] = json!(timestamp(at));
        }
        object
    }

    fn detail_json(&self) -> Value {
        let schedules: Vec<Value> = self
            .schedules
            .iter()
            .map(|s| {
                let mut object = json!({ "id": s.id });
                let mut put = |name: &str, value: Option<Value>| {
                    if let Some(value) = value {
                        object[name] = value;
                    }
                };
                put("startAt", s.start_at.as_ref().map(|v| json!(v)));
                put("stopAt", s.stop_at.as_ref().map(|v| json!(v)));
                put("interval", s.interval.map(|v| json!(v)));
                put("timezone", s.timezone.as_ref().map(|v| json!(v)));
                object
            })
            .collect();
        let mut object = self.summary_json();
        object["workspace"] = self.workspace.clone();
        object["schedules"] = Value::Array(schedules);
        object["executionToken"] = json!(self.execution_token);
        object
    }

    fn attribute(&self, name: &str) -> Option<Value> {
        match name {
            "name" => Some(json!(self.name)),
            "runMode" => Some(json!(self.run_mode())),
            "lastRunStatus" => self.last_run_status.as_ref().map(|s| json!(s)),
            "ownerId" => Some(json!(self.owner_id)),
            "spaceId" => self.space_id.as_ref().map(|s| json!(s)),
            _ => None,
        }
    }
}

/// Builds an available automation from an `AutomationDetailRequestObject` (also used by
/// the control API), or says what is wrong with it.
pub fn build(
    state: &mut State,
    body: &Map<String, Value>,
    owner_id: &str,
    now: Timestamp,
) -> Result<Automation, QlikError> {
    let workspace = match body.get("workspace") {
        None | Some(Value::Null) => json!({}),
        Some(workspace @ Value::Object(_)) => workspace.clone(),
        Some(_) => return Err(QlikError::bad_request("workspace must be an object")),
    };
    let max_concurrent_runs = match body.get("maxConcurrentRuns") {
        None | Some(Value::Null) => 1,
        Some(n) => n.as_u64().filter(|n| *n >= 1).ok_or_else(|| {
            QlikError::bad_request("maxConcurrentRuns must be a whole number of at least 1")
        })?,
    };
    let mut schedules = Vec::new();
    match body.get("schedules") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                let object = item
                    .as_object()
                    .ok_or_else(|| QlikError::bad_request("each schedule must be an object"))?;
                let interval = match object.get("interval") {
                    None | Some(Value::Null) => None,
                    Some(i) => {
                        let seconds = i.as_i64().filter(|s| *s > 0).ok_or_else(|| {
                            QlikError::bad_request("interval must be a positive number of seconds")
                        })?;
                        Some(((seconds + 30) / 60).max(1) * 60)
                    }
                };
                let text = |name| optional_str(object, name).map(|v| v.map(str::to_owned));
                schedules.push(Schedule {
                    id: state.rng.uuid(),
                    start_at: text("startAt")?,
                    stop_at: text("stopAt")?,
                    interval,
                    timezone: text("timezone")?,
                });
            }
        }
        Some(_) => return Err(QlikError::bad_request("schedules must be an array")),
    }
    Ok(Automation {
        id: state.rng.uuid(),
        name: optional_str(body, "name")?.unwrap_or_default().to_owned(),
        description: optional_str(body, "description")?
            .unwrap_or_default()
            .to_owned(),
        space_id: optional_str(body, "spaceId")?.map(str::to_owned),
        owner_id: owner_id.to_owned(),
        workspace,
        schedules,
        max_concurrent_runs,
        state: "available",
        execution_token: state.rng.alphanumeric(64),
        created: now,
        updated: now,
        last_run_status: None,
        last_run_at: None,
    })
}

/// `POST /api/v1/automations`.
pub fn create(
    state: &mut State,
    request: &ApiRequest,
    principal: &Principal,
    now: Timestamp,
) -> Result<ApiResponse, QlikError> {
    let body = request.object_body()?;
    let automation = build(state, &body, &principal.user_id, now)?;
    let reply = ApiResponse::json(StatusCode::CREATED, automation.detail_json());
    state
        .automations
        .by_id
        .insert(automation.id.clone(), automation);
    Ok(reply)
}

/// `GET /api/v1/automations`.
pub fn list(state: &State, request: &ApiRequest) -> Result<ApiResponse, QlikError> {
    let limit = paging::limit_up_to(request, MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT);
    let (sort, field, descending) = paging::sort(request, SORTABLE, "id")?;
    let filter = match request.query_param("filter") {
        Some(text) => Some(scim::parse(text, FILTERABLE).map_err(QlikError::bad_request)?),
        None => None,
    };
    let position = paging::position(request, "cursor", sort)?;
    let key_of = |a: &Automation| -> SortKey {
        let value = match field {
            "name" => a.name.clone(),
            "runMode" => a.run_mode().to_owned(),
            "state" => a.state.to_owned(),
            "createdAt" => timestamp(a.created),
            "updatedAt" => timestamp(a.updated),
            "lastRunAt" => a.last_run_at.map(timestamp).unwrap_or_default(),
            "lastRunStatus" => a.last_run_status.clone().unwrap_or_default(),
            "maxConcurrentRuns" => format!("{:020}", a.max_concurrent_runs),
            _ => a.id.clone(),
        };
        (value, a.id.clone())
    };
    let items: Vec<(SortKey, &Automation)> = state
        .automations
        .by_id
        .values()
        .filter(|a| {
            filter
                .as_ref()
                .is_none_or(|f| f.matches(&|n| a.attribute(n)))
        })
        .map(|a| (key_of(a), a))
        .collect();
    let page = paging::paginate(items, descending, &position, limit);
    let (next, prev) = paging::cursor_links(request, PATH, "cursor", sort, &page);
    let data: Vec<Value> = page.items.iter().map(|(_, a)| a.summary_json()).collect();
    Ok(ApiResponse::json(
        StatusCode::OK,
        json!({ "data": data, "links": paging::nullable_links(next, prev) }),
    ))
}

fn find<'a>(state: &'a mut State, id: &str) -> Result<&'a mut Automation, QlikError> {
    state
        .automations
        .by_id
        .get_mut(id)
        .ok_or_else(|| QlikError::not_found(format!("no automation {id:?}")))
}

/// `GET /api/v1/automations/{id}`.
pub fn get(state: &State, id: &str) -> Result<ApiResponse, QlikError> {
    let automation = state
        .automations
        .by_id
        .get(id)
        .ok_or_else(|| QlikError::not_found(format!("no automation {id:?}")))?;
    Ok(ApiResponse::json(StatusCode::OK, automation.detail_json()))
}

/// `DELETE /api/v1/automations/{id}`.
pub fn delete(state: &mut State, id: &str) -> Result<ApiResponse, QlikError> {
    find(state, id)?;
    state.automations.by_id.remove(id);
    Ok(ApiResponse::no_content())
}

/// `POST /api/v1/automations/{id}/actions/enable` (`enable`) or `.../disable`.
pub fn set_enabled(
    state: &mut State,
    id: &str,
    enable: bool,
    now: Timestamp,
) -> Result<ApiResponse, QlikError> {
    let automation = find(state, id)?;
    automation.state = if enable { "available" } else { "disabled" };
    automation.updated = now;
    Ok(ApiResponse::no_content())
}

/// `POST /api/v1/automations/{id}/actions/copy`: see the module doc for what it keeps.
pub fn copy(
    state: &mut State,
    request: &ApiRequest,
    id: &str,
    principal: &Principal,
    now: Timestamp,
) -> Result<ApiResponse, QlikError> {
    let source = find(state, id)?.clone();
    let body = request.object_body()?;
    let name = optional_str(&body, "name")?
        .filter(|n| !n.is_empty())
        .ok_or_else(|| QlikError::bad_request("name is required"))?;
    let schedules = source
        .schedules
        .iter()
        .map(|s| Schedule {
            id: state.rng.uuid(),
            ..s.clone()
        })
        .collect();
    let copy = Automation {
        id: state.rng.uuid(),
        name: name.to_owned(),
        owner_id: principal.user_id.clone(),
        schedules,
        state: "disabled",
        execution_token: state.rng.alphanumeric(64),
        created: now,
        updated: now,
        last_run_status: None,
        last_run_at: None,
        ..source
    };
    let reply = ApiResponse::json(StatusCode::CREATED, json!({ "id": copy.id }));
    state.automations.by_id.insert(copy.id.clone(), copy);
    Ok(reply)
}
