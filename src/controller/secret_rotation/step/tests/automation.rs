//! Automation execution tokens: a rotation copies the current automation (the spec's
//! before the first one), which becomes previous and is deleted after the grace period;
//! a copy made before an interruption is adopted, never made twice; only the spec's
//! automation or a marked copy of the operator's is ever deleted, never the current one;
//! a current automation that is gone stops the rotation.

use std::time::Duration;

use super::*;
use crate::api::secret_rotation::AutomationTokenRotation;
use crate::controller::conditions::READY;
use crate::controller::secret_rotation::failure::{AUTOMATION_NOT_FOUND, CREDENTIAL_NOT_OWNED};
use crate::controller::secret_rotation::health;

/// The automation the spec names.
const ORIGINAL: &str = "orig";

fn automation_spec() -> SecretRotationSpec {
    let mut spec = api_key_spec(None);
    spec.credential = RotatedCredential {
        automation_execution_token: Some(AutomationTokenRotation {
            automation_id: ORIGINAL.into(),
        }),
        ..RotatedCredential::default()
    };
    spec.rotate_every = Some(Duration::from_secs(24 * 3600).into());
    spec
}

/// An automation on the tenant: a copy of `revision` (its name marker), owned by `owner`.
fn automation(id: &str, revision: Option<i64>, owner: &str, created: i64) -> RemoteCredential {
    RemoteCredential {
        id: id.into(),
        revision,
        active: true,
        created_at: Some(at(created)),
        expires_at: None,
        created_by: Some(owner.into()),
        subject: None,
    }
}

fn copy(id: &str, revision: i64, created: i64) -> RemoteCredential {
    automation(id, Some(revision), ME, created)
}

fn current(id: &str, created: i64) -> CredentialRef {
    CredentialRef {
        expires_at: None,
        ..reference(id, created)
    }
}

/// Before the first rotation: nothing in status, the spec's automation on the tenant.
fn first(phase: Phase) -> Observed {
    let mut o = in_phase(Phase::Idle);
    o.spec = automation_spec();
    o.status = SecretRotationStatus::default();
    o.secret = SecretFacts::default();
    o.remote = Ok(Remote {
        credentials: vec![automation(ORIGINAL, None, "alice", T0 - HOUR)],
        max_expiry: None,
    });
    if phase == Phase::Creating {
        o.status.phase = Phase::Creating;
        o.status.pending = Some(PendingRotation {
            revision: 1,
            reason: "Initial".into(),
            ..PendingRotation::default()
        });
    }
    o
}

/// Revision 1 (`c1`, a copy made at `T0`) current, the original deleted; with `phase`
/// `Creating`, revision 2 pending.
fn later(phase: Phase) -> Observed {
    let mut o = in_phase(Phase::Idle);
    o.spec = automation_spec();
    o.status = SecretRotationStatus {
        phase,
        revision: 1,
        current: Some(current("c1", T0)),
        last_rotation_time: Some(Time(at(T0))),
        pending: (phase == Phase::Creating).then(|| PendingRotation {
            revision: 2,
            reason: "Scheduled".into(),
            ..PendingRotation::default()
        }),
        ..SecretRotationStatus::default()
    };
    o.secret.revision = Some(1);
    o.secret.credential_id = Some("c1".into());
    o.remote = Ok(Remote {
        credentials: vec![copy("c1", 1, T0)],
        max_expiry: None,
    });
    o
}

fn with(mut o: Observed, credential: RemoteCredential) -> Observed {
    if let Ok(remote) = &mut o.remote {
        remote.credentials.push(credential);
    }
    o
}

fn created(credential: RemoteCredential) -> Outcome {
    Outcome {
        created: Some(credential),
        warnings: Vec::new(),
    }
}

