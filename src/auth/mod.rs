//! Credentials: passwords, client secrets and the server pepper.

pub mod bearer;
pub mod client;
pub mod jwt;
pub mod keys;
pub mod password;
pub mod pepper_check;
pub mod secrets;
pub mod usage;
