//! Login session rows: a person logged in through the browser, by the keyed
//! hash of the cookie's token.

use crate::db::time::{NullableUtcTimestamp, UtcTimestamp};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::login_sessions;
use crate::error::Result;

use super::to_db_time;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = login_sessions)]
pub struct LoginSessionRow {
    pub id: String,
    pub token_hash: String,
    pub principal_id: String,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub auth_time: DateTime<Utc>,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub last_seen_at: DateTime<Utc>,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub expires_at: DateTime<Utc>,
    #[diesel(serialize_as = NullableUtcTimestamp, deserialize_as = NullableUtcTimestamp)]
    pub ended_at: Option<DateTime<Utc>>,
    /// What the login proved: RFC 8176 method names, space-separated.
    pub amr: String,
    /// The step still due before the session counts (see [`Pending`]).
    pub pending: Option<String>,
}

/// The step a session still waits for after the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    /// A code of a confirmed factor, or a recovery code.
    SecondFactor,
    /// Enrolling a first factor, which the person's policy requires.
    Enrol,
}

stored_as_name!(Pending { SecondFactor => "second_factor", Enrol => "enrol" });

impl LoginSessionRow {
    /// The step due, if any (an unknown stored name counts as due).
    pub fn pending(&self) -> Option<Pending> {
        self.pending
            .as_deref()
            .map(|p| Pending::from_name(p).unwrap_or(Pending::SecondFactor))
    }
}

pub fn insert(conn: &mut DbConnection, row: &LoginSessionRow) -> Result<()> {
    diesel::insert_into(login_sessions::table)
        .values(row.clone())
        .execute(conn)?;
    Ok(())
}

pub fn find_by_hash(conn: &mut DbConnection, hash: &str) -> Result<Option<LoginSessionRow>> {
    Ok(login_sessions::table
        .filter(login_sessions::token_hash.eq(hash))
        .select(LoginSessionRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<LoginSessionRow>> {
    Ok(login_sessions::table
        .find(id)
        .select(LoginSessionRow::as_select())
        .first(conn)
        .optional()?)
}

/// Record activity, which moves the idle deadline.
pub fn touch(conn: &mut DbConnection, id: &str, now: DateTime<Utc>) -> Result<()> {
    diesel::update(login_sessions::table.find(id))
        .set(login_sessions::last_seen_at.eq(to_db_time(now)))
        .execute(conn)?;
    Ok(())
}

/// End one session. Returns false when it had ended already.
pub fn end(conn: &mut DbConnection, id: &str, now: DateTime<Utc>) -> Result<bool> {
    let n = diesel::update(
        login_sessions::table
            .find(id)
            .filter(login_sessions::ended_at.is_null()),
    )
    .set(login_sessions::ended_at.eq(Some(to_db_time(now))))
    .execute(conn)?;
    Ok(n == 1)
}

/// End every session of a person. Returns the ids of the sessions ended.
pub fn end_all_for_principal(conn: &mut DbConnection, principal_id: &str, now: DateTime<Utc>) -> Result<Vec<String>> {
    let ids: Vec<String> = login_sessions::table
        .filter(login_sessions::principal_id.eq(principal_id))
        .filter(login_sessions::ended_at.is_null())
        .select(login_sessions::id)
        .load(conn)?;
    diesel::update(login_sessions::table.filter(login_sessions::id.eq_any(&ids)))
        .set(login_sessions::ended_at.eq(Some(to_db_time(now))))
        .execute(conn)?;
    Ok(ids)
}

/// Forget sessions past their absolute lifetime, or ended before `ended_before`.
pub fn delete_expired(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<usize> {
    Ok(diesel::delete(login_sessions::table.filter(login_sessions::expires_at.le(to_db_time(now)))).execute(conn)?)
}

/// The second step passed: the session counts from `now`, with `amr`.
pub fn complete(
    conn: &mut DbConnection,
    id: &str,
    amr: &str,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let n = diesel::update(
        login_sessions::table
            .find(id)
            .filter(login_sessions::ended_at.is_null()),
    )
    .set((
        login_sessions::amr.eq(amr),
        login_sessions::pending.eq(None::<String>),
        login_sessions::auth_time.eq(to_db_time(now)),
        login_sessions::last_seen_at.eq(to_db_time(now)),
        login_sessions::expires_at.eq(to_db_time(expires_at)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}
