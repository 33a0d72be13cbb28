//! Client authentication of service principals by client secret.

use chrono::{DateTime, Utc};

use crate::auth::secrets::{Pepper, SecretString, constant_time_eq};
use crate::db::DbConnection;
use crate::error::Result;
use crate::models::principal::{self, Principal, PrincipalKind};
use crate::models::secret;

/// Why a client could not be authenticated. Kept for the audit log; clients
/// only ever see `invalid_client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthFailure {
    UnknownClient,
    NotAService,
    Disabled,
    WrongSecret,
    ExpiredSecret,
}

impl ClientAuthFailure {
    pub fn reason(self) -> &'static str {
        match self {
            Self::UnknownClient => "unknown client",
            Self::NotAService => "principal is not a service",
            Self::Disabled => "principal is disabled",
            Self::WrongSecret => "wrong client secret",
            Self::ExpiredSecret => "client secret expired",
        }
    }
}

/// An authenticated service principal and the secret it used.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    pub principal: Principal,
    pub secret_id: String,
    /// When the secret it used expires.
    pub secret_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The scopes granted to it now.
    pub scopes: Vec<String>,
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
    Ok(Ok(AuthenticatedClient {
        principal: p,
        secret_id: found.id.clone(),
        secret_expires_at: found.expires_at,
        scopes,
    }))
}
