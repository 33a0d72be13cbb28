//! The keyed check value that ties a database to its pepper.

use chrono::{DateTime, Utc};

use crate::auth::secrets::{Pepper, constant_time_eq};
use crate::db::DbConnection;
use crate::error::{Error, Result};
use crate::models::settings;

const SETTING: &str = "pepper_check";

/// Does the database already hold a pepper's check value?
pub fn is_stored(conn: &mut DbConnection) -> Result<bool> {
    Ok(settings::get(conn, SETTING)?.is_some())
}

/// Store the pepper's check value on a new database, or verify it on an
/// existing one. A mismatch means this instance has the wrong pepper: its
/// client secrets would never verify, so it must not start.
pub fn verify_or_store(conn: &mut DbConnection, pepper: &Pepper, now: DateTime<Utc>) -> Result<()> {
    let expected = pepper.check_value();
    let stored = match settings::get(conn, SETTING)? {
        Some(v) => v,
        None => match settings::insert(conn, SETTING, &expected, now) {
            Ok(()) => return Ok(()),
            // Another instance stored it first: compare with theirs.
            Err(Error::Conflict(_)) => settings::get(conn, SETTING)?.unwrap_or_default(),
            Err(e) => return Err(e),
        },
    };
    if constant_time_eq(&stored, &expected) {
        Ok(())
    } else {
        Err(Error::Conflict(
            "the secret pepper does not match this database: set ROSTER_SECRET_PEPPER (or the key file) \
             to the value the other instances of this database use"
                .into(),
        ))
    }
}
