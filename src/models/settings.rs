//! Server-wide settings stored in the database.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::server_settings;
use crate::error::Result;

use super::to_db_time;

pub fn get(conn: &mut DbConnection, name: &str) -> Result<Option<String>> {
    Ok(server_settings::table
        .find(name)
        .select(server_settings::value)
        .first(conn)
        .optional()?)
}

/// Insert a setting that must not exist yet. A concurrent insert of the same
/// name surfaces as `Error::Conflict`.
pub fn insert(conn: &mut DbConnection, name: &str, value: &str, now: DateTime<Utc>) -> Result<()> {
    diesel::insert_into(server_settings::table)
        .values((
            server_settings::name.eq(name),
            server_settings::value.eq(value),
            server_settings::updated_at.eq(to_db_time(now)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Set a setting, whether or not it exists.
pub fn put(conn: &mut DbConnection, name: &str, value: &str, now: DateTime<Utc>) -> Result<()> {
    let updated = diesel::update(server_settings::table.find(name))
        .set((
            server_settings::value.eq(value),
            server_settings::updated_at.eq(to_db_time(now)),
        ))
        .execute(conn)?;
    if updated == 0 {
        insert(conn, name, value, now)?;
    }
    Ok(())
}