#[test]
fn the_first_rotation_copies_the_spec_automation_which_becomes_previous() {
    let idle = first(Phase::Idle);
    let start = step(&idle);
    assert_eq!(start.status.phase, Phase::Creating);
    assert_eq!(start.status.pending.as_ref().unwrap().reason, "Initial");
    let o = first(Phase::Creating);
    let decision = step(&o);
    assert_eq!(
        decision.action,
        Action::Create {
            revision: 1,
            expiry: None
        }
    );
    let done = after(
        &o,
        &decision,
        Ok(&created(copy("c1", 1, o.now.as_second()))),
    );
    assert_eq!(done.status.phase, Phase::Publishing);
    let current = done.status.current.as_ref().unwrap();
    assert_eq!(
        (current.id.as_deref(), current.hint.as_deref()),
        (Some("c1"), None)
    );
    let previous = done.status.previous.as_ref().unwrap();
    assert_eq!(
        previous.id.as_deref(),
        Some(ORIGINAL),
        "deleted after the grace"
    );
    assert_eq!(
        previous.revoke_after,
        Some(Time(at(o.now.as_second() + 600)))
    );
    assert_eq!(
        done.status.next_rotation_at,
        Some(Time(at(o.now.as_second() + 24 * HOUR))),
        "rotateEvery after the copy was made: tokens never expire"
    );
}

#[test]
fn the_next_rotation_copies_the_current_copy_not_the_spec_automation() {
    let mut o = later(Phase::Idle);
    o.now = at(T0 + 24 * HOUR);
    let start = step(&o);
    assert_eq!(start.status.phase, Phase::Creating);
    assert_eq!(start.status.pending.as_ref().unwrap().reason, "Scheduled");
    let o = later(Phase::Creating);
    let decision = step(&o);
    assert!(matches!(
        decision.action,
        Action::Create { revision: 2, .. }
    ));
    let done = after(&o, &decision, Ok(&created(copy("c2", 2, T0 + HOUR))));
    assert_eq!(
        done.status.current.as_ref().and_then(|c| c.id.as_deref()),
        Some("c2")
    );
    assert_eq!(
        done.status.previous.as_ref().and_then(|c| c.id.as_deref()),
        Some("c1")
    );
}

#[test]
fn a_copy_made_before_an_interruption_is_adopted_not_made_again() {
    // The copy's answer was lost, or the process died before anything recorded it.
    let o = with(first(Phase::Creating), copy("c1", 1, T0));
    assert!(needs_identity(&o), "adopting needs the owner check");
    let decision = step(&o);
    assert_eq!(
        decision.action,
        Action::AdoptCopy {
            revision: 1,
            id: "c1".into()
        }
    );
    let done = after(&o, &decision, Ok(&created(copy("c1", 1, T0))));
    assert_eq!(done.status.phase, Phase::Publishing);
    assert_eq!(
        done.status.current.as_ref().and_then(|c| c.id.as_deref()),
        Some("c1")
    );
    assert!(done.notes.iter().any(|n| n.reason == "Adopted"));
    // Recorded after a failed Secret write, its token lost in a restart: adopted too
    // (an API key would be revoked and created again).
    let mut o = with(later(Phase::Creating), copy("c2", 2, T0 + HOUR));
    o.status.pending.as_mut().unwrap().created = Some(current("c2", T0 + HOUR));
    assert_eq!(
        step(&o).action,
        Action::AdoptCopy {
            revision: 2,
            id: "c2".into()
        }
    );
}

#[test]
fn of_several_copies_of_the_operators_one_is_kept_and_the_rest_deleted_first() {
    let o = with(
        with(later(Phase::Creating), copy("c2-late", 2, T0 + 2 * HOUR)),
        copy("c2-early", 2, T0 + HOUR),
    );
    let o = with(o, copy("c0-stray", 0, T0 - HOUR));
    let decision = step(&o);
    let Action::DeleteStrays(mut ids) = decision.action else {
        panic!("{:?}", decision.action);
    };
    ids.sort();
    assert_eq!(ids, vec!["c0-stray".to_owned(), "c2-late".to_owned()]);
    // The recorded one is kept, whatever its age.
    let mut o = with(
        with(later(Phase::Creating), copy("c2-late", 2, T0 + 2 * HOUR)),
        copy("c2-early", 2, T0 + HOUR),
    );
    o.status.pending.as_mut().unwrap().created = Some(current("c2-late", T0 + 2 * HOUR));
    assert_eq!(
        step(&o).action,
        Action::DeleteStrays(vec!["c2-early".into()])
    );
}

