//! Registry rows of instances: where each replica of a service lives, its
//! lease, and its damped health state.

use crate::db::time::{NullableUtcTimestamp, UtcTimestamp};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::registry_instances;
use crate::error::Result;

use super::to_db_time;

/// Where a registration came from; stored as its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Api,
    Docker,
}

stored_as_name!(Source { Api => "api", Docker => "docker" });

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = registry_instances, treat_none_as_null = true)]
pub struct InstanceRow {
    pub principal_id: String,
    pub instance_id: String,
    pub base_url: String,
    pub health_url: Option<String>,
    pub modules_url: Option<String>,
    pub ttl_seconds: i32,
    #[diesel(serialize_as = String, deserialize_as = String)]
    pub status: super::health::Health,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub status_changed_at: DateTime<Utc>,
    /// 1 when draining: still checked, left out of category answers.
    pub draining: i32,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub last_seen: DateTime<Utc>,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub lease_expires_at: DateTime<Utc>,
    /// 1 once this lease's lapse has been counted.
    pub lease_lapsed: i32,
    #[diesel(serialize_as = NullableUtcTimestamp, deserialize_as = NullableUtcTimestamp)]
    pub health_checked_at: Option<DateTime<Utc>>,
    pub health_ok: Option<i32>,
    pub health_error: Option<String>,
    pub failures: i32,
    pub passes: i32,
    pub failures_before_down: i32,
    pub passes_before_up: i32,
    #[diesel(serialize_as = String, deserialize_as = String)]
    pub source: Source,
    #[diesel(serialize_as = NullableUtcTimestamp, deserialize_as = NullableUtcTimestamp)]
    pub next_health_at: Option<DateTime<Utc>>,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub registered_at: DateTime<Utc>,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub updated_at: DateTime<Utc>,
}

pub fn find(conn: &mut DbConnection, principal_id: &str, instance_id: &str) -> Result<Option<InstanceRow>> {
    Ok(registry_instances::table
        .find((principal_id, instance_id))
        .select(InstanceRow::as_select())
        .first(conn)
        .optional()?)
}

/// A service's instances, by id.
pub fn of_service(conn: &mut DbConnection, principal_id: &str) -> Result<Vec<InstanceRow>> {
    Ok(registry_instances::table
        .filter(registry_instances::principal_id.eq(principal_id))
        .select(InstanceRow::as_select())
        .order(registry_instances::instance_id.asc())
        .load(conn)?)
}

/// The instances of several services, by service, then id.
pub fn of_services(conn: &mut DbConnection, principal_ids: &[String]) -> Result<Vec<InstanceRow>> {
    Ok(registry_instances::table
        .filter(registry_instances::principal_id.eq_any(principal_ids))
        .select(InstanceRow::as_select())
        .order((
            registry_instances::principal_id.asc(),
            registry_instances::instance_id.asc(),
        ))
        .load(conn)?)
}

/// Every instance from one source (`api`, `docker`).
pub fn of_source(conn: &mut DbConnection, source: Source) -> Result<Vec<InstanceRow>> {
    Ok(registry_instances::table
        .filter(registry_instances::source.eq(source.as_str()))
        .select(InstanceRow::as_select())
        .order((
            registry_instances::principal_id.asc(),
            registry_instances::instance_id.asc(),
        ))
        .load(conn)?)
}

/// How many instances there are by (status, draining).
pub fn count_by_state(conn: &mut DbConnection) -> Result<Vec<(super::health::Health, i32, i64)>> {
    use registry_instances::dsl as i;
    registry_instances::table
        .group_by((i::status, i::draining))
        .select((i::status, i::draining, diesel::dsl::count_star()))
        .load::<(String, i32, i64)>(conn)?
        .into_iter()
        .map(|(status, draining, n)| Ok((status.try_into()?, draining, n)))
        .collect()
}

pub fn count(conn: &mut DbConnection, principal_id: &str) -> Result<i64> {
    Ok(registry_instances::table
        .filter(registry_instances::principal_id.eq(principal_id))
        .count()
        .get_result(conn)?)
}

pub fn insert(conn: &mut DbConnection, row: &InstanceRow) -> Result<()> {
    diesel::insert_into(registry_instances::table)
        .values(row.clone())
        .execute(conn)?;
    Ok(())
}

/// Write every column of `row`.
pub fn save(conn: &mut DbConnection, row: &InstanceRow) -> Result<()> {
    diesel::update(registry_instances::table.find((&row.principal_id, &row.instance_id)))
        .set(row.clone())
        .execute(conn)?;
    Ok(())
}

/// Delete one instance; false when there was none.
pub fn delete(conn: &mut DbConnection, principal_id: &str, instance_id: &str) -> Result<bool> {
    Ok(diesel::delete(registry_instances::table.find((principal_id, instance_id))).execute(conn)? == 1)
}

