//! Registry rows at the service level: one row per registered service (its
//! derived status, manifest, description and meta), the change index, and
//! the modify index of every view a watcher can block on.

use crate::db::time::{NullableUtcTimestamp, UtcTimestamp};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::db::schema::{
    categories, principals, registry_services, registry_state, registry_views, service_categories,
};
use crate::db::{DbConnection, Tx};
use crate::error::Result;

use super::to_db_time;

pub use super::health::Health;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = registry_services, treat_none_as_null = true)]
pub struct ServiceRow {
    pub principal_id: String,
    /// Up when at least one instance is up.
    #[diesel(serialize_as = String, deserialize_as = String)]
    pub status: Health,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub status_changed_at: DateTime<Utc>,
    pub description: Option<String>,
    /// A JSON object of short strings.
    pub meta: Option<String>,
    pub manifest: Option<String>,
    pub manifest_etag: Option<String>,
    #[diesel(serialize_as = NullableUtcTimestamp, deserialize_as = NullableUtcTimestamp)]
    pub manifest_fetched_at: Option<DateTime<Utc>>,
    pub manifest_error: Option<String>,
    /// `pushed` or `pulled`: who wrote `manifest` last.
    pub manifest_source: Option<String>,
    /// Digest of the last manifest pulled from a `modules_url`.
    pub manifest_pulled_digest: Option<String>,
    #[diesel(serialize_as = NullableUtcTimestamp, deserialize_as = NullableUtcTimestamp)]
    pub next_manifest_at: Option<DateTime<Utc>>,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub registered_at: DateTime<Utc>,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub updated_at: DateTime<Utc>,
}

pub fn find(conn: &mut DbConnection, principal_id: &str) -> Result<Option<ServiceRow>> {
    Ok(registry_services::table
        .find(principal_id)
        .select(ServiceRow::as_select())
        .first(conn)
        .optional()?)
}

/// Lock a service's row for the rest of the transaction (a write that
/// changes nothing), so that writers of one service's instances run one at a
/// time and each derives the service's status from what the last one left.
/// Returns false when the service has no row.
pub fn lock(conn: &mut DbConnection, principal_id: &str) -> Result<bool> {
    use registry_services::dsl as s;
    Ok(diesel::update(registry_services::table.find(principal_id))
        .set(s::status.eq(s::status))
        .execute(conn)?
        == 1)
}

