//! The change feed behind long polling: a watch channel per instance, fed by
//! local writes at once and by the database's change index once a second, so
//! that a change made on another instance wakes waiters here too. The
//! registry and the revocation feed each keep one.
//!
//! Besides the one index, the feed keeps the index at which each named view
//! last changed (the registry's `service:NAME`, `category:NAME`, `modules`),
//! so that a blocking query on one view wakes only when that view changed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration as StdDuration;

use tokio::sync::watch;

use crate::error::{Error, Result};

/// Longest long-poll wait.
pub const MAX_WAIT: StdDuration = StdDuration::from_secs(300);
pub const DEFAULT_WAIT: StdDuration = StdDuration::from_secs(30);

/// The wait of a blocking query: [`DEFAULT_WAIT`] when omitted, capped at [`MAX_WAIT`].
pub fn parse_wait(wait: Option<&str>) -> Result<StdDuration> {
    match wait {
        None => Ok(DEFAULT_WAIT),
        Some(w) => crate::clock::parse_duration(w)
            .ok()
            .flatten()
            .and_then(|d| d.to_std().ok())
            .map(|d| d.min(MAX_WAIT))
            .ok_or_else(|| Error::invalid("wait", "a duration such as 30s or 2m")),
    }
}

#[derive(Debug)]
pub struct ChangeFeed {
    tx: watch::Sender<i64>,
    /// How many requests are waiting now.
    waiting: watch::Sender<usize>,
    /// Turns true at shutdown: every waiter answers at once.
    closing: watch::Sender<bool>,
    /// The index at which each view last changed, as far as seen here.
    views: Mutex<Views>,
    /// Bumped whenever a view's index moves.
    views_moved: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct Views {
    index: HashMap<String, i64>,
    /// Every view change up to this index has been read from the database.
    read_up_to: i64,
}

/// Counts one waiter for as long as it lives.
struct Waiting<'a>(&'a watch::Sender<usize>);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Default for ChangeFeed {
    fn default() -> Self {
        Self::new()
    }
}

impl ChangeFeed {
    pub fn new() -> Self {
        Self {
            tx: watch::channel(0).0,
            waiting: watch::channel(0).0,
            closing: watch::channel(false).0,
            views: Mutex::new(Views::default()),
            views_moved: watch::channel(0).0,
        }
    }

