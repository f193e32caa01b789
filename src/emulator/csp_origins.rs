//! `/api/v1/csp-origins`: list, get, create, update (PUT), delete and
//! `actions/generate-header`. No I/O: handlers take the state and a buffered request.
//!
//! Choices where Qlik's behaviour is not public:
//! - Origins are validated with [`Origin::parse`] (the operator's own rules); Qlik's exact
//!   validation is not published, so the emulator may refuse origins Qlik accepts.
//! - Two entries may not share an origin (compared case-insensitively): 400
//!   `CSP-ORIGINS-DUPLICATE`. This makes "adopt the existing entry" observable in tests.
//! - The 257th entry is refused with 400 `CSP-ORIGINS-LIMIT`, and an entry that would make
//!   the compiled header longer than 6,144 characters with 400
//!   `CSP-ORIGINS-HEADER-TOO-LONG`: the definition lists no 409 for these operations.
//! - The header is compiled by [`crate::csp::header::compile`] over
//!   [`crate::csp::header::tenant_base`]: Qlik's own algorithm is not public. The control
//!   API can replace it with any string (`PUT /_emulator/generated-header`), to play a
//!   tenant whose header is broken or hostile.
//! - Default order (no `sort`): creation order. `name` and `origin` filters match
//!   case-insensitively, exactly unless they contain `*` (any run of characters).

use std::collections::BTreeSet;

use hyper::StatusCode;
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::faults::glob_match;
use super::paging::{self, Cursor, Position, SortKey};
use super::state::{CspEntry, State};
use super::wire::{ApiRequest, ApiResponse, QlikError, codes, timestamp};
use crate::csp::header::{self, Grant, HeaderError};
use crate::csp::{Directive, Origin};

const PATH: &str = "/api/v1/csp-origins";
const SORTS: [&str; 8] = [
    "name",
    "-name",
    "origin",
    "-origin",
    "createdDate",
    "-createdDate",
    "modifiedDate",
    "-modifiedDate",
];
const WEB_SOCKET_FIELD: &str = "connectSrcWSS";

/// The JSON of an entry (Qlik's `CSPEntry`).
pub fn entry_json(entry: &CspEntry) -> Value {
    let mut object = Map::new();
    object.insert("id".into(), json!(entry.id));
    object.insert("name".into(), json!(entry.name));
    object.insert("origin".into(), json!(entry.origin.as_str()));
    object.insert("description".into(), json!(entry.description));
    for directive in Directive::ALL {
        object.insert(
            directive.qlik_field().into(),
            json!(entry.directives.contains(&directive)),
        );
    }
    object.insert(WEB_SOCKET_FIELD.into(), json!(entry.web_socket));
    object.insert("createdDate".into(), json!(timestamp(entry.created)));
    object.insert("modifiedDate".into(), json!(timestamp(entry.modified)));
    Value::Object(object)
}

/// `GET /api/v1/csp-origins`.
pub fn list(state: &State, request: &ApiRequest) -> Result<ApiResponse, QlikError> {
    let limit = paging::limit(request)?;
    let sort = request.query_param("sort").unwrap_or("");
    if !sort.is_empty() && !SORTS.contains(&sort) {
        return Err(QlikError::bad_request(format!(
            "sort must be one of {}",
            SORTS.join(", ")
        )));
    }
    let filter = Filter::from_request(request)?;
    let position = match (request.query_param("next"), request.query_param("prev")) {
        (Some(_), Some(_)) => {
            return Err(QlikError::bad_request("use either next or prev, not both"));
        }
        (Some(raw), None) => Position::After(Cursor::decode(raw, sort)?.key),
        (None, Some(raw)) => Position::Before(Cursor::decode(raw, sort)?.key),
        (None, None) => Position::Start,
    };

    let descending = sort.starts_with('-');
    let items: Vec<(SortKey, &CspEntry)> = state
        .entries
        .values()
        .filter(|e| filter.matches(e))
        .map(|e| (sort_key(e, sort), e))
        .collect();
    let page = paging::paginate(items, descending, &position, limit);

    let kept: Vec<(String, String)> = request
        .query
        .iter()
        .filter(|(k, _)| k != "next" && k != "prev")
        .cloned()
        .collect();
    let link = |name: &str, key: &SortKey| {
        let mut query = kept.clone();
        let cursor = Cursor {
            sort: sort.to_owned(),
            key: key.clone(),
            before: false,
        };
        query.push((name.to_owned(), cursor.encode()));
        json!({ "href": request.url(PATH, &query) })
    };
    let mut links = Map::new();
    links.insert(
        "self".into(),
        json!({ "href": request.url(PATH, &request.query) }),
    );
    if let (true, Some((key, _))) = (page.has_next, page.items.last()) {
        links.insert("next".into(), link("next", key));
    }
    if let (true, Some((key, _))) = (page.has_prev, page.items.first()) {
        links.insert("prev".into(), link("prev", key));
    }
    let data: Vec<Value> = page.items.iter().map(|(_, e)| entry_json(e)).collect();
    Ok(ApiResponse::json(
        StatusCode::OK,
        json!({ "data": data, "links": links }),
    ))
}

