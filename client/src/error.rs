//! [`VerifyError`]: why a caller is refused, as RFC 6750 §3 answers it.

use roster_proto::bearer::{self, Challenge, INVALID_TOKEN_DESCRIPTION};

/// The token of a request's `Authorization` header (its raw bytes; `None`
/// without one), read as Roster reads it ([`roster_proto::bearer::token`]):
/// no header or another scheme is [`VerifyError::Missing`], a malformed
/// Bearer header [`VerifyError::Invalid`].
pub fn bearer_token(authorization: Option<&[u8]>) -> Result<&str, VerifyError> {
    bearer::token(authorization).map_err(|c| match c {
        Challenge::Missing => VerifyError::Missing,
        _ => VerifyError::Invalid("malformed Authorization header"),
    })
}

/// Why a request's access token was not accepted. Each maps to one RFC 6750
/// answer: [`VerifyError::status`] and [`VerifyError::www_authenticate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// No `Authorization: Bearer` header (RFC 6750 §3.1: 401, no error code).
    #[error("a Bearer token is required")]
    Missing,
    /// Malformed, forged, expired, not yet valid, for another audience or
    /// issuer, revoked, or its principal disabled: 401 `invalid_token`. The
    /// reason is for logs; the caller is only told the token is invalid.
    #[error("invalid token: {0}")]
    Invalid(&'static str),
    /// Valid, but without a scope the route requires: 403 `insufficient_scope`.
    #[error("the token lacks the scope {0}")]
    InsufficientScope(String),
    /// The verifier cannot vouch for any token now: the keys could not be
    /// had, or the revocation feed is staler than allowed (fail closed).
    /// 503 with `Retry-After`.
    #[error("cannot verify tokens now: {0}")]
    Unavailable(&'static str),
}

impl VerifyError {
    /// The HTTP status of the answer.
    pub fn status(&self) -> u16 {
        match self {
            Self::Missing | Self::Invalid(_) => 401,
            Self::InsufficientScope(_) => 403,
            Self::Unavailable(_) => 503,
        }
    }

    /// The RFC 6750 §3 challenge of the answer, if it has one (the same
    /// challenge Roster itself sends: [`roster_proto::bearer::Challenge`]).
    pub fn challenge(&self) -> Option<Challenge> {
        match self {
            Self::Missing => Some(Challenge::Missing),
            Self::Invalid(_) => Some(Challenge::InvalidToken),
            Self::InsufficientScope(scope) => Some(Challenge::InsufficientScope(scope.clone())),
            Self::Unavailable(_) => None,
        }
    }

    /// The `WWW-Authenticate` header value (RFC 6750 §3), if the answer has one.
    pub fn www_authenticate(&self) -> Option<String> {
        self.challenge().map(|c| c.www_authenticate())
    }

    /// The JSON body's `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "unauthorized",
            Self::Invalid(_) => "invalid_token",
            Self::InsufficientScope(_) => "insufficient_scope",
            Self::Unavailable(_) => "temporarily_unavailable",
        }
    }

    /// The JSON body's `error_description`: never the internal reason.
    pub fn description(&self) -> String {
        match self {
            Self::Missing => "a Bearer token is required".into(),
            Self::Invalid(_) => INVALID_TOKEN_DESCRIPTION.into(),
            Self::InsufficientScope(s) => format!("this needs the scope {s}"),
            Self::Unavailable(_) => "tokens cannot be verified now; try again shortly".into(),
        }
    }

    /// The JSON body every framework integration answers:
    /// `{"error": …, "error_description": …}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": self.code(), "error_description": self.description()})
    }

    /// Seconds for `Retry-After`: only a 503 says when to come back.
    pub fn retry_after_secs(&self) -> Option<u32> {
        matches!(self, Self::Unavailable(_)).then_some(5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_its_rfc_6750_answer() {
        let answers: Vec<(u16, Option<String>, &str)> = [
            VerifyError::Missing,
            VerifyError::Invalid("expired"),
            VerifyError::InsufficientScope("orders:write".into()),
            VerifyError::Unavailable("feed stale"),
        ]
        .iter()
        .map(|e| (e.status(), e.www_authenticate(), e.code()))
        .collect();
        assert_eq!(
            answers,
            [
                (401, Some(r#"Bearer realm="roster""#.into()), "unauthorized"),
                (
                    401,
                    Some(r#"Bearer realm="roster", error="invalid_token", error_description="the access token is invalid, expired or revoked""#.into()),
                    "invalid_token"
                ),
                (
                    403,
                    Some(r#"Bearer realm="roster", error="insufficient_scope", scope="orders:write""#.into()),
                    "insufficient_scope"
                ),
                (503, None, "temporarily_unavailable"),
            ]
        );
        // The body and Retry-After every framework integration sends.
        let stale = VerifyError::Unavailable("feed stale");
        assert_eq!(
            (stale.body(), stale.retry_after_secs()),
            (
                serde_json::json!({"error": "temporarily_unavailable", "error_description": "tokens cannot be verified now; try again shortly"}),
                Some(5)
            )
        );
        assert_eq!(VerifyError::Invalid("expired").retry_after_secs(), None);
        assert_eq!(bearer_token(Some(b"Basic dXNlcjpwYXNz")), Err(VerifyError::Missing));
        assert_eq!(bearer_token(None), Err(VerifyError::Missing));
        assert_eq!(
            bearer_token(Some(b"Bearer")),
            Err(VerifyError::Invalid("malformed Authorization header"))
        );
        assert_eq!(bearer_token(Some(b"bearer abc")), Ok("abc"));
        assert!(
            !VerifyError::Invalid("bad signature")
                .description()
                .contains("signature")
        );
    }
}
