//! Waking the revocation feed's long polls on this instance right after a
//! local write, instead of on the next background tick.

use crate::db::Pool;
use crate::feed::ChangeFeed;
use crate::models::revocation;

/// After a local write to the feed: wake this instance's long polls now
/// rather than on the next tick. A failed read only delays them to the tick.
pub async fn publish(db: &Pool, feed: &ChangeFeed) {
    match db.run(revocation::current_index).await {
        Ok(i) => feed.observe(i),
        Err(e) => tracing::warn!(error = %e, "revocation index not read; long polls wake on the next tick"),
    }
}
