//! The QRS site's control API under `/_emulator/` (on the same listener, so callers
//! present the client certificate; no Xrfkey or `X-Qlik-User`): seeding and reading back
//! virtual proxies and data connections, an administrator's edits, the request log and
//! counters, faults, reset. No I/O. Errors are `{"error": "..."}`: this API is the
//! emulator's own, not Qlik's.

use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::super::faults::{Fault, FaultSpec};
use super::super::wire::{ApiRequest, ApiResponse};
use super::data_connections::control_view;
use super::dispatch::Site;
use super::schema::{self, VIRTUAL_PROXY_CONFIG};
use super::state::{DataConnectionSeed, Edit, user_name};

/// The reference printed by `qlik-tenant-emulator qrs --help`.
pub const HELP: &str = r#"QRS ENDPOINTS (mutual TLS with the site's client certificate; every request needs the
same 16-character [0-9A-Za-z] key in the xrfkey query parameter and the X-Qlik-Xrfkey
header, else 403 "XSRF prevention check failed. Possible XSRF discovered.", and
X-Qlik-User: UserDirectory=<dir>; UserId=<id> naming an accepted user, else 403):
  GET   /qrs/about
  GET   /qrs/virtualproxyconfig              condensed; filter (eq ne sw ew so gt ge lt le,
  GET   /qrs/virtualproxyconfig/full         'quoted' strings, GUIDs, and/or; else 400)
  GET   /qrs/virtualproxyconfig/count
  GET   /qrs/virtualproxyconfig/{id}
  PUT   /qrs/virtualproxyconfig/{id}         the whole entity with the modifiedDate it was
                                             read with: 409 if it is not the stored one;
                                             400 for a string over its maxLength
                                             (additionalResponseHeaders: 1024), an id other
                                             than the path's, a malformed body
  GET   /qrs/dataconnection/full             filter as above
  GET   /qrs/dataconnection/{id}             password always ""
  PUT   /qrs/dataconnection/{id}             as the virtual proxy; sets username/password
  Errors are text/plain.

CONTROL API (mutual TLS; no Xrfkey; JSON, camelCase):
  POST   /_emulator/qrs/virtualproxies       {"prefix": "embed", "description"?,
          "additionalResponseHeaders"?, "websocketCrossOriginWhiteList"?: ["host"]}
                                             -> 201 {"id"}
  GET    /_emulator/qrs/virtualproxies       {"virtualProxies": [entity as stored]}
  GET    /_emulator/qrs/virtualproxies/{id}  the entity as stored
  POST   /_emulator/qrs/virtualproxies/{id}/edit  an administrator's edit in the QMC:
          {"additionalResponseHeaders"?, "websocketCrossOriginWhiteList"?,
           "modifiedByUserName"?}            -> 200 the entity (modifiedDate moves on)
  POST   /_emulator/qrs/virtualproxies/{id}/edit-after-next-read  the same edit, applied
                                             right after the next API GET of this proxy
                                             (/{id} or /full) was answered (204)
  POST   /_emulator/qrs/dataconnections      {"name", "username"?, "password"?,
          "connectionstring"?, "type"?}      -> 201 {"id"}
  GET    /_emulator/qrs/dataconnections/{id} the entity with its password and
                                             "credentialWrites" (API PUTs that carried
                                             username or password)
  GET    /_emulator/requests                 {"requests": [{"method", "path", "operation",
                                             "status", "dropped", "xrfkeyQuery",
                                             "xrfkeyHeader", "user", "atMs"}]}
  DELETE /_emulator/requests                 clear the log and the counters (204)
  GET    /_emulator/counters                 {"operations": {"virtualproxyconfig.update":
                                             {"requests", "byStatus"}, ...}, "total"}
  POST|GET|DELETE /_emulator/faults          as the cloud emulator's (method, path glob,
                                             status|drop|latency, when, times, fraction)
  POST   /_emulator/reset                    clear entities, edits, faults and the log (204)
"#;

/// A control API error: `{"error": message}`.
fn error(status: StatusCode, message: impl Into<String>) -> ApiResponse {
    ApiResponse::json(status, json!({ "error": message.into() }))
}