/// `GET /api/v1/csp-origins/{id}`.
pub fn get(state: &State, id: &str) -> Result<ApiResponse, QlikError> {
    let entry = state.entries.get(id).ok_or_else(|| not_found(id))?;
    Ok(ApiResponse::json(StatusCode::OK, entry_json(entry)))
}

/// `POST /api/v1/csp-origins`.
pub fn create(
    state: &mut State,
    request: &ApiRequest,
    now: Timestamp,
) -> Result<ApiResponse, QlikError> {
    let content = Content::parse(&request.json_body()?)?;
    if state.entries.len() >= state.settings.max_csp_entries {
        return Err(QlikError::bad_request(format!(
            "the tenant already has the maximum of {} CSP entries",
            state.settings.max_csp_entries
        ))
        .with_code(codes::CSP_ENTRY_LIMIT));
    }
    check_unique_origin(state, &content.origin, None)?;
    let id = state.new_id();
    let entry = content.into_entry(id.clone(), now, now);
    check_header(state, &entry)?;
    let body = entry_json(&entry);
    state.entries.insert(id, entry);
    Ok(ApiResponse::json(StatusCode::CREATED, body))
}

/// `PUT /api/v1/csp-origins/{id}`: replaces the whole entry (fields left out become empty
/// or `false`).
pub fn update(
    state: &mut State,
    request: &ApiRequest,
    id: &str,
    now: Timestamp,
) -> Result<ApiResponse, QlikError> {
    let created = state.entries.get(id).ok_or_else(|| not_found(id))?.created;
    let content = Content::parse(&request.json_body()?)?;
    check_unique_origin(state, &content.origin, Some(id))?;
    let entry = content.into_entry(id.to_owned(), created, now);
    check_header(state, &entry)?;
    let body = entry_json(&entry);
    state.entries.insert(id.to_owned(), entry);
    Ok(ApiResponse::json(StatusCode::OK, body))
}

/// `DELETE /api/v1/csp-origins/{id}`.
pub fn delete(state: &mut State, id: &str) -> Result<ApiResponse, QlikError> {
    state.entries.remove(id).ok_or_else(|| not_found(id))?;
    Ok(ApiResponse::no_content())
}

/// `GET /api/v1/csp-origins/actions/generate-header`: JSON by default, plain text when
/// the client accepts only `text/plain`, 406 when it accepts neither.
pub fn generate_header(state: &State, request: &ApiRequest) -> Result<ApiResponse, QlikError> {
    let accept = request.header("accept").unwrap_or("").to_ascii_lowercase();
    let wants = |t: &str| accept.split(',').any(|part| part.trim().starts_with(t));
    let json =
        accept.is_empty() || wants("application/json") || wants("*/*") || wants("application/*");
    let text = wants("text/plain") || wants("text/*");
    if !json && !text {
        return Err(QlikError::status(StatusCode::NOT_ACCEPTABLE)
            .with_detail("the header is available as application/json or text/plain"));
    }
    let value = match &state.generated_header {
        Some(overridden) => overridden.clone(),
        None => {
            let grants: Vec<Grant> = state.entries.values().map(grant).collect();
            header::compile(&header::tenant_base(), &grants)
                .map_err(|e| QlikError::internal(format!("failed to compile the header: {e}")))?
                .into_string()
        }
    };
    if json {
        Ok(ApiResponse::json(
            StatusCode::OK,
            json!({ "Content-Security-Policy": value }),
        ))
    } else {
        Ok(ApiResponse::text(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            value,
        ))
    }
}

fn grant(entry: &CspEntry) -> Grant {
    Grant {
        origin: entry.origin.clone(),
        directives: entry.directives.clone(),
        allow_web_socket: entry.web_socket,
    }
}

fn not_found(id: &str) -> QlikError {
    QlikError::not_found(format!("no CSP entry with id {id:?}"))
}

fn sort_key(entry: &CspEntry, sort: &str) -> SortKey {
    let value = match sort.trim_start_matches('-') {
        "name" => entry.name.clone(),
        "origin" => entry.origin.as_str().to_owned(),
        "modifiedDate" => timestamp(entry.modified),
        // Ids increase in creation order, so they order by createdDate exactly.
        _ => entry.id.clone(),
    };
    (value, entry.id.clone())
}

fn check_unique_origin(
    state: &State,
    origin: &Origin,
    except: Option<&str>,
) -> Result<(), QlikError> {
    let taken = state.entries.values().any(|e| {
        Some(e.id.as_str()) != except && e.origin.as_str().eq_ignore_ascii_case(origin.as_str())
    });
    if taken {
        return Err(QlikError::bad_request(format!(
            "a CSP entry for origin {} already exists",
            origin.as_str()
        ))
        .with_code(codes::CSP_DUPLICATE_ORIGIN));
    }
    Ok(())
}

