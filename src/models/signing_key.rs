//! Signing key rows.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::signing_keys;
use crate::error::Result;

use super::to_db_time;

pub const STATE_NEXT: &str = "next";
pub const STATE_ACTIVE: &str = "active";
pub const STATE_RETIRED: &str = "retired";

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRow {
    pub kid: String,
    pub alg: String,
    /// The public JWK as JSON.
    pub public_jwk: String,
    /// base64url(nonce || AES-256-GCM ciphertext of the PKCS#8 document).
    pub private_key: String,
    pub state: String,
    pub created_at: NaiveDateTime,
    pub activated_at: Option<NaiveDateTime>,
    pub publish_until: Option<NaiveDateTime>,
}

pub fn all(conn: &mut DbConnection) -> Result<Vec<SigningKeyRow>> {
    Ok(signing_keys::table
        .select(SigningKeyRow::as_select())
        .order((signing_keys::created_at.asc(), signing_keys::kid.asc()))
        .load(conn)?)
}

pub fn insert(conn: &mut DbConnection, row: &SigningKeyRow) -> Result<()> {
    diesel::insert_into(signing_keys::table).values(row).execute(conn)?;
    Ok(())
}

/// `next` → `active`. Conditional, so that two instances promoting the same
/// key at once do it once. Returns whether this call promoted it.
pub fn activate(conn: &mut DbConnection, kid: &str, now: DateTime<Utc>) -> Result<bool> {
    let n = diesel::update(
        signing_keys::table
            .filter(signing_keys::kid.eq(kid))
            .filter(signing_keys::state.eq(STATE_NEXT)),
    )
    .set((
        signing_keys::state.eq(STATE_ACTIVE),
        signing_keys::activated_at.eq(Some(to_db_time(now))),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Retire every active key but `keep`, publishing them until `publish_until`.
pub fn retire_others(conn: &mut DbConnection, keep: &str, publish_until: DateTime<Utc>) -> Result<()> {
    diesel::update(
        signing_keys::table
            .filter(signing_keys::state.eq(STATE_ACTIVE))
            .filter(signing_keys::kid.ne(keep)),
    )
    .set((
        signing_keys::state.eq(STATE_RETIRED),
        signing_keys::publish_until.eq(Some(to_db_time(publish_until))),
    ))
    .execute(conn)?;
    Ok(())
}

/// Drop retired keys whose last token has expired.
pub fn delete_expired(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<usize> {
    Ok(diesel::delete(
        signing_keys::table
            .filter(signing_keys::state.eq(STATE_RETIRED))
            .filter(signing_keys::publish_until.le(to_db_time(now))),
    )
    .execute(conn)?)
}
