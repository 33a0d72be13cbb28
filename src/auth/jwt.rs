//! JWT access tokens (RFC 9068): signing and verification at a given `now`.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Header, Validation};
use serde::Serialize;

use super::keys::KeySnapshot;

pub use roster_proto::claims::{ACCESS_TOKEN_TYP, AccessTokenClaims};

/// The issuer identifier (RFC 8414 §2, RFC 9068 §2.2 `iss`): the URL every
/// token names and every verification compares. A type of its own, so it
/// cannot change places with the token beside it in a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer(String);

impl Issuer {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Does a token's `iss` (or `aud`) name this issuer exactly?
    pub fn is(&self, claimed: &str) -> bool {
        self.0 == claimed
    }
}

impl std::fmt::Display for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignError {
    #[error("no active signing key")]
    NoActiveKey,
    #[error("signing failed")]
    Failed,
}

/// A JWS compact serialisation (RFC 7515 §7.1) of `claims`, signed by the
/// active key with its parsed private key (see [`crate::auth::keys::Signer`]);
/// verification, here and everywhere else, goes through `jsonwebtoken`.
pub fn sign(keys: &KeySnapshot, claims: &AccessTokenClaims) -> Result<String, SignError> {
    sign_jws(keys, ACCESS_TOKEN_TYP, claims)
}

/// A JWS of any claims with the `typ` header `typ` (an ID token is `JWT`).
pub fn sign_jws(keys: &KeySnapshot, typ: &str, claims: &impl Serialize) -> Result<String, SignError> {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    let active = keys.active.as_ref().ok_or(SignError::NoActiveKey)?;
    let mut header = Header::new(active.alg.jwt_alg());
    header.typ = Some(typ.to_string());
    header.kid = Some(active.kid.clone());
    let header = serde_json::to_vec(&header).map_err(|_| SignError::Failed)?;
    let claims = serde_json::to_vec(claims).map_err(|_| SignError::Failed)?;
    let message = format!("{}.{}", B64.encode(header), B64.encode(claims));
    let signature = active.signer.sign(message.as_bytes());
    Ok(format!("{message}.{}", B64.encode(signature)))
}

/// Verify the signature and issuer of a JWS signed by one of Roster's keys
/// (published or retired), without looking at its time claims: for an
/// `id_token_hint` (OpenID Connect RP-Initiated Logout §2), which may have expired.
pub fn verify_signed<T: serde::de::DeserializeOwned>(keys: &KeySnapshot, token: &str) -> Option<T> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    let (alg, key) = keys.verifying.get(header.kid.as_deref()?)?;
    if header.alg != *alg {
        return None;
    }
    let mut validation = Validation::new(*alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<T>(token, key, &validation)
        .ok()
        .map(|d| d.claims)
}

/// Why a token is not valid. Only ever reported as "invalid" to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    Malformed,
    WrongType,
    UnknownKey,
    BadSignature,
    WrongIssuer,
    Expired,
    NotYetValid,
}

/// Verify signature, `typ`, `iss`, `exp` and `nbf` at `now`. The audience is
/// the caller's to check. Time comes from the caller, not the system clock.
pub fn verify(
    keys: &KeySnapshot,
    token: &str,
    issuer: &Issuer,
    now: DateTime<Utc>,
) -> Result<AccessTokenClaims, VerifyError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
    if header.typ.as_deref().map(str::to_ascii_lowercase).as_deref() != Some(ACCESS_TOKEN_TYP)
        && header.typ.as_deref() != Some("application/at+jwt")
    {
        return Err(VerifyError::WrongType);
    }
    let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
    let (alg, key) = keys.verifying.get(&kid).ok_or(VerifyError::UnknownKey)?;
    if header.alg != *alg {
        return Err(VerifyError::BadSignature);
    }
    let mut validation = Validation::new(*alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<AccessTokenClaims>(token, key, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidSignature => VerifyError::BadSignature,
            _ => VerifyError::Malformed,
        }
    })?;
    let claims = data.claims;
    if !issuer.is(&claims.iss) {
        return Err(VerifyError::WrongIssuer);
    }
    let t = now.timestamp();
    if claims.exp <= t {
        return Err(VerifyError::Expired);
    }
    if claims.nbf.unwrap_or(claims.iat) > t + 60 {
        return Err(VerifyError::NotYetValid);
    }
    Ok(claims)
}
