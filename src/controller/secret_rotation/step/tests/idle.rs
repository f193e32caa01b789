//! `Idle`: when a rotation starts (schedule, request, a lost Secret or credential), what
//! it records first, stray keys of past revisions, and what `Ready` says meanwhile.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::controller::conditions::READY;
use crate::controller::secret_rotation::schedule::seconds_until_expiry;

#[test]
fn idle_records_the_intent_with_the_next_revision_and_why() {
    for (seen, reason) in [
        (Seen::Due, "Scheduled"),
        (Seen::Requested, "RotationRequested"),
        (Seen::SecretMissing, "SecretMissing"),
        (Seen::CredentialGone, "CredentialRevoked"),
    ] {
        let decision = step(&observe(Phase::Idle, seen));
        let pending = decision.status.pending.as_ref().expect("pending");
        assert_eq!(pending.revision, 4, "{seen:?}");
        assert_eq!(pending.reason, reason, "{seen:?}");
        assert_eq!(decision.requeue, Requeue::Immediately);
        assert_eq!(
            decision.status.revision, 3,
            "the revision moves when published"
        );
    }
    let gone = step(&observe(Phase::Idle, Seen::CredentialGone));
    assert_eq!(
        condition(&gone.status, READY),
        ("False", "CredentialRevoked")
    );
    assert!(
        gone.notes
            .iter()
            .any(|n| n.warning && n.reason == "CredentialRevoked")
    );
    let missing = step(&observe(Phase::Idle, Seen::SecretMissing));
    assert_eq!(
        condition(&missing.status, READY),
        ("False", "SecretMissing")
    );
}

#[test]
fn idle_waits_until_the_key_is_due_and_says_when() {
    let decision = step(&observe(Phase::Idle, Seen::Healthy));
    let due = at(T0 + 16 * HOUR);
    assert_eq!(decision.requeue, Requeue::At(due));
    assert_eq!(decision.status.next_rotation_at, Some(Time(due)));
    assert_eq!(condition(&decision.status, READY), ("True", "Rotated"));
    assert_eq!(
        seconds_until_expiry(&decision.status, at(T0 + HOUR)),
        Some(23 * HOUR)
    );
}

#[test]
fn a_request_older_than_the_last_rotation_is_not_repeated() {
    let mut o = observe(Phase::Idle, Seen::Healthy);
    o.rotate_requested_at = Some(at(T0 - 60));
    assert_eq!(step(&o).status.phase, Phase::Idle);
    o.rotate_requested_at = Some(at(T0));
    assert_eq!(step(&o).status.phase, Phase::Idle, "equal is not newer");
}

#[test]
fn the_first_rotation_starts_without_a_current_credential() {
    let mut o = in_phase(Phase::Idle);
    o.status = SecretRotationStatus::default();
    o.secret = SecretFacts::default();
    o.remote = Ok(Remote::default());
    let decision = step(&o);
    assert_eq!(decision.status.phase, Phase::Creating);
    assert_eq!(decision.status.pending.as_ref().unwrap().revision, 1);
    assert_eq!(decision.status.pending.as_ref().unwrap().reason, "Initial");
    assert_eq!(condition(&decision.status, READY), ("False", "Creating"));
}

#[test]
fn keys_of_past_revisions_that_are_neither_current_nor_previous_are_revoked() {
    let mut o = in_phase(Phase::Idle);
    if let Ok(remote) = &mut o.remote {
        remote.credentials.push(key("k1", 1, T0 - 30 * HOUR));
    }
    assert_eq!(step(&o).action, Action::DeleteStrays(vec!["k1".into()]));
}

#[test]
fn ready_turns_false_well_before_a_key_can_expire_unrotated() {
    // Due at 16 h, expires at 24 h: in danger from 20 h.
    let mut o = observe(Phase::Idle, Seen::TenantDown);
    o.now = at(T0 + 19 * HOUR);
    assert_eq!(condition(&step(&o).status, READY).0, "True");
    o.now = at(T0 + 20 * HOUR);
    assert_eq!(
        condition(&step(&o).status, READY),
        ("False", "RotationFailing")
    );
    let mut o = in_phase(Phase::Creating);
    o.now = at(T0 + 21 * HOUR);
    assert_eq!(
        condition(&step(&o).status, READY),
        ("False", "ExpiringSoon")
    );
}
