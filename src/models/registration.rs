//! Registry rows: one registration per service principal, and the change index.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{categories, principals, registry_state, service_categories, service_registrations};
use crate::error::Result;

use super::to_db_time;

pub const UP: &str = "up";
pub const DOWN: &str = "down";

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = service_registrations, treat_none_as_null = true)]
pub struct RegistrationRow {
    pub principal_id: String,
    pub base_url: String,
    pub health_url: Option<String>,
    pub modules_url: Option<String>,
    pub ttl_seconds: i32,
    pub status: String,
    pub status_changed_at: NaiveDateTime,
    pub last_seen: NaiveDateTime,
    pub lease_expires_at: NaiveDateTime,
    pub health_checked_at: Option<NaiveDateTime>,
    pub health_ok: Option<i32>,
    pub health_error: Option<String>,
    pub manifest: Option<String>,
    pub manifest_etag: Option<String>,
    pub manifest_fetched_at: Option<NaiveDateTime>,
    pub manifest_error: Option<String>,
    pub registered_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub next_health_at: Option<NaiveDateTime>,
    pub next_manifest_at: Option<NaiveDateTime>,
    pub poll_owner: Option<String>,
    pub poll_lease_until: Option<NaiveDateTime>,
    /// `pushed` or `pulled`: who wrote `manifest` last.
    pub manifest_source: Option<String>,
    /// Digest of the last manifest pulled from `modules_url`.
    pub manifest_pulled_digest: Option<String>,
}

