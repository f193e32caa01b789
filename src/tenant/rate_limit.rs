//! The per-tenant limiter: separate read and write budgets per minute, and a tenant-wide
//! pause when the tenant answers `429 Retry-After` (the longest one asked for wins). Waits
//! on tokio's clock; no other I/O.
//!
//! # Guarantees
//! Requests are spaced evenly (budget per minute), so no 60-second window ever holds more
//! requests than the budget, and no 5-minute window (Qlik's) more than five budgets, even
//! across restarts of the process: a new limiter waits one spacing before its first slot.
//! A token bucket would allow a full burst on top of the refill rate and overshoot Qlik's
//! tier by ~20%; a sliding window would let every restart burst a budget again.

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

/// Evenly spaced send times: one every `period / budget`.
///
/// Not a burst followed by a wait (a sliding window): the limiter lives in one process,
/// and a process killed and started again (a crash loop, a rollout, a leader failover) would
/// start with a fresh window and spend the budget again within the same minute. Spacing
/// every request, and counting the limiter's creation as a send, keeps any number of
/// successive processes within one budget per period, with no state shared between them.
#[derive(Debug)]
pub(crate) struct Window {
    spacing: Duration,
    next: Instant,
}

impl Window {
    /// A window whose first slot comes one spacing after `created`.
    pub(crate) fn new(per_period: u32, period: Duration, created: Instant) -> Window {
        // Rounded up: a spacing a nanosecond short would fit one request too many into a
        // period.
        let nanos = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX);
        let spacing = Duration::from_nanos(nanos.div_ceil(u64::from(per_period.max(1))));
        Window {
            spacing,
            next: created + spacing,
        }
    }

    /// Reserves the earliest send time at or after `now` that is one spacing after the
    /// previous reservation.
    pub(crate) fn reserve(&mut self, now: Instant) -> Instant {
        let at = self.next.max(now);
        self.next = at + self.spacing;
        at
    }
}

/// A tenant-wide pause from `429 Retry-After`: the longest one asked for wins, and every
/// request to the tenant (every clone of its client) waits for its end. Part of
/// [`RateLimiter`]; on its own for a client without budgets (the QRS client: a
/// client-managed site sets no rate limits, but may still answer 429).
#[derive(Debug, Default)]
pub(crate) struct Pause {
    until: Mutex<Option<Instant>>,
}

impl Pause {
    /// Holds every request until `until`, or longer if a longer pause is already in
    /// force; returns the end of the pause now in force.
    pub(crate) fn pause_until(&self, until: Instant) -> Instant {
        let mut paused = lock(&self.until);
        let longest = paused.map_or(until, |p| p.max(until));
        *paused = Some(longest);
        longest
    }

    /// The end of the pause, if one was ever set (it may be over).
    pub(crate) fn paused_until(&self) -> Option<Instant> {
        *lock(&self.until)
    }

    /// The remaining pause at `now`, if one is in force.
    pub(crate) fn paused_for(&self, now: Instant) -> Option<Duration> {
        self.paused_until()
            .map(|until| until.saturating_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    /// Waits until no pause is in force (one set while waiting applies too). Fails without
    /// waiting when the pause is longer than `max_pause`: the caller gets the remaining
    /// wait instead of sleeping through it.
    pub(crate) async fn wait(&self, max_pause: Duration) -> Result<(), PausedTooLong> {
        while let Some(remaining) = self.paused_for(Instant::now()) {
            if remaining > max_pause {
                return Err(PausedTooLong(remaining));
            }
            tokio::time::sleep(remaining).await;
        }
        Ok(())
    }
}

/// One tenant's limiter, shared by all clones of a client.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    reads: Mutex<Window>,
    writes: Mutex<Window>,
    pause: Pause,
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
        let now = Instant::now();
        RateLimiter {
            reads: Mutex::new(Window::new(limits.reads_per_minute, minute, now)),
            writes: Mutex::new(Window::new(limits.writes_per_minute, minute, now)),
            pause: Pause::default(),
        }
    }

    /// See [`Pause::pause_until`].
    pub(crate) fn pause_until(&self, until: Instant) -> Instant {
        self.pause.pause_until(until)
    }

    /// See [`Pause::paused_until`].
    pub(crate) fn paused_until(&self) -> Option<Instant> {
        self.pause.paused_until()
    }

    /// See [`Pause::paused_for`].
    pub(crate) fn paused_for(&self, now: Instant) -> Option<Duration> {
        self.pause.paused_for(now)
    }

