//! OAuth: reading a client, creating and deleting its secrets
//! (`/api/v1/oauth-clients/...`) and the client-credentials grant (`POST /oauth/token`).
//! No I/O: handlers take the state and a buffered request.
//!
//! Choices where Qlik's behaviour is not public:
//! - Only the clients seeded at start exist; each acts as its own bot user.
//! - A secret's hint is its last four characters; the sixth secret is a 409
//!   (`OAUTH-CLIENTS-SECRET-LIMIT`), as the definition documents.
//! - The token response also carries the standard `expires_in` (RFC 6749) next to Qlik's
//!   `expires_at`. Token requests count against the client's bot user's tier-2 window
//!   (Qlik: "limited to 100 per minute"), from the moment the client id is known, so
//!   that guessing secrets is rate-limited too.

use hyper::StatusCode;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::auth::Principal;
use super::random::fingerprint;
use super::routes::Tier;
use super::state::{AccessToken, ClientSecret, OAuthClient, State, hint_of};
use super::wire::{ApiRequest, ApiResponse, QlikError, codes, timestamp};

fn client_json(state: &State, client: &OAuthClient) -> Value {
    let secrets: Vec<Value> = client
        .secrets
        .iter()
        .map(|s| {
            json!({
                "hint": s.hint,
                "createdAt": timestamp(s.created),
                "createdBy": s.created_by,
            })
        })
        .collect();
    json!({
        "clientId": client.client_id,
        "clientName": client.client_id,
        "appType": "web",
        "description": "Machine-to-machine client seeded into the Qlik tenant emulator",
        "createdAt": timestamp(client.created),
        "ownerId": state.settings.admin_user_id,
        "createdByType": "user",
        "allowedGrantTypes": ["client_credentials"],
        "allowedScopes": ["user_default", "admin_classic"],
        "allowedAuthMethods": ["client_secret"],
        "redirectUris": [],
        "allowedOrigins": [],
        "clientSecrets": secrets,
    })
}

fn client_not_found(id: &str) -> QlikError {
    QlikError::not_found(format!("no OAuth client with id {id:?}"))
}

/// `GET /api/v1/oauth-clients/{id}`: shows the hints of the client's secrets.
pub fn get_client(state: &State, id: &str) -> Result<ApiResponse, QlikError> {
    let client = state.clients.get(id).ok_or_else(|| client_not_found(id))?;
    Ok(ApiResponse::json(
        StatusCode::OK,
        client_json(state, client),
    ))
}

/// `POST /api/v1/oauth-clients/{id}/client-secrets`: the only response with the secret.
pub fn create_secret(
    state: &mut State,
    id: &str,
    principal: &Principal,
    now: Timestamp,
) -> Result<ApiResponse, QlikError> {
    let max = state.settings.max_client_secrets;
    let existing: Vec<String> = {
        let client = state.clients.get(id).ok_or_else(|| client_not_found(id))?;
        if client.secrets.len() >= max {
            return Err(QlikError::status(StatusCode::CONFLICT)
                .with_code(codes::CLIENT_SECRET_LIMIT)
                .with_detail(format!(
                    "the client already has the maximum of {max} secrets"
                )));
        }
        client.secrets.iter().map(|s| s.hint.clone()).collect()
    };
    // Hints identify secrets for deletion, so they must be unique within the client.
    let secret = loop {
        let candidate = state.rng.alphanumeric(64);
        if !existing.contains(&hint_of(&candidate)) {
            break candidate;
        }
    };
    let record = ClientSecret {
        hint: hint_of(&secret),
        fingerprint: fingerprint(&secret),
        created: now,
        created_by: principal.user_id.clone(),
    };
    let body = json!({
        "clientId": id,
        "clientSecret": secret,
        "hint": record.hint,
        "createdAt": timestamp(now),
        "createdBy": record.created_by,
    });
    if let Some(client) = state.clients.get_mut(id) {
        client.secrets.push(record);
    }
    Ok(ApiResponse::json(StatusCode::CREATED, body))
}

/// `DELETE /api/v1/oauth-clients/{id}/client-secrets/{hint}`. Tokens already issued with
/// the secret stay valid until they expire.
pub fn delete_secret(state: &mut State, id: &str, hint: &str) -> Result<ApiResponse, QlikError> {
    let client = state
        .clients
        .get_mut(id)
        .ok_or_else(|| client_not_found(id))?;
    let before = client.secrets.len();
    client.secrets.retain(|s| s.hint != hint);
    if client.secrets.len() == before {
        return Err(QlikError::not_found(format!(
            "the client has no secret with hint {hint:?}"
        )));
    }
    Ok(ApiResponse::no_content())
}

/// `POST /oauth/token` with `grant_type=client_credentials`, form-encoded or JSON.
pub fn token(
    state: &mut State,
    request: &ApiRequest,
    now: Timestamp,
) -> Result<ApiResponse, QlikError> {
    let params = token_params(request)?;
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match param("grant_type") {
        Some("client_credentials") => {}
        Some(other) => {
            return Err(QlikError::bad_request(format!(
                "unsupported_grant_type: the emulator supports client_credentials, not {other:?}"
            )));
        }
        None => {
            return Err(QlikError::bad_request(
                "invalid_request: grant_type is required",
            ));
        }
    }
    let (Some(client_id), Some(secret)) = (param("client_id"), param("client_secret")) else {
        return Err(QlikError::bad_request(
            "invalid_request: client_id and client_secret are required",
        ));
    };
    let invalid = || QlikError::unauthorized("invalid_client: unknown client or wrong secret");
    let user_id = state
        .clients
        .get(client_id)
        .ok_or_else(invalid)?
        .user_id
        .clone();
    state.check_rate(&user_id, Tier::Write, now)?;
    let print = fingerprint(secret);
    let known = state
        .clients
        .get(client_id)
        .is_some_and(|c| c.secrets.iter().any(|s| s.fingerprint == print));
    if !known {
        return Err(invalid());
    }

    let lifetime = state.settings.access_token_lifetime;
    let expires = SignedDuration::try_from(lifetime)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX);
    state.access_tokens.retain(|_, t| t.expires > now);
    let access_token = state.rng.alphanumeric(64);
    state.access_tokens.insert(
        fingerprint(&access_token),
        AccessToken {
            client_id: client_id.to_owned(),
            user_id,
            expires,
        },
    );
    Ok(ApiResponse::json(
        StatusCode::OK,
        json!({
            "access_token": access_token,
            "token_type": "bearer",
            "expires_in": lifetime.as_secs(),
            "expires_at": timestamp(expires),
            "scope": param("scope").unwrap_or("user_default"),
        }),
    ))
}

/// The token request's parameters, from a form or a JSON object of strings.
fn token_params(request: &ApiRequest) -> Result<Vec<(String, String)>, QlikError> {
    let content_type = request
        .header("content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        let body = request.json_body()?;
        let object = body
            .as_object()
            .ok_or_else(|| QlikError::bad_request("the request body must be a JSON object"))?;
        return Ok(object
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
            .collect());
    }
    if content_type.is_empty() || content_type.starts_with("application/x-www-form-urlencoded") {
        return Ok(form_urlencoded::parse(&request.body).into_owned().collect());
    }
    Err(QlikError::bad_request(
        "send the token request as application/x-www-form-urlencoded or application/json",
    ))
}
