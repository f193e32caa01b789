//! The `Creating` phase: adopt what the Secret already holds, write a credential whose
//! value is still held, revoke one whose value is lost when it is provably the operator's,
//! or create. Pure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::{
    Action, Decision, Kind, Observed, Outcome, Remote, RemoteCredential, Requeue, after,
    automation, failed, handle, hold, is_api_key, kind, ours, reference, revocable, warning,
};
use crate::api::secret_rotation::{
    AmbiguousSecrets, CredentialRef, PendingRotation, Phase, SecretRotationStatus,
};
use crate::controller::secret_rotation::failure;
use crate::controller::secret_rotation::schedule;

pub(super) fn creating(o: &Observed, remote: &Remote) -> Decision {
    let status = &o.status;
    let Some(pending) = &status.pending else {
        // Defensive: a `Creating` without its intent (edited status). Record one first.
        let mut next = status.clone();
        next.pending = Some(PendingRotation {
            revision: status.revision + 1,
            reason: "Resumed".to_owned(),
            started_at: Some(Time(o.now)),
            requested_at: None,
            known_hints: remote.credentials.iter().map(|c| c.id.clone()).collect(),
            created: None,
            ambiguous: None,
        });
        return hold(o, next, Action::Nothing, Requeue::Immediately);
    };
    let revision = pending.revision;
    // The crash came after the Secret was written: adopt what it holds.
    if let Some(id) = o.secret.holds(revision)
        && let Some(found) = remote.find(id)
    {
        return adopt(o, found, revision);
    }
    // Created, but the Secret write failed: write it again, create nothing.
    if held(o).is_some() {
        let mut next = status.clone();
        record_held(&mut next, o);
        return hold(
            o,
            next,
            Action::WriteSecret { revision },
            Requeue::Immediately,
        );
    }
    // An automation copy's token can be read again: adopt the copy, never copy twice.
    if kind(o) == Kind::AutomationToken {
        return automation::creating(o, remote, revision);
    }
    let mut next = status.clone();
    let mut notes = Vec::new();
    // Created and recorded, but its value is lost (a restart): revoke it, then create.
    if let Some(created) = &pending.created {
        let found = handle(created).and_then(|id| remote.find(id));
        match found {
            Some(c) if c.active && revocable(o, c, Some(created)) => {
                return hold(
                    o,
                    next,
                    Action::DeleteStrays(vec![c.id.clone()]),
                    Requeue::Immediately,
                );
            }
            Some(c) if c.active => notes.push(warning(
                failure::CREDENTIAL_NOT_OWNED,
                format!(
                    "left credential {} alone: status names it as created for revision \
                     {revision}, but it is not provably this SecretRotation's",
                    c.id
                ),
            )),
            _ => {}
        }
        if let Some(p) = &mut next.pending {
            p.created = None;
        }
    }
    let strays = if is_api_key(o) {
        api_key_strays(o, remote, revision)
    } else {
        match oauth_strays(o, remote, &mut next) {
            Ok(strays) => strays,
            Err(ambiguous) => {
                let mut decision = failed(o, next, &ambiguous);
                decision.notes.extend(notes);
                return decision;
            }
        }
    };
    let action = if strays.is_empty() {
        Action::Create {
            revision,
            expiry: schedule::requested_expiry(&o.spec, remote.max_expiry),
        }
    } else {
        Action::DeleteStrays(strays)
    };
    let mut decision = hold(o, next, action, Requeue::Immediately);
    decision.notes.extend(notes);
    decision
}

/// The Secret holds the pending revision: the credential becomes current as if just
/// created.
fn adopt(o: &Observed, found: &RemoteCredential, revision: i64) -> Decision {
    let outcome = Outcome {
        created: Some(found.clone()),
        warnings: Vec::new(),
    };
    let decision = hold(
        o,
        o.status.clone(),
        Action::Create {
            revision,
            expiry: None,
        },
        Requeue::Immediately,
    );
    let mut adopted = after(o, &decision, Ok(&outcome));
    for note in &mut adopted.notes {
        if note.reason == "Created" {
            note.reason = "Adopted";
            note.message = format!(
                "adopted credential {} (revision {revision}) found in Secret {} after an interruption",
                found.id, o.spec.secret.name
            );
        }
    }
    adopted
}

