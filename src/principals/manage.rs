//! Creating, listing, changing and disabling principals, and the first
//! administrator. Every change is audited in the same transaction.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::input::{CreatePrincipal, NewPrincipal, PatchPrincipal, PrincipalChanges};
use super::invitations::{self, InvitationView};
use super::secrets::{CreatedService, CreatedServiceView, generate};
use super::view::{self, PrincipalView};
use super::{ADMIN_SCOPE, BOOTSTRAP_ADMIN, PrincipalsContext, credentials, not_found, row};
use crate::db::DbConnection;
use crate::error::{Error, Result};
use crate::models::audit::{self, NewAuditEvent, Outcome};
use crate::models::client_settings::{self, ClientSettings};
use crate::models::principal::{self, Principal, PrincipalFilter, PrincipalKind, PrincipalStatus};
use crate::models::registration;
use crate::models::{
    auth_state, login_session, new_id, password as password_row, refresh_token, revocation, secret, token_exchange,
};
use crate::page::{self, Page};

/// Insert a validated principal with its scopes and categories, in the caller's transaction.
fn insert(conn: &mut crate::db::Tx<'_>, input: &NewPrincipal, now: DateTime<Utc>) -> Result<Principal> {
    let t = now;
    let row = Principal {
        id: new_id(),
        kind: input.kind,
        name: input.name.clone(),
        display_name: input.display_name.clone(),
        email: input.email.clone(),
        status: PrincipalStatus::Active,
        created_at: t,
        updated_at: t,
        tokens_not_before: None,
    };
    principal::insert(conn, &row)?;
    principal::set_scopes(conn, &row.id, &input.scopes)?;
    principal::set_categories(conn, &row.id, &input.categories, t)?;
    if !input.categories.is_empty() {
        let new: Vec<String> = input.categories.iter().map(|c| c.name.clone()).collect();
        registration::categories_changed(conn, &row.name, &[], &new)?;
    }
    if input.client != ClientSettings::default() {
        client_settings::put(conn, &row.id, &input.client, now)?;
        // Instances reload their CORS origins when the generation moves.
        auth_state::bump(conn)?;
    }
    credentials::apply(conn, &row.id, &input.credentials, now)?;
    if let Some(policy) = &input.token_exchange {
        token_exchange::save(conn, &row.id, Some(policy), now)?;
    }
    Ok(row)
}

/// `admin` lets its holder manage every principal. People and services may
/// both hold it (a provisioning job needs it), but each grant is audited on
/// its own as `admin.granted`, so that it stands out in the log.
fn audit_admin_grant(
    conn: &mut DbConnection,
    id: &str,
    kind: PrincipalKind,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    audit::record(
        conn,
        NewAuditEvent::new("admin.granted", Outcome::Ok)
            .actor(actor)
            .principal(Some(id))
            .details(serde_json::json!({"kind": kind.as_str()})),
        now,
    )
}

fn grants_admin(scopes: &[String]) -> bool {
    scopes.iter().any(|s| s == ADMIN_SCOPE)
}

