//! The state machine, pure: [`step`] decides from an observation (and its `now`) what to
//! hold in status and which one side effect to make; [`after`] says where that leaves the
//! status once the side effect succeeded or failed.
//!
//! ```text
//!          trigger                 created and written          rolled out
//!   Idle ──────────► Creating ─────────────────────► Publishing ───────────► Draining
//!    ▲                 │  ▲ Secret write failed:                               │
//!    │                 │  └─ WriteSecret (value held in memory, backoff)       │ revokeAfter
//!    │   revoked       ▼                                                       ▼
//!    └──────────────────────────────────────────────────────────────────── Revoking
//! ```
//! The phase (and, for `Creating`, the revision, the known OAuth hints, and a created
//! credential whose Secret write failed) is in status before the side effect that depends
//! on it, so a crash anywhere is recovered by the next observation:
//! - `Creating` with the Secret already holding the pending revision: adopt it (the crash
//!   came after the Secret was written).
//! - `Creating` with a created credential whose value this process still holds: write it
//!   (never create another for the revision).
//! - `Creating` with a credential of the pending revision whose value is lost (recorded in
//!   `pending.created`, found by its API key marker, or the one new OAuth hint): revoke
//!   it when it is provably the operator's ([`super::proof`]), then create again; OAuth
//!   hints that cannot be attributed stop the rotation (`AmbiguousSecret`), revoking none.
//! - automation tokens (`step/automation.rs`): a copy of the pending revision (recorded, or
//!   found by its name marker) is adopted (`AdoptCopy`), never copied again, since its
//!   token can be read again; a current automation that is gone stops the rotation
//!   (`AutomationNotFound`).
//! - every other phase repeats its idempotent side effect.
//!
//! Before anything is created and before every Secret write, the Secret must be the
//! operator's to write ([`SecretFacts::writable`](super::observed::SecretFacts::writable)):
//! otherwise `SecretNotOwned`, and nothing happens.

mod after;
mod automation;
mod creating;
mod guard;
#[cfg(test)]
mod tests;

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub use self::after::after;
pub use self::guard::needs_identity;
use self::guard::{revocable, revoking, secret_blocked};
use super::health::{phase_reason, set_conditions};
use super::observed::{
    Action, Decision, Failure, FailureKind, Kind, Note, Observed, Outcome, Remote,
    RemoteCredential, Requeue,
};
use super::schedule;
use crate::api::secret_rotation::{CredentialRef, PendingRotation, Phase, SecretRotationStatus};

/// The least wait for room after a tenant limit.
pub const RETRY_LIMIT: Duration = Duration::from_secs(60);
/// The least wait after a failure only a person can fix.
pub const RETRY_PERMANENT: Duration = Duration::from_secs(300);

/// The identifier of a credential: API key id, OAuth hint or automation id.
pub fn handle(credential: &CredentialRef) -> Option<&str> {
    credential.id.as_deref().or(credential.hint.as_deref())
}

fn kind(o: &Observed) -> Kind {
    Kind::of(&o.spec)
}

fn is_api_key(o: &Observed) -> bool {
    kind(o) == Kind::ApiKey
}

/// A reference to the credential `id`, by id or by hint as its kind is named.
fn reference(o: &Observed, id: &str) -> CredentialRef {
    let by_id = kind(o).named_by_id();
    CredentialRef {
        id: by_id.then(|| id.to_owned()),
        hint: (!by_id).then(|| id.to_owned()),
        created_at: None,
        expires_at: None,
        revoke_after: None,
    }
}

/// The ids of the current and previous credential.
fn ours(status: &SecretRotationStatus) -> Vec<&str> {
    [status.current.as_ref(), status.previous.as_ref()]
        .into_iter()
        .flatten()
        .filter_map(handle)
        .collect()
}

/// Decides the next status and side effect.
pub fn step(o: &Observed) -> Decision {
    // Publishing and Draining touch only the cluster: a tenant outage does not hold them.
    let remote = match (&o.remote, o.status.phase) {
        (Ok(remote), _) => remote,
        (Err(_), Phase::Publishing | Phase::Draining) => &Remote::default(),
        (Err(failure), _) => return failed(o, o.status.clone(), failure),
    };
    // Write only what is ours, and create nothing for a Secret that is not.
    let writing = matches!(o.status.phase, Phase::Creating | Phase::Revoking);
    if matches!(
        o.status.phase,
        Phase::Idle | Phase::Creating | Phase::Revoking
    ) && let Some(blocked) = secret_blocked(o, writing)
    {
        return failed(o, o.status.clone(), &blocked);
    }
    match o.status.phase {
        Phase::Idle => idle(o, remote),
        Phase::Creating => creating::creating(o, remote),
        Phase::Publishing => hold(
            o,
            o.status.clone(),
            Action::Rollout {
                revision: o.status.revision,
            },
            Requeue::Immediately,
        ),
        Phase::Draining => draining(o),
        Phase::Revoking => revoking(o, remote),
    }
}

