//! Bounded exponential back-off: how long to leave Roster alone after a
//! failed call.

use std::time::Duration;

/// Back-off after consecutive failures: `initial`, doubling, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The pause after the first failure.
    pub initial: Duration,
    /// The longest pause.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The pause after the `failures`-th consecutive failure (1-based).
    pub fn after(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(20);
        self.initial.saturating_mul(1u32 << exp).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_bound() {
        let b = Backoff::default();
        let pauses: Vec<u128> = (1..=10).map(|n| b.after(n).as_millis()).collect();
        assert_eq!(pauses, [200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]);
        assert_eq!(b.after(u32::MAX), b.max);
        assert_eq!(b.after(0), b.initial);
    }
}
