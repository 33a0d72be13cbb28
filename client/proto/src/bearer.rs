//! RFC 6750: reading the `Authorization: Bearer` header (§2.1) and the
//! `WWW-Authenticate` challenge that refuses a request (§3).

/// The realm of every challenge Roster and `roster-client` send.
pub const REALM: &str = "roster";

/// What an RFC 6750 §3 challenge says about the request's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// No credentials, or credentials of another scheme (§3.1: "the request
    /// lacks any authentication information ... or attempted using an
    /// unsupported authentication method"): no error code, 401.
    Missing,
    /// §3.1 `invalid_token`: malformed, expired, revoked, forged: 401.
    InvalidToken,
    /// §3.1 `insufficient_scope`: valid, but the route needs `scope`: 403.
    InsufficientScope(String),
}

/// The `error_description` of every `invalid_token`: it never says which
/// check failed.
pub const INVALID_TOKEN_DESCRIPTION: &str = "the access token is invalid, expired or revoked";

impl Challenge {
    /// The HTTP status of the refusal.
    pub fn status(&self) -> u16 {
        match self {
            Self::Missing | Self::InvalidToken => 401,
            Self::InsufficientScope(_) => 403,
        }
    }

    /// The §3.1 error code, when there is one.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Self::Missing => None,
            Self::InvalidToken => Some("invalid_token"),
            Self::InsufficientScope(_) => Some("insufficient_scope"),
        }
    }

    /// The `WWW-Authenticate` header value (§3).
    pub fn www_authenticate(&self) -> String {
        match self {
            Self::Missing => format!(r#"Bearer realm="{REALM}""#),
            Self::InvalidToken => format!(
                r#"Bearer realm="{REALM}", error="invalid_token", error_description="{INVALID_TOKEN_DESCRIPTION}""#
            ),
            Self::InsufficientScope(scope) => {
                format!(r#"Bearer realm="{REALM}", error="insufficient_scope", scope="{scope}""#)
            }
        }
    }
}

/// The token of an `Authorization` header, given as its raw bytes (`None`
/// when the request has none).
///
/// - no header, or another scheme (`Basic ...`): [`Challenge::Missing`];
/// - `Bearer` (any case) with a token of the §2.1 `b64token` syntax: the
///   token;
/// - anything else (no token, bytes outside `b64token`, not UTF-8):
///   [`Challenge::InvalidToken`].
pub fn token(header: Option<&[u8]>) -> Result<&str, Challenge> {
    let raw = header.ok_or(Challenge::Missing)?;
    let value = std::str::from_utf8(raw).map_err(|_| Challenge::InvalidToken)?.trim();
    let (scheme, rest) = match value.split_once(' ') {
        Some((scheme, rest)) => (scheme, rest.trim()),
        None => (value, ""),
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Challenge::Missing);
    }
    if is_b64token(rest) {
        Ok(rest)
    } else {
        Err(Challenge::InvalidToken)
    }
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Case = (Option<&'static [u8]>, Result<&'static str, Challenge>);

    #[test]
    fn reads_the_header_as_rfc_6750_says() {
        let cases: [Case; 12] = [
            (None, Err(Challenge::Missing)),
            (Some(b"Bearer abc.def-ghi"), Ok("abc.def-ghi")),
            (Some(b"bearer  abc "), Ok("abc")),
            (Some(b"BEARER a/b+c~d=="), Ok("a/b+c~d==")),
            (Some(b"Basic dXNlcjpwYXNz"), Err(Challenge::Missing)),
            (Some(b"Token abc"), Err(Challenge::Missing)),
            (Some(b"Bearer"), Err(Challenge::InvalidToken)),
            (Some(b"Bearer    "), Err(Challenge::InvalidToken)),
            (Some(b"Bearer a b"), Err(Challenge::InvalidToken)),
            (Some(b"Bearer ==="), Err(Challenge::InvalidToken)),
            (Some(b"Bearer a\"b"), Err(Challenge::InvalidToken)),
            (Some(b"Bearer \xff\xfe"), Err(Challenge::InvalidToken)),
        ];
        for (header, want) in cases {
            assert_eq!(token(header), want, "{:?}", header.map(String::from_utf8_lossy));
        }
    }

    #[test]
    fn each_challenge_has_its_answer() {
        let answers: Vec<_> = [
            Challenge::Missing,
            Challenge::InvalidToken,
            Challenge::InsufficientScope("orders:write".into()),
        ]
        .iter()
        .map(|c| (c.status(), c.code(), c.www_authenticate()))
        .collect();
        assert_eq!(
            answers,
            [
                (401, None, r#"Bearer realm="roster""#.to_string()),
                (
                    401,
                    Some("invalid_token"),
                    r#"Bearer realm="roster", error="invalid_token", error_description="the access token is invalid, expired or revoked""#.to_string()
                ),
                (
                    403,
                    Some("insufficient_scope"),
                    r#"Bearer realm="roster", error="insufficient_scope", scope="orders:write""#.to_string()
                ),
            ]
        );
    }
}
