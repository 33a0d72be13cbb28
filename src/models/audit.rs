//! The audit log: who did what, when, from where. Never secrets.

use crate::db::time::UtcTimestamp;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::db::DbConnection;
use crate::db::schema::audit_events;
use crate::error::Result;

use super::{new_ordered_id, to_db_time};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
        }
    }
}

/// An event to record. `details` is JSON that must never carry a secret.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    pub event_type: &'static str,
    pub outcome: Outcome,
    pub actor_id: Option<String>,
    pub principal_id: Option<String>,
    pub remote_addr: Option<String>,
    pub reason: Option<String>,
    pub details: Option<serde_json::Value>,
}

impl NewAuditEvent {
    pub fn new(event_type: &'static str, outcome: Outcome) -> Self {
        Self {
            event_type,
            outcome,
            actor_id: None,
            principal_id: None,
            remote_addr: None,
            reason: None,
            details: None,
        }
    }
    pub fn actor(mut self, id: Option<&str>) -> Self {
        self.actor_id = id.map(str::to_string);
        self
    }
    pub fn principal(mut self, id: Option<&str>) -> Self {
        self.principal_id = id.map(str::to_string);
        self
    }
    pub fn remote(mut self, addr: Option<&str>) -> Self {
        self.remote_addr = addr.map(str::to_string);
        self
    }
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events)]
pub struct AuditEventRow {
    pub id: String,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub created_at: DateTime<Utc>,
    pub event_type: String,
    pub outcome: String,
    pub actor_id: Option<String>,
    pub principal_id: Option<String>,
    pub remote_addr: Option<String>,
    pub reason: Option<String>,
    pub details: Option<String>,
    /// How many occurrences this row stands for (repeated failures from one
    /// source are folded into one row).
    pub repeat_count: i32,
}

pub fn record(conn: &mut DbConnection, event: NewAuditEvent, now: DateTime<Utc>) -> Result<()> {
    insert(conn, event, now).map(|_| ())
}

/// Record many events with one multi-row INSERT (one round trip), in the
/// caller's transaction: a batch of requests decided together.
pub fn record_all(conn: &mut DbConnection, events: &[(NewAuditEvent, DateTime<Utc>)]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let rows: Vec<AuditEventRow> = events
        .iter()
        .map(|(event, now)| AuditEventRow {
            id: new_ordered_id(*now),
            created_at: *now,
            event_type: event.event_type.to_string(),
            outcome: event.outcome.as_str().to_string(),
            actor_id: event.actor_id.clone(),
            principal_id: event.principal_id.clone(),
            remote_addr: event.remote_addr.clone(),
            reason: event.reason.clone(),
            details: event.details.as_ref().map(|d| d.to_string()),
            repeat_count: 1,
        })
        .collect();
    crate::db::insert_all!(conn, audit_events::table, rows.clone())?;
    Ok(())
}

/// Record an event; returns the new row's id.
pub fn insert(conn: &mut DbConnection, event: NewAuditEvent, now: DateTime<Utc>) -> Result<String> {
    let id = new_ordered_id(now);
    insert_with_id(conn, id.clone(), event, now)?;
    Ok(id)
}

/// Record an event under an id chosen by the caller.
pub fn insert_with_id(conn: &mut DbConnection, id: String, event: NewAuditEvent, now: DateTime<Utc>) -> Result<()> {
    let row = AuditEventRow {
        id,
        created_at: now,
        event_type: event.event_type.to_string(),
        outcome: event.outcome.as_str().to_string(),
        actor_id: event.actor_id,
        principal_id: event.principal_id,
        remote_addr: event.remote_addr,
        reason: event.reason,
        details: event.details.map(|d| d.to_string()),
        repeat_count: 1,
    };
    diesel::insert_into(audit_events::table).values(row).execute(conn)?;
    Ok(())
}

/// Set how many occurrences the row `id` stands for.
pub fn set_repeat_count(conn: &mut DbConnection, id: &str, count: i32) -> Result<()> {
    diesel::update(audit_events::table.find(id))
        .set(audit_events::repeat_count.eq(count))
        .execute(conn)?;
    Ok(())
}

/// Delete up to `batch` events older than `cutoff`, oldest first. Returns
/// how many went.
pub fn delete_older_than(conn: &mut DbConnection, cutoff: DateTime<Utc>, batch: i64) -> Result<usize> {
    let oldest = audit_events::table
        .filter(audit_events::created_at.lt(to_db_time(cutoff)))
        .order((audit_events::created_at.asc(), audit_events::id.asc()))
        .select(audit_events::id)
        .limit(batch)
        .load::<String>(conn)?;
    if oldest.is_empty() {
        return Ok(0);
    }
    Ok(diesel::delete(audit_events::table.filter(audit_events::id.eq_any(&oldest))).execute(conn)?)
}

/// How many rows the log holds.
pub fn count(conn: &mut DbConnection) -> Result<i64> {
    Ok(audit_events::table.count().get_result(conn)?)
}

/// The newest events first.
pub fn recent(conn: &mut DbConnection, limit: i64) -> Result<Vec<AuditEventRow>> {
    Ok(audit_events::table
        .select(AuditEventRow::as_select())
        .order((audit_events::created_at.desc(), audit_events::id.desc()))
        .limit(limit)
        .load(conn)?)
}

/// Filters of the audit list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub principal: Option<String>,
    pub event_type: Option<String>,
    pub since: Option<DateTime<Utc>>,
}

/// Up to `limit` events, newest first, strictly before the position
/// `(created_at, id)` when one is given.
pub fn page(
    conn: &mut DbConnection,
    filter: &AuditFilter,
    before: Option<(DateTime<Utc>, String)>,
    limit: i64,
) -> Result<Vec<AuditEventRow>> {
    let mut query = audit_events::table.select(AuditEventRow::as_select()).into_boxed();
    if let Some(p) = &filter.principal {
        query = query.filter(audit_events::principal_id.eq(p.clone()));
    }
    if let Some(t) = &filter.event_type {
        query = query.filter(audit_events::event_type.eq(t.clone()));
    }
    if let Some(since) = filter.since {
        query = query.filter(audit_events::created_at.ge(to_db_time(since)));
    }
    if let Some((at, id)) = before {
        let at = to_db_time(at);
        query = query.filter(
            audit_events::created_at
                .lt(at)
                .or(audit_events::created_at.eq(at).and(audit_events::id.lt(id))),
        );
    }
    Ok(query
        .order((audit_events::created_at.desc(), audit_events::id.desc()))
        .limit(limit)
        .load(conn)?)
}
