//! Token exchange rows (RFC 8693): each service's exchange policy, and the
//! tokens exchanges issued, so that revoking a token reaches what was made
//! from it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::DbConnection;
use crate::db::schema::{exchanged_tokens, revoked_tokens, token_exchange_policies};
use crate::db::time::UtcTimestamp;
use crate::error::{Error, Result};

use super::to_db_time;

/// The longest chain a service gets when its policy names none.
pub const DEFAULT_MAX_DEPTH: i32 = 3;

/// What a service may exchange its callers' tokens for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangePolicy {
    /// Service names, or `urn:roster:category:<name>` for the services of a
    /// category that are up.
    pub audiences: Vec<String>,
    /// The longest delegation chain (hops of `act`) a token this service
    /// gets may carry.
    #[serde(default = "default_max_depth")]
    pub max_depth: i32,
}

fn default_max_depth() -> i32 {
    DEFAULT_MAX_DEPTH
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = token_exchange_policies)]
struct PolicyRow {
    principal_id: String,
    /// A JSON array of audiences.
    audiences: String,
    max_depth: i32,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    updated_at: DateTime<Utc>,
}

impl PolicyRow {
    fn decode(self) -> Result<(String, ExchangePolicy)> {
        let audiences = serde_json::from_str(&self.audiences)
            .map_err(|e| Error::internal(format!("a stored exchange policy: {e}")))?;
        Ok((
            self.principal_id,
            ExchangePolicy {
                audiences,
                max_depth: self.max_depth,
            },
        ))
    }
}

/// A service's policy, if it has one.
pub fn find(conn: &mut DbConnection, principal_id: &str) -> Result<Option<ExchangePolicy>> {
    token_exchange_policies::table
        .find(principal_id)
        .select(PolicyRow::as_select())
        .first(conn)
        .optional()?
        .map(|r| r.decode().map(|(_, p)| p))
        .transpose()
}

/// The policies of many services at once.
pub fn find_many(conn: &mut DbConnection, ids: &[String]) -> Result<Vec<(String, ExchangePolicy)>> {
    token_exchange_policies::table
        .filter(token_exchange_policies::principal_id.eq_any(ids))
        .select(PolicyRow::as_select())
        .load(conn)?
        .into_iter()
        .map(PolicyRow::decode)
        .collect()
}

/// Set a service's policy, or remove it with `None` (inside the caller's
/// transaction).
pub fn save(
    conn: &mut DbConnection,
    principal_id: &str,
    policy: Option<&ExchangePolicy>,
    now: DateTime<Utc>,
) -> Result<()> {
    diesel::delete(token_exchange_policies::table.find(principal_id)).execute(conn)?;
    if let Some(policy) = policy {
        let audiences = serde_json::to_string(&policy.audiences)
            .map_err(|e| Error::internal(format!("an exchange policy: {e}")))?;
        diesel::insert_into(token_exchange_policies::table)
            .values(PolicyRow {
                principal_id: principal_id.to_string(),
                audiences,
                max_depth: policy.max_depth,
                updated_at: now,
            })
            .execute(conn)?;
    }
    Ok(())
}

/// A token an exchange issued.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = exchanged_tokens)]
pub struct ExchangedToken {
    pub jti: String,
    /// The subject token it was exchanged for.
    pub parent_jti: String,
    /// The token at the start of its chain.
    pub root_jti: String,
    /// Whom it is for (`sub`).
    pub principal_id: String,
    /// The service it was issued to.
    pub actor_id: String,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub expires_at: DateTime<Utc>,
}

pub fn insert(conn: &mut DbConnection, row: &ExchangedToken) -> Result<()> {
    diesel::insert_into(exchanged_tokens::table)
        .values(row.clone())
        .execute(conn)?;
    Ok(())
}

/// Insert many rows with one multi-row INSERT (one round trip), in the
/// caller's transaction.
pub fn insert_all(conn: &mut DbConnection, rows: &[ExchangedToken]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    crate::db::insert_all!(conn, exchanged_tokens::table, rows.to_vec())?;
    Ok(())
}

/// Every unexpired token made from `jti` by exchanges, at any depth, with
/// its expiry: one query per level of the chain.
pub fn descendants(conn: &mut DbConnection, jti: &str, now: DateTime<Utc>) -> Result<Vec<(String, DateTime<Utc>)>> {
    let mut found = Vec::new();
    let mut level = vec![jti.to_string()];
    while !level.is_empty() {
        let rows: Vec<(String, UtcTimestamp)> = exchanged_tokens::table
            .filter(exchanged_tokens::parent_jti.eq_any(&level))
            .filter(exchanged_tokens::expires_at.gt(to_db_time(now)))
            .select((exchanged_tokens::jti, exchanged_tokens::expires_at))
            .load(conn)?;
        level = rows.iter().map(|(j, _)| j.clone()).collect();
        found.extend(rows.into_iter().map(|(j, exp)| (j, exp.into())));
    }
    Ok(found)
}

/// Unexpired tokens issued to service `actor_id` by exchanges.
pub fn issued_to(conn: &mut DbConnection, actor_id: &str, now: DateTime<Utc>) -> Result<Vec<(String, DateTime<Utc>)>> {
    let rows: Vec<(String, UtcTimestamp)> = exchanged_tokens::table
        .filter(exchanged_tokens::actor_id.eq(actor_id))
        .filter(exchanged_tokens::expires_at.gt(to_db_time(now)))
        .select((exchanged_tokens::jti, exchanged_tokens::expires_at))
        .load(conn)?;
    Ok(rows.into_iter().map(|(j, exp)| (j, exp.into())).collect())
}

/// Unexpired exchanged tokens whose parent is revoked but which are not,
/// at most `limit`: an exchange that committed while its subject token was
/// being revoked, which the revocation's own search could not see yet.
pub fn orphans(conn: &mut DbConnection, now: DateTime<Utc>, limit: i64) -> Result<Vec<(String, DateTime<Utc>)>> {
    let revoked = || revoked_tokens::table.select(revoked_tokens::jti);
    let rows: Vec<(String, UtcTimestamp)> = exchanged_tokens::table
        .filter(exchanged_tokens::parent_jti.eq_any(revoked()))
        .filter(diesel::dsl::not(exchanged_tokens::jti.eq_any(revoked())))
        .filter(exchanged_tokens::expires_at.gt(to_db_time(now)))
        .select((exchanged_tokens::jti, exchanged_tokens::expires_at))
        .order(exchanged_tokens::jti.asc())
        .limit(limit)
        .load(conn)?;
    Ok(rows.into_iter().map(|(j, exp)| (j, exp.into())).collect())
}

/// Forget tokens that have expired anyway.
pub fn delete_expired(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<usize> {
    Ok(
        diesel::delete(exchanged_tokens::table.filter(exchanged_tokens::expires_at.le(to_db_time(now))))
            .execute(conn)?,
    )
}
