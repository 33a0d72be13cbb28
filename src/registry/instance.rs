//! The life of one instance (replica) of a service: it registers, renews its
//! lease, is health-checked with flap damping, may drain, and leaves or is
//! swept away. Each change derives the service's status again in the same
//! transaction, under a lock on the service's row, and stamps the views it
//! touched with the new change index.

use chrono::{DateTime, Duration, Utc};

use super::damping::{self, Event, Thresholds};
use super::service::{self, MayWrite, Registration, ServiceView, changed, public_error, settle};
use super::{Change, MAX_INSTANCES, RegistryConfig, RegistryContext};
use crate::auth::access::Caller;
use crate::db::DbConnection;
use crate::error::{Error, Result};
use crate::models::audit::{self, NewAuditEvent, Outcome};
use crate::models::instance::{self, HealthState, InstanceRow};
use crate::models::principal::{self, Principal};
use crate::models::registration::{self, Health};
use crate::models::transition;

pub use super::DEFAULT_INSTANCE as DEFAULT;

/// Longest instance id: a hostname, or a 64-character container id.
pub const MAX_ID_LEN: usize = 128;

/// Most sweep steps per tick (each is its own transaction).
const SWEEP_BATCH: i64 = 256;

/// Instance ids are chosen by the caller: `[A-Za-z0-9][A-Za-z0-9._:-]*`, at
/// most [`MAX_ID_LEN`] characters.
pub fn validate_id(id: &str) -> Result<()> {
    let b = id.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= MAX_ID_LEN
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "instance",
            format!("use 1 to {MAX_ID_LEN} of A-Z a-z 0-9 . _ : -, starting with a letter or digit"),
        ))
    }
}

pub use crate::models::instance::Source;

/// [`MayWrite`] for one instance of the service, its id checked.
#[derive(Debug)]
pub struct MayWriteInstance {
    service: MayWrite,
    id: String,
}

impl MayWriteInstance {
    /// The service, the instance id and the actor, for a database closure.
    pub(super) fn parts(&self) -> (Principal, String, String) {
        (
            self.service.service.clone(),
            self.id.clone(),
            self.service.actor.clone(),
        )
    }
}

impl RegistryContext {
    /// [`RegistryContext::may_write`] for the instance `id`, whose syntax is checked first.
    pub async fn may_write_instance(&self, caller: &Caller, name: String, id: String) -> Result<MayWriteInstance> {
        validate_id(&id)?;
        Ok(MayWriteInstance {
            service: self.may_write(caller, name).await?,
            id,
        })
    }

    /// `PUT /api/v1/services/{name}/instances/{id}`: register or renew the
    /// instance, with the registration the holder of `grant` read.
    pub async fn register(
        &self,
        grant: &MayWriteInstance,
        body: Registration,
        now: DateTime<Utc>,
    ) -> Result<(ServiceView, i64)> {
        let resolved = service::resolve(body, &self.config)?;
        let (p, id, actor) = grant.parts();
        let (view, change) = self
            .db
            .run(move |c| register(c, &p, &id, &resolved, Source::Api, Some(&actor), now))
            .await?;
        self.publish(Some(&change));
        Ok((view, change.index))
    }

    /// `POST /api/v1/services/{name}/instances/{id}/heartbeat`: renew the lease.
    pub async fn heartbeat(&self, grant: &MayWriteInstance, now: DateTime<Utc>) -> Result<ServiceView> {
        let (p, id, _) = grant.parts();
        let (view, change) = self.db.run(move |c| heartbeat(c, &p, &id, now)).await?;
        self.publish(change.as_ref());
        Ok(view)
    }

    /// `DELETE /api/v1/services/{name}/instances/{id}`: the instance is
    /// leaving (a clean shutdown). It goes at once, rather than when its
    /// lease runs out. Leaving twice is not an error. Returns the view and
    /// the change index.
    pub async fn deregister(&self, grant: &MayWriteInstance, now: DateTime<Utc>) -> Result<(ServiceView, i64)> {
        let (p, id, actor) = grant.parts();
        let (view, change) = self.db.run(move |c| deregister(c, &p, &id, Some(&actor), now)).await?;
        self.publish(change.as_ref());
        let index = match change {
            Some(c) => c.index,
            None => self.db.run(registration::current_index).await?,
        };
        Ok((view, index))
    }
}

