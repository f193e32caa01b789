//! The state machine as a table: every phase against every kind of observation, plus the
//! outcomes of each side effect.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::api::SecretRotationSpec;
use crate::api::secret_rotation::{
    ApiKeyRotation, OAuthClientSecretRotation, RotatedCredential, SecretTarget,
};
use crate::controller::conditions::READY;
use crate::controller::secret_rotation::health;
use crate::controller::secret_rotation::observed::{RemoteCredential, SecretFacts};
use crate::controller::secret_rotation::schedule::seconds_until_expiry;

pub(super) const HOUR: i64 = 3600;
/// When the current key (revision 3) was created.
pub(super) const T0: i64 = 1_800_000_000;
/// The operator's identity on the tenant.
pub(super) const ME: &str = "operator-user";

pub(super) fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(seconds).unwrap()
}

pub(super) fn api_key_spec(expiry: Option<Duration>) -> SecretRotationSpec {
    SecretRotationSpec {
        tenant_ref: crate::api::TenantRef {
            name: "acme".into(),
        },
        credential: RotatedCredential {
            api_key: Some(ApiKeyRotation {
                description: None,
                expiry: expiry.map(Into::into),
            }),
            oauth_client_secret: None,
        },
        secret: SecretTarget {
            name: "reports".into(),
            key: "token".into(),
        },
        renew_before: None,
        rotate_every: None,
        grace_period: Duration::from_secs(600).into(),
        rollout_targets: Vec::new(),
    }
}

pub(super) fn oauth_spec() -> SecretRotationSpec {
    let mut spec = api_key_spec(None);
    spec.credential = RotatedCredential {
        api_key: None,
        oauth_client_secret: Some(OAuthClientSecretRotation {
            client_id: "m2m".into(),
        }),
    };
    spec.rotate_every = Some(Duration::from_secs(7 * 24 * 3600).into());
    spec
}

/// An API key the operator created (marker, subject and creator its own).
pub(super) fn key(id: &str, revision: i64, created: i64) -> RemoteCredential {
    RemoteCredential {
        id: id.into(),
        revision: Some(revision),
        active: true,
        created_at: Some(at(created)),
        expires_at: Some(at(created + 24 * HOUR)),
        created_by: Some(ME.into()),
        subject: Some(ME.into()),
    }
}

pub(super) fn reference(id: &str, created: i64) -> CredentialRef {
    CredentialRef {
        id: Some(id.into()),
        hint: None,
        created_at: Some(Time(at(created))),
        expires_at: Some(Time(at(created + 24 * HOUR))),
        revoke_after: None,
    }
}

/// Revision 3 (`k3`) current; in phases after Creating, revision 4 (`k4`) current and
/// `k3` previous until `T0 + 2h`.
pub(super) fn in_phase(phase: Phase) -> Observed {
    let mut status = SecretRotationStatus {
        phase,
        revision: 3,
        current: Some(reference("k3", T0)),
        last_rotation_time: Some(Time(at(T0))),
        ..SecretRotationStatus::default()
    };
    let mut secret = SecretFacts {
        exists: true,
        has_value: true,
        revision: Some(3),
        credential_id: Some("k3".into()),
        created_for_us: true,
        opted_in: false,
        immutable: false,
    };
    let mut credentials = vec![key("k3", 3, T0)];
    match phase {
        Phase::Idle => {}
        Phase::Creating => {
            status.pending = Some(PendingRotation {
                revision: 4,
                reason: "Scheduled".into(),
                started_at: Some(Time(at(T0 + HOUR))),
                ..PendingRotation::default()
            });
        }
        Phase::Publishing | Phase::Draining | Phase::Revoking => {
            status.revision = 4;
            status.previous = Some(CredentialRef {
                revoke_after: Some(Time(at(T0 + 2 * HOUR))),
                ..reference("k3", T0)
            });
            status.current = Some(reference("k4", T0 + HOUR));
            secret.revision = Some(4);
            secret.credential_id = Some("k4".into());
            credentials.push(key("k4", 4, T0 + HOUR));
        }
    }
    Observed {
        now: at(T0 + HOUR + 60),
        name: "reports".into(),
        generation: Some(1),
        spec: api_key_spec(None),
        status,
        rotate_requested_at: None,
        secret,
        remote: Ok(Remote {
            credentials,
            max_expiry: Some(Duration::from_secs(24 * 3600)),
        }),
        identity: Some(ME.into()),
        held: None,
    }
}

/// The kinds of observation every phase is tested against.
#[derive(Clone, Copy, Debug)]
pub(super) enum Seen {
    Healthy,
    TenantDown,
    RateLimited,
    Unauthorized,
    SecretMissing,
    CredentialGone,
    Due,
    Requested,
    GraceOver,
}

