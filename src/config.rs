//! Run-time configuration of `roster serve`, resolved from flags and env.

use std::path::{Path, PathBuf};

use chrono::Duration;

use crate::auth::keys::{KeyPolicy, SigningAlg};
use crate::db::DatabaseTarget;
use crate::oauth::grants::TokenConfig;
use crate::registry::RegistryConfig;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Where the pepper key file lives when `--key-file` is not given: next to the
/// SQLite file (`roster.db` → `roster.key`), or `roster.key` in the working
/// directory for PostgreSQL.
pub fn default_key_file(target: &DatabaseTarget) -> PathBuf {
    match target {
        DatabaseTarget::Sqlite(path) => path.with_extension("key"),
        DatabaseTarget::Postgres(_) => Path::new("roster.key").to_path_buf(),
    }
}

/// The issuer URL, `http://<listen>` unless configured. A trailing slash is dropped.
pub fn issuer_for(configured: Option<&str>, bound: std::net::SocketAddr) -> String {
    match configured {
        Some(i) if !i.is_empty() => i.trim_end_matches('/').to_string(),
        _ => format!("http://{bound}"),
    }
}

/// Settings the HTTP layer needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub token: TokenConfig,
    pub keys: KeyPolicy,
    /// How often an instance reloads the signing keys (and runs rotation steps).
    pub key_refresh: Duration,
    /// Audit events older than this are deleted by the background tick.
    pub audit_retention: Option<Duration>,
    pub registry: RegistryConfig,
}

pub const DEFAULT_ACCESS_TOKEN_TTL_SECS: i64 = 5 * 60;
pub const DEFAULT_REFRESH_TOKEN_TTL_SECS: i64 = 30 * 24 * 3600;
pub const DEFAULT_KEY_PUBLISH_DELAY_SECS: i64 = 10 * 60;
pub const DEFAULT_KEY_ROTATION_SECS: i64 = 90 * 24 * 3600;
pub const DEFAULT_KEY_REFRESH_SECS: i64 = 5;
pub const DEFAULT_AUDIT_RETENTION_DAYS: i64 = 90;

impl Settings {
    /// The defaults: 5-minute access tokens, 30-day refresh tokens, EdDSA keys
    /// rotated every 90 days and published 10 minutes before they sign.
    pub fn new(issuer: String) -> Self {
        let access_ttl = Duration::seconds(DEFAULT_ACCESS_TOKEN_TTL_SECS);
        Self {
            token: TokenConfig {
                issuer,
                access_ttl,
                refresh_ttl: Duration::seconds(DEFAULT_REFRESH_TOKEN_TTL_SECS),
            },
            keys: KeyPolicy {
                alg: SigningAlg::EdDsa,
                publish_delay: Duration::seconds(DEFAULT_KEY_PUBLISH_DELAY_SECS),
                access_token_ttl: access_ttl,
                rotation_interval: Some(Duration::seconds(DEFAULT_KEY_ROTATION_SECS)),
            },
            key_refresh: Duration::seconds(DEFAULT_KEY_REFRESH_SECS),
            audit_retention: Some(Duration::days(DEFAULT_AUDIT_RETENTION_DAYS)),
            registry: RegistryConfig::default(),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.token.issuer
    }

    pub fn with_access_ttl(mut self, ttl: Duration) -> Self {
        self.token.access_ttl = ttl;
        self.keys.access_token_ttl = ttl;
        self
    }
}

pub use crate::clock::parse_duration;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_sits_next_to_the_database() {
        let t = DatabaseTarget::Sqlite(PathBuf::from("/data/roster.db"));
        assert_eq!(default_key_file(&t), PathBuf::from("/data/roster.key"));
        let t = DatabaseTarget::Postgres("postgres://x/y".into());
        assert_eq!(default_key_file(&t), PathBuf::from("roster.key"));
    }

    #[test]
    fn issuer_defaults_to_listen_address() {
        let addr: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(issuer_for(None, addr), "http://127.0.0.1:8080");
        assert_eq!(issuer_for(Some("https://id.example/"), addr), "https://id.example");
    }
}
