//! Every phase against every kind of observation, every failing side effect, and a restart
//! in any phase: the table that says what each phase does.

use std::time::Duration;

use super::*;
use crate::controller::conditions::READY;
use crate::controller::secret_rotation::health;

/// What a phase should do with an observation: the phase held before the action, and the
/// action.
fn expected(phase: Phase, seen: Seen) -> (Phase, Action) {
    use Seen::*;
    let create = Action::Create {
        revision: 4,
        expiry: Some(Duration::from_secs(24 * 3600)),
    };
    let rollout = Action::Rollout { revision: 4 };
    let revoke = Action::Revoke {
        credential: Some("k3".into()),
    };
    match (phase, seen) {
        (_, TenantDown | RateLimited | Unauthorized)
            if !matches!(phase, Phase::Publishing | Phase::Draining) =>
        {
            (phase, Action::Nothing)
        }
        (Phase::Idle, Healthy | GraceOver) => (Phase::Idle, Action::Nothing),
        (Phase::Idle, _) => (Phase::Creating, Action::Nothing),
        // Creating always creates: the missing Secret is recreated with the new value.
        (Phase::Creating, _) => (Phase::Creating, create),
        (Phase::Publishing, _) => (Phase::Publishing, rollout),
        // `Due` is 16 h on, long past the grace period.
        (Phase::Draining, GraceOver | SecretMissing | Due) => (Phase::Revoking, Action::Nothing),
        (Phase::Draining, _) => (Phase::Draining, Action::Nothing),
        // Nothing to revoke once the tenant no longer has it.
        (Phase::Revoking, CredentialGone) => (Phase::Revoking, Action::Revoke { credential: None }),
        (Phase::Revoking, _) => (Phase::Revoking, revoke),
    }
}

#[test]
fn every_phase_against_every_observation() {
    for phase in PHASES {
        for seen in ALL_SEEN {
            let o = observe(phase, seen);
            let decision = step(&o);
            let (want_phase, want_action) = expected(phase, seen);
            assert_eq!(
                (decision.status.phase, &decision.action),
                (want_phase, &want_action),
                "{phase:?} × {seen:?}"
            );
            assert_eq!(decision.status.observed_generation, Some(1));
            let (rotating, _) = condition(&decision.status, health::ROTATING);
            let in_flight = decision.status.phase != Phase::Idle;
            assert_eq!(
                rotating == "True",
                in_flight,
                "{phase:?} × {seen:?}: Rotating"
            );
            let (stalled, stalled_reason) = condition(&decision.status, health::STALLED);
            let permanent = matches!(seen, Seen::Unauthorized)
                && !matches!(phase, Phase::Publishing | Phase::Draining);
            assert_eq!(
                stalled == "True",
                permanent,
                "{phase:?} × {seen:?}: Stalled"
            );
            if permanent {
                assert_eq!(stalled_reason, "Unauthorized");
                assert_eq!(
                    condition(&decision.status, READY),
                    ("False", "Unauthorized")
                );
            }
        }
    }
}

#[test]
fn a_tenant_outage_retries_without_touching_anything_and_429_honours_retry_after() {
    for phase in [Phase::Idle, Phase::Creating, Phase::Revoking] {
        let decision = step(&observe(phase, Seen::TenantDown));
        assert_eq!(
            decision.requeue,
            Requeue::Retry {
                at_least: Duration::ZERO
            }
        );
        assert_eq!(decision.status.current, in_phase(phase).status.current);
        assert_eq!(decision.status.pending, in_phase(phase).status.pending);
        // The credential is far from expiry: still Ready, but Reconciling says why.
        assert_eq!(condition(&decision.status, READY).0, "True");
        assert_eq!(
            condition(&decision.status, health::RECONCILING),
            ("True", "TenantUnavailable")
        );
        let decision = step(&observe(phase, Seen::RateLimited));
        assert_eq!(decision.requeue, Requeue::Paused(Duration::from_secs(7)));
    }
}

