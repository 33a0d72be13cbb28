//! Signing key rows.

use crate::db::time::{NullableUtcTimestamp, UtcTimestamp};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::signing_keys;
use crate::error::Result;

use super::to_db_time;

/// Where a signing key is in its life: published ahead (`next`), signing
/// (`active`), or published a while longer after it stopped (`retired`).
/// Stored as its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Next,
    Active,
    Retired,
}

stored_as_name!(KeyState { Next => "next", Active => "active", Retired => "retired" });

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRow {
    pub kid: String,
    pub alg: String,
    /// The public JWK as JSON.
    pub public_jwk: String,
    /// base64url(nonce || AES-256-GCM ciphertext of the PKCS#8 document).
    pub private_key: String,
    #[diesel(serialize_as = String, deserialize_as = String)]
    pub state: KeyState,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub created_at: DateTime<Utc>,
    #[diesel(serialize_as = NullableUtcTimestamp, deserialize_as = NullableUtcTimestamp)]
    pub activated_at: Option<DateTime<Utc>>,
    #[diesel(serialize_as = NullableUtcTimestamp, deserialize_as = NullableUtcTimestamp)]
    pub publish_until: Option<DateTime<Utc>>,
}

pub fn all(conn: &mut DbConnection) -> Result<Vec<SigningKeyRow>> {
    Ok(signing_keys::table
        .select(SigningKeyRow::as_select())
        .order((signing_keys::created_at.asc(), signing_keys::kid.asc()))
        .load(conn)?)
}

pub fn insert(conn: &mut DbConnection, row: &SigningKeyRow) -> Result<()> {
    diesel::insert_into(signing_keys::table)
        .values(row.clone())
        .execute(conn)?;
    Ok(())
}

/// `next` → `active`. Conditional, so that two instances promoting the same
/// key at once do it once. Returns whether this call promoted it.
pub fn activate(conn: &mut DbConnection, kid: &str, now: DateTime<Utc>) -> Result<bool> {
    let n = diesel::update(
        signing_keys::table
            .filter(signing_keys::kid.eq(kid))
            .filter(signing_keys::state.eq(KeyState::Next.as_str())),
    )
    .set((
        signing_keys::state.eq(KeyState::Active.as_str()),
        signing_keys::activated_at.eq(Some(to_db_time(now))),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Retire every active key but `keep`, publishing them until `publish_until`.
pub fn retire_others(conn: &mut DbConnection, keep: &str, publish_until: DateTime<Utc>) -> Result<()> {
    diesel::update(
        signing_keys::table
            .filter(signing_keys::state.eq(KeyState::Active.as_str()))
            .filter(signing_keys::kid.ne(keep)),
    )
    .set((
        signing_keys::state.eq(KeyState::Retired.as_str()),
        signing_keys::publish_until.eq(Some(to_db_time(publish_until))),
    ))
    .execute(conn)?;
    Ok(())
}

/// Drop retired keys whose last token has expired.
pub fn delete_expired(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<usize> {
    Ok(diesel::delete(
        signing_keys::table
            .filter(signing_keys::state.eq(KeyState::Retired.as_str()))
            .filter(signing_keys::publish_until.le(to_db_time(now))),
    )
    .execute(conn)?)
}
