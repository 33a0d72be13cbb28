//! Storage: one connection type over SQLite and PostgreSQL, chosen at run time.
//!
//! This is the only module that knows which backend is in use. Everything else
//! is written against [`DbConnection`] with portable SQL. It imports nothing
//! of Roster's own but the blocking pool: errors are classified here
//! ([`classify`]) and turned into the domain's errors by their owners.

mod gate;
mod pool;
pub mod schema;
pub mod time;

pub use pool::{Pool, PoolError};

use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::Connection;
#[cfg(feature = "postgres")]
use diesel::PgConnection;
#[cfg(feature = "sqlite")]
use diesel::SqliteConnection;
use diesel::connection::SimpleConnection;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!("build Roster with at least one of the features `sqlite` and `postgres`");

/// The backend split lives in the migrations, not in domain code: each backend
/// has its own folder so that DDL can use each dialect, with the same versions.
/// Both are embedded whatever the features, so the test that keeps their
/// versions in step always runs.
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// How long a SQLite connection waits on a lock held by another connection.
#[cfg(feature = "sqlite")]
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;

/// One connection to whichever backend `DATABASE_URL` names. A backend left
/// out at build time (`--no-default-features --features sqlite` builds
/// without libpq) has no variant; its URLs are refused with a clear error.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    #[cfg(feature = "postgres")]
    Postgres(PgConnection),
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteConnection),
}

/// Run a statement on the backend's own connection type: for what diesel
/// cannot build through `MultiConnection` (a multi-row INSERT). The caller
/// gives the same statement twice, once per backend.
pub fn on_backend<T>(
    conn: &mut DbConnection,
    #[cfg(feature = "postgres")] postgres: impl FnOnce(&mut PgConnection) -> diesel::QueryResult<T>,
    #[cfg(feature = "sqlite")] sqlite: impl FnOnce(&mut SqliteConnection) -> diesel::QueryResult<T>,
) -> diesel::QueryResult<T> {
    match conn {
        #[cfg(feature = "postgres")]
        DbConnection::Postgres(c) => postgres(c),
        #[cfg(feature = "sqlite")]
        DbConnection::Sqlite(c) => sqlite(c),
    }
}

/// One multi-row INSERT of `$rows` into `$table` (one round trip), through
/// [`on_backend`]: `insert_all!(conn, table, rows)` is the statement built
/// once per backend.
macro_rules! insert_all {
    ($conn:expr, $table:expr, $rows:expr) => {
        $crate::db::on_backend(
            $conn,
            #[cfg(feature = "postgres")]
            |c| diesel::insert_into($table).values($rows).execute(c),
            #[cfg(feature = "sqlite")]
            |c| diesel::insert_into($table).values($rows).execute(c),
        )
    };
}
pub(crate) use insert_all;

impl DbConnection {
    /// The SQLite connection inside, if this is one.
    #[cfg(feature = "sqlite")]
    fn as_sqlite(&mut self) -> Option<&mut SqliteConnection> {
        #[allow(unreachable_patterns)]
        match self {
            Self::Sqlite(c) => Some(c),
            _ => None,
        }
    }
}

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
    #[error("this roster was built without {0} support: rebuild it with `--features {1}` (both are on by default)")]
    NotBuiltIn(&'static str, &'static str),
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
            if !cfg!(feature = "postgres") {
                return Err(TargetError::NotBuiltIn("PostgreSQL", "postgres"));
            }
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
        if !cfg!(feature = "sqlite") {
            return Err(TargetError::NotBuiltIn("SQLite", "sqlite"));
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
            #[cfg(feature = "postgres")]
            Self::Postgres(url) => PgConnection::establish(&with_connect_timeout(url))
                .map(DbConnection::Postgres)
                .map_err(connection_error),
            #[cfg(not(feature = "postgres"))]
            Self::Postgres(_) => Err(connection_error(diesel::ConnectionError::BadConnection(
                TargetError::NotBuiltIn("PostgreSQL", "postgres").to_string(),
            ))),
            #[cfg(not(feature = "sqlite"))]
            Self::Sqlite(_) => Err(connection_error(diesel::ConnectionError::BadConnection(
                TargetError::NotBuiltIn("SQLite", "sqlite").to_string(),
            ))),
            #[cfg(feature = "sqlite")]
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

/// Seconds libpq waits for a PostgreSQL server before giving up, unless the
/// URL sets `connect_timeout` itself: an unreachable server fails a request
/// within this bound instead of hanging it.
#[cfg(feature = "postgres")]
const PG_CONNECT_TIMEOUT_SECS: u32 = 5;

#[cfg(feature = "postgres")]
fn with_connect_timeout(url: &str) -> String {
    if url.contains("connect_timeout=") {
        return url.to_string();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}connect_timeout={PG_CONNECT_TIMEOUT_SECS}")
}

const CONNECT_ERROR_PREFIX: &str = "cannot connect to the database";

fn connection_error(e: diesel::ConnectionError) -> DieselError {
    DieselError::QueryBuilderError(format!("{CONNECT_ERROR_PREFIX}: {e}").into())
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
        #[cfg(feature = "postgres")]
        DbConnection::Postgres(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS),
        #[cfg(feature = "sqlite")]
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
    }
    .map_err(|e| format!("migration failed: {e}"))?;
    Ok(applied.len())
}

