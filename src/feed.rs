//! The change feed behind long polling: a watch channel per instance, fed by
//! local writes at once and by the database's change index once a second, so
//! that a change made on another instance wakes waiters here too. The
//! registry and the revocation feed each keep one.

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
        }
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

    #[tokio::test(start_paused = true)]
    async fn waiting_ends_after_the_wait() {
        let feed = ChangeFeed::new();
        feed.observe(7);
        assert_eq!(feed.wait_past(7, Duration::from_secs(30)).await, 7);
    }
}