#[test]
fn a_marked_copy_someone_else_owns_is_neither_adopted_nor_deleted() {
    let o = with(
        later(Phase::Creating),
        automation("theirs", Some(2), "alice", T0 + HOUR),
    );
    assert!(matches!(
        step(&o).action,
        Action::Create { revision: 2, .. }
    ));
    // Named by status as the copy, but not provably ours: left alone, copied anew.
    let mut o = o;
    o.status.pending.as_mut().unwrap().created = Some(current("theirs", T0 + HOUR));
    let decision = step(&o);
    assert!(matches!(
        decision.action,
        Action::Create { revision: 2, .. }
    ));
    assert_eq!(decision.status.pending.as_ref().unwrap().created, None);
    assert!(
        decision
            .notes
            .iter()
            .any(|n| n.warning && n.reason == CREDENTIAL_NOT_OWNED)
    );
}

#[test]
fn revoking_deletes_the_spec_automation_or_the_operators_copy_never_the_current_one() {
    let revoking = |previous: &str, remote: Vec<RemoteCredential>| {
        let mut o = later(Phase::Revoking);
        o.status.current = Some(current("c2", T0 + HOUR));
        o.status.previous = Some(current(previous, T0));
        o.remote = Ok(Remote {
            credentials: remote,
            max_expiry: None,
        });
        step(&o)
    };
    let c2 = || copy("c2", 2, T0 + HOUR);
    let original = revoking(
        ORIGINAL,
        vec![automation(ORIGINAL, None, "alice", T0), c2()],
    );
    assert_eq!(
        original.action,
        Action::Revoke {
            credential: Some(ORIGINAL.into())
        },
        "the user asked for the original to go by choosing this kind"
    );
    let ours = revoking("c1", vec![copy("c1", 1, T0), c2()]);
    assert_eq!(
        ours.action,
        Action::Revoke {
            credential: Some("c1".into())
        }
    );
    let theirs = revoking("c1", vec![automation("c1", Some(1), "alice", T0), c2()]);
    assert_eq!(theirs.action, Action::Revoke { credential: None });
    assert!(
        theirs
            .notes
            .iter()
            .any(|n| n.reason == CREDENTIAL_NOT_OWNED)
    );
    let unmarked = revoking("other", vec![automation("other", None, ME, T0), c2()]);
    assert_eq!(unmarked.action, Action::Revoke { credential: None });
    // A status edited to name the current automation as previous.
    let current_one = revoking("c2", vec![c2()]);
    assert_eq!(current_one.action, Action::Revoke { credential: None });
    let gone = revoking("c1", vec![c2()]);
    assert_eq!(gone.action, Action::Revoke { credential: None });
}

#[test]
fn a_current_automation_that_is_gone_stops_the_rotation_with_automation_not_found() {
    for (mut o, which) in [
        (later(Phase::Idle), "the current automation (c1)"),
        (first(Phase::Idle), "(orig)"),
        (later(Phase::Creating), "the current automation (c1)"),
    ] {
        o.remote = Ok(Remote::default());
        let decision = step(&o);
        assert_eq!(decision.action, Action::Nothing);
        assert_eq!(decision.status.phase, o.status.phase, "nothing starts");
        assert_eq!(decision.status.pending, o.status.pending);
        assert_eq!(
            condition(&decision.status, READY),
            ("False", AUTOMATION_NOT_FOUND)
        );
        assert_eq!(
            condition(&decision.status, health::STALLED),
            ("True", AUTOMATION_NOT_FOUND)
        );
        let ready = decision
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == READY)
            .unwrap();
        assert!(ready.message.contains(which), "{}", ready.message);
        assert_eq!(
            decision.requeue,
            Requeue::Retry {
                at_least: RETRY_PERMANENT
            }
        );
    }
    // A copy made before the current one went is still adopted.
    let mut o = with(later(Phase::Creating), copy("c2", 2, T0 + HOUR));
    o.remote.as_mut().unwrap().credentials.remove(0);
    assert!(matches!(step(&o).action, Action::AdoptCopy { .. }));
}

#[test]
fn idle_health_checks_read_no_identity_and_a_healthy_current_copy_waits_for_its_schedule() {
    let o = later(Phase::Idle);
    assert!(!needs_identity(&o));
    let decision = step(&o);
    assert_eq!(decision.action, Action::Nothing);
    assert_eq!(decision.requeue, Requeue::At(at(T0 + 24 * HOUR)));
    assert_eq!(condition(&decision.status, READY), ("True", "Rotated"));
}
