//! Credentials and the OAuth access-token cache. No I/O: the HTTP exchange with
//! `/oauth/token` lives in [`super::client`]; this module decides when a token is needed
//! and keeps it.
//!
//! # Guarantees
//! - Secrets are [`SecretString`]s: `Debug` prints `[REDACTED]`, nothing here implements
//!   `Display` for them, and they are zeroed when dropped.
//! - A swapped credential (`TenantClient::set_credential`) bumps a generation: a token fetched with the old
//!   credential is never cached after the swap.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

/// A credential the tenant accepts.
#[derive(Clone)]
pub enum Credential {
    /// An API key, sent as a bearer token.
    ApiKey(SecretString),
    /// An OAuth machine-to-machine client, exchanged for access tokens with the
    /// client-credentials grant.
    OAuthClient {
        /// The client id (not secret).
        client_id: String,
        /// The client secret.
        client_secret: SecretString,
    },
}

impl Credential {
    /// An API key credential.
    pub fn api_key(token: impl Into<String>) -> Credential {
        Credential::ApiKey(SecretString::from(token.into()))
    }

    /// An OAuth client-credentials credential.
    pub fn oauth_client(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Credential {
        Credential::OAuthClient {
            client_id: client_id.into(),
            client_secret: SecretString::from(client_secret.into()),
        }
    }

    /// `api-key` or `oauth-client`, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::ApiKey(_) => "api-key",
            Credential::OAuthClient { .. } => "oauth-client",
        }
    }

    /// The secret part, for scrubbing tenant messages.
    pub(crate) fn secret(&self) -> &str {
        match self {
            Credential::ApiKey(key) => key.expose_secret(),
            Credential::OAuthClient { client_secret, .. } => client_secret.expose_secret(),
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::ApiKey(_) => f.write_str("ApiKey([REDACTED])"),
            Credential::OAuthClient { client_id, .. } => f
                .debug_struct("OAuthClient")
                .field("client_id", client_id)
                .field("client_secret", &"[REDACTED]")
                .finish(),
        }
    }
}

/// Where a credential came from, named in error messages so a user can act on them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    /// A key of a Kubernetes Secret.
    Secret {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// The key in the Secret's data.
        key: String,
    },
    /// Anything else, described in words (e.g. `the --api-key flag`).
    Described(String),
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Secret {
                namespace,
                name,
                key,
            } => write!(f, "Secret {namespace}/{name} key {key}"),
            CredentialSource::Described(text) => f.write_str(text),
        }
    }
}

/// A bearer token to send, and what it was derived from (to invalidate the right one).
pub(crate) struct Bearer {
    pub(crate) token: SecretString,
    pub(crate) generation: u64,
    /// Which cached access token this is; `None` for an API key.
    pub(crate) token_id: Option<u64>,
}

/// An access token and when to stop using it.
struct CachedToken {
    id: u64,
    value: SecretString,
    refresh_at: Instant,
}

/// When to refresh a token of `lifetime` obtained at `obtained`: `margin` before it
/// expires, or half-way through when the lifetime is shorter than twice the margin.
pub(crate) fn refresh_at(obtained: Instant, lifetime: Duration, margin: Duration) -> Instant {
    obtained + lifetime.saturating_sub(margin.min(lifetime / 2))
}

struct State {
    credential: Arc<Credential>,
    source: CredentialSource,
    generation: u64,
    token: Option<CachedToken>,
    next_token_id: u64,
}

/// The client's current credential and cached access token.
pub(crate) struct Auth {
    state: Mutex<State>,
    /// Held while fetching a token, so that concurrent requests share one fetch.
    pub(crate) fetching: tokio::sync::Mutex<()>,
}

