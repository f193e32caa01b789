//! Plan: from what was observed (the status, the source Secret's values as a digest, the
//! time), whether to push now or when to look again; and, after a push, the status that
//! says how it went. Pure: `now` is passed in.
//!
//! A push happens when the digest of the target and values differs from the one last
//! pushed (a new SecretPush, a changed Secret, a changed target), and again `resyncEvery`
//! after the last push (Qlik never returns a secret, so an edit made there can only be
//! overwritten, not seen). A push the tenant refused for good is not repeated for the same
//! digest and generation until [`REFUSED_RETRY`] (at most `resyncEvery`) has passed. A
//! transient failure is retried by the controller's backoff, not here.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::reasons::TENANT_NOT_FOUND;
use crate::api::secret_push::{RefusedPush, SecretPushStatus, TargetKind};
use crate::controller::conditions::{self, Desired, Progress, READY};

/// How long a refused push waits before it is tried again with the same values.
pub const REFUSED_RETRY: Duration = Duration::from_secs(3600);

/// `Ready` reason: the values are in the tenant.
pub const PUSHED: &str = "Pushed";
/// `Ready` reason: Qlik's check of the values failed, after they were written, or (the
/// tenant's email, whose `PUT` checks before it saves) instead of writing them.
pub const VERIFICATION_FAILED: &str = "VerificationFailed";
/// `Ready` reason: the source Secret does not exist.
pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
/// `Ready` reason: the source Secret lacks a key the target maps.
pub const SECRET_KEY_MISSING: &str = "SecretKeyMissing";
/// `Ready` reason: a mapped value is not UTF-8 text.
pub const SECRET_VALUE_NOT_TEXT: &str = "SecretValueNotText";

/// What the source Secret holds, as far as planning needs to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The Secret does not exist.
    Missing { secret: String },
    /// These mapped keys are absent (or empty).
    KeysMissing { secret: String, keys: Vec<String> },
    /// These mapped keys hold bytes that are not UTF-8 text.
    NotText { secret: String, keys: Vec<String> },
    /// Every mapped value is there; the digest of the target and values.
    Values { digest: String },
}

/// The facts a plan is made from.
#[derive(Clone, Debug)]
pub struct Observed {
    pub generation: Option<i64>,
    pub status: SecretPushStatus,
    pub target: TargetKind,
    pub poll_every: Duration,
    pub resync_every: Duration,
    pub now: Timestamp,
    pub source: Source,
}

/// Why a push happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushReason {
    /// Nothing was pushed yet.
    Initial,
    /// The values or the target changed.
    Changed,
    /// `resyncEvery` passed since the last push.
    Resync,
    /// A refused push, tried again.
    RetryRefused,
}

/// What to do now.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// Push the values (whose digest this is).
    Push { reason: PushReason, digest: String },
    /// Nothing to push: write `status` (if it changed) and look again at `at`.
    Wait {
        status: SecretPushStatus,
        at: Timestamp,
    },
}

/// How a push went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The tenant took the values (`target_id`: what they were written to).
    Pushed {
        target_id: Option<String>,
        verification: Verification,
    },
    /// It did not.
    Failed(Failure),
}

/// What Qlik's own check said after the values were written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verification {
    /// The target has no check (data connections).
    None,
    Passed,
    /// Qlik says the values do not work; the message never holds a value.
    Failed {
        message: String,
    },
}

/// Why a push failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// CamelCase, bounded.
    pub reason: &'static str,
    /// Names the target and what the tenant said, never a value.
    pub message: String,
    /// Retrying without a change can help (the controller backs off).
    pub transient: bool,
}

/// The plan for `o`.
pub fn plan(o: &Observed) -> Plan {
    let digest = match &o.source {
        Source::Values { digest } => digest,
        Source::Missing { secret } => {
            let message =
                format!("Secret {secret} does not exist: nothing is pushed until it does");
            return source_problem(o, SECRET_NOT_FOUND, message);
        }
        Source::KeysMissing { secret, keys } => {
            let message = format!("Secret {secret} has no (or an empty) {}", keys.join(", "));
            return source_problem(o, SECRET_KEY_MISSING, message);
        }
        Source::NotText { secret, keys } => {
            let message = format!("Secret {secret}: {} is not UTF-8 text", keys.join(", "));
            return source_problem(o, SECRET_VALUE_NOT_TEXT, message);
        }
    };
    let status = &o.status;
    let last_push = status.last_push_time.as_ref().map(|t| t.0);
    if status.pushed_digest.as_deref() == Some(digest.as_str()) {
        let resync_at = last_push.map_or(o.now, |t| after(t, o.resync_every));
        if o.now >= resync_at {
            return push(PushReason::Resync, digest);
        }
        let mut status = status.clone();
        if status.refused.is_none() && !settled_ready(&status) {
            // A problem that is gone (the Secret is back with the values last pushed).
            let message = pushed_message(&status);
            set_ready(&mut status, o, true, PUSHED, message);
        }
        status.observed_generation = o.generation;
        return Plan::Wait {
            status,
            at: resync_at.min(after(o.now, o.poll_every)),
        };
    }
    if let Some(refused) = &status.refused
        && refused.digest == *digest
        && refused.generation == o.generation
    {
        let retry_at = after(refused.at.0, REFUSED_RETRY.min(o.resync_every));
        if o.now < retry_at {
            let mut status = status.clone();
            status.observed_generation = o.generation;
            return Plan::Wait {
                status,
                at: retry_at.min(after(o.now, o.poll_every)),
            };
        }
        return push(PushReason::RetryRefused, digest);
    }
    let reason = if status.pushed_digest.is_none() {
        PushReason::Initial
    } else {
        PushReason::Changed
    };
    push(reason, digest)
}

