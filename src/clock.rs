//! The clock, and durations as people write them. Domain functions take `now`
//! as a parameter; the HTTP layer reads it from here, so tests can run a
//! server on a clock they move by hand.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual: Option<Arc<Mutex<DateTime<Utc>>>>,
}

impl Clock {
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A clock that stands still at `start` until [`Clock::advance`] moves it.
    pub fn manual(start: DateTime<Utc>) -> Self {
        Self {
            manual: Some(Arc::new(Mutex::new(start))),
        }
    }

    /// Now, to the microsecond: the finest both databases keep, so an
    /// instant written to a row and read back is the same instant.
    pub fn now(&self) -> DateTime<Utc> {
        use chrono::SubsecRound;
        let now = match &self.manual {
            Some(t) => match t.lock() {
                Ok(t) => *t,
                Err(poisoned) => *poisoned.into_inner(),
            },
            None => Utc::now(),
        };
        now.trunc_subsecs(6)
    }

    /// Move a manual clock forward. A system clock ignores this.
    pub fn advance(&self, by: Duration) {
        if let Some(t) = &self.manual {
            match t.lock() {
                Ok(mut t) => *t += by,
                Err(poisoned) => *poisoned.into_inner() += by,
            }
        }
    }
}

/// Parse a duration such as `300`, `5m`, `30d` or `off` (→ `None`).
pub fn parse_duration(s: &str) -> Result<Option<Duration>, String> {
    let s = s.trim();
    if matches!(s, "off" | "never" | "0") {
        return Ok(None);
    }
    let std = if s.chars().all(|c| c.is_ascii_digit()) {
        std::time::Duration::from_secs(s.parse::<u64>().map_err(|e| e.to_string())?)
    } else {
        humantime::parse_duration(s).map_err(|e| format!("'{s}': {e}"))?
    };
    Duration::from_std(std).map(Some).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("300").unwrap(), Some(Duration::seconds(300)));
        assert_eq!(parse_duration("5m").unwrap(), Some(Duration::minutes(5)));
        assert_eq!(parse_duration("30d").unwrap(), Some(Duration::days(30)));
        assert_eq!(parse_duration("off").unwrap(), None);
        assert!(parse_duration("soon").is_err());
    }
}
