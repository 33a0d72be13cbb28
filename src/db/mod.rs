//! Storage: one connection type over SQLite and PostgreSQL, chosen at run time.
//!
//! This is the only module that knows which backend is in use. Everything else
//! is written against [`DbConnection`] with portable SQL.

pub mod schema;

use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, ManageConnection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// The backend split lives in the migrations, not in domain code: each backend
/// has its own folder so that DDL can use each dialect, with the same versions.
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// How long a SQLite connection waits on a lock held by another connection.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

pub type DbPool = r2d2::Pool<ConnectionManager>;
pub type PooledConn = r2d2::PooledConnection<ConnectionManager>;

/// Where the data lives, parsed from `DATABASE_URL`.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    Postgres(String),
    Sqlite(PathBuf),
}

impl std::fmt::Debug for DatabaseTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A PostgreSQL URL may carry a password: never print it.
        match self {
            Self::Postgres(url) => write!(f, "Postgres({})", redact_url(url)),
            Self::Sqlite(path) => write!(f, "Sqlite({})", path.display()),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("unsupported database URL scheme '{0}': use postgres://, postgresql://, sqlite://PATH or a file path")]
    UnsupportedScheme(String),
    #[error("empty SQLite path in database URL")]
    EmptyPath,
    #[error("in-memory SQLite is not supported: every pooled connection would see its own database")]
    InMemory,
}

/// The default database when `DATABASE_URL` is unset: `roster.db` in the working directory.
pub const DEFAULT_SQLITE_FILE: &str = "roster.db";

impl DatabaseTarget {
    /// Parse `DATABASE_URL`: `postgres://` or `postgresql://` is PostgreSQL;
    /// `sqlite://PATH`, a plain path or nothing is SQLite; any other scheme is an error.
    pub fn parse(url: Option<&str>) -> Result<Self, TargetError> {
        let url = url.map(str::trim).unwrap_or("");
        if url.is_empty() {
            return Ok(Self::Sqlite(PathBuf::from(DEFAULT_SQLITE_FILE)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_string()));
        }
        let path = if let Some(rest) = url.strip_prefix("sqlite://") {
            rest
        } else if let Some((scheme, _)) = url.split_once("://") {
            return Err(TargetError::UnsupportedScheme(scheme.to_string()));
        } else if let Some(rest) = url.strip_prefix("sqlite:") {
            rest
        } else {
            url
        };
        if path.is_empty() {
            return Err(TargetError::EmptyPath);
        }
        if path == ":memory:" || path.contains("mode=memory") {
            return Err(TargetError::InMemory);
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Sqlite(_) => "sqlite",
        }
    }

    /// A description safe to log: the SQLite file's absolute path, or the
    /// PostgreSQL URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Self::Postgres(url) => format!("PostgreSQL at {}", redact_url(url)),
            Self::Sqlite(path) => {
                let abs = std::path::absolute(path).unwrap_or_else(|_| path.clone());
                format!("SQLite file {}", abs.display())
            }
        }
    }

    /// Open one connection, configured for Roster.
    pub fn connect(&self) -> Result<DbConnection, DieselError> {
        match self {
            Self::Postgres(url) => PgConnection::establish(url)
                .map(DbConnection::Postgres)
                .map_err(connection_error),
            Self::Sqlite(path) => {
                let path_str = path.to_string_lossy();
                let mut conn = SqliteConnection::establish(&path_str).map_err(connection_error)?;
                // foreign_keys is per connection; WAL lets readers run beside one
                // writer; busy_timeout makes writers queue instead of failing;
                // synchronous=FULL syncs every commit, so an acknowledged write
                // survives a power loss too, not only a crash of the process.
                conn.batch_execute(&format!(
                    "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; \
                     PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                ))?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }
}

fn connection_error(e: diesel::ConnectionError) -> DieselError {
    DieselError::QueryBuilderError(format!("cannot connect to the database: {e}").into())
}

/// Hide the password part of `scheme://user:password@host/...`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "<unparseable url>".to_string(),
    }
}

/// Run every pending migration of this connection's backend.
pub fn run_migrations(conn: &mut DbConnection) -> Result<usize, String> {
    let applied = match conn {
        DbConnection::Postgres(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS),
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
    }
    .map_err(|e| format!("migration failed: {e}"))?;
    Ok(applied.len())
}

/// The versions embedded for each backend, for the test that keeps them in step.
pub fn embedded_versions() -> (Vec<String>, Vec<String>) {
    use diesel::migration::MigrationSource;
    let names = |source: &EmbeddedMigrations| -> Vec<String> {
        MigrationSource::<diesel::sqlite::Sqlite>::migrations(source)
            .map(|ms| ms.iter().map(|m| m.name().version().to_string()).collect())
            .unwrap_or_default()
    };
    (names(&SQLITE_MIGRATIONS), names(&POSTGRES_MIGRATIONS))
}

/// r2d2 manager that opens connections of the configured backend.
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    target: DatabaseTarget,
}

impl ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = DieselError;

    fn connect(&self) -> Result<DbConnection, DieselError> {
        self.target.connect()
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), DieselError> {
        conn.batch_execute("SELECT 1")
    }

    /// A connection whose server went away (or that failed mid-transaction)
    /// is dropped instead of going back to the pool.
    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        r2d2::R2D2Connection::is_broken(conn)
    }
}

/// Pool sizing and timeouts.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_size: u32,
    pub connection_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_size: 16,
            connection_timeout: Duration::from_secs(5),
        }
    }
}

