//! Password rows: one argon2id PHC string per human principal.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::to_db_time;
use crate::db::DbConnection;
use crate::db::schema::password_credentials;
use crate::error::Result;

/// The stored PHC string of a principal's password.
pub fn find(conn: &mut DbConnection, principal_id: &str) -> Result<Option<String>> {
    Ok(password_credentials::table
        .find(principal_id)
        .select(password_credentials::phc)
        .first(conn)
        .optional()?)
}

/// Store (or replace) a principal's password hash. Run inside a transaction.
pub fn set(conn: &mut DbConnection, principal_id: &str, phc: &str, now: DateTime<Utc>) -> Result<()> {
    diesel::delete(password_credentials::table.find(principal_id)).execute(conn)?;
    diesel::insert_into(password_credentials::table)
        .values((
            password_credentials::principal_id.eq(principal_id),
            password_credentials::phc.eq(phc),
            password_credentials::updated_at.eq(to_db_time(now)),
        ))
        .execute(conn)?;
    Ok(())
}
