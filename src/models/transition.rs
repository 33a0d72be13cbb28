//! Registry rows of status transitions: when an instance or a service went
//! up or down, and why. The last few per service are kept.

use crate::db::time::UtcTimestamp;
use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::registry_transitions;
use crate::error::Result;

/// Transitions kept per service.
pub const KEEP: i64 = 20;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = registry_transitions)]
pub struct TransitionRow {
    pub id: String,
    pub principal_id: String,
    /// Per service, in the order recorded.
    pub seq: i64,
    /// `None`: the service's own status.
    pub instance_id: Option<String>,
    pub from_status: String,
    pub to_status: String,
    pub reason: String,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub at: DateTime<Utc>,
}

/// Record a transition, and forget the service's oldest beyond [`KEEP`].
/// The caller holds the service's lock, so `seq` is taken without a race.
pub fn record(
    conn: &mut DbConnection,
    principal_id: &str,
    instance_id: Option<&str>,
    from: &str,
    to: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    use registry_transitions::dsl as t;
    let last: Option<i64> = registry_transitions::table
        .filter(t::principal_id.eq(principal_id))
        .select(diesel::dsl::max(t::seq))
        .first(conn)?;
    diesel::insert_into(registry_transitions::table)
        .values(TransitionRow {
            id: super::new_ordered_id(now),
            principal_id: principal_id.to_string(),
            seq: last.unwrap_or(0) + 1,
            instance_id: instance_id.map(str::to_string),
            from_status: from.to_string(),
            to_status: to.to_string(),
            reason: reason.to_string(),
            at: now,
        })
        .execute(conn)?;
    let old: Vec<String> = registry_transitions::table
        .filter(t::principal_id.eq(principal_id))
        .select(t::id)
        .order(t::seq.desc())
        .offset(KEEP)
        .limit(KEEP)
        .load(conn)?;
    if !old.is_empty() {
        diesel::delete(registry_transitions::table.filter(t::id.eq_any(old))).execute(conn)?;
    }
    Ok(())
}

/// A service's latest transitions, newest first.
pub fn recent(conn: &mut DbConnection, principal_id: &str, limit: i64) -> Result<Vec<TransitionRow>> {
    use registry_transitions::dsl as t;
    Ok(registry_transitions::table
        .filter(t::principal_id.eq(principal_id))
        .select(TransitionRow::as_select())
        .order(t::seq.desc())
        .limit(limit)
        .load(conn)?)
}