pub fn find(conn: &mut DbConnection, principal_id: &str) -> Result<Option<RegistrationRow>> {
    Ok(service_registrations::table
        .find(principal_id)
        .select(RegistrationRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn insert(conn: &mut DbConnection, row: &RegistrationRow) -> Result<()> {
    diesel::insert_into(service_registrations::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Write every column of `row`.
pub fn save(conn: &mut DbConnection, row: &RegistrationRow) -> Result<()> {
    diesel::update(service_registrations::table.find(&row.principal_id))
        .set(row)
        .execute(conn)?;
    Ok(())
}

/// Delete a service's registration; false when it had none.
pub fn delete(conn: &mut DbConnection, principal_id: &str) -> Result<bool> {
    Ok(diesel::delete(service_registrations::table.find(principal_id)).execute(conn)? == 1)
}

/// Bump the change index in the caller's transaction; returns the new value.
pub fn bump_index(conn: &mut DbConnection) -> Result<i64> {
    diesel::update(registry_state::table.find(1))
        .set(registry_state::change_index.eq(registry_state::change_index + 1))
        .execute(conn)?;
    current_index(conn)
}

pub fn current_index(conn: &mut DbConnection) -> Result<i64> {
    Ok(registry_state::table
        .find(1)
        .select(registry_state::change_index)
        .first(conn)?)
}

/// Registrations with their service's name, by name, optionally only members
/// of a category or those with a status.
pub fn list(
    conn: &mut DbConnection,
    category: Option<&str>,
    status: Option<&str>,
) -> Result<Vec<(String, RegistrationRow)>> {
    let mut query = service_registrations::table
        .inner_join(principals::table)
        .select((principals::name, RegistrationRow::as_select()))
        .into_boxed();
    if let Some(status) = status {
        query = query.filter(service_registrations::status.eq(status.to_string()));
    }
    if let Some(category) = category {
        let members = service_categories::table
            .inner_join(categories::table)
            .filter(categories::name.eq(category.to_string()))
            .select(service_categories::principal_id);
        query = query.filter(service_registrations::principal_id.eq_any(members));
    }
    Ok(query.order(principals::name.asc()).load(conn)?)
}

/// One service's membership of a category, with its registration status.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct MemberRow {
    pub category: String,
    pub service: String,
    pub priority: i32,
    /// `None` when the service never registered.
    pub status: Option<String>,
    pub base_url: Option<String>,
}

/// Every category membership, by category, then priority (highest first),
/// then service name.
pub fn category_members(conn: &mut DbConnection) -> Result<Vec<MemberRow>> {
    Ok(service_categories::table
        .inner_join(categories::table)
        .inner_join(principals::table.left_join(service_registrations::table))
        .select((
            categories::name,
            principals::name,
            service_categories::priority,
            service_registrations::status.nullable(),
            service_registrations::base_url.nullable(),
        ))
        .order((
            categories::name.asc(),
            service_categories::priority.desc(),
            principals::name.asc(),
        ))
        .load(conn)?)
}

/// Every category name, sorted.
pub fn category_names(conn: &mut DbConnection) -> Result<Vec<String>> {
    Ok(categories::table
        .select(categories::name)
        .order(categories::name.asc())
        .load(conn)?)
}

/// Does the category `name` exist?
pub fn category_exists(conn: &mut DbConnection, name: &str) -> Result<bool> {
    let n: i64 = categories::table
        .filter(categories::name.eq(name))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// The names of up services whose lease ran out at `now`, marked down.
pub fn lapse_leases(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<usize> {
    let now = to_db_time(now);
    Ok(diesel::update(
        service_registrations::table
            .filter(service_registrations::status.eq(UP))
            .filter(service_registrations::lease_expires_at.le(now)),
    )
    .set((
        service_registrations::status.eq(DOWN),
        service_registrations::status_changed_at.eq(now),
        service_registrations::updated_at.eq(now),
    ))
    .execute(conn)?)
}

/// Drop registrations that have been down since before `cutoff`.
pub fn deregister_down_since(conn: &mut DbConnection, cutoff: DateTime<Utc>) -> Result<usize> {
    Ok(diesel::delete(
        service_registrations::table
            .filter(service_registrations::status.eq(DOWN))
            .filter(service_registrations::status_changed_at.le(to_db_time(cutoff))),
    )
    .execute(conn)?)
}

/// Which polls are due at `now` and not leased by another instance.
pub fn due_polls(conn: &mut DbConnection, now: DateTime<Utc>, limit: i64) -> Result<Vec<String>> {
    use service_registrations::dsl as r;
    let now = to_db_time(now);
    Ok(service_registrations::table
        .filter(r::next_health_at.le(now).or(r::next_manifest_at.le(now)))
        .filter(r::poll_lease_until.is_null().or(r::poll_lease_until.le(now)))
        .select(r::principal_id)
        .order(r::principal_id.asc())
        .limit(limit)
        .load(conn)?)
}

/// Take the polling lease of one service until `until`, unless another
/// instance holds it. A conditional update, so exactly one instance wins.
pub fn claim_poll(
    conn: &mut DbConnection,
    principal_id: &str,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool> {
    use service_registrations::dsl as r;
    let now = to_db_time(now);
    let n = diesel::update(
        service_registrations::table
            .filter(r::principal_id.eq(principal_id))
            .filter(r::poll_lease_until.is_null().or(r::poll_lease_until.le(now))),
    )
    .set((
        r::poll_owner.eq(Some(owner)),
        r::poll_lease_until.eq(Some(to_db_time(until))),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Targeted updates: each touches only its own columns, so that a heartbeat
/// on one instance and a health result on another never overwrite each other.
pub mod update {
    use super::*;
    use service_registrations::dsl as r;

    /// Renew the lease (heartbeat, or a passing health check).
    pub fn renew_lease(
        conn: &mut DbConnection,
        id: &str,
        now: DateTime<Utc>,
        lease_expires_at: DateTime<Utc>,
    ) -> Result<()> {
        diesel::update(service_registrations::table.find(id))
            .set((
                r::last_seen.eq(to_db_time(now)),
                r::lease_expires_at.eq(to_db_time(lease_expires_at)),
                r::updated_at.eq(to_db_time(now)),
            ))
            .execute(conn)?;
        Ok(())
    }

    /// down → up, when the lease is live and the health check does not object.
    /// Returns whether the status changed.
    pub fn mark_up(conn: &mut DbConnection, id: &str, now: DateTime<Utc>) -> Result<bool> {
        let now = to_db_time(now);
        let n = diesel::update(
            service_registrations::table
                .filter(r::principal_id.eq(id))
                .filter(r::status.eq(DOWN))
                .filter(r::lease_expires_at.gt(now))
                .filter(r::health_ok.is_null().or(r::health_ok.eq(1))),
        )
        .set((r::status.eq(UP), r::status_changed_at.eq(now)))
        .execute(conn)?;
        Ok(n == 1)
    }

    /// up → down. Returns whether the status changed.
    pub fn mark_down(conn: &mut DbConnection, id: &str, now: DateTime<Utc>) -> Result<bool> {
        let now = to_db_time(now);
        let n = diesel::update(
            service_registrations::table
                .filter(r::principal_id.eq(id))
                .filter(r::status.eq(UP)),
        )
        .set((r::status.eq(DOWN), r::status_changed_at.eq(now)))
        .execute(conn)?;
        Ok(n == 1)
    }

    pub fn health_result(
        conn: &mut DbConnection,
        id: &str,
        ok: bool,
        error: Option<&str>,
        now: DateTime<Utc>,
        next: DateTime<Utc>,
    ) -> Result<()> {
        diesel::update(service_registrations::table.find(id))
            .set((
                r::health_ok.eq(Some(i32::from(ok))),
                r::health_error.eq(error),
                r::health_checked_at.eq(Some(to_db_time(now))),
                r::next_health_at.eq(Some(to_db_time(next))),
            ))
            .execute(conn)?;
        Ok(())
    }

    /// A manifest pulled from `modules_url`, with its ETag and digest.
    pub fn manifest_pulled(
        conn: &mut DbConnection,
        id: &str,
        manifest: &str,
        etag: Option<&str>,
        digest: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let now = to_db_time(now);
        diesel::update(service_registrations::table.find(id))
            .set((
                r::manifest.eq(Some(manifest)),
                r::manifest_source.eq(Some("pulled")),
                r::manifest_pulled_digest.eq(Some(digest)),
                r::manifest_etag.eq(etag),
                r::manifest_fetched_at.eq(Some(now)),
                r::manifest_error.eq(None::<String>),
                r::updated_at.eq(now),
            ))
            .execute(conn)?;
        Ok(())
    }

    /// A pull that found the same manifest as the last pull: only its ETag
    /// and time change, and a pushed manifest stays.
    pub fn manifest_unchanged(conn: &mut DbConnection, id: &str, etag: Option<&str>, now: DateTime<Utc>) -> Result<()> {
        diesel::update(service_registrations::table.find(id))
            .set((
                r::manifest_etag.eq(etag),
                r::manifest_fetched_at.eq(Some(to_db_time(now))),
                r::manifest_error.eq(None::<String>),
            ))
            .execute(conn)?;
        Ok(())
    }

    /// A manifest pushed by the service. The ETag and digest of the last
    /// pull stay, so that an unchanged pull does not undo the push.
    pub fn manifest_pushed(conn: &mut DbConnection, id: &str, manifest: &str, now: DateTime<Utc>) -> Result<()> {
        let now = to_db_time(now);
        diesel::update(service_registrations::table.find(id))
            .set((
                r::manifest.eq(Some(manifest)),
                r::manifest_source.eq(Some("pushed")),
                r::manifest_error.eq(None::<String>),
                r::updated_at.eq(now),
            ))
            .execute(conn)?;
        Ok(())
    }

    /// A pull that failed or was invalid: keep the last good manifest.
    pub fn manifest_error(conn: &mut DbConnection, id: &str, error: &str, now: DateTime<Utc>) -> Result<()> {
        diesel::update(service_registrations::table.find(id))
            .set((
                r::manifest_error.eq(Some(error)),
                r::manifest_fetched_at.eq(Some(to_db_time(now))),
            ))
            .execute(conn)?;
        Ok(())
    }

    pub fn next_manifest_at(conn: &mut DbConnection, id: &str, next: DateTime<Utc>) -> Result<()> {
        diesel::update(service_registrations::table.find(id))
            .set(r::next_manifest_at.eq(Some(to_db_time(next))))
            .execute(conn)?;
        Ok(())
    }

    pub fn release_poll(conn: &mut DbConnection, id: &str) -> Result<()> {
        diesel::update(service_registrations::table.find(id))
            .set((
                r::poll_owner.eq(None::<String>),
                r::poll_lease_until.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?;
        Ok(())
    }
}