    fn views(&self) -> std::sync::MutexGuard<'_, Views> {
        self.views.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record views changed at the given indexes; wakes the view waiters if
    /// any moved forward.
    pub fn observe_views(&self, changes: impl IntoIterator<Item = (String, i64)>) {
        let mut moved = false;
        {
            let mut views = self.views();
            for (key, index) in changes {
                let slot = views.index.entry(key).or_insert(0);
                if index > *slot {
                    *slot = index;
                    moved = true;
                }
            }
        }
        if moved {
            self.views_moved.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Up to which index view changes have been read from the database.
    pub fn views_read_up_to(&self) -> i64 {
        self.views().read_up_to
    }

    /// Every view change up to `index` has been read and observed.
    pub fn views_read(&self, index: i64) {
        let mut views = self.views();
        views.read_up_to = views.read_up_to.max(index);
    }

    /// The latest index at which any of `keys` changed (0: never, as far as seen).
    pub fn view_index(&self, keys: &[String]) -> i64 {
        let views = self.views();
        keys.iter()
            .filter_map(|k| views.index.get(k))
            .copied()
            .max()
            .unwrap_or(0)
    }

    /// Wait until one of `keys` changes after `after`, or `wait` elapses, or
    /// the feed closes. Returns the views' index.
    pub async fn wait_view_past(&self, keys: &[String], after: i64, wait: std::time::Duration) -> i64 {
        let mut rx = self.views_moved.subscribe();
        self.waiting.send_modify(|n| *n += 1);
        let _waiting = Waiting(&self.waiting);
        let mut closing = self.closing.subscribe();
        tokio::select! {
            _ = tokio::time::timeout(wait, rx.wait_for(|_| self.view_index(keys) > after)) => {}
            _ = closing.wait_for(|c| *c) => {}
        }
        self.view_index(keys)
    }

    /// Record an index seen in the database; wakes waiters if it moved forward.
    pub fn observe(&self, index: i64) {
        self.tx.send_if_modified(|current| {
            if index > *current {
                *current = index;
                true
            } else {
                false
            }
        });
    }

    pub fn current(&self) -> i64 {
        *self.tx.borrow()
    }

    /// How many requests are waiting for a change now.
    pub fn waiters(&self) -> usize {
        *self.waiting.borrow()
    }

    /// Resolve once at least `n` requests are waiting for a change.
    pub async fn until_waiting(&self, n: usize) {
        let mut rx = self.waiting.subscribe();
        let _ = rx.wait_for(|w| *w >= n).await;
    }

    /// Wait until the index passes `after`, or `wait` elapses. Returns the index.
    pub async fn wait_past(&self, after: i64, wait: std::time::Duration) -> i64 {
        let mut rx = self.tx.subscribe();
        self.waiting.send_modify(|n| *n += 1);
        let _waiting = Waiting(&self.waiting);
        let mut closing = self.closing.subscribe();
        tokio::select! {
            _ = tokio::time::timeout(wait, rx.wait_for(|i| *i > after)) => {}
            _ = closing.wait_for(|c| *c) => {}
        }
        *rx.borrow()
    }

    /// Shutting down: wake every waiter now, so that long polls are answered
    /// instead of cut off when the server stops.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn waits_default_and_are_capped() {
        assert_eq!(parse_wait(None).unwrap(), DEFAULT_WAIT);
        assert_eq!(parse_wait(Some("2s")).unwrap(), StdDuration::from_secs(2));
        assert_eq!(parse_wait(Some("1h")).unwrap(), MAX_WAIT);
        assert!(matches!(parse_wait(Some("soon")), Err(Error::Invalid { field, .. }) if field == "wait"));
    }

    #[tokio::test]
    async fn waiters_wake_when_the_index_passes_theirs() {
        let feed = std::sync::Arc::new(ChangeFeed::new());
        feed.observe(3);
        assert_eq!(
            feed.wait_past(2, Duration::from_secs(5)).await,
            3,
            "already past: no wait"
        );
        let f = feed.clone();
        let waiter = tokio::spawn(async move { f.wait_past(3, Duration::from_secs(30)).await });
        feed.until_waiting(1).await;
        assert_eq!(feed.waiters(), 1);
        feed.observe(3);
        feed.observe(2);
        feed.observe(4);
        assert_eq!(waiter.await.unwrap(), 4);
        assert_eq!(feed.current(), 4);
        assert_eq!(feed.waiters(), 0, "a woken waiter no longer counts");
    }

    #[tokio::test]
    async fn closing_answers_every_waiter_at_once() {
        let feed = std::sync::Arc::new(ChangeFeed::new());
        feed.observe(5);
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let f = feed.clone();
                tokio::spawn(async move { f.wait_past(5, Duration::from_secs(3600)).await })
            })
            .collect();
        feed.until_waiting(3).await;
        feed.close();
        for w in waiters {
            assert_eq!(w.await.unwrap(), 5);
        }
        assert_eq!(
            feed.wait_past(5, Duration::from_secs(3600)).await,
            5,
            "no new wait once closing"
        );
    }

    #[tokio::test]
    async fn a_view_waiter_wakes_only_for_its_views() {
        let feed = std::sync::Arc::new(ChangeFeed::new());
        let keys = vec!["service:b".to_string()];
        feed.observe_views([("service:b".to_string(), 2)]);
        let f = feed.clone();
        let k = keys.clone();
        let waiter = tokio::spawn(async move { f.wait_view_past(&k, 2, Duration::from_secs(30)).await });
        feed.until_waiting(1).await;
        feed.observe_views([("service:a".to_string(), 3), ("category:x".to_string(), 3)]);
        feed.observe_views([("service:b".to_string(), 1)]);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!waiter.is_finished(), "woken by another view, or by an older index");
        feed.observe_views([("service:b".to_string(), 4)]);
        assert_eq!(waiter.await.unwrap(), 4);
        assert_eq!(feed.view_index(&["service:a".to_string(), "nothing".to_string()]), 3);
        assert_eq!(feed.view_index(&["nothing".to_string()]), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_ends_after_the_wait() {
        let feed = ChangeFeed::new();
        feed.observe(7);
        assert_eq!(feed.wait_past(7, Duration::from_secs(30)).await, 7);
    }
}
