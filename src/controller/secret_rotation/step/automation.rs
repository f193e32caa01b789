//! The automation execution token's own rules, pure: which automation a rotation copies
//! (the current one, or the spec's before the first rotation), what happens when it is
//! gone, and the `Creating` phase. Unlike a new API key or OAuth secret, a copy's token can
//! be read again at any time, so a copy made before an interruption (a lost answer, a
//! crash before anything recorded it, a Secret write that failed before a restart) is
//! adopted, never made twice: it is found by its name marker (or `pending.created`) and
//! taken when it is provably the operator's ([`super::revocable`]).

use super::{
    Action, Decision, Kind, Observed, Remote, RemoteCredential, Requeue, failed, handle, hold,
    kind, ours, revocable, warning,
};
use crate::controller::secret_rotation::failure::{self, CREDENTIAL_NOT_OWNED};
use crate::controller::secret_rotation::observed::Failure;

/// The automation the spec names, for this kind.
pub(super) fn original(o: &Observed) -> Option<&str> {
    let token = o.spec.credential.automation_execution_token.as_ref()?;
    Some(token.automation_id.as_str())
}

/// The automation the next rotation copies: the current one, or before the first rotation
/// the spec's.
pub(super) fn source(o: &Observed) -> Option<&str> {
    if kind(o) != Kind::AutomationToken {
        return None;
    }
    o.status.current.as_ref().and_then(handle).or(original(o))
}

/// Why nothing can be copied: the automation to copy is gone from the tenant (deleted
/// outside the operator). `None` for other kinds and while it exists.
pub(super) fn gone(o: &Observed, remote: &Remote) -> Option<Failure> {
    let source = source(o)?;
    let exists = remote.find(source).is_some_and(|c| c.active);
    (!exists).then(|| failure::automation_gone(source, o.status.current.is_some()))
}

/// `Creating` for automations (after the Secret and a held value were looked at): delete
/// the operator's stray copies, adopt this revision's copy if one exists, else copy.
pub(super) fn creating(o: &Observed, remote: &Remote, revision: i64) -> Decision {
    let status = &o.status;
    let ours = ours(status);
    let recorded = status
        .pending
        .as_ref()
        .and_then(|p| p.created.as_ref())
        .and_then(handle);
    // Copies of this SecretRotation made by the operator, neither current nor previous.
    let copies: Vec<&RemoteCredential> = remote
        .credentials
        .iter()
        .filter(|c| c.active && c.revision.is_some() && !ours.contains(&c.id.as_str()))
        .filter(|c| revocable(o, c, None))
        .collect();
    // Of this revision's copies the recorded one, else the oldest, is kept.
    let mut this: Vec<&RemoteCredential> = copies
        .iter()
        .copied()
        .filter(|c| c.revision == Some(revision))
        .collect();
    this.sort_by_key(|c| (Some(c.id.as_str()) != recorded, c.created_at, c.id.clone()));
    let keep = this.first().map(|c| c.id.clone());
    let strays: Vec<String> = copies
        .iter()
        .filter(|c| c.revision.is_some_and(|r| r <= revision))
        .filter(|c| Some(&c.id) != keep.as_ref())
        .map(|c| c.id.clone())
        .collect();
    let mut next = status.clone();
    if !strays.is_empty() {
        return hold(o, next, Action::DeleteStrays(strays), Requeue::Immediately);
    }
    if let Some(id) = keep {
        return hold(
            o,
            next,
            Action::AdoptCopy { revision, id },
            Requeue::Immediately,
        );
    }
    let mut notes = Vec::new();
    if let Some(id) = recorded {
        // Recorded, but gone, or not provably the operator's: not taken, copied anew.
        if remote.find(id).is_some_and(|c| c.active) {
            notes.push(warning(
                CREDENTIAL_NOT_OWNED,
                format!(
                    "left automation {id} alone: status names it as copied for revision \
                     {revision}, but it is not provably this SecretRotation's"
                ),
            ));
        }
        if let Some(p) = &mut next.pending {
            p.created = None;
        }
    }
    if let Some(gone) = gone(o, remote) {
        let mut decision = failed(o, next, &gone);
        decision.notes.extend(notes);
        return decision;
    }
    let mut decision = hold(
        o,
        next,
        Action::Create {
            revision,
            expiry: None,
        },
        Requeue::Immediately,
    );
    decision.notes.extend(notes);
    decision
}
