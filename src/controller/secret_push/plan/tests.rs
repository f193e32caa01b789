use super::*;

const POLL: Duration = Duration::from_secs(60);
const RESYNC: Duration = Duration::from_secs(24 * 3600);

fn now() -> Timestamp {
    "2026-12-02T12:00:00Z"
        .parse()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn observed(status: SecretPushStatus, source: Source) -> Observed {
    Observed {
        generation: Some(1),
        status,
        target: TargetKind::TenantEmail,
        poll_every: POLL,
        resync_every: RESYNC,
        now: now(),
        source,
    }
}

fn values(digest: &str) -> Source {
    Source::Values {
        digest: digest.to_owned(),
    }
}

fn ready(status: &SecretPushStatus) -> (String, String, String) {
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == READY)
        .unwrap_or_else(|| panic!("no Ready in {status:?}"));
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

fn has(status: &SecretPushStatus, type_: &str, reason: &str) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True" && c.reason == reason)
}

/// The status after a successful push of `digest` at `now() - ago`.
fn pushed(digest: &str, ago: Duration, verification: Verification) -> SecretPushStatus {
    let mut o = observed(SecretPushStatus::default(), values(digest));
    o.now -= SignedDuration::try_from(ago).unwrap_or_default();
    let outcome = Outcome::Pushed {
        target_id: Some("conn-1".into()),
        verification,
    };
    after_push(&o, digest, &outcome)
}

#[test]
fn a_new_secret_push_pushes() {
    let plan = plan(&observed(SecretPushStatus::default(), values("d1")));
    assert_eq!(
        plan,
        Plan::Push {
            reason: PushReason::Initial,
            digest: "d1".into()
        }
    );
}

#[test]
fn the_same_values_wait_for_the_next_poll_and_keep_ready() {
    let status = pushed("d1", Duration::from_secs(600), Verification::Passed);
    let Plan::Wait { status: next, at } = plan(&observed(status.clone(), values("d1"))) else {
        panic!("expected a wait");
    };
    assert_eq!(at, now() + SignedDuration::from_secs(60));
    assert_eq!(ready(&next).1, PUSHED);
    assert_eq!(next.pushes, 1);
}

#[test]
fn changed_values_push_again() {
    let status = pushed("d1", Duration::from_secs(600), Verification::Passed);
    assert!(matches!(
        plan(&observed(status, values("d2"))),
        Plan::Push {
            reason: PushReason::Changed,
            ..
        }
    ));
}

#[test]
fn resync_every_after_the_last_push_pushes_the_same_values_again() {
    let status = pushed("d1", RESYNC, Verification::Passed);
    assert!(matches!(
        plan(&observed(status, values("d1"))),
        Plan::Push {
            reason: PushReason::Resync,
            ..
        }
    ));
    // Just before, the wait ends at the resync, not a poll later.
    let status = pushed("d1", RESYNC - Duration::from_secs(10), Verification::Passed);
    let Plan::Wait { at, .. } = plan(&observed(status, values("d1"))) else {
        panic!("expected a wait");
    };
    assert_eq!(at, now() + SignedDuration::from_secs(10));
}

#[test]
fn a_missing_secret_is_reported_by_name_and_nothing_is_pushed() {
    let status = pushed("d1", Duration::from_secs(600), Verification::Passed);
    let source = Source::Missing {
        secret: "web/smtp".into(),
    };
    let Plan::Wait { status, at } = plan(&observed(status, source)) else {
        panic!("expected a wait");
    };
    let (value, reason, message) = ready(&status);
    assert_eq!(
        (value.as_str(), reason.as_str()),
        ("False", SECRET_NOT_FOUND)
    );
    assert!(message.contains("web/smtp"), "{message}");
    assert!(has(&status, conditions::STALLED, SECRET_NOT_FOUND));
    assert_eq!(at, now() + SignedDuration::from_secs(60));
    // Back with the values last pushed: Ready again, still nothing to push.
    let Plan::Wait { status, .. } = plan(&observed(status, values("d1"))) else {
        panic!("expected a wait");
    };
    assert_eq!(ready(&status).1, PUSHED);
    assert!(!has(&status, conditions::STALLED, SECRET_NOT_FOUND));
}

