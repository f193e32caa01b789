//! When to retry a request and how long to wait first. Pure, except for drawing jitter.

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

/// How the client retries 429s, 5xx answers and transport errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// The backoff before the first retry; doubles for each further retry.
    pub initial_backoff: Duration,
    /// The cap on one backoff.
    pub max_backoff: Duration,
    /// The longest tenant-wide pause (`Retry-After`) a request waits out itself; during a
    /// longer one every request fails at once, unsent, with
    /// [`Error::RateLimited`](super::Error::RateLimited) carrying the remaining wait, so
    /// the caller can requeue for the pause's end.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first retry), given a `jitter` in
    /// `[0, 1)`: between half and all of the capped exponential delay ("equal jitter", so
    /// that a crowd of clients spreads out but none retries immediately).
    pub fn backoff(&self, retry: u32, jitter: f64) -> Duration {
        let exp = 2u32.saturating_pow(retry.saturating_sub(1));
        let full = self
            .initial_backoff
            .saturating_mul(exp)
            .min(self.max_backoff);
        full / 2 + (full / 2).mul_f64(jitter.clamp(0.0, 1.0))
    }
}

/// How long a `429` pauses the whole tenant or site: what its `Retry-After` header asks
/// (`asked`), or the backoff for `attempt` when it asks nothing, at most `max_pause`.
pub(crate) fn throttle_delay(
    headers: &reqwest::header::HeaderMap,
    policy: &RetryPolicy,
    attempt: u32,
    max_pause: Duration,
) -> (Option<Duration>, Duration) {
    let asked = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, jiff::Timestamp::now()));
    let delay = asked
        .unwrap_or_else(|| policy.backoff(attempt, jitter()))
        .min(max_pause);
    (asked, delay)
}

/// A jitter fraction in `[0, 1)`. Not cryptographic: it only spreads retries out.
pub(crate) fn jitter() -> f64 {
    // RandomState is seeded per instance from the OS; hashing nothing yields a fresh value.
    let bits = RandomState::new().hash_one(());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// Parses a `Retry-After` value: delay-seconds, or an HTTP date relative to `now`.
/// Dates in the past give zero; anything else gives `None`.
pub(crate) fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    Some(Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_stays_within_half_to_full() {
        let p = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        let full = [100, 200, 400, 800, 1000, 1000];
        for (i, full) in full.into_iter().enumerate() {
            let retry = i as u32 + 1;
            assert_eq!(
                p.backoff(retry, 0.0),
                Duration::from_millis(full / 2),
                "retry {retry}"
            );
            let high = p.backoff(retry, 0.999_999);
            assert!(
                high <= Duration::from_millis(full) && high > Duration::from_millis(full * 9 / 10)
            );
        }
        assert_eq!(
            p.backoff(1000, 0.5),
            Duration::from_millis(750),
            "no overflow"
        );
    }

    #[test]
    fn jitter_is_a_fraction_and_varies() {
        let draws: Vec<f64> = (0..32).map(|_| jitter()).collect();
        assert!(draws.iter().all(|j| (0.0..1.0).contains(j)));
        assert!(draws.iter().any(|&j| j != draws[0]));
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now: jiff::Timestamp = "2015-10-21T07:27:50Z".parse().unwrap_or_default();
        let cases = [
            ("1", Some(1)),
            (" 120 ", Some(120)),
            ("Wed, 21 Oct 2015 07:28:00 GMT", Some(10)),
            ("Wed, 21 Oct 2015 07:00:00 GMT", Some(0)),
            ("-1", None),
            ("soon", None),
            ("", None),
        ];
        for (value, secs) in cases {
            assert_eq!(
                parse_retry_after(value, now),
                secs.map(Duration::from_secs),
                "{value:?}"
            );
        }
    }
}
