//! Domain operations on principals: create, list, bootstrap the first admin.
//! Each takes a connection and `now`; the caller chooses the pool and the clock.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::auth::secrets::{Pepper, SecretString, generate_client_secret};
use crate::db::DbConnection;
use crate::db::schema::password_credentials;
use crate::error::{Error, Result};
use crate::models::audit::{self, NewAuditEvent, Outcome};
use crate::models::page::{self, Page};
use crate::models::principal::{
    self, NewPrincipal, Principal, PrincipalChanges, PrincipalFilter, PrincipalKind, PrincipalStatus, PrincipalView,
};
use crate::models::{refresh_token, secret, to_db_time};

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
    status: PrincipalStatus,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<PrincipalView> {
    crate::db::transaction(conn, |conn| {
        set_status_in(conn, id, status, actor, now)?;
        get(conn, id)
    })
}

/// [`set_status`] inside the caller's transaction.
fn set_status_in(
    conn: &mut DbConnection,
    id: &str,
    status: PrincipalStatus,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    use crate::db::schema::principals;
    use diesel::prelude::*;
    let n = diesel::update(principals::table.find(id))
        .set((
            principals::status.eq(status.as_str()),
            principals::updated_at.eq(to_db_time(now)),
        ))
        .execute(conn)?;
    if n == 0 {
        return Err(not_found(id));
    }
    let mut revoked = 0;
    if status == PrincipalStatus::Disabled {
        revoked = refresh_token::revoke_all_for_principal(conn, id, now)?;
    }
    let event = match status {
        PrincipalStatus::Disabled => "principal.disabled",
        PrincipalStatus::Active => "principal.enabled",
    };
    audit::record(
        conn,
        NewAuditEvent::new(event, Outcome::Ok)
            .actor(actor)
            .principal(Some(id))
            .details(serde_json::json!({"refresh_tokens_revoked": revoked})),
        now,
    )
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("principal {id}"))
}

/// The principal `id`, or 404.
pub fn get(conn: &mut DbConnection, id: &str) -> Result<PrincipalView> {
    let row = principal::find_by_id(conn, id)?.ok_or_else(|| not_found(id))?;
    principal::view(conn, row)
}

/// A page of principals by name.
pub fn list_page(
    conn: &mut DbConnection,
    filter: &PrincipalFilter,
    cursor: Option<&str>,
    limit: i64,
) -> Result<Page<PrincipalView>> {
    let after = cursor
        .map(|c| page::decode_cursor(c, 1))
        .transpose()?
        .map(|mut v| v.remove(0));
    let rows = principal::list_page(conn, filter, after.as_deref(), limit + 1)?;
    page::paginate(
        rows,
        limit,
        |p: &Principal| page::encode_cursor(&[&p.name]),
        |rows| principal::views(conn, rows),
    )
}

/// PATCH: change fields and, optionally, the status, atomically.
pub fn update(
    conn: &mut DbConnection,
    id: &str,
    changes: &PrincipalChanges,
    status: Option<PrincipalStatus>,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<PrincipalView> {
    crate::db::transaction(conn, |conn| {
        let row = principal::find_by_id(conn, id)?.ok_or_else(|| not_found(id))?;
        changes.validate(row.kind()?)?;
        let fields = changes.fields();
        if !fields.is_empty() {
            principal::apply_changes(conn, &row, changes, now)?;
            audit::record(
                conn,
                NewAuditEvent::new("principal.updated", Outcome::Ok)
                    .actor(actor)
                    .principal(Some(id))
                    .details(serde_json::json!({"fields": fields, "scopes": changes.scopes})),
                now,
            )?;
        }
        if let Some(status) = status
            && status.as_str() != row.status
        {
            set_status_in(conn, id, status, actor, now)?;
        }
        get(conn, id)
    })
}

/// Set a human's password (already hashed) and revoke their refresh tokens.
pub fn change_password(
    conn: &mut DbConnection,
    id: &str,
    password_phc: &str,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    crate::db::transaction(conn, |conn| {
        let row = principal::find_by_id(conn, id)?.ok_or_else(|| not_found(id))?;
        if row.kind()? != PrincipalKind::Human {
            return Err(Error::invalid("id", "only human principals have a password"));
        }
        set_password_hash(conn, id, password_phc, now)?;
        let revoked = refresh_token::revoke_all_for_principal(conn, id, now)?;
        audit::record(
            conn,
            NewAuditEvent::new("password.changed", Outcome::Ok)
                .actor(actor)
                .principal(Some(id))
                .details(serde_json::json!({"refresh_tokens_revoked": revoked})),
            now,
        )
    })
}

/// A new client secret for a service, shown once. Existing secrets keep
/// working: the overlap is the rotation.
pub fn create_secret(
    conn: &mut DbConnection,
    pepper: &Pepper,
    id: &str,
    expires_at: Option<DateTime<Utc>>,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(secret::ClientSecretView, SecretString)> {
    let generated = generate_client_secret(pepper).map_err(Error::internal)?;
    crate::db::transaction(conn, |conn| {
        let row = principal::find_by_id(conn, id)?.ok_or_else(|| not_found(id))?;
        if row.kind()? != PrincipalKind::Service {
            return Err(Error::invalid("id", "only service principals have client secrets"));
        }
        let s = secret::insert(conn, id, &generated.hash, now, expires_at)?;
        audit::record(
            conn,
            NewAuditEvent::new("secret.created", Outcome::Ok)
                .actor(actor)
                .principal(Some(id))
                .details(serde_json::json!({"secret_id": s.id, "expires_at": expires_at})),
            now,
        )?;
        Ok((s.into(), generated.secret.clone()))
    })
}

/// Metadata of a service's secrets, never the secrets.
pub fn list_secrets(conn: &mut DbConnection, id: &str) -> Result<Vec<secret::ClientSecretView>> {
    let row = principal::find_by_id(conn, id)?.ok_or_else(|| not_found(id))?;
    if row.kind()? != PrincipalKind::Service {
        return Err(Error::invalid("id", "only service principals have client secrets"));
    }
    Ok(secret::list_for(conn, id)?.into_iter().map(Into::into).collect())
}

/// Delete a secret: it stops working at once.
pub fn delete_secret(
    conn: &mut DbConnection,
    id: &str,
    secret_id: &str,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    crate::db::transaction(conn, |conn| {
        if !secret::delete(conn, id, secret_id)? {
            return Err(Error::NotFound(format!("secret {secret_id} of principal {id}")));
        }
        audit::record(
            conn,
            NewAuditEvent::new("secret.deleted", Outcome::Ok)
                .actor(actor)
                .principal(Some(id))
                .details(serde_json::json!({"secret_id": secret_id})),
            now,
        )
    })
}
