//! The authentication generation: one counter, bumped with every change that
//! can make a verified client invalid, so that every instance's cache of
//! verified clients knows when to forget them.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::auth_state;
use crate::error::Result;

/// Bump the generation, inside the transaction of the change.
pub fn bump(conn: &mut DbConnection) -> Result<()> {
    diesel::update(auth_state::table.find(1))
        .set(auth_state::generation.eq(auth_state::generation + 1))
        .execute(conn)?;
    Ok(())
}

pub fn current(conn: &mut DbConnection) -> Result<i64> {
    Ok(auth_state::table.find(1).select(auth_state::generation).first(conn)?)
}

/// The generation and the revocation feed's index, in one read (the tick's).
pub fn counters(conn: &mut DbConnection) -> Result<(i64, i64)> {
    Ok(auth_state::table
        .find(1)
        .select((auth_state::generation, auth_state::revocation_index))
        .first(conn)?)
}
