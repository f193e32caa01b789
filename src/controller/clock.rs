//! The controllers' wall clock, in [`Shared`](super::Shared): decisions take `now` from it,
//! read once per reconcile, never from the system directly; tests move it together with
//! the emulator's (whose clock drives key expiry) instead of waiting hours.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// Where the controller reads the time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// The system clock plus an offset that only grows: advance it by the same amount as the
/// emulator's clock (`/_emulator/clock/advance`) so both agree.
#[derive(Clone, Debug, Default)]
pub struct OffsetClock {
    offset_seconds: Arc<AtomicI64>,
}

impl OffsetClock {
    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let seconds = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        self.offset_seconds.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> Timestamp {
        let offset = SignedDuration::from_secs(self.offset_seconds.load(Ordering::SeqCst));
        Timestamp::now()
            .saturating_add(offset)
            .unwrap_or(Timestamp::MAX)
    }
}