fn state_of(r: &InstanceRow) -> damping::State {
    damping::State {
        up: r.status == Health::Up,
        failures: r.failures,
        passes: r.passes,
        lease_lapsed: r.lease_lapsed != 0,
    }
}

fn thresholds_of(r: &InstanceRow) -> Thresholds {
    Thresholds {
        failures_before_down: r.failures_before_down,
        passes_before_up: r.passes_before_up,
    }
}

fn stored(s: damping::State) -> HealthState {
    HealthState {
        status: Health::of(s.up),
        failures: s.failures,
        passes: s.passes,
        lease_lapsed: s.lease_lapsed,
    }
}

/// Lock the service's row and read its status; `None` when it has no
/// registration.
fn lock(conn: &mut DbConnection, p: &Principal) -> Result<Option<Health>> {
    if !registration::lock(conn, &p.id)? {
        return Ok(None);
    }
    Ok(registration::find(conn, &p.id)?.map(|r| r.status))
}

/// The service (locked), its status, and the instance, for background
/// work that knows only their ids; `None` when either is gone.
fn locked(conn: &mut DbConnection, principal_id: &str, id: &str) -> Result<Option<(Principal, Health, InstanceRow)>> {
    let Some(p) = principal::find_by_id(conn, principal_id)? else {
        return Ok(None);
    };
    let Some(before) = lock(conn, &p)? else {
        return Ok(None);
    };
    Ok(instance::find(conn, principal_id, id)?.map(|row| (p, before, row)))
}

/// Apply a damping event to a locked instance; when its status moves, record
/// the transition, settle the service and stamp the views.
fn apply(
    conn: &mut crate::db::Tx<'_>,
    p: &Principal,
    before: Option<Health>,
    row: &InstanceRow,
    event: Event<'_>,
    now: DateTime<Utc>,
) -> Result<Option<Change>> {
    let step = damping::step(state_of(row), thresholds_of(row), event);
    if step.state != state_of(row) {
        instance::set_health_state(conn, row, &stored(step.state), now)?;
    }
    let Some(reason) = step.transition else {
        return Ok(None);
    };
    let to = Health::of(step.state.up);
    transition::record(
        conn,
        &p.id,
        Some(&row.instance_id),
        row.status.as_str(),
        to.as_str(),
        &reason,
        now,
    )?;
    crate::telemetry::transition(to.as_str());
    let cause = format!("instance {}: {reason}", row.instance_id);
    let moved = settle(conn, p, before, &cause, now)?;
    Ok(Some(changed(conn, p, &[], moved)?))
}

