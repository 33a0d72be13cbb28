//! Domain operations on principals: create, list, bootstrap the first admin.
//! Each takes a connection and `now`; the caller chooses the pool and the clock.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::auth::secrets::{Pepper, SecretString, generate_client_secret};
use crate::db::DbConnection;
use crate::db::schema::password_credentials;
use crate::error::{Error, Result};
use crate::models::audit::{self, NewAuditEvent, Outcome};
use crate::models::principal::{self, NewPrincipal, PrincipalKind, PrincipalView};
use crate::models::{secret, to_db_time};

/// The scope that makes a principal an administrator.
pub const ADMIN_SCOPE: &str = "admin";
/// The name of the human created on first start.
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// A new service principal with its first client secret, shown once.
#[derive(Debug)]
pub struct CreatedService {
    pub principal: PrincipalView,
    pub secret_id: String,
    pub client_secret: SecretString,
}

/// The one place a new client secret is serialised: the creation response.
#[derive(Debug, Serialize)]
pub struct CreatedServiceView {
    #[serde(flatten)]
    pub principal: PrincipalView,
    pub client_id: String,
    pub client_secret: String,
    pub secret_id: String,
}

impl From<CreatedService> for CreatedServiceView {
    fn from(c: CreatedService) -> Self {
        Self {
            client_id: c.principal.name.clone(),
            client_secret: c.client_secret.expose().to_string(),
            secret_id: c.secret_id,
            principal: c.principal,
        }
    }
}

/// Create a service principal and its first client secret, atomically.
pub fn create_service(
    conn: &mut DbConnection,
    pepper: &Pepper,
    input: &NewPrincipal,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<CreatedService> {
    if input.kind != PrincipalKind::Service {
        return Err(Error::invalid("kind", "expected a service principal"));
    }
    input.validate()?;
    let generated = generate_client_secret(pepper).map_err(Error::internal)?;
    crate::db::transaction(conn, |conn| {
        let row = principal::insert(conn, input, now)?;
        let secret = secret::insert(conn, &row.id, &generated.hash, now, None)?;
        audit::record(
            conn,
            NewAuditEvent::new("principal.created", Outcome::Ok)
                .actor(actor)
                .principal(Some(&row.id))
                .details(serde_json::json!({"kind": "service", "name": row.name, "scopes": input.scopes})),
            now,
        )?;
        audit::record(
            conn,
            NewAuditEvent::new("secret.created", Outcome::Ok)
                .actor(actor)
                .principal(Some(&row.id))
                .details(serde_json::json!({"secret_id": secret.id})),
            now,
        )?;
        let view = principal::view(conn, row)?;
        Ok(CreatedService {
            principal: view,
            secret_id: secret.id,
            client_secret: generated.secret.clone(),
        })
    })
}

/// Create a human principal with an already hashed password (argon2 runs in
/// its own pool before this is called).
pub fn create_human(
    conn: &mut DbConnection,
    input: &NewPrincipal,
    password_phc: &str,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<PrincipalView> {
    if input.kind != PrincipalKind::Human {
        return Err(Error::invalid("kind", "expected a human principal"));
    }
    input.validate()?;
    crate::db::transaction(conn, |conn| {
        let row = principal::insert(conn, input, now)?;
        set_password_hash(conn, &row.id, password_phc, now)?;
        audit::record(
            conn,
            NewAuditEvent::new("principal.created", Outcome::Ok)
                .actor(actor)
                .principal(Some(&row.id))
                .details(serde_json::json!({"kind": "human", "name": row.name, "scopes": input.scopes})),
            now,
        )?;
        principal::view(conn, row)
    })
}

fn set_password_hash(conn: &mut DbConnection, principal_id: &str, phc: &str, now: DateTime<Utc>) -> Result<()> {
    use diesel::prelude::*;
    diesel::delete(password_credentials::table.find(principal_id)).execute(conn)?;
    diesel::insert_into(password_credentials::table)
        .values((
            password_credentials::principal_id.eq(principal_id),
            password_credentials::phc.eq(phc),
            password_credentials::updated_at.eq(to_db_time(now)),
        ))
        .execute(conn)?;
    Ok(())
}

/// The stored PHC string of a human's password.
pub fn password_hash_of(conn: &mut DbConnection, principal_id: &str) -> Result<Option<String>> {
    use diesel::prelude::*;
    Ok(password_credentials::table
        .find(principal_id)
        .select(password_credentials::phc)
        .first(conn)
        .optional()?)
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<PrincipalView>> {
    principal::list_all(conn)
}

/// Does any principal hold the `admin` scope?
pub fn admin_exists(conn: &mut DbConnection) -> Result<bool> {
    principal::any_with_scope(conn, ADMIN_SCOPE)
}

/// The input for the first-start administrator.
pub fn bootstrap_admin_input() -> NewPrincipal {
    NewPrincipal {
        kind: PrincipalKind::Human,
        name: BOOTSTRAP_ADMIN.to_string(),
        display_name: Some("Administrator".to_string()),
        email: None,
        scopes: vec![ADMIN_SCOPE.to_string()],
        categories: Vec::new(),
    }
}

/// Create the first administrator unless some principal already holds `admin`.
/// Returns `None` when nothing had to be done, or when another instance won
/// the race to create it.
pub fn bootstrap_admin(
    conn: &mut DbConnection,
    password_phc: &str,
    now: DateTime<Utc>,
) -> Result<Option<PrincipalView>> {
    if admin_exists(conn)? {
        return Ok(None);
    }
    match create_human(conn, &bootstrap_admin_input(), password_phc, None, now) {
        Ok(view) => Ok(Some(view)),
        Err(Error::Conflict(_)) if admin_exists(conn)? => Ok(None),
        Err(Error::Conflict(_)) => Err(Error::Conflict(format!(
            "no principal holds the scope '{ADMIN_SCOPE}', and the name '{BOOTSTRAP_ADMIN}' is taken: \
             grant '{ADMIN_SCOPE}' to a principal before starting"
        ))),
        Err(e) => Err(e),
    }
}

/// Disable or re-enable a principal. Disabling stops new tokens, kills its
/// refresh tokens, and makes its live access tokens introspect inactive (the
/// status is checked on every online verification).
pub fn set_status(
    conn: &mut DbConnection,
    id: &str,
    status: principal::PrincipalStatus,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<PrincipalView> {
    use crate::db::schema::principals;
    use diesel::prelude::*;
    crate::db::transaction(conn, |conn| {
        let n = diesel::update(principals::table.find(id))
            .set((
                principals::status.eq(status.as_str()),
                principals::updated_at.eq(to_db_time(now)),
            ))
            .execute(conn)?;
        if n == 0 {
            return Err(Error::NotFound(format!("principal {id}")));
        }
        let mut revoked = 0;
        if status == principal::PrincipalStatus::Disabled {
            revoked = crate::models::refresh_token::revoke_all_for_principal(conn, id, now)?;
        }
        audit::record(
            conn,
            NewAuditEvent::new(
                match status {
                    principal::PrincipalStatus::Disabled => "principal.disabled",
                    principal::PrincipalStatus::Active => "principal.enabled",
                },
                Outcome::Ok,
            )
            .actor(actor)
            .principal(Some(id))
            .details(serde_json::json!({"refresh_tokens_revoked": revoked})),
            now,
        )?;
        let row = principal::find_by_id(conn, id)?.ok_or_else(|| Error::NotFound(format!("principal {id}")))?;
        principal::view(conn, row)
    })
}
