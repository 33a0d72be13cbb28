//! Client authentication shared by the token, introspection and revocation
//! endpoints (RFC 6749 §2.3). Failures are audited with the reason; the client
//! only ever sees `invalid_client`.

use chrono::{DateTime, Utc};

use super::error::OAuthError;
use super::request::ClientCredentials;
use crate::auth::client::{self, AuthenticatedClient};
use crate::auth::secrets::Pepper;
use crate::auth::usage::UsageRecorder;
use crate::db::DbConnection;
use crate::models::audit::{self, NewAuditEvent, Outcome};
use crate::models::principal::{self, PrincipalKind};

/// Audit a failed client authentication and answer `invalid_client`. The
/// audit row is written outside any transaction, so it stays.
fn refuse(
    conn: &mut DbConnection,
    principal: Option<&str>,
    client_id: &str,
    reason: &str,
    remote: Option<&str>,
    now: DateTime<Utc>,
) -> OAuthError {
    let recorded = audit::record(
        conn,
        NewAuditEvent::new("login.client", Outcome::Failed)
            .principal(principal)
            .remote(remote)
            .reason(reason)
            .details(serde_json::json!({ "client_id": client_id })),
        now,
    );
    match recorded {
        Ok(()) => OAuthError::invalid_client(),
        Err(e) => e.into(),
    }
}

/// Authenticate a presented secret; `None` when no secret was presented.
/// A success counts a use of the secret in `usage`, written by the background tick.
pub fn authenticate(
    conn: &mut DbConnection,
    pepper: &Pepper,
    usage: &UsageRecorder,
    creds: &ClientCredentials,
    remote: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<AuthenticatedClient>, OAuthError> {
    let Some((client_id, secret)) = creds.presented_secret() else {
        return Ok(None);
    };
    match client::authenticate(conn, pepper, client_id, secret, now)? {
        Ok(c) => {
            usage.record(&c.secret_id, now);
            Ok(Some(c))
        }
        Err((failure, principal)) => Err(refuse(
            conn,
            principal.as_ref().map(|p| p.id.as_str()),
            client_id,
            failure.reason(),
            remote,
            now,
        )),
    }
}

/// Who the client is, as far as the request says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Client {
    /// No client named: a person acting for themselves.
    None,
    /// A bare `client_id` naming an active service: a public client.
    Public(String),
    /// A service that proved its secret: a confidential client.
    Confidential(String),
}

impl Client {
    pub fn name(&self) -> Option<&str> {
        match self {
            Self::None => None,
            Self::Public(n) | Self::Confidential(n) => Some(n),
        }
    }
}

/// Authenticate when a secret is presented, or accept a bare `client_id` that
/// names an active service (a public client acting for a person).
pub fn identify(
    conn: &mut DbConnection,
    pepper: &Pepper,
    usage: &UsageRecorder,
    creds: &ClientCredentials,
    remote: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Client, OAuthError> {
    match creds {
        ClientCredentials::None => Ok(Client::None),
        ClientCredentials::IdOnly(id) => match principal::find_by_name(conn, id)? {
            Some(p) if p.kind == PrincipalKind::Service.as_str() && p.is_active() => Ok(Client::Public(p.name)),
            found => Err(refuse(
                conn,
                found.as_ref().map(|p| p.id.as_str()),
                id,
                "client_id is not an active service",
                remote,
                now,
            )),
        },
        _ => Ok(match authenticate(conn, pepper, usage, creds, remote, now)? {
            Some(c) => Client::Confidential(c.principal.name),
            None => Client::None,
        }),
    }
}