/// Insert a first registration; false when another writer's row is there
/// (it committed first: lock and read that one instead).
pub fn insert(conn: &mut DbConnection, row: &ServiceRow) -> Result<bool> {
    use diesel::result::{DatabaseErrorKind, Error as DieselError};
    // In a savepoint, so that a conflict leaves the caller's transaction usable.
    let outcome = conn.transaction(|c| {
        diesel::insert_into(registry_services::table)
            .values(row.clone())
            .execute(c)
    });
    match outcome {
        Ok(_) => Ok(true),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Write every column of `row`.
pub fn save(conn: &mut DbConnection, row: &ServiceRow) -> Result<()> {
    diesel::update(registry_services::table.find(&row.principal_id))
        .set(row.clone())
        .execute(conn)?;
    Ok(())
}

/// Delete a service's registration (its instances go with it); false when
/// it had none.
pub fn delete(conn: &mut DbConnection, principal_id: &str) -> Result<bool> {
    super::instance::delete_all(conn, principal_id)?;
    Ok(diesel::delete(registry_services::table.find(principal_id)).execute(conn)? == 1)
}

pub fn set_status(conn: &mut DbConnection, principal_id: &str, status: Health, now: DateTime<Utc>) -> Result<()> {
    use registry_services::dsl as s;
    let now = to_db_time(now);
    diesel::update(registry_services::table.find(principal_id))
        .set((
            s::status.eq(status.as_str()),
            s::status_changed_at.eq(now),
            s::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

// ---- the change index and the views' modify indexes -----------------------

/// The view key of one service (`GET /api/v1/services/{name}`).
pub fn service_key(name: &str) -> String {
    format!("service:{name}")
}

/// The view key of one category (`GET /api/v1/categories/{name}`).
pub fn category_key(name: &str) -> String {
    format!("category:{name}")
}

/// The view key of the menu (`GET /api/v1/modules`).
pub const MODULES_KEY: &str = "modules";

/// Bump the change index in the caller's transaction; returns the new value.
fn bump_index(tx: &mut Tx<'_>) -> Result<i64> {
    diesel::update(registry_state::table.find(1))
        .set(registry_state::change_index.eq(registry_state::change_index + 1))
        .execute(&mut **tx)?;
    current_index(tx)
}

pub fn current_index(conn: &mut DbConnection) -> Result<i64> {
    Ok(registry_state::table
        .find(1)
        .select(registry_state::change_index)
        .first(conn)?)
}

/// Bump the change index and mark `keys` as changed at it, in the caller's
/// transaction. The index row is locked first, so views are stamped in
/// commit order. Returns the new index.
pub fn changed(tx: &mut Tx<'_>, keys: &[String]) -> Result<i64> {
    let index = bump_index(tx)?;
    for key in keys {
        let n = diesel::update(registry_views::table.find(key))
            .set(registry_views::modify_index.eq(index))
            .execute(&mut **tx)?;
        if n == 0 {
            diesel::insert_into(registry_views::table)
                .values((registry_views::view_key.eq(key), registry_views::modify_index.eq(index)))
                .execute(&mut **tx)?;
        }
    }
    Ok(index)
}

/// A service's categories changed outside the registry (an admin's PATCH):
/// stamp its view and those of the categories it left and joined.
pub fn categories_changed(tx: &mut Tx<'_>, service: &str, old: &[String], new: &[String]) -> Result<i64> {
    let mut keys = vec![service_key(service)];
    for c in old.iter().chain(new) {
        let k = category_key(c);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    changed(tx, &keys)
}

/// The modify index of each of `keys` that ever changed.
pub fn view_indexes(conn: &mut DbConnection, keys: &[String]) -> Result<Vec<(String, i64)>> {
    Ok(registry_views::table
        .filter(registry_views::view_key.eq_any(keys))
        .select((registry_views::view_key, registry_views::modify_index))
        .load(conn)?)
}

/// Views changed after `index`, with the index of their last change.
pub fn views_changed_since(conn: &mut DbConnection, index: i64) -> Result<Vec<(String, i64)>> {
    Ok(registry_views::table
        .filter(registry_views::modify_index.gt(index))
        .select((registry_views::view_key, registry_views::modify_index))
        .load(conn)?)
}

// ---- listings -------------------------------------------------------------

/// Registered services with their names, by name, optionally only members
/// of a category or those with a status.
pub fn list(
    conn: &mut DbConnection,
    category: Option<&str>,
    status: Option<Health>,
) -> Result<Vec<(String, ServiceRow)>> {
    let mut query = registry_services::table
        .inner_join(principals::table)
        .select((principals::name, ServiceRow::as_select()))
        .into_boxed();
    if let Some(status) = status {
        query = query.filter(registry_services::status.eq(status.as_str()));
    }
    if let Some(category) = category {
        let members = service_categories::table
            .inner_join(categories::table)
            .filter(categories::name.eq(category.to_string()))
            .select(service_categories::principal_id);
        query = query.filter(registry_services::principal_id.eq_any(members));
    }
    Ok(query.order(principals::name.asc()).load(conn)?)
}

/// One service's membership of a category, with its registration status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub category: String,
    pub principal_id: String,
    pub service: String,
    pub priority: i32,
    /// `None` when the service has not registered.
    pub status: Option<Health>,
    pub description: Option<String>,
}

/// Category memberships, by category, then priority (highest first), then
/// service name; of one category when `only` names it.
pub fn category_members(conn: &mut DbConnection, only: Option<&str>) -> Result<Vec<MemberRow>> {
    let mut query = service_categories::table
        .inner_join(categories::table)
        .inner_join(principals::table.left_join(registry_services::table))
        .select((
            categories::name,
            principals::id,
            principals::name,
            service_categories::priority,
            registry_services::status.nullable(),
            registry_services::description.nullable(),
        ))
        .into_boxed();
    if let Some(name) = only {
        query = query.filter(categories::name.eq(name.to_string()));
    }
    query
        .order((
            categories::name.asc(),
            service_categories::priority.desc(),
            principals::name.asc(),
        ))
        .load::<(String, String, String, i32, Option<String>, Option<String>)>(conn)?
        .into_iter()
        .map(|(category, principal_id, service, priority, status, description)| {
            Ok(MemberRow {
                category,
                principal_id,
                service,
                priority,
                status: status.map(Health::try_from).transpose()?,
                description,
            })
        })
        .collect()
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

/// Services whose manifest pull is due at `now`.
pub fn due_manifests(conn: &mut DbConnection, now: DateTime<Utc>, limit: i64) -> Result<Vec<String>> {
    use registry_services::dsl as s;
    Ok(registry_services::table
        .filter(s::next_manifest_at.le(to_db_time(now)))
        .select(s::principal_id)
        .order(s::principal_id.asc())
        .limit(limit)
        .load(conn)?)
}

/// Claim a due manifest pull by moving its next time to `next`: a
/// conditional update, so that of several Roster instances exactly one
/// pulls. One that crashes mid-pull costs one interval.
pub fn claim_manifest(
    conn: &mut DbConnection,
    principal_id: &str,
    now: DateTime<Utc>,
    next: DateTime<Utc>,
) -> Result<bool> {
    use registry_services::dsl as s;
    let n = diesel::update(
        registry_services::table
            .filter(s::principal_id.eq(principal_id))
            .filter(s::next_manifest_at.le(to_db_time(now))),
    )
    .set(s::next_manifest_at.eq(Some(to_db_time(next))))
    .execute(conn)?;
    Ok(n == 1)
}

/// Targeted updates of the manifest columns.
pub mod update {
    use super::*;
    use registry_services::dsl as s;

    /// A manifest pulled from a `modules_url`, with its ETag and digest.
    pub fn manifest_pulled(
        conn: &mut DbConnection,
        id: &str,
        manifest: &str,
        etag: Option<&str>,
        digest: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let now = to_db_time(now);
        diesel::update(registry_services::table.find(id))
            .set((
                s::manifest.eq(Some(manifest)),
                s::manifest_source.eq(Some("pulled")),
                s::manifest_pulled_digest.eq(Some(digest)),
                s::manifest_etag.eq(etag),
                s::manifest_fetched_at.eq(Some(now)),
                s::manifest_error.eq(None::<String>),
                s::updated_at.eq(now),
            ))
            .execute(conn)?;
        Ok(())
    }

    /// A pull that found the same manifest as the last pull: only its ETag
    /// and time change, and a pushed manifest stays.
    pub fn manifest_unchanged(conn: &mut DbConnection, id: &str, etag: Option<&str>, now: DateTime<Utc>) -> Result<()> {
        diesel::update(registry_services::table.find(id))
            .set((
                s::manifest_etag.eq(etag),
                s::manifest_fetched_at.eq(Some(to_db_time(now))),
                s::manifest_error.eq(None::<String>),
            ))
            .execute(conn)?;
        Ok(())
    }

    /// A manifest pushed by the service. The ETag and digest of the last
    /// pull stay, so that an unchanged pull does not undo the push.
    pub fn manifest_pushed(conn: &mut DbConnection, id: &str, manifest: &str, now: DateTime<Utc>) -> Result<()> {
        let now = to_db_time(now);
        diesel::update(registry_services::table.find(id))
            .set((
                s::manifest.eq(Some(manifest)),
                s::manifest_source.eq(Some("pushed")),
                s::manifest_error.eq(None::<String>),
                s::updated_at.eq(now),
            ))
            .execute(conn)?;
        Ok(())
    }

    /// A pull that failed or was invalid: keep the last good manifest.
    pub fn manifest_error(conn: &mut DbConnection, id: &str, error: &str, now: DateTime<Utc>) -> Result<()> {
        diesel::update(registry_services::table.find(id))
            .set((
                s::manifest_error.eq(Some(error)),
                s::manifest_fetched_at.eq(Some(to_db_time(now))),
            ))
            .execute(conn)?;
        Ok(())
    }

    /// Pull the manifest at `at` (now, when an instance with a `modules_url` registers).
    pub fn schedule_manifest(conn: &mut DbConnection, id: &str, at: DateTime<Utc>) -> Result<()> {
        diesel::update(registry_services::table.find(id))
            .set(s::next_manifest_at.eq(Some(to_db_time(at))))
            .execute(conn)?;
        Ok(())
    }

    /// Forget the ETag, so that the next pull fetches the manifest in full.
    pub fn forget_etag(conn: &mut DbConnection, id: &str) -> Result<()> {
        diesel::update(registry_services::table.find(id))
            .set((
                s::manifest_etag.eq(None::<String>),
                s::manifest_pulled_digest.eq(None::<String>),
            ))
            .execute(conn)?;
        Ok(())
    }

    /// A new description and meta (`None`: leave as is).
    pub fn describe(
        conn: &mut DbConnection,
        id: &str,
        description: Option<&str>,
        meta: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let now = to_db_time(now);
        if let Some(d) = description {
            diesel::update(registry_services::table.find(id))
                .set((s::description.eq(Some(d)), s::updated_at.eq(now)))
                .execute(conn)?;
        }
        if let Some(m) = meta {
            diesel::update(registry_services::table.find(id))
                .set((s::meta.eq(Some(m)), s::updated_at.eq(now)))
                .execute(conn)?;
        }
        Ok(())
    }
}
