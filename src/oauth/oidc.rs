//! OpenID Connect Core 1.0: the OpenID scopes, the ID token (§2, §3.1.3.6)
//! and the UserInfo response (§5.3).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::access::Caller;
use crate::auth::jwt::{self, SignError};
use crate::auth::keys::{KeySnapshot, SigningAlg};

pub use crate::names::{OIDC_SCOPES, is_oidc_scope};

/// The claims of an ID token (§2), signed with the access tokens' keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    /// The principal id.
    pub sub: String,
    /// The client the person logged in to.
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The login session (OpenID Connect Front-Channel Logout §3).
    pub sid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    /// How the person logged in (RFC 8176).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The level the login reached: `pwd` or `mfa`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
}

/// §3.1.3.6 `at_hash`: the left half of the hash of the access token, with the
/// hash of the JWS algorithm: SHA-256 for ES256, SHA-512 for EdDSA with
/// Ed25519 (the choice of the OpenID Foundation's conformance suite).
pub fn at_hash(alg: SigningAlg, access_token: &str) -> String {
    let algorithm = match alg {
        SigningAlg::Es256 => &ring::digest::SHA256,
        SigningAlg::EdDsa => &ring::digest::SHA512,
    };
    let digest = ring::digest::digest(algorithm, access_token.as_bytes());
    let bytes = digest.as_ref();
    B64.encode(&bytes[..bytes.len() / 2])
}

/// What an ID token says besides the access token it comes with.
#[derive(Debug, Clone)]
pub struct IdTokenFacts<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub client_id: &'a str,
    pub auth_time: DateTime<Utc>,
    pub nonce: Option<&'a str>,
    pub sid: &'a str,
    pub amr: &'a crate::auth::amr::Amr,
    pub lifetime: chrono::Duration,
}

/// Sign the ID token of `facts` for `access_token` at `now`.
pub fn id_token(
    keys: &KeySnapshot,
    facts: &IdTokenFacts<'_>,
    access_token: &str,
    now: DateTime<Utc>,
) -> Result<String, SignError> {
    let alg = keys.active.as_ref().ok_or(SignError::NoActiveKey)?.alg;
    let claims = IdTokenClaims {
        iss: facts.issuer.to_string(),
        sub: facts.subject.to_string(),
        aud: facts.client_id.to_string(),
        iat: now.timestamp(),
        exp: (now + facts.lifetime).timestamp(),
        auth_time: facts.auth_time.timestamp(),
        nonce: facts.nonce.map(str::to_string),
        sid: facts.sid.to_string(),
        at_hash: Some(at_hash(alg, access_token)),
        amr: facts.amr.names().iter().map(|m| m.to_string()).collect(),
        acr: Some(facts.amr.level().acr().to_string()),
    };
    jwt::sign_jws(keys, "JWT", &claims)
}

/// The claims of an `id_token_hint` Roster signed for `issuer`, expired or not.
pub fn id_token_hint(keys: &KeySnapshot, token: &str, issuer: &jwt::Issuer) -> Option<IdTokenClaims> {
    jwt::verify_signed::<IdTokenClaims>(keys, token).filter(|c| issuer.is(&c.iss))
}

/// §5.3.2: the UserInfo response. `profile` adds the names, `email` the address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    pub sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// Does the token of `caller` carry `openid` (§5.3.1: required for UserInfo)?
pub fn may_ask_userinfo(caller: &Caller) -> bool {
    crate::names::Scopes::from_stored(&caller.claims.scope).contains("openid")
        && caller.principal.kind == crate::models::principal::PrincipalKind::Human
}

/// §5.3.2 for `caller`, whose token carries `openid`.
pub fn userinfo(caller: &Caller) -> UserInfo {
    let scopes = crate::names::Scopes::from_stored(&caller.claims.scope);
    let has = |s: &str| scopes.contains(s);
    let p = &caller.principal;
    UserInfo {
        sub: p.id.clone(),
        preferred_username: has("profile").then(|| p.name.clone()),
        name: has("profile").then(|| p.display_name.clone().unwrap_or_else(|| p.name.clone())),
        email: if has("email") { p.email.clone() } else { None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_is_the_left_half_of_the_algorithms_hash() {
        // OpenID Connect Core §A.3's access token and at_hash (RS256, so SHA-256).
        assert_eq!(
            at_hash(SigningAlg::Es256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(at_hash(SigningAlg::EdDsa, "x").len(), 43, "32 bytes of SHA-512");
    }
}
