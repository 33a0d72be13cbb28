//! The error type of the domain and of the HTTP API outside the OAuth
//! endpoints (those use [`crate::oauth::OAuthError`], which wraps this one).
//!
//! Database errors never reach clients as such: not-found becomes 404, a
//! unique violation 409, a busy or unreachable database 503 with
//! `Retry-After`, anything else is logged and answered with a generic 500.

use serde::Serialize;

use crate::blocking::BlockingError;
use crate::db::{Fault, HasFault, PoolError};

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
    /// Too many failed attempts: wait `retry_after` seconds (429).
    #[error("too many failed attempts: try again in {retry_after} seconds")]
    Throttled { retry_after: i64 },
    /// A second-factor code was wrong (400 `invalid_code`).
    #[error("{0}")]
    InvalidCode(String),
    /// The client did not send its request in time (408).
    #[error("{0}")]
    TimedOut(String),
    /// The database cannot be reached; logged with its detail.
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

/// Why text holding U+0000 is refused, wherever it comes in.
pub const NUL_REFUSED: &str = "text must not contain a NUL character (U+0000)";

/// Seconds a client is asked to wait after a 503.
pub const RETRY_AFTER_SECS: u32 = 1;

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

    /// A body of the wrong shape, at the path serde_path_to_error reports.
    pub fn from_json_path(path: &str, message: String, root: &str) -> Self {
        Self::invalid(field_of(path, &message, root), message)
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
            Self::Throttled { .. } => "too_many_attempts",
            Self::InvalidCode(_) => "invalid_code",
            Self::TimedOut(_) => "request_timeout",
            Self::Unavailable(_) | Self::Busy => "unavailable",
            Self::Internal(_) => "internal_error",
        }
    }

    /// True for the storage failures that a retry may cure (503).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Busy)
    }
}

impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Self {
        match crate::db::classify(&e) {
            Fault::NotFound => Self::NotFound("record".into()),
            Fault::UniqueViolation => Self::Conflict("a record with that name or key already exists".into()),
            Fault::Busy => Self::Busy,
            Fault::Disconnected => Self::Unavailable(format!("database connection lost: {e}")),
            Fault::NulInText => Self::BadRequest(NUL_REFUSED.into()),
            Fault::Other => Self::Internal(format!("database: {e}")),
        }
    }
}

impl From<PoolError> for Error {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Panicked => Self::Internal(e.to_string()),
            other => Self::Unavailable(format!("database unavailable: {other}")),
        }
    }
}

impl From<BlockingError> for Error {
    fn from(e: BlockingError) -> Self {
        match e {
            BlockingError::Closed(_) | BlockingError::Full(_) => Self::Unavailable(e.to_string()),
            BlockingError::Panicked(_) => Self::Internal(e.to_string()),
        }
    }
}

impl HasFault for Error {
    fn fault(&self) -> Option<Fault> {
        match self {
            Self::Busy => Some(Fault::Busy),
            Self::Unavailable(_) => Some(Fault::Disconnected),
            Self::NotFound(_) => Some(Fault::NotFound),
            _ => None,
        }
    }
}

/// The field an error is about: the path serde_path_to_error reports, or for
/// a missing field (reported at its parent) the parent's path plus its name.
pub fn field_of(path: &str, message: &str, root: &str) -> String {
    // Missing and repeated fields are reported at their parent.
    let missing = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("duplicate field `"))
        .and_then(|rest| rest.split('`').next());
    match (path, missing) {
        (".", Some(f)) => f.to_string(),
        (p, Some(f)) => format!("{p}.{f}"),
        (".", None) => root.to_string(),
        (p, None) => p.to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_field() {
        assert_eq!(field_of(".", "missing field `base_url`", "body"), "base_url");
        assert_eq!(field_of("pages[0]", "missing field `icon`", "m"), "pages[0].icon");
        assert_eq!(field_of("kind", "unknown variant", "body"), "kind");
        assert_eq!(field_of(".", "invalid type", "body"), "body");
        assert_eq!(field_of(".", "duplicate field `kind`", "body"), "kind");
        // serde_path_to_error already ends the path at an unknown field.
        assert_eq!(field_of("pages[0].js", "unknown field `js`", "m"), "pages[0].js");
    }
}
