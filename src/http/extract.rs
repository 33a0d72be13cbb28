//! Extractors of Roster's own API: who is calling, from an RFC 6750 Bearer
//! token checked online (`crate::auth::access`), and the error answers of
//! RFC 6750 §3.1 when they cannot say.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};

use roster_proto::bearer::{self, Challenge};

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
        let challenge = |c: Challenge| (WWW_AUTHENTICATE, c.www_authenticate());
        let code = match self {
            Self::Missing => {
                resp.insert_header(challenge(Challenge::Missing));
                "unauthorized"
            }
            Self::InvalidToken => {
                resp.insert_header(challenge(Challenge::InvalidToken));
                "invalid_token"
            }
            Self::InsufficientScope(scope) => {
                resp.insert_header(challenge(Challenge::InsufficientScope(scope.to_string())));
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

/// The address a request comes from: the socket's peer, unless that peer is
/// a trusted proxy (`--trust-forwarded-for`); then the right-most
/// `X-Forwarded-For` entry that is not a trusted proxy itself. Entries a
/// client wrote to the left of what the proxies appended are never believed.
pub fn client_address(
    peer: std::net::IpAddr,
    forwarded_for: Option<&str>,
    trusted: &[ipnet::IpNet],
) -> std::net::IpAddr {
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(header) = forwarded_for else { return peer };
    let mut last = peer;
    for entry in header.rsplit(',') {
        match entry.trim().parse::<std::net::IpAddr>() {
            Ok(ip) if is_trusted(&ip) => last = ip,
            Ok(ip) => return ip,
            // A garbled entry: stop believing the header here.
            Err(_) => return last,
        }
    }
    last
}

/// The request's client address as text, per [`client_address`].
pub fn remote(req: &HttpRequest) -> Option<String> {
    let peer = req.peer_addr()?.ip();
    let trusted = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.settings().trusted_proxies.clone())
        .unwrap_or_default();
    let xff = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
    Some(client_address(peer, xff, &trusted).to_string())
}

/// The token of an `Authorization: Bearer` header, read as
/// [`roster_proto::bearer::token`] reads it; `Ok(None)` when the request
/// carries no Bearer credentials (no header, or another scheme: RFC 6750 §3.1).
pub fn bearer_token(req: &HttpRequest) -> Result<Option<String>, BearerError> {
    match bearer::token(req.headers().get(AUTHORIZATION).map(|v| v.as_bytes())) {
        Ok(token) => Ok(Some(token.to_string())),
        Err(Challenge::Missing) => Ok(None),
        Err(_) => Err(BearerError::InvalidToken),
    }
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
    let caller = access::verify(
        state.db(),
        state.keys(),
        &state.oauth().signatures,
        &token,
        &state.oauth().token.issuer,
        state.now(),
    )
    .await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> std::net::IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = vec!["10.0.0.0/8".parse::<ipnet::IpNet>().unwrap()];
        // An untrusted peer's header is ignored.
        assert_eq!(
            client_address(ip("203.0.113.5"), Some("1.2.3.4"), &trusted),
            ip("203.0.113.5")
        );
        // From a trusted proxy: the right-most untrusted entry.
        assert_eq!(
            client_address(ip("10.0.0.2"), Some("1.2.3.4, 198.51.100.7"), &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), Some("6.6.6.6, 198.51.100.7, 10.0.0.9"), &trusted),
            ip("198.51.100.7"),
            "a client cannot choose its address by writing to the left"
        );
        assert_eq!(client_address(ip("10.0.0.2"), None, &trusted), ip("10.0.0.2"));
        assert_eq!(
            client_address(ip("10.0.0.2"), Some("garbage"), &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), Some("10.0.0.3"), &trusted),
            ip("10.0.0.3")
        );
        assert_eq!(client_address(ip("10.0.0.2"), Some("1.2.3.4"), &[]), ip("10.0.0.2"));
    }

    proptest::proptest! {
        /// Any client address arithmetic: an address of the chain, never a panic.
        #[test]
        fn the_forwarded_for_parser_never_panics(header in ".{0,200}") {
            let trusted = vec!["10.0.0.0/8".parse::<ipnet::IpNet>().unwrap()];
            let _ = client_address(ip("10.1.1.1"), Some(&header), &trusted);
        }
    }
}
