//! Authorization code rows (RFC 6749 §4.1.2): keyed hashes, used once, with
//! what they are bound to and the tokens issued from them.

use crate::db::time::{NullableUtcTimestamp, UtcTimestamp};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::authorization_codes;
use crate::error::Result;

use super::to_db_time;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = authorization_codes)]
pub struct AuthorizationCodeRow {
    pub code_hash: String,
    pub client_id: String,
    pub principal_id: String,
    pub session_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub scope: String,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub auth_time: DateTime<Utc>,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub created_at: DateTime<Utc>,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub expires_at: DateTime<Utc>,
    #[diesel(serialize_as = NullableUtcTimestamp, deserialize_as = NullableUtcTimestamp)]
    pub used_at: Option<DateTime<Utc>>,
    pub refresh_family_id: Option<String>,
    pub access_jti: Option<String>,
    #[diesel(serialize_as = NullableUtcTimestamp, deserialize_as = NullableUtcTimestamp)]
    pub access_expires_at: Option<DateTime<Utc>>,
    /// What the login proved (RFC 8176 names, space-separated).
    pub amr: String,
}

pub fn insert(conn: &mut DbConnection, row: &AuthorizationCodeRow) -> Result<()> {
    diesel::insert_into(authorization_codes::table)
        .values(row.clone())
        .execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut DbConnection, hash: &str) -> Result<Option<AuthorizationCodeRow>> {
    Ok(authorization_codes::table
        .find(hash)
        .select(AuthorizationCodeRow::as_select())
        .first(conn)
        .optional()?)
}

/// Spend a code and record the tokens issued from it, only if it is unused.
/// Returns false when another request spent it first.
pub fn mark_used(
    conn: &mut DbConnection,
    hash: &str,
    refresh_family_id: Option<&str>,
    access_jti: &str,
    access_expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let n = diesel::update(
        authorization_codes::table
            .find(hash)
            .filter(authorization_codes::used_at.is_null()),
    )
    .set((
        authorization_codes::used_at.eq(Some(to_db_time(now))),
        authorization_codes::refresh_family_id.eq(refresh_family_id),
        authorization_codes::access_jti.eq(Some(access_jti)),
        authorization_codes::access_expires_at.eq(Some(to_db_time(access_expires_at))),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Forget codes that expired before `before` (kept a while after expiry, so
/// that a late second use is still recognised as reuse).
pub fn delete_expired(conn: &mut DbConnection, before: DateTime<Utc>) -> Result<usize> {
    Ok(
        diesel::delete(authorization_codes::table.filter(authorization_codes::expires_at.le(to_db_time(before))))
            .execute(conn)?,
    )
}
