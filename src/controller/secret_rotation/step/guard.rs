//! What the step may touch: whether the Secret is the operator's to write, which
//! credentials are provably its own to revoke, and whether the operator's identity is
//! needed to tell. Pure.

use super::{
    Action, Decision, Failure, Kind, Observed, Remote, RemoteCredential, Requeue, automation,
    handle, hold, is_api_key, kind, ours, warning,
};
use crate::api::secret_rotation::{CredentialRef, Phase};
use crate::controller::secret_rotation::failure;
use crate::controller::secret_rotation::proof::{automation_deletable, provably_ours};

/// Whether `credential` may be revoked (an automation: deleted; see [`super::proof`]).
pub(super) fn revocable(
    o: &Observed,
    credential: &RemoteCredential,
    recorded: Option<&CredentialRef>,
) -> bool {
    let identity = o.identity.as_deref();
    match kind(o) {
        Kind::AutomationToken => automation_deletable(
            credential,
            identity,
            automation::original(o).unwrap_or_default(),
            o.status.current.as_ref().and_then(handle),
        ),
        kind => provably_ours(kind == Kind::ApiKey, credential, identity, recorded),
    }
}

/// Whether the decision may revoke something, so that observe must read who the operator
/// is (`users/me`); read only then, to spare the tenant two requests per look.
pub fn needs_identity(o: &Observed) -> bool {
    let Ok(remote) = &o.remote else {
        return false;
    };
    let status = &o.status;
    let ours = ours(status);
    let unknown = |c: &&RemoteCredential| !ours.contains(&c.id.as_str());
    let pending = status.pending.as_ref();
    match status.phase {
        Phase::Revoking => status.previous.as_ref().and_then(handle).is_some(),
        Phase::Creating if pending.is_some_and(|p| p.created.is_some()) => true,
        Phase::Creating if kind(o) != Kind::OAuthClientSecret => remote
            .credentials
            .iter()
            .filter(unknown)
            .any(|c| c.revision.is_some()),
        Phase::Creating => remote
            .credentials
            .iter()
            .filter(unknown)
            .any(|c| !pending.is_some_and(|p| p.known_hints.contains(&c.id))),
        Phase::Idle => {
            is_api_key(o)
                && remote
                    .credentials
                    .iter()
                    .filter(unknown)
                    .any(|c| c.revision.is_some())
        }
        Phase::Publishing | Phase::Draining => false,
    }
}

/// Why the operator may not write the Secret now, if it may not. Publishing and Draining
/// do not write it; an immutable Secret matters only when a write is coming.
pub(super) fn secret_blocked(o: &Observed, writing: bool) -> Option<Failure> {
    let secret = &o.secret;
    if !secret.writable() {
        return Some(failure::secret_not_owned(&o.spec.secret.name, &o.name));
    }
    (writing && secret.exists && secret.immutable)
        .then(|| failure::secret_immutable(&o.spec.secret.name))
}

/// Revokes the previous credential if it is still there and provably the operator's; one
/// that is gone or expired needs nothing, one that is not provably ours (status edited by
/// someone else) is left alone with a warning.
pub(super) fn revoking(o: &Observed, remote: &Remote) -> Decision {
    let previous = o.status.previous.as_ref();
    let mut notes = Vec::new();
    let credential = match previous.and_then(handle) {
        None => None,
        Some(id) => match remote.find(id) {
            Some(found) if found.active && revocable(o, found, previous) => Some(id.to_owned()),
            Some(found) if found.active => {
                notes.push(warning(
                    failure::CREDENTIAL_NOT_OWNED,
                    format!(
                        "left the previous credential {id} alone: it is not provably this \
                         SecretRotation's (marker, creator or owner differ)"
                    ),
                ));
                None
            }
            _ => None,
        },
    };
    let mut decision = hold(
        o,
        o.status.clone(),
        Action::Revoke { credential },
        Requeue::Immediately,
    );
    decision.notes = notes;
    decision
}
