//! Failed logins, folded: repeated failures of one kind and reason from one
//! source (and for one principal) within a window become one audit row with a
//! count. A flood of guesses then costs one insert when its window opens and
//! one update when it closes, not one write per request.
//!
//! Each instance folds on its own; the counts of open windows are written by
//! the background tick when their window closes, and all at shutdown. A crash
//! loses the count of the windows open at that moment (the rows stay).

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use crate::db::DbConnection;
use crate::error::Result;
use crate::models::audit::{self, NewAuditEvent};

/// How long one row gathers the failures of its source.
pub const FOLD_WINDOW_SECS: i64 = 60;
/// Most windows open at once; past this, failures are written one by one
/// (memory stays bounded whatever the flood).
pub const MAX_OPEN_WINDOWS: usize = 10_000;

/// Event type, source address, principal, reason.
type Key = (&'static str, String, Option<String>, Option<String>);

#[derive(Debug)]
struct Window {
    id: String,
    count: i32,
    written: i32,
    opened: DateTime<Utc>,
}

#[derive(Debug)]
pub struct FailureLog {
    window: Duration,
    open: Mutex<HashMap<Key, Window>>,
}

impl Default for FailureLog {
    fn default() -> Self {
        Self::new(Duration::seconds(FOLD_WINDOW_SECS))
    }
}

impl FailureLog {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            open: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Window>> {
        match self.open.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn is_open(&self, w: &Window, now: DateTime<Utc>) -> bool {
        now >= w.opened && now - w.opened < self.window
    }

    /// Record a failure at `now`: counted in the open row of its source, or
    /// written as a new row that opens a window.
    pub fn record(&self, conn: &mut DbConnection, event: NewAuditEvent, now: DateTime<Utc>) -> Result<()> {
        let key: Key = (
            event.event_type,
            event.remote_addr.clone().unwrap_or_default(),
            event.principal_id.clone(),
            event.reason.clone(),
        );
        // The window is opened under the lock, with the id its row will
        // have, so that concurrent failures of one source share one row.
        let id = crate::models::new_ordered_id(now);
        let closed = {
            let mut open = self.lock();
            let closed = match open.get_mut(&key) {
                Some(w) if self.is_open(w, now) => {
                    w.count = w.count.saturating_add(1);
                    return Ok(());
                }
                Some(_) => open.remove(&key).filter(|w| w.count > w.written),
                None => None,
            };
            if open.len() < MAX_OPEN_WINDOWS {
                open.insert(
                    key.clone(),
                    Window {
                        id: id.clone(),
                        count: 1,
                        written: 1,
                        opened: now,
                    },
                );
            }
            closed
        };
        if let Some(w) = closed {
            audit::set_repeat_count(conn, &w.id, w.count)?;
        }
        let inserted = audit::insert_with_id(conn, id, event, now);
        if inserted.is_err() {
            self.lock().remove(&key);
        }
        inserted
    }

    /// Write the counts of the windows closed at `now` (all of them when
    /// `all`, at shutdown) and forget those windows.
    pub fn flush(&self, conn: &mut DbConnection, now: DateTime<Utc>, all: bool) -> Result<()> {
        let due: Vec<Window> = {
            let mut open = self.lock();
            let keys: Vec<Key> = open
                .iter()
                .filter(|(_, w)| all || !self.is_open(w, now))
                .map(|(k, _)| k.clone())
                .collect();
            keys.into_iter().filter_map(|k| open.remove(&k)).collect()
        };
        for w in due.iter().filter(|w| w.count > w.written) {
            audit::set_repeat_count(conn, &w.id, w.count)?;
        }
        Ok(())
    }

    /// Windows open now.
    pub fn open_windows(&self) -> usize {
        self.lock().len()
    }
}
