//! What every command does first: resolve the database, migrate it, load the
//! pepper and check that it belongs to this database.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::auth::password;
use crate::auth::pepper_check;
use crate::auth::secrets::{Pepper, PepperSource, SecretString, random_token};
use crate::db::{self, DatabaseTarget, DbConnection};
use crate::principals;

/// A migrated database with its verified pepper, on one connection: what a
/// one-shot command needs.
pub struct Session {
    pub target: DatabaseTarget,
    pub conn: DbConnection,
    pub pepper: Pepper,
    pub pepper_source: PepperSource,
}

/// Resolve `DATABASE_URL`, run pending migrations, load the pepper and verify it.
pub fn connect(
    database_url: Option<&str>,
    key_file: Option<&Path>,
    pepper_env: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Session, String> {
    let target = DatabaseTarget::parse(database_url).map_err(|e| e.to_string())?;
    let mut conn = db::connect_migrated(&target)?;
    let key_file: PathBuf = key_file.map(Path::to_path_buf).unwrap_or_else(|| {
        let data_dir = crate::config::data_dir(|name| std::env::var(name).ok());
        crate::config::default_key_file(&target, &data_dir)
    });
    // A key file is created only for a database that has no pepper yet: a
    // command run with the wrong key file fails instead of making a new one.
    let may_create = !pepper_check::is_stored(&mut conn).map_err(|e| e.to_string())?;
    let (pepper, pepper_source) = Pepper::load(pepper_env, &key_file, may_create).map_err(|e| e.to_string())?;
    pepper_check::verify_or_store(&mut conn, &pepper, now).map_err(|e| e.to_string())?;
    Ok(Session {
        target,
        conn,
        pepper,
        pepper_source,
    })
}

/// Refuse to go on when `DATABASE_URL` names a SQLite file that does not
/// exist: every command but `serve` and `migrate` calls this first, so that a
/// command run without the server's `DATABASE_URL` (in another directory, or
/// with PostgreSQL set only on the server's line) fails instead of quietly
/// writing into a new, empty database.
pub fn require_existing(database_url: Option<&str>) -> Result<(), String> {
    let target = DatabaseTarget::parse(database_url).map_err(|e| e.to_string())?;
    match &target {
        DatabaseTarget::Sqlite(path) if !path.exists() => Err(format!(
            "no database at {}: this command would create a new, empty one. Set DATABASE_URL \
             (or --database-url) to the database the server uses, or pass --create to start a new one",
            std::path::absolute(path).unwrap_or_else(|_| path.clone()).display()
        )),
        _ => Ok(()),
    }
}

/// The first administrator's password as it was decided at first start.
pub enum AdminPassword {
    FromEnv,
    Generated(SecretString),
}

/// The setting that remembers the issuer of the last `serve`.
const LAST_ISSUER: &str = "last_issuer";

/// Remember `issuer` as this database's; the previous one when it differs.
/// Every instance on one database must share the issuer: each accepts only
/// tokens whose `iss` is its own, so instances that differ refuse each
/// other's tokens with 401 (the default issuer, `http://<listen>`, differs
/// per instance).
pub fn record_issuer(conn: &mut DbConnection, issuer: &str, now: DateTime<Utc>) -> Result<Option<String>, String> {
    use crate::models::settings;
    let previous = settings::get(conn, LAST_ISSUER).map_err(|e| e.to_string())?;
    if previous.as_deref() != Some(issuer) {
        settings::put(conn, LAST_ISSUER, issuer, now).map_err(|e| e.to_string())?;
    }
    Ok(previous.filter(|p| p != issuer))
}

/// The issuer the last `roster serve` on this database used, if any.
pub fn last_issuer(conn: &mut DbConnection) -> Result<Option<String>, String> {
    crate::models::settings::get(conn, LAST_ISSUER).map_err(|e| e.to_string())
}

/// First start: when no principal holds `admin`, create the human `admin`.
/// Returns what was done so that the caller can tell the operator once.
pub fn bootstrap_admin(
    conn: &mut DbConnection,
    admin_password_env: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<AdminPassword>, String> {
    if principals::manage::admin_exists(conn).map_err(|e| e.to_string())? {
        return Ok(None);
    }
    let (password, how) = match admin_password_env.filter(|p| !p.is_empty()) {
        Some(p) => (SecretString::new(p), AdminPassword::FromEnv),
        None => {
            let generated = SecretString::new(random_token(18).map_err(|_| "random generator failed".to_string())?);
            (generated.clone(), AdminPassword::Generated(generated))
        }
    };
    let phc = password::hash_password(&password).map_err(|e| format!("ROSTER_ADMIN_PASSWORD: {e}"))?;
    match principals::bootstrap_admin(conn, &phc, now).map_err(|e| e.to_string())? {
        Some(_) => Ok(Some(how)),
        None => Ok(None),
    }
}
