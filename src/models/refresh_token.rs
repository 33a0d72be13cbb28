//! Refresh token rows: opaque tokens stored as keyed hashes, in families.

use crate::db::time::{NullableUtcTimestamp, UtcTimestamp};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::refresh_tokens;
use crate::error::Result;

use super::to_db_time;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshTokenRow {
    pub id: String,
    pub family_id: String,
    pub principal_id: String,
    /// The service client the token was issued to; `None` for a person who
    /// logged in without a client.
    pub client_id: Option<String>,
    pub token_hash: String,
    pub scope: String,
    pub audience: String,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub created_at: DateTime<Utc>,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub expires_at: DateTime<Utc>,
    #[diesel(serialize_as = NullableUtcTimestamp, deserialize_as = NullableUtcTimestamp)]
    pub used_at: Option<DateTime<Utc>>,
    #[diesel(serialize_as = NullableUtcTimestamp, deserialize_as = NullableUtcTimestamp)]
    pub revoked_at: Option<DateTime<Utc>>,
    /// The client proved its secret when the family began; every refresh
    /// must prove it again.
    pub client_confidential: bool,
    /// The browser login session the family began in, if any: it ends with it.
    pub session_id: Option<String>,
    /// What the login behind it proved (RFC 8176 names, space-separated).
    pub amr: Option<String>,
}

impl RefreshTokenRow {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }
    pub fn is_spent(&self) -> bool {
        self.used_at.is_some() || self.revoked_at.is_some()
    }
}

pub fn insert(conn: &mut DbConnection, row: &RefreshTokenRow) -> Result<()> {
    diesel::insert_into(refresh_tokens::table)
        .values(row.clone())
        .execute(conn)?;
    Ok(())
}

pub fn find_by_hash(conn: &mut DbConnection, hash: &str) -> Result<Option<RefreshTokenRow>> {
    Ok(refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(hash))
        .select(RefreshTokenRow::as_select())
        .first(conn)
        .optional()?)
}

/// Mark a token used, only if it is still unused and unrevoked. Returns false
/// when another request spent it first: that is reuse.
pub fn mark_used(conn: &mut DbConnection, id: &str, now: DateTime<Utc>) -> Result<bool> {
    let n = diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::id.eq(id))
            .filter(refresh_tokens::used_at.is_null())
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::used_at.eq(Some(to_db_time(now))))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn revoke_family(conn: &mut DbConnection, family_id: &str, now: DateTime<Utc>) -> Result<usize> {
    Ok(diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(family_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(Some(to_db_time(now))))
    .execute(conn)?)
}

pub fn revoke_all_for_principal(conn: &mut DbConnection, principal_id: &str, now: DateTime<Utc>) -> Result<usize> {
    Ok(diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::principal_id.eq(principal_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(Some(to_db_time(now))))
    .execute(conn)?)
}

/// Revoke every refresh token issued under the login session `session_id`.
pub fn revoke_session(conn: &mut DbConnection, session_id: &str, now: DateTime<Utc>) -> Result<usize> {
    Ok(diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::session_id.eq(session_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(Some(to_db_time(now))))
    .execute(conn)?)
}
