//! Client authentication shared by the token, introspection and revocation
//! endpoints (RFC 6749 §2.3). Failures are audited with the reason; the client
//! only ever sees `invalid_client`.

use chrono::{DateTime, Utc};

use super::OAuthContext;
use super::error::OAuthError;
use super::request::ClientCredentials;
use crate::auth::client::{self, AuthenticatedClient};
use crate::auth::secrets::Pepper;
use crate::auth::throttle;
use crate::auth::verified::{Key, VerifiedClients};
use crate::db::DbConnection;
use crate::models::audit::{NewAuditEvent, Outcome};
use crate::models::client_settings::{self, ClientSettings};
use crate::models::principal::{self, PrincipalKind};

/// Characters of an unknown `client_id` kept in the audit log.
const UNKNOWN_CLIENT_PREFIX: usize = 8;

/// How a failed `client_id` is recorded. One that names a principal is kept
/// (it is a name, and its row is linked); one that names nobody may be a
/// secret sent in the wrong field, so only a short prefix (printable ASCII)
/// and a keyed hash, enough to group attempts, are kept.
fn audited_client_id(pepper: &Pepper, client_id: &str, known: bool) -> serde_json::Value {
    if known {
        return serde_json::json!({ "client_id": client_id });
    }
    let prefix: String = client_id
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(UNKNOWN_CLIENT_PREFIX)
        .collect();
    serde_json::json!({ "client_id_prefix": prefix, "client_id_hash": audit_hash(pepper, "audit-client-id", client_id) })
}

/// A short keyed hash of a value the audit log must not keep in clear (a
/// name that names nobody may be a secret typed into the wrong field):
/// enough to group attempts, never the value itself.
pub(super) fn audit_hash(pepper: &Pepper, purpose: &str, value: &str) -> String {
    let mut hash = pepper.mac_hex(format!("{purpose}:{value}").as_bytes());
    hash.truncate(16);
    hash
}

/// Audit a failed client authentication and answer `invalid_client`. The
/// audit row is written outside any transaction, so it stays.
fn refuse(
    conn: &mut DbConnection,
    ctx: &OAuthContext,
    remote: Option<&str>,
    now: DateTime<Utc>,
    principal: Option<&str>,
    client_id: &str,
    reason: &str,
) -> OAuthError {
    let recorded = ctx.failures.record(
        conn,
        NewAuditEvent::new("login.client", Outcome::Failed)
            .principal(principal)
            .remote(remote)
            .reason(reason)
            .details(audited_client_id(&ctx.pepper, client_id, principal.is_some())),
        now,
    );
    match recorded {
        Ok(()) => OAuthError::invalid_client(),
        Err(e) => e.into(),
    }
}

/// The client, when the exact `client_id` and secret presented were
/// verified recently (see [`crate::auth::verified`]): no database needed.
/// A hit counts a use of the secret, as a database check does.
pub fn recently_verified(
    ctx: &OAuthContext,
    now: DateTime<Utc>,
    creds: &ClientCredentials,
) -> Option<AuthenticatedClient> {
    let (client_id, secret) = creds.presented_secret()?;
    cached(ctx, now, &VerifiedClients::key(&ctx.pepper, client_id, secret))
}

fn cached(ctx: &OAuthContext, now: DateTime<Utc>, key: &Key) -> Option<AuthenticatedClient> {
    let hit = ctx.verified.get(key, now)?;
    ctx.usage.record(&hit.secret_id, now);
    Some(hit)
}

