//! Second factors over HTTP: a person's own under `/api/v1/me/factors`
//! (with their own token), and an admin's view, MFA setting and reset of a
//! person's under `/api/v1/principals/{id}`. Thin handlers over
//! [`crate::principals::factors`].

use actix_web::{HttpRequest, HttpResponse, web};

use super::extract::{Admin, Bearer, remote};
use super::json;
use crate::error::Result;
use crate::principals::factors::{ConfirmTotp, FinishPasskey, FreshStep, SetMfa, StartPasskey, StartTotp};
use crate::state::AppState;

/// `GET /api/v1/me/factors`
pub async fn mine(state: web::Data<AppState>, Bearer(caller): Bearer) -> Result<HttpResponse> {
    let view = state.principals().my_factors(&caller).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `POST /api/v1/me/factors/totp`: the secret is in the answer, once.
pub async fn start_totp(
    state: web::Data<AppState>,
    Bearer(caller): Bearer,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let body: StartTotp = json::parse_or_default(&req, payload).await?;
    let started = state
        .principals()
        .start_totp(&caller, body, state.issuer().to_string(), state.now())
        .await?;
    Ok(super::no_store(&mut HttpResponse::Created()).json(started))
}

/// `POST /api/v1/me/factors/totp/confirm`
pub async fn confirm_totp(
    state: web::Data<AppState>,
    Bearer(caller): Bearer,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let body: ConfirmTotp = json::parse(&req, payload).await?;
    let confirmed = state
        .principals()
        .confirm_totp(&caller, body, remote(&req), state.now())
        .await?;
    Ok(super::no_store(&mut HttpResponse::Ok()).json(confirmed))
}

/// `POST /api/v1/me/factors/passkeys/start`
pub async fn start_passkey(
    state: web::Data<AppState>,
    Bearer(caller): Bearer,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let body: StartPasskey = json::parse_or_default(&req, payload).await?;
    let begun = state.principals().start_passkey(&caller, body, state.now()).await?;
    Ok(super::no_store(&mut HttpResponse::Ok()).json(begun))
}

/// `POST /api/v1/me/factors/passkeys/challenge`: for a fresh second step.
pub async fn passkey_challenge(state: web::Data<AppState>, Bearer(caller): Bearer) -> Result<HttpResponse> {
    let begun = state.principals().passkey_challenge(&caller, state.now()).await?;
    Ok(super::no_store(&mut HttpResponse::Ok()).json(begun))
}

/// `POST /api/v1/me/factors/passkeys/finish`
pub async fn finish_passkey(
    state: web::Data<AppState>,
    Bearer(caller): Bearer,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let body: FinishPasskey = json::parse(&req, payload).await?;
    let done = state
        .principals()
        .finish_passkey(&caller, body, remote(&req), state.now())
        .await?;
    Ok(super::no_store(&mut HttpResponse::Ok()).json(done))
}

/// `POST /api/v1/me/factors/recovery-codes`
pub async fn recovery_codes(
    state: web::Data<AppState>,
    Bearer(caller): Bearer,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let body: FreshStep = json::parse(&req, payload).await?;
    let codes = state
        .principals()
        .new_recovery_codes(&caller, body, remote(&req), state.now())
        .await?;
    Ok(super::no_store(&mut HttpResponse::Ok()).json(codes))
}

/// `DELETE /api/v1/me/factors/{id}`, with `{"code"}`: a fresh second step.
pub async fn delete_mine(
    state: web::Data<AppState>,
    Bearer(caller): Bearer,
    id: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let body: FreshStep = json::parse(&req, payload).await?;
    state
        .principals()
        .delete_my_factor(&caller, id.into_inner(), body, remote(&req), state.now())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/v1/principals/{id}/factors`
pub async fn of_principal(state: web::Data<AppState>, _admin: Admin, id: web::Path<String>) -> Result<HttpResponse> {
    let view = state.principals().factors_of(id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `DELETE /api/v1/principals/{id}/factors`: reset them all.
pub async fn reset(state: web::Data<AppState>, admin: Admin, id: web::Path<String>) -> Result<HttpResponse> {
    let reset = state
        .principals()
        .reset_factors(Some(admin.id()), id.into_inner(), state.now())
        .await?;
    Ok(HttpResponse::Ok().json(reset))
}

/// `PUT /api/v1/principals/{id}/mfa`
pub async fn set_mfa(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let body: SetMfa = json::parse(&req, payload).await?;
    let view = state
        .principals()
        .set_mfa(Some(admin.id()), id.into_inner(), body, state.now())
        .await?;
    Ok(HttpResponse::Ok().json(view))
}
