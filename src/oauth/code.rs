//! Authorization codes (RFC 6749 §4.1.2, §4.1.3): issued for a login
//! session, used once within [`CODE_TTL`], bound to the client, the redirect
//! URI, the PKCE challenge and the nonce. A second use revokes the tokens the
//! first one issued (§4.1.2, RFC 9700 §4.5).

use chrono::{DateTime, Duration, Utc};

use super::authorization_request::AuthorizationRequest;
use super::client_auth::{self, Client};
use super::error::OAuthError;
use super::response::{TokenResponse, respond};
use super::session::LiveSession;
use super::{OAuthContext, grants, oidc, pkce, refresh};
use crate::auth::amr::Amr;
use crate::auth::secrets::{Pepper, SecretString, random_secret};
use crate::db::DbConnection;
use crate::error::{Error, Result};
use crate::models::audit::{self, NewAuditEvent, Outcome};
use crate::models::authorization_code::{self, AuthorizationCodeRow};
use crate::models::principal::{self, PrincipalKind};
use crate::models::{login_session, new_id, refresh_token, revoked_token};

/// How long a code lives (§4.1.2 recommends at most ten minutes; a browser
/// redirect takes a second).
pub const CODE_TTL: Duration = Duration::seconds(60);

/// How long a spent or expired code is remembered, so that a late second use
/// is still recognised as a replay.
pub const CODE_MEMORY: Duration = Duration::hours(1);

const CODE_BYTES: usize = 32;

fn hash(pepper: &Pepper, code: &SecretString) -> String {
    pepper.mac_hex(format!("authorization-code:{}", code.expose()).as_bytes())
}

/// Issue a code for `request` in `session`, carrying `scopes`.
pub fn issue(
    conn: &mut DbConnection,
    pepper: &Pepper,
    request: &AuthorizationRequest,
    session: &LiveSession,
    scopes: &[String],
    now: DateTime<Utc>,
) -> Result<SecretString> {
    let code = random_secret(CODE_BYTES)?;
    authorization_code::insert(
        conn,
        &AuthorizationCodeRow {
            code_hash: hash(pepper, &code),
            client_id: request.client_id.clone(),
            principal_id: session.person.id.clone(),
            session_id: session.row.id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            code_challenge: request.code_challenge.clone(),
            nonce: request.nonce.clone(),
            scope: scopes.join(" "),
            auth_time: session.row.auth_time,
            created_at: now,
            expires_at: now + CODE_TTL,
            used_at: None,
            refresh_family_id: None,
            access_jti: None,
            access_expires_at: None,
            amr: session.row.amr.clone(),
        },
    )?;
    Ok(code)
}

/// What every refused code is told.
fn refused() -> OAuthError {
    OAuthError::invalid_grant("the authorization code is invalid, expired or already used")
}

/// The parameters of §4.1.3, with `code_verifier` (RFC 7636 §4.5).
#[derive(Debug)]
pub struct CodeExchange {
    pub code: SecretString,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<SecretString>,
}

/// The outcome of an exchange, decided inside its transaction: a replay
/// must commit its revocations before the client is refused.
enum Exchanged {
    Issued(Box<TokenResponse>),
    Replayed,
}