pub(super) const ALL_SEEN: [Seen; 9] = [
    Seen::Healthy,
    Seen::TenantDown,
    Seen::RateLimited,
    Seen::Unauthorized,
    Seen::SecretMissing,
    Seen::CredentialGone,
    Seen::Due,
    Seen::Requested,
    Seen::GraceOver,
];

pub(super) fn tenant_down() -> Failure {
    Failure {
        reason: "TenantUnavailable",
        message: "failed to api-keys.list: the tenant answered 503".into(),
        kind: FailureKind::Transient,
        retry_after: None,
    }
}

pub(super) fn observe(phase: Phase, seen: Seen) -> Observed {
    let mut o = in_phase(phase);
    match seen {
        Seen::Healthy => {}
        Seen::TenantDown => o.remote = Err(tenant_down()),
        Seen::RateLimited => {
            o.remote = Err(Failure {
                reason: "RateLimited",
                message: "failed to api-keys.list: rate limited by the tenant".into(),
                kind: FailureKind::Transient,
                retry_after: Some(Duration::from_secs(7)),
            });
        }
        Seen::Unauthorized => {
            o.remote = Err(Failure {
                reason: "Unauthorized",
                message: "the tenant rejected the credential in Secret ns/qlik key api-key".into(),
                kind: FailureKind::Permanent,
                retry_after: None,
            });
        }
        Seen::SecretMissing => o.secret = SecretFacts::default(),
        Seen::CredentialGone => {
            if let Ok(remote) = &mut o.remote {
                remote.credentials.clear();
            }
        }
        // renewBefore defaults to a third of 24 h: due 16 h after creation.
        Seen::Due => o.now = at(T0 + 16 * HOUR),
        Seen::Requested => o.rotate_requested_at = Some(at(T0 + HOUR)),
        Seen::GraceOver => o.now = at(T0 + 2 * HOUR),
    }
    o
}

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

pub(super) const PHASES: [Phase; 5] = [
    Phase::Idle,
    Phase::Creating,
    Phase::Publishing,
    Phase::Draining,
    Phase::Revoking,
];

pub(super) fn condition<'a>(status: &'a SecretRotationStatus, type_: &str) -> (&'a str, &'a str) {
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition"));
    (c.status.as_str(), c.reason.as_str())
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
        assert_eq!(
            decision.requeue,
            Requeue::Retry {
                at_least: Duration::from_secs(7)
            }
        );
    }
}

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
fn crash_after_create_deletes_the_key_whose_token_was_lost_then_creates_again() {
    let mut o = in_phase(Phase::Creating);
    if let Ok(remote) = &mut o.remote {
        remote.credentials.push(key("k4", 4, T0 + HOUR));
    }
    let decision = step(&o);
    assert_eq!(decision.action, Action::DeleteStrays(vec!["k4".into()]));
    assert_eq!(decision.status.phase, Phase::Creating);
    let done = after(&o, &decision, Ok(&Outcome::default()));
    assert_eq!(done.status.phase, Phase::Creating);
    assert_eq!(done.requeue, Requeue::Immediately);
}

