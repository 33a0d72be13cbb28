//! The time every part of the client reads: the system's, or a manual one
//! that tests move forward.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

/// Where "now" comes from.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual: Option<Arc<Mutex<DateTime<Utc>>>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A clock that stands still at `start` until [`Clock::advance`] moves it.
    pub fn manual(start: DateTime<Utc>) -> Self {
        Self {
            manual: Some(Arc::new(Mutex::new(start))),
        }
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.manual {
            None => Utc::now(),
            Some(t) => match t.lock() {
                Ok(g) => *g,
                Err(p) => *p.into_inner(),
            },
        }
    }

    /// Move a manual clock forward; the system clock ignores it.
    pub fn advance(&self, by: Duration) {
        if let Some(t) = &self.manual {
            match t.lock() {
                Ok(mut g) => *g += by,
                Err(p) => *p.into_inner() += by,
            }
        }
    }
}
