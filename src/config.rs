//! Run-time configuration of `roster serve`, resolved from flags and env.

use std::path::{Path, PathBuf};

use chrono::Duration;

use crate::auth::keys::{KeyPolicy, SigningAlg};
use crate::db::DatabaseTarget;
use crate::oauth::grants::TokenConfig;
use crate::registry::RegistryConfig;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Roster's data directory for key files of PostgreSQL databases:
/// `$ROSTER_DATA_DIR`, else `$XDG_DATA_HOME/roster`, else
/// `$HOME/.local/share/roster`, else `/var/lib/roster`.
pub fn data_dir(env: impl Fn(&str) -> Option<String>) -> PathBuf {
    let set = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    set("ROSTER_DATA_DIR")
        .or_else(|| set("XDG_DATA_HOME").map(|d| d.join("roster")))
        .or_else(|| set("HOME").map(|h| h.join(".local/share/roster")))
        .unwrap_or_else(|| Path::new("/var/lib/roster").to_path_buf())
}

/// Where the pepper key file lives when `--key-file` is not given: next to
/// the SQLite file (`roster.db` → `roster.key`); for PostgreSQL, in the data
/// directory, named after the server and database (never after the working
/// directory, so every command run from anywhere finds the same file).
pub fn default_key_file(target: &DatabaseTarget, data_dir: &Path) -> PathBuf {
    match target {
        DatabaseTarget::Sqlite(path) => path.with_extension("key"),
        DatabaseTarget::Postgres(url) => data_dir.join(format!("postgres-{}.key", database_key(url))),
    }
}

/// A stable name for a PostgreSQL database: host, port and database name
/// (not the user, the password or the options), hashed.
fn database_key(url: &str) -> String {
    let identity = match url::Url::parse(url) {
        Ok(u) => format!(
            "{}:{}/{}",
            u.host_str().unwrap_or("localhost"),
            u.port().unwrap_or(5432),
            u.path().trim_start_matches('/')
        ),
        Err(_) => url.to_string(),
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, identity.as_bytes());
    crate::auth::secrets::hex(&digest.as_ref()[..8])
}

/// The issuer URL, `http://<listen>` unless configured. A trailing slash is dropped.
pub fn issuer_for(configured: Option<&str>, bound: std::net::SocketAddr) -> String {
    match configured {
        Some(i) if !i.is_empty() => i.trim_end_matches('/').to_string(),
        _ => format!("http://{bound}"),
    }
}

/// Limits of client connections: slow or idle clients cannot hold the server
/// (enforced by `http::conn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    /// Time to receive a request's head (line and headers) after a
    /// connection opens or a previous request ends.
    pub head_timeout: std::time::Duration,
    /// Time for a whole request, head and body, from its first byte (a long
    /// poll adds its own `wait`).
    pub request_timeout: std::time::Duration,
    /// Time after the answer to write it and drain an unread body.
    pub drain_timeout: std::time::Duration,
    /// How long an idle keep-alive connection stays open.
    pub keep_alive: std::time::Duration,
    /// Most connections open at once, over all workers.
    pub max_connections: usize,
    /// Most connections open at once from one peer (an IPv4 address or an
    /// IPv6 /64; connections from `--trust-forwarded-for` proxies are not
    /// counted per peer).
    pub max_connections_per_peer: usize,
    /// A connection that moved no byte for this long is stalled: the first
    /// shed when the server nears `max_connections`.
    pub stalled_after: std::time::Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            head_timeout: std::time::Duration::from_secs(5),
            request_timeout: std::time::Duration::from_secs(10),
            drain_timeout: std::time::Duration::from_secs(1),
            keep_alive: std::time::Duration::from_secs(5),
            max_connections: 10_000,
            max_connections_per_peer: 256,
            stalled_after: std::time::Duration::from_secs(2),
        }
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
    pub http: HttpLimits,
    /// Most password checks waiting for argon2; past it, password logins
    /// are answered 503 at once.
    pub argon_queue: usize,
    /// The argon2id cost of new password hashes (OWASP's by default).
    pub password_hashing: crate::auth::password::Hashing,
    /// When failed password logins are slowed down.
    pub throttle: crate::auth::throttle::ThrottlePolicy,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub registry: RegistryConfig,
    /// Browser login sessions' idle timeout and absolute lifetime.
    pub sessions: crate::oauth::session::SessionPolicy,
    /// Serve the admin console at `/console/`.
    pub console: bool,
    /// Who must pass a second step (admins, by default).
    pub mfa: crate::auth::second_factor::MfaPolicy,
}

