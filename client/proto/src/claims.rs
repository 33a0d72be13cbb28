//! The claims of a Roster access token: RFC 9068 §2.2 plus `principal_kind`
//! and `name`.

use serde::{Deserialize, Serialize};

/// RFC 9068 §2.1: the `typ` header of a JWT access token.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Does a JOSE `typ` header name an access token? RFC 9068 §4 accepts both
/// spellings, compared without case (RFC 7515 §4.1.9).
pub fn is_access_token_typ(typ: &str) -> bool {
    typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || typ.eq_ignore_ascii_case("application/at+jwt")
}

/// The claims Roster signs into every access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    /// The principal's UUID.
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    /// Roster always sets it; a verifier falls back to `iat` without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub jti: String,
    pub client_id: String,
    /// Space-separated scopes (RFC 9068 §2.2.3, RFC 8693 §4.2).
    #[serde(default)]
    pub scope: String,
    /// `human` or `service`.
    #[serde(default)]
    pub principal_kind: String,
    /// The principal's name (a service's name is its `client_id`).
    #[serde(default)]
    pub name: String,
}

impl AccessTokenClaims {
    /// The scopes, in the order they were granted.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split_whitespace()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_is_compared_without_case() {
        for typ in ["at+jwt", "AT+JWT", "application/at+jwt", "Application/At+Jwt"] {
            assert!(is_access_token_typ(typ), "{typ}");
        }
        for typ in ["JWT", "at+jwt ", "", "application/jwt"] {
            assert!(!is_access_token_typ(typ), "{typ}");
        }
    }

    #[test]
    fn claims_round_trip_and_tolerate_what_older_tokens_lacked() {
        let c: AccessTokenClaims = serde_json::from_str(
            r#"{"iss":"https://r","sub":"s","aud":"a","exp":2,"iat":1,"jti":"j","client_id":"c"}"#,
        )
        .unwrap();
        assert_eq!((c.nbf, c.scope.as_str(), c.scopes().count()), (None, "", 0));
        let c = AccessTokenClaims {
            nbf: Some(1),
            scope: "a b".into(),
            ..c
        };
        let back: AccessTokenClaims = serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        assert_eq!(c.scopes().collect::<Vec<_>>(), ["a", "b"]);
    }
}
