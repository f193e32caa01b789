//! The state machine's trust boundaries: it writes only a Secret that is its own, never
//! creates a second credential for a revision because a Secret write failed, and revokes
//! only what is provably its own (status and descriptions can be written by others).

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::api::secret_rotation::AmbiguousSecrets;
use crate::controller::conditions::READY;
use crate::controller::secret_rotation::failure::{
    AMBIGUOUS_SECRET, CREDENTIAL_NOT_OWNED, SECRET_IMMUTABLE, SECRET_NOT_OWNED,
};
use crate::controller::secret_rotation::health;
use crate::controller::secret_rotation::observed::SecretFacts;
use crate::controller::secret_rotation::record;

fn not_ours(o: &mut Observed) {
    o.secret.created_for_us = false;
    o.secret.opted_in = false;
}

#[test]
fn a_secret_that_is_not_ours_stops_everything_that_would_write_it_or_create() {
    for (phase, seen) in [
        (Phase::Idle, Seen::Healthy),
        (Phase::Idle, Seen::Due),
        (Phase::Creating, Seen::Healthy),
        (Phase::Revoking, Seen::GraceOver),
    ] {
        let mut o = observe(phase, seen);
        not_ours(&mut o);
        let decision = step(&o);
        assert_eq!(decision.action, Action::Nothing, "{phase:?}");
        assert_eq!(
            decision.status.phase, phase,
            "no intent recorded: {phase:?}"
        );
        assert_eq!(decision.status.pending, o.status.pending);
        assert_eq!(
            condition(&decision.status, READY),
            ("False", SECRET_NOT_OWNED),
            "{phase:?}"
        );
        assert_eq!(
            condition(&decision.status, health::STALLED),
            ("True", SECRET_NOT_OWNED)
        );
        let message = &decision
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == READY)
            .unwrap()
            .message;
        assert!(
            message.contains("qlikops.io/allow-rotation-by=reports"),
            "{message}"
        );
    }
    // Publishing and Draining do not write the Secret.
    let mut o = in_phase(Phase::Publishing);
    not_ours(&mut o);
    assert_eq!(step(&o).action, Action::Rollout { revision: 4 });
}

#[test]
fn a_missing_secret_an_opted_in_one_or_our_own_is_written() {
    let mut missing = in_phase(Phase::Creating);
    missing.secret = SecretFacts::default();
    let mut opted_in = in_phase(Phase::Creating);
    not_ours(&mut opted_in);
    opted_in.secret.opted_in = true;
    for o in [missing, opted_in, in_phase(Phase::Creating)] {
        assert!(matches!(
            step(&o).action,
            Action::Create { revision: 4, .. }
        ));
    }
}

#[test]
fn an_immutable_secret_stops_a_rotation_before_anything_is_created() {
    let mut o = observe(Phase::Idle, Seen::Healthy);
    o.secret.immutable = true;
    assert_eq!(
        condition(&step(&o).status, READY),
        ("True", "Rotated"),
        "nothing to write yet"
    );
    for (phase, seen) in [(Phase::Idle, Seen::Due), (Phase::Creating, Seen::Healthy)] {
        let mut o = observe(phase, seen);
        o.secret.immutable = true;
        let decision = step(&o);
        assert_eq!(decision.action, Action::Nothing);
        assert_eq!(decision.status.phase, phase);
        assert_eq!(
            condition(&decision.status, READY),
            ("False", SECRET_IMMUTABLE)
        );
        assert_eq!(
            condition(&decision.status, health::STALLED).0,
            "True",
            "a person must act"
        );
    }
}

fn write_failed() -> Failure {
    Failure {
        reason: "KubernetesApiError",
        message: "failed to write the Secret: HTTP 500".into(),
        kind: FailureKind::Transient,
        retry_after: None,
    }
}

