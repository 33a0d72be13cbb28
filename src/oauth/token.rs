//! The token endpoint (RFC 6749 §3.2): load what a grant needs, check secrets
//! and passwords on their pools, run the pure grant, store and sign.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::client_auth::{self, Checked, checked};
use super::error::{ErrorCode, OAuthError};
use super::grants::{self, Audience, Grant};
use super::request::{ClientCredentials, TokenRequest};
use crate::auth::jwt;
use crate::auth::password;
use crate::auth::secrets::{Pepper, SecretString, random_token};
use crate::db::DbConnection;
use crate::error::Error;
use crate::models::audit::{self, NewAuditEvent, Outcome};
use crate::models::principal::{self, Principal, PrincipalKind};
use crate::models::refresh_token::{self, RefreshTokenRow};
use crate::models::{new_id, to_db_time};
use crate::principals;
use crate::state::AppState;

/// RFC 6749 §5.1: the successful response.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// Bytes of randomness in a refresh token.
const REFRESH_TOKEN_BYTES: usize = 32;

/// The keyed hash under which a refresh token is stored.
pub fn refresh_token_hash(pepper: &Pepper, token: &SecretString) -> String {
    pepper.mac_hex(format!("refresh-token:{}", token.expose()).as_bytes())
}

/// Handle one token request.
pub async fn exchange(
    state: &AppState,
    request: TokenRequest,
    creds: ClientCredentials,
    remote: Option<String>,
) -> Result<TokenResponse, OAuthError> {
    let (grant, refresh) = match request {
        TokenRequest::ClientCredentials { scope, resource } => {
            (client_credentials(state, creds, scope, resource, remote).await?, None)
        }
        TokenRequest::Password {
            username,
            password,
            scope,
            resource,
        } => password_grant(state, creds, username, password, scope, resource, remote).await?,
        TokenRequest::RefreshToken { refresh_token, scope } => {
            refresh_grant(state, creds, refresh_token, scope, remote).await?
        }
    };
    let keys = state.keys().await?;
    let access_token = jwt::sign(&keys, &grant.claims).map_err(|e| {
        tracing::error!(error = %e, "cannot sign an access token");
        OAuthError::new(ErrorCode::ServerError, "internal error")
    })?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: grant.claims.exp - grant.claims.iat,
        scope: grant.scopes.join(" "),
        refresh_token: refresh.map(|r: SecretString| r.expose().to_string()),
    })
}

fn resolve_resource(
    conn: &mut DbConnection,
    resource: Option<&str>,
) -> crate::error::Result<Checked<Option<Principal>>> {
    let Some(name) = resource else { return Ok(Ok(None)) };
    match principal::find_by_name(conn, name)? {
        Some(p) if p.kind == PrincipalKind::Service.as_str() && p.is_active() => Ok(Ok(Some(p))),
        _ => Ok(Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            format!("resource '{name}' is not a registered service"),
        ))),
    }
}

fn audience(target: &Option<Principal>) -> Audience<'_> {
    match target {
        Some(p) => Audience::Service(p),
        None => Audience::Roster,
    }
}

/// RFC 6749 §4.4.
async fn client_credentials(
    state: &AppState,
    creds: ClientCredentials,
    scope: Option<String>,
    resource: Option<String>,
    remote: Option<String>,
) -> Result<Grant, OAuthError> {
    let pepper = state.pepper().clone();
    let usage = state.usage();
    let cfg = state.settings().token.clone();
    let now = state.now();
    state
        .db(move |conn| {
            let Some(client) = checked!(client_auth::authenticate(
                conn,
                &pepper,
                &usage,
                &creds,
                remote.as_deref(),
                now
            )) else {
                return Ok(Err(OAuthError::invalid_client()));
            };
            let granted = principal::scopes_of(conn, &client.principal.id)?;
            let target = checked!(resolve_resource(conn, resource.as_deref()));
            Ok(grants::client_credentials(
                &client.principal,
                &granted,
                scope.as_deref(),
                audience(&target),
                &cfg,
                now,
                new_id(),
            ))
        })
        .await?
}

