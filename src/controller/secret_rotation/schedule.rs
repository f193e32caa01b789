//! When a credential is due, when it is in danger, and how long it has left. Pure.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::api::SecretRotationSpec;
use crate::api::secret_rotation::{CredentialRef, SecretRotationStatus};

/// `at + by`, saturating.
pub fn add(at: Timestamp, by: Duration) -> Timestamp {
    let by = SignedDuration::try_from(by).unwrap_or(SignedDuration::MAX);
    at.saturating_add(by).unwrap_or(Timestamp::MAX)
}

/// `to - from`, zero when `to` is not after `from`.
pub fn until(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or(Duration::ZERO)
}

/// Drops the sub-second part: the status keeps whole seconds, so a time computed from a
/// finer one would differ from its stored copy and rewrite the status on every reconcile.
pub fn whole_seconds(at: Timestamp) -> Timestamp {
    Timestamp::from_second(at.as_second()).unwrap_or(at)
}

/// Rounds up to whole seconds: a request at `12:00:00.5` is newer than a rotation stored
/// as `12:00:00`, and once answered (`lastRotationTime` = `12:00:01`) it is not newer any
/// more.
pub fn whole_seconds_up(at: Timestamp) -> Timestamp {
    let down = whole_seconds(at);
    if down == at {
        return at;
    }
    add(down, Duration::from_secs(1))
}

/// How long an API key lives, from its `createdAt` to its `expiresAt`.
fn lifetime(current: &CredentialRef) -> Option<Duration> {
    let created = current.created_at.as_ref()?.0;
    let expires = current.expires_at.as_ref()?.0;
    Some(until(created, expires))
}

/// When `current` should be replaced: `renewBefore` (default a third of the lifetime)
/// before an API key expires; `rotateEvery` after an OAuth secret was created.
pub fn rotate_at(spec: &SecretRotationSpec, current: &CredentialRef) -> Option<Timestamp> {
    if spec.credential.api_key.is_some() {
        let expires = current.expires_at.as_ref()?.0;
        let Some(lifetime) = lifetime(current) else {
            return Some(expires);
        };
        let renew = spec.renew_before.map(Duration::from);
        // A renewBefore at least as long as the (possibly capped) lifetime would rotate in
        // a loop; fall back to the default.
        let renew = renew.filter(|r| *r < lifetime).unwrap_or(lifetime / 3);
        let at = expires
            .checked_sub(SignedDuration::try_from(renew).ok()?)
            .ok()?;
        return Some(whole_seconds(at));
    }
    let every = Duration::from(spec.rotate_every?);
    Some(whole_seconds(add(current.created_at.as_ref()?.0, every)))
}

/// From when `current` is in danger of expiring unrotated: half way between the rotation
/// time and the expiry, so `Ready=False` (`ExpiringSoon`) leaves time to act. `None` for
/// credentials that never expire.
pub fn warn_at(spec: &SecretRotationSpec, current: &CredentialRef) -> Option<Timestamp> {
    let expires = current.expires_at.as_ref()?.0;
    let rotate = rotate_at(spec, current)?;
    Some(whole_seconds(add(rotate, until(rotate, expires) / 2)))
}

/// Seconds until the current credential expires (negative once expired), for the
/// per-SecretRotation gauge; `None` without a current credential or for one that never
/// expires.
pub fn seconds_until_expiry(status: &SecretRotationStatus, now: Timestamp) -> Option<i64> {
    let expires = status.current.as_ref()?.expires_at.as_ref()?.0;
    Some(expires.as_second() - now.as_second())
}

/// `(requested, granted)` lifetimes when the tenant granted less than `spec.credential.apiKey.expiry`.
pub fn capped(spec: &SecretRotationSpec, current: &CredentialRef) -> Option<(Duration, Duration)> {
    let requested = Duration::from(spec.credential.api_key.as_ref()?.expiry?);
    let granted = lifetime(current)?;
    // The tenant's clock rounds; a minute of slack avoids a false alarm.
    (granted + Duration::from_secs(60) < requested).then_some((requested, granted))
}

/// The lifetime to ask for: the spec's, capped by the tenant's maximum; `None` asks for the
/// tenant's maximum.
pub fn requested_expiry(spec: &SecretRotationSpec, max: Option<Duration>) -> Option<Duration> {
    let wanted = spec.credential.api_key.as_ref()?.expiry.map(Duration::from);
    match (wanted, max) {
        (Some(wanted), Some(max)) => Some(wanted.min(max)),
        (Some(wanted), None) => Some(wanted),
        (None, max) => max,
    }
}

/// `1h30m`-style text for messages.
pub fn human(d: Duration) -> String {
    let total = d.as_secs();
    let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_rounds_up_so_it_is_answered_exactly_once() {
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        let request = whole_seconds_up(at("2026-01-01T12:00:00.5Z"));
        assert_eq!(request, at("2026-01-01T12:00:01Z"));
        // Newer than a rotation stored (in whole seconds) as 12:00:00 ...
        assert!(request > whole_seconds(at("2026-01-01T12:00:00.2Z")));
        // ... and, once answered (lastRotationTime = max(now, request)), not newer.
        assert!(request <= at("2026-01-01T12:00:01Z"));
        assert_eq!(
            whole_seconds_up(at("2026-01-01T12:00:02Z")),
            at("2026-01-01T12:00:02Z")
        );
    }

    #[test]
    fn seconds_until_expiry_counts_down_and_goes_negative() {
        let status = SecretRotationStatus {
            current: Some(CredentialRef {
                id: Some("k".into()),
                hint: None,
                created_at: None,
                expires_at: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    Timestamp::from_second(1_000).unwrap(),
                )),
                revoke_after: None,
            }),
            ..SecretRotationStatus::default()
        };
        let at = |s| Timestamp::from_second(s).unwrap();
        assert_eq!(seconds_until_expiry(&status, at(400)), Some(600));
        assert_eq!(seconds_until_expiry(&status, at(1_100)), Some(-100));
        assert_eq!(
            seconds_until_expiry(&SecretRotationStatus::default(), at(0)),
            None
        );
    }
}
