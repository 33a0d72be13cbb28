//! [`VerifyError`]: why a caller is refused, as RFC 6750 §3 answers it.

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

    /// The `WWW-Authenticate` challenge (RFC 6750 §3), if the answer has one.
    pub fn www_authenticate(&self) -> Option<String> {
        match self {
            Self::Missing => Some(r#"Bearer realm="roster""#.into()),
            Self::Invalid(_) => Some(
                r#"Bearer realm="roster", error="invalid_token", error_description="the access token is invalid, expired or revoked""#
                    .into(),
            ),
            Self::InsufficientScope(scope) => Some(format!(
                r#"Bearer realm="roster", error="insufficient_scope", scope="{scope}""#
            )),
            Self::Unavailable(_) => None,
        }
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
            Self::Invalid(_) => "the access token is invalid, expired or revoked".into(),
            Self::InsufficientScope(s) => format!("this needs the scope {s}"),
            Self::Unavailable(_) => "tokens cannot be verified now; try again shortly".into(),
        }
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
        assert!(
            !VerifyError::Invalid("bad signature")
                .description()
                .contains("signature")
        );
    }
}
