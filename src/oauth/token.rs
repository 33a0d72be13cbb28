//! The token endpoint (RFC 6749 §3.2): load what a grant needs, check secrets
//! and passwords on their pools, run the pure grant, store and sign.

use chrono::{DateTime, Utc};

use super::OAuthContext;
use super::client_auth::{self, Client};
use super::error::{ErrorCode, OAuthError};
use super::grants::{self, Audience};
use super::request::{ClientCredentials, TokenRequest};
pub use super::response::TokenResponse;
use super::response::respond;
use super::{code, person, refresh};
use crate::auth::secrets::SecretString;
use crate::db::DbConnection;
use crate::models::audit::{self, NewAuditEvent, Outcome};
use crate::models::new_id;
use crate::models::principal::{self, Principal, PrincipalKind};
use crate::models::second_factor;
use crate::names::Scopes;

impl OAuthContext {
    /// Handle one token request at `now`.
    pub async fn token(
        &self,
        request: TokenRequest,
        creds: ClientCredentials,
        remote: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<TokenResponse, OAuthError> {
        let grant = request.grant_type();
        let answer = answer(self, request, creds, remote, now).await;
        crate::telemetry::token(
            grant,
            match &answer {
                Ok(_) => Ok(()),
                Err(e) => Err(e.code().as_str()),
            },
        );
        answer
    }
}

async fn answer(
    ctx: &OAuthContext,
    request: TokenRequest,
    creds: ClientCredentials,
    remote: Option<String>,
    now: DateTime<Utc>,
) -> Result<TokenResponse, OAuthError> {
    let creds = client_auth::check_assertion(ctx, creds, now).await?;
    match request {
        TokenRequest::ClientCredentials { scope, resource } => {
            client_credentials(ctx, creds, scope, resource, remote, now).await
        }
        TokenRequest::Password {
            username,
            password,
            scope,
            resource,
        } => {
            let login = PasswordLogin {
                username,
                password,
                scope,
                resource,
            };
            password_grant(ctx, creds, login, remote, now).await
        }
        TokenRequest::RefreshToken { refresh_token, scope } => {
            refresh::refresh_token(ctx, creds, refresh_token, scope, remote, now).await
        }
        TokenRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            let params = code::CodeExchange {
                code,
                redirect_uri,
                code_verifier,
            };
            code::authorization_code(ctx, creds, params, remote, now).await
        }
        TokenRequest::TokenExchange(params) => ctx.exchange(creds, *params, remote, now).await,
        TokenRequest::DeviceCode { device_code } => {
            super::device::device_code(ctx, creds, device_code, remote, now).await
        }
    }
}

/// RFC 8707 §2: `resource` names the service the token is for.
fn resolve_resource(conn: &mut DbConnection, resource: Option<&str>) -> Result<Option<Principal>, OAuthError> {
    let Some(name) = resource else { return Ok(None) };
    match principal::find_by_name(conn, name)? {
        Some(p) if p.kind == PrincipalKind::Service && p.is_active() => Ok(Some(p)),
        _ => Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            format!("resource '{name}' is not a registered service"),
        )),
    }
}

fn audience(target: &Option<Principal>) -> Audience<'_> {
    match target {
        Some(p) => Audience::Service(p),
        None => Audience::Roster,
    }
}

/// A client-credentials token for Roster itself, for a client already
/// authenticated from memory.
fn for_roster(
    ctx: &OAuthContext,
    client: &crate::auth::client::AuthenticatedClient,
    scope: Option<&Scopes>,
    now: DateTime<Utc>,
) -> Result<TokenResponse, OAuthError> {
    let grant = grants::client_credentials(
        &client.principal,
        &client.scopes,
        scope,
        Audience::Roster,
        grants::Issued {
            cfg: &ctx.token,
            now,
            jti: new_id(),
        },
    )?;
    respond(&ctx.keys.current(), &grant, None)
}

/// RFC 6749 §4.4.
async fn client_credentials(
    ctx: &OAuthContext,
    creds: ClientCredentials,
    scope: Option<Scopes>,
    resource: Option<String>,
    remote: Option<String>,
    now: DateTime<Utc>,
) -> Result<TokenResponse, OAuthError> {
    let (oauth, cfg) = (ctx.clone(), ctx.token.clone());
    // A client verified recently, asking for a token for Roster itself:
    // everything is in memory, so no database round trip and no thread hop.
    if resource.is_none()
        && let Some(client) = client_auth::recently_verified(&oauth, now, &creds)
    {
        return for_roster(ctx, &client, scope.as_ref(), now);
    }
    // The same for a client confirmed recently through its assertions: the
    // only database work is spending the assertion's jti, in a batch.
    if resource.is_none()
        && let Some((client, spend)) = client_auth::recently_asserted(&oauth, now, &creds)
    {
        let fresh = match spend {
            Some(spend) => ctx.jtis.spend(&ctx.db, spend).await?,
            None => true,
        };
        // A replay takes the database path, which refuses it (audited, throttled).
        if fresh {
            return for_roster(ctx, &client, scope.as_ref(), now);
        }
    }
    let grant = ctx
        .db
        .run(move |conn| {
            let client = client_auth::authenticate(conn, &oauth, remote.as_deref(), now, &creds)?
                .ok_or_else(OAuthError::invalid_client)?;
            let target = resolve_resource(conn, resource.as_deref())?;
            grants::client_credentials(
                &client.principal,
                &client.scopes,
                scope.as_ref(),
                audience(&target),
                grants::Issued {
                    cfg: &cfg,
                    now,
                    jti: new_id(),
                },
            )
        })
        .await?;
    respond(&ctx.keys.current(), &grant, None)
}

