//! The tenant's in-memory state, what it starts (and resets) with, and the emulator's
//! clock. No I/O.
//!
//! Credentials the emulator checks (keys, client secrets, tokens) are kept only as SHA-256
//! fingerprints ([`fingerprint`]). Credentials pushed into the tenant's connections and
//! email configuration must be readable by the control API (the test's view of the
//! server), so they are kept as [`Secret`]s, whose `Debug` shows nothing: no state can
//! leak a credential through `Debug` or a log line.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::automation_connections::AutomationConnections;
use super::automations::Automations;
use super::data_connections::DataConnections;
use super::email_config::EmailConfigState;
use super::faults::Faults;
use super::random::{Rng, fingerprint};
use super::rate_limit::{Limits, RateLimiter};
use super::record::Record;
use super::routes::Tier;
use super::wire::QlikError;
use crate::csp::{Directive, Origin};

/// What stays fixed for the life of the emulator, including across `/_emulator/reset`.
#[derive(Debug)]
pub struct Settings {
    pub tenant_id: String,
    pub tenant_name: String,
    pub hostnames: Vec<String>,
    /// The user every seeded admin API key authenticates as.
    pub admin_user_id: String,
    pub admin_key_fingerprints: Vec<String>,
    pub seeded_clients: Vec<SeededClient>,
    pub rate_limits: bool,
    pub limits: Limits,
    pub max_csp_entries: usize,
    /// As configured (and reported by the config endpoint), e.g. `PT24H`.
    pub max_api_key_expiry: String,
    pub max_api_key_expiry_duration: Duration,
    pub max_keys_per_user: u32,
    pub max_client_secrets: usize,
    pub access_token_lifetime: Duration,
    /// When the emulator started; seeded objects were created then.
    pub started_at: Timestamp,
}

/// An OAuth client given on the command line, with the bot user it acts as.
#[derive(Debug)]
pub struct SeededClient {
    pub client_id: String,
    pub secret_fingerprint: String,
    pub hint: String,
    pub user_id: String,
}

/// A user of the tenant.
#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub name: String,
    pub subject: String,
    pub created: Timestamp,
}

/// A CSP entry (Qlik's `CSPEntry`).
#[derive(Clone, Debug)]
pub struct CspEntry {
    pub id: String,
    pub name: String,
    pub origin: Origin,
    pub description: String,
    pub directives: BTreeSet<Directive>,
    /// Qlik's `connectSrcWSS`.
    pub web_socket: bool,
    pub created: Timestamp,
    pub modified: Timestamp,
}

/// An API key the emulator issued.
#[derive(Clone, Debug)]
pub struct ApiKey {
    pub id: String,
    pub sub: String,
    pub description: String,
    pub created_by_user: String,
    pub created: Timestamp,
    pub expiry: Timestamp,
    pub token_fingerprint: String,
}

impl ApiKey {
    /// `active` or `expired` by the emulator clock (deleted keys are gone).
    pub fn status(&self, now: Timestamp) -> &'static str {
        if now < self.expiry {
            "active"
        } else {
            "expired"
        }
    }
}

/// A credential pushed into the tenant (a connection's password, the SMTP password): kept
/// in clear for the control API, never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the control API only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// An OAuth client (only seeded ones exist: the emulator does not create clients).
#[derive(Clone, Debug)]
pub struct OAuthClient {
    pub client_id: String,
    pub user_id: String,
    pub created: Timestamp,
    pub secrets: Vec<ClientSecret>,
}

/// One secret of an OAuth client.
#[derive(Clone, Debug)]
pub struct ClientSecret {
    pub hint: String,
    pub fingerprint: String,
    pub created: Timestamp,
    pub created_by: String,
}

/// An access token issued by `/oauth/token`.
#[derive(Clone, Debug)]
pub struct AccessToken {
    pub client_id: String,
    pub user_id: String,
    pub expires: Timestamp,
}

/// Everything the emulated tenant knows.
#[derive(Debug)]
pub struct State {
    pub settings: Settings,
    pub rng: Rng,
    /// Added to real time to give the emulator's time.
    pub clock_offset: SignedDuration,
    next_id: u64,
    pub users: BTreeMap<String, User>,
    pub entries: BTreeMap<String, CspEntry>,
    pub api_keys: BTreeMap<String, ApiKey>,
    pub clients: BTreeMap<String, OAuthClient>,
    /// By token fingerprint.
    pub access_tokens: HashMap<String, AccessToken>,
    pub faults: Faults,
    pub limiter: RateLimiter,
    pub record: Record,
    /// Set by `PUT /_emulator/generated-header`: what `generate-header` returns instead of
    /// the header compiled from the entries (a hostile or broken tenant, for tests).
    pub generated_header: Option<String>,
    pub data_connections: DataConnections,
    pub automation_connections: AutomationConnections,
    pub email: EmailConfigState,
    pub automations: Automations,
}

