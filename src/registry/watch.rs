//! Precise blocking queries (Consul's `index` + `wait`): a watcher of one
//! view — a service, a category, the menu — is answered when that view
//! changed after the index it sent, and not when something else did.
//!
//! Every write stamps the views it touched with the new change index, in its
//! transaction (`crate::models::registration::changed`); this instance's
//! writes reach the feed at once and other instances' on the next tick. A
//! stamp over-approximates (a category is stamped when a member changes at
//! all), so a woken waiter reads its view again and keeps waiting when the
//! answer would be the same. `X-Roster-Index` stays the global index.

use std::time::Duration as StdDuration;

use super::RegistryContext;
use crate::error::Result;
use crate::models::registration;

/// The blocking part of a query: answer once the view changed after `after`,
/// or when `wait` has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    pub after: i64,
    pub wait: StdDuration,
}

impl Block {
    /// From the `index` and `wait` query parameters; `None` without `index`.
    pub fn from_query(index: Option<i64>, wait: Option<&str>) -> Result<Option<Self>> {
        let wait = crate::feed::parse_wait(wait)?;
        Ok(index.map(|after| Block { after, wait }))
    }
}

/// Read a view with `read`, blocking as `block` asks on the views `keys`.
/// Returns the view and the global change index read before it.
pub async fn read_view<T, F, Fut>(
    ctx: &RegistryContext,
    keys: Vec<String>,
    block: Option<Block>,
    read: F,
) -> Result<(T, i64)>
where
    T: PartialEq,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let Some(Block { mut after, wait }) = block else {
        // A plain read: the index this instance has seen, which is never
        // ahead of the body read after it.
        let index = ctx.feed.current();
        return Ok((read().await?, index));
    };
    let stamped = |keys: Vec<String>| async move {
        let (index, stamps) = ctx
            .db
            .run(move |c| {
                Ok::<_, crate::error::Error>((registration::current_index(c)?, registration::view_indexes(c, &keys)?))
            })
            .await?;
        ctx.feed.observe(index);
        let view_index = stamps.iter().map(|(_, i)| *i).max().unwrap_or(0);
        ctx.feed.observe_views(stamps);
        Ok::<_, crate::error::Error>((index, view_index))
    };
    let (index, view_index) = stamped(keys.clone()).await?;
    if view_index > after {
        return Ok((read().await?, index));
    }
    // The view as of `after`, to tell a real change from an over-approximate
    // stamp. Stamps are read again after it: a change that landed meanwhile
    // would be in this baseline, and must be answered now.
    let baseline = read().await?;
    let (index, view_index) = stamped(keys.clone()).await?;
    if view_index > after {
        return Ok((read().await?, index));
    }
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        let seen = ctx.feed.wait_view_past(&keys, after, left).await;
        if seen <= after {
            break; // the wait is over, or Roster is shutting down
        }
        let index = ctx.db.run(registration::current_index).await?;
        let current = read().await?;
        if current != baseline {
            return Ok((current, index));
        }
        after = seen;
    }
    let index = ctx.db.run(registration::current_index).await?;
    Ok((read().await?, index))
}
