//! The per-tenant limiter: separate read and write budgets per minute, and a tenant-wide
//! pause when the tenant answers `429 Retry-After`. Waits on tokio's clock; no other I/O.
//!
//! # Guarantees
//! A sliding window, not a token bucket: no 60-second window ever holds more requests than
//! the budget, so no 5-minute window (Qlik's) holds more than five budgets. A token bucket
//! would allow a full burst on top of the refill rate and overshoot Qlik's tier by ~20%.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// Requests per minute the client allows itself against one tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    /// Non-GET requests (Qlik's tier 2 is 100/min), including `/oauth/token`.
    pub writes_per_minute: u32,
    /// GET requests (Qlik's tier 1 is 1,000/min).
    pub reads_per_minute: u32,
}

impl Default for RateLimits {
    /// 90 writes and 900 reads per minute: below Qlik's tiers, leaving room for people.
    fn default() -> Self {
        RateLimits {
            writes_per_minute: 90,
            reads_per_minute: 900,
        }
    }
}

/// Which budget a request draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Budget {
    Read,
    Write,
}

/// Reserved send times within the last period, oldest first.
#[derive(Debug)]
pub(crate) struct Window {
    budget: usize,
    period: Duration,
    slots: VecDeque<Instant>,
}

impl Window {
    pub(crate) fn new(per_period: u32, period: Duration) -> Window {
        let budget = per_period.max(1) as usize;
        Window {
            budget,
            period,
            slots: VecDeque::with_capacity(budget),
        }
    }

    /// Reserves the earliest send time at or after `now` that keeps every window of one
    /// period within the budget.
    pub(crate) fn reserve(&mut self, now: Instant) -> Instant {
        while self.slots.front().is_some_and(|&s| s + self.period <= now) {
            self.slots.pop_front();
        }
        let latest = self.slots.back().copied().unwrap_or(now).max(now);
        let at = match self.slots.len().checked_sub(self.budget) {
            // `slots` is sorted, so the budget-th latest slot bounds the new one.
            Some(i) => latest.max(self.slots[i] + self.period),
            None => latest,
        };
        self.slots.push_back(at);
        while self.slots.len() > self.budget {
            self.slots.pop_front();
        }
        at
    }
}

/// One tenant's limiter, shared by all clones of a client.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    reads: Mutex<Window>,
    writes: Mutex<Window>,
    paused_until: Mutex<Option<Instant>>,
}

/// The wait the tenant asked for is longer than the caller is willing to wait.
#[derive(Debug)]
pub(crate) struct PausedTooLong(pub(crate) Duration);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update is a single assignment or push; the data is fine after a panic.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl RateLimiter {
    pub(crate) fn new(limits: RateLimits) -> RateLimiter {
        let minute = Duration::from_secs(60);
        RateLimiter {
            reads: Mutex::new(Window::new(limits.reads_per_minute, minute)),
            writes: Mutex::new(Window::new(limits.writes_per_minute, minute)),
            paused_until: Mutex::new(None),
        }
    }

    /// Holds every request to this tenant until `until` (from a 429's `Retry-After`).
    pub(crate) fn pause_until(&self, until: Instant) {
        let mut paused = lock(&self.paused_until);
        *paused = Some(paused.map_or(until, |p| p.max(until)));
    }

    /// Waits for the tenant-wide pause, then for a slot in `budget`. Fails without waiting
    /// when the pause is longer than `max_pause`.
    pub(crate) async fn acquire(
        &self,
        budget: Budget,
        max_pause: Duration,
    ) -> Result<(), PausedTooLong> {
        let paused = *lock(&self.paused_until);
        if let Some(until) = paused {
            let remaining = until.saturating_duration_since(Instant::now());
            if remaining > max_pause {
                return Err(PausedTooLong(remaining));
            }
            tokio::time::sleep_until(until).await;
        }
        let window = match budget {
            Budget::Read => &self.reads,
            Budget::Write => &self.writes,
        };
        let at = lock(window).reserve(Instant::now());
        tokio::time::sleep_until(at).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_admits_its_budget_at_once_then_spaces_by_the_period() {
        let t0 = Instant::now();
        let mut w = Window::new(3, Duration::from_secs(60));
        let got: Vec<_> = (0..7)
            .map(|_| w.reserve(t0).duration_since(t0).as_secs())
            .collect();
        assert_eq!(got, [0, 0, 0, 60, 60, 60, 120]);
    }

    #[test]
    fn no_period_long_window_ever_holds_more_than_the_budget() {
        let t0 = Instant::now();
        let mut w = Window::new(5, Duration::from_secs(60));
        let mut sent = Vec::new();
        // Arrivals every 7 seconds for 10 minutes, in bursts of three.
        for i in 0..90u64 {
            let now = t0 + Duration::from_secs(i / 3 * 7 * 3);
            sent.push(w.reserve(now));
        }
        for &start in &sent {
            let in_window = sent
                .iter()
                .filter(|&&s| s >= start && s < start + Duration::from_secs(60))
                .count();
            assert!(in_window <= 5, "{in_window} requests in one minute");
        }
    }

    #[test]
    fn slots_free_up_after_the_period() {
        let t0 = Instant::now();
        let mut w = Window::new(2, Duration::from_secs(60));
        w.reserve(t0);
        w.reserve(t0);
        let later = t0 + Duration::from_secs(61);
        assert_eq!(w.reserve(later), later);
    }

    #[test]
    fn default_limits_stay_below_qliks_tiers() {
        let d = RateLimits::default();
        assert!(d.writes_per_minute < 100 && d.reads_per_minute < 1000);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_requests_until_it_ends() {
        let limiter = RateLimiter::new(RateLimits::default());
        let t0 = Instant::now();
        limiter.pause_until(t0 + Duration::from_secs(2));
        limiter
            .acquire(Budget::Read, Duration::from_secs(60))
            .await
            .ok();
        assert!(Instant::now() >= t0 + Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_longer_than_the_caller_accepts_fails_fast() {
        let limiter = RateLimiter::new(RateLimits::default());
        limiter.pause_until(Instant::now() + Duration::from_secs(600));
        let err = limiter
            .acquire(Budget::Write, Duration::from_secs(60))
            .await;
        assert!(matches!(err, Err(PausedTooLong(d)) if d > Duration::from_secs(500)));
    }
}