struct PasswordLogin {
    client: Option<String>,
    user: Option<Principal>,
    phc: Option<String>,
    granted: Vec<String>,
    target: Option<Principal>,
}

/// RFC 6749 §4.3. An unknown user and a wrong password are the same error and
/// cost the same argon2 work.
async fn password_grant(
    state: &AppState,
    creds: ClientCredentials,
    username: String,
    password: SecretString,
    scope: Option<String>,
    resource: Option<String>,
    remote: Option<String>,
) -> Result<(Grant, Option<SecretString>), OAuthError> {
    let pepper = state.pepper().clone();
    let usage = state.usage();
    let now = state.now();
    let remote_for_load = remote.clone();
    let login = state
        .db(move |conn| {
            let client = checked!(client_auth::identify(
                conn,
                &pepper,
                &usage,
                &creds,
                remote_for_load.as_deref(),
                now
            ));
            let target = checked!(resolve_resource(conn, resource.as_deref()));
            let user = principal::find_by_name(conn, &username)?;
            let (phc, granted) = match &user {
                Some(u) if u.kind == PrincipalKind::Human.as_str() => (
                    principals::password_hash_of(conn, &u.id)?,
                    principal::scopes_of(conn, &u.id)?,
                ),
                _ => (None, Vec::new()),
            };
            Ok(Ok(PasswordLogin {
                client,
                user,
                phc,
                granted,
                target,
            }))
        })
        .await??;

    let phc = login.phc.clone();
    let verified = state
        .argon(move || match phc {
            Some(phc) => password::verify_password(&password, &phc),
            None => {
                password::dummy_verify(&password);
                false
            }
        })
        .await?;

    let cfg = state.settings().token.clone();
    let pepper = state.pepper().clone();
    state
        .db(move |conn| {
            let failure = match &login.user {
                None => Some("unknown user"),
                Some(u) if u.kind != PrincipalKind::Human.as_str() => Some("principal is not a human"),
                Some(_) if !verified => Some("wrong password"),
                Some(u) if !u.is_active() => Some("principal is disabled"),
                Some(_) => None,
            };
            let user = match (&login.user, failure) {
                (Some(u), None) => u,
                (user, reason) => {
                    audit::record(
                        conn,
                        NewAuditEvent::new("login.password", Outcome::Failed)
                            .principal(user.as_ref().map(|u| u.id.as_str()))
                            .remote(remote.as_deref())
                            .reason(reason.unwrap_or("login refused")),
                        now,
                    )?;
                    return Ok(Err(OAuthError::invalid_grant("invalid username or password")));
                }
            };
            let grant = match grants::password(
                user,
                &login.granted,
                login.client.as_deref(),
                scope.as_deref(),
                audience(&login.target),
                &cfg,
                now,
                new_id(),
            ) {
                Ok(g) => g,
                Err(e) => return Ok(Err(e)),
            };
            crate::db::transaction(conn, |conn| {
                let refresh = store_refresh_token(conn, &pepper, user, &grant, login.client.as_deref(), None, now)?;
                audit::record(
                    conn,
                    NewAuditEvent::new("login.password", Outcome::Ok)
                        .principal(Some(&user.id))
                        .remote(remote.as_deref())
                        .details(serde_json::json!({"client_id": login.client, "scope": grant.scopes})),
                    now,
                )?;
                Ok::<_, Error>(Ok((grant.clone(), Some(refresh))))
            })
        })
        .await?
}