#[test]
fn crash_after_the_secret_write_adopts_what_the_secret_holds() {
    let mut o = in_phase(Phase::Creating);
    o.secret.revision = Some(4);
    o.secret.credential_id = Some("k4".into());
    if let Ok(remote) = &mut o.remote {
        remote.credentials.push(key("k4", 4, T0 + HOUR));
    }
    let decision = step(&o);
    assert_eq!(decision.action, Action::Nothing);
    assert_eq!(decision.status.phase, Phase::Publishing);
    assert_eq!(decision.status.revision, 4);
    assert_eq!(
        decision.status.current.as_ref().unwrap().id.as_deref(),
        Some("k4")
    );
    let previous = decision.status.previous.as_ref().unwrap();
    assert_eq!(previous.id.as_deref(), Some("k3"));
    assert_eq!(
        previous.revoke_after,
        Some(Time(at(T0 + HOUR + 60 + 600))),
        "the grace period starts now"
    );
    assert_eq!(decision.status.pending, None);
    assert!(decision.notes.iter().any(|n| n.reason == "Adopted"));
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
fn the_key_limit_stops_the_rotation_with_a_clear_reason_and_revokes_nothing() {
    let o = in_phase(Phase::Creating);
    let decision = step(&o);
    let limit = Failure {
        reason: "KeyLimitReached",
        message: "failed to api-keys.create: a tenant limit was reached".into(),
        kind: FailureKind::LimitReached,
        retry_after: None,
    };
    let done = after(&o, &decision, Err(&limit));
    assert_eq!(done.status.phase, Phase::Creating, "the intent stays");
    assert_eq!(done.action, Action::Nothing);
    assert_eq!(
        done.requeue,
        Requeue::Retry {
            at_least: RETRY_LIMIT
        }
    );
    assert_eq!(condition(&done.status, READY), ("False", "KeyLimitReached"));
    assert_eq!(
        condition(&done.status, health::STALLED),
        ("True", "KeyLimitReached")
    );
    assert_eq!(
        done.status.current, o.status.current,
        "the current key stays"
    );
    assert!(
        done.notes
            .iter()
            .any(|n| n.warning && n.reason == "KeyLimitReached")
    );
    // The same failure again does not repeat the warning.
    let mut again = o.clone();
    again.status = done.status.clone();
    assert!(after(&again, &decision, Err(&limit)).notes.is_empty());
}

#[test]
fn an_unknown_outcome_keeps_the_intent_so_the_next_look_finds_the_key() {
    let o = in_phase(Phase::Creating);
    let decision = step(&o);
    let unknown = Failure {
        reason: "OutcomeUnknown",
        message: "the outcome of api-keys.create is unknown".into(),
        kind: FailureKind::Transient,
        retry_after: None,
    };
    let done = after(&o, &decision, Err(&unknown));
    assert_eq!(done.status.phase, Phase::Creating);
    assert_eq!(done.status.pending, o.status.pending);
    assert_eq!(
        done.requeue,
        Requeue::Retry {
            at_least: Duration::ZERO
        }
    );
}

#[test]
fn expiry_is_capped_by_the_tenant_and_ready_says_so() {
    let mut o = in_phase(Phase::Creating);
    o.spec = api_key_spec(Some(Duration::from_secs(48 * 3600)));
    if let Ok(remote) = &mut o.remote {
        remote.max_expiry = Some(Duration::from_secs(3600));
    }
    assert_eq!(
        step(&o).action,
        Action::Create {
            revision: 4,
            expiry: Some(Duration::from_secs(3600)),
        }
    );
    let mut o = in_phase(Phase::Idle);
    o.spec = api_key_spec(Some(Duration::from_secs(48 * 3600)));
    let decision = step(&o);
    let ready = decision
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == READY)
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "ExpiryCapped")
    );
    assert!(
        ready.message.starts_with("ExpiryCapped: asked for 48h"),
        "{}",
        ready.message
    );
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

#[test]
fn oauth_records_the_known_hints_and_treats_a_new_one_after_a_crash_as_lost() {
    let mut o = in_phase(Phase::Idle);
    o.spec = oauth_spec();
    o.status.current = Some(CredentialRef {
        id: None,
        hint: Some("ab12".into()),
        created_at: Some(Time(at(T0))),
        expires_at: None,
        revoke_after: None,
    });
    let hint = |h: &str| RemoteCredential {
        id: h.into(),
        revision: None,
        active: true,
        created_at: Some(at(T0)),
        expires_at: None,
        created_by: Some(ME.into()),
        subject: None,
    };
    o.remote = Ok(Remote {
        credentials: vec![hint("boot"), hint("ab12")],
        max_expiry: None,
    });
    // Not due for a week.
    assert_eq!(step(&o).status.phase, Phase::Idle);
    assert_eq!(
        step(&o).status.next_rotation_at,
        Some(Time(at(T0 + 7 * 24 * HOUR)))
    );
    o.rotate_requested_at = Some(at(T0 + HOUR));
    let intent = step(&o);
    let pending = intent.status.pending.clone().unwrap();
    assert_eq!(
        pending.known_hints,
        vec!["boot".to_owned(), "ab12".to_owned()]
    );

    let mut creating = o.clone();
    creating.status = intent.status.clone();
    assert_eq!(
        step(&creating).action,
        Action::Create {
            revision: 4,
            expiry: None
        }
    );
    // A crash after the POST: a hint nobody knew, not in the Secret.
    creating.remote = Ok(Remote {
        credentials: vec![hint("boot"), hint("ab12"), hint("zz99")],
        max_expiry: None,
    });
    assert_eq!(
        step(&creating).action,
        Action::DeleteStrays(vec!["zz99".into()])
    );
    // A crash after the Secret write: the Secret names it, so it is adopted.
    creating.secret.revision = Some(4);
    creating.secret.credential_id = Some("zz99".into());
    let adopted = step(&creating);
    assert_eq!(adopted.status.phase, Phase::Publishing);
    assert_eq!(
        adopted.status.current.as_ref().unwrap().hint.as_deref(),
        Some("zz99")
    );
    assert_eq!(
        adopted.status.previous.as_ref().unwrap().hint.as_deref(),
        Some("ab12")
    );
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
            retry(Duration::from_secs(11)),
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
