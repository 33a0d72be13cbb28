//! Client authentication of service principals: by client secret, and the
//! database's part of checking a client assertion (`private_key_jwt` and
//! workload identity federation).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::jwk::JwkSet;

use crate::auth::assertion::check_key_set;

use crate::auth::secrets::{Pepper, SecretString, constant_time_eq};
use crate::db::DbConnection;
use crate::error::{Error, Result};
use crate::models::client_key::{self, AuthMethod};
use crate::models::principal::{self, Principal, PrincipalKind};
use crate::models::{federation, secret};

/// Why a client could not be authenticated. Kept for the audit log; clients
/// only ever see `invalid_client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthFailure {
    UnknownClient,
    NotAService,
    Disabled,
    WrongSecret,
    ExpiredSecret,
    /// The service authenticates with `private_key_jwt` (or is public).
    NoSecrets,
}

impl ClientAuthFailure {
    pub fn reason(self) -> &'static str {
        match self {
            Self::UnknownClient => "unknown client",
            Self::NotAService => "principal is not a service",
            Self::Disabled => "principal is disabled",
            Self::WrongSecret => "wrong client secret",
            Self::ExpiredSecret => "client secret expired",
            Self::NoSecrets => "the client does not authenticate with a secret",
        }
    }
}

/// An authenticated service principal and the secret it used.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    pub principal: Principal,
    /// The secret it used; none for an assertion.
    pub secret_id: Option<String>,
    /// When the secret it used expires.
    pub secret_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The scopes granted to it now.
    pub scopes: Vec<String>,
    /// What it may exchange its callers' tokens for (RFC 8693), if anything.
    pub exchange: Option<crate::models::token_exchange::ExchangePolicy>,
}

/// Check `client_id` / `client_secret`. The presented secret is hashed with
/// the pepper and compared in constant time with each stored hash of that
/// service. This only reads: the caller records the use of the matched secret
/// (see [`crate::auth::usage`]), so that issuance needs no write per token.
pub fn authenticate(
    conn: &mut DbConnection,
    pepper: &Pepper,
    client_id: &str,
    client_secret: &SecretString,
    now: DateTime<Utc>,
) -> Result<std::result::Result<AuthenticatedClient, (ClientAuthFailure, Option<Principal>)>> {
    let presented = pepper.hash_client_secret(client_secret);
    let Some(p) = principal::find_by_name(conn, client_id)? else {
        return Ok(Err((ClientAuthFailure::UnknownClient, None)));
    };
    if p.kind != PrincipalKind::Service {
        return Ok(Err((ClientAuthFailure::NotAService, Some(p))));
    }
    if client_key::find(conn, &p.id)?.is_some_and(|k| !k.auth_method.uses_secret()) {
        return Ok(Err((ClientAuthFailure::NoSecrets, Some(p))));
    }
    let secrets = secret::list_for(conn, &p.id)?;
    // Compare against every stored hash, without stopping early.
    let mut matched = None;
    for s in &secrets {
        if constant_time_eq(&s.secret_hash, &presented) && matched.is_none() {
            matched = Some(s);
        }
    }
    let Some(found) = matched else {
        return Ok(Err((ClientAuthFailure::WrongSecret, Some(p))));
    };
    if found.is_expired(now) {
        return Ok(Err((ClientAuthFailure::ExpiredSecret, Some(p))));
    }
    if !p.is_active() {
        return Ok(Err((ClientAuthFailure::Disabled, Some(p))));
    }
    let scopes = principal::scopes_of(conn, &p.id)?;
    let exchange = crate::models::token_exchange::find(conn, &p.id)?;
    Ok(Ok(AuthenticatedClient {
        principal: p,
        secret_id: Some(found.id.clone()),
        secret_expires_at: found.expires_at,
        scopes,
        exchange,
    }))
}

/// Where the public keys that verify an assertion come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A JWK Set stored with the client or issuer.
    Inline(Arc<JwkSet>),
    /// A `jwks_uri`, fetched under the outbound policy.
    Remote(String),
}

/// How assertions that claim to come from an `iss` are verified, as stored.
#[derive(Debug, Clone)]
pub enum Asserter {
    /// A service with `private_key_jwt`: its own assertions (RFC 7523 §2.2).
    Client { principal_id: String, keys: KeySource },
    /// A trusted issuer of workload identities (Kubernetes, SPIFFE, CI).
    Issuer {
        id: String,
        audience: String,
        max_lifetime: Duration,
        keys: KeySource,
    },
}

fn key_source(jwks: Option<String>, jwks_uri: Option<String>) -> Result<Option<KeySource>> {
    if let Some(jwks) = jwks {
        let value: serde_json::Value =
            serde_json::from_str(&jwks).map_err(|e| Error::internal(format!("a stored JWK Set: {e}")))?;
        let set = check_key_set(&value).map_err(|e| Error::internal(format!("a stored JWK Set: {e}")))?;
        return Ok(Some(KeySource::Inline(Arc::new(set))));
    }
    Ok(jwks_uri.map(KeySource::Remote))
}