impl State {
    /// The tenant as it starts: seeded users and clients, nothing else.
    pub fn new(settings: Settings, rng: Rng) -> State {
        let mut state = State {
            settings,
            rng,
            clock_offset: SignedDuration::ZERO,
            next_id: 0,
            users: BTreeMap::new(),
            entries: BTreeMap::new(),
            api_keys: BTreeMap::new(),
            clients: BTreeMap::new(),
            access_tokens: HashMap::new(),
            faults: Faults::default(),
            limiter: RateLimiter::default(),
            record: Record::default(),
            generated_header: None,
            data_connections: DataConnections::default(),
            automation_connections: AutomationConnections::default(),
            email: EmailConfigState::default(),
            automations: Automations::default(),
        };
        state.reset();
        state
    }

    /// Back to the start: entries, issued keys, secrets and tokens, data and automation
    /// connections, the email configuration, automations, configured outcomes, faults,
    /// counters, the request log, rate windows and the clock offset are cleared; seeded
    /// credentials stay.
    pub fn reset(&mut self) {
        let s = &self.settings;
        self.clock_offset = SignedDuration::ZERO;
        self.data_connections = DataConnections::default();
        self.automation_connections = AutomationConnections::default();
        self.email = EmailConfigState::default();
        self.automations = Automations::default();
        self.entries.clear();
        self.api_keys.clear();
        self.access_tokens.clear();
        self.faults.clear();
        self.limiter.clear();
        self.record = Record::default();
        self.generated_header = None;
        self.users.clear();
        self.users.insert(
            s.admin_user_id.clone(),
            User {
                id: s.admin_user_id.clone(),
                name: "Emulator Admin".to_owned(),
                subject: "emulator\\admin".to_owned(),
                created: s.started_at,
            },
        );
        self.clients.clear();
        for client in &s.seeded_clients {
            self.users.insert(
                client.user_id.clone(),
                User {
                    id: client.user_id.clone(),
                    name: format!("{} (bot)", client.client_id),
                    subject: format!("qlikbot\\{}", client.client_id),
                    created: s.started_at,
                },
            );
            self.clients.insert(
                client.client_id.clone(),
                OAuthClient {
                    client_id: client.client_id.clone(),
                    user_id: client.user_id.clone(),
                    created: s.started_at,
                    secrets: vec![ClientSecret {
                        hint: client.hint.clone(),
                        fingerprint: client.secret_fingerprint.clone(),
                        created: s.started_at,
                        created_by: s.admin_user_id.clone(),
                    }],
                },
            );
        }
    }

    /// The emulator's time: real time plus the offset tests advanced it by.
    pub fn now(&self) -> Timestamp {
        Timestamp::now()
            .checked_add(self.clock_offset)
            .unwrap_or(Timestamp::MAX)
    }

    /// Counts a request of `user` in `tier`, or gives Qlik's 429 (when limits are on).
    pub fn check_rate(&mut self, user: &str, tier: Tier, now: Timestamp) -> Result<(), QlikError> {
        if !self.settings.rate_limits {
            return Ok(());
        }
        self.limiter
            .check(&self.settings.limits, user, tier, now)
            .map_err(QlikError::rate_limited)
    }

    /// A new resource id: 24 hex digits like Qlik's, increasing in creation order (so that
    /// ordering by id is ordering by creation) and never reused, even across resets.
    pub fn new_id(&mut self) -> String {
        self.next_id += 1;
        let prefix = self.settings.started_at.as_second() as u32;
        format!("{prefix:08x}{:016x}", self.next_id)
    }
}

/// Last four characters of a secret: the hint Qlik shows for it (`maxLength` 5).
pub fn hint_of(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

/// Builds the seeded-client record for `(client_id, secret)`.
pub fn seeded_client(client_id: &str, secret: &str, rng: &mut Rng) -> SeededClient {
    SeededClient {
        client_id: client_id.to_owned(),
        secret_fingerprint: fingerprint(secret),
        hint: hint_of(secret),
        user_id: rng.hex(24),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn hints_are_the_last_four_characters() {
        assert_eq!(hint_of("abcdef123"), "f123");
        assert_eq!(hint_of("ab"), "ab");
    }
}