/// The status a decision persists is a fixed point: the next reconcile, finding nothing
/// new, decides the very same status (so it writes nothing), in every phase and for every
/// kind of observation, including those that move the phase on.
#[test]
fn an_unchanged_observation_gives_the_stored_status_back() {
    for phase in PHASES {
        for seen in ALL_SEEN {
            let o = observe(phase, seen);
            let first = step(&o);
            let mut again = o.clone();
            again.status = first.status.clone();
            let second = step(&again);
            assert!(
                crate::controller::secret_rotation::record::same_status(
                    &first.status,
                    &second.status
                ),
                "{phase:?} × {seen:?}: a reconcile that finds nothing new must not rewrite \
                 the status:\n first: {:?}\nsecond: {:?}",
                first.status,
                second.status
            );
        }
    }
}

/// Every side effect can fail: the phase (and the intent) stays, nothing else moves, and
/// the retry waits as long as the kind of failure asks.
#[test]
fn every_failing_side_effect_keeps_its_phase() {
    let retry = |at_least| Requeue::Retry { at_least };
    let failures = [
        (tenant_down(), retry(Duration::ZERO)),
        (
            Failure {
                reason: "RateLimited",
                message: "rate limited".into(),
                kind: FailureKind::Transient,
                retry_after: Some(Duration::from_secs(11)),
            },
            Requeue::Paused(Duration::from_secs(11)),
        ),
        (
            Failure {
                reason: "KeyLimitReached",
                message: "limit".into(),
                kind: FailureKind::LimitReached,
                retry_after: None,
            },
            retry(RETRY_LIMIT),
        ),
        (
            Failure {
                reason: "Forbidden",
                message: "forbidden".into(),
                kind: FailureKind::Permanent,
                retry_after: None,
            },
            retry(RETRY_PERMANENT),
        ),
    ];
    for phase in PHASES {
        let o = in_phase(phase);
        let decision = step(&o);
        if decision.action == Action::Nothing {
            continue;
        }
        for (failure, requeue) in &failures {
            let done = after(&o, &decision, Err(failure));
            assert_eq!(done.status.phase, phase, "{phase:?} × {}", failure.reason);
            assert_eq!(done.status.current, o.status.current);
            assert_eq!(done.status.previous, o.status.previous);
            assert_eq!(done.status.pending, o.status.pending);
            assert_eq!(done.action, Action::Nothing);
            assert_eq!(done.requeue, *requeue, "{phase:?} × {}", failure.reason);
            let stalled = failure.kind != FailureKind::Transient;
            assert_eq!(
                condition(&done.status, health::STALLED).0 == "True",
                stalled,
                "{phase:?} × {}",
                failure.reason
            );
        }
    }
}

/// A restart finds the phase in status but not whether its side effect happened; each
/// phase's step is safe either way.
#[test]
fn a_restart_in_any_phase_converges_whether_or_not_its_side_effect_happened() {
    // Creating: nothing created → create; created, not in the Secret → delete it first;
    // in the Secret → adopt (the three cases above have their own tests).
    // Publishing: annotating the rollout targets again is harmless.
    let o = in_phase(Phase::Publishing);
    assert_eq!(step(&o).action, Action::Rollout { revision: 4 });
    // Revoking: the previous key may already be gone (revoked before the crash): nothing
    // is revoked again, and the Secret's `.previous` removal is idempotent.
    let mut o = in_phase(Phase::Revoking);
    if let Ok(remote) = &mut o.remote {
        remote.credentials.retain(|c| c.id != "k3");
    }
    let decision = step(&o);
    assert_eq!(decision.action, Action::Revoke { credential: None });
    let done = after(&o, &decision, Ok(&Outcome::default()));
    assert_eq!(
        (done.status.phase, done.status.previous),
        (Phase::Idle, None)
    );
}
