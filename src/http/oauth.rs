//! OAuth endpoints: thin handlers over `crate::oauth`.

use actix_web::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, PRAGMA};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::Error;
use crate::oauth::request::{self, ClientCredentials, FormParams, TokenRequest};
use crate::oauth::{OAuthError, metadata};
use crate::state::AppState;

use super::MAX_BODY_BYTES;

/// Read a form body of at most `MAX_BODY_BYTES`, answering in OAuth's error shape.
async fn read_form(req: &HttpRequest, payload: web::Payload) -> Result<FormParams, OAuthError> {
    let body = super::read_body(req, payload, MAX_BODY_BYTES)
        .await
        .map_err(|e| match e {
            super::BodyError::TooLarge => OAuthError::invalid_request("the request body is too large"),
            super::BodyError::TimedOut(t) => {
                OAuthError::invalid_request(format!("the request body did not arrive within {t:?}"))
            }
            super::BodyError::Broken(_) => OAuthError::invalid_request("cannot read the request body"),
        })?;
    let content_type = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    request::parse_form(content_type, &body)
}

/// The client credentials and `token` of an introspection or revocation form.
async fn token_form(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<(ClientCredentials, Option<String>), OAuthError> {
    let form = read_form(req, payload).await?;
    let creds = client_credentials(req, &form)?;
    Ok((creds, form.get("token").map(str::to_string)))
}

fn client_credentials(req: &HttpRequest, form: &FormParams) -> Result<ClientCredentials, OAuthError> {
    let authorization = match req.headers().get(AUTHORIZATION) {
        Some(v) => Some(v.to_str().map_err(|_| OAuthError::invalid_client())?),
        None => None,
    };
    request::client_credentials(authorization, form)
}

fn remote(req: &HttpRequest) -> Option<String> {
    super::extract::remote(req)
}

/// JSON that must not be cached (RFC 6749 §5.1).
fn no_store(body: &impl serde::Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .insert_header((PRAGMA, "no-cache"))
        .json(body)
}

/// `POST /oauth/token` (RFC 6749 §3.2).
pub async fn token(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let form = read_form(&req, payload).await?;
    let creds = client_credentials(&req, &form)?;
    let grant = TokenRequest::from_form(&form)?;
    let response = state.oauth().token(grant, creds, remote(&req), state.now()).await?;
    Ok(no_store(&response))
}

/// `POST /oauth/device_authorization` (RFC 8628 §3.1).
pub async fn device_authorization(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let form = read_form(&req, payload).await?;
    let creds = client_credentials(&req, &form)?;
    let scope = match form.get("scope") {
        Some(s) => Some(crate::names::Scopes::parse(s).map_err(|e| OAuthError::invalid_scope(e.to_string()))?),
        None => None,
    };
    let answer = state
        .oauth()
        .device_authorization(creds, scope, remote(&req), state.now())
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(answer))
}

/// `POST /oauth/introspect` (RFC 7662 §2).
pub async fn introspect(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let (creds, token) = token_form(&req, payload).await?;
    let response = state
        .oauth()
        .introspect(creds, token, remote(&req), state.now())
        .await?;
    Ok(no_store(&response))
}

/// `POST /oauth/revoke` (RFC 7009 §2).
pub async fn revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let (creds, token) = token_form(&req, payload).await?;
    state.oauth().revoke(creds, token, remote(&req), state.now()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({})))
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414 §3) and
/// `GET /.well-known/openid-configuration`.
pub async fn server_metadata(state: web::Data<AppState>) -> Result<HttpResponse, Error> {
    let document = metadata::document(state.oauth()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "public, max-age=60"))
        .json(document))
}

/// `GET /.well-known/jwks.json`: the public keys (RFC 7517). Cached for less
/// than the key publish delay, so that a new key is seen before it signs.
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    let max_age = (state.settings().keys.publish_delay.num_seconds() / 2).clamp(0, 300);
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, format!("public, max-age={max_age}")))
        .json(&state.keys().current().jwks)
}