/// Issue a new refresh token in `family` (a new family when `None`).
fn store_refresh_token(
    conn: &mut DbConnection,
    pepper: &Pepper,
    user: &Principal,
    grant: &Grant,
    client: Option<&str>,
    family: Option<(&str, &str)>,
    now: DateTime<Utc>,
) -> crate::error::Result<SecretString> {
    let token = SecretString::new(random_token(REFRESH_TOKEN_BYTES).map_err(|_| Error::internal("random token"))?);
    let expires_at = grant.refresh_expires_at.unwrap_or(now);
    // A rotated token keeps the family and the scope of the original (RFC 6749 §6).
    let (family_id, scope) = match family {
        Some((f, s)) => (f.to_string(), s.to_string()),
        None => (new_id(), grant.scopes.join(" ")),
    };
    refresh_token::insert(
        conn,
        &RefreshTokenRow {
            id: new_id(),
            family_id,
            principal_id: user.id.clone(),
            client_id: client.map(str::to_string),
            token_hash: refresh_token_hash(pepper, &token),
            scope,
            audience: grant.claims.aud.clone(),
            created_at: to_db_time(now),
            expires_at: to_db_time(expires_at),
            used_at: None,
            revoked_at: None,
        },
    )?;
    Ok(token)
}

fn reuse_detected(
    conn: &mut DbConnection,
    row: &RefreshTokenRow,
    remote: Option<&str>,
    now: DateTime<Utc>,
) -> crate::error::Result<Checked<(Grant, Option<SecretString>)>> {
    let revoked = refresh_token::revoke_family(conn, &row.family_id, now)?;
    audit::record(
        conn,
        NewAuditEvent::new("token.refresh_reused", Outcome::Failed)
            .principal(Some(&row.principal_id))
            .remote(remote)
            .reason("a spent refresh token was presented: its family is revoked")
            .details(serde_json::json!({"family_id": row.family_id, "revoked": revoked})),
        now,
    )?;
    Ok(Err(OAuthError::invalid_grant(
        "the refresh token is invalid, expired or revoked",
    )))
}

/// RFC 6749 §6, with rotation: the presented token is spent, a new one is
/// issued in the same family, and presenting a spent token revokes the family
/// (RFC 6819 §5.2.2.3).
async fn refresh_grant(
    state: &AppState,
    creds: ClientCredentials,
    token: SecretString,
    scope: Option<String>,
    remote: Option<String>,
) -> Result<(Grant, Option<SecretString>), OAuthError> {
    let pepper = state.pepper().clone();
    let usage = state.usage();
    let cfg = state.settings().token.clone();
    let now = state.now();
    state
        .db(move |conn| {
            let client = checked!(client_auth::identify(
                conn,
                &pepper,
                &usage,
                &creds,
                remote.as_deref(),
                now
            ));
            let hash = refresh_token_hash(&pepper, &token);
            crate::db::transaction(conn, |conn| {
                let Some(row) = refresh_token::find_by_hash(conn, &hash)? else {
                    return Ok(Err(OAuthError::invalid_grant(
                        "the refresh token is invalid, expired or revoked",
                    )));
                };
                if row.is_spent() {
                    return reuse_detected(conn, &row, remote.as_deref(), now);
                }
                let Some(user) = principal::find_by_id(conn, &row.principal_id)? else {
                    return Ok(Err(OAuthError::invalid_grant(
                        "the refresh token is invalid, expired or revoked",
                    )));
                };
                let granted = principal::scopes_of(conn, &user.id)?;
                let grant = match grants::refresh(
                    &row,
                    &user,
                    &granted,
                    client.as_deref(),
                    scope.as_deref(),
                    &cfg,
                    now,
                    new_id(),
                ) {
                    Ok(g) => g,
                    Err(e) => return Ok(Err(e)),
                };
                if !refresh_token::mark_used(conn, &row.id, now)? {
                    // Spent by a concurrent request between our read and write.
                    return reuse_detected(conn, &row, remote.as_deref(), now);
                }
                let next = store_refresh_token(
                    conn,
                    &pepper,
                    &user,
                    &grant,
                    row.client_id.as_deref(),
                    Some((&row.family_id, &row.scope)),
                    now,
                )?;
                Ok(Ok((grant, Some(next))))
            })
        })
        .await?
}