/// A code came back a second time: revoke what its first use issued.
fn replayed(
    conn: &mut crate::db::Tx<'_>,
    row: &AuthorizationCodeRow,
    remote: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Exchanged> {
    let revoked_refresh = match &row.refresh_family_id {
        Some(family) => refresh_token::revoke_family(conn, family, now)?,
        None => 0,
    };
    if let (Some(jti), Some(exp)) = (&row.access_jti, row.access_expires_at) {
        revoked_token::insert(conn, jti, exp, now)?;
    }
    audit::record(
        conn,
        NewAuditEvent::new("code.reused", Outcome::Failed)
            .principal(Some(&row.principal_id))
            .remote(remote)
            .reason("an authorization code was used twice: the tokens of its first use are revoked")
            .details(serde_json::json!({
                "client_id": row.client_id,
                "refresh_tokens_revoked": revoked_refresh,
                "access_token_revoked": row.access_jti.is_some(),
            })),
        now,
    )?;
    Ok(Exchanged::Replayed)
}

/// Is `client` allowed to redeem codes: a confidential client, or a bare
/// `client_id` naming a service registered as public (§4.1.3: a
/// confidential client must authenticate).
fn check_client(conn: &mut DbConnection, client: &Client) -> std::result::Result<String, OAuthError> {
    match client {
        Client::Confidential(name) => Ok(name.clone()),
        Client::Public(name) => match super::client_auth::login_client(conn, name)? {
            Some((_, settings)) if settings.public_client => Ok(name.clone()),
            _ => Err(OAuthError::invalid_client()),
        },
        Client::None => Err(OAuthError::invalid_request(
            "client_id is required with grant_type=authorization_code",
        )),
    }
}

/// RFC 6749 §4.1.3 and §4.1.4, with PKCE (RFC 7636 §4.6) and, when `openid`
/// was asked for, an ID token (OpenID Connect Core §3.1.3.3).
pub(super) async fn authorization_code(
    ctx: &OAuthContext,
    creds: super::request::ClientCredentials,
    params: CodeExchange,
    remote: Option<String>,
    now: DateTime<Utc>,
) -> std::result::Result<TokenResponse, OAuthError> {
    let (oauth, cfg, keys) = (ctx.clone(), ctx.token.clone(), ctx.keys.current());
    let exchanged = ctx
        .db
        .run(move |conn| {
            let client = client_auth::identify(conn, &oauth, remote.as_deref(), now, &creds)?;
            let client_id = check_client(conn, &client)?;
            let code_hash = hash(&oauth.pepper, &params.code);
            crate::db::transaction(conn, |conn| {
                let row = authorization_code::find(conn, &code_hash)?.ok_or_else(refused)?;
                if row.used_at.is_some() {
                    return Ok(replayed(conn, &row, remote.as_deref(), now)?);
                }
                if row.client_id != client_id || row.expires_at <= now {
                    return Err(refused());
                }
                // §4.1.3: "ensure that the redirect_uri parameter is present ... and identical".
                if params.redirect_uri.as_deref() != Some(row.redirect_uri.as_str()) {
                    return Err(OAuthError::invalid_grant(
                        "redirect_uri differs from the authorization request's",
                    ));
                }
                let verifier = params
                    .code_verifier
                    .as_ref()
                    .ok_or_else(|| OAuthError::invalid_grant("code_verifier is required (PKCE)"))?;
                if !pkce::verify(&row.code_challenge, verifier.expose()) {
                    return Err(OAuthError::invalid_grant(
                        "code_verifier does not match the code_challenge",
                    ));
                }
                let session = login_session::find(conn, &row.session_id)?.filter(|s| s.ended_at.is_none());
                let user = principal::find_by_id(conn, &row.principal_id)?
                    .filter(|u| u.is_active() && u.kind == PrincipalKind::Human);
                let (Some(_), Some(user)) = (session, user) else {
                    return Err(refused());
                };
                let held = principal::scopes_of(conn, &user.id)?;
                let grant = grants::authorization_code(
                    &user,
                    &held,
                    &client_id,
                    &row.scope,
                    grants::Issued {
                        cfg: &cfg,
                        now,
                        jti: new_id(),
                    },
                )?;
                let mut grant = grant;
                let amr = Amr::from_stored(&row.amr);
                grant.claims.amr = Some(amr.names().iter().map(|m| m.to_string()).collect());
                grant.claims.acr = Some(amr.level().acr().to_string());
                let family = new_id();
                let refresh_token = refresh::store(
                    conn,
                    &oauth.pepper,
                    &grant,
                    &client,
                    Some((&family, &row.scope)),
                    Some(&row.session_id),
                    now,
                )?;
                let exp = DateTime::<Utc>::from_timestamp(grant.claims.exp, 0).unwrap_or(now);
                if !authorization_code::mark_used(conn, &code_hash, Some(&family), &grant.claims.jti, exp, now)? {
                    // Spent by a concurrent request between our read and write.
                    let spent = authorization_code::find(conn, &code_hash)?.ok_or_else(refused)?;
                    return Ok(replayed(conn, &spent, remote.as_deref(), now)?);
                }
                let mut response = respond(&keys, &grant, Some(refresh_token))?;
                if grant.scopes.iter().any(|s| s == "openid") {
                    let facts = oidc::IdTokenFacts {
                        issuer: cfg.issuer.as_str(),
                        subject: &user.id,
                        client_id: &client_id,
                        auth_time: row.auth_time,
                        nonce: row.nonce.as_deref(),
                        sid: &row.session_id,
                        amr: &amr,
                        lifetime: cfg.access_ttl,
                    };
                    let id_token = oidc::id_token(&keys, &facts, response.access_token.expose(), now)
                        .map_err(|e| Error::internal(format!("signing: {e}")))?;
                    response.id_token = Some(SecretString::new(id_token));
                }
                audit::record(
                    conn,
                    NewAuditEvent::new("login.code", Outcome::Ok)
                        .principal(Some(&user.id))
                        .remote(remote.as_deref())
                        .details(serde_json::json!({"client_id": client_id, "scope": grant.scopes})),
                    now,
                )?;
                Ok(Exchanged::Issued(Box::new(response)))
            })
        })
        .await?;
    match exchanged {
        Exchanged::Issued(r) => Ok(*r),
        Exchanged::Replayed => Err(refused()),
    }
}
