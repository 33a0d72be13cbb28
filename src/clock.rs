//! The clock. Domain functions take `now` as a parameter; the HTTP layer reads
//! it from here, so tests can run a server on a clock they move by hand.

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

    pub fn now(&self) -> DateTime<Utc> {
        match &self.manual {
            Some(t) => match t.lock() {
                Ok(t) => *t,
                Err(poisoned) => *poisoned.into_inner(),
            },
            None => Utc::now(),
        }
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
