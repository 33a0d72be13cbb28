//! The deny list of revoked access tokens, by `jti`, kept until `exp`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::revoked_tokens;
use crate::error::{Error, Result};

use super::to_db_time;

/// Add `jti` to the deny list, and to the revocation feed the first time.
/// Revoking twice is not an error.
pub fn insert(conn: &mut DbConnection, jti: &str, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<()> {
    let inserted = diesel::insert_into(revoked_tokens::table)
        .values((
            revoked_tokens::jti.eq(jti),
            revoked_tokens::expires_at.eq(to_db_time(expires_at)),
            revoked_tokens::revoked_at.eq(to_db_time(now)),
        ))
        .execute(conn)
        .map_err(Error::from);
    match inserted {
        Ok(_) => super::revocation::append_token(conn, jti, expires_at, now).map(|_| ()),
        Err(Error::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
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
