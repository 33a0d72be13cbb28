//! Client secrets of service principals (metadata and keyed hash only).

use crate::db::time::{NullableUtcTimestamp, UtcTimestamp};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::client_secrets;
use crate::error::Result;

use super::to_db_time;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, Identifiable)]
#[diesel(table_name = client_secrets)]
pub struct ClientSecretRow {
    pub id: String,
    pub principal_id: String,
    pub secret_hash: String,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub created_at: DateTime<Utc>,
    #[diesel(serialize_as = NullableUtcTimestamp, deserialize_as = NullableUtcTimestamp)]
    pub expires_at: Option<DateTime<Utc>>,
    #[diesel(serialize_as = NullableUtcTimestamp, deserialize_as = NullableUtcTimestamp)]
    pub last_used_at: Option<DateTime<Utc>>,
    pub use_count: i64,
}

impl ClientSecretRow {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|exp| exp <= now)
    }
}

pub fn insert(
    conn: &mut DbConnection,
    principal_id: &str,
    secret_hash: &str,
    now: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<ClientSecretRow> {
    let row = ClientSecretRow {
        id: super::new_id(),
        principal_id: principal_id.to_string(),
        secret_hash: secret_hash.to_string(),
        created_at: now,
        expires_at,
        last_used_at: None,
        use_count: 0,
    };
    diesel::insert_into(client_secrets::table)
        .values(row.clone())
        .execute(conn)?;
    Ok(row)
}

pub fn list_for(conn: &mut DbConnection, principal_id: &str) -> Result<Vec<ClientSecretRow>> {
    Ok(client_secrets::table
        .filter(client_secrets::principal_id.eq(principal_id))
        .select(ClientSecretRow::as_select())
        .order((client_secrets::created_at.asc(), client_secrets::id.asc()))
        .load(conn)?)
}

/// Delete one secret of a principal. Returns whether it existed.
pub fn delete(conn: &mut DbConnection, principal_id: &str, secret_id: &str) -> Result<bool> {
    let n = diesel::delete(
        client_secrets::table
            .filter(client_secrets::principal_id.eq(principal_id))
            .filter(client_secrets::id.eq(secret_id)),
    )
    .execute(conn)?;
    Ok(n > 0)
}

/// Add `count` uses to a secret and move `last_used_at` forward to `last_used`
/// (never back: another instance may have recorded a later use).
pub fn add_uses(conn: &mut DbConnection, secret_id: &str, count: i64, last_used: DateTime<Utc>) -> Result<()> {
    let last_used = to_db_time(last_used);
    diesel::update(client_secrets::table.find(secret_id))
        .set(client_secrets::use_count.eq(client_secrets::use_count + count))
        .execute(conn)?;
    diesel::update(
        client_secrets::table.find(secret_id).filter(
            client_secrets::last_used_at
                .is_null()
                .or(client_secrets::last_used_at.lt(last_used)),
        ),
    )
    .set(client_secrets::last_used_at.eq(Some(last_used)))
    .execute(conn)?;
    Ok(())
}

/// Delete every secret of a principal (it stopped authenticating with one).
pub fn delete_all_for(conn: &mut DbConnection, principal_id: &str) -> Result<usize> {
    Ok(diesel::delete(client_secrets::table.filter(client_secrets::principal_id.eq(principal_id))).execute(conn)?)
}
