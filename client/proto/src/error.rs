//! RFC 6749 §5.2: the `error` codes of the token endpoint, also answered by
//! introspection (RFC 7662 §2.3) and revocation (RFC 7009 §2.2.1).

use serde::{Deserialize, Serialize};

/// The `error` codes of RFC 6749 §5.2, plus `invalid_target` (RFC 8707 §2),
/// `unsupported_token_type` (RFC 7009 §2.2.1), the two codes of §4.1.2.1
/// that fit a token endpoint, and `slow_down` (RFC 8628 §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    InvalidTarget,
    UnsupportedTokenType,
    ServerError,
    TemporarilyUnavailable,
    SlowDown,
    /// RFC 8628 §3.5: the person has not answered yet; poll again.
    AuthorizationPending,
    /// RFC 8628 §3.5: the device code expired; start again.
    ExpiredToken,
    /// RFC 8628 §3.5: the person refused.
    AccessDenied,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 14] = [
        Self::InvalidRequest,
        Self::InvalidClient,
        Self::InvalidGrant,
        Self::UnauthorizedClient,
        Self::UnsupportedGrantType,
        Self::InvalidScope,
        Self::InvalidTarget,
        Self::UnsupportedTokenType,
        Self::ServerError,
        Self::TemporarilyUnavailable,
        Self::SlowDown,
        Self::AuthorizationPending,
        Self::ExpiredToken,
        Self::AccessDenied,
    ];

    /// The code as it goes on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::SlowDown => "slow_down",
            Self::AuthorizationPending => "authorization_pending",
            Self::ExpiredToken => "expired_token",
            Self::AccessDenied => "access_denied",
        }
    }

    /// The code of a wire name; `None` for a code this version does not know
    /// (RFC 6749 §8.5 lets servers define more).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `as_str`, `from_name` and serde agree on every code.
    #[test]
    fn names_agree_with_serde() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::String(code.as_str().into()));
            assert_eq!(ErrorCode::from_name(code.as_str()), Some(code));
            assert_eq!(serde_json::from_value::<ErrorCode>(json).unwrap(), code);
        }
        assert_eq!(ErrorCode::from_name("consent_required"), None);
    }
}
