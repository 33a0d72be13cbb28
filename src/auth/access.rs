//! Online verification of access tokens (RFC 6750 §2.1 bearer tokens on
//! Roster's own API, and RFC 7662 introspection): the signature and claims,
//! then the deny list and the principal's current status, so that a revoked
//! token or a disabled principal is refused at once.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::jwt::{self, AccessTokenClaims, Issuer, VerifiedSignatures};
use super::keys::KeyStore;
use crate::db::{DbConnection, Pool};
use crate::error::{Error, Result};
use crate::models::principal::{self, Principal};
use crate::models::revoked_token;
use crate::names::Scopes;

/// The scope that makes a principal an administrator.
pub const ADMIN_SCOPE: &str = "admin";

/// An authenticated caller of Roster's API.
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: AccessTokenClaims,
    pub principal: Principal,
    /// The scopes the principal holds now. A token never grants more than
    /// these: a demoted admin loses admin power at once, not at `exp`.
    pub granted: Vec<String>,
}

/// The one rule for what a token may do now: the scopes it carries that
/// its principal still holds (plus the OpenID scopes, which are nobody's to
/// hold). A demoted principal's old token loses the scope at once, in every
/// answer: the API's checks, `/api/v1/me` and both kinds of introspection.
pub fn effective_scopes(token: &Scopes, held: &[String]) -> Vec<String> {
    token
        .iter()
        .filter(|s| still_held(s, held))
        .map(str::to_string)
        .collect()
}

/// A scope a token carries still counts while its principal holds it; the
/// OpenID scopes always do.
fn still_held(scope: &str, held: &[String]) -> bool {
    held.iter().any(|h| h == scope) || crate::names::is_oidc_scope(scope)
}

/// An exchanged token (RFC 8693) carries authority delegated for a
/// purpose: it holds only while its subject still holds every scope it
/// carries. (A token of the subject's own just loses the scope.)
pub fn delegation_holds(claims: &AccessTokenClaims, held: &[String]) -> bool {
    claims.act.is_none() || Scopes::from_stored(&claims.scope).iter().all(|s| still_held(s, held))
}

impl Caller {
    /// The token carries `scope` and the principal still holds it.
    pub fn has_scope(&self, scope: &str) -> bool {
        Scopes::from_stored(&self.claims.scope).contains(scope) && still_held(scope, &self.granted)
    }

    /// The token's effective scopes ([`effective_scopes`]).
    pub fn scopes(&self) -> Vec<String> {
        effective_scopes(&Scopes::from_stored(&self.claims.scope), &self.granted)
    }

    pub fn is_admin(&self) -> bool {
        self.has_scope(ADMIN_SCOPE)
    }

    pub fn id(&self) -> &str {
        &self.principal.id
    }
}

/// Why a presented token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// Bad signature, wrong issuer or audience, expired, revoked, or its
    /// principal is gone or disabled: RFC 6750 §3.1 `invalid_token`.
    #[error("the access token is invalid, expired or revoked")]
    Invalid,
    /// The check itself could not run.
    #[error(transparent)]
    Storage(#[from] Error),
}

/// Is this verified access token still live: neither it nor (for an
/// exchanged token, RFC 8693) the token its chain started from is on the
/// deny list, its principal still exists and is active, and was not
/// disabled after the token was issued? Returns the principal when it is.
pub fn live(conn: &mut DbConnection, claims: &AccessTokenClaims) -> Result<Option<Principal>> {
    if revoked_token::is_revoked(conn, &claims.jti)?
        || (claims.root_jti.is_some() && revoked_token::is_revoked(conn, claims.root())?)
    {
        return Ok(None);
    }
    Ok(principal::find_by_id(conn, &claims.sub)?.filter(|p| p.is_active() && !p.killed_token(claims.iat)))
}

/// A token's signature and claims, checked against the keys in service.
enum Checked {
    Valid(Box<AccessTokenClaims>),
    Invalid,
    /// Signed with a `kid` this instance does not know, and the reload that
    /// might find it is rate-limited just now.
    KeyNotLoaded,
}