/// The status after a push of `digest` that ended with `outcome`.
pub fn after_push(o: &Observed, digest: &str, outcome: &Outcome) -> SecretPushStatus {
    let mut status = o.status.clone();
    status.observed_generation = o.generation;
    status.target_kind = Some(o.target);
    match outcome {
        Outcome::Pushed {
            target_id,
            verification,
        } => {
            status.pushed_digest = Some(digest.to_owned());
            status.last_push_time = Some(Time(o.now));
            status.pushes += 1;
            status.target_id.clone_from(target_id);
            status.refused = None;
            match verification {
                Verification::Failed { message } => {
                    set_ready(&mut status, o, false, VERIFICATION_FAILED, message.clone());
                    progress(
                        &mut status,
                        o,
                        Progress::Stalled(VERIFICATION_FAILED),
                        message,
                    );
                }
                _ => {
                    let message = pushed_message(&status);
                    set_ready(&mut status, o, true, PUSHED, message);
                }
            }
        }
        Outcome::Failed(failure) => {
            let message = format!("the push failed: {}", failure.message);
            set_ready(&mut status, o, false, failure.reason, message.clone());
            if failure.transient {
                progress(
                    &mut status,
                    o,
                    Progress::Reconciling(failure.reason),
                    &message,
                );
            } else {
                status.refused = Some(RefusedPush {
                    digest: digest.to_owned(),
                    generation: o.generation,
                    at: Time(o.now),
                });
                progress(&mut status, o, Progress::Stalled(failure.reason), &message);
            }
        }
    }
    status
}

/// A problem before any push: no tenant, no client for it.
pub fn blocked(o: &Observed, failure: &Failure) -> SecretPushStatus {
    let mut status = o.status.clone();
    status.observed_generation = o.generation;
    status.target_kind = Some(o.target);
    set_ready(
        &mut status,
        o,
        false,
        failure.reason,
        failure.message.clone(),
    );
    // A missing tenant needs a person (as for every kind, see `reasons::TENANT_NOT_FOUND`).
    let stage = if failure.transient && failure.reason != TENANT_NOT_FOUND {
        Progress::Reconciling(failure.reason)
    } else {
        Progress::Stalled(failure.reason)
    };
    progress(&mut status, o, stage, &failure.message);
    status
}

/// The source cannot be pushed: say why (it needs a person), and look again at the next
/// poll.
fn source_problem(o: &Observed, reason: &'static str, message: String) -> Plan {
    let mut status = o.status.clone();
    status.observed_generation = o.generation;
    status.target_kind = Some(o.target);
    set_ready(&mut status, o, false, reason, message.clone());
    progress(&mut status, o, Progress::Stalled(reason), &message);
    Plan::Wait {
        status,
        at: after(o.now, o.poll_every),
    }
}

fn push(reason: PushReason, digest: &str) -> Plan {
    Plan::Push {
        reason,
        digest: digest.to_owned(),
    }
}

/// Whether the Ready condition already says how the last push went.
fn settled_ready(status: &SecretPushStatus) -> bool {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == READY)
        .is_some_and(|c| c.reason == PUSHED || c.reason == VERIFICATION_FAILED)
}

fn pushed_message(status: &SecretPushStatus) -> String {
    match (&status.target_id, &status.last_push_time) {
        (Some(id), Some(at)) => format!("pushed to {id} at {}", at.0),
        (None, Some(at)) => format!("pushed at {}", at.0),
        _ => "pushed".to_owned(),
    }
}

fn set_ready(
    status: &mut SecretPushStatus,
    o: &Observed,
    ready: bool,
    reason: &str,
    message: String,
) {
    let desired = Desired {
        type_: READY,
        status: ready,
        reason,
        message,
    };
    conditions::set(&mut status.conditions, desired, o.generation, Time(o.now));
    if ready {
        conditions::set_progress(
            &mut status.conditions,
            Progress::Done,
            "",
            o.generation,
            Time(o.now),
        );
    }
}

fn progress(status: &mut SecretPushStatus, o: &Observed, stage: Progress<'_>, message: &str) {
    conditions::set_progress(
        &mut status.conditions,
        stage,
        message,
        o.generation,
        Time(o.now),
    );
}

fn after(at: Timestamp, wait: Duration) -> Timestamp {
    let wait = SignedDuration::try_from(wait).unwrap_or(SignedDuration::MAX);
    at.saturating_add(wait).unwrap_or(Timestamp::MAX)
}

#[cfg(test)]
#[path = "plan/tests.rs"]
mod tests;
