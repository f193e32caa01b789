//! Who am I: `/api/v1/users/me` (301) and `/api/v1/tenants/me` (302) redirect, as the
//! definitions say, to `/api/v1/users/{id}` and `/api/v1/tenants/{id}`, which are served
//! too. No I/O.

use hyper::StatusCode;
use hyper::header::LOCATION;
use serde_json::json;

use super::auth::Principal;
use super::state::State;
use super::wire::{ApiRequest, ApiResponse, QlikError, timestamp};

fn redirect(status: StatusCode, location: &str) -> ApiResponse {
    let text = format!(
        "<a href=\"{location}\">{}</a>.\n",
        status.canonical_reason().unwrap_or("Redirect")
    );
    ApiResponse::text(status, "text/html; charset=utf-8", text).with_header(LOCATION, location)
}

/// `GET /api/v1/users/me`.
pub fn users_me(request: &ApiRequest, principal: &Principal) -> ApiResponse {
    let location = request.url(&format!("/api/v1/users/{}", principal.user_id), &[]);
    redirect(StatusCode::MOVED_PERMANENTLY, &location)
}

/// `GET /api/v1/users/{userId}`.
pub fn get_user(state: &State, request: &ApiRequest, id: &str) -> Result<ApiResponse, QlikError> {
    let user = state.users.get(id).ok_or_else(|| {
        QlikError::not_found(format!("no user with id {id:?}")).with_code("USERS-7")
    })?;
    let admin = id == state.settings.admin_user_id;
    Ok(ApiResponse::json(
        StatusCode::OK,
        json!({
            "id": user.id,
            "tenantId": state.settings.tenant_id,
            "name": user.name,
            "subject": user.subject,
            "status": "active",
            "createdAt": timestamp(user.created),
            "lastUpdatedAt": timestamp(user.created),
            "assignedRoles": [{
                "id": if admin { "000000000000000000000001" } else { "000000000000000000000002" },
                "name": if admin { "TenantAdmin" } else { "Developer" },
                "type": "default",
                "level": if admin { "admin" } else { "user" },
            }],
            "links": { "self": { "href": request.url(&format!("/api/v1/users/{id}"), &[]) } },
        }),
    ))
}

/// `GET /api/v1/tenants/me`.
pub fn tenants_me(state: &State, request: &ApiRequest) -> ApiResponse {
    let location = request.url(
        &format!("/api/v1/tenants/{}", state.settings.tenant_id),
        &[],
    );
    redirect(StatusCode::FOUND, &location)
}

/// `GET /api/v1/tenants/{tenantId}`.
pub fn get_tenant(state: &State, request: &ApiRequest, id: &str) -> Result<ApiResponse, QlikError> {
    let s = &state.settings;
    if id != s.tenant_id {
        return Err(
            QlikError::not_found(format!("no tenant with id {id:?}")).with_code("TENANTS-8")
        );
    }
    Ok(ApiResponse::json(
        StatusCode::OK,
        json!({
            "id": s.tenant_id,
            "name": s.tenant_name,
            "hostnames": s.hostnames,
            "status": "active",
            "region": "local",
            "datacenter": "emulator",
            "createdByUser": s.admin_user_id,
            "links": { "self": { "href": request.url(&format!("/api/v1/tenants/{id}"), &[]) } },
        }),
    ))
}
