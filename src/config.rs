//! Run-time configuration of `roster serve`, resolved from flags and env.

use std::path::{Path, PathBuf};

use crate::db::DatabaseTarget;

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
    pub issuer: String,
}

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
