//! The registry's share of the background tick: count lapsed leases, remove
//! long-dead instances, run the health checks and manifest pulls that are
//! due, and follow the change index and the views' stamps.
//!
//! Scale-out: a due check or pull is claimed by moving its next time with a
//! conditional update, so of N Roster instances exactly one runs it per
//! interval; one that crashes mid-check costs one interval. The sweep is
//! idempotent, so running it everywhere is safe.

use chrono::{DateTime, Utc};

use super::manifest::MAX_MANIFEST_BYTES;
use super::{RegistryContext, fetch, instance, service};
use crate::error::{Error, Result};
use crate::models::instance::{self as rows, InstanceRow};
use crate::models::principal;
use crate::models::registration::{self, Health};

/// Most checks and pulls one instance claims per tick, each.
const POLLS_PER_TICK: i64 = 64;

/// A manifest pull: of which service, from which URL, with which ETag.
struct Pull {
    principal_id: String,
    url: String,
    etag: Option<String>,
}

/// One round of registry work at `now`. Checks and pulls record their
/// results at the time `clock` gives when they finish.
pub async fn tick(reg: &RegistryContext, now: DateTime<Utc>, clock: &crate::clock::Clock) -> Result<()> {
    let cfg = reg.config.clone();
    for change in reg.db.run(move |c| instance::sweep(c, &cfg, now)).await? {
        reg.publish(Some(&change));
    }

    let (health_next, manifest_next) = (now + reg.config.health_interval, now + reg.config.manifest_interval);
    let (checks, pulls) = reg
        .db
        .run(move |c| {
            let mut checks: Vec<InstanceRow> = Vec::new();
            for (pid, id) in rows::due_health(c, now, POLLS_PER_TICK)? {
                if rows::claim_health(c, &pid, &id, now, health_next)?
                    && let Some(row) = rows::find(c, &pid, &id)?
                {
                    checks.push(row);
                }
            }
            let mut pulls = Vec::new();
            for pid in registration::due_manifests(c, now, POLLS_PER_TICK)? {
                if registration::claim_manifest(c, &pid, now, manifest_next)?
                    && let Some(pull) = manifest_source(c, &pid)?
                {
                    pulls.push(pull);
                }
            }
            Ok::<_, Error>((checks, pulls))
        })
        .await?;
    let checks = checks.into_iter().map(|row| check(reg, row, clock));
    let pulls = pulls.into_iter().map(|p| pull(reg, p, clock));
    let (checked, pulled) = futures_util::future::join(
        futures_util::future::join_all(checks),
        futures_util::future::join_all(pulls),
    )
    .await;
    for result in checked.into_iter().chain(pulled) {
        if let Err(e) = result {
            tracing::warn!(error = %e, "registry poll failed");
        }
    }
    follow(reg).await
}

/// Catch up with changes made elsewhere: the global index, then every view
/// stamped since the last read. Commits are ordered by the index row's lock,
/// so once index n is seen, every stamp up to n is visible.
pub async fn follow(reg: &RegistryContext) -> Result<()> {
    let since = reg.feed.views_read_up_to();
    let (index, stamps, states) = reg
        .db
        .run(move |c| {
            let index = registration::current_index(c)?;
            let stamps = registration::views_changed_since(c, since)?;
            let states = if crate::telemetry::enabled() {
                rows::count_by_state(c)?
            } else {
                Vec::new()
            };
            Ok::<_, Error>((index, stamps, states))
        })
        .await?;
    let read = stamps.iter().map(|(_, i)| *i).max().unwrap_or(0).max(index);
    let lag = index - reg.feed.current();
    let count = |f: &dyn Fn(&(Health, i32, i64)) -> bool| states.iter().filter(|s| f(s)).map(|s| s.2).sum::<i64>();
    let instances = [
        ("up", count(&|s| s.0 == Health::Up && s.1 == 0)),
        ("down", count(&|s| s.0 != Health::Up)),
        ("draining", count(&|s| s.0 == Health::Up && s.1 != 0)),
    ];
    crate::telemetry::registry_index(&instances, index, lag, reg.feed.waiters());
    reg.feed.observe(index);
    reg.feed.observe_views(stamps);
    reg.feed.views_read(read);
    Ok(())
}

/// Where to pull a service's manifest from: an up instance with a
/// `modules_url`, one not draining first, then by id.
fn manifest_source(c: &mut crate::db::DbConnection, principal_id: &str) -> Result<Option<Pull>> {
    let Some(row) = registration::find(c, principal_id)? else {
        return Ok(None);
    };
    let mut candidates: Vec<InstanceRow> = rows::of_service(c, principal_id)?
        .into_iter()
        .filter(|i| i.status == Health::Up && i.modules_url.is_some())
        .collect();
    candidates.sort_by_key(|i| i.draining);
    Ok(candidates.into_iter().next().and_then(|i| {
        Some(Pull {
            principal_id: principal_id.to_string(),
            url: i.modules_url?,
            etag: row.manifest_etag,
        })
    }))
}

/// Run one claimed health check and record it.
async fn check(reg: &RegistryContext, row: InstanceRow, clock: &crate::clock::Clock) -> Result<()> {
    let Some(url) = &row.health_url else {
        return Ok(());
    };
    let result = reg.fetcher.health(url).await.map_err(|e| e.recorded());
    if let Err(e) = &result {
        tracing::info!(service = %row.principal_id, instance = %row.instance_id, error = %e, "health check failed");
        crate::telemetry::health_error(&service::public_error(e));
    }
    let at = clock.now();
    let change = reg
        .db
        .run(move |c| instance::record_health(c, &row.principal_id, &row.instance_id, result, at))
        .await?;
    reg.publish(change.as_ref());
    Ok(())
}

/// Run one claimed manifest pull and record it.
async fn pull(reg: &RegistryContext, p: Pull, clock: &crate::clock::Clock) -> Result<()> {
    let result = match reg
        .fetcher
        .manifest(&p.url, p.etag.as_deref(), MAX_MANIFEST_BYTES)
        .await
    {
        Ok(fetch::Manifest::NotModified) => Ok(None),
        Ok(fetch::Manifest::Body { bytes, etag }) => Ok(Some((bytes, etag))),
        Err(e) => Err(e.recorded()),
    };
    let at = clock.now();
    let change = reg
        .db
        .run(move |c| {
            let Some(principal) = principal::find_by_id(c, &p.principal_id)? else {
                return Ok(None);
            };
            service::record_manifest(c, &principal, result, at)
        })
        .await?;
    reg.publish(change.as_ref());
    Ok(())
}
