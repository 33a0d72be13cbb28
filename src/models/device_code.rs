//! Device authorization rows (RFC 8628): the device code by keyed hash,
//! the user code a person types, and, once answered, who approved it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::device_codes;
use crate::db::time::{NullableUtcTimestamp, UtcTimestamp};
use crate::error::Result;

use super::to_db_time;

/// Where a device authorization stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    /// Waiting for the person.
    Pending,
    /// The person approved; the next poll gets the tokens.
    Approved,
    /// The person refused.
    Denied,
    /// Its tokens were issued.
    Used,
}

stored_as_name!(DeviceStatus { Pending => "pending", Approved => "approved", Denied => "denied", Used => "used" });

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = device_codes)]
pub struct DeviceCodeRow {
    pub device_code_hash: String,
    /// Normalised: upper case, no separator.
    pub user_code: String,
    pub client_id: String,
    pub scope: String,
    #[diesel(serialize_as = String, deserialize_as = String)]
    pub status: DeviceStatus,
    /// The polling interval now (§3.5: `slow_down` adds five seconds).
    pub interval_secs: i64,
    /// A poll before this is `slow_down`.
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub next_poll_at: DateTime<Utc>,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub created_at: DateTime<Utc>,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub expires_at: DateTime<Utc>,
    pub principal_id: Option<String>,
    pub session_id: Option<String>,
    pub amr: Option<String>,
    #[diesel(serialize_as = NullableUtcTimestamp, deserialize_as = NullableUtcTimestamp)]
    pub auth_time: Option<DateTime<Utc>>,
}

pub fn insert(conn: &mut DbConnection, row: &DeviceCodeRow) -> Result<()> {
    diesel::insert_into(device_codes::table)
        .values(row.clone())
        .execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut DbConnection, hash: &str) -> Result<Option<DeviceCodeRow>> {
    Ok(device_codes::table
        .find(hash)
        .select(DeviceCodeRow::as_select())
        .first(conn)
        .optional()?)
}

/// The pending, unexpired authorization with `user_code`.
pub fn find_pending(conn: &mut DbConnection, user_code: &str, now: DateTime<Utc>) -> Result<Option<DeviceCodeRow>> {
    Ok(device_codes::table
        .filter(device_codes::user_code.eq(user_code))
        .filter(device_codes::status.eq(DeviceStatus::Pending.as_str()))
        .filter(device_codes::expires_at.gt(to_db_time(now)))
        .select(DeviceCodeRow::as_select())
        .first(conn)
        .optional()?)
}

/// Record a poll: when the next may come, at `interval_secs`.
pub fn polled(conn: &mut DbConnection, hash: &str, interval_secs: i64, next: DateTime<Utc>) -> Result<()> {
    diesel::update(device_codes::table.find(hash))
        .set((
            device_codes::interval_secs.eq(interval_secs),
            device_codes::next_poll_at.eq(to_db_time(next)),
        ))
        .execute(conn)?;
    Ok(())
}

/// What a person's answer records.
#[derive(Debug, Clone)]
pub struct Answer<'a> {
    pub status: DeviceStatus,
    pub principal_id: &'a str,
    pub session_id: &'a str,
    pub amr: &'a str,
    pub auth_time: DateTime<Utc>,
}

/// Answer a pending authorization; false if it was no longer pending.
pub fn answer(conn: &mut DbConnection, hash: &str, a: &Answer<'_>, now: DateTime<Utc>) -> Result<bool> {
    let n = diesel::update(
        device_codes::table
            .find(hash)
            .filter(device_codes::status.eq(DeviceStatus::Pending.as_str()))
            .filter(device_codes::expires_at.gt(to_db_time(now))),
    )
    .set((
        device_codes::status.eq(a.status.as_str()),
        device_codes::principal_id.eq(Some(a.principal_id)),
        device_codes::session_id.eq(Some(a.session_id)),
        device_codes::amr.eq(Some(a.amr)),
        device_codes::auth_time.eq(Some(to_db_time(a.auth_time))),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Spend an approved authorization: true once.
pub fn spend(conn: &mut DbConnection, hash: &str) -> Result<bool> {
    let n = diesel::update(
        device_codes::table
            .find(hash)
            .filter(device_codes::status.eq(DeviceStatus::Approved.as_str())),
    )
    .set(device_codes::status.eq(DeviceStatus::Used.as_str()))
    .execute(conn)?;
    Ok(n == 1)
}

/// Forget authorizations expired before `before`.
pub fn delete_expired(conn: &mut DbConnection, before: DateTime<Utc>) -> Result<usize> {
    Ok(diesel::delete(device_codes::table.filter(device_codes::expires_at.lt(to_db_time(before)))).execute(conn)?)
}