#[test]
fn a_failed_secret_write_keeps_the_created_credential_and_retries_the_write_only() {
    let o = in_phase(Phase::Creating);
    let create = step(&o);
    assert!(matches!(create.action, Action::Create { .. }));
    // The create succeeded, the write failed: the value is held, the status records it.
    let mut held = o.clone();
    held.held = Some(key("k4", 4, T0 + HOUR + 60));
    let failed = after(&held, &create, Err(&write_failed()));
    assert_eq!(failed.status.phase, Phase::Creating);
    let created = failed.status.pending.as_ref().unwrap().created.clone();
    assert_eq!(created.as_ref().and_then(|c| c.id.as_deref()), Some("k4"));
    assert_eq!(
        failed.requeue,
        Requeue::Retry {
            at_least: Duration::ZERO
        }
    );
    // The next look writes it again and creates nothing, as long as it is held.
    let mut again = held.clone();
    again.status = failed.status.clone();
    if let Ok(remote) = &mut again.remote {
        remote.credentials.push(key("k4", 4, T0 + HOUR + 60));
    }
    let retry = step(&again);
    assert_eq!(retry.action, Action::WriteSecret { revision: 4 });
    assert!(
        record::same_status(&retry.status, &again.status)
            || record::same_intent(&retry.status, &again.status),
        "a retry rewrites nothing but conditions"
    );
    // A permanent refusal stalls, still holding and recording it.
    let refused = Failure {
        reason: "KubernetesRejected",
        message: "failed to write the Secret: HTTP 422 Invalid".into(),
        kind: FailureKind::Permanent,
        retry_after: None,
    };
    let stalled = after(&again, &retry, Err(&refused));
    assert_eq!(stalled.status.pending, failed.status.pending);
    assert_eq!(
        condition(&stalled.status, health::STALLED),
        ("True", "KubernetesRejected")
    );
    // Written at last: it becomes current.
    let outcome = Outcome {
        created: Some(key("k4", 4, T0 + HOUR + 60)),
        warnings: Vec::new(),
    };
    let done = after(&again, &retry, Ok(&outcome));
    assert_eq!(done.status.phase, Phase::Publishing);
    assert_eq!(done.status.pending, None);
    assert_eq!(done.status.current.unwrap().id.as_deref(), Some("k4"));
}

#[test]
fn a_recorded_credential_whose_value_was_lost_is_revoked_once_then_created_again() {
    let mut o = in_phase(Phase::Creating);
    if let Some(p) = &mut o.status.pending {
        p.created = Some(reference("k4", T0 + HOUR));
    }
    if let Ok(remote) = &mut o.remote {
        remote.credentials.push(key("k4", 4, T0 + HOUR));
    }
    let decision = step(&o);
    assert_eq!(decision.action, Action::DeleteStrays(vec!["k4".into()]));
    let done = after(&o, &decision, Ok(&Outcome::default()));
    assert_eq!(done.status.pending.as_ref().unwrap().created, None);
    // Gone from the tenant: create.
    let mut next = o.clone();
    next.status = done.status.clone();
    if let Ok(remote) = &mut next.remote {
        remote.credentials.retain(|c| c.id != "k4");
    }
    assert!(matches!(
        step(&next).action,
        Action::Create { revision: 4, .. }
    ));
}

#[test]
fn an_id_in_status_that_is_not_provably_ours_is_never_revoked() {
    // Someone with secretrotations/status access points `previous` at another user's key
    // carrying a copy of the marker.
    let mut o = in_phase(Phase::Revoking);
    if let Ok(remote) = &mut o.remote {
        for c in &mut remote.credentials {
            if c.id == "k3" {
                c.created_by = Some("mallory".into());
                c.subject = Some("mallory".into());
            }
        }
    }
    let decision = step(&o);
    assert_eq!(decision.action, Action::Revoke { credential: None });
    assert!(
        decision
            .notes
            .iter()
            .any(|n| n.warning && n.reason == CREDENTIAL_NOT_OWNED)
    );
    // Without the operator's identity nothing is provable.
    let mut unknown = in_phase(Phase::Revoking);
    unknown.identity = None;
    assert_eq!(step(&unknown).action, Action::Revoke { credential: None });
    // A recorded pending credential likewise.
    let mut o = in_phase(Phase::Creating);
    if let Some(p) = &mut o.status.pending {
        p.created = Some(reference("forged", T0));
    }
    if let Ok(remote) = &mut o.remote {
        let mut forged = key("forged", 4, T0);
        forged.created_by = Some("mallory".into());
        remote.credentials.push(forged);
    }
    let decision = step(&o);
    assert!(matches!(decision.action, Action::Create { .. }));
    assert_eq!(decision.status.pending.as_ref().unwrap().created, None);
}

#[test]
fn a_key_with_our_marker_made_by_another_user_is_never_a_stray() {
    for phase in [Phase::Idle, Phase::Creating] {
        for (by, sub) in [("mallory", "mallory"), ("mallory", ME), (ME, "mallory")] {
            let mut o = in_phase(phase);
            let mut forged = key("forged", 2, T0 - HOUR);
            forged.created_by = Some(by.into());
            forged.subject = Some(sub.into());
            if let Ok(remote) = &mut o.remote {
                remote.credentials.push(forged);
            }
            let decision = step(&o);
            assert!(
                !matches!(decision.action, Action::DeleteStrays(_)),
                "{phase:?} by {by} for {sub}: {:?}",
                decision.action
            );
        }
        // An expired key of ours needs no revoking either.
        let mut o = in_phase(phase);
        let mut expired = key("old", 2, T0 - 30 * HOUR);
        expired.active = false;
        if let Ok(remote) = &mut o.remote {
            remote.credentials.push(expired);
        }
        assert!(!matches!(step(&o).action, Action::DeleteStrays(_)));
    }
}

