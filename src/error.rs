//! The error type of the domain and of the HTTP API (outside the OAuth
//! endpoints, which use [`crate::oauth::OAuthError`]).
//!
//! Database errors never reach clients as such: not-found becomes 404, a unique
//! violation 409, anything else is logged and answered with a generic 500.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::blocking::BlockingError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unavailable(String),
    /// SQLite found the database locked by another writer; the transaction
    /// was rolled back and may be retried (see `crate::db::transaction`).
    #[error("database busy")]
    Busy,
    /// Logged with its detail; the client sees only a generic message.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::Internal(detail.to_string())
    }

    /// The machine-readable code in the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Invalid { .. } => "invalid_field",
            Self::BadRequest(_) => "invalid_request",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::Unavailable(_) | Self::Busy => "unavailable",
            Self::Internal(_) => "internal_error",
        }
    }
}

impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::Error as D;
        match e {
            D::NotFound => Self::NotFound("record".into()),
            ref e if crate::db::is_unique_violation(e) => {
                Self::Conflict("a record with that name or key already exists".into())
            }
            ref e if crate::db::is_busy(e) => Self::Busy,
            other => Self::Internal(format!("database: {other}")),
        }
    }
}

impl From<diesel::r2d2::PoolError> for Error {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        Self::Unavailable(format!("database unavailable: {e}"))
    }
}

impl From<BlockingError> for Error {
    fn from(e: BlockingError) -> Self {
        Self::Internal(e.to_string())
    }
}

/// The JSON body of every non-OAuth error.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    pub error: &'a str,
    pub error_description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'a str>,
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Unavailable(_) | Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let description = match self {
            Self::Internal(detail) => {
                tracing::error!(detail = %detail, "internal error");
                "internal error".to_string()
            }
            Self::Busy => "the database is busy, retry".to_string(),
            Self::Unavailable(detail) => {
                tracing::warn!(detail = %detail, "service unavailable");
                "the database is unavailable".to_string()
            }
            Self::Invalid { message, .. } => message.clone(),
            other => other.to_string(),
        };
        let field = match self {
            Self::Invalid { field, .. } => Some(field.as_str()),
            _ => None,
        };
        let mut resp = HttpResponse::build(self.status_code());
        if let Self::Unauthorized(_) = self {
            resp.insert_header(("WWW-Authenticate", "Bearer"));
        }
        resp.json(ErrorBody {
            error: self.code(),
            error_description: description,
            field,
        })
    }
}
