//! The admin API: principals, passwords, client secrets and the audit log.
//! Every handler extracts, calls one domain function and maps to a view.

use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use super::json::{self, double_option};
use crate::auth::bearer::{Admin, Bearer};
use crate::auth::password;
use crate::auth::secrets::SecretString;
use crate::error::{Error, Result};
use crate::models::audit::{self, AuditFilter};
use crate::models::page;
use crate::models::principal::{
    CategoryAssignment, NewPrincipal, PrincipalChanges, PrincipalFilter, PrincipalKind, PrincipalStatus,
};
use crate::principals::{self, CreatedServiceView};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePrincipal {
    kind: PrincipalKind,
    name: String,
    display_name: Option<String>,
    email: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    password: Option<SecretString>,
    #[serde(default)]
    categories: Vec<CategoryAssignment>,
}

fn created(location: String, body: &impl serde::Serialize) -> HttpResponse {
    HttpResponse::Created().insert_header((LOCATION, location)).json(body)
}

/// `POST /api/v1/principals`
pub async fn create_principal(
    state: web::Data<AppState>,
    admin: Admin,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let body: CreatePrincipal = json::parse(&req, payload).await?;
    let input = NewPrincipal {
        kind: body.kind,
        name: body.name,
        display_name: body.display_name,
        email: body.email,
        scopes: body.scopes,
        categories: body.categories,
    };
    input.validate()?;
    let actor = admin.id().to_string();
    let now = state.now();
    match (input.kind, body.password) {
        (PrincipalKind::Service, Some(_)) => Err(Error::invalid("password", "service principals have no password")),
        (PrincipalKind::Human, None) => Err(Error::invalid("password", "a human principal needs a password")),
        (PrincipalKind::Service, None) => {
            let pepper = state.pepper().clone();
            let created = state
                .db(move |c| principals::create_service(c, &pepper, &input, Some(&actor), now))
                .await?;
            let view = CreatedServiceView::from(created);
            Ok(self::created(
                format!("/api/v1/principals/{}", view.principal.id),
                &view,
            ))
        }
        (PrincipalKind::Human, Some(password)) => {
            let phc = state.argon(move || password::hash_password(&password)).await?;
            let phc = phc.map_err(|e| Error::invalid("password", e.to_string()))?;
            let view = state
                .db(move |c| principals::create_human(c, &input, &phc, Some(&actor), now))
                .await?;
            Ok(self::created(format!("/api/v1/principals/{}", view.id), &view))
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    kind: Option<PrincipalKind>,
    status: Option<PrincipalStatus>,
    category: Option<String>,
    q: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// `GET /api/v1/principals`
pub async fn list_principals(
    state: web::Data<AppState>,
    _admin: Admin,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse> {
    let q = query.into_inner();
    let limit = page::limit(q.limit)?;
    let filter = PrincipalFilter {
        kind: q.kind,
        status: q.status,
        category: q.category,
        q: q.q,
    };
    let page = state
        .db(move |c| principals::list_page(c, &filter, q.cursor.as_deref(), limit))
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// `GET /api/v1/principals/{id}`
pub async fn get_principal(state: web::Data<AppState>, _admin: Admin, id: web::Path<String>) -> Result<HttpResponse> {
    let id = id.into_inner();
    let view = state.db(move |c| principals::get(c, &id)).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchPrincipal {
    #[serde(default, deserialize_with = "double_option")]
    display_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    email: Option<Option<String>>,
    scopes: Option<Vec<String>>,
    categories: Option<Vec<CategoryAssignment>>,
    status: Option<PrincipalStatus>,
}

/// `PATCH /api/v1/principals/{id}`
pub async fn patch_principal(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let body: PatchPrincipal = json::parse(&req, payload).await?;
    let changes = PrincipalChanges {
        display_name: body.display_name,
        email: body.email,
        scopes: body.scopes,
        categories: body.categories,
    };
    let (id, actor, now) = (id.into_inner(), admin.id().to_string(), state.now());
    let view = state
        .db(move |c| principals::update(c, &id, &changes, body.status, Some(&actor), now))
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `DELETE /api/v1/principals/{id}`: disable, and revoke its refresh tokens.
pub async fn delete_principal(state: web::Data<AppState>, admin: Admin, id: web::Path<String>) -> Result<HttpResponse> {
    let (id, actor, now) = (id.into_inner(), admin.id().to_string(), state.now());
    let view = state
        .db(move |c| principals::set_status(c, &id, PrincipalStatus::Disabled, Some(&actor), now))
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    password: SecretString,
    current_password: Option<SecretString>,
}

/// `PUT /api/v1/principals/{id}/password`: an admin, or the human themselves
/// with their current password.
pub async fn set_password(
    state: web::Data<AppState>,
    caller: Bearer,
    id: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let body: SetPassword = json::parse(&req, payload).await?;
    let id = id.into_inner();
    let is_admin = caller.has_scope(principals::ADMIN_SCOPE);
    if !is_admin {
        if caller.principal.id != id {
            return Err(Error::Forbidden(
                "only an admin may set another principal's password".into(),
            ));
        }
        let current = body
            .current_password
            .ok_or_else(|| Error::invalid("current_password", "required to change your own password"))?;
        let lookup = id.clone();
        let phc = state.db(move |c| principals::password_hash_of(c, &lookup)).await?;
        let ok = state
            .argon(move || phc.is_some_and(|phc| password::verify_password(&current, &phc)))
            .await?;
        if !ok {
            return Err(Error::Forbidden("the current password is wrong".into()));
        }
    }
    let new = body.password;
    let phc = state
        .argon(move || password::hash_password(&new))
        .await?
        .map_err(|e| Error::invalid("password", e.to_string()))?;
    let (actor, now) = (caller.principal.id.clone(), state.now());
    state
        .db(move |c| principals::change_password(c, &id, &phc, Some(&actor), now))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Longest lifetime of a client secret: ten years.
const MAX_SECRET_LIFETIME_SECS: i64 = 10 * 365 * 24 * 3600;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSecret {
    /// Seconds until the secret expires; none means it does not expire.
    expires_in: Option<i64>,
}

/// `POST /api/v1/principals/{id}/secrets`: a new secret; the old ones keep working.
pub async fn create_secret(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let body: CreateSecret = json::parse_or_default(&req, payload).await?;
    let now = state.now();
    let expires_at: Option<DateTime<Utc>> = match body.expires_in {
        None => None,
        Some(s) if (1..=MAX_SECRET_LIFETIME_SECS).contains(&s) => Some(now + Duration::seconds(s)),
        Some(_) => return Err(Error::invalid("expires_in", "must be 1 second to 10 years")),
    };
    let (id, actor, pepper) = (id.into_inner(), admin.id().to_string(), state.pepper().clone());
    let location_id = id.clone();
    let (meta, secret) = state
        .db(move |c| principals::create_secret(c, &pepper, &id, expires_at, Some(&actor), now))
        .await?;
    Ok(created(
        format!("/api/v1/principals/{location_id}/secrets/{}", meta.id),
        &serde_json::json!({
            "id": meta.id,
            "client_secret": secret.expose(),
            "created_at": meta.created_at,
            "expires_at": meta.expires_at,
        }),
    ))
}

/// `GET /api/v1/principals/{id}/secrets`: metadata only.
pub async fn list_secrets(state: web::Data<AppState>, _admin: Admin, id: web::Path<String>) -> Result<HttpResponse> {
    let id = id.into_inner();
    let items = state.db(move |c| principals::list_secrets(c, &id)).await?;
    Ok(HttpResponse::Ok().json(page::Page {
        items,
        next_cursor: None,
    }))
}

/// `DELETE /api/v1/principals/{id}/secrets/{secret_id}`: stops working at once.
pub async fn delete_secret(
    state: web::Data<AppState>,
    admin: Admin,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    let ((id, secret_id), actor, now) = (path.into_inner(), admin.id().to_string(), state.now());
    state
        .db(move |c| principals::delete_secret(c, &id, &secret_id, Some(&actor), now))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    principal: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    since: Option<DateTime<Utc>>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// `GET /api/v1/audit`: newest first.
pub async fn list_audit(
    state: web::Data<AppState>,
    _admin: Admin,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse> {
    let q = query.into_inner();
    let limit = page::limit(q.limit)?;
    let filter = AuditFilter {
        principal: q.principal,
        event_type: q.event_type,
        since: q.since,
    };
    let page = state
        .db(move |c| audit::page(c, &filter, q.cursor.as_deref(), limit))
        .await?;
    Ok(HttpResponse::Ok().json(page))
}
