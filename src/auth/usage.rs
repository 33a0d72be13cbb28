//! Write-behind use tracking of client secrets.
//!
//! Every successful client authentication would otherwise cost a write (and on
//! PostgreSQL a WAL flush) per token. Instead each instance counts uses in
//! memory and writes `last_used_at` and the counter once per flush interval,
//! one row per secret. A crash loses at most one interval of counts; the
//! counters are usage metadata, not security state.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use crate::db::DbConnection;
use crate::error::Result;
use crate::models::secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub last_used: DateTime<Utc>,
    pub count: i64,
}

/// Uses waiting to be written, by secret id.
pub type Batch = HashMap<String, Usage>;

#[derive(Debug)]
pub struct UsageRecorder {
    interval: Duration,
    state: Mutex<(Batch, Option<DateTime<Utc>>)>,
}

impl UsageRecorder {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            state: Mutex::new((HashMap::new(), None)),
        }
    }

    /// Count one use at `now`. Returns the pending batch when a flush is due
    /// (the interval has passed since the last one), leaving the recorder empty.
    pub fn record(&self, secret_id: &str, now: DateTime<Utc>) -> Option<Batch> {
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (pending, last_flush) = &mut *guard;
        let entry = pending.entry(secret_id.to_string()).or_insert(Usage {
            last_used: now,
            count: 0,
        });
        entry.count += 1;
        entry.last_used = entry.last_used.max(now);
        let due = last_flush.is_none_or(|t| now - t >= self.interval);
        if due {
            *last_flush = Some(now);
            Some(std::mem::take(pending))
        } else {
            None
        }
    }

    /// Everything pending, for a flush at shutdown or on demand.
    pub fn take(&self) -> Batch {
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        std::mem::take(&mut guard.0)
    }
}

/// Write a batch: add the counts and move `last_used_at` forward.
pub fn apply(conn: &mut DbConnection, batch: &Batch) -> Result<()> {
    crate::db::transaction(conn, |conn| {
        let mut ids: Vec<&String> = batch.keys().collect();
        // A fixed order, so that two instances flushing at once cannot deadlock.
        ids.sort();
        for id in ids {
            let u = batch[id];
            secret::add_uses(conn, id, u.count, u.last_used)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn counts_in_memory_and_hands_out_a_batch_per_interval() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let r = UsageRecorder::new(Duration::seconds(1));
        // The first use flushes at once (nothing was flushed yet).
        let first = r.record("a", t0).unwrap();
        assert_eq!(
            first["a"],
            Usage {
                last_used: t0,
                count: 1
            }
        );
        assert!(r.record("a", t0 + Duration::milliseconds(200)).is_none());
        assert!(r.record("b", t0 + Duration::milliseconds(400)).is_none());
        assert!(r.record("a", t0 + Duration::milliseconds(600)).is_none());
        let batch = r.record("a", t0 + Duration::milliseconds(1000)).unwrap();
        assert_eq!(
            batch["a"],
            Usage {
                last_used: t0 + Duration::milliseconds(1000),
                count: 3
            }
        );
        assert_eq!(batch["b"].count, 1);
        assert!(r.take().is_empty());
        assert!(r.record("c", t0 + Duration::milliseconds(1100)).is_none());
        assert_eq!(r.take()["c"].count, 1);
    }
}