fn idle(o: &Observed, remote: &Remote) -> Decision {
    let status = &o.status;
    let ours = ours(status);
    if is_api_key(o) {
        // Keys of past revisions that are neither current nor previous; a key someone else
        // made with this marker is not provably ours and stays.
        let strays: Vec<String> = remote
            .credentials
            .iter()
            .filter(|c| c.revision.is_some_and(|r| r <= status.revision))
            .filter(|c| !ours.contains(&c.id.as_str()))
            .filter(|c| revocable(o, c, None))
            .map(|c| c.id.clone())
            .collect();
        if !strays.is_empty() {
            return hold(
                o,
                status.clone(),
                Action::DeleteStrays(strays),
                Requeue::Immediately,
            );
        }
    }
    // A gone automation cannot be copied: stop, before a trigger that would try.
    if let Some(gone) = automation::gone(o, remote) {
        return failed(o, status.clone(), &gone);
    }
    let current_active = status
        .current
        .as_ref()
        .and_then(handle)
        .and_then(|id| remote.find(id))
        .is_some_and(|c| c.active);
    let requested = o.rotate_requested_at.filter(|at| {
        status
            .last_rotation_time
            .as_ref()
            .is_none_or(|last| *at > last.0)
    });
    let rotate_at = status
        .current
        .as_ref()
        .and_then(|c| schedule::rotate_at(&o.spec, c));
    let trigger = if status.current.is_none() {
        Some(("Initial", "no credential yet"))
    } else if !o.secret.has_value {
        Some(("SecretMissing", "the Secret or its key is gone"))
    } else if !current_active {
        Some((
            "CredentialRevoked",
            "the tenant no longer has the current credential (revoked or expired)",
        ))
    } else if requested.is_some() {
        Some(("RotationRequested", "requested by annotation"))
    } else if rotate_at.is_some_and(|at| o.now >= at) {
        Some(("Scheduled", "the current credential is due"))
    } else {
        None
    };
    let Some((reason, why)) = trigger else {
        let requeue = rotate_at.map_or(Requeue::After(RETRY_PERMANENT), Requeue::At);
        return hold(o, status.clone(), Action::Nothing, requeue);
    };
    // Nothing is created for a Secret that cannot take it.
    if let Some(blocked) = secret_blocked(o, true) {
        return failed(o, status.clone(), &blocked);
    }
    let mut next = status.clone();
    let revision = status.revision + 1;
    next.phase = Phase::Creating;
    next.pending = Some(PendingRotation {
        revision,
        reason: reason.to_owned(),
        started_at: Some(Time(o.now)),
        requested_at: requested
            .filter(|_| reason == "RotationRequested")
            .map(Time),
        known_hints: if kind(o) == Kind::OAuthClientSecret {
            remote.credentials.iter().map(|c| c.id.clone()).collect()
        } else {
            Vec::new()
        },
        created: None,
        ambiguous: None,
    });
    let mut decision = hold(o, next, Action::Nothing, Requeue::Immediately);
    let note = format!("rotation to revision {revision} started: {why}");
    decision
        .notes
        .push(if matches!(reason, "SecretMissing" | "CredentialRevoked") {
            warning(reason, note)
        } else {
            normal("RotationStarted", note)
        });
    decision
}

fn draining(o: &Observed) -> Decision {
    let status = &o.status;
    let revoke_after = status
        .previous
        .as_ref()
        .and_then(|p| p.revoke_after.as_ref())
        .map(|t| t.0);
    match revoke_after {
        // A Secret emptied during the grace period serves nobody: end it now.
        Some(at) if o.now < at && o.secret.has_value => {
            hold(o, status.clone(), Action::Nothing, Requeue::At(at))
        }
        _ => {
            let mut next = status.clone();
            next.phase = Phase::Revoking;
            hold(o, next, Action::Nothing, Requeue::Immediately)
        }
    }
}

/// A decision that keeps `status` (with fresh conditions) while `action` runs.
fn hold(
    o: &Observed,
    mut status: SecretRotationStatus,
    action: Action,
    requeue: Requeue,
) -> Decision {
    set_conditions(&mut status, o, None);
    Decision {
        status,
        action,
        requeue,
        notes: Vec::new(),
    }
}

/// The phase stays (with a created credential whose value is held recorded); the
/// conditions say why; retry with backoff, no sooner than the failure asks.
fn failed(o: &Observed, mut status: SecretRotationStatus, failure: &Failure) -> Decision {
    creating::record_held(&mut status, o);
    set_conditions(&mut status, o, Some(failure));
    let requeue = match (failure.kind, failure.retry_after) {
        (FailureKind::Transient, Some(pause)) => Requeue::Paused(pause),
        (FailureKind::Transient, None) => Requeue::Retry {
            at_least: Duration::ZERO,
        },
        (FailureKind::LimitReached, _) => Requeue::Retry {
            at_least: RETRY_LIMIT,
        },
        (FailureKind::Permanent, _) => Requeue::Retry {
            at_least: RETRY_PERMANENT,
        },
    };
    // Warn on a new problem only, so a retry loop does not flood events.
    let known = o
        .status
        .conditions
        .iter()
        .any(|c| c.type_ == super::health::RECONCILING && c.reason == failure.reason)
        || o.status
            .conditions
            .iter()
            .any(|c| c.type_ == super::health::STALLED && c.reason == failure.reason);
    let notes = if known {
        Vec::new()
    } else {
        vec![warning(
            failure.reason,
            format!("{}: {}", phase_reason(status.phase), failure.message),
        )]
    };
    Decision {
        status,
        action: Action::Nothing,
        requeue,
        notes,
    }
}

fn normal(reason: &'static str, message: String) -> Note {
    Note {
        warning: false,
        reason,
        message,
    }
}

fn warning(reason: &'static str, message: String) -> Note {
    Note {
        warning: true,
        reason,
        message,
    }
}
