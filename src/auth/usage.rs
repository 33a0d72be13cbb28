//! Write-behind use tracking of client secrets.
//!
//! Every successful client authentication would otherwise cost a write (and on
//! PostgreSQL a WAL flush) per token. Instead each instance counts uses in
//! memory, and the background tick writes `last_used_at` and the counter once
//! a second, one row per secret, and once more at shutdown. A crash loses at
//! most one tick of counts; the counters are usage metadata, not security state.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

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

#[derive(Debug, Default)]
pub struct UsageRecorder {
    pending: Mutex<Batch>,
}

impl UsageRecorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Count one use at `now`. Costs a lock and a map update, never a write.
    pub fn record(&self, secret_id: &str, now: DateTime<Utc>) {
        let mut pending = match self.pending.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let entry = pending.entry(secret_id.to_string()).or_insert(Usage {
            last_used: now,
            count: 0,
        });
        entry.count += 1;
        entry.last_used = entry.last_used.max(now);
    }

    /// Everything pending, leaving the recorder empty.
    pub fn take(&self) -> Batch {
        let mut pending = match self.pending.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        std::mem::take(&mut *pending)
    }

    /// Put back a batch whose write failed, so the next flush tries again.
    pub fn restore(&self, batch: Batch) {
        let mut pending = match self.pending.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        for (id, u) in batch {
            let entry = pending.entry(id).or_insert(Usage {
                last_used: u.last_used,
                count: 0,
            });
            entry.count += u.count;
            entry.last_used = entry.last_used.max(u.last_used);
        }
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
    use chrono::{Duration, TimeZone};

    #[test]
    fn counts_in_memory_until_taken() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let r = UsageRecorder::new();
        r.record("a", t0);
        r.record("b", t0 + Duration::milliseconds(400));
        r.record("a", t0 + Duration::milliseconds(600));
        let batch = r.take();
        assert_eq!(
            batch["a"],
            Usage {
                last_used: t0 + Duration::milliseconds(600),
                count: 2
            }
        );
        assert_eq!(batch["b"].count, 1);
        assert!(r.take().is_empty());
    }

    #[test]
    fn a_failed_batch_is_merged_back() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let r = UsageRecorder::new();
        r.record("a", t0);
        let failed = r.take();
        r.record("a", t0 + Duration::seconds(1));
        r.restore(failed);
        assert_eq!(
            r.take()["a"],
            Usage {
                last_used: t0 + Duration::seconds(1),
                count: 2
            }
        );
    }
}
