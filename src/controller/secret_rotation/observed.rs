//! What the pure [`step`](super::step) sees and decides: plain data, built by
//! [`observe`](super::observe) and tested without a cluster or a tenant.

use std::time::Duration;

use jiff::Timestamp;

use crate::api::{SecretRotationSpec, SecretRotationStatus};

/// The credential kind a SecretRotation rotates (its spec's one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ApiKey,
    OAuthClientSecret,
    /// An automation's execution token, renewed by copying the automation.
    AutomationToken,
}

impl Kind {
    pub fn of(spec: &SecretRotationSpec) -> Kind {
        let credential = &spec.credential;
        if credential.api_key.is_some() {
            Kind::ApiKey
        } else if credential.automation_execution_token.is_some() {
            Kind::AutomationToken
        } else {
            Kind::OAuthClientSecret
        }
    }

    /// Whether status names its credentials by `id` (API key, automation) rather than by
    /// `hint` (OAuth client secret).
    pub fn named_by_id(self) -> bool {
        self != Kind::OAuthClientSecret
    }
}

/// Everything the decision depends on, including the time.
#[derive(Clone, Debug)]
pub struct Observed {
    /// Whole seconds (see [`super::schedule::whole_seconds`]).
    pub now: Timestamp,
    /// The SecretRotation's name (for messages).
    pub name: String,
    pub generation: Option<i64>,
    pub spec: SecretRotationSpec,
    /// As stored, read fresh from the apiserver (not from a cache that may lag).
    pub status: SecretRotationStatus,
    /// The `qlikops.io/rotate-requested-at` annotation, when it parses.
    pub rotate_requested_at: Option<Timestamp>,
    pub secret: SecretFacts,
    /// The tenant's side, or why it could not be read.
    pub remote: Result<Remote, Failure>,
    /// The user the operator authenticates as (`users/me`): read only when the decision may
    /// revoke something, which it does only to credentials this identity created.
    pub identity: Option<String>,
    /// The credential of the pending revision whose value this process still holds in
    /// memory because its Secret write failed (see [`super::held`]).
    pub held: Option<RemoteCredential>,
}

/// The Secret, as far as the decision needs it (never the value).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretFacts {
    pub exists: bool,
    /// `key` holds a non-empty value.
    pub has_value: bool,
    /// `qlikops.io/credential-revision`: the revision under `key`.
    pub revision: Option<i64>,
    /// `qlikops.io/credential-id`: the key id or secret hint under `key`.
    pub credential_id: Option<String>,
    /// Created by the operator for this SecretRotation: a controller owner reference to
    /// its uid (with the managed-by label, except on Secrets of earlier versions).
    pub created_for_us: bool,
    /// Its owner opted in: `qlikops.io/allow-rotation-by` names this SecretRotation.
    pub opted_in: bool,
    /// `immutable: true`: no write can succeed.
    pub immutable: bool,
}

impl SecretFacts {
    /// Whether the operator may write into the Secret: a missing one it creates, an
    /// existing one only when it created it for this SecretRotation or its owner opted in.
    pub fn writable(&self) -> bool {
        !self.exists || self.created_for_us || self.opted_in
    }

    /// Whether the Secret holds the credential of `revision`.
    pub fn holds(&self, revision: i64) -> Option<&str> {
        (self.has_value && self.revision == Some(revision))
            .then_some(self.credential_id.as_deref())
            .flatten()
    }
}

/// The credentials on the tenant that may be this SecretRotation's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Remote {
    /// API keys: those carrying this SecretRotation's marker. OAuth: every secret of the
    /// client (there is no marker; the pending rotation's `knownHints` tell them apart).
    /// Automations: the current one (the spec's before the first rotation), the previous
    /// one and a recorded copy, as far as they exist, and while `Creating` every
    /// automation whose name carries this SecretRotation's marker.
    pub credentials: Vec<RemoteCredential>,
    /// API keys: the tenant's longest key lifetime, read while `Creating`.
    pub max_expiry: Option<Duration>,
}

impl Remote {
    pub fn find(&self, id: &str) -> Option<&RemoteCredential> {
        self.credentials.iter().find(|c| c.id == id)
    }
}

/// One credential on the tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteCredential {
    /// API key id, OAuth secret hint, or automation id.
    pub id: String,
    /// The revision in the API key's (or the automation name's) marker.
    pub revision: Option<i64>,
    /// Accepted by the tenant (not expired or revoked); an automation: it exists.
    pub active: bool,
    pub created_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    /// Who created it (API key `createdByUser`, OAuth secret `createdBy`, automation
    /// `ownerId`), if the tenant says.
    pub created_by: Option<String>,
    /// API keys: the user it authenticates as (`sub`).
    pub subject: Option<String>,
}

/// A failure, reduced to what the decision needs. Built from tenant and Kubernetes
/// errors, whose messages never hold a credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// CamelCase condition reason.
    pub reason: &'static str,
    pub message: String,
    pub kind: FailureKind,
    /// How long the tenant asked to wait (429).
    pub retry_after: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// Retrying soon can help (429, 5xx, timeouts, an unknown outcome, a conflict).
    Transient,
    /// A tenant limit (keys per user, 5 client secrets, automations per user): someone
    /// must make room.
    LimitReached,
    /// Retrying without a change cannot help (unauthorized, forbidden, no such client).
    Permanent,
}

/// What to do now: the status to hold before the action, the one action, and when to
/// look again.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// Written (when it differs from the stored one) before `action` runs.
    pub status: SecretRotationStatus,
    pub action: Action,
    pub requeue: Requeue,
    pub notes: Vec<Note>,
}

/// The one side effect of a reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// Delete credentials this SecretRotation created whose value is lost (a crash after
    /// the create) or that are no longer current or previous.
    DeleteStrays(Vec<String>),
    /// Create the credential of `revision` and write it to the Secret at once, the old
    /// value moving to `<key>.previous`.
    Create {
        revision: i64,
        /// API keys: the lifetime to ask for; `None` asks for the tenant's maximum.
        expiry: Option<Duration>,
    },
    /// Write the credential of `revision` that was created but whose Secret write failed
    /// (its value held in memory) to the Secret: a retry that creates nothing.
    WriteSecret {
        revision: i64,
    },
    /// Automations: finish the copy `id` made for `revision` before an interruption (found
    /// by its name marker): give it the current automation's state, read its token and
    /// write it to the Secret. Nothing is copied again.
    AdoptCopy {
        revision: i64,
        id: String,
    },
    /// Annotate the rollout targets' pod templates with `revision`.
    Rollout {
        revision: i64,
    },
    /// Remove `<key>.previous` from the Secret, then revoke `credential` (API key id or
    /// OAuth hint; `None` for a value the operator did not create, which it leaves alone).
    Revoke {
        credential: Option<String>,
    },
}

/// When to reconcile again (capped by the health-check interval, except a retry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requeue {
    Immediately,
    At(Timestamp),
    After(Duration),
    /// After a failure: the controller's capped, jittered exponential backoff for this
    /// object, but never sooner than `at_least` (the wait a tenant limit or a permanent
    /// problem deserves).
    Retry {
        at_least: Duration,
    },
    /// The tenant asked for this pause (`429 Retry-After`, kept for the whole tenant by
    /// the client): no sooner than its end, whatever the health-check interval.
    Paused(Duration),
}

/// An event to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

/// What the action did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The credential created (and published).
    pub created: Option<RemoteCredential>,
    /// Non-fatal problems (a rollout target that does not exist).
    pub warnings: Vec<String>,
}
