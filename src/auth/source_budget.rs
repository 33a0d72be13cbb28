//! Unauthenticated requests that store a row (a device authorization, a
//! passkey challenge) have a budget per source address: so many a minute,
//! counted in memory by each instance. The map is bounded: past its size,
//! new sources share one budget; the upkeep tick forgets closed windows, so
//! no request pays for that.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Duration, Utc};

/// How long one budget lasts.
pub const WINDOW_SECS: i64 = 60;
/// Most sources counted apart; past this, new ones share one budget.
pub const MAX_SOURCES: usize = 10_000;
/// The key of the shared budget: no address is written like this.
const SHARED: &str = "*";

/// What an unauthenticated request creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Creation {
    /// `POST /oauth/device_authorization` (RFC 8628 §3.1): a command line
    /// starts one per login.
    DeviceAuthorization,
    /// `POST /oauth/passkey/start`: one per click of a passkey button.
    PasskeyChallenge,
}

impl Creation {
    /// The budget of one source a minute.
    pub fn per_window(self) -> u32 {
        match self {
            Self::DeviceAuthorization => 20,
            Self::PasskeyChallenge => 60,
        }
    }
}

/// When a source's window opened, and how much of it was spent.
#[derive(Debug, Clone, Copy)]
struct Window {
    opened: DateTime<Utc>,
    spent: u32,
}

#[derive(Debug, Default)]
pub struct SourceBudget {
    open: Mutex<HashMap<(Creation, String), Window>>,
}

impl SourceBudget {
    fn lock(&self) -> MutexGuard<'_, HashMap<(Creation, String), Window>> {
        match self.open.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Spend one of `source`'s budget for `kind`: `None` to go on, or the
    /// seconds until its window closes.
    pub fn spend(&self, kind: Creation, source: Option<&str>, now: DateTime<Utc>) -> Option<i64> {
        let window = Duration::seconds(WINDOW_SECS);
        let mut open = self.lock();
        let mut key = (kind, source.unwrap_or(SHARED).to_string());
        if !open.contains_key(&key) && open.len() >= MAX_SOURCES {
            key = (kind, SHARED.to_string());
        }
        let w = open.entry(key).or_insert(Window { opened: now, spent: 0 });
        if now >= w.opened + window || now < w.opened {
            *w = Window { opened: now, spent: 0 };
        }
        if w.spent >= kind.per_window() {
            return Some((w.opened + window - now).num_seconds().max(1));
        }
        w.spent += 1;
        None
    }

    /// The upkeep tick: forget the windows that closed.
    pub fn forget_closed(&self, now: DateTime<Utc>) {
        let window = Duration::seconds(WINDOW_SECS);
        self.lock().retain(|_, w| now < w.opened + window && now >= w.opened);
    }

    /// How many windows are open.
    pub fn open_windows(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn each_source_has_its_budget_a_minute() {
        let b = SourceBudget::default();
        let kind = Creation::DeviceAuthorization;
        for _ in 0..kind.per_window() {
            assert_eq!(b.spend(kind, Some("10.0.0.1"), t(0)), None);
        }
        assert_eq!(b.spend(kind, Some("10.0.0.1"), t(15)), Some(45));
        // Another source, and another kind, are counted apart.
        assert_eq!(b.spend(kind, Some("10.0.0.2"), t(15)), None);
        assert_eq!(b.spend(Creation::PasskeyChallenge, Some("10.0.0.1"), t(15)), None);
        // The window closes a minute after it opened.
        assert_eq!(b.spend(kind, Some("10.0.0.1"), t(59)), Some(1));
        assert_eq!(b.spend(kind, Some("10.0.0.1"), t(60)), None);
    }

    #[test]
    fn past_its_size_new_sources_share_one_budget_and_the_tick_forgets() {
        let b = SourceBudget::default();
        let kind = Creation::PasskeyChallenge;
        for i in 0..MAX_SOURCES {
            assert_eq!(b.spend(kind, Some(&format!("s{i}")), t(0)), None);
        }
        for i in 0..kind.per_window() {
            assert_eq!(b.spend(kind, Some(&format!("new{i}")), t(1)), None);
        }
        assert!(
            b.spend(kind, Some("another"), t(1)).is_some(),
            "the shared budget is spent"
        );
        assert!(b.open_windows() <= MAX_SOURCES + 1);
        b.forget_closed(t(59));
        assert_eq!(b.open_windows(), MAX_SOURCES + 1);
        b.forget_closed(t(61));
        assert_eq!(b.open_windows(), 0);
        assert_eq!(b.spend(kind, Some("another"), t(61)), None);
    }
}
