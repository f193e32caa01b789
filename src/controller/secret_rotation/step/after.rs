//! Where a decision leaves the status once its side effect ran ([`after`]), and the
//! cut-over of a published credential ([`publish`]): it becomes current, the one before
//! it previous until the grace period ends. Pure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::{
    Action, Decision, Failure, Kind, Note, Observed, Outcome, Requeue, automation, failed, handle,
    kind, normal, reference, warning,
};
use crate::api::secret_rotation::{CredentialRef, Phase, SecretRotationStatus};
use crate::controller::secret_rotation::health::set_conditions;
use crate::controller::secret_rotation::schedule;

/// Where `decision` leaves the status after its action ran.
pub fn after(o: &Observed, decision: &Decision, result: Result<&Outcome, &Failure>) -> Decision {
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(failure) => return failed(o, decision.status.clone(), failure),
    };
    let mut status = decision.status.clone();
    let mut notes: Vec<Note> = outcome
        .warnings
        .iter()
        .map(|w| warning("RolloutTargetMissing", w.clone()))
        .collect();
    let requeue = match &decision.action {
        Action::Nothing => decision.requeue,
        Action::DeleteStrays(ids) => {
            // A recorded credential whose value was lost is gone now.
            if let Some(pending) = &mut status.pending
                && pending
                    .created
                    .as_ref()
                    .and_then(handle)
                    .is_some_and(|id| ids.iter().any(|i| i == id))
            {
                pending.created = None;
            }
            notes.push(normal(
                "Revoked",
                format!(
                    "revoked {} credential(s) left by an interrupted rotation: {}",
                    ids.len(),
                    ids.join(", ")
                ),
            ));
            Requeue::Immediately
        }
        Action::Create { revision, .. }
        | Action::WriteSecret { revision }
        | Action::AdoptCopy { revision, .. } => {
            let Some(created) = &outcome.created else {
                return decision.clone();
            };
            let current = CredentialRef {
                created_at: Some(Time(created.created_at.unwrap_or(o.now))),
                expires_at: created.expires_at.map(Time),
                ..reference(o, &created.id)
            };
            publish(o, &mut status, current, *revision);
            let (target, key) = (&o.spec.secret.name, &o.spec.secret.key);
            notes.push(match &decision.action {
                Action::AdoptCopy { .. } => normal(
                    "Adopted",
                    format!(
                        "adopted automation {} (revision {revision}), copied before an \
                         interruption, and wrote its token to Secret {target} key {key}",
                        created.id
                    ),
                ),
                _ if kind(o) == Kind::AutomationToken => normal(
                    "Created",
                    format!(
                        "copied automation {} as {} (revision {revision}) and wrote its token \
                         to Secret {target} key {key}, its URL under {key}.url",
                        status.previous.as_ref().and_then(handle).unwrap_or("?"),
                        created.id
                    ),
                ),
                _ => normal(
                    "Created",
                    format!(
                        "created credential {} (revision {revision}) and wrote it to Secret \
                         {target} key {key}",
                        created.id
                    ),
                ),
            });
            Requeue::Immediately
        }
        Action::Rollout { revision } => {
            if !o.spec.rollout_targets.is_empty() {
                notes.push(normal(
                    "RolledOut",
                    format!(
                        "annotated {} rollout target(s) with revision {revision}",
                        o.spec.rollout_targets.len()
                    ),
                ));
            }
            status.phase = Phase::Draining;
            match status
                .previous
                .as_ref()
                .and_then(|p| p.revoke_after.clone())
            {
                Some(at) if at.0 > o.now => Requeue::At(at.0),
                _ => Requeue::Immediately,
            }
        }
        Action::Revoke { credential } => {
            if let Some(id) = credential {
                let what = match kind(o) {
                    Kind::AutomationToken => "deleted the previous automation",
                    _ => "revoked the previous credential",
                };
                notes.push(normal("Revoked", format!("{what} {id}")));
            }
            status.phase = Phase::Idle;
            status.previous = None;
            Requeue::Immediately
        }
    };
    set_conditions(&mut status, o, None);
    Decision {
        status,
        action: Action::Nothing,
        requeue,
        notes,
    }
}

/// The status after a credential was published: it becomes current, the old one previous
/// until the grace period ends.
pub(super) fn publish(
    o: &Observed,
    status: &mut SecretRotationStatus,
    current: CredentialRef,
    revision: i64,
) {
    let revoke_after = Some(Time(schedule::add(o.now, o.spec.grace_period.into())));
    // The old value moves to `<key>.previous` even when the operator did not create it
    // (a bootstrap credential): `previous` then has no id and is only cleaned, not revoked.
    // The first copy of an automation replaces the one the spec names: that one is
    // previous, and deleted after the grace period.
    let had_value = status.current.is_some() || o.secret.has_value;
    let original = automation::original(o).filter(|_| status.current.is_none());
    status.previous = match status.current.take() {
        Some(old) => Some(CredentialRef {
            revoke_after,
            ..old
        }),
        None => match original {
            Some(id) => Some(CredentialRef {
                revoke_after,
                ..reference(o, id)
            }),
            None if had_value => Some(CredentialRef {
                id: None,
                hint: None,
                created_at: None,
                expires_at: None,
                revoke_after,
            }),
            None => None,
        },
    };
    status.current = Some(current);
    status.revision = revision;
    let requested = status.pending.as_ref().and_then(|p| p.requested_at.clone());
    status.last_rotation_time = Some(match requested {
        Some(r) if r.0 > o.now => r,
        _ => Time(o.now),
    });
    status.pending = None;
    status.phase = Phase::Publishing;
}
