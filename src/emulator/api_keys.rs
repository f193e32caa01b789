//! `/api/v1/api-keys`: create, get, list, delete and the tenant's key configuration. No
//! I/O: handlers take the state and a buffered request.
//!
//! Choices where Qlik's behaviour is not public:
//! - Creating a key beyond `max_keys_per_user` active keys of its subject, or with an
//!   expiry beyond `max_api_key_expiry`, is a 400 (codes `API-KEYS-LIMIT`,
//!   `API-KEYS-EXPIRY`); expired keys do not count.
//! - DELETE removes the key: a later GET is 404 and its token is refused at once.
//! - Every caller is a tenant admin and sees every key.
//! - Only `subType: user` keys are issued (SCIM `externalClient` keys are out of scope).

use hyper::StatusCode;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use super::auth::Principal;
use super::duration;
use super::paging::{self, Position, SortKey};
use super::random::fingerprint;
use super::state::{ApiKey, State};
use super::wire::{ApiRequest, ApiResponse, QlikError, codes, timestamp};

const PATH: &str = "/api/v1/api-keys";
const SORTS: [&str; 15] = [
    "createdByUser",
    "+createdByUser",
    "-createdByUser",
    "sub",
    "+sub",
    "-sub",
    "status",
    "+status",
    "-status",
    "description",
    "+description",
    "-description",
    "created",
    "+created",
    "-created",
];

fn key_json(state: &State, key: &ApiKey, now: Timestamp) -> Value {
    json!({
        "id": key.id,
        "tenantId": state.settings.tenant_id,
        "description": key.description,
        "status": key.status(now),
        "sub": key.sub,
        "subType": "user",
        "expiry": timestamp(key.expiry),
        "createdByUser": key.created_by_user,
        "created": timestamp(key.created),
        "lastUpdated": timestamp(key.created),
    })
}

/// `POST /api/v1/api-keys`: the only response that carries the token.
pub fn create(
    state: &mut State,
    request: &ApiRequest,
    principal: &Principal,
    now: Timestamp,
) -> Result<ApiResponse, QlikError> {
    let body = request.json_body()?;
    let object = body
        .as_object()
        .ok_or_else(|| QlikError::bad_request("the request body must be a JSON object"))?;
    let description = match object.get("description") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(QlikError::bad_request("description must be a string")),
        None => return Err(QlikError::bad_request("description is required")),
    };
    let max = state.settings.max_api_key_expiry_duration;
    let lifetime = match object.get("expiry") {
        None | Some(Value::Null) => max,
        Some(Value::String(s)) => {
            let lifetime = duration::parse(s).map_err(|e| QlikError::bad_request(e.to_string()))?;
            if lifetime.is_zero() {
                return Err(QlikError::bad_request("expiry must be longer than zero"));
            }
            if lifetime > max {
                return Err(QlikError::bad_request(format!(
                    "expiry {s} exceeds the tenant's max_api_key_expiry {}",
                    state.settings.max_api_key_expiry
                ))
                .with_code(codes::API_KEY_EXPIRY));
            }
            lifetime
        }
        Some(_) => {
            return Err(QlikError::bad_request(
                "expiry must be an ISO 8601 duration string",
            ));
        }
    };
    match object.get("subType") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == "user" => {}
        Some(Value::String(s)) if s == "externalClient" => {
            return Err(QlikError::bad_request(
                "the emulator does not issue externalClient (SCIM) keys",
            ));
        }
        Some(_) => {
            return Err(QlikError::bad_request(
                "subType must be user or externalClient",
            ));
        }
    }
    let sub = match object.get("sub") {
        None | Some(Value::Null) => principal.user_id.clone(),
        Some(Value::String(s)) if state.users.contains_key(s) => s.clone(),
        Some(Value::String(s)) => {
            return Err(QlikError::bad_request(format!(
                "sub {s:?} is not a user of this tenant"
            )));
        }
        Some(_) => return Err(QlikError::bad_request("sub must be a string")),
    };
    let active = state
        .api_keys
        .values()
        .filter(|k| k.sub == sub && k.status(now) == "active")
        .count();
    if active >= state.settings.max_keys_per_user as usize {
        return Err(QlikError::bad_request(format!(
            "the user already has the maximum of {} active API keys",
            state.settings.max_keys_per_user
        ))
        .with_code(codes::API_KEY_LIMIT));
    }
    let expiry = SignedDuration::try_from(lifetime)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
        .ok_or_else(|| QlikError::bad_request("expiry is too far in the future"))?;

    let token = state.rng.alphanumeric(80);
    let key = ApiKey {
        id: state.new_id(),
        sub,
        description,
        created_by_user: principal.user_id.clone(),
        created: now,
        expiry,
        token_fingerprint: fingerprint(&token),
    };
    let mut body = key_json(state, &key, now);
    body["token"] = json!(token);
    state.api_keys.insert(key.id.clone(), key);
    Ok(ApiResponse::json(StatusCode::CREATED, body))
}