/// The credential of the pending revision held in memory, if any (observe looks it up by
/// the pending revision).
fn held(o: &Observed) -> Option<&RemoteCredential> {
    let creating = o.status.phase == Phase::Creating && o.status.pending.is_some();
    o.held.as_ref().filter(|_| creating)
}

/// Records the held credential (identifiers only) in `status.pending.created`, so that a
/// restart knows it exists.
pub(super) fn record_held(status: &mut SecretRotationStatus, o: &Observed) {
    let Some(held) = held(o) else {
        return;
    };
    if let Some(pending) = &mut status.pending {
        pending.created = Some(CredentialRef {
            created_at: held.created_at.map(|t| Time(schedule::whole_seconds(t))),
            expires_at: held.expires_at.map(|t| Time(schedule::whole_seconds(t))),
            ..reference(o, &held.id)
        });
    }
}

/// API keys of this or an earlier revision, neither current nor previous, whose value is
/// lost, and provably the operator's.
fn api_key_strays(o: &Observed, remote: &Remote, revision: i64) -> Vec<String> {
    let ours = ours(&o.status);
    remote
        .credentials
        .iter()
        .filter(|c| c.revision.is_some_and(|r| r <= revision))
        .filter(|c| !ours.contains(&c.id.as_str()))
        .filter(|c| revocable(o, c, None))
        .map(|c| c.id.clone())
        .collect()
}

/// OAuth hints that appeared since the intent was recorded and are the operator's lost
/// secret. OAuth secrets carry no marker: a new hint is revoked only when it is the one
/// new hint its identity created (hints created by other users are not ours and stay).
/// Anything else is ambiguous: recorded, never revoked, and the rotation waits for a
/// person (a newer rotation request resumes it, taking those hints as known).
fn oauth_strays(
    o: &Observed,
    remote: &Remote,
    next: &mut SecretRotationStatus,
) -> Result<Vec<String>, crate::controller::secret_rotation::observed::Failure> {
    let ours = ours(&o.status);
    let Some(pending) = next.pending.as_mut() else {
        return Ok(Vec::new());
    };
    if let Some(ambiguous) = &pending.ambiguous {
        let since = ambiguous.since.as_ref().map(|t| t.0);
        let resumed = o.rotate_requested_at.filter(|at| {
            since.is_some_and(|since| *at > since)
                && pending.requested_at.as_ref().map(|t| t.0) != Some(*at)
        });
        let Some(resumed) = resumed else {
            let hints = ambiguous.hints.clone();
            return Err(failure::ambiguous_secrets(&client_id(o), &hints));
        };
        let hints = ambiguous.hints.clone();
        pending.known_hints.extend(hints);
        pending.ambiguous = None;
        pending.requested_at = Some(Time(resumed));
    }
    let unknown: Vec<&RemoteCredential> = remote
        .credentials
        .iter()
        .filter(|c| !pending.known_hints.contains(&c.id) && !ours.contains(&c.id.as_str()))
        .collect();
    let me = o.identity.as_deref();
    // Provably someone else's: not ours, not ambiguous.
    let candidates: Vec<&RemoteCredential> = unknown
        .into_iter()
        .filter(|c| me.is_none() || c.created_by.is_none() || c.created_by.as_deref() == me)
        .collect();
    match candidates.as_slice() {
        [] => Ok(Vec::new()),
        [one] if revocable(o, one, None) => Ok(vec![one.id.clone()]),
        many => {
            let hints: Vec<String> = many.iter().map(|c| c.id.clone()).collect();
            pending.ambiguous = Some(AmbiguousSecrets {
                hints: hints.clone(),
                since: Some(Time(o.now)),
            });
            Err(failure::ambiguous_secrets(&client_id(o), &hints))
        }
    }
}

fn client_id(o: &Observed) -> String {
    o.spec
        .credential
        .oauth_client_secret
        .as_ref()
        .map(|c| c.client_id.clone())
        .unwrap_or_default()
}