/// The password grant's parameters (RFC 6749 §4.3.2).
struct PasswordLogin {
    username: String,
    password: SecretString,
    scope: Option<Scopes>,
    resource: Option<String>,
}

/// The password grant's answer to a person with a second factor.
pub const SECOND_FACTOR_REQUIRED: &str = "a second factor is required: use the browser or device login";

/// What the password grant loads before argon2 runs.
struct Loaded {
    client: Client,
    target: Option<Principal>,
    candidate: person::Candidate,
}

/// RFC 6749 §4.3. An unknown user and a wrong password are the same error and
/// cost the same argon2 work (see [`person`]). The issuing transaction checks
/// again that the person is active and the password unchanged.
async fn password_grant(
    ctx: &OAuthContext,
    creds: ClientCredentials,
    login: PasswordLogin,
    remote: Option<String>,
    now: DateTime<Utc>,
) -> Result<TokenResponse, OAuthError> {
    if !ctx.token.password_grant {
        return Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            "the password grant is switched off on this server: log in through /oauth/authorize",
        ));
    }
    let oauth = ctx.clone();
    let (username, resource, remote_for_load) = (login.username, login.resource, remote.clone());
    let loaded = ctx
        .db
        .run(move |conn| {
            let candidate = person::load(conn, &oauth, &username, remote_for_load.as_deref(), now)?;
            let client = client_auth::identify(conn, &oauth, remote_for_load.as_deref(), now, &creds)?;
            let target = resolve_resource(conn, resource.as_deref())?;
            Ok::<_, OAuthError>(Loaded {
                client,
                target,
                candidate,
            })
        })
        .await?;
    let verified = person::verify(ctx, &loaded.candidate, login.password).await?;

    let (cfg, oauth, keys, scope) = (ctx.token.clone(), ctx.clone(), ctx.keys.current(), login.scope);
    ctx.db
        .run(move |conn| {
            let user = person::settle(
                conn,
                &oauth,
                &loaded.candidate,
                verified,
                "login.password",
                remote.as_deref(),
                now,
            )?;
            // A person with a second factor logs in where it can be asked
            // for: the browser, or the device flow.
            if second_factor::has_confirmed(conn, &user.id)? {
                oauth.failures.record(
                    conn,
                    NewAuditEvent::new("login.password", Outcome::Failed)
                        .principal(Some(&user.id))
                        .remote(remote.as_deref())
                        .reason(SECOND_FACTOR_REQUIRED),
                    now,
                )?;
                return Err(OAuthError::invalid_grant(SECOND_FACTOR_REQUIRED));
            }
            crate::db::transaction(conn, |conn| {
                let current = person::confirm(conn, &loaded.candidate, &user)?;
                if second_factor::has_confirmed(conn, &current.id)? {
                    return Err(OAuthError::invalid_grant(SECOND_FACTOR_REQUIRED));
                }
                person::cleared(conn, &loaded.candidate)?;
                let granted = principal::scopes_of(conn, &current.id)?;
                let grant = grants::password(
                    &current,
                    &granted,
                    loaded.client.name(),
                    scope.as_ref(),
                    audience(&loaded.target),
                    grants::Issued {
                        cfg: &cfg,
                        now,
                        jti: new_id(),
                    },
                )?;
                let token = refresh::store(conn, &oauth.pepper, &grant, &loaded.client, None, None, now)?;
                // Which clients still use the password grant (RFC 9700 §2.4 wants it gone).
                audit::record(
                    conn,
                    NewAuditEvent::new("login.password", Outcome::Ok)
                        .principal(Some(&current.id))
                        .remote(remote.as_deref())
                        .details(serde_json::json!({
                            "grant_type": "password",
                            "client_id": loaded.client.name(),
                            "scope": grant.scopes,
                        })),
                    now,
                )?;
                // Signed before the commit: if signing fails, nothing was stored.
                respond(&keys, &grant, Some(token))
            })
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_tokens() {
        let r = TokenResponse {
            access_token: SecretString::new("eyJhbGciOi.access.secret"),
            token_type: "Bearer",
            expires_in: 300,
            scope: "a".into(),
            refresh_token: Some(SecretString::new("refresh-secret-value")),
            id_token: None,
            issued_token_type: None,
        };
        let shown = format!("{r:?}");
        assert!(
            !shown.contains("access.secret") && !shown.contains("refresh-secret-value"),
            "{shown}"
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["access_token"], "eyJhbGciOi.access.secret");
        assert_eq!(json["refresh_token"], "refresh-secret-value");
    }
}
