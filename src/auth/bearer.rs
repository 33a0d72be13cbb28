//! Bearer tokens on Roster's own API (RFC 6750): verified online, so a revoked
//! token or a disabled principal is refused at once.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};

use crate::auth::jwt::{self, AccessTokenClaims};
use crate::error::ErrorBody;
use crate::models::principal::Principal;
use crate::state::AppState;

/// An authenticated caller of Roster's API.
#[derive(Debug, Clone)]
pub struct Bearer {
    pub claims: AccessTokenClaims,
    pub principal: Principal,
}

impl Bearer {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.claims.scope.split(' ').any(|s| s == scope)
    }
}

/// RFC 6750 §3.1 errors.
#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    /// No credentials: the challenge carries no error code (§3.1).
    #[error("a Bearer token is required")]
    Missing,
    #[error("the access token is invalid, expired or revoked")]
    InvalidToken,
    /// RFC 6750 §3.1 `insufficient_scope`, answered with 403.
    #[error("this requires the scope '{0}'")]
    InsufficientScope(&'static str),
    #[error("{0}")]
    Unavailable(String),
}

impl ResponseError for BearerError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Missing | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status_code());
        let code = match self {
            Self::Missing => {
                resp.insert_header((WWW_AUTHENTICATE, r#"Bearer realm="roster""#));
                "unauthorized"
            }
            Self::InvalidToken => {
                resp.insert_header((
                    WWW_AUTHENTICATE,
                    r#"Bearer realm="roster", error="invalid_token", error_description="the access token is invalid, expired or revoked""#,
                ));
                "invalid_token"
            }
            Self::InsufficientScope(scope) => {
                resp.insert_header((
                    WWW_AUTHENTICATE,
                    format!(r#"Bearer realm="roster", error="insufficient_scope", scope="{scope}""#),
                ));
                "forbidden"
            }
            Self::Unavailable(_) => "unavailable",
        };
        resp.json(ErrorBody {
            error: code,
            error_description: match self {
                Self::Unavailable(_) => "the service is temporarily unavailable".into(),
                other => other.to_string(),
            },
            field: None,
        })
    }
}

impl From<crate::error::Error> for BearerError {
    fn from(e: crate::error::Error) -> Self {
        tracing::warn!(error = %e, "bearer check failed");
        Self::Unavailable(e.to_string())
    }
}

/// The token of an `Authorization: Bearer` header.
fn bearer_token(req: &HttpRequest) -> Result<String, BearerError> {
    let header = req.headers().get(AUTHORIZATION).ok_or(BearerError::Missing)?;
    let value = header.to_str().map_err(|_| BearerError::InvalidToken)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(BearerError::InvalidToken)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(BearerError::InvalidToken);
    }
    Ok(token.trim().to_string())
}

/// Verify a Bearer token for Roster's API: signature, `typ`, `iss`, `exp`,
/// audience Roster itself, not revoked, principal active.
pub async fn authenticate(state: &AppState, req: &HttpRequest) -> Result<Bearer, BearerError> {
    let token = bearer_token(req)?;
    let keys = state.keys().await?;
    let issuer = state.settings().issuer();
    let claims = jwt::verify(&keys, &token, issuer, state.now()).map_err(|_| BearerError::InvalidToken)?;
    if claims.aud != issuer {
        return Err(BearerError::InvalidToken);
    }
    let checked = claims.clone();
    let principal = state
        .db(move |conn| crate::oauth::introspect::access_token_live(conn, &checked))
        .await?
        .ok_or(BearerError::InvalidToken)?;
    Ok(Bearer { claims, principal })
}

impl FromRequest for Bearer {
    type Error = BearerError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| BearerError::Unavailable("no state".into()))?
                .clone();
            authenticate(&state, &req).await
        })
    }
}

/// A caller whose token carries the `admin` scope.
#[derive(Debug, Clone)]
pub struct Admin(pub Bearer);

impl Admin {
    pub fn id(&self) -> &str {
        &self.0.principal.id
    }
}

impl FromRequest for Admin {
    type Error = BearerError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let bearer = Bearer::from_request(req, payload);
        Box::pin(async move {
            let bearer = bearer.await?;
            if bearer.has_scope(crate::principals::ADMIN_SCOPE) {
                Ok(Admin(bearer))
            } else {
                Err(BearerError::InsufficientScope(crate::principals::ADMIN_SCOPE))
            }
        })
    }
}
