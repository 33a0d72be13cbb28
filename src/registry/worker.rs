//! The registry's share of the background tick: lapse expired leases,
//! deregister long-dead services, run the health checks and manifest pulls
//! that are due, and follow the change index.
//!
//! Scale-out: a due poll is claimed with a conditional update of its lease
//! columns (`poll_owner`, `poll_lease_until`), so of N instances exactly one
//! polls a given service per interval; a crashed instance's lease runs out and
//! another takes over. The sweep is idempotent, so running it everywhere is safe.

use chrono::{DateTime, Utc};

use super::manifest::MAX_MANIFEST_BYTES;
use super::{RegistryContext, fetch, service};
use crate::error::Result;
use crate::models::registration::{self, RegistrationRow, update};

/// Most polls one instance claims per tick.
const POLLS_PER_TICK: i64 = 64;

/// One round of registry work at `now`. Polls record their results at the
/// time `clock` gives when they finish.
pub async fn tick(reg: &RegistryContext, now: DateTime<Utc>, clock: &crate::clock::Clock) -> Result<()> {
    let cfg = reg.config.clone();
    if let Some(index) = reg.db.run(move |c| service::sweep(c, &cfg, now)).await? {
        reg.feed.observe(index);
    }

    let owner = reg.instance_id.clone();
    let until = now + reg.config.poll_lease;
    let claimed: Vec<RegistrationRow> = reg
        .db
        .run(move |c| {
            let mut rows = Vec::new();
            for id in registration::due_polls(c, now, POLLS_PER_TICK)? {
                if registration::claim_poll(c, &id, &owner, now, until)?
                    && let Some(row) = registration::find(c, &id)?
                {
                    rows.push(row);
                }
            }
            Ok::<_, crate::error::Error>(rows)
        })
        .await?;
    let polls = claimed.into_iter().map(|row| poll(reg, row, now, clock));
    for result in futures_util::future::join_all(polls).await {
        if let Err(e) = result {
            tracing::warn!(error = %e, "registry poll failed");
        }
    }

    let index = reg.db.run(registration::current_index).await?;
    reg.feed.observe(index);
    Ok(())
}

/// Run the due health check and manifest pull of one claimed service.
async fn poll(
    reg: &RegistryContext,
    row: RegistrationRow,
    now: DateTime<Utc>,
    clock: &crate::clock::Clock,
) -> Result<()> {
    let due = |t: Option<chrono::NaiveDateTime>| t.is_some_and(|t| crate::models::from_db_time(t) <= now);
    let id = row.principal_id.clone();

    if let (Some(url), true) = (&row.health_url, due(row.next_health_at)) {
        let result = reg.fetcher.health(url).await.map_err(|e| e.recorded());
        if let Err(e) = &result {
            tracing::info!(service = %id, error = %e, "health check failed");
        }
        let (cfg, id, at) = (reg.config.clone(), id.clone(), clock.now());
        if let Some(index) = reg
            .db
            .run(move |c| service::record_health(c, &id, result, &cfg, at))
            .await?
        {
            reg.feed.observe(index);
        }
    }

    if let (Some(url), true) = (&row.modules_url, due(row.next_manifest_at)) {
        let result = match reg
            .fetcher
            .manifest(url, row.manifest_etag.as_deref(), MAX_MANIFEST_BYTES)
            .await
        {
            Ok(fetch::Manifest::NotModified) => Ok(None),
            Ok(fetch::Manifest::Body { bytes, etag }) => Ok(Some((bytes, etag))),
            Err(e) => Err(e.recorded()),
        };
        let (cfg, id, at) = (reg.config.clone(), id.clone(), clock.now());
        if let Some(index) = reg
            .db
            .run(move |c| service::record_manifest(c, &id, result, &cfg, at))
            .await?
        {
            reg.feed.observe(index);
        }
    }

    reg.db.run(move |c| update::release_poll(c, &id)).await
}
