//! The OAuth client-credentials exchange with `/oauth/token`, and how long its tokens
//! are kept. Network I/O through [`TenantClient::execute`]; the cache is in
//! [`super::auth`].

use std::time::Duration;

use reqwest::Method;
use reqwest::header::{DATE, HeaderMap};
use secrecy::ExposeSecret;
use tokio::time::Instant;

use super::auth::{Bearer, Credential, refresh_at};
use super::client::{Call, TenantClient, decode};
use super::error::Error;
use super::wire::TokenResponse;

/// The token lifetime assumed when `/oauth/token` states none: short, so that a wrong
/// guess costs one extra token request rather than a failed call.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(600);

impl TenantClient {
    /// The bearer for the next request: the API key, a cached access token, or a new one
    /// from `/oauth/token` (one fetch at a time; concurrent callers share it).
    pub(crate) async fn bearer(&self) -> Result<Bearer, Error> {
        let auth = self.auth();
        if let Some(b) = auth.bearer(Instant::now()) {
            return Ok(b);
        }
        let _fetching = auth.fetching.lock().await;
        if let Some(b) = auth.bearer(Instant::now()) {
            return Ok(b);
        }
        let (credential, source, generation) = auth.current();
        let Credential::OAuthClient {
            client_id,
            client_secret,
        } = &*credential
        else {
            // An API key is always its own bearer, so this only happens if the credential
            // was swapped to a key just now: use it.
            return auth
                .bearer(Instant::now())
                .ok_or_else(|| Error::InvalidResponse {
                    operation: "oauth.token",
                    problem: "the credential changed during authentication".to_owned(),
                });
        };
        let operation = "oauth.token";
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", client_id)
            .append_pair("client_secret", client_secret.expose_secret())
            .finish();
        let call = Call {
            operation,
            method: Method::POST,
            url: self.url(&["oauth", "token"]),
            body: Some(("application/x-www-form-urlencoded", form.into_bytes())),
            // A second token request is harmless.
            idempotent: true,
            authenticated: false,
            redirect: false,
            // The client secret is one of the credentials the client scrubs anyway.
            secrets: Vec::new(),
        };
        let obtained = Instant::now();
        // Boxed: `execute` calls this function, so the future would otherwise contain itself.
        let answer = match Box::pin(self.execute(&call)).await {
            Ok(answer) => answer,
            // The token endpoint answers 400 `invalid_client` as well as 401 for bad secrets.
            Err(
                Error::BadRequest { detail, .. }
                | Error::Forbidden { detail, .. }
                | Error::Unauthorized { detail, .. },
            ) => {
                return Err(Error::Unauthorized {
                    operation,
                    credential: source,
                    detail,
                });
            }
            Err(e) => return Err(e),
        };
        let token: TokenResponse = decode(operation, &answer.body)?;
        let lifetime = token_lifetime(&token, server_now(&answer.headers));
        tracing::debug!(
            lifetime_s = lifetime.as_secs(),
            "obtained an OAuth access token"
        );
        let refresh = refresh_at(obtained, lifetime, self.config().token_refresh_margin);
        Ok(auth.store(generation, token.access_token, refresh))
    }
}

/// The tenant's clock from the `Date` header, to measure `expires_at` against.
fn server_now(headers: &HeaderMap) -> Option<jiff::Timestamp> {
    let date = headers.get(DATE)?.to_str().ok()?;
    Some(jiff::fmt::rfc2822::parse(date).ok()?.timestamp())
}

/// How long an access token lives: `expires_in`, else `expires_at` measured on the
/// tenant's clock when it sent one (immune to clock skew), else a short default.
pub(crate) fn token_lifetime(
    token: &TokenResponse,
    server_now: Option<jiff::Timestamp>,
) -> Duration {
    if let Some(secs) = token.expires_in.filter(|s| s.is_finite() && *s > 0.0) {
        return Duration::from_secs_f64(secs.min(86_400.0 * 365.0));
    }
    let expires_at = token
        .expires_at
        .as_deref()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    match expires_at {
        Some(at) => {
            let now = server_now.unwrap_or_else(jiff::Timestamp::now);
            Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
        }
        None => DEFAULT_TOKEN_LIFETIME,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lifetime_prefers_expires_in_then_expires_at_on_the_tenants_clock() {
        let token = |expires_in: Option<f64>, expires_at: Option<&str>| TokenResponse {
            access_token: secrecy::SecretString::from("t".to_owned()),
            expires_in,
            expires_at: expires_at.map(str::to_owned),
        };
        let server: jiff::Timestamp = "2030-01-01T00:00:00Z".parse().unwrap_or_default();
        assert_eq!(
            token_lifetime(
                &token(Some(21600.0), Some("2030-01-01T01:00:00Z")),
                Some(server)
            ),
            Duration::from_secs(21600)
        );
        assert_eq!(
            token_lifetime(&token(None, Some("2030-01-01T06:00:00Z")), Some(server)),
            Duration::from_secs(21600)
        );
        assert_eq!(
            token_lifetime(&token(None, Some("2029-01-01T00:00:00Z")), Some(server)),
            Duration::ZERO
        );
        assert_eq!(
            token_lifetime(&token(None, None), None),
            DEFAULT_TOKEN_LIFETIME
        );
        assert_eq!(
            token_lifetime(&token(Some(-5.0), None), None),
            DEFAULT_TOKEN_LIFETIME
        );
    }
}
