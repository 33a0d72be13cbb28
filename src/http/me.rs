//! `GET /api/v1/me`: who is calling.

use actix_web::HttpResponse;
use serde::Serialize;

use super::extract::Bearer;

#[derive(Debug, Serialize)]
pub struct MeView {
    pub id: String,
    pub name: String,
    pub kind: crate::models::principal::PrincipalKind,
    /// What the presented token may do now: its scopes that the principal
    /// still holds (not everything the principal holds).
    pub scopes: Vec<String>,
    pub client_id: String,
}

pub async fn me(Bearer(caller): Bearer) -> HttpResponse {
    HttpResponse::Ok().json(MeView {
        scopes: caller.scopes(),
        client_id: caller.claims.client_id,
        id: caller.principal.id,
        name: caller.principal.name,
        kind: caller.principal.kind,
    })
}
