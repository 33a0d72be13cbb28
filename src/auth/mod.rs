//! Credentials and tokens: passwords, client secrets, the server pepper, the
//! signing keys, and the online check of access tokens.

pub mod access;
pub mod amr;
pub mod assertion;
pub mod client;
pub mod failures;
pub mod jti_ledger;
pub mod jwt;
pub mod keys;
pub mod live;
pub mod passkeys;
pub mod password;
pub mod pepper_check;
pub mod recovery_codes;
pub mod remote_keys;
pub mod revocation_feed;
pub mod sealed;
pub mod second_factor;
pub mod secrets;
pub mod source_budget;
pub mod throttle;
pub mod totp;
pub mod usage;
pub mod verified;
