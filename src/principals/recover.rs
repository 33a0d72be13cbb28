//! Getting back in: an operator who holds the database and the pepper sets a
//! person's password from the command line, or restores an administrator.
//!
//! Both are CLI commands, never HTTP routes: whoever can run them can
//! already read and write the database.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::manage::{bootstrap_admin_input, create_human};
use super::password::change_password;
use super::view::{self, PrincipalView};
use super::{ADMIN_SCOPE, NewPrincipal, PrincipalsContext};
use crate::auth::secrets::SecretString;
use crate::db::DbConnection;
use crate::error::{Error, Result};
use crate::models::audit::{self, NewAuditEvent, Outcome};
use crate::models::principal::{self, Principal, PrincipalKind, PrincipalStatus};
use crate::models::throttle;

/// The person named `name`, or 404 naming them.
fn human_by_name(conn: &mut DbConnection, name: &str) -> Result<Principal> {
    let row = principal::find_by_name(conn, name)?.ok_or_else(|| Error::NotFound(format!("principal '{name}'")))?;
    human(row)
}

/// `row`, if it is a person.
fn human(row: Principal) -> Result<Principal> {
    if row.kind != PrincipalKind::Human {
        let name = &row.name;
        return Err(Error::invalid(
            "name",
            format!("'{name}' is a service; only people have passwords (services rotate secrets)"),
        ));
    }
    Ok(row)
}

/// `roster principal set-password NAME`: set a person's password (already
/// hashed) and revoke their refresh tokens, as an admin's `PUT .../password`
/// does. Audited as `password.changed` with no actor.
fn reset_password(
    conn: &mut DbConnection,
    name: &str,
    password_phc: &str,
    now: DateTime<Utc>,
) -> Result<PrincipalView> {
    crate::db::transaction(conn, |conn| {
        let row = human_by_name(conn, name)?;
        change_password(conn, &row.id, password_phc, None, now)?;
        view::one(conn, row)
    })
}

/// What `recover-admin` had to repair.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Recovered {
    pub principal: PrincipalView,
    /// No principal had the name: it was created.
    pub created: bool,
    /// It was disabled and is active again.
    pub enabled: bool,
    /// It lacked the `admin` scope and has it again.
    pub scope_added: bool,
    /// Login throttle counters against its name that were cleared.
    pub throttle_counters_cleared: usize,
    /// Second factors removed (a lost phone locks no one out for good): the
    /// next browser login enrols a new one.
    pub factors_removed: usize,
}

/// `roster recover-admin [NAME]`: make `name` (default `admin`) a person who
/// can log in and administer, whatever state it was left in. It is created
/// if missing, enabled if disabled, given `admin` if it lost it, and its
/// password is replaced (its refresh tokens die with the old one). Throttle
/// counters against it are cleared, so a lock-out from guessing ends too,
/// and its second factors removed, so a lost phone ends too.
/// One transaction; audited as `admin.recovered`.
fn recover_admin(conn: &mut DbConnection, name: &str, password_phc: &str, now: DateTime<Utc>) -> Result<Recovered> {
    crate::db::transaction(conn, |conn| {
        let (row, created) = match principal::find_by_name(conn, name)? {
            Some(row) => (human(row)?, false),
            None => {
                let input = NewPrincipal {
                    name: name.to_string(),
                    ..bootstrap_admin_input()
                };
                let view = create_human(conn, &input, password_phc, None, now)?;
                (
                    principal::find_by_id(conn, &view.id)?.ok_or_else(|| Error::NotFound(name.into()))?,
                    true,
                )
            }
        };
        let enabled = !row.is_active();
        if enabled {
            principal::set_status(conn, &row.id, PrincipalStatus::Active, now)?;
        }
        let mut scopes = principal::scopes_of(conn, &row.id)?;
        let scope_added = !scopes.iter().any(|s| s == ADMIN_SCOPE);
        if scope_added {
            scopes.push(ADMIN_SCOPE.to_string());
            principal::set_scopes(conn, &row.id, &scopes)?;
        }
        if !created {
            change_password(conn, &row.id, password_phc, None, now)?;
        }
        if enabled || scope_added {
            // Every instance's view of the principal follows the log.
            crate::models::revocation::append_principal(conn, &row.id, now)?;
        }
        let throttle_counters_cleared = throttle::delete_subject(conn, &row.id)?;
        let factors_removed = crate::models::second_factor::delete_all(conn, &row.id)?;
        audit::record(
            conn,
            NewAuditEvent::new("admin.recovered", Outcome::Ok)
                .principal(Some(&row.id))
                .details(serde_json::json!({
                    "via": "cli",
                    "created": created,
                    "enabled": enabled,
                    "scope_added": scope_added,
                    "throttle_counters_cleared": throttle_counters_cleared,
                    "factors_removed": factors_removed,
                })),
            now,
        )?;
        let principal = super::manage::get(conn, &row.id)?;
        Ok(Recovered {
            principal,
            created,
            enabled,
            scope_added,
            throttle_counters_cleared,
            factors_removed,
        })
    })
}

impl PrincipalsContext {
    /// `roster principal set-password NAME`: hash on the argon2 pool, store.
    pub async fn reset_password(
        &self,
        name: String,
        password: SecretString,
        now: DateTime<Utc>,
    ) -> Result<PrincipalView> {
        let phc = self.hash(password).await?;
        self.db.run(move |c| reset_password(c, &name, &phc, now)).await
    }

    /// `roster recover-admin [NAME]`: see [`recover_admin`].
    pub async fn recover_admin(&self, name: String, password: SecretString, now: DateTime<Utc>) -> Result<Recovered> {
        let phc = self.hash(password).await?;
        let recovered = self.db.run(move |c| recover_admin(c, &name, &phc, now)).await;
        self.changed(now).await;
        recovered
    }
}
