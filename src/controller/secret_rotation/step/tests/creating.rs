//! `Creating`: the create (its expiry, its limits, an unknown outcome), and its recovery
//! after a crash: a credential whose value was lost is revoked, one already in the Secret
//! adopted.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::controller::conditions::READY;
use crate::controller::secret_rotation::health;

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
