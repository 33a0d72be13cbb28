//! The admin API: principals, passwords, client secrets and the audit log.
//! Every handler extracts, calls one method of the principals handle and
//! maps its answer to a response.

use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};

use super::extract::{Admin, Bearer};
use super::json;
use crate::error::Result;
use crate::models::principal::PrincipalStatus;
use crate::page::Page;
use crate::principals::audit::AuditQuery;
use crate::principals::invitations::NewInvitation;
use crate::principals::password::SetPassword;
use crate::principals::secrets::CreateSecret;
use crate::principals::{CreatePrincipal, Created, ListQuery, PatchPrincipal};
use crate::state::AppState;

fn created(location: String, body: &impl serde::Serialize) -> HttpResponse {
    HttpResponse::Created().insert_header((LOCATION, location)).json(body)
}

/// A 201 whose body carries a secret shown once: never stored by a cache.
fn created_secret(location: String, body: &impl serde::Serialize) -> HttpResponse {
    super::no_store(HttpResponse::Created().insert_header((LOCATION, location))).json(body)
}

/// `POST /api/v1/principals`
pub async fn create_principal(
    state: web::Data<AppState>,
    admin: Admin,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let body: CreatePrincipal = json::parse(&req, payload).await?;
    let made = state.principals().create(Some(admin.id()), body, state.now()).await?;
    let location = format!("/api/v1/principals/{}", made.id());
    Ok(match made {
        Created::Service(view) => created_secret(location, &view),
        Created::Human(view) => created(location, &view),
        Created::Invited(view) => created_secret(location, &view),
    })
}

/// `POST /api/v1/principals/{id}/invitation`: a single-use link, shown once.
pub async fn invite(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let body: NewInvitation = json::parse_or_default(&req, payload).await?;
    let made = state
        .principals()
        .invite(Some(admin.id()), id.into_inner(), body, state.now())
        .await?;
    Ok(super::no_store(&mut HttpResponse::Created()).json(made))
}

/// `GET /api/v1/principals`
pub async fn list_principals(
    state: web::Data<AppState>,
    _admin: Admin,
    query: super::query::Query<ListQuery>,
) -> Result<HttpResponse> {
    let page = state.principals().list(query.into_inner()).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// `GET /api/v1/principals/{id}`
pub async fn get_principal(state: web::Data<AppState>, _admin: Admin, id: web::Path<String>) -> Result<HttpResponse> {
    let view = state.principals().get(id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(view))
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
    let view = state
        .principals()
        .update(Some(admin.id()), id.into_inner(), body, state.now())
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `DELETE /api/v1/principals/{id}`: disable, and revoke its refresh tokens.
pub async fn delete_principal(state: web::Data<AppState>, admin: Admin, id: web::Path<String>) -> Result<HttpResponse> {
    let view = state
        .principals()
        .set_status(
            Some(admin.id()),
            id.into_inner(),
            PrincipalStatus::Disabled,
            state.now(),
        )
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `PUT /api/v1/principals/{id}/password`: an admin, or the human themselves
/// with their current password.
pub async fn set_password(
    state: web::Data<AppState>,
    Bearer(caller): Bearer,
    id: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let body: SetPassword = json::parse(&req, payload).await?;
    state
        .principals()
        .change_password(&caller, id.into_inner(), body, state.now())
        .await?;
    Ok(HttpResponse::NoContent().finish())
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
    let id = id.into_inner();
    let location = format!("/api/v1/principals/{id}/secrets/");
    let secret = state
        .principals()
        .create_secret(Some(admin.id()), id, body, state.now())
        .await?;
    Ok(created_secret(format!("{location}{}", secret.id), &secret))
}

/// `GET /api/v1/principals/{id}/secrets`: metadata only.
pub async fn list_secrets(state: web::Data<AppState>, _admin: Admin, id: web::Path<String>) -> Result<HttpResponse> {
    let items = state.principals().secrets(id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(Page {
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
    let (id, secret_id) = path.into_inner();
    state
        .principals()
        .delete_secret(Some(admin.id()), id, secret_id, state.now())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/v1/audit`: newest first.
pub async fn list_audit(
    state: web::Data<AppState>,
    _admin: Admin,
    query: super::query::Query<AuditQuery>,
) -> Result<HttpResponse> {
    let page = state.principals().audit(query.into_inner()).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// `GET /api/v1/throttles`: the login counters that block now.
pub async fn list_throttles(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse> {
    let items = state.principals().throttles(state.now()).await?;
    Ok(HttpResponse::Ok().json(Page {
        items,
        next_cursor: None,
    }))
}

/// `DELETE /api/v1/principals/{id}/throttle`: clear a principal's login counters.
pub async fn clear_throttle(state: web::Data<AppState>, admin: Admin, id: web::Path<String>) -> Result<HttpResponse> {
    state
        .principals()
        .clear_throttle(Some(admin.id()), id.into_inner(), state.now())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
