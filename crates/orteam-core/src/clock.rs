//! The source of "now". Everything that depends on time (budget windows, key limit resets,
//! reservation TTLs, the simulator's day boundaries) reads it from a [`Clock`], so tests can cross
//! a UTC midnight, a Monday or the first of a month without waiting.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use parking_lot::RwLock;

/// A source of the current UTC time.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// A clock shared between the parts of one process.
pub type SharedClock = Arc<dyn Clock>;

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A wall clock that can be shifted by an offset or frozen at a fixed instant.
///
/// Offsets keep time flowing (useful for a running simulator); a frozen clock makes tests exact.
#[derive(Default)]
pub struct ControllableClock {
    offset_ms: AtomicI64,
    frozen: RwLock<Option<DateTime<Utc>>>,
}

impl ControllableClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// A clock frozen at `at`.
    pub fn frozen_at(at: DateTime<Utc>) -> Self {
        let c = Self::default();
        c.freeze(at);
        c
    }

    /// Stops time at `at` (until [`Self::unfreeze`]).
    pub fn freeze(&self, at: DateTime<Utc>) {
        *self.frozen.write() = Some(at);
    }

    /// Lets time flow again from the real clock plus the current offset.
    pub fn unfreeze(&self) {
        *self.frozen.write() = None;
    }

    /// Sets the offset added to the real clock.
    pub fn set_offset(&self, offset: TimeDelta) {
        self.offset_ms
            .store(offset.num_milliseconds(), Ordering::SeqCst);
    }

    pub fn offset(&self) -> TimeDelta {
        TimeDelta::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }

    /// Moves time forward by `by` (a frozen clock stays frozen at the later instant).
    pub fn advance(&self, by: TimeDelta) {
        let mut frozen = self.frozen.write();
        if let Some(at) = frozen.as_mut() {
            *at += by;
        } else {
            self.offset_ms
                .fetch_add(by.num_milliseconds(), Ordering::SeqCst);
        }
    }

    /// Whether the clock is frozen, and at what instant.
    pub fn frozen(&self) -> Option<DateTime<Utc>> {
        *self.frozen.read()
    }
}

impl Clock for ControllableClock {
    fn now(&self) -> DateTime<Utc> {
        if let Some(at) = *self.frozen.read() {
            return at;
        }
        Utc::now() + self.offset()
    }
}

impl fmt::Debug for ControllableClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControllableClock")
            .field("offset_ms", &self.offset_ms.load(Ordering::Relaxed))
            .field("frozen", &*self.frozen.read())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn frozen_clock_advances_exactly() {
        let at = Utc.with_ymd_and_hms(2026, 1, 31, 23, 59, 0).unwrap();
        let c = ControllableClock::frozen_at(at);
        assert_eq!(c.now(), at);
        c.advance(TimeDelta::minutes(2));
        assert_eq!(c.now(), Utc.with_ymd_and_hms(2026, 2, 1, 0, 1, 0).unwrap());
    }

    #[test]
    fn offset_clock_moves_with_real_time() {
        let c = ControllableClock::new();
        c.set_offset(TimeDelta::days(3));
        let diff = c.now() - Utc::now();
        assert!(diff > TimeDelta::days(3) - TimeDelta::seconds(5));
    }
}