/// Check a token. A `kid` this instance does not know may belong to a key
/// another instance has just started to sign with: reload once
/// (rate-limited) before judging.
async fn check(
    db: &Pool,
    keys: &Arc<KeyStore>,
    signatures: &VerifiedSignatures,
    token: &str,
    issuer: &Issuer,
    now: DateTime<Utc>,
) -> Result<Checked> {
    match signatures.verify(&keys.current(), token, issuer, now) {
        Ok(claims) => Ok(Checked::Valid(Box::new(claims))),
        Err(jwt::VerifyError::UnknownKey) if keys.claim_unknown_kid_reload(now) => {
            let store = keys.clone();
            db.run(move |c| store.reload(c, now)).await?;
            Ok(signatures
                .verify(&keys.current(), token, issuer, now)
                .map_or(Checked::Invalid, |c| Checked::Valid(Box::new(c))))
        }
        Err(jwt::VerifyError::UnknownKey) => Ok(Checked::KeyNotLoaded),
        Err(_) => Ok(Checked::Invalid),
    }
}

/// Verify a token's signature and claims ([`check`]); anything but a valid
/// token is `invalid_token`.
pub async fn verify_reloading(
    db: &Pool,
    keys: &Arc<KeyStore>,
    signatures: &VerifiedSignatures,
    token: &str,
    issuer: &Issuer,
    now: DateTime<Utc>,
) -> std::result::Result<AccessTokenClaims, AccessError> {
    match check(db, keys, signatures, token, issuer, now)
        .await
        .map_err(AccessError::Storage)?
    {
        Checked::Valid(claims) => Ok(*claims),
        Checked::Invalid | Checked::KeyNotLoaded => Err(AccessError::Invalid),
    }
}

/// For revocation: the claims of a valid token, `None` for one that is not
/// an access token Roster signed. A token signed by a key this instance has
/// not loaded, when the reload is rate-limited just now, is
/// [`Error::Unavailable`] (503): answering 200 would tell its owner it was
/// revoked while nothing was.
pub async fn verify_for_revocation(
    db: &Pool,
    keys: &Arc<KeyStore>,
    signatures: &VerifiedSignatures,
    token: &str,
    issuer: &Issuer,
    now: DateTime<Utc>,
) -> Result<Option<AccessTokenClaims>> {
    match check(db, keys, signatures, token, issuer, now).await? {
        Checked::Valid(claims) => Ok(Some(*claims)),
        Checked::Invalid => Ok(None),
        Checked::KeyNotLoaded => Err(Error::Unavailable(
            "the token's signing key is not loaded yet; retry".into(),
        )),
    }
}

/// The claims of a valid token, `None` for an invalid one; a failed check
/// stays an error.
pub fn valid_or_none(r: std::result::Result<AccessTokenClaims, AccessError>) -> Result<Option<AccessTokenClaims>> {
    match r {
        Ok(c) => Ok(Some(c)),
        Err(AccessError::Invalid) => Ok(None),
        Err(AccessError::Storage(e)) => Err(e),
    }
}

/// Verify a token meant for Roster's own API: signature, `typ`, `iss`,
/// `exp`, audience Roster itself (the issuer), and liveness.
pub async fn verify(
    db: &Pool,
    keys: &Arc<KeyStore>,
    signatures: &VerifiedSignatures,
    token: &str,
    issuer: &Issuer,
    now: DateTime<Utc>,
) -> std::result::Result<Caller, AccessError> {
    let claims = verify_reloading(db, keys, signatures, token, issuer, now).await?;
    if !claims.aud.single().is_some_and(|aud| issuer.is(aud)) {
        return Err(AccessError::Invalid);
    }
    let checked = claims.clone();
    let (principal, granted) = db
        .run(move |conn| match live(conn, &checked)? {
            Some(p) => {
                let granted = principal::scopes_of(conn, &p.id)?;
                Ok::<_, Error>(Some((p, granted)))
            }
            None => Ok(None),
        })
        .await?
        .ok_or(AccessError::Invalid)?;
    Ok(Caller {
        claims,
        principal,
        granted,
    })
}
