//! Login throttle rows: failure counters and the time a key is blocked until.

use crate::db::time::{NullableUtcTimestamp, UtcTimestamp};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::to_db_time;
use crate::db::DbConnection;
use crate::db::schema::login_throttles;
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = login_throttles, treat_none_as_null = true)]
pub struct ThrottleRow {
    pub key: String,
    pub subject: Option<String>,
    pub failures: i32,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub last_failure: DateTime<Utc>,
    #[diesel(serialize_as = NullableUtcTimestamp, deserialize_as = NullableUtcTimestamp)]
    pub blocked_until: Option<DateTime<Utc>>,
}

/// The rows of `keys` that exist.
pub fn find_many(conn: &mut DbConnection, keys: &[String]) -> Result<Vec<ThrottleRow>> {
    Ok(login_throttles::table
        .filter(login_throttles::key.eq_any(keys))
        .select(ThrottleRow::as_select())
        .load(conn)?)
}

pub fn insert(conn: &mut DbConnection, row: &ThrottleRow) -> Result<()> {
    diesel::insert_into(login_throttles::table)
        .values(row.clone())
        .execute(conn)?;
    Ok(())
}

pub fn save(conn: &mut DbConnection, row: &ThrottleRow) -> Result<()> {
    diesel::update(login_throttles::table.find(&row.key))
        .set(row.clone())
        .execute(conn)?;
    Ok(())
}

pub fn delete(conn: &mut DbConnection, key: &str) -> Result<usize> {
    Ok(diesel::delete(login_throttles::table.find(key)).execute(conn)?)
}

/// Every row about the principal `subject`.
pub fn delete_subject(conn: &mut DbConnection, subject: &str) -> Result<usize> {
    Ok(diesel::delete(login_throttles::table.filter(login_throttles::subject.eq(subject))).execute(conn)?)
}

/// Rows blocked at `now`, newest failure first.
pub fn blocked(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<Vec<ThrottleRow>> {
    Ok(login_throttles::table
        .filter(login_throttles::blocked_until.gt(to_db_time(now)))
        .order(login_throttles::last_failure.desc())
        .select(ThrottleRow::as_select())
        .limit(500)
        .load(conn)?)
}

/// Forget counters whose last failure is older than `cutoff` and that block
/// nothing any more.
pub fn delete_stale(conn: &mut DbConnection, cutoff: DateTime<Utc>, now: DateTime<Utc>) -> Result<usize> {
    let cutoff = to_db_time(cutoff);
    let now = to_db_time(now);
    Ok(diesel::delete(
        login_throttles::table
            .filter(login_throttles::last_failure.lt(cutoff))
            .filter(
                login_throttles::blocked_until
                    .is_null()
                    .or(login_throttles::blocked_until.le(now)),
            ),
    )
    .execute(conn)?)
}
