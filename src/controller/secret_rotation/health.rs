//! The conditions a status says, from its phase, its credential and the problem at hand.
//! Pure. kstatus: `Ready`, `Reconciling` (a rotation in flight or a retry pending),
//! `Stalled` (a problem that needs a person), and this kind's own `Rotating`.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::observed::{Failure, FailureKind, Observed};
use super::schedule;
use crate::api::secret_rotation::{Phase, SecretRotationStatus};
use crate::controller::conditions::{self, Desired, READY};

pub const ROTATING: &str = "Rotating";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";

/// The condition reason for a phase.
pub fn phase_reason(phase: Phase) -> &'static str {
    match phase {
        Phase::Idle => "Idle",
        Phase::Creating => "Creating",
        Phase::Publishing => "Publishing",
        Phase::Draining => "Draining",
        Phase::Revoking => "Revoking",
    }
}

/// Sets every condition of `status` (and `observedGeneration`, `nextRotationAt`) for
/// `problem`, if any.
pub fn set_conditions(status: &mut SecretRotationStatus, o: &Observed, problem: Option<&Failure>) {
    let now = Time(o.now);
    let generation = o.generation;
    status.observed_generation = generation;
    status.next_rotation_at = status
        .current
        .as_ref()
        .and_then(|c| schedule::rotate_at(&o.spec, c))
        .map(Time);
    let in_flight = status.phase != Phase::Idle;
    let phase = phase_reason(status.phase);
    let (ready, ready_reason, ready_message) = ready(status, o, problem);
    let mut set = |type_, value, reason: &str, message: String| {
        let desired = Desired {
            type_,
            status: value,
            reason,
            message,
        };
        conditions::set(&mut status.conditions, desired, generation, now.clone());
    };
    set(READY, ready, ready_reason, ready_message);
    let (rotating_reason, rotating_message) = match problem {
        Some(p) if in_flight => (p.reason, format!("{phase}: {}", p.message)),
        _ if in_flight => (phase, format!("the rotation is {}", phase.to_lowercase())),
        _ => ("Idle", "no rotation in flight".to_owned()),
    };
    set(ROTATING, in_flight, rotating_reason, rotating_message);
    let retrying = problem.is_some_and(|p| p.kind == FailureKind::Transient);
    let (reconciling_reason, reconciling_message) = match problem {
        Some(p) if retrying => (p.reason, format!("retrying: {}", p.message)),
        _ if in_flight => (phase, format!("the rotation is {}", phase.to_lowercase())),
        _ => ("Idle", "up to date".to_owned()),
    };
    set(
        RECONCILING,
        in_flight || retrying,
        reconciling_reason,
        reconciling_message,
    );
    match problem {
        Some(p) if p.kind != FailureKind::Transient => {
            set(STALLED, true, p.reason, p.message.clone());
        }
        _ => set(STALLED, false, "NoError", "no permanent error".to_owned()),
    }
}

fn ready(
    status: &SecretRotationStatus,
    o: &Observed,
    problem: Option<&Failure>,
) -> (bool, &'static str, String) {
    let expiring = status
        .current
        .as_ref()
        .and_then(|c| schedule::warn_at(&o.spec, c))
        .is_some_and(|at| o.now >= at);
    let expires = status
        .current
        .as_ref()
        .and_then(|c| c.expires_at.as_ref())
        .map(|t| t.0);
    match problem {
        Some(p) if p.kind != FailureKind::Transient => return (false, p.reason, p.message.clone()),
        Some(p) if expiring || status.current.is_none() => {
            return (false, "RotationFailing", p.message.clone());
        }
        _ => {}
    }
    let pending_reason = status.pending.as_ref().map(|p| p.reason.as_str());
    let Some(current) = &status.current else {
        return (
            false,
            "Creating",
            "the first credential is being created".to_owned(),
        );
    };
    if status.phase == Phase::Creating {
        match pending_reason {
            Some("SecretMissing") => {
                return (
                    false,
                    "SecretMissing",
                    format!(
                        "Secret {} (key {}) is gone: a new credential is being created",
                        o.spec.secret.name, o.spec.secret.key
                    ),
                );
            }
            Some("CredentialRevoked") => {
                return (
                    false,
                    "CredentialRevoked",
                    "the tenant no longer accepts the current credential (revoked or expired): a new one is being created".to_owned(),
                );
            }
            _ => {}
        }
    }
    if expiring {
        return (
            false,
            "ExpiringSoon",
            format!(
                "the current credential (revision {}) expires at {} and has not been rotated",
                status.revision,
                expires.map(fmt).unwrap_or_default()
            ),
        );
    }
    let mut message = format!(
        "revision {} is in Secret {} (key {})",
        status.revision, o.spec.secret.name, o.spec.secret.key
    );
    if let Some(expires) = expires {
        message.push_str(&format!("; expires at {}", fmt(expires)));
    }
    if let Some(next) = &status.next_rotation_at {
        message.push_str(&format!("; next rotation at {}", fmt(next.0)));
    }
    if let Some((requested, granted)) = schedule::capped(&o.spec, current) {
        let message = format!(
            "ExpiryCapped: asked for {}, the tenant's max_api_key_expiry allows {}; {message}",
            schedule::human(requested),
            schedule::human(granted)
        );
        return (true, "ExpiryCapped", message);
    }
    let reason = match status.phase {
        Phase::Idle => "Rotated",
        phase => phase_reason(phase),
    };
    (true, reason, message)
}

/// Why a deleted SecretRotation is still there: its previous credential's grace period.
/// The message holds no `now`, so it is written once.
pub fn set_finalizing(
    status: &mut SecretRotationStatus,
    o_generation: Option<i64>,
    now: Timestamp,
    revoke_at: Timestamp,
) {
    let message = format!(
        "deleted: the previous credential is revoked at {}, when its grace period ends; \
         then the deletion completes",
        fmt(revoke_at)
    );
    let desired = Desired {
        type_: READY,
        status: false,
        reason: FINALIZING,
        message,
    };
    conditions::set(&mut status.conditions, desired, o_generation, Time(now));
}

/// The `Ready` reason while a deleted SecretRotation waits (see [`set_finalizing`]).
pub const FINALIZING: &str = "Finalizing";

fn fmt(at: Timestamp) -> String {
    jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%SZ", at).unwrap_or_else(|_| at.to_string())
}
