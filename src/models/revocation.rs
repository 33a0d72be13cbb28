//! Revocation feed rows: revoked tokens and principal changes, numbered by a
//! counter bumped in the writer's transaction, so readers never miss one.
//!
//! **The invariant.** A row is numbered and inserted in the transaction that
//! makes the change it records (every append takes a [`Tx`]), under the lock
//! of the counter row, so number `n` commits together with its row and only
//! after `n - 1` committed or rolled back. A reader that reads the counter
//! first and the rows after therefore sees every row up to the counter it
//! read, and a cursor handed out at that counter never passes a row that is
//! not yet visible. Numbers may be skipped (a rolled-back or pruned row),
//! never overtaken.

use crate::db::time::{NullableUtcTimestamp, UtcTimestamp};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::db::schema::{auth_state, revocations};
use crate::db::{DbConnection, Tx};
use crate::error::Result;

use super::principal::{self, Principal};
use super::to_db_time;

/// The longest access token lifetime Roster issues; a principal's change is
/// kept in the feed this long (plus leeway), after which no token issued
/// before it can be valid.
pub const MAX_ACCESS_TOKEN_TTL: chrono::Duration = chrono::Duration::hours(24);
/// The clock skew allowed to verifiers, added to every entry's keep time.
pub const LEEWAY: chrono::Duration = chrono::Duration::minutes(5);

/// What a row of the log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationKind {
    /// A revoked access token; `subject` is its `jti`.
    Token,
    /// A principal's status or scopes changed; `subject` is its id.
    Principal,
}

stored_as_name!(RevocationKind { Token => "token", Principal => "principal" });

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = revocations)]
pub struct RevocationRow {
    pub idx: i64,
    #[diesel(serialize_as = String, deserialize_as = String)]
    pub kind: RevocationKind,
    pub subject: String,
    pub status: Option<String>,
    #[diesel(serialize_as = NullableUtcTimestamp, deserialize_as = NullableUtcTimestamp)]
    pub not_before: Option<DateTime<Utc>>,
    /// JSON array of the principal's scopes after the change.
    pub scopes: Option<String>,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub created_at: DateTime<Utc>,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub expires_at: DateTime<Utc>,
}

/// Take the next index inside the caller's transaction. The counter row's
/// lock orders writers, so index `n` commits only after `n - 1` did (or
/// rolled back): a reader that has seen `n` has seen everything below it.
fn next_index(tx: &mut Tx<'_>) -> Result<i64> {
    diesel::update(auth_state::table.find(1))
        .set(auth_state::revocation_index.eq(auth_state::revocation_index + 1))
        .execute(&mut **tx)?;
    current_index(tx)
}

/// Take the counter row's lock without moving it (PostgreSQL's row lock;
/// SQLite's one write lock is held from the transaction's start).
fn lock_counter(tx: &mut Tx<'_>) -> Result<()> {
    diesel::update(auth_state::table.find(1))
        .set(auth_state::revocation_index.eq(auth_state::revocation_index))
        .execute(&mut **tx)?;
    Ok(())
}

/// Is `jti` in the feed?
pub fn has_token(conn: &mut DbConnection, jti: &str) -> Result<bool> {
    let n: i64 = revocations::table
        .filter(revocations::kind.eq(RevocationKind::Token.as_str()))
        .filter(revocations::subject.eq(jti))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

pub fn current_index(conn: &mut DbConnection) -> Result<i64> {
    Ok(auth_state::table
        .find(1)
        .select(auth_state::revocation_index)
        .first(conn)?)
}

/// Record a revoked access token, kept until it would have expired.
/// Once per token: `None` when it is in the feed already. The check comes
/// after the counter row is locked (and before it moves), so a concurrent
/// append of the same token has committed by then and is seen, and no number
/// is spent on it.
pub fn append_token(tx: &mut Tx<'_>, jti: &str, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<Option<i64>> {
    lock_counter(tx)?;
    if has_token(tx, jti)? {
        return Ok(None);
    }
    let idx = next_index(tx)?;
    diesel::insert_into(revocations::table)
        .values(RevocationRow {
            idx,
            kind: RevocationKind::Token,
            subject: jti.into(),
            status: None,
            not_before: None,
            scopes: None,
            created_at: now,
            expires_at: expires_at + LEEWAY,
        })
        .execute(&mut **tx)?;
    Ok(Some(idx))
}

/// Record a principal's state (status, `tokens_not_before`, scopes) after a
/// change to its status or scopes, kept until every token issued before the
/// change has expired. Principals are never deleted, only disabled.
pub fn append_principal(tx: &mut Tx<'_>, id: &str, now: DateTime<Utc>) -> Result<i64> {
    let keep_until = now + MAX_ACCESS_TOKEN_TTL + LEEWAY;
    let p: Principal =
        principal::find_by_id(tx, id)?.ok_or_else(|| crate::error::Error::NotFound(format!("principal {id}")))?;
    let scopes = serde_json::to_string(&principal::scopes_of(tx, id)?).map_err(crate::error::Error::internal)?;
    let (status, not_before, scopes) = (p.status, p.tokens_not_before, Some(scopes));
    let idx = next_index(tx)?;
    diesel::insert_into(revocations::table)
        .values(RevocationRow {
            idx,
            kind: RevocationKind::Principal,
            subject: id.into(),
            status: Some(status.to_string()),
            not_before,
            scopes,
            created_at: now,
            expires_at: keep_until,
        })
        .execute(&mut **tx)?;
    Ok(idx)
}

/// Rows after `after`, in order, at most `limit`.
pub fn since(conn: &mut DbConnection, after: i64, limit: i64) -> Result<Vec<RevocationRow>> {
    Ok(revocations::table
        .filter(revocations::idx.gt(after))
        .order(revocations::idx.asc())
        .limit(limit)
        .select(RevocationRow::as_select())
        .load(conn)?)
}

/// Forget rows no token they concern can outlive.
pub fn delete_expired(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<usize> {
    Ok(diesel::delete(revocations::table.filter(revocations::expires_at.le(to_db_time(now)))).execute(conn)?)
}