/// Refuses a change that would make the tenant's header invalid (in practice: too long).
fn check_header(state: &State, changed: &CspEntry) -> Result<(), QlikError> {
    let grants: Vec<Grant> = state
        .entries
        .values()
        .filter(|e| e.id != changed.id)
        .chain(std::iter::once(changed))
        .map(grant)
        .collect();
    match header::compile(&header::tenant_base(), &grants) {
        Ok(_) => Ok(()),
        Err(e @ HeaderError::TooLong { .. }) => Err(QlikError::bad_request(format!(
            "the change would make the CSP header too long: {e}"
        ))
        .with_code(codes::CSP_HEADER_TOO_LONG)),
        Err(e) => Err(QlikError::bad_request(format!(
            "the change would make the CSP header invalid: {e}"
        ))),
    }
}

/// The writable fields of an entry (Qlik's `CSPEntryContent`).
struct Content {
    name: String,
    origin: Origin,
    description: String,
    directives: BTreeSet<Directive>,
    web_socket: bool,
}

impl Content {
    fn parse(body: &Value) -> Result<Content, QlikError> {
        let object = body
            .as_object()
            .ok_or_else(|| QlikError::bad_request("the request body must be a JSON object"))?;
        let text = |field: &str, max: usize| -> Result<String, QlikError> {
            match object.get(field) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) if s.chars().count() <= max => Ok(s.clone()),
                Some(Value::String(_)) => Err(QlikError::bad_request(format!(
                    "{field} must be at most {max} characters"
                ))),
                Some(_) => Err(QlikError::bad_request(format!("{field} must be a string"))),
            }
        };
        let flag = |field: &str| -> Result<bool, QlikError> {
            match object.get(field) {
                None | Some(Value::Null) => Ok(false),
                Some(Value::Bool(b)) => Ok(*b),
                Some(_) => Err(QlikError::bad_request(format!("{field} must be a boolean"))),
            }
        };
        let origin = match object.get("origin") {
            Some(Value::String(s)) => Origin::parse(s)
                .map_err(|e| QlikError::bad_request(format!("invalid origin {s:?}: {e}")))?,
            Some(_) => return Err(QlikError::bad_request("origin must be a string")),
            None => return Err(QlikError::bad_request("origin is required")),
        };
        let mut directives = BTreeSet::new();
        for directive in Directive::ALL {
            if flag(directive.qlik_field())? {
                directives.insert(directive);
            }
        }
        Ok(Content {
            name: text("name", 512)?,
            origin,
            description: text("description", 1024)?,
            directives,
            web_socket: flag(WEB_SOCKET_FIELD)?,
        })
    }

    fn into_entry(self, id: String, created: Timestamp, modified: Timestamp) -> CspEntry {
        CspEntry {
            id,
            name: self.name,
            origin: self.origin,
            description: self.description,
            directives: self.directives,
            web_socket: self.web_socket,
            created,
            modified,
        }
    }
}

/// The list filters: `name`, `origin` and one boolean per directive.
struct Filter {
    name: Option<String>,
    origin: Option<String>,
    flags: Vec<(Option<Directive>, bool)>,
}

impl Filter {
    fn from_request(request: &ApiRequest) -> Result<Filter, QlikError> {
        let mut flags = Vec::new();
        let fields = Directive::ALL
            .into_iter()
            .map(|d| (Some(d), d.qlik_field()))
            .chain(std::iter::once((None, WEB_SOCKET_FIELD)));
        for (directive, field) in fields {
            match request.query_param(field) {
                None => {}
                Some("true") => flags.push((directive, true)),
                Some("false") => flags.push((directive, false)),
                Some(other) => {
                    return Err(QlikError::bad_request(format!(
                        "{field} must be true or false, got {other:?}"
                    )));
                }
            }
        }
        Ok(Filter {
            name: request.query_param("name").map(str::to_lowercase),
            origin: request.query_param("origin").map(str::to_lowercase),
            flags,
        })
    }

    fn matches(&self, entry: &CspEntry) -> bool {
        let text = |pattern: &Option<String>, value: &str| {
            pattern.as_ref().is_none_or(|p| {
                let value = value.to_lowercase();
                if p.contains('*') {
                    glob_match(p, &value)
                } else {
                    *p == value
                }
            })
        };
        text(&self.name, &entry.name)
            && text(&self.origin, entry.origin.as_str())
            && self.flags.iter().all(|(directive, wanted)| {
                let has = match directive {
                    Some(d) => entry.directives.contains(d),
                    None => entry.web_socket,
                };
                has == *wanted
            })
    }
}
