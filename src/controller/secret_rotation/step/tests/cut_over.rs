//! After the create: the new credential becomes current and the old one previous,
//! Publishing rolls out, Draining waits out the grace period, Revoking revokes; a value the
//! operator did not create moves to previous but is never revoked.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;

#[test]
fn a_created_key_becomes_current_and_the_old_one_previous_until_the_grace_period_ends() {
    let o = in_phase(Phase::Creating);
    let decision = step(&o);
    let outcome = Outcome {
        created: Some(key("k4", 4, T0 + HOUR + 60)),
        warnings: Vec::new(),
    };
    let done = after(&o, &decision, Ok(&outcome));
    assert_eq!(done.status.phase, Phase::Publishing);
    assert_eq!(done.status.revision, 4);
    assert_eq!(
        done.status.current.as_ref().unwrap().id.as_deref(),
        Some("k4")
    );
    assert_eq!(
        done.status.previous.as_ref().unwrap().id.as_deref(),
        Some("k3")
    );
    assert_eq!(done.status.last_rotation_time, Some(Time(o.now)));
    assert!(
        done.notes
            .iter()
            .any(|n| n.reason == "Created" && !n.warning)
    );
    // Publishing → rollout → Draining until the grace period ends.
    let mut o = in_phase(Phase::Publishing);
    o.spec.grace_period = Duration::from_secs(3600).into();
    let rollout = step(&o);
    let drained = after(&o, &rollout, Ok(&Outcome::default()));
    assert_eq!(drained.status.phase, Phase::Draining);
    assert_eq!(drained.requeue, Requeue::At(at(T0 + 2 * HOUR)));
    let o = in_phase(Phase::Draining);
    assert_eq!(step(&o).requeue, Requeue::At(at(T0 + 2 * HOUR)));
    // Revoking → Idle without a previous.
    let o = in_phase(Phase::Revoking);
    let revoke = step(&o);
    let idle = after(&o, &revoke, Ok(&Outcome::default()));
    assert_eq!(idle.status.phase, Phase::Idle);
    assert_eq!(idle.status.previous, None);
    assert!(idle.notes.iter().any(|n| n.reason == "Revoked"));
}

#[test]
fn a_bootstrap_value_moves_to_previous_but_is_never_revoked() {
    let mut o = in_phase(Phase::Creating);
    o.status.current = None;
    o.status.revision = 0;
    o.status.pending = Some(PendingRotation {
        revision: 1,
        reason: "Initial".into(),
        ..PendingRotation::default()
    });
    o.secret = SecretFacts {
        exists: true,
        has_value: true,
        revision: None,
        credential_id: None,
        created_for_us: false,
        opted_in: true,
        immutable: false,
    };
    o.remote = Ok(Remote::default());
    let decision = step(&o);
    let outcome = Outcome {
        created: Some(key("k1", 1, T0)),
        warnings: Vec::new(),
    };
    let done = after(&o, &decision, Ok(&outcome));
    let previous = done.status.previous.clone().unwrap();
    assert_eq!(handle(&previous), None);
    let mut revoking = o.clone();
    revoking.status = done.status.clone();
    revoking.status.phase = Phase::Revoking;
    assert_eq!(step(&revoking).action, Action::Revoke { credential: None });
}