pub const DEFAULT_ACCESS_TOKEN_TTL_SECS: i64 = 5 * 60;
pub const DEFAULT_REFRESH_TOKEN_TTL_SECS: i64 = 30 * 24 * 3600;
pub const DEFAULT_KEY_PUBLISH_DELAY_SECS: i64 = 10 * 60;
pub const DEFAULT_KEY_ROTATION_SECS: i64 = 90 * 24 * 3600;
pub const DEFAULT_KEY_REFRESH_SECS: i64 = 5;
pub const DEFAULT_AUDIT_RETENTION_DAYS: i64 = 90;
pub const DEFAULT_ARGON_QUEUE: usize = 64;
pub const DEFAULT_ASSERTION_MAX_LIFETIME_SECS: i64 = 5 * 60;

impl Settings {
    /// The defaults: 5-minute access tokens, 30-day refresh tokens, EdDSA keys
    /// rotated every 90 days and published 10 minutes before they sign.
    pub fn new(issuer: String) -> Self {
        let access_ttl = Duration::seconds(DEFAULT_ACCESS_TOKEN_TTL_SECS);
        Self {
            token: TokenConfig {
                issuer: crate::auth::jwt::Issuer::new(issuer),
                access_ttl,
                refresh_ttl: Duration::seconds(DEFAULT_REFRESH_TOKEN_TTL_SECS),
                password_grant: true,
                assertion_max_lifetime: Duration::seconds(DEFAULT_ASSERTION_MAX_LIFETIME_SECS),
            },
            keys: KeyPolicy {
                alg: SigningAlg::EdDsa,
                publish_delay: Duration::seconds(DEFAULT_KEY_PUBLISH_DELAY_SECS),
                access_token_ttl: access_ttl,
                rotation_interval: Some(Duration::seconds(DEFAULT_KEY_ROTATION_SECS)),
            },
            key_refresh: Duration::seconds(DEFAULT_KEY_REFRESH_SECS),
            audit_retention: Some(Duration::days(DEFAULT_AUDIT_RETENTION_DAYS)),
            http: HttpLimits::default(),
            argon_queue: DEFAULT_ARGON_QUEUE,
            password_hashing: crate::auth::password::Hashing::OWASP,
            throttle: crate::auth::throttle::ThrottlePolicy::default(),
            trusted_proxies: Vec::new(),
            registry: RegistryConfig::default(),
            sessions: crate::oauth::session::SessionPolicy::default(),
            console: true,
            mfa: crate::auth::second_factor::MfaPolicy::default(),
        }
    }

    pub fn issuer(&self) -> &str {
        self.token.issuer.as_str()
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
    fn key_file_sits_next_to_the_database_or_in_the_data_dir() {
        let dir = Path::new("/home/op/.local/share/roster");
        let t = DatabaseTarget::Sqlite(PathBuf::from("/data/roster.db"));
        assert_eq!(default_key_file(&t, dir), PathBuf::from("/data/roster.key"));
        let a = default_key_file(
            &DatabaseTarget::Postgres("postgres://app:pw@db:5432/roster".into()),
            dir,
        );
        let b = default_key_file(
            &DatabaseTarget::Postgres("postgres://other@db/roster?sslmode=require".into()),
            dir,
        );
        let c = default_key_file(&DatabaseTarget::Postgres("postgres://app@db/staging".into()), dir);
        assert_eq!(a, b, "the same database, whoever connects");
        assert_ne!(a, c);
        assert!(a.starts_with(dir) && a.to_string_lossy().ends_with(".key"), "{a:?}");
    }

    #[test]
    fn the_data_dir_follows_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        assert_eq!(
            data_dir(env(&[("ROSTER_DATA_DIR", "/srv/r"), ("HOME", "/h")])),
            PathBuf::from("/srv/r")
        );
        assert_eq!(
            data_dir(env(&[("XDG_DATA_HOME", "/x"), ("HOME", "/h")])),
            PathBuf::from("/x/roster")
        );
        assert_eq!(
            data_dir(env(&[("HOME", "/h")])),
            PathBuf::from("/h/.local/share/roster")
        );
        assert_eq!(data_dir(env(&[])), PathBuf::from("/var/lib/roster"));
    }

    #[test]
    fn issuer_defaults_to_listen_address() {
        let addr: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(issuer_for(None, addr), "http://127.0.0.1:8080");
        assert_eq!(issuer_for(Some("https://id.example/"), addr), "https://id.example");
    }
}