/// The versions embedded for each backend, for the test that keeps them in step.
pub fn embedded_versions() -> (Vec<String>, Vec<String>) {
    use diesel::migration::MigrationSource;
    let names = |source: &EmbeddedMigrations| -> Vec<String> {
        MigrationSource::<<DbConnection as Connection>::Backend>::migrations(source)
            .map(|ms| ms.iter().map(|m| m.name().version().to_string()).collect())
            .unwrap_or_default()
    };
    (names(&SQLITE_MIGRATIONS), names(&POSTGRES_MIGRATIONS))
}

/// Pool sizing.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Most connections open at once, and most queries running at once.
    pub max_size: usize,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self { max_size: 16 }
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
pub fn ping(conn: &mut DbConnection, target: &DatabaseTarget) -> Result<(), String> {
    if let DatabaseTarget::Sqlite(path) = target
        && !path.exists()
    {
        return Err(format!("the SQLite file {} is gone", path.display()));
    }
    conn.batch_execute("SELECT 1 FROM server_settings LIMIT 1")
        .map_err(|e| format!("database query failed: {e}"))
}

/// What a storage error means to the layers above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The row asked for does not exist.
    NotFound,
    /// A unique or primary-key constraint refused the write.
    UniqueViolation,
    /// SQLite found the database locked by another writer; the transaction
    /// was rolled back and may be retried (see [`transaction`]).
    Busy,
    /// The connection to the database is gone.
    Disconnected,
    /// PostgreSQL refused text holding a NUL character (U+0000), which it
    /// cannot store: input that no check before the query caught.
    NulInText,
    /// Anything else: a bug or a broken database.
    Other,
}

/// Classify a diesel error. SQLite reports SQLITE_BUSY as "database is
/// locked" and SQLITE_LOCKED as "database table is locked" (the texts of
/// `sqlite3_errstr`, which diesel passes through unchanged); WAL lets one
/// writer in at a time, and a read transaction that later writes may find its
/// snapshot stale (SQLITE_BUSY_SNAPSHOT), which the busy timeout cannot wait
/// out. PostgreSQL never reports this: its row locks wait instead.
pub fn classify(e: &DieselError) -> Fault {
    match e {
        DieselError::NotFound => Fault::NotFound,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => Fault::UniqueViolation,
        DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => Fault::Disconnected,
        // PostgreSQL 40001 and 40P01: the transaction was rolled back and a
        // retry from the start may well succeed, exactly as a busy SQLite.
        DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => Fault::Busy,
        DieselError::DatabaseError(_, info) if info.message().starts_with("deadlock detected") => Fault::Busy,
        DieselError::DatabaseError(_, info)
            if matches!(info.message(), "database is locked" | "database table is locked") =>
        {
            Fault::Busy
        }
        DieselError::QueryBuilderError(msg) if msg.to_string().starts_with(CONNECT_ERROR_PREFIX) => Fault::Disconnected,
        // libpq: "invalid byte sequence for encoding \"UTF8\": 0x00".
        DieselError::DatabaseError(_, info) if info.message().contains("0x00") => Fault::NulInText,
        _ => Fault::Other,
    }
}

