//! Rows and queries. Diesel lives here and in `crate::db`, nowhere else.

pub mod audit;
pub mod auth_state;
pub mod authorization_code;
pub mod client_settings;
pub mod health;
pub mod instance;
pub mod login_session;
pub mod password;
pub mod principal;
pub mod refresh_token;
pub mod registration;
pub mod revocation;
pub mod revoked_token;
pub mod secret;
pub mod settings;
pub mod signing_key;
pub mod throttle;
pub mod transition;

use chrono::{DateTime, NaiveDateTime, Utc};

/// Timestamps are stored as UTC `TIMESTAMP` and made in Rust. Both backends
/// keep microseconds, so `now` is truncated to that before it is written.
pub fn to_db_time(t: DateTime<Utc>) -> NaiveDateTime {
    use chrono::SubsecRound;
    t.naive_utc().trunc_subsecs(6)
}

pub fn from_db_time(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// A new random UUID as TEXT.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A new time-ordered UUID (v7) as TEXT, for rows that are paged by age.
pub fn new_ordered_id(now: DateTime<Utc>) -> String {
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        now.timestamp().max(0) as u64,
        now.timestamp_subsec_nanos(),
    );
    uuid::Uuid::new_v7(ts).to_string()
}
