//! How a service authenticates at the token endpoint (RFC 7591's
//! `token_endpoint_auth_method`), its public keys for `private_key_jwt`, and
//! the ledger of client assertions already used.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::schema::{client_assertion_jtis, client_keys};
use crate::db::time::UtcTimestamp;
use crate::db::{DbConnection, Fault};
use crate::error::Result;

use super::to_db_time;

/// RFC 7591 §2 `token_endpoint_auth_method`, as registered for a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A client secret in HTTP Basic (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// A client secret in the body; Roster's default (either form is accepted
    /// for both secret methods, as they carry the same secret).
    ClientSecretPost,
    /// A JWT signed with the client's private key (RFC 7523 §2.2).
    PrivateKeyJwt,
    /// A public client: no credentials (RFC 6749 §2.1).
    None,
}

stored_as_name!(AuthMethod {
    ClientSecretBasic => "client_secret_basic",
    ClientSecretPost => "client_secret_post",
    PrivateKeyJwt => "private_key_jwt",
    None => "none",
});

impl AuthMethod {
    /// Does this method authenticate with a client secret?
    pub fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost)
    }
}

/// A `client_keys` row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = client_keys)]
pub struct ClientKeysRow {
    pub principal_id: String,
    #[diesel(serialize_as = String, deserialize_as = String)]
    pub auth_method: AuthMethod,
    /// A public JWK Set, as JSON.
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub updated_at: DateTime<Utc>,
}

pub fn find(conn: &mut DbConnection, principal_id: &str) -> Result<Option<ClientKeysRow>> {
    Ok(client_keys::table
        .find(principal_id)
        .select(ClientKeysRow::as_select())
        .first(conn)
        .optional()?)
}

/// The rows of many principals at once.
pub fn find_many(conn: &mut DbConnection, ids: &[String]) -> Result<Vec<ClientKeysRow>> {
    Ok(client_keys::table
        .filter(client_keys::principal_id.eq_any(ids))
        .select(ClientKeysRow::as_select())
        .load(conn)?)
}

/// Write a principal's row, replacing any (inside the caller's transaction).
pub fn save(conn: &mut DbConnection, row: &ClientKeysRow) -> Result<()> {
    diesel::delete(client_keys::table.find(&row.principal_id)).execute(conn)?;
    diesel::insert_into(client_keys::table)
        .values(row.clone())
        .execute(conn)?;
    Ok(())
}

/// Record the use of assertion `jti` by a client until `expires_at`: false
/// when it was used before (a replay), on any instance. One statement on its
/// own, so the answer is final when it returns (RFC 7523 §3 item 7).
pub fn use_jti(conn: &mut DbConnection, principal_id: &str, jti: &str, expires_at: DateTime<Utc>) -> Result<bool> {
    match insert_jti(conn, principal_id, jti, expires_at) {
        Ok(_) => Ok(true),
        Err(e) if crate::db::classify(&e) == Fault::UniqueViolation => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The insert that spends a `jti`; a unique violation means it was spent.
pub fn insert_jti(
    conn: &mut DbConnection,
    principal_id: &str,
    jti: &str,
    expires_at: DateTime<Utc>,
) -> diesel::QueryResult<usize> {
    diesel::insert_into(client_assertion_jtis::table)
        .values((
            client_assertion_jtis::principal_id.eq(principal_id),
            client_assertion_jtis::jti.eq(jti),
            client_assertion_jtis::expires_at.eq(to_db_time(expires_at)),
        ))
        .execute(conn)
}

/// Spend many `jti`s at once, in the caller's transaction: one read of
/// those already spent, one multi-row insert of the rest. Answers, in order, whether
/// each was fresh (a `jti` twice in `items` is fresh once). If another
/// writer spends one of them between the read and the insert, the insert
/// fails on the primary key and the caller's transaction must be dropped.
pub fn spend_jtis(conn: &mut DbConnection, items: &[(String, String, DateTime<Utc>)]) -> Result<Vec<bool>> {
    use std::collections::HashSet;
    let jtis: Vec<&str> = items.iter().map(|(_, j, _)| j.as_str()).collect();
    let mut clients: Vec<&str> = items.iter().map(|(p, _, _)| p.as_str()).collect();
    clients.sort_unstable();
    clients.dedup();
    // By the primary key (principal_id, jti): an index lookup per jti.
    let spent: HashSet<(String, String)> = client_assertion_jtis::table
        .filter(client_assertion_jtis::principal_id.eq_any(&clients))
        .filter(client_assertion_jtis::jti.eq_any(&jtis))
        .select((client_assertion_jtis::principal_id, client_assertion_jtis::jti))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect();
    let mut seen = HashSet::new();
    let mut rows = Vec::new();
    let mut fresh = Vec::with_capacity(items.len());
    for (p, j, exp) in items {
        let key = (p.clone(), j.clone());
        let new = !spent.contains(&key) && seen.insert(key);
        if new {
            rows.push((
                client_assertion_jtis::principal_id.eq(p.clone()),
                client_assertion_jtis::jti.eq(j.clone()),
                client_assertion_jtis::expires_at.eq(to_db_time(*exp)),
            ));
        }
        fresh.push(new);
    }
    if !rows.is_empty() {
        // One multi-row INSERT: one round trip for the whole batch.
        crate::db::insert_all!(conn, client_assertion_jtis::table, &rows)?;
    }
    Ok(fresh)
}

/// Forget the assertions that expired before `now`: they can no longer be
/// replayed, as their `exp` refuses them. Returns how many went.
pub fn prune_jtis(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<usize> {
    Ok(
        diesel::delete(client_assertion_jtis::table.filter(client_assertion_jtis::expires_at.lt(to_db_time(now))))
            .execute(conn)?,
    )
}
