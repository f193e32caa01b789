//! Bearer authentication: which user a request acts as. No I/O.
//!
//! Accepted: the seeded admin API keys, API keys the emulator issued (until they expire by
//! the emulator clock or are deleted) and OAuth access tokens (until they expire).
//! Deleting the client secret a token was issued with does not revoke the token: OAuth
//! access tokens are bearer tokens that live until they expire (Qlik has a separate
//! `/oauth/revoke` for that), and a client rotating its secret must not cut off its own
//! in-flight work.

use jiff::Timestamp;

use super::random::fingerprint;
use super::state::State;
use super::wire::QlikError;

/// The user a request acts as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user_id: String,
}

/// Checks the `Authorization` header value.
pub fn authenticate(
    state: &State,
    authorization: Option<&str>,
    now: Timestamp,
) -> Result<Principal, QlikError> {
    let header = authorization.ok_or_else(|| {
        QlikError::unauthorized("the request has no Authorization header; send 'Bearer <token>'")
    })?;
    let token = match header.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => {
            return Err(QlikError::unauthorized(
                "the Authorization header is not a bearer token",
            ));
        }
    };
    let print = fingerprint(token);
    if state.settings.admin_key_fingerprints.contains(&print) {
        return Ok(Principal {
            user_id: state.settings.admin_user_id.clone(),
        });
    }
    if let Some(key) = state
        .api_keys
        .values()
        .find(|k| k.token_fingerprint == print)
    {
        if now >= key.expiry {
            return Err(QlikError::unauthorized("the API key has expired"));
        }
        return Ok(Principal {
            user_id: key.sub.clone(),
        });
    }
    if let Some(access) = state.access_tokens.get(&print) {
        if now >= access.expires {
            return Err(QlikError::unauthorized("the access token has expired"));
        }
        return Ok(Principal {
            user_id: access.user_id.clone(),
        });
    }
    Err(QlikError::unauthorized(
        "the bearer token is not valid for this tenant (unknown, revoked or deleted)",
    ))
}
