//! Credentials: passwords, client secrets and the server pepper.

pub mod client;
pub mod password;
pub mod pepper_check;
pub mod secrets;