/// Register (or re-register) an instance. A new instance is up at once, with
/// a lease as if a heartbeat had arrived, and its health check and the
/// service's manifest pull are due now. A known instance takes the new
/// settings and counts the registration as a heartbeat, so a re-registration
/// does not undo damping.
pub(super) fn register(
    conn: &mut DbConnection,
    p: &Principal,
    id: &str,
    reg: &service::Resolved,
    source: Source,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(ServiceView, Change)> {
    crate::db::transaction(conn, |conn| {
        let t = now;
        let mut before = lock(conn, p)?;
        if before.is_none() && !registration::insert(conn, &service::new_service_row(&p.id, t))? {
            before = lock(conn, p)?;
        }
        let existing = instance::find(conn, &p.id, id)?;
        if existing.is_none() && instance::count(conn, &p.id)? >= MAX_INSTANCES {
            return Err(Error::Conflict(format!(
                "service {} has {MAX_INSTANCES} instances, the most it may have",
                p.name
            )));
        }
        let lease = now + Duration::seconds(i64::from(reg.ttl_seconds));
        let mut row = InstanceRow {
            principal_id: p.id.clone(),
            instance_id: id.to_string(),
            base_url: reg.base_url.clone(),
            health_url: reg.health_url.clone(),
            modules_url: reg.modules_url.clone(),
            ttl_seconds: reg.ttl_seconds,
            status: Health::Up,
            status_changed_at: t,
            draining: i32::from(reg.draining),
            last_seen: t,
            lease_expires_at: lease,
            lease_lapsed: 0,
            health_checked_at: None,
            health_ok: None,
            health_error: None,
            failures: 0,
            passes: 0,
            failures_before_down: reg.thresholds.failures_before_down,
            passes_before_up: reg.thresholds.passes_before_up,
            source,
            next_health_at: reg.health_url.as_ref().map(|_| t),
            registered_at: t,
            updated_at: t,
        };
        let mut moved_instance = None;
        match &existing {
            None => {
                instance::insert(conn, &row)?;
                transition::record(conn, &p.id, Some(id), "unknown", Health::Up.as_str(), "registered", now)?;
            }
            Some(e) => {
                let step = damping::step(
                    state_of(e),
                    reg.thresholds,
                    Event::Heartbeat {
                        checked: reg.health_url.is_some(),
                    },
                );
                let s = stored(step.state);
                row.status = s.status;
                row.failures = s.failures;
                row.passes = s.passes;
                row.registered_at = e.registered_at;
                row.status_changed_at = if step.transition.is_some() {
                    t
                } else {
                    e.status_changed_at
                };
                if e.health_url == reg.health_url {
                    row.health_checked_at = e.health_checked_at;
                    row.health_ok = e.health_ok;
                    row.health_error = e.health_error.clone();
                }
                instance::save(conn, &row)?;
                if let Some(reason) = step.transition {
                    moved_instance = Some((e.status, reason));
                }
            }
        }
        if let Some((from, reason)) = moved_instance {
            transition::record(conn, &p.id, Some(id), from.as_str(), row.status.as_str(), &reason, now)?;
        }
        if reg.modules_url.is_some() {
            registration::update::schedule_manifest(conn, &p.id, now)?;
        }
        let left = match &reg.categories {
            Some(cats) => {
                let old = principal::categories_of(conn, &p.id)?;
                principal::set_categories(conn, &p.id, cats, t)?;
                old
            }
            None => vec![],
        };
        registration::update::describe(conn, &p.id, reg.description.as_deref(), reg.meta.as_deref(), now)?;
        let moved = settle(conn, p, before, &format!("instance {id} registered"), now)?;
        audit::record(
            conn,
            NewAuditEvent::new("service.registered", Outcome::Ok)
                .actor(actor)
                .principal(Some(&p.id))
                .details(serde_json::json!({
                    "instance": id,
                    "base_url": reg.base_url,
                    "categories": reg.categories,
                    "draining": reg.draining,
                    "source": source.as_str(),
                })),
            now,
        )?;
        let change = changed(conn, p, &left, moved)?;
        Ok((service::get(conn, &p.name)?, change))
    })
}

/// Renew an instance's lease (Consul TTL check, Eureka renewal). Returns the
/// change when the instance's status moved: a heartbeat brings back an
/// instance without a health check; one with a check waits for its passes.
pub(super) fn heartbeat(
    conn: &mut DbConnection,
    p: &Principal,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(ServiceView, Option<Change>)> {
    crate::db::transaction(conn, |conn| {
        let not_found = || Error::NotFound(format!("instance {id} of service {}", p.name));
        let before = lock(conn, p)?.ok_or_else(not_found)?;
        let row = instance::find(conn, &p.id, id)?.ok_or_else(not_found)?;
        let lease = now + Duration::seconds(i64::from(row.ttl_seconds));
        instance::renew_lease(conn, &p.id, id, now, lease)?;
        let row = InstanceRow { lease_lapsed: 0, ..row };
        let checked = row.health_url.is_some();
        let change = apply(conn, p, Some(before), &row, Event::Heartbeat { checked }, now)?;
        Ok((service::get(conn, &p.name)?, change))
    })
}

/// Remove an instance. Returns the view, and the change when there was one.
pub(super) fn deregister(
    conn: &mut DbConnection,
    p: &Principal,
    id: &str,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(ServiceView, Option<Change>)> {
    crate::db::transaction(conn, |conn| {
        let Some(before) = lock(conn, p)? else {
            return Ok((service::get(conn, &p.name)?, None));
        };
        let Some(row) = instance::find(conn, &p.id, id)? else {
            return Ok((service::get(conn, &p.name)?, None));
        };
        let change = remove(conn, p, before, &row, "deregistered", now)?;
        audit::record(
            conn,
            NewAuditEvent::new("service.deregistered", Outcome::Ok)
                .actor(actor)
                .principal(Some(&p.id))
                .details(serde_json::json!({"instance": id})),
            now,
        )?;
        Ok((service::get(conn, &p.name)?, Some(change)))
    })
}

/// Delete a locked instance and settle the service.
fn remove(
    conn: &mut crate::db::Tx<'_>,
    p: &Principal,
    before: Health,
    row: &InstanceRow,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Change> {
    instance::delete(conn, &p.id, &row.instance_id)?;
    transition::record(
        conn,
        &p.id,
        Some(&row.instance_id),
        row.status.as_str(),
        "removed",
        reason,
        now,
    )?;
    let cause = format!("instance {} {reason}", row.instance_id);
    let moved = settle(conn, p, Some(before), &cause, now)?;
    changed(conn, p, &[], moved)
}

/// Record a health check of one instance, damped. Returns the change when
/// the instance's status moved; a check below the thresholds changes
/// nothing any watcher sees.
pub fn record_health(
    conn: &mut DbConnection,
    principal_id: &str,
    id: &str,
    result: std::result::Result<(), String>,
    now: DateTime<Utc>,
) -> Result<Option<Change>> {
    crate::db::transaction(conn, |conn| {
        let Some((p, before, row)) = locked(conn, principal_id, id)? else {
            return Ok(None);
        };
        let coarse;
        let event = match &result {
            Ok(()) => {
                instance::health_result(conn, principal_id, id, true, None, now)?;
                let lease = now + Duration::seconds(i64::from(row.ttl_seconds));
                instance::renew_lease(conn, principal_id, id, now, lease)?;
                Event::CheckPassed
            }
            Err(e) => {
                instance::health_result(conn, principal_id, id, false, Some(e), now)?;
                coarse = public_error(e);
                Event::CheckFailed(&coarse)
            }
        };
        let row = match event {
            Event::CheckPassed => InstanceRow { lease_lapsed: 0, ..row },
            _ => row,
        };
        apply(conn, &p, Some(before), &row, event, now)
    })
}

/// Count lapsed leases (once each) and remove instances down for longer
/// than the deregistration window, each in its own transaction. Returns the
/// changes.
pub fn sweep(conn: &mut DbConnection, cfg: &RegistryConfig, now: DateTime<Utc>) -> Result<Vec<Change>> {
    let mut changes = Vec::new();
    for (pid, id) in instance::lapsed(conn, now, SWEEP_BATCH)? {
        changes.extend(lapse(conn, &pid, &id, now)?);
    }
    let cutoff = now - cfg.deregister_after;
    for (pid, id) in instance::down_since(conn, cutoff, SWEEP_BATCH)? {
        changes.extend(expire(conn, &pid, &id, cutoff, now)?);
    }
    Ok(changes)
}

fn lapse(conn: &mut DbConnection, principal_id: &str, id: &str, now: DateTime<Utc>) -> Result<Option<Change>> {
    crate::db::transaction(conn, |conn| {
        let Some((p, before, row)) = locked(conn, principal_id, id)? else {
            return Ok(None);
        };
        // Renewed or counted since it was listed: nothing to do.
        if row.lease_expires_at > now || row.lease_lapsed != 0 {
            return Ok(None);
        }
        let checked = row.health_url.is_some();
        apply(conn, &p, Some(before), &row, Event::LeaseLapsed { checked }, now)
    })
}

fn expire(
    conn: &mut DbConnection,
    principal_id: &str,
    id: &str,
    cutoff: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<Change>> {
    crate::db::transaction(conn, |conn| {
        let Some((p, before, row)) = locked(conn, principal_id, id)? else {
            return Ok(None);
        };
        if row.status != Health::Down || row.status_changed_at > cutoff {
            return Ok(None);
        }
        Ok(Some(remove(conn, &p, before, &row, "expired: down too long", now)?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_are_hostnames_or_container_ids() {
        for ok in [
            "default",
            "web-1.example.internal",
            "mail_2",
            "10.0.0.5:8080",
            &"a".repeat(64),
        ] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", "a/b", "a b", "é", "..", &"a".repeat(129), "a\n"] {
            match validate_id(bad) {
                Err(Error::Invalid { field, .. }) => assert_eq!(field, "instance", "{bad:?}"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
