//! The deny list of revoked access tokens, by `jti`, kept until `exp`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::db::schema::revoked_tokens;
use crate::db::{DbConnection, Tx};
use crate::error::Result;

use super::to_db_time;

/// Add `jti` to the deny list and to the revocation feed, in the caller's
/// transaction. Idempotent: revoking again is not an error, and makes sure
/// the feed row exists (a revocation that once reached only the deny list is
/// repaired by the next revoke, or by [`repair_feed`]).
pub fn insert(tx: &mut Tx<'_>, jti: &str, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<()> {
    crate::db::insert_unless_present(tx, |c| {
        diesel::insert_into(revoked_tokens::table)
            .values((
                revoked_tokens::jti.eq(jti),
                revoked_tokens::expires_at.eq(to_db_time(expires_at)),
                revoked_tokens::revoked_at.eq(to_db_time(now)),
            ))
            .execute(c)
    })?;
    super::revocation::append_token(tx, jti, expires_at, now)?;
    Ok(())
}

/// [`insert`] for each `(jti, expires_at)`, in the caller's transaction.
pub fn insert_many(tx: &mut Tx<'_>, tokens: &[(String, DateTime<Utc>)], now: DateTime<Utc>) -> Result<()> {
    for (jti, exp) in tokens {
        insert(tx, jti, *exp, now)?;
    }
    Ok(())
}

/// Deny-listed tokens (still unexpired) whose feed row is missing, at most
/// `limit`: revocations acknowledged by an older Roster that never reached
/// the feed.
pub fn missing_from_feed(
    conn: &mut DbConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(String, DateTime<Utc>)>> {
    use crate::db::schema::revocations;
    let rows: Vec<(String, crate::db::time::UtcTimestamp)> = revoked_tokens::table
        .filter(revoked_tokens::expires_at.gt(to_db_time(now)))
        .filter(diesel::dsl::not(diesel::dsl::exists(
            revocations::table
                .filter(revocations::kind.eq(super::revocation::RevocationKind::Token.as_str()))
                .filter(revocations::subject.eq(revoked_tokens::jti)),
        )))
        .select((revoked_tokens::jti, revoked_tokens::expires_at))
        .order(revoked_tokens::jti.asc())
        .limit(limit)
        .load(conn)?;
    Ok(rows.into_iter().map(|(jti, exp)| (jti, exp.into())).collect())
}

/// Give every deny-listed token that lacks one its feed row, a batch per
/// call; how many were added. Run by the background tick.
pub fn repair_feed(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<usize> {
    let missing = missing_from_feed(conn, now, 500)?;
    let mut added = 0;
    for (jti, exp) in missing {
        let appended = crate::db::transaction(conn, |tx| super::revocation::append_token(tx, &jti, exp, now))?;
        added += usize::from(appended.is_some());
    }
    Ok(added)
}

pub fn is_revoked(conn: &mut DbConnection, jti: &str) -> Result<bool> {
    let n: i64 = revoked_tokens::table
        .filter(revoked_tokens::jti.eq(jti))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Forget entries whose token has expired anyway.
pub fn delete_expired(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<usize> {
    Ok(diesel::delete(revoked_tokens::table.filter(revoked_tokens::expires_at.le(to_db_time(now)))).execute(conn)?)
}