/// An error that remembers which storage [`Fault`] caused it, if any: the
/// pool drops a connection that lost its server, and [`transaction`] retries
/// one that found SQLite busy.
pub trait HasFault {
    fn fault(&self) -> Option<Fault>;
}

impl HasFault for DieselError {
    fn fault(&self) -> Option<Fault> {
        Some(classify(self))
    }
}

/// A connection inside a transaction. Only [`transaction`] makes one, so a
/// write that must commit together with others (a feed row and the counter
/// that numbers it, a change stamp and the change) takes `&mut Tx` and cannot
/// run on its own. It derefs to the connection for everything else.
pub struct Tx<'c>(&'c mut DbConnection);

impl std::ops::Deref for Tx<'_> {
    type Target = DbConnection;
    fn deref(&self) -> &DbConnection {
        self.0
    }
}

impl std::ops::DerefMut for Tx<'_> {
    fn deref_mut(&mut self) -> &mut DbConnection {
        self.0
    }
}

/// Run one insert in a savepoint of `tx`: `false`, and the transaction
/// carries on, when a unique constraint refused it (on PostgreSQL a failed
/// statement would otherwise abort the whole transaction).
pub fn insert_unless_present<F>(tx: &mut Tx<'_>, insert: F) -> Result<bool, DieselError>
where
    F: FnOnce(&mut DbConnection) -> diesel::QueryResult<usize>,
{
    let mut insert = Some(insert);
    let outcome = tx.0.transaction(|c| match insert.take() {
        Some(f) => f(c),
        None => Ok(0),
    });
    match outcome {
        Ok(_) => Ok(true),
        Err(e) if classify(&e) == Fault::UniqueViolation => Ok(false),
        Err(e) => Err(e),
    }
}

/// How often a transaction is retried when SQLite reports the database busy.
const BUSY_RETRIES: u32 = 8;

/// Run `f` in a transaction, retrying it from the start when SQLite reports
/// the database busy (the failed attempt was rolled back, so a retry is safe).
/// This is the only backend split of transactions.
///
/// On SQLite a transaction begins `IMMEDIATE`: it takes the one write lock
/// at once, waiting for it up to the busy timeout, instead of reading first
/// and failing at its first write when another writer committed meanwhile
/// (SQLITE_BUSY_SNAPSHOT, which no timeout can wait out). Writers queue; a
/// busy answer reaches a client only after the timeout and the retries.
///
/// The pause between attempts is a real one: the other writer holds the lock
/// in another connection or process, and nothing here can be woken when it
/// lets go.
pub fn transaction<T, E, F>(conn: &mut DbConnection, mut f: F) -> Result<T, E>
where
    F: FnMut(&mut Tx<'_>) -> Result<T, E>,
    E: From<DieselError> + HasFault,
{
    let mut attempt = 0;
    let mut body = |c: &mut DbConnection| f(&mut Tx(c));
    // SQLite's writers in this process wait their turn, first come first
    // served, before they ask SQLite for its one write lock.
    #[cfg(feature = "sqlite")]
    let gate = match conn.as_sqlite().is_some() && !in_transaction(conn) {
        true => gate::current(),
        false => None,
    };
    #[cfg(feature = "sqlite")]
    let _turn = gate.as_deref().map(gate::WriteGate::enter);
    loop {
        #[cfg(feature = "sqlite")]
        let outcome = if conn.as_sqlite().is_some() && !in_transaction(conn) {
            immediate(conn, &mut body)
        } else {
            conn.transaction(&mut body)
        };
        #[cfg(not(feature = "sqlite"))]
        let outcome = conn.transaction(&mut body);
        match outcome {
            Err(e) if e.fault() == Some(Fault::Busy) && attempt < BUSY_RETRIES => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(2u64 << attempt.min(6)));
            }
            other => return other,
        }
    }
}

#[cfg(feature = "sqlite")]
fn in_transaction(conn: &mut DbConnection) -> bool {
    use diesel::connection::TransactionManager;
    <DbConnection as Connection>::TransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()
        .map_or(true, |depth| depth.is_some())
}