fn body<T: for<'de> Deserialize<'de>>(request: &ApiRequest) -> Result<T, ApiResponse> {
    serde_json::from_slice(&request.body)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("invalid body: {e}")))
}

/// Answers a request under `/_emulator/`.
pub fn handle(site: &Site, request: &ApiRequest) -> ApiResponse {
    let path = request.path.trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').skip(2).collect();
    let method = &request.method;
    let outcome = match (segments.as_slice(), method) {
        (["requests"], &Method::GET) => Ok(ApiResponse::json(
            StatusCode::OK,
            site.lock().record.requests_json(),
        )),
        (["requests"], &Method::DELETE) => {
            site.lock().record.clear();
            Ok(ApiResponse::no_content())
        }
        (["counters"], &Method::GET) => Ok(ApiResponse::json(
            StatusCode::OK,
            site.lock().record.counters_json(),
        )),
        (["faults"], &Method::POST) => add_fault(site, request),
        (["faults"], &Method::GET) => {
            let faults: Vec<Value> = site
                .lock()
                .faults
                .list()
                .into_iter()
                .map(|(id, remaining)| json!({ "id": id, "remaining": remaining }))
                .collect();
            Ok(ApiResponse::json(
                StatusCode::OK,
                json!({ "faults": faults }),
            ))
        }
        (["faults"], &Method::DELETE) => {
            site.lock().faults.clear();
            Ok(ApiResponse::no_content())
        }
        (["reset"], &Method::POST) => {
            site.lock().reset();
            Ok(ApiResponse::no_content())
        }
        (["qrs", "virtualproxies"], &Method::POST) => seed_virtual_proxy(site, request),
        (["qrs", "virtualproxies"], &Method::GET) => {
            let all: Vec<Value> = site
                .lock()
                .virtual_proxies
                .iter()
                .map(|e| Value::Object(e.fields.clone()))
                .collect();
            Ok(ApiResponse::json(
                StatusCode::OK,
                json!({ "virtualProxies": all }),
            ))
        }
        (["qrs", "virtualproxies", id], &Method::GET) => site
            .lock()
            .virtual_proxy_mut(id)
            .map(|e| ApiResponse::json(StatusCode::OK, Value::Object(e.fields.clone())))
            .ok_or_else(|| error(StatusCode::NOT_FOUND, format!("no virtual proxy {id}"))),
        (["qrs", "virtualproxies", id, "edit"], &Method::POST) => edit(site, request, id),
        (["qrs", "virtualproxies", id, "edit-after-next-read"], &Method::POST) => {
            arm_edit(site, request, id)
        }
        (["qrs", "dataconnections"], &Method::POST) => seed_data_connection(site, request),
        (["qrs", "dataconnections", id], &Method::GET) => {
            let mut state = site.lock();
            state
                .data_connection_mut(id)
                .map(|c| ApiResponse::json(StatusCode::OK, control_view(c)))
                .ok_or_else(|| error(StatusCode::NOT_FOUND, format!("no data connection {id}")))
        }
        _ => Err(error(
            StatusCode::NOT_FOUND,
            format!("no control endpoint {method} {path}; see qlik-tenant-emulator qrs --help"),
        )),
    };
    outcome.unwrap_or_else(|refused| refused)
}