pub fn delete_all(conn: &mut DbConnection, principal_id: &str) -> Result<usize> {
    Ok(
        diesel::delete(registry_instances::table.filter(registry_instances::principal_id.eq(principal_id)))
            .execute(conn)?,
    )
}

/// Instances whose lease ran out at `now` and whose lapse is not counted yet.
pub fn lapsed(conn: &mut DbConnection, now: DateTime<Utc>, limit: i64) -> Result<Vec<(String, String)>> {
    use registry_instances::dsl as i;
    Ok(registry_instances::table
        .filter(i::lease_expires_at.le(to_db_time(now)))
        .filter(i::lease_lapsed.eq(0))
        .select((i::principal_id, i::instance_id))
        .order((i::principal_id.asc(), i::instance_id.asc()))
        .limit(limit)
        .load(conn)?)
}

/// Instances down since before `cutoff`.
pub fn down_since(conn: &mut DbConnection, cutoff: DateTime<Utc>, limit: i64) -> Result<Vec<(String, String)>> {
    use registry_instances::dsl as i;
    Ok(registry_instances::table
        .filter(i::status.eq(super::health::Health::Down.as_str()))
        .filter(i::status_changed_at.le(to_db_time(cutoff)))
        .select((i::principal_id, i::instance_id))
        .order((i::principal_id.asc(), i::instance_id.asc()))
        .limit(limit)
        .load(conn)?)
}

/// Instances whose health check is due at `now`.
pub fn due_health(conn: &mut DbConnection, now: DateTime<Utc>, limit: i64) -> Result<Vec<(String, String)>> {
    use registry_instances::dsl as i;
    Ok(registry_instances::table
        .filter(i::next_health_at.le(to_db_time(now)))
        .select((i::principal_id, i::instance_id))
        .order((i::principal_id.asc(), i::instance_id.asc()))
        .limit(limit)
        .load(conn)?)
}

/// Claim a due health check by moving its next time to `next`: a
/// conditional update, so that of several Roster instances exactly one
/// checks. One that crashes mid-check costs one interval.
pub fn claim_health(
    conn: &mut DbConnection,
    principal_id: &str,
    instance_id: &str,
    now: DateTime<Utc>,
    next: DateTime<Utc>,
) -> Result<bool> {
    use registry_instances::dsl as i;
    let n = diesel::update(
        registry_instances::table
            .filter(i::principal_id.eq(principal_id))
            .filter(i::instance_id.eq(instance_id))
            .filter(i::next_health_at.le(to_db_time(now))),
    )
    .set(i::next_health_at.eq(Some(to_db_time(next))))
    .execute(conn)?;
    Ok(n == 1)
}

/// Renew the lease (a heartbeat, or a passing health check): `last_seen`
/// moves, and the next lapse will count again.
pub fn renew_lease(
    conn: &mut DbConnection,
    principal_id: &str,
    instance_id: &str,
    now: DateTime<Utc>,
    lease_expires_at: DateTime<Utc>,
) -> Result<()> {
    use registry_instances::dsl as i;
    diesel::update(registry_instances::table.find((principal_id, instance_id)))
        .set((
            i::last_seen.eq(to_db_time(now)),
            i::lease_expires_at.eq(to_db_time(lease_expires_at)),
            i::lease_lapsed.eq(0),
        ))
        .execute(conn)?;
    Ok(())
}

/// The damped health state after an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthState {
    pub status: super::health::Health,
    pub failures: i32,
    pub passes: i32,
    pub lease_lapsed: bool,
}

/// Store the damped state; `status_changed_at` moves when the status did.
pub fn set_health_state(
    conn: &mut DbConnection,
    row: &InstanceRow,
    state: &HealthState,
    now: DateTime<Utc>,
) -> Result<()> {
    use registry_instances::dsl as i;
    let changed_at = if state.status != row.status {
        to_db_time(now)
    } else {
        to_db_time(row.status_changed_at)
    };
    diesel::update(registry_instances::table.find((&row.principal_id, &row.instance_id)))
        .set((
            i::status.eq(state.status.as_str()),
            i::status_changed_at.eq(changed_at),
            i::failures.eq(state.failures),
            i::passes.eq(state.passes),
            i::lease_lapsed.eq(i32::from(state.lease_lapsed)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Record a health check's outcome.
pub fn health_result(
    conn: &mut DbConnection,
    principal_id: &str,
    instance_id: &str,
    ok: bool,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    use registry_instances::dsl as i;
    diesel::update(registry_instances::table.find((principal_id, instance_id)))
        .set((
            i::health_ok.eq(Some(i32::from(ok))),
            i::health_error.eq(error),
            i::health_checked_at.eq(Some(to_db_time(now))),
        ))
        .execute(conn)?;
    Ok(())
}
