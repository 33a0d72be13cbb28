//! The invitation page over HTTP: the page and its script, and the two
//! JSON calls the script makes. Thin handlers over
//! [`crate::principals::invitations`].

use actix_web::http::StatusCode;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpRequest, HttpResponse, web};

use super::extract::remote;
use super::{json, pages};
use crate::error::Result;
use crate::principals::invitations::{FinishInvited, StartInvited};
use crate::state::AppState;

/// `GET /oauth/invitation`: the same page for every link (the token is in
/// the fragment); it offers the console to sign in to when there is one.
pub async fn page(state: web::Data<AppState>) -> HttpResponse {
    let sign_in = state
        .settings()
        .console
        .then(|| crate::principals::console::redirect_uri(state.issuer()));
    let unavailable = state.principals().passkeys.require().err().map(|e| e.to_string());
    let status = match unavailable {
        Some(_) => StatusCode::CONFLICT,
        None => StatusCode::OK,
    };
    pages::respond(
        status,
        pages::invitation(sign_in.as_deref(), unavailable.as_deref()),
        &[],
    )
}

/// `GET /oauth/invitation.js`
pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((CACHE_CONTROL, "no-cache"))
        .body(pages::INVITATION_SCRIPT)
}

/// `POST /oauth/invitation/start`: a passkey registration for the invited person.
pub async fn start(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Result<HttpResponse> {
    let body: StartInvited = json::parse(&req, payload).await?;
    let begun = state
        .principals()
        .invitation_start(body, remote(&req), state.now())
        .await?;
    Ok(super::no_store(&mut HttpResponse::Ok()).json(begun))
}

/// `POST /oauth/invitation/finish`: the passkey is stored, the link spent.
pub async fn finish(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Result<HttpResponse> {
    let body: FinishInvited = json::parse(&req, payload).await?;
    let accepted = state
        .principals()
        .invitation_finish(body, remote(&req), state.now())
        .await?;
    Ok(super::no_store(&mut HttpResponse::Ok()).json(accepted))
}
