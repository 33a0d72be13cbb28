//! Invitation rows: a single-use link for a person with no way to sign in
//! yet, kept by the keyed hash of its token, spent by one compare-and-set.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::invitations;
use crate::db::time::{NullableUtcTimestamp, UtcTimestamp};
use crate::error::Result;

use super::to_db_time;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = invitations)]
pub struct InvitationRow {
    pub token_hash: String,
    pub principal_id: String,
    /// The admin who made it (none from the command line).
    pub created_by: Option<String>,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub created_at: DateTime<Utc>,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub expires_at: DateTime<Utc>,
    #[diesel(serialize_as = NullableUtcTimestamp, deserialize_as = NullableUtcTimestamp)]
    pub used_at: Option<DateTime<Utc>>,
}

pub fn insert(conn: &mut DbConnection, row: &InvitationRow) -> Result<()> {
    diesel::insert_into(invitations::table)
        .values(row.clone())
        .execute(conn)?;
    Ok(())
}

/// Drop `principal_id`'s unused invitations (a new one replaces them);
/// how many there were.
pub fn delete_unused_of(conn: &mut DbConnection, principal_id: &str) -> Result<usize> {
    Ok(diesel::delete(
        invitations::table
            .filter(invitations::principal_id.eq(principal_id))
            .filter(invitations::used_at.is_null()),
    )
    .execute(conn)?)
}

/// The unused, unexpired invitation whose token hashes to `hash`.
pub fn find_live(conn: &mut DbConnection, hash: &str, now: DateTime<Utc>) -> Result<Option<InvitationRow>> {
    Ok(invitations::table
        .find(hash)
        .filter(invitations::used_at.is_null())
        .filter(invitations::expires_at.gt(to_db_time(now)))
        .select(InvitationRow::as_select())
        .first(conn)
        .optional()?)
}

/// Spend the invitation: true for the one caller that found it live.
pub fn spend(conn: &mut DbConnection, hash: &str, now: DateTime<Utc>) -> Result<bool> {
    let n = diesel::update(
        invitations::table
            .find(hash)
            .filter(invitations::used_at.is_null())
            .filter(invitations::expires_at.gt(to_db_time(now))),
    )
    .set(invitations::used_at.eq(Some(to_db_time(now))))
    .execute(conn)?;
    Ok(n == 1)
}

/// Forget invitations that ran out before `before`, used or not.
pub fn delete_expired(conn: &mut DbConnection, before: DateTime<Utc>) -> Result<usize> {
    Ok(diesel::delete(invitations::table.filter(invitations::expires_at.lt(to_db_time(before)))).execute(conn)?)
}