#[test]
fn a_missing_key_names_the_key() {
    let source = Source::KeysMissing {
        secret: "web/smtp".into(),
        keys: vec!["password".into()],
    };
    let Plan::Wait { status, .. } = plan(&observed(SecretPushStatus::default(), source)) else {
        panic!("expected a wait");
    };
    let (_, reason, message) = ready(&status);
    assert_eq!(reason, SECRET_KEY_MISSING);
    assert!(message.contains("password"), "{message}");
}

#[test]
fn a_transient_failure_records_nothing_as_pushed() {
    let o = observed(SecretPushStatus::default(), values("d1"));
    let failure = Failure {
        reason: "TenantUnavailable",
        message: "503".into(),
        transient: true,
    };
    let status = after_push(&o, "d1", &Outcome::Failed(failure));
    assert_eq!(status.pushed_digest, None);
    assert_eq!(status.refused, None);
    assert!(has(&status, conditions::RECONCILING, "TenantUnavailable"));
    // The next plan pushes again (the controller's backoff decides when).
    assert!(matches!(
        plan(&observed(status, values("d1"))),
        Plan::Push { .. }
    ));
}

#[test]
fn a_refused_push_waits_an_hour_unless_the_values_or_the_spec_change() {
    let mut o = observed(SecretPushStatus::default(), values("d1"));
    let failure = Failure {
        reason: "Unsupported",
        message: "interactive OAuth".into(),
        transient: false,
    };
    let status = after_push(&o, "d1", &Outcome::Failed(failure));
    assert!(has(&status, conditions::STALLED, "Unsupported"));
    o.status = status.clone();
    let Plan::Wait { at, .. } = plan(&o) else {
        panic!("a refused push is not repeated at once");
    };
    assert_eq!(at, now() + SignedDuration::from_secs(60));
    o.now = now() + SignedDuration::from_secs(3600);
    assert!(matches!(
        plan(&o),
        Plan::Push {
            reason: PushReason::RetryRefused,
            ..
        }
    ));
    o.now = now();
    o.generation = Some(2);
    assert!(matches!(plan(&o), Plan::Push { .. }));
    o.generation = Some(1);
    o.source = values("d2");
    assert!(matches!(plan(&o), Plan::Push { .. }));
}

#[test]
fn a_failed_verification_keeps_the_values_as_pushed_and_is_not_retried_until_they_change() {
    let failed = Verification::Failed {
        message: "errorCode INVALID_CREDENTIALS".into(),
    };
    let status = pushed("d1", Duration::from_secs(60), failed);
    assert_eq!(status.pushed_digest.as_deref(), Some("d1"));
    let (value, reason, message) = ready(&status);
    assert_eq!(
        (value.as_str(), reason.as_str()),
        ("False", VERIFICATION_FAILED)
    );
    assert!(message.contains("INVALID_CREDENTIALS"));
    let Plan::Wait { status, .. } = plan(&observed(status, values("d1"))) else {
        panic!("expected a wait");
    };
    assert_eq!(ready(&status).1, VERIFICATION_FAILED);
}

#[test]
fn a_successful_push_records_when_where_and_the_digest() {
    let status = pushed("d1", Duration::ZERO, Verification::None);
    assert_eq!(status.pushed_digest.as_deref(), Some("d1"));
    assert_eq!(status.target_id.as_deref(), Some("conn-1"));
    assert_eq!(status.last_push_time, Some(Time(now())));
    assert_eq!(status.target_kind, Some(TargetKind::TenantEmail));
    assert_eq!(ready(&status).0, "True");
    assert!(
        !status
            .conditions
            .iter()
            .any(|c| c.type_ == conditions::RECONCILING)
    );
}