/// `BEGIN IMMEDIATE` … `COMMIT` on SQLite, as diesel's
/// `SqliteConnection::immediate_transaction` does, around a closure that
/// takes the multi-backend connection.
#[cfg(feature = "sqlite")]
fn immediate<T, E, F>(conn: &mut DbConnection, f: &mut F) -> Result<T, E>
where
    F: FnMut(&mut DbConnection) -> Result<T, E>,
    E: From<DieselError>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    if let Some(c) = conn.as_sqlite() {
        AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
    }
    let outcome = f(conn);
    let Some(c) = conn.as_sqlite() else {
        return outcome;
    };
    match outcome {
        Ok(value) => match AnsiTransactionManager::commit_transaction(c) {
            Ok(()) => Ok(value),
            Err(e) => {
                let _ = AnsiTransactionManager::rollback_transaction(c);
                Err(e.into())
            }
        },
        Err(e) => {
            let _ = AnsiTransactionManager::rollback_transaction(c);
            Err(e)
        }
    }
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

    /// A transaction that meets SQLite's lock is rolled back and run again.
    #[test]
    fn busy_transactions_are_retried() {
        use diesel::result::DatabaseErrorKind;
        let dir = tempfile::tempdir().unwrap();
        let target = DatabaseTarget::Sqlite(dir.path().join("retry.db"));
        let mut conn = target.connect().unwrap();
        conn.batch_execute("CREATE TABLE t (x INTEGER)").unwrap();
        let mut attempts = 0;
        let out: Result<(), DieselError> = transaction(&mut conn, |c| {
            attempts += 1;
            c.batch_execute("INSERT INTO t VALUES (1)")?;
            if attempts < 3 {
                return Err(DieselError::DatabaseError(
                    DatabaseErrorKind::Unknown,
                    Box::new("database is locked".to_string()),
                ));
            }
            Ok(())
        });
        out.unwrap();
        assert_eq!(attempts, 3);
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        use diesel::RunQueryDsl;
        let rows: Vec<Count> = diesel::sql_query("SELECT COUNT(*) AS n FROM t")
            .load(&mut conn)
            .unwrap();
        assert_eq!(rows[0].n, 1, "the failed attempts were rolled back");
    }

    /// A SQLite write transaction takes the write lock when it begins: while
    /// another writer holds it, the closure never runs, and the answer after
    /// the retries is Busy; once the lock is free, it goes through.
    #[test]
    fn sqlite_writers_take_the_lock_when_they_begin() {
        let dir = tempfile::tempdir().unwrap();
        let target = DatabaseTarget::Sqlite(dir.path().join("busy.db"));
        let mut holder = target.connect().unwrap();
        holder.batch_execute("CREATE TABLE t (x INTEGER)").unwrap();
        let mut writer = target.connect().unwrap();
        writer.batch_execute("PRAGMA busy_timeout = 0").unwrap();
        holder
            .batch_execute("BEGIN IMMEDIATE; INSERT INTO t VALUES (1)")
            .unwrap();
        let mut ran = 0;
        let out: Result<(), DieselError> = transaction(&mut writer, |c| {
            ran += 1;
            c.batch_execute("INSERT INTO t VALUES (2)")
        });
        assert_eq!(out.unwrap_err().fault(), Some(Fault::Busy));
        assert_eq!(ran, 0, "nothing ran without the write lock");
        assert!(
            !in_transaction(&mut writer),
            "the failed begin left no transaction open"
        );
        holder.batch_execute("COMMIT").unwrap();
        let out: Result<(), DieselError> = transaction(&mut writer, |c| c.batch_execute("INSERT INTO t VALUES (2)"));
        out.unwrap();
    }

    #[test]
    fn sqlite_lock_errors_are_busy_and_others_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let target = DatabaseTarget::Sqlite(dir.path().join("c.db"));
        let mut conn = target.connect().unwrap();
        let e = conn.batch_execute("SELECT * FROM no_such_table").unwrap_err();
        assert_eq!(classify(&e), Fault::Other);
        assert_eq!(classify(&DieselError::NotFound), Fault::NotFound);
    }

    #[test]
    fn both_backends_embed_the_same_migration_versions() {
        let (sqlite, postgres) = embedded_versions();
        assert!(!sqlite.is_empty());
        assert_eq!(sqlite, postgres);
    }
}
