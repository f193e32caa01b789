//! How long to wait after a failed reconcile or a failed step: capped, jittered,
//! exponential in the number of failures in a row of each SecretRotation, never less than
//! what the failure asks for (the tenant's `Retry-After`). No I/O.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::tenant::RetryPolicy;
use crate::tenant::retry::jitter;

/// The first retry comes after half to all of this.
const INITIAL: Duration = Duration::from_secs(1);
/// No retry waits longer than this (unless the failure asks for more).
const CAP: Duration = Duration::from_secs(300);

/// Failures in a row, per SecretRotation.
pub struct Backoff {
    policy: RetryPolicy,
    failures: Mutex<HashMap<String, u32>>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            policy: RetryPolicy {
                initial_backoff: INITIAL,
                max_backoff: CAP,
                ..RetryPolicy::default()
            },
            failures: Mutex::default(),
        }
    }
}

impl Backoff {
    /// Counts a failure of `key` and says how long to wait before retrying.
    pub fn after_failure(&self, key: &str, at_least: Duration) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let count = failures.entry(key.to_owned()).or_insert(0);
        *count = count.saturating_add(1);
        self.policy.backoff(*count, jitter()).max(at_least)
    }

    /// `key` got through: the next failure starts from the shortest wait again.
    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_with_failures_in_a_row_are_capped_and_reset_by_a_success() {
        let backoff = Backoff::default();
        let waits: Vec<Duration> = (0..12)
            .map(|_| backoff.after_failure("a", Duration::ZERO))
            .collect();
        assert!(waits[0] <= INITIAL, "{waits:?}");
        assert!(waits[3] >= INITIAL * 4, "{waits:?}");
        assert!(waits.iter().all(|w| *w <= CAP), "{waits:?}");
        assert!(waits[11] >= CAP / 2, "{waits:?}");
        // Another object has its own count.
        assert!(backoff.after_failure("b", Duration::ZERO) <= INITIAL);
        // A failure that asks for longer gets it.
        assert_eq!(
            backoff.after_failure("b", Duration::from_secs(900)),
            Duration::from_secs(900)
        );
        backoff.succeeded("a");
        assert!(backoff.after_failure("a", Duration::ZERO) <= INITIAL);
    }
}
