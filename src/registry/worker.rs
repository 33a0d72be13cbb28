//! The background work of every instance, once a second: lapse expired
//! leases, deregister long-dead services, run the health checks and manifest
//! pulls that are due, follow the change index, and write pending
//! client-secret use counts.
//!
//! Scale-out: a due poll is claimed with a conditional update of its lease
//! columns (`poll_owner`, `poll_lease_until`), so of N instances exactly one
//! polls a given service per interval; a crashed instance's lease runs out and
//! another takes over. The sweep is idempotent, so running it everywhere is safe.

use std::time::Duration as StdDuration;

use super::fetch;
use super::manifest::MAX_MANIFEST_BYTES;
use super::service;
use crate::error::Result;
use crate::models::registration::{self, RegistrationRow, update};
use crate::state::AppState;

/// Most polls one instance claims per tick.
const POLLS_PER_TICK: i64 = 64;

/// One round of registry work at the state's `now`. Tests call this directly
/// with a manual clock; `run` calls it once a second.
pub async fn tick(state: &AppState) -> Result<()> {
    let now = state.now();
    let reg = state.registry();
    let cfg = reg.config.clone();
    if let Some(index) = state.db(move |c| service::sweep(c, &cfg, now)).await? {
        reg.feed.observe(index);
    }

    let owner = reg.instance_id.clone();
    let until = now + reg.config.poll_lease;
    let claimed: Vec<RegistrationRow> = state
        .db(move |c| {
            let mut rows = Vec::new();
            for id in registration::due_polls(c, now, POLLS_PER_TICK)? {
                if registration::claim_poll(c, &id, &owner, now, until)?
                    && let Some(row) = registration::find(c, &id)?
                {
                    rows.push(row);
                }
            }
            Ok(rows)
        })
        .await?;
    let polls = claimed.into_iter().map(|row| poll(state, row, now));
    for result in futures_util::future::join_all(polls).await {
        if let Err(e) = result {
            tracing::warn!(error = %e, "registry poll failed");
        }
    }

    let index = state.db(registration::current_index).await?;
    reg.feed.observe(index);

    // Client-secret use counts are written on the request path once a second;
    // write what is pending here too, so they are current when traffic stops.
    state.flush_usage().await
}

/// Run the due health check and manifest pull of one claimed service.
async fn poll(state: &AppState, row: RegistrationRow, now: chrono::DateTime<chrono::Utc>) -> Result<()> {
    let reg = state.registry();
    let due = |t: Option<chrono::NaiveDateTime>| t.is_some_and(|t| crate::models::from_db_time(t) <= now);
    let id = row.principal_id.clone();

    if let (Some(url), true) = (&row.health_url, due(row.next_health_at)) {
        let result = reg.fetcher.health(url).await.map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::info!(service = %id, error = %e, "health check failed");
        }
        let (cfg, id, at) = (reg.config.clone(), id.clone(), state.now());
        if let Some(index) = state
            .db(move |c| service::record_health(c, &id, result, &cfg, at))
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
            Err(e) => Err(format!("manifest pull failed: {e}")),
        };
        let (cfg, id, at) = (reg.config.clone(), id.clone(), state.now());
        if let Some(index) = state
            .db(move |c| service::record_manifest(c, &id, result, &cfg, at))
            .await?
        {
            reg.feed.observe(index);
        }
    }

    state.db(move |c| update::release_poll(c, &id)).await
}

/// Tick once a second until the runtime stops.
pub async fn run(state: AppState) {
    let mut every = tokio::time::interval(StdDuration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(e) = tick(&state).await {
            tracing::warn!(error = %e, "registry tick failed");
        }
    }
}
