//! Extractors of Roster's own API: who is calling, from an RFC 6750 Bearer
//! token checked online (`crate::auth::access`), and the error answers of
//! RFC 6750 §3.1 when they cannot say.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};

use crate::auth::access::{self, ADMIN_SCOPE, AccessError, Caller};
use crate::error::{ErrorBody, RETRY_AFTER_SECS};
use crate::state::AppState;

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

impl From<AccessError> for BearerError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::Invalid => Self::InvalidToken,
            AccessError::Storage(e) => {
                tracing::warn!(error = %e, "bearer check failed");
                Self::Unavailable(e.to_string())
            }
        }
    }
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
            Self::Unavailable(_) => {
                resp.insert_header((RETRY_AFTER, RETRY_AFTER_SECS.to_string()));
                "unavailable"
            }
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

/// The token of an `Authorization: Bearer` header (RFC 6750 §2.1);
/// `Ok(None)` when there is no such header.
pub fn bearer_token(req: &HttpRequest) -> Result<Option<String>, BearerError> {
    let Some(header) = req.headers().get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = header.to_str().map_err(|_| BearerError::InvalidToken)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(BearerError::InvalidToken)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(BearerError::InvalidToken);
    }
    Ok(Some(token.trim().to_string()))
}

fn state_of(req: &HttpRequest) -> Result<web::Data<AppState>, BearerError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| BearerError::Unavailable("no application state".into()))
}

/// Verify the request's Bearer token, if it has one.
async fn authenticate(req: HttpRequest) -> Result<Option<Caller>, BearerError> {
    let Some(token) = bearer_token(&req)? else {
        return Ok(None);
    };
    let state = state_of(&req)?;
    let caller = access::verify(state.db(), state.keys(), state.issuer(), &token, state.now()).await?;
    Ok(Some(caller))
}

/// An authenticated caller of Roster's API.
#[derive(Debug, Clone)]
pub struct Bearer(pub Caller);

impl FromRequest for Bearer {
    type Error = BearerError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(req).await?.map(Bearer).ok_or(BearerError::Missing) })
    }
}

/// A caller who may be anonymous; a token that is present must be valid.
#[derive(Debug, Clone)]
pub struct MaybeBearer(pub Option<Caller>);

impl FromRequest for MaybeBearer {
    type Error = BearerError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(req).await.map(MaybeBearer) })
    }
}

/// A caller whose token carries the `admin` scope.
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

impl Admin {
    pub fn id(&self) -> &str {
        self.0.id()
    }
}

impl FromRequest for Admin {
    type Error = BearerError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let bearer = Bearer::from_request(req, payload);
        Box::pin(async move {
            let Bearer(caller) = bearer.await?;
            if caller.is_admin() {
                Ok(Admin(caller))
            } else {
                Err(BearerError::InsufficientScope(ADMIN_SCOPE))
            }
        })
    }
}