/// Authenticate a presented secret; `None` when no secret was presented.
/// A success counts a use of the secret, written by the background tick,
/// and is remembered for the next request of the same client.
pub fn authenticate(
    conn: &mut DbConnection,
    ctx: &OAuthContext,
    remote: Option<&str>,
    now: DateTime<Utc>,
    creds: &ClientCredentials,
) -> Result<Option<AuthenticatedClient>, OAuthError> {
    let Some((client_id, secret)) = creds.presented_secret() else {
        return Ok(None);
    };
    let key = VerifiedClients::key(&ctx.pepper, client_id, secret);
    if let Some(hit) = cached(ctx, now, &key) {
        return Ok(Some(hit));
    }
    let epoch = ctx.verified.epoch();
    // Guessing a client's secret is throttled like a password, per (client,
    // network), per network and per client; checked before the secret is.
    let keys = throttle::Keys::new(&ctx.pepper, &format!("client:{client_id}"), remote);
    let rows = throttle::load(conn, &keys)?;
    if let Some(retry_after) = throttle::retry_after_secs(&rows, now) {
        // Whose secret is being guessed, recorded as a failed client_id is.
        let target = principal::find_by_name(conn, client_id)?;
        let mut details = audited_client_id(&ctx.pepper, client_id, target.is_some());
        details["retry_after"] = retry_after.into();
        ctx.failures.record(
            conn,
            NewAuditEvent::new("login.throttled", Outcome::Failed)
                .principal(target.as_ref().map(|p| p.id.as_str()))
                .remote(remote)
                .reason("too many failed client authentications")
                .details(details),
            now,
        )?;
        return Err(OAuthError::Throttled { retry_after });
    }
    match client::authenticate(conn, &ctx.pepper, client_id, secret, now)? {
        Ok(c) => {
            ctx.usage.record(&c.secret_id, now);
            throttle::record_success(conn, &keys, &rows)?;
            ctx.verified.insert(key, c.clone(), epoch);
            Ok(Some(c))
        }
        Err((failure, principal)) => {
            let subject = principal.as_ref().map(|p| p.id.as_str());
            if let Err(e) = throttle::record_failure(conn, &keys, subject, &ctx.throttle, now) {
                return Err(e.into());
            }
            Err(refuse(conn, ctx, remote, now, subject, client_id, failure.reason()))
        }
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
    ctx: &OAuthContext,
    remote: Option<&str>,
    now: DateTime<Utc>,
    creds: &ClientCredentials,
) -> Result<Client, OAuthError> {
    match creds {
        ClientCredentials::None => Ok(Client::None),
        ClientCredentials::IdOnly(id) => match principal::find_by_name(conn, id)? {
            Some(p) if p.kind == PrincipalKind::Service && p.is_active() => Ok(Client::Public(p.name)),
            found => Err(refuse(
                conn,
                ctx,
                remote,
                now,
                found.as_ref().map(|p| p.id.as_str()),
                id,
                "client_id is not an active service",
            )),
        },
        _ => Ok(match authenticate(conn, ctx, remote, now, creds)? {
            Some(c) => Client::Confidential(c.principal.name),
            None => Client::None,
        }),
    }
}

/// The active service `name` with its browser-login settings, if it has any.
pub(crate) fn login_client(
    conn: &mut DbConnection,
    name: &str,
) -> Result<Option<(principal::Principal, ClientSettings)>, crate::error::Error> {
    let Some(client) =
        principal::find_by_name(conn, name)?.filter(|p| p.kind == PrincipalKind::Service && p.is_active())
    else {
        return Ok(None);
    };
    Ok(client_settings::find(conn, &client.id)?.map(|s| (client, s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_client_ids_are_kept_as_a_prefix_and_a_keyed_hash() {
        let pepper = Pepper::from_bytes(b"0123456789abcdef0123456789abcdef").unwrap();
        let secret_in_wrong_field = "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1u";
        let v = audited_client_id(&pepper, secret_in_wrong_field, false);
        assert_eq!(v["client_id_prefix"], "Zm9vYmFy");
        assert_eq!(v["client_id_hash"].as_str().unwrap().len(), 16);
        assert!(v.get("client_id").is_none());
        assert!(!v.to_string().contains(&secret_in_wrong_field[8..]));
        // The same value hashes the same, so attempts can be grouped.
        assert_eq!(audited_client_id(&pepper, secret_in_wrong_field, false), v);
        assert_eq!(
            audited_client_id(&pepper, "line\nbreak\u{1b}[31m", false)["client_id_prefix"],
            "linebrea"
        );
        assert_eq!(
            audited_client_id(&pepper, "billing", true),
            serde_json::json!({"client_id": "billing"})
        );
    }
}
