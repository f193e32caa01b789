//! Qlik's tier rate limits, per user per tenant. Pure (time is a parameter).
//!
//! Qlik documents "Tier 1: 1,000 per min, Tier 2: 100 per min, evaluated over a 5-minute
//! window to support bursts". The emulator reads that as a rolling window: in any 5
//! minutes a user may make 5 × the per-minute limit requests of a tier (5,000 reads,
//! 500 writes), in any burst shape. A refused request is not counted. `Retry-After` is the
//! number of seconds until the oldest counted request leaves the window (at least 1).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use jiff::Timestamp;

use super::routes::Tier;

/// The budgets of each tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub reads_per_minute: u32,
    pub writes_per_minute: u32,
    pub window: Duration,
}

impl Limits {
    /// Requests of `tier` allowed in one window.
    pub fn budget(&self, tier: Tier) -> usize {
        let per_minute = match tier {
            Tier::Read => self.reads_per_minute,
            Tier::Write => self.writes_per_minute,
        };
        let minutes = self.window.as_secs_f64() / 60.0;
        (f64::from(per_minute) * minutes).round() as usize
    }
}

/// Counted requests per (user, tier).
#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: HashMap<(String, Tier), VecDeque<Timestamp>>,
}

impl RateLimiter {
    /// Counts a request by `user` at `now`, or says how many seconds to wait.
    pub fn check(
        &mut self,
        limits: &Limits,
        user: &str,
        tier: Tier,
        now: Timestamp,
    ) -> Result<(), u64> {
        let window =
            jiff::SignedDuration::try_from(limits.window).unwrap_or(jiff::SignedDuration::MAX);
        let log = self.windows.entry((user.to_owned(), tier)).or_default();
        while log
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            log.pop_front();
        }
        if log.len() < limits.budget(tier) {
            log.push_back(now);
            return Ok(());
        }
        let wait = log
            .front()
            .map(|oldest| window - now.duration_since(*oldest))
            .unwrap_or(window);
        let secs = wait.as_secs() + i64::from(wait.subsec_nanos() > 0);
        Err(u64::try_from(secs).unwrap_or(1).max(1))
    }

    /// Forgets every counted request.
    pub fn clear(&mut self) {
        self.windows.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            reads_per_minute: 3,
            writes_per_minute: 1,
            window: Duration::from_secs(300),
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    #[test]
    fn the_budget_is_five_minutes_of_the_per_minute_limit() {
        assert_eq!(limits().budget(Tier::Read), 15);
        assert_eq!(limits().budget(Tier::Write), 5);
        let qlik = Limits {
            reads_per_minute: 1000,
            writes_per_minute: 100,
            window: Duration::from_secs(300),
        };
        assert_eq!(qlik.budget(Tier::Write), 500);
    }

    #[test]
    fn a_burst_over_the_budget_is_refused_until_the_oldest_request_leaves_the_window() {
        let mut limiter = RateLimiter::default();
        for i in 0..5 {
            assert_eq!(
                limiter.check(&limits(), "u", Tier::Write, at(i * 10)),
                Ok(())
            );
        }
        // The oldest was at 0 s; at 41 s it leaves the window 259 s later.
        assert_eq!(limiter.check(&limits(), "u", Tier::Write, at(41)), Err(259));
        assert_eq!(limiter.check(&limits(), "u", Tier::Write, at(299)), Err(1));
        assert_eq!(limiter.check(&limits(), "u", Tier::Write, at(300)), Ok(()));
    }

    #[test]
    fn users_and_tiers_have_separate_windows() {
        let mut limiter = RateLimiter::default();
        for _ in 0..5 {
            limiter.check(&limits(), "a", Tier::Write, at(0)).unwrap();
        }
        assert!(limiter.check(&limits(), "a", Tier::Write, at(0)).is_err());
        assert_eq!(limiter.check(&limits(), "b", Tier::Write, at(0)), Ok(()));
        assert_eq!(limiter.check(&limits(), "a", Tier::Read, at(0)), Ok(()));
    }

    #[test]
    fn refused_requests_do_not_count_and_clear_forgets_everything() {
        let mut limiter = RateLimiter::default();
        for _ in 0..5 {
            limiter.check(&limits(), "a", Tier::Write, at(0)).unwrap();
        }
        for _ in 0..10 {
            assert!(limiter.check(&limits(), "a", Tier::Write, at(1)).is_err());
        }
        assert_eq!(limiter.check(&limits(), "a", Tier::Write, at(300)), Ok(()));
        limiter.clear();
        for _ in 0..5 {
            assert_eq!(limiter.check(&limits(), "a", Tier::Write, at(300)), Ok(()));
        }
    }
}