/// Create a service principal and its first client secret (none for a
/// public client), atomically.
pub(super) fn create_service(
    conn: &mut DbConnection,
    pepper: &crate::auth::secrets::Pepper,
    input: &NewPrincipal,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<CreatedService> {
    if input.kind != PrincipalKind::Service {
        return Err(Error::invalid("kind", "expected a service principal"));
    }
    input.validate()?;
    let secretless = input.client.public_client || input.credentials.method.is_some_and(|m| !m.uses_secret());
    let generated = if secretless { None } else { Some(generate(pepper)?) };
    crate::db::transaction(conn, |conn| {
        let row = insert(conn, input, now)?;
        audit::record(
            conn,
            NewAuditEvent::new("principal.created", Outcome::Ok)
                .actor(actor)
                .principal(Some(&row.id))
                .details(serde_json::json!({
                    "kind": "service",
                    "name": row.name,
                    "scopes": input.scopes,
                    "public_client": input.client.public_client,
                    "redirect_uris": input.client.redirect_uris,
                    "post_logout_redirect_uris": input.client.post_logout_redirect_uris,
                    "token_endpoint_auth_method": input.credentials.method,
                    "jwks_uri": input.credentials.jwks_uri,
                    "federated_subjects": input.credentials.federated_subjects,
                    "token_exchange": input.token_exchange,
                })),
            now,
        )?;
        if grants_admin(&input.scopes) {
            audit_admin_grant(conn, &row.id, PrincipalKind::Service, actor, now)?;
        }
        let secret = match &generated {
            None => None,
            Some(generated) => {
                let secret = secret::insert(conn, &row.id, &generated.hash, now, None)?;
                audit::record(
                    conn,
                    NewAuditEvent::new("secret.created", Outcome::Ok)
                        .actor(actor)
                        .principal(Some(&row.id))
                        .details(serde_json::json!({"secret_id": secret.id})),
                    now,
                )?;
                Some((secret.id, generated.secret.clone()))
            }
        };
        Ok(CreatedService {
            principal: view::one(conn, row)?,
            secret,
        })
    })
}

/// Insert a person and audit it, in the caller's transaction.
fn insert_human(
    conn: &mut crate::db::Tx<'_>,
    input: &NewPrincipal,
    actor: Option<&str>,
    invited: bool,
    now: DateTime<Utc>,
) -> Result<Principal> {
    let row = insert(conn, input, now)?;
    let mut details = serde_json::json!({"kind": "human", "name": row.name, "scopes": input.scopes});
    if invited {
        details["invited"] = true.into();
    }
    audit::record(
        conn,
        NewAuditEvent::new("principal.created", Outcome::Ok)
            .actor(actor)
            .principal(Some(&row.id))
            .details(details),
        now,
    )?;
    if grants_admin(&input.scopes) {
        audit_admin_grant(conn, &row.id, PrincipalKind::Human, actor, now)?;
    }
    Ok(row)
}

fn human_input(input: &NewPrincipal) -> Result<()> {
    if input.kind != PrincipalKind::Human {
        return Err(Error::invalid("kind", "expected a human principal"));
    }
    input.validate()
}

/// Create a human principal with an already hashed password (argon2 runs on
/// its own pool before this is called).
pub(super) fn create_human(
    conn: &mut DbConnection,
    input: &NewPrincipal,
    password_phc: &str,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<PrincipalView> {
    human_input(input)?;
    crate::db::transaction(conn, |conn| {
        let row = insert_human(conn, input, actor, false, now)?;
        password_row::set(conn, &row.id, password_phc, now)?;
        view::one(conn, row)
    })
}

/// Create a person with no password, and the invitation with which they
/// register their first passkey, together.
fn create_invited(
    conn: &mut DbConnection,
    ctx: &PrincipalsContext,
    input: &NewPrincipal,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<InvitedView> {
    human_input(input)?;
    ctx.passkeys.require()?;
    crate::db::transaction(conn, |conn| {
        let row = insert_human(conn, input, actor, true, now)?;
        let invitation = invitations::issue(conn, ctx, &row, actor, None, now)?;
        Ok(InvitedView {
            principal: view::one(conn, row)?,
            invitation,
        })
    })
}

/// A person created with an invitation instead of a password.
#[derive(Debug, serde::Serialize)]
pub struct InvitedView {
    #[serde(flatten)]
    pub principal: PrincipalView,
    /// The link, shown once.
    pub invitation: InvitationView,
}

/// A principal just created.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum Created {
    /// With its first client secret, shown once.
    Service(CreatedServiceView),
    Human(PrincipalView),
    /// With the link to register their first passkey, shown once.
    Invited(InvitedView),
}

impl Created {
    pub fn id(&self) -> &str {
        match self {
            Self::Service(s) => &s.principal.id,
            Self::Human(h) => &h.id,
            Self::Invited(i) => &i.principal.id,
        }
    }
}

/// Every principal by name (the CLI's list).
fn all(conn: &mut DbConnection) -> Result<Vec<PrincipalView>> {
    let rows = principal::list_all(conn)?;
    view::many(conn, rows)
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
        client: ClientSettings::default(),
        credentials: credentials::CredentialChanges::default(),
        token_exchange: None,
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
fn set_status(
    conn: &mut DbConnection,
    id: &str,
    status: PrincipalStatus,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<PrincipalView> {
    crate::db::transaction(conn, |conn| {
        change_status(conn, id, status, actor, now)?;
        get(conn, id)
    })
}

/// [`set_status`] inside the caller's transaction.
fn change_status(
    conn: &mut crate::db::Tx<'_>,
    id: &str,
    status: PrincipalStatus,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    if !principal::set_status(conn, id, status, now)? {
        return Err(not_found(id));
    }
    auth_state::bump(conn)?;
    revocation::append_principal(conn, id, now)?;
    let revoked = match status {
        PrincipalStatus::Disabled => {
            // Their browser sessions end too (single sign-on stops at once).
            login_session::end_all_for_principal(conn, id, now)?;
            // A service that acted for others (RFC 8693) stops acting: the
            // tokens it got by exchange are revoked, and named in the feed.
            let acted = token_exchange::issued_to(conn, id, now)?;
            crate::models::revoked_token::insert_many(conn, &acted, now)?;
            refresh_token::revoke_all_for_principal(conn, id, now)?
        }
        PrincipalStatus::Active => 0,
    };
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

/// The principal `id`, or 404.
pub(super) fn get(conn: &mut DbConnection, id: &str) -> Result<PrincipalView> {
    let row = row(conn, id)?;
    view::one(conn, row)
}

/// PATCH: change fields and, optionally, the status, atomically.
pub(super) fn update(
    conn: &mut DbConnection,
    id: &str,
    changes: &PrincipalChanges,
    status: Option<PrincipalStatus>,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<PrincipalView> {
    crate::db::transaction(conn, |conn| {
        let p = row(conn, id)?;
        changes.validate(p.kind)?;
        // Where a service may send people is the admins' decision, never its own.
        if changes.touches_client() && actor == Some(id) {
            return Err(Error::Forbidden(
                "a service cannot change its own redirect_uris or post_logout_redirect_uris".into(),
            ));
        }
        // Nor how it proves who it is.
        if !changes.credentials.is_empty() && actor == Some(id) {
            return Err(Error::Forbidden(
                "a service cannot change its own token_endpoint_auth_method, keys or federated subjects".into(),
            ));
        }
        // Nor for whom it may act.
        if changes.token_exchange.is_some() && actor == Some(id) {
            return Err(Error::Forbidden(
                "a service cannot change its own token_exchange policy".into(),
            ));
        }
        let fields = changes.fields();
        if !fields.is_empty() {
            auth_state::bump(conn)?;
            let display_name = changes.display_name.clone().unwrap_or_else(|| p.display_name.clone());
            let email = changes.email.clone().unwrap_or_else(|| p.email.clone());
            principal::update_profile(conn, id, display_name.as_deref(), email.as_deref(), now)?;
            if let Some(scopes) = &changes.scopes {
                let had_admin = grants_admin(&principal::scopes_of(conn, id)?);
                principal::set_scopes(conn, id, scopes)?;
                revocation::append_principal(conn, id, now)?;
                if grants_admin(scopes) && !had_admin {
                    audit_admin_grant(conn, id, p.kind, actor, now)?;
                }
            }
            if let Some(cats) = &changes.categories {
                let old: Vec<String> = principal::categories_of(conn, id)?
                    .into_iter()
                    .map(|c| c.name)
                    .collect();
                principal::set_categories(conn, id, cats, now)?;
                let new: Vec<String> = cats.iter().map(|c| c.name.clone()).collect();
                registration::categories_changed(conn, &p.name, &old, &new)?;
            }
            if changes.touches_client() {
                let mut client = client_settings::find(conn, id)?.unwrap_or_default();
                if let Some(uris) = &changes.redirect_uris {
                    client.redirect_uris = uris.clone();
                }
                if let Some(uris) = &changes.post_logout_redirect_uris {
                    client.post_logout_redirect_uris = uris.clone();
                }
                client_settings::put(conn, id, &client, now)?;
            }
            let applied = credentials::apply(conn, id, &changes.credentials, now)?;
            if let Some(policy) = &changes.token_exchange {
                token_exchange::save(conn, id, policy.as_ref(), now)?;
            }
            audit::record(
                conn,
                NewAuditEvent::new("principal.updated", Outcome::Ok)
                    .actor(actor)
                    .principal(Some(id))
                    .details(serde_json::json!({
                        "fields": fields,
                        "scopes": changes.scopes,
                        "redirect_uris": changes.redirect_uris,
                        "post_logout_redirect_uris": changes.post_logout_redirect_uris,
                        "token_endpoint_auth_method": applied.method,
                        "jwks_uri": changes.credentials.jwks_uri,
                        "federated_subjects": changes.credentials.federated_subjects,
                        "secrets_removed": applied.secrets_removed,
                        "token_exchange": changes.token_exchange,
                    })),
                now,
            )?;
        }
        if let Some(status) = status
            && status != p.status
        {
            change_status(conn, id, status, actor, now)?;
        }
        get(conn, id)
    })
}

/// `GET /api/v1/principals` query.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub kind: Option<PrincipalKind>,
    pub status: Option<PrincipalStatus>,
    pub category: Option<String>,
    /// Name prefix.
    pub q: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// A page of principals by name.
fn list(conn: &mut DbConnection, query: &ListQuery) -> Result<Page<PrincipalView>> {
    let limit = page::limit(query.limit)?;
    let filter = PrincipalFilter {
        kind: query.kind,
        status: query.status,
        category: query.category.clone(),
        q: query.q.clone(),
    };
    let after = query
        .cursor
        .as_deref()
        .map(|c| page::decode_cursor(c, 1))
        .transpose()?
        .map(|mut v| v.remove(0));
    let rows = principal::list_page(conn, &filter, after.as_deref(), limit + 1)?;
    page::paginate(
        rows,
        limit,
        |p: &Principal| page::encode_cursor(&[&p.name]),
        |rows| view::many(conn, rows),
    )
}

impl PrincipalsContext {
    /// `POST /api/v1/principals` and `roster principal create-*`: a service
    /// gets its first secret (shown once); a human needs a password, hashed
    /// on the argon2 pool, or an invitation to register a passkey.
    pub async fn create(&self, actor: Option<&str>, body: CreatePrincipal, now: DateTime<Utc>) -> Result<Created> {
        let input = body.principal();
        input.validate()?;
        let actor = actor.map(str::to_string);
        match (input.kind, body.password) {
            (PrincipalKind::Service, Some(_)) => Err(Error::invalid("password", "service principals have no password")),
            (PrincipalKind::Service, None) if body.invite => Err(Error::invalid(
                "invite",
                "only people are invited; a service gets a client secret",
            )),
            (PrincipalKind::Human, Some(_)) if body.invite => Err(Error::invalid(
                "invite",
                "give a password or an invitation, not both: an invited person registers a passkey instead",
            )),
            (PrincipalKind::Human, None) if body.invite => {
                let ctx = self.clone();
                let invited = self
                    .db
                    .run(move |c| create_invited(c, &ctx, &input, actor.as_deref(), now))
                    .await?;
                Ok(Created::Invited(invited))
            }
            (PrincipalKind::Human, None) => Err(Error::invalid(
                "password",
                "a human principal needs a password, or \"invite\": true for a link to register a passkey",
            )),
            (PrincipalKind::Service, None) => {
                let pepper = self.pepper.clone();
                let created = self
                    .db
                    .run(move |c| create_service(c, &pepper, &input, actor.as_deref(), now))
                    .await?;
                Ok(Created::Service(created.into()))
            }
            (PrincipalKind::Human, Some(password)) => {
                let phc = self.hash(password).await?;
                let view = self
                    .db
                    .run(move |c| create_human(c, &input, &phc, actor.as_deref(), now))
                    .await?;
                Ok(Created::Human(view))
            }
        }
    }

    /// `GET /api/v1/principals`: a page by name.
    pub async fn list(&self, query: ListQuery) -> Result<Page<PrincipalView>> {
        self.db.run(move |c| list(c, &query)).await
    }

    /// `roster principal list`: every principal by name.
    pub async fn all(&self) -> Result<Vec<PrincipalView>> {
        self.db.run(all).await
    }

    /// `GET /api/v1/principals/{id}`.
    pub async fn get(&self, id: String) -> Result<PrincipalView> {
        self.db.run(move |c| get(c, &id)).await
    }

    /// `PATCH /api/v1/principals/{id}`.
    pub async fn update(
        &self,
        actor: Option<&str>,
        id: String,
        body: PatchPrincipal,
        now: DateTime<Utc>,
    ) -> Result<PrincipalView> {
        let (actor, changes) = (actor.map(str::to_string), PrincipalChanges::from(&body));
        let changed = self
            .db
            .run(move |c| update(c, &id, &changes, body.status, actor.as_deref(), now))
            .await;
        self.changed(now).await;
        changed
    }

    /// `DELETE /api/v1/principals/{id}` (disable, and revoke its refresh
    /// tokens), or enable again.
    pub async fn set_status(
        &self,
        actor: Option<&str>,
        id: String,
        status: PrincipalStatus,
        now: DateTime<Utc>,
    ) -> Result<PrincipalView> {
        let actor = actor.map(str::to_string);
        let set = self
            .db
            .run(move |c| set_status(c, &id, status, actor.as_deref(), now))
            .await;
        self.changed(now).await;
        set
    }
}