/// `GET /api/v1/api-keys/{id}`.
pub fn get(state: &State, id: &str, now: Timestamp) -> Result<ApiResponse, QlikError> {
    let key = state.api_keys.get(id).ok_or_else(|| not_found(id))?;
    Ok(ApiResponse::json(StatusCode::OK, key_json(state, key, now)))
}

/// `DELETE /api/v1/api-keys/{id}`.
pub fn delete(state: &mut State, id: &str) -> Result<ApiResponse, QlikError> {
    state.api_keys.remove(id).ok_or_else(|| not_found(id))?;
    Ok(ApiResponse::no_content())
}

/// `GET /api/v1/api-keys`: filters `status`, `sub`, `createdByUser`; `sort` (default
/// `-created`); `startingAfter` / `endingBefore` an id, in list order.
pub fn list(state: &State, request: &ApiRequest, now: Timestamp) -> Result<ApiResponse, QlikError> {
    let limit = paging::limit(request)?;
    let sort = request.query_param("sort").unwrap_or("-created");
    if !SORTS.contains(&sort) {
        return Err(QlikError::bad_request(format!(
            "sort must be one of {}",
            SORTS.join(", ")
        )));
    }
    let status = request.query_param("status");
    if let Some(s) = status
        && !["active", "expired", "revoked"].contains(&s)
    {
        return Err(QlikError::bad_request(
            "status must be active, expired or revoked",
        ));
    }
    let sub = request.query_param("sub");
    let created_by = request.query_param("createdByUser");
    let field = sort.trim_start_matches(['+', '-']);
    let descending = sort.starts_with('-');
    let key_of = |key: &ApiKey| -> SortKey {
        let value = match field {
            "createdByUser" => key.created_by_user.clone(),
            "sub" => key.sub.clone(),
            "status" => key.status(now).to_owned(),
            "description" => key.description.clone(),
            // Ids increase in creation order.
            _ => key.id.clone(),
        };
        (value, key.id.clone())
    };
    let locate = |id: &str| -> Result<SortKey, QlikError> {
        match state.api_keys.get(id) {
            Some(key) => Ok(key_of(key)),
            None if field == "created" => Ok((id.to_owned(), id.to_owned())),
            None => Err(QlikError::bad_request(format!(
                "no API key with id {id:?} to page from"
            ))),
        }
    };
    let position = match (
        request.query_param("startingAfter"),
        request.query_param("endingBefore"),
    ) {
        (Some(_), Some(_)) => {
            return Err(QlikError::bad_request(
                "startingAfter cannot be used together with endingBefore",
            ));
        }
        (Some(id), None) => Position::After(locate(id)?),
        (None, Some(id)) => Position::Before(locate(id)?),
        (None, None) => Position::Start,
    };

    let items: Vec<(SortKey, &ApiKey)> = state
        .api_keys
        .values()
        .filter(|k| status.is_none_or(|s| k.status(now) == s))
        .filter(|k| sub.is_none_or(|s| k.sub == s))
        .filter(|k| created_by.is_none_or(|c| k.created_by_user == c))
        .map(|k| (key_of(k), k))
        .collect();
    let page = paging::paginate(items, descending, &position, limit);

    let kept: Vec<(String, String)> = request
        .query
        .iter()
        .filter(|(k, _)| k != "startingAfter" && k != "endingBefore")
        .cloned()
        .collect();
    let link = |param: &str, id: &str| {
        let mut query = kept.clone();
        query.push((param.to_owned(), id.to_owned()));
        json!({ "href": request.url(PATH, &query) })
    };
    let mut links = Map::new();
    links.insert(
        "self".into(),
        json!({ "href": request.url(PATH, &request.query) }),
    );
    if let (true, Some((_, key))) = (page.has_next, page.items.last()) {
        links.insert("next".into(), link("startingAfter", &key.id));
    }
    if let (true, Some((_, key))) = (page.has_prev, page.items.first()) {
        links.insert("prev".into(), link("endingBefore", &key.id));
    }
    let data: Vec<Value> = page
        .items
        .iter()
        .map(|(_, k)| key_json(state, k, now))
        .collect();
    Ok(ApiResponse::json(
        StatusCode::OK,
        json!({ "data": data, "links": links }),
    ))
}

/// `GET /api/v1/api-keys/configs/{tenantId}`.
pub fn get_config(state: &State, tenant_id: &str) -> Result<ApiResponse, QlikError> {
    if tenant_id != state.settings.tenant_id {
        return Err(QlikError::not_found(format!(
            "no tenant with id {tenant_id:?}"
        )));
    }
    Ok(ApiResponse::json(
        StatusCode::OK,
        json!({
            "max_api_key_expiry": state.settings.max_api_key_expiry,
            "max_keys_per_user": state.settings.max_keys_per_user,
            "scim_externalClient_expiry": "P365D",
        }),
    ))
}

fn not_found(id: &str) -> QlikError {
    QlikError::not_found(format!("no API key with id {id:?}"))
}
