//! RFC 6749 §5.2: the error response of the token endpoint, also used by
//! introspection (RFC 7662 §2.3) and revocation (RFC 7009 §2.2.1).
//!
//! One type carries both outcomes of a failed request: what the client is to
//! be told, and a storage or internal failure (Kanidm's
//! `Oauth2Error::ServerError` shape), so that `?` works on both.

use crate::db::{Fault, HasFault, PoolError};
use crate::error::Error;

pub use roster_proto::error::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// Tell the client: the request is refused for this reason.
    #[error("{code:?}: {description}")]
    Client { code: ErrorCode, description: String },
    /// Too many failed logins: wait `retry_after` seconds (429, `slow_down`).
    #[error("throttled for {retry_after} s")]
    Throttled { retry_after: i64 },
    /// Too many requests from this address for its budget (see
    /// [`crate::auth::source_budget`]): wait `retry_after` seconds (429).
    #[error("over budget for {retry_after} s")]
    Limited { retry_after: i64 },
    /// Storage or an internal step failed. The client sees
    /// `temporarily_unavailable` (503) for a busy or unreachable database and
    /// `server_error` (500) otherwise; the detail is logged, never sent.
    #[error(transparent)]
    Server(#[from] Error),
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self::Client {
            code,
            description: description.into(),
        }
    }
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }
    /// RFC 6749 §5.2: client authentication failed. One description for every
    /// cause, so that callers cannot tell an unknown client from a wrong secret.
    pub fn invalid_client() -> Self {
        Self::new(ErrorCode::InvalidClient, "client authentication failed")
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidScope, d)
    }
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnauthorizedClient, d)
    }

    /// The `error` code sent.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Client { code, .. } => *code,
            Self::Throttled { .. } | Self::Limited { .. } => ErrorCode::SlowDown,
            Self::Server(Error::BadRequest(_)) => ErrorCode::InvalidRequest,
            Self::Server(e) if e.is_transient() => ErrorCode::TemporarilyUnavailable,
            Self::Server(_) => ErrorCode::ServerError,
        }
    }

    /// The `error_description` sent.
    pub fn description(&self) -> &str {
        match self {
            Self::Client { description, .. } => description,
            Self::Throttled { .. } => "too many failed logins: retry later",
            Self::Limited { .. } => "too many requests from this address: retry later",
            Self::Server(Error::BadRequest(d)) => d,
            Self::Server(e) if e.is_transient() => "the service is temporarily unavailable",
            Self::Server(_) => "internal error",
        }
    }
}

impl From<diesel::result::Error> for OAuthError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Server(e.into())
    }
}

impl From<PoolError> for OAuthError {
    fn from(e: PoolError) -> Self {
        Self::Server(e.into())
    }
}

impl HasFault for OAuthError {
    fn fault(&self) -> Option<Fault> {
        match self {
            Self::Server(e) => e.fault(),
            Self::Client { .. } | Self::Throttled { .. } | Self::Limited { .. } => None,
        }
    }
}
