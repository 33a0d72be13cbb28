//! After a local write to the revocation log: bring this instance's live
//! view up to it and wake its long polls now, instead of on the next
//! follow or tick.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::live::LiveView;
use crate::db::Pool;
use crate::feed::ChangeFeed;

/// Catch the live view up and wake the feed's long polls. If the catch-up
/// fails, the view is marked stale, so that introspection here reads the
/// database until the view catches up again: a token revoked here is never
/// vouched for from memory.
pub async fn publish(db: &Pool, feed: &ChangeFeed, live: &Arc<LiveView>, now: DateTime<Utc>) {
    let view = live.clone();
    let caught_up = db
        .run(move |conn| {
            view.catch_up(conn, now)?;
            Ok::<_, crate::error::Error>(view.index())
        })
        .await;
    match caught_up {
        Ok(i) => feed.observe(i),
        Err(e) => {
            live.mark_stale();
            tracing::warn!(error = %e, "the live view did not catch up; introspection reads the database until it does");
        }
    }
}
