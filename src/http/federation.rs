//! The admin API of trusted workload-identity issuers. Every handler
//! extracts, calls one method of the principals handle and maps its answer.

use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};

use super::extract::Admin;
use super::json;
use crate::error::Result;
use crate::page::Page;
use crate::principals::federation::{CreateIssuer, PatchIssuer};
use crate::state::AppState;

/// `POST /api/v1/federation/issuers`
pub async fn create_issuer(
    state: web::Data<AppState>,
    admin: Admin,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let body: CreateIssuer = json::parse(&req, payload).await?;
    let view = state
        .principals()
        .create_issuer(Some(admin.id()), body, state.now())
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, format!("/api/v1/federation/issuers/{}", view.id)))
        .json(view))
}

/// `GET /api/v1/federation/issuers`
pub async fn list_issuers(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse> {
    let items = state.principals().issuers().await?;
    Ok(HttpResponse::Ok().json(Page {
        items,
        next_cursor: None,
    }))
}

/// `GET /api/v1/federation/issuers/{id}`
pub async fn get_issuer(state: web::Data<AppState>, _admin: Admin, id: web::Path<String>) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.principals().issuer(id.into_inner()).await?))
}

/// `PATCH /api/v1/federation/issuers/{id}`
pub async fn patch_issuer(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let body: PatchIssuer = json::parse(&req, payload).await?;
    let view = state
        .principals()
        .update_issuer(Some(admin.id()), id.into_inner(), body, state.now())
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `DELETE /api/v1/federation/issuers/{id}`: refused while a service names it.
pub async fn delete_issuer(state: web::Data<AppState>, admin: Admin, id: web::Path<String>) -> Result<HttpResponse> {
    state
        .principals()
        .delete_issuer(Some(admin.id()), id.into_inner(), state.now())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