    /// Waits for the tenant-wide pause, then for a slot in `budget`. Fails without waiting
    /// (and without taking a slot) when the pause is longer than `max_pause`: the caller
    /// gets the remaining wait instead of sleeping through it.
    pub(crate) async fn acquire(
        &self,
        budget: Budget,
        max_pause: Duration,
    ) -> Result<(), PausedTooLong> {
        let window = match budget {
            Budget::Read => &self.reads,
            Budget::Write => &self.writes,
        };
        loop {
            self.pause.wait(max_pause).await?;
            let at = lock(window).reserve(Instant::now());
            tokio::time::sleep_until(at).await;
            // Another request's 429 may have paused the tenant while this one waited for
            // its slot (or for the previous pause to end): that pause applies too.
            if self.paused_for(Instant::now()).is_none() {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_window_spaces_requests_evenly_from_its_creation() {
        let t0 = Instant::now();
        let mut w = Window::new(3, Duration::from_secs(60), t0);
        let got: Vec<_> = (0..7)
            .map(|_| w.reserve(t0).duration_since(t0).as_secs())
            .collect();
        assert_eq!(got, [20, 40, 60, 80, 100, 120, 140]);
    }

    #[test]
    fn no_period_long_window_ever_holds_more_than_the_budget() {
        let t0 = Instant::now();
        let mut w = Window::new(5, Duration::from_secs(60), t0);
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

    /// Found by `cargo xtask chaos --only operator_kills`: an operator killed and started
    /// again during a burst began with an empty window and sent a second budget within the
    /// minute (103 writes against Qlik's 100).
    #[test]
    fn a_restart_cannot_spend_the_budget_twice_in_a_minute() {
        let t0 = Instant::now();
        let minute = Duration::from_secs(60);
        let mut sent = Vec::new();
        let mut at = t0;
        // Each process sends as fast as it may, then dies; the next starts at once.
        for lifetime in [5u64, 1, 12, 0, 30, 3, 61, 2] {
            let mut window = Window::new(90, minute, at);
            let dies = at + Duration::from_secs(lifetime);
            loop {
                let slot = window.reserve(at);
                if slot > dies {
                    break;
                }
                sent.push(slot);
                at = slot;
            }
            at = dies;
        }
        for &start in &sent {
            let in_window = sent
                .iter()
                .filter(|&&s| s >= start && s < start + minute)
                .count();
            assert!(in_window <= 90, "{in_window} requests in one minute");
        }
    }

    #[test]
    fn an_idle_window_sends_at_once() {
        let t0 = Instant::now();
        let mut w = Window::new(2, Duration::from_secs(60), t0);
        w.reserve(t0);
        w.reserve(t0);
        let later = t0 + Duration::from_secs(91);
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
    async fn the_longest_pause_wins_and_one_that_begins_while_waiting_applies() {
        let limiter = RateLimiter::new(RateLimits::default());
        let t0 = Instant::now();
        let long = t0 + Duration::from_secs(600);
        assert_eq!(limiter.pause_until(long), long);
        assert_eq!(limiter.pause_until(t0 + Duration::from_secs(5)), long);
        assert_eq!(
            limiter.paused_for(t0 + Duration::from_secs(100)),
            Some(Duration::from_secs(500))
        );
        assert_eq!(limiter.paused_for(long), None, "over");

        let limiter = Arc::new(RateLimiter::new(RateLimits::default()));
        limiter.pause_until(t0 + Duration::from_secs(2));
        let waiting = tokio::spawn({
            let limiter = limiter.clone();
            async move { limiter.acquire(Budget::Read, Duration::from_secs(60)).await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        limiter.pause_until(t0 + Duration::from_secs(30));
        let acquired = waiting.await.map(|r| r.is_ok());
        assert_eq!(acquired.ok(), Some(true));
        assert!(Instant::now() >= t0 + Duration::from_secs(30));
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

    #[tokio::test(start_paused = true)]
    async fn a_pause_on_its_own_holds_requests_or_fails_fast_like_the_limiters() {
        let pause = Pause::default();
        assert!(
            pause.wait(Duration::ZERO).await.is_ok(),
            "no pause in force"
        );
        let t0 = Instant::now();
        pause.pause_until(t0 + Duration::from_secs(3));
        assert!(pause.wait(Duration::from_secs(60)).await.is_ok());
        assert!(Instant::now() >= t0 + Duration::from_secs(3));
        pause.pause_until(Instant::now() + Duration::from_secs(600));
        let err = pause.wait(Duration::from_secs(60)).await;
        assert!(matches!(err, Err(PausedTooLong(d)) if d > Duration::from_secs(500)));
    }
}
