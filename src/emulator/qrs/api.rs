//! What the QRS endpoints share: plain-text errors, the `filter` parameter, the checks of
//! an update (id and `modifiedDate`), and `GET /qrs/about`. Pure.
//!
//! Errors are `text/plain` with a short reason (the emulator's wording; QRS's error
//! bodies are not part of its definition, which documents only the 200s):
//! - 400: a body that is not a JSON object, an `id` missing or other than the path's, a
//!   `modifiedDate` that is not a date, a property its definition refuses, an
//!   unsupported `filter`;
//! - 404: no entity with that id (or an id that is not a GUID);
//! - 409: the body's `modifiedDate` is not the stored one (Qlik's "Updating an entity":
//!   a stored `modifiedDate` more recent than the request's is a conflict). The emulator
//!   is stricter: a `modifiedDate` later than the stored one (one the client made up) and
//!   a missing one (QRS would read it as the oldest date) are conflicts too.

use hyper::StatusCode;
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::super::wire::{ApiRequest, ApiResponse};
use super::filter::Filter;
use super::state::Entity;

/// A `text/plain` answer.
pub fn text(status: StatusCode, message: impl Into<String>) -> ApiResponse {
    ApiResponse::text(status, "text/plain; charset=utf-8", message.into())
}

pub fn not_found(kind: &str, id: &str) -> ApiResponse {
    text(
        StatusCode::NOT_FOUND,
        format!("no {kind} with id {id} exists"),
    )
}

/// The request's `filter` (query parameter name in any case), if any.
pub fn filter(request: &ApiRequest) -> Result<Option<Filter>, ApiResponse> {
    let Some((_, raw)) = request
        .query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("filter"))
    else {
        return Ok(None);
    };
    if raw.trim().is_empty() {
        return Ok(None);
    }
    Filter::parse(raw)
        .map(Some)
        .map_err(|e| text(StatusCode::BAD_REQUEST, format!("unsupported filter: {e}")))
}

/// The entities among `all` that `filter` keeps.
pub fn select<'a>(
    all: impl IntoIterator<Item = &'a Entity>,
    filter: Option<&Filter>,
    filterable: &[&str],
) -> Result<Vec<&'a Entity>, ApiResponse> {
    let mut kept = Vec::new();
    for entity in all {
        let keep = match filter {
            None => true,
            Some(f) => f
                .matches(&entity.fields, filterable)
                .map_err(|e| text(StatusCode::BAD_REQUEST, format!("unsupported filter: {e}")))?,
        };
        if keep {
            kept.push(entity);
        }
    }
    Ok(kept)
}

/// The body of an update, checked against the stored entity: a JSON object whose `id`
/// is the stored one and whose `modifiedDate` equals the stored one.
pub fn update_body(
    request: &ApiRequest,
    stored: &Entity,
) -> Result<Map<String, Value>, ApiResponse> {
    let body: Map<String, Value> = match serde_json::from_slice(&request.body) {
        Ok(Value::Object(body)) => body,
        _ => {
            return Err(text(
                StatusCode::BAD_REQUEST,
                "the body must be the entity as a JSON object",
            ));
        }
    };
    match body.get("id").and_then(Value::as_str) {
        Some(id) if id.eq_ignore_ascii_case(stored.id()) => {}
        _ => {
            return Err(text(
                StatusCode::BAD_REQUEST,
                "the id in the body must be the id in the path",
            ));
        }
    }
    let sent = match body.get("modifiedDate") {
        None | Some(Value::Null) => None,
        Some(Value::String(date)) => Some(date.parse::<Timestamp>().map_err(|_| {
            text(
                StatusCode::BAD_REQUEST,
                format!("modifiedDate {date:?} is not a date"),
            )
        })?),
        Some(_) => {
            return Err(text(
                StatusCode::BAD_REQUEST,
                "modifiedDate must be a date string",
            ));
        }
    };
    let same = sent.is_some_and(|sent| sent.as_millisecond() == stored.modified.as_millisecond());
    if !same {
        return Err(text(
            StatusCode::CONFLICT,
            format!(
                "the entity was modified since the modifiedDate sent; it is now {}",
                stored.fields["modifiedDate"].as_str().unwrap_or_default()
            ),
        ));
    }
    Ok(body)
}

/// `GET /qrs/about`: a central node of a site of `build_version`, on PostgreSQL.
pub fn about(build_version: &str) -> ApiResponse {
    ApiResponse::json(
        StatusCode::OK,
        json!({
            "schemaPath": "About",
            "buildVersion": build_version,
            "buildDate": "11/14/2022 10:00:00 AM",
            "databaseProvider": "Devart.Data.PostgreSql",
            "nodeType": 1,
            "sharedPersistence": true,
            "requiresBootstrap": false,
            "singleNodeOnly": false,
        }),
    )
}
