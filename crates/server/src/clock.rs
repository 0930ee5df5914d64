//! The wall-clock adapter for the core `Clock` port.
//!
//! Domain code never reads the system time; the server hands it this clock, and tests hand it
//! `gatehouse_core::clock::FixedClock` instead.

use gatehouse_core::clock::Clock;
use jiff::Timestamp;

/// The operating system's real-time clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}
