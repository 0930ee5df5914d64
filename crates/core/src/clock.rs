//! The `Clock` port: the only way domain code learns the current time.
//!
//! Domain logic never calls `Timestamp::now()`; it asks a `Clock` handed in by the binary (the
//! wall-clock adapter lives in the server crate). Tests use [`FixedClock`] to make expiry and
//! ordering decisions deterministic.

use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// A clock that stands still until told to move; for tests and reproducible demos.
#[derive(Debug)]
pub struct FixedClock {
    now: Mutex<Timestamp>,
}

impl FixedClock {
    /// A clock showing `at` until [`FixedClock::set`] or [`FixedClock::advance`] is called.
    pub fn new(at: Timestamp) -> Self {
        Self {
            now: Mutex::new(at),
        }
    }

    /// Moves the clock to `at` (backwards too: tests of clock skew need that).
    pub fn set(&self, at: Timestamp) {
        *self.lock() = at;
    }

    /// Moves the clock forward by `by`, saturating at the largest representable instant.
    pub fn advance(&self, by: SignedDuration) {
        let mut now = self.lock();
        *now = now.saturating_add(by).unwrap_or(Timestamp::MAX);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Timestamp> {
        // A poisoned lock only means another test thread panicked while holding it; the
        // timestamp inside is still a valid value, so keep using it.
        self.now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        *self.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_clock_moves_only_when_told() {
        let start = Timestamp::from_second(1_700_000_000).unwrap();
        let clock = FixedClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(SignedDuration::from_secs(90));
        assert_eq!(clock.now(), Timestamp::from_second(1_700_000_090).unwrap());
        clock.set(start);
        assert_eq!(clock.now(), start);
    }

    #[test]
    fn advance_saturates_instead_of_panicking() {
        let clock = FixedClock::new(Timestamp::MAX);
        clock.advance(SignedDuration::from_secs(1));
        assert_eq!(clock.now(), Timestamp::MAX);
    }
}