/// Who verifies assertions from `iss`: a trusted issuer of that identifier,
/// else a service of that name with `private_key_jwt` and keys; `None` for anyone else.
pub fn asserter(conn: &mut DbConnection, iss: &str) -> Result<Option<Asserter>> {
    if let Some(issuer) = federation::find_by_issuer(conn, iss)? {
        return Ok(key_source(issuer.jwks, issuer.jwks_uri)?.map(|keys| Asserter::Issuer {
            id: issuer.id,
            audience: issuer.audience,
            max_lifetime: Duration::seconds(i64::from(issuer.max_lifetime_secs)),
            keys,
        }));
    }
    let Some(p) = principal::find_by_name(conn, iss)?.filter(|p| p.kind == PrincipalKind::Service) else {
        return Ok(None);
    };
    let Some(row) = client_key::find(conn, &p.id)?.filter(|k| k.auth_method == AuthMethod::PrivateKeyJwt) else {
        return Ok(None);
    };
    Ok(key_source(row.jwks, row.jwks_uri)?.map(|keys| Asserter::Client {
        principal_id: p.id,
        keys,
    }))
}

/// An assertion whose signature and claims were verified in memory: what
/// the database must still confirm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asserted {
    /// A client's own assertion: used once, until `exp`.
    Key {
        principal_id: String,
        jti: String,
        exp: DateTime<Utc>,
    },
    /// A token of a trusted issuer, for the service its subject stands for.
    Federated { issuer_id: String, subject: String },
}

/// Why the database refused a verified assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AssertionFailure {
    #[error("the client assertion was used before (its jti is spent)")]
    Replayed,
    #[error("the token's subject stands for no service")]
    UnmappedSubject,
    #[error("the client does not authenticate with private_key_jwt")]
    NotPrivateKeyJwt,
    #[error("the client is not an active service")]
    Inactive,
    #[error("client_id does not match the client assertion")]
    ClientIdMismatch,
}

/// Confirm a verified assertion against the database at `now`: the service
/// it stands for is active and still set up for it, `client_id` (if sent)
/// names it, and a client's own assertion was never used before (the
/// `jti` is spent here, once, for every instance). Federated tokens are
/// not spent: platforms hand out one token and reuse it until it expires.
pub fn authenticate_asserted(
    conn: &mut DbConnection,
    asserted: &Asserted,
    client_id: Option<&str>,
    _now: DateTime<Utc>,
) -> Result<std::result::Result<AuthenticatedClient, (AssertionFailure, Option<Principal>)>> {
    let principal_id = match asserted {
        Asserted::Key { principal_id, .. } => principal_id.clone(),
        Asserted::Federated { issuer_id, subject } => match federation::principal_for(conn, issuer_id, subject)? {
            Some(id) => id,
            None => return Ok(Err((AssertionFailure::UnmappedSubject, None))),
        },
    };
    let Some(p) = principal::find_by_id(conn, &principal_id)? else {
        return Ok(Err((AssertionFailure::UnmappedSubject, None)));
    };
    if p.kind != PrincipalKind::Service || !p.is_active() {
        return Ok(Err((AssertionFailure::Inactive, Some(p))));
    }
    if client_id.is_some_and(|id| id != p.name) {
        return Ok(Err((AssertionFailure::ClientIdMismatch, Some(p))));
    }
    if let Asserted::Key { jti, exp, .. } = asserted {
        if client_key::find(conn, &p.id)?.is_none_or(|k| k.auth_method != AuthMethod::PrivateKeyJwt) {
            return Ok(Err((AssertionFailure::NotPrivateKeyJwt, Some(p))));
        }
        if !client_key::use_jti(conn, &p.id, jti, *exp)? {
            return Ok(Err((AssertionFailure::Replayed, Some(p))));
        }
    }
    let scopes = principal::scopes_of(conn, &p.id)?;
    let exchange = crate::models::token_exchange::find(conn, &p.id)?;
    Ok(Ok(AuthenticatedClient {
        principal: p,
        secret_id: None,
        secret_expires_at: None,
        scopes,
        exchange,
    }))
}

/// A client assertion after the in-memory checks (signature and claims).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedAssertion {
    /// The `client_id` parameter, if sent.
    pub client_id: Option<String>,
    /// Whom the assertion claims to come from (its `iss`, or the
    /// `client_id` sent when it has none), for the throttle and the audit log.
    pub claimed: String,
    pub outcome: std::result::Result<Asserted, crate::auth::assertion::Refusal>,
}
