//! JWT access tokens (RFC 9068): signing and verification at a given `now`.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Header, Validation};
use serde::Serialize;

use std::collections::HashMap;
use std::sync::Arc;

use super::keys::KeySnapshot;

pub use roster_proto::claims::{ACCESS_TOKEN_TYP, AccessTokenClaims, Actor, Audience};

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
    check_claims(&claims, issuer, now)?;
    Ok(claims)
}

/// The claims' part of [`verify`], for claims whose signature was checked
/// before: the issuer, and `exp` and `nbf` at `now`.
pub fn check_claims(claims: &AccessTokenClaims, issuer: &Issuer, now: DateTime<Utc>) -> Result<(), VerifyError> {
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
    Ok(())
}

/// Most tokens remembered at once.
pub const MAX_VERIFIED_TOKENS: usize = 50_000;

type TokenDigest = [u8; 32];

/// Access tokens whose signature this instance checked recently. A
/// resource server introspects the same token on every request it serves,
/// and the Ed25519 verification is most of an introspection's CPU; a hit
/// skips it.
///
/// The key is a SHA-256 of the exact token, so a hit is the very token
/// whose signature was checked, never a look-alike. A hit still checks, at
/// the request's `now`, what can change: the signing key is still among the
/// keys in service (a retired key's tokens stop at once), the issuer, `exp`
/// and `nbf`. Liveness (revocation, a disabled principal) stays the
/// caller's, as for any verified token. At most [`MAX_VERIFIED_TOKENS`]
/// are held; when full it starts over, so a flood of distinct tokens costs
/// speed, never unbounded memory.
#[derive(Debug, Default)]
pub struct VerifiedSignatures {
    entries: std::sync::RwLock<HashMap<TokenDigest, Arc<VerifiedToken>>>,
}

#[derive(Debug)]
struct VerifiedToken {
    kid: String,
    claims: AccessTokenClaims,
}

fn token_digest(token: &str) -> TokenDigest {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl VerifiedSignatures {
    pub fn new() -> Self {
        Self::default()
    }

    /// [`verify`] with the cache: the claims of a token whose signature
    /// was checked before under a key still in `keys`, checked again at `now`.
    pub fn verify(
        &self,
        keys: &KeySnapshot,
        token: &str,
        issuer: &Issuer,
        now: DateTime<Utc>,
    ) -> Result<AccessTokenClaims, VerifyError> {
        let key = token_digest(token);
        let hit = self
            .entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .cloned();
        if let Some(entry) = hit
            && keys.verifying.contains_key(&entry.kid)
        {
            check_claims(&entry.claims, issuer, now)?;
            return Ok(entry.claims.clone());
        }
        let claims = verify(keys, token, issuer, now)?;
        if let Some(kid) = jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid) {
            let mut entries = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            if entries.len() >= MAX_VERIFIED_TOKENS {
                entries.clear();
            }
            entries.insert(
                key,
                Arc::new(VerifiedToken {
                    kid,
                    claims: claims.clone(),
                }),
            );
        }
        Ok(claims)
    }

    pub fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod verified_signature_tests {
    use super::*;
    use crate::auth::keys::snapshot_for_tests;

    fn claims(now: DateTime<Utc>) -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "https://id.example".into(),
            sub: "p1".into(),
            aud: "billing".into(),
            exp: now.timestamp() + 300,
            iat: now.timestamp(),
            nbf: Some(now.timestamp()),
            jti: "j1".into(),
            client_id: "billing".into(),
            scope: "a".into(),
            principal_kind: "service".into(),
            name: "billing".into(),
            act: None,
            root_jti: None,
            amr: None,
            acr: None,
        }
    }

    #[test]
    fn a_token_checked_once_is_known_and_still_checked_at_each_use() {
        let now = Utc::now();
        let keys = snapshot_for_tests("k1", now);
        let issuer = Issuer::new("https://id.example");
        let token = sign(&keys, &claims(now)).unwrap();
        let cache = VerifiedSignatures::new();
        assert_eq!(cache.verify(&keys, &token, &issuer, now).unwrap(), claims(now));
        assert_eq!(cache.len(), 1);
        // A hit: the same claims, and `exp` still judged at each use.
        assert_eq!(cache.verify(&keys, &token, &issuer, now).unwrap(), claims(now));
        assert_eq!(cache.len(), 1);
        let later = now + chrono::Duration::seconds(301);
        assert_eq!(cache.verify(&keys, &token, &issuer, later), Err(VerifyError::Expired));
        assert_eq!(
            cache.verify(&keys, &token, &Issuer::new("https://other.example"), now),
            Err(VerifyError::WrongIssuer)
        );
        // Another token is never a hit: a changed signature fails in full.
        let mut forged = token.clone();
        forged.pop();
        forged.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(cache.verify(&keys, &forged, &issuer, now).is_err());
        // Its key left service: the remembered token is refused at once.
        let mut retired = snapshot_for_tests("k2", now);
        retired.active = None;
        assert_eq!(
            cache.verify(&retired, &token, &issuer, now),
            Err(VerifyError::UnknownKey)
        );
    }
}
