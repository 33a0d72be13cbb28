//! Client authentication shared by the token, introspection and revocation
//! endpoints (RFC 6749 §2.3). Failures are audited with the reason; the client
//! only ever sees `invalid_client`.

use chrono::{DateTime, Utc};

use super::error::OAuthError;
use super::request::ClientCredentials;
use crate::auth::client::{self, AuthenticatedClient};
use crate::auth::secrets::Pepper;
use crate::auth::usage::{self, UsageRecorder};
use crate::db::DbConnection;
use crate::error::Result;
use crate::models::audit::{self, NewAuditEvent, Outcome};
use crate::models::principal::{self, PrincipalKind};

/// The outcome of a check inside a database closure: the outer `Result` is a
/// storage failure, the inner one what the client is told.
pub type Checked<T> = std::result::Result<T, OAuthError>;

/// Unwrap a `Result<Checked<T>>` inside a closure that returns one: a storage
/// error propagates with `?`, an OAuth error is returned as the answer.
macro_rules! checked {
    ($e:expr) => {
        match $e? {
            Ok(v) => v,
            Err(oauth) => return Ok(Err(oauth)),
        }
    };
}
pub(crate) use checked;

/// Audit a failed client authentication; the client only sees `invalid_client`.
fn refuse(
    conn: &mut DbConnection,
    principal: Option<&str>,
    client_id: &str,
    reason: &str,
    remote: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Checked<Option<AuthenticatedClient>>> {
    audit::record(
        conn,
        NewAuditEvent::new("login.client", Outcome::Failed)
            .principal(principal)
            .remote(remote)
            .reason(reason)
            .details(serde_json::json!({ "client_id": client_id })),
        now,
    )?;
    Ok(Err(OAuthError::invalid_client()))
}

/// Authenticate a presented secret. `Ok(Ok(None))` when no secret was presented.
/// A success counts a use of the secret in `usage`, written in batches.
pub fn authenticate(
    conn: &mut DbConnection,
    pepper: &Pepper,
    usage: &UsageRecorder,
    creds: &ClientCredentials,
    remote: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Checked<Option<AuthenticatedClient>>> {
    let Some((client_id, secret)) = creds.presented_secret() else {
        return Ok(Ok(None));
    };
    match client::authenticate(conn, pepper, client_id, secret, now)? {
        Ok(c) => {
            if let Some(batch) = usage.record(&c.secret_id, now)
                && let Err(e) = usage::apply(conn, &batch)
            {
                tracing::warn!(error = %e, "could not record client secret use");
            }
            Ok(Ok(Some(c)))
        }
        Err((failure, principal)) => refuse(
            conn,
            principal.as_ref().map(|p| p.id.as_str()),
            client_id,
            failure.reason(),
            remote,
            now,
        ),
    }
}

/// Authenticate when a secret is presented, or accept a bare `client_id` that
/// names an active service (a public client acting for a person).
/// Returns the client's name, or `None` when the request names no client.
pub fn identify(
    conn: &mut DbConnection,
    pepper: &Pepper,
    usage: &UsageRecorder,
    creds: &ClientCredentials,
    remote: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Checked<Option<String>>> {
    match creds {
        ClientCredentials::None => Ok(Ok(None)),
        ClientCredentials::IdOnly(id) => match principal::find_by_name(conn, id)? {
            Some(p) if p.kind == PrincipalKind::Service.as_str() && p.is_active() => Ok(Ok(Some(p.name))),
            found => Ok(refuse(
                conn,
                found.as_ref().map(|p| p.id.as_str()),
                id,
                "client_id is not an active service",
                remote,
                now,
            )?
            .map(|_| None)),
        },
        _ => Ok(authenticate(conn, pepper, usage, creds, remote, now)?.map(|c| c.map(|c| c.principal.name))),
    }
}