#[test]
fn the_identity_is_read_only_when_something_may_be_revoked() {
    assert!(!needs_identity(&in_phase(Phase::Idle)), "steady state");
    assert!(needs_identity(&in_phase(Phase::Revoking)));
    assert!(!needs_identity(&in_phase(Phase::Publishing)));
    assert!(!needs_identity(&in_phase(Phase::Creating)));
    let mut o = in_phase(Phase::Idle);
    if let Ok(remote) = &mut o.remote {
        remote.credentials.push(key("k1", 1, T0 - 30 * HOUR));
    }
    assert!(needs_identity(&o), "a possible stray");
    let mut o = in_phase(Phase::Creating);
    if let Some(p) = &mut o.status.pending {
        p.created = Some(reference("k4", T0));
    }
    assert!(needs_identity(&o), "a recorded credential to revoke");
}

fn hint(h: &str, by: Option<&str>) -> RemoteCredential {
    RemoteCredential {
        id: h.into(),
        revision: None,
        active: true,
        created_at: Some(at(T0)),
        expires_at: None,
        created_by: by.map(str::to_owned),
        subject: None,
    }
}

/// OAuth, `Creating` after an answer was lost: the client had `boot` and `ab12` (current).
fn oauth_creating(new_hints: Vec<RemoteCredential>) -> Observed {
    let mut o = in_phase(Phase::Creating);
    o.spec = oauth_spec();
    o.status.current = Some(CredentialRef {
        id: None,
        hint: Some("ab12".into()),
        created_at: Some(Time(at(T0))),
        expires_at: None,
        revoke_after: None,
    });
    if let Some(p) = &mut o.status.pending {
        p.known_hints = vec!["boot".into(), "ab12".into()];
    }
    let mut credentials = vec![hint("boot", Some("admin")), hint("ab12", Some(ME))];
    credentials.extend(new_hints);
    o.remote = Ok(Remote {
        credentials,
        max_expiry: None,
    });
    o
}

#[test]
fn oauth_revokes_a_new_hint_only_when_it_is_the_one_its_identity_created() {
    // Ours alone: revoked.
    let o = oauth_creating(vec![hint("zz99", Some(ME))]);
    assert_eq!(step(&o).action, Action::DeleteStrays(vec!["zz99".into()]));
    // Ours, and one a console user added meanwhile: only ours.
    let o = oauth_creating(vec![hint("zz99", Some(ME)), hint("cons", Some("admin"))]);
    assert_eq!(step(&o).action, Action::DeleteStrays(vec!["zz99".into()]));
    // Only someone else's: ours was never created; create.
    let o = oauth_creating(vec![hint("cons", Some("admin"))]);
    assert!(matches!(step(&o).action, Action::Create { .. }));
}

#[test]
fn oauth_hints_that_cannot_be_told_apart_are_never_revoked_and_wait_for_a_person() {
    for new in [
        // Two by the operator's identity: one is a console user acting as it.
        vec![hint("zz99", Some(ME)), hint("cons", Some(ME))],
        // The tenant does not say who created it.
        vec![hint("zz99", None)],
    ] {
        let o = oauth_creating(new.clone());
        let decision = step(&o);
        assert_eq!(decision.action, Action::Nothing);
        assert_eq!(
            condition(&decision.status, READY),
            ("False", AMBIGUOUS_SECRET)
        );
        assert_eq!(condition(&decision.status, health::STALLED).0, "True");
        let ambiguous = decision.status.pending.as_ref().unwrap().ambiguous.clone();
        let hints: Vec<String> = new.iter().map(|c| c.id.clone()).collect();
        assert_eq!(
            ambiguous,
            Some(AmbiguousSecrets {
                hints: hints.clone(),
                since: Some(Time(o.now)),
            })
        );
        assert!(decision.notes.iter().any(|n| n.reason == AMBIGUOUS_SECRET));
        // Looked at again, even after one of them was deleted: still waiting, nothing
        // revoked, nothing rewritten.
        let mut again = o.clone();
        again.status = decision.status.clone();
        if let Ok(remote) = &mut again.remote {
            remote.credentials.retain(|c| c.id != "zz99");
        }
        let waiting = step(&again);
        assert_eq!(waiting.action, Action::Nothing);
        assert!(record::same_status(&waiting.status, &decision.status));
        assert!(waiting.notes.is_empty(), "no new warning");
        // A rotation request newer than the finding resumes, taking them as known.
        again.rotate_requested_at = Some(at(T0 + 2 * HOUR));
        again.now = at(T0 + 2 * HOUR);
        let resumed = step(&again);
        assert!(
            matches!(resumed.action, Action::Create { .. }),
            "{resumed:?}"
        );
        let pending = resumed.status.pending.as_ref().unwrap();
        assert_eq!(pending.ambiguous, None);
        for h in &hints {
            assert!(pending.known_hints.contains(h));
        }
    }
}