impl Auth {
    pub(crate) fn new(credential: Credential, source: CredentialSource) -> Auth {
        Auth {
            state: Mutex::new(State {
                credential: Arc::new(credential),
                source,
                generation: 0,
                token: None,
                next_token_id: 0,
            }),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic (every update is a single assignment),
        // so a poisoned lock is safe to keep using.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the credential and drops any cached token.
    pub(crate) fn set(&self, credential: Credential, source: CredentialSource) {
        let mut state = self.lock();
        state.credential = Arc::new(credential);
        state.source = source;
        state.generation += 1;
        state.token = None;
    }

    /// The current credential, its source and generation.
    pub(crate) fn current(&self) -> (Arc<Credential>, CredentialSource, u64) {
        let state = self.lock();
        (
            state.credential.clone(),
            state.source.clone(),
            state.generation,
        )
    }

    pub(crate) fn source(&self) -> CredentialSource {
        self.lock().source.clone()
    }

    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// The bearer to send now without any I/O: the API key, or a cached access token that
    /// is still fresh at `now`. `None` means a token must be fetched.
    pub(crate) fn bearer(&self, now: Instant) -> Option<Bearer> {
        let state = self.lock();
        match &*state.credential {
            Credential::ApiKey(key) => Some(Bearer {
                token: key.clone(),
                generation: state.generation,
                token_id: None,
            }),
            Credential::OAuthClient { .. } => state
                .token
                .as_ref()
                .filter(|t| now < t.refresh_at)
                .map(|t| Bearer {
                    token: t.value.clone(),
                    generation: state.generation,
                    token_id: Some(t.id),
                }),
        }
    }

    /// Caches a token fetched with the credential of `generation`, unless the credential
    /// was swapped meanwhile. Returns the bearer to use either way.
    pub(crate) fn store(
        &self,
        generation: u64,
        value: SecretString,
        refresh_at: Instant,
    ) -> Bearer {
        let mut state = self.lock();
        let id = state.next_token_id;
        state.next_token_id += 1;
        if state.generation == generation {
            state.token = Some(CachedToken {
                id,
                value: value.clone(),
                refresh_at,
            });
        }
        Bearer {
            token: value,
            generation,
            token_id: Some(id),
        }
    }

    /// Forgets the token a request was rejected with (a 401), if it is still the cached one.
    pub(crate) fn invalidate(&self, rejected: &Bearer) {
        let mut state = self.lock();
        if state.generation == rejected.generation
            && state.token.as_ref().map(|t| t.id) == rejected.token_id
        {
            state.token = None;
        }
    }

    /// The secrets to scrub from anything the tenant says: the credential's and the cached
    /// token's.
    pub(crate) fn secrets(&self) -> Vec<SecretString> {
        let state = self.lock();
        let mut out = vec![SecretString::from(state.credential.secret().to_owned())];
        if let Some(t) = &state.token {
            out.push(t.value.clone());
        }
        out
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Auth")
            .field("credential", &state.credential)
            .field("source", &state.source)
            .field("generation", &state.generation)
            .field("token_cached", &state.token.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oauth() -> Credential {
        Credential::oauth_client("client-1", "very-secret-value")
    }

    fn source() -> CredentialSource {
        CredentialSource::Secret {
            namespace: "ns".into(),
            name: "creds".into(),
            key: "clientSecret".into(),
        }
    }

    #[test]
    fn debug_output_never_contains_the_secret() {
        for credential in [oauth(), Credential::api_key("very-secret-value")] {
            let auth = Auth::new(credential.clone(), source());
            auth.store(
                0,
                SecretString::from("access-token-value".to_owned()),
                Instant::now(),
            );
            for shown in [
                format!("{credential:?}"),
                format!("{credential:#?}"),
                format!("{auth:?}"),
            ] {
                assert!(!shown.contains("very-secret-value"), "{shown}");
                assert!(!shown.contains("access-token-value"), "{shown}");
            }
        }
    }

    #[test]
    fn tokens_refresh_a_margin_before_expiry_or_half_way_when_short_lived() {
        let t0 = Instant::now();
        let m = Duration::from_secs(300);
        assert_eq!(
            refresh_at(t0, Duration::from_secs(6 * 3600), m),
            t0 + Duration::from_secs(6 * 3600 - 300)
        );
        assert_eq!(
            refresh_at(t0, Duration::from_secs(400), m),
            t0 + Duration::from_secs(200)
        );
        assert_eq!(refresh_at(t0, Duration::ZERO, m), t0);
    }

    #[test]
    fn a_cached_token_is_used_until_its_refresh_time() {
        let auth = Auth::new(oauth(), source());
        let t0 = Instant::now();
        assert!(auth.bearer(t0).is_none());
        auth.store(
            0,
            SecretString::from("tok".to_owned()),
            t0 + Duration::from_secs(60),
        );
        let b = auth
            .bearer(t0 + Duration::from_secs(59))
            .map(|b| b.token.expose_secret().to_owned());
        assert_eq!(b.as_deref(), Some("tok"));
        assert!(auth.bearer(t0 + Duration::from_secs(60)).is_none());
    }

    #[test]
    fn swapping_the_credential_drops_the_token_and_ignores_late_fetches() {
        let auth = Auth::new(oauth(), source());
        let t0 = Instant::now();
        auth.store(
            0,
            SecretString::from("old".to_owned()),
            t0 + Duration::from_secs(60),
        );
        auth.set(Credential::oauth_client("client-1", "new-secret"), source());
        assert!(auth.bearer(t0).is_none());
        // A fetch that started before the swap finishes after it: not cached.
        auth.store(
            0,
            SecretString::from("late".to_owned()),
            t0 + Duration::from_secs(60),
        );
        assert!(auth.bearer(t0).is_none());
        assert_eq!(auth.generation(), 1);
    }

    #[test]
    fn a_401_invalidates_only_the_token_it_was_sent_with() {
        let auth = Auth::new(oauth(), source());
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(60);
        let first = auth.store(0, SecretString::from("a".to_owned()), later);
        let second = auth.store(0, SecretString::from("b".to_owned()), later);
        auth.invalidate(&first);
        assert!(
            auth.bearer(t0).is_some(),
            "a newer token survives a stale 401"
        );
        auth.invalidate(&second);
        assert!(auth.bearer(t0).is_none());
    }

    #[test]
    fn an_api_key_is_its_own_bearer() {
        let auth = Auth::new(Credential::api_key("key"), source());
        let b = auth
            .bearer(Instant::now())
            .map(|b| (b.token.expose_secret().to_owned(), b.token_id));
        assert_eq!(b, Some(("key".to_owned(), None)));
    }

    #[test]
    fn sources_read_as_the_secret_they_name() {
        assert_eq!(source().to_string(), "Secret ns/creds key clientSecret");
        assert_eq!(
            CredentialSource::Described("the --api-key flag".into()).to_string(),
            "the --api-key flag"
        );
    }
}
