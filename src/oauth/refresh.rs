//! Refresh tokens (RFC 6749 §6): opaque, stored as keyed hashes, in families.
//! This module owns their storage, their rotation on use, and the revocation
//! of a whole family when a spent token comes back (RFC 6819 §5.2.2.3, RFC
//! 9700 §4.14.2).

use chrono::{DateTime, Utc};

use super::OAuthContext;
use super::client_auth::{self, Client};
use super::error::OAuthError;
use super::grants::{self, Grant};
use super::request::ClientCredentials;
use super::response::{TokenResponse, respond};
use crate::auth::secrets::{Pepper, SecretString, random_secret};
use crate::db::DbConnection;
use crate::error::Result;
use crate::models::audit::{self, NewAuditEvent, Outcome};
use crate::models::new_id;
use crate::models::principal;
use crate::models::refresh_token::{self, RefreshTokenRow};
use crate::names::Scopes;

/// Bytes of randomness in a refresh token.
const TOKEN_BYTES: usize = 32;

/// What every refused refresh token is told: nothing about why.
fn refused() -> OAuthError {
    OAuthError::invalid_grant("the refresh token is invalid, expired or revoked")
}

/// The keyed hash under which a refresh token is stored.
pub fn hash(pepper: &Pepper, token: &SecretString) -> String {
    pepper.mac_hex(format!("refresh-token:{}", token.expose()).as_bytes())
}

/// The stored row of a presented token, if it is one of ours.
pub fn find(conn: &mut DbConnection, pepper: &Pepper, token: &SecretString) -> Result<Option<RefreshTokenRow>> {
    refresh_token::find_by_hash(conn, &hash(pepper, token))
}

/// Issue and store a new refresh token for `grant` (of its subject): in
/// `family` (the family id and the original scope, when rotating), or in a
/// new family.
pub fn store(
    conn: &mut DbConnection,
    pepper: &Pepper,
    grant: &Grant,
    client: &Client,
    family: Option<(&str, &str)>,
    session_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<SecretString> {
    let token = random_secret(TOKEN_BYTES)?;
    let expires_at = grant.refresh_expires_at.unwrap_or(now);
    // A rotated token keeps the family and the scope of the original (§6).
    let (family_id, scope) = match family {
        Some((f, s)) => (f.to_string(), s.to_string()),
        None => (new_id(), grant.scopes.join(" ")),
    };
    refresh_token::insert(
        conn,
        &RefreshTokenRow {
            id: new_id(),
            family_id,
            principal_id: grant.claims.sub.clone(),
            client_id: client.name().map(str::to_string),
            client_confidential: matches!(client, Client::Confidential(_)),
            token_hash: hash(pepper, &token),
            scope,
            audience: grant.claims.aud.single().unwrap_or_default().to_string(),
            created_at: now,
            expires_at,
            used_at: None,
            revoked_at: None,
            session_id: session_id.map(str::to_string),
            amr: grant.claims.amr.as_ref().map(|names| names.join(" ")),
        },
    )?;
    Ok(token)
}

/// Revoke the family of `row` (RFC 7009 §2.1: revoking a refresh token
/// revokes its family). Returns how many tokens were revoked.
pub fn revoke_family(conn: &mut DbConnection, row: &RefreshTokenRow, now: DateTime<Utc>) -> Result<usize> {
    refresh_token::revoke_family(conn, &row.family_id, now)
}

/// The outcome of a rotation, decided inside its transaction. A detected
/// reuse must commit (the family revocation and its audit row), so it is an
/// outcome here and becomes the client's error only after the commit.
enum Rotation {
    Issued(Box<TokenResponse>),
    ReuseDetected,
}

/// A spent token was presented: revoke its family and audit it.
fn reuse_detected(
    conn: &mut DbConnection,
    row: &RefreshTokenRow,
    remote: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Rotation> {
    let revoked = revoke_family(conn, row, now)?;
    audit::record(
        conn,
        NewAuditEvent::new("token.refresh_reused", Outcome::Failed)
            .principal(Some(&row.principal_id))
            .remote(remote)
            .reason("a spent refresh token was presented: its family is revoked")
            .details(serde_json::json!({"family_id": row.family_id, "revoked": revoked})),
        now,
    )?;
    Ok(Rotation::ReuseDetected)
}

/// RFC 6749 §6, with rotation: the presented token is spent, a new one is
/// issued in the same family, and the access token is signed before the
/// commit, so a failure anywhere leaves the presented token unspent.
pub(super) async fn refresh_token(
    ctx: &OAuthContext,
    creds: ClientCredentials,
    token: SecretString,
    scope: Option<Scopes>,
    remote: Option<String>,
    now: DateTime<Utc>,
) -> Result<TokenResponse, OAuthError> {
    let (oauth, cfg) = (ctx.clone(), ctx.token.clone());
    let keys = ctx.keys.current();
    let rotation = ctx
        .db
        .run(move |conn| {
            let client = client_auth::identify(conn, &oauth, remote.as_deref(), now, &creds)?;
            let pepper = &oauth.pepper;
            let hash = hash(pepper, &token);
            crate::db::transaction(conn, |conn| {
                let row = refresh_token::find_by_hash(conn, &hash)?.ok_or_else(refused)?;
                if row.is_spent() {
                    return Ok(reuse_detected(conn, &row, remote.as_deref(), now)?);
                }
                let user = principal::find_by_id(conn, &row.principal_id)?.ok_or_else(refused)?;
                let granted = principal::scopes_of(conn, &user.id)?;
                let grant = grants::refresh(
                    &row,
                    &user,
                    &granted,
                    &client,
                    scope.as_ref(),
                    grants::Issued {
                        cfg: &cfg,
                        now,
                        jti: new_id(),
                    },
                )?;
                if !refresh_token::mark_used(conn, &row.id, now)? {
                    // Spent by a concurrent request between our read and write.
                    return Ok(reuse_detected(conn, &row, remote.as_deref(), now)?);
                }
                // The family keeps its client, authenticated as before.
                let next = store(
                    conn,
                    pepper,
                    &grant,
                    &client,
                    Some((&row.family_id, &row.scope)),
                    row.session_id.as_deref(),
                    now,
                )?;
                Ok::<_, OAuthError>(Rotation::Issued(Box::new(respond(&keys, &grant, Some(next))?)))
            })
        })
        .await?;
    match rotation {
        Rotation::Issued(response) => Ok(*response),
        Rotation::ReuseDetected => Err(refused()),
    }
}