fn add_fault(site: &Site, request: &ApiRequest) -> Result<ApiResponse, ApiResponse> {
    let spec: FaultSpec = body(request)?;
    let mut state = site.lock();
    let id = format!("fault-{}", state.rng.uuid());
    let fault = Fault::new(id.clone(), spec)
        .map_err(|reason| error(StatusCode::BAD_REQUEST, format!("invalid fault: {reason}")))?;
    state.faults.add(fault);
    Ok(ApiResponse::json(StatusCode::CREATED, json!({ "id": id })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct VirtualProxySeed {
    prefix: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    additional_response_headers: String,
    #[serde(default)]
    websocket_cross_origin_white_list: Vec<String>,
}

fn seed_virtual_proxy(site: &Site, request: &ApiRequest) -> Result<ApiResponse, ApiResponse> {
    let seed: VirtualProxySeed = body(request)?;
    let check = json!({
        "prefix": seed.prefix,
        "description": seed.description,
        "additionalResponseHeaders": seed.additional_response_headers,
    });
    if let Value::Object(check) = check {
        schema::merge(VIRTUAL_PROXY_CONFIG, &Map::new(), &check)
            .map_err(|reason| error(StatusCode::BAD_REQUEST, reason))?;
    }
    let by = user_name(&site.users[0]);
    let id = site.lock().seed_virtual_proxy(
        &seed.prefix,
        &seed.description,
        &seed.additional_response_headers,
        &seed.websocket_cross_origin_white_list,
        &by,
    );
    Ok(ApiResponse::json(StatusCode::CREATED, json!({ "id": id })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EditBody {
    additional_response_headers: Option<String>,
    websocket_cross_origin_white_list: Option<Vec<String>>,
    modified_by_user_name: Option<String>,
}

fn edit_of(request: &ApiRequest) -> Result<Edit, ApiResponse> {
    let body: EditBody = body(request)?;
    if body.additional_response_headers.is_none()
        && body.websocket_cross_origin_white_list.is_none()
    {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "an edit changes additionalResponseHeaders, websocketCrossOriginWhiteList or both",
        ));
    }
    Ok(Edit {
        additional_response_headers: body.additional_response_headers,
        allow_list: body.websocket_cross_origin_white_list,
        user: body.modified_by_user_name,
    })
}

fn edit(site: &Site, request: &ApiRequest, id: &str) -> Result<ApiResponse, ApiResponse> {
    let edit = edit_of(request)?;
    let mut state = site.lock();
    match state.edit_virtual_proxy(id, &edit) {
        Ok(true) => {}
        Ok(false) => {
            return Err(error(
                StatusCode::NOT_FOUND,
                format!("no virtual proxy {id}"),
            ));
        }
        Err(reason) => return Err(error(StatusCode::BAD_REQUEST, reason)),
    }
    let entity = state
        .virtual_proxy_mut(id)
        .map(|e| Value::Object(e.fields.clone()));
    Ok(ApiResponse::json(
        StatusCode::OK,
        entity.unwrap_or_default(),
    ))
}

fn arm_edit(site: &Site, request: &ApiRequest, id: &str) -> Result<ApiResponse, ApiResponse> {
    let edit = edit_of(request)?;
    let mut state = site.lock();
    let Some(entity) = state.virtual_proxy_mut(id) else {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("no virtual proxy {id}"),
        ));
    };
    // Checked now, so that the edit cannot fail when it fires.
    let mut check = Map::new();
    if let Some(headers) = &edit.additional_response_headers {
        check.insert("additionalResponseHeaders".to_owned(), json!(headers));
    }
    schema::merge(VIRTUAL_PROXY_CONFIG, &entity.fields, &check)
        .map_err(|reason| error(StatusCode::BAD_REQUEST, reason))?;
    let key = entity.id().to_ascii_lowercase();
    state.armed.insert(key, edit);
    Ok(ApiResponse::no_content())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DataConnectionBody {
    name: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    connectionstring: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

fn seed_data_connection(site: &Site, request: &ApiRequest) -> Result<ApiResponse, ApiResponse> {
    let seed: DataConnectionBody = body(request)?;
    if seed.name.is_empty() {
        return Err(error(StatusCode::BAD_REQUEST, "name must not be empty"));
    }
    let seed = DataConnectionSeed {
        connection_string: seed.connectionstring.unwrap_or_else(|| {
            format!(
                "CUSTOM CONNECT TO \"provider=QvOdbcConnectorPackage.exe;driver=postgres;host=db.example.com;port=5432;db={};\"",
                seed.name
            )
        }),
        kind: seed
            .kind
            .unwrap_or_else(|| "QvOdbcConnectorPackage.exe".to_owned()),
        name: seed.name,
        username: seed.username,
        password: seed.password,
    };
    let owner = site.users[0].clone();
    let by = user_name(&owner);
    let id = site.lock().seed_data_connection(seed, &owner, &by);
    Ok(ApiResponse::json(StatusCode::CREATED, json!({ "id": id })))
}
