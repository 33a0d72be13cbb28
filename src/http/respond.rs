//! How the domain's errors go on the wire: the status, headers and JSON
//! body of [`crate::error::Error`] (`{"error", "error_description", "field"}`)
//! and of [`crate::oauth::OAuthError`] (RFC 6749 §5.2). Here, so that nothing
//! below `http/` knows the web framework.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::error::{Error, ErrorBody, RETRY_AFTER_SECS};
use crate::oauth::error::{ErrorCode, OAuthError};

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::InvalidCode(_) => StatusCode::BAD_REQUEST,
            Self::TimedOut(_) => StatusCode::REQUEST_TIMEOUT,
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
        match self {
            Self::Unauthorized(_) => {
                resp.insert_header(("WWW-Authenticate", "Bearer"));
            }
            Self::Unavailable(_) | Self::Busy => {
                resp.insert_header((RETRY_AFTER, RETRY_AFTER_SECS.to_string()));
            }
            Self::Throttled { retry_after } => {
                resp.insert_header((RETRY_AFTER, retry_after.max(&1).to_string()));
            }
            _ => {}
        }
        resp.json(ErrorBody {
            error: self.code(),
            error_description: description,
            field,
        })
    }
}

/// The JSON body of §5.2.
#[derive(Serialize)]
struct Body<'a> {
    error: ErrorCode,
    error_description: &'a str,
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        match self.code() {
            ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            // The throttle; a device flow's slow_down is a 400 (RFC 8628 §3.5).
            ErrorCode::SlowDown if matches!(self, Self::Throttled { .. } | Self::Limited { .. }) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Server(e) = self {
            if e.is_transient() {
                tracing::warn!(detail = %e, "token service unavailable");
            } else {
                tracing::error!(detail = %e, "token service internal error");
            }
        }
        let mut resp = HttpResponse::build(self.status_code());
        resp.insert_header((CACHE_CONTROL, "no-store"))
            .insert_header((PRAGMA, "no-cache"));
        match self.code() {
            // §5.2: a 401 carries the scheme the client may authenticate with.
            ErrorCode::InvalidClient => {
                resp.insert_header((WWW_AUTHENTICATE, r#"Basic realm="roster", charset="UTF-8""#));
            }
            ErrorCode::TemporarilyUnavailable => {
                resp.insert_header((RETRY_AFTER, RETRY_AFTER_SECS.to_string()));
            }
            ErrorCode::SlowDown => {
                if let Self::Throttled { retry_after } | Self::Limited { retry_after } = self {
                    resp.insert_header((RETRY_AFTER, (*retry_after).max(1).to_string()));
                }
            }
            _ => {}
        }
        resp.json(Body {
            error: self.code(),
            error_description: self.description(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_failures_are_503_or_500_without_detail() {
        let busy = OAuthError::from(Error::Busy);
        assert_eq!(busy.code(), ErrorCode::TemporarilyUnavailable);
        assert_eq!(busy.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.error_response().headers().get(RETRY_AFTER).unwrap(), "1");
        let bug = OAuthError::from(Error::internal("secret detail"));
        assert_eq!(bug.code(), ErrorCode::ServerError);
        assert_eq!(bug.description(), "internal error");
        let refused = OAuthError::invalid_client();
        assert_eq!(refused.status_code(), StatusCode::UNAUTHORIZED);
        assert!(refused.error_response().headers().contains_key(WWW_AUTHENTICATE));
    }

    #[test]
    fn storage_faults_map_to_statuses() {
        use crate::db::HasFault;
        use diesel::result::Error as D;
        assert_eq!(Error::from(D::NotFound).status_code(), StatusCode::NOT_FOUND);
        assert_eq!(
            Error::from(crate::db::PoolError::Connect("refused".into())).status_code(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let resp = Error::Busy.error_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers().get(RETRY_AFTER).unwrap(), "1");
        assert_eq!(Error::Busy.fault(), Some(crate::db::Fault::Busy));
    }
}