/// Open one connection and run pending migrations. Connecting directly makes
/// an unreachable database fail at once with the driver's own message.
pub fn connect_migrated(target: &DatabaseTarget) -> Result<DbConnection, String> {
    if let DatabaseTarget::Sqlite(path) = target {
        ensure_parent_dir(path)?;
    }
    let mut conn = target.connect().map_err(|e| format!("{}: {e}", target.describe()))?;
    run_migrations(&mut conn)?;
    Ok(conn)
}

/// The connection pool of a long-running process (`serve`). One-shot commands
/// use a single connection instead: the pool opens connections on background
/// threads, and a PostgreSQL connection still being opened (TLS and all) when
/// the process exits can crash libpq's cleanup.
pub fn pool(target: &DatabaseTarget, opts: &PoolOptions) -> Result<DbPool, String> {
    r2d2::Pool::builder()
        .max_size(opts.max_size)
        .min_idle(Some(1))
        .connection_timeout(opts.connection_timeout)
        // Checked-out connections are not pinged (one round trip saved per
        // request); broken ones are dropped on return by `has_broken`.
        .test_on_check_out(false)
        .build(ConnectionManager { target: target.clone() })
        .map_err(|e| format!("{}: {e}", target.describe()))
}

fn ensure_parent_dir(path: &Path) -> Result<(), String> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.exists() => Err(format!(
            "the directory of the SQLite file {} does not exist",
            path.display()
        )),
        _ => Ok(()),
    }
}

/// Is the database answering? For SQLite this also checks that the file is
/// still there: an unlinked file keeps working for open connections, but every
/// write would then go to a file nobody can reopen.
pub fn ping(pool: &DbPool, target: &DatabaseTarget) -> Result<(), String> {
    if let DatabaseTarget::Sqlite(path) = target
        && !path.exists()
    {
        return Err(format!("the SQLite file {} is gone", path.display()));
    }
    let mut conn = pool.get().map_err(|e| format!("no database connection: {e}"))?;
    conn.batch_execute("SELECT 1 FROM server_settings LIMIT 1")
        .map_err(|e| format!("database query failed: {e}"))
}

/// True when SQLite reports the database locked by another connection. WAL
/// lets one writer in at a time; a read transaction that later writes may find
/// its snapshot stale (SQLITE_BUSY_SNAPSHOT), which the busy timeout cannot
/// wait out. PostgreSQL never reports this: its row locks wait instead.
pub fn is_busy(e: &DieselError) -> bool {
    match e {
        DieselError::DatabaseError(_, info) => {
            let m = info.message();
            m.contains("database is locked") || m.contains("database table is locked") || m.contains("busy")
        }
        _ => false,
    }
}

/// How often a transaction is retried when SQLite reports the database busy.
const BUSY_RETRIES: u32 = 8;

/// Run `f` in a transaction, retrying it from the start when SQLite reports
/// the database busy (the failed attempt was rolled back, so a retry is safe).
/// This is the only backend split of transactions; it is a no-op on PostgreSQL.
pub fn transaction<T, F>(conn: &mut DbConnection, mut f: F) -> Result<T, crate::error::Error>
where
    F: FnMut(&mut DbConnection) -> Result<T, crate::error::Error>,
{
    let mut attempt = 0;
    loop {
        match conn.transaction(&mut f) {
            Err(crate::error::Error::Busy) if attempt < BUSY_RETRIES => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(2u64 << attempt.min(6)));
            }
            other => return other,
        }
    }
}

/// True for a unique or primary-key violation on either backend.
pub fn is_unique_violation(e: &DieselError) -> bool {
    matches!(e, DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_database_urls() {
        assert_eq!(
            DatabaseTarget::parse(None),
            Ok(DatabaseTarget::Sqlite(PathBuf::from("roster.db")))
        );
        assert_eq!(
            DatabaseTarget::parse(Some("")),
            Ok(DatabaseTarget::Sqlite(PathBuf::from("roster.db")))
        );
        assert_eq!(
            DatabaseTarget::parse(Some("sqlite:///var/lib/roster.db")),
            Ok(DatabaseTarget::Sqlite(PathBuf::from("/var/lib/roster.db")))
        );
        assert_eq!(
            DatabaseTarget::parse(Some("sqlite://data/r.db")),
            Ok(DatabaseTarget::Sqlite(PathBuf::from("data/r.db")))
        );
        assert_eq!(
            DatabaseTarget::parse(Some("./x.db")),
            Ok(DatabaseTarget::Sqlite(PathBuf::from("./x.db")))
        );
        assert_eq!(
            DatabaseTarget::parse(Some("postgres://root@127.0.0.1/db")),
            Ok(DatabaseTarget::Postgres("postgres://root@127.0.0.1/db".into()))
        );
        assert_eq!(
            DatabaseTarget::parse(Some("postgresql://root@127.0.0.1/db")),
            Ok(DatabaseTarget::Postgres("postgresql://root@127.0.0.1/db".into()))
        );
        assert_eq!(
            DatabaseTarget::parse(Some("mysql://root@localhost/db")),
            Err(TargetError::UnsupportedScheme("mysql".into()))
        );
        assert_eq!(DatabaseTarget::parse(Some("sqlite://")), Err(TargetError::EmptyPath));
        assert_eq!(DatabaseTarget::parse(Some(":memory:")), Err(TargetError::InMemory));
    }

    #[test]
    fn debug_and_describe_hide_passwords() {
        let t = DatabaseTarget::parse(Some("postgres://u:hunter2@db/roster")).unwrap();
        assert!(!format!("{t:?}").contains("hunter2"));
        assert!(!t.describe().contains("hunter2"));
        assert!(t.describe().contains("***"));
    }

    #[test]
    fn both_backends_embed_the_same_migration_versions() {
        let (sqlite, postgres) = embedded_versions();
        assert!(!sqlite.is_empty());
        assert_eq!(sqlite, postgres);
    }
}
