//! The state machine's tests, by phase: [`every_phase`] runs every phase against every kind
//! of observation and every failing side effect; [`idle`] when a rotation starts;
//! [`creating`] the create and its recovery after a crash; [`cut_over`] publishing, the
//! grace period and the revoke; [`trust`] what the step may write and revoke;
//! [`automation`] the automation execution token's copy, adoption and deletion. The
//! fixtures here describe one SecretRotation in each phase.

mod automation;
mod creating;
mod cut_over;
mod every_phase;
mod idle;
mod trust;

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::api::SecretRotationSpec;
use crate::api::secret_rotation::{
    ApiKeyRotation, OAuthClientSecretRotation, RotatedCredential, SecretTarget,
};
use crate::controller::secret_rotation::observed::{RemoteCredential, SecretFacts};

const HOUR: i64 = 3600;
/// When the current key (revision 3) was created.
const T0: i64 = 1_800_000_000;
/// The operator's identity on the tenant.
const ME: &str = "operator-user";

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(seconds).unwrap()
}

fn api_key_spec(expiry: Option<Duration>) -> SecretRotationSpec {
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
            automation_execution_token: None,
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

fn oauth_spec() -> SecretRotationSpec {
    let mut spec = api_key_spec(None);
    spec.credential = RotatedCredential {
        api_key: None,
        oauth_client_secret: Some(OAuthClientSecretRotation {
            client_id: "m2m".into(),
        }),
        automation_execution_token: None,
    };
    spec.rotate_every = Some(Duration::from_secs(7 * 24 * 3600).into());
    spec
}

/// An API key the operator created (marker, subject and creator its own).
fn key(id: &str, revision: i64, created: i64) -> RemoteCredential {
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

fn reference(id: &str, created: i64) -> CredentialRef {
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
fn in_phase(phase: Phase) -> Observed {
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
enum Seen {
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

const ALL_SEEN: [Seen; 9] = [
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

fn tenant_down() -> Failure {
    Failure {
        reason: "TenantUnavailable",
        message: "failed to api-keys.list: the tenant answered 503".into(),
        kind: FailureKind::Transient,
        retry_after: None,
    }
}

fn observe(phase: Phase, seen: Seen) -> Observed {
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

const PHASES: [Phase; 5] = [
    Phase::Idle,
    Phase::Creating,
    Phase::Publishing,
    Phase::Draining,
    Phase::Revoking,
];

fn condition<'a>(status: &'a SecretRotationStatus, type_: &str) -> (&'a str, &'a str) {
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition"));
    (c.status.as_str(), c.reason.as_str())
}
