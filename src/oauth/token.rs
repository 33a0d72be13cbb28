//! The token endpoint (RFC 6749 §3.2): load what a grant needs, check secrets
//! and passwords on their pools, run the pure grant, store and sign.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::OAuthContext;
use super::client_auth::{self, Client};
use super::error::{ErrorCode, OAuthError};
use super::grants::{self, Audience, Grant};
use super::refresh;
use super::request::{ClientCredentials, TokenRequest};
use crate::auth::jwt;
use crate::auth::keys::KeySnapshot;
use crate::auth::secrets::{SecretString, serialize_exposed, serialize_exposed_opt};
use crate::auth::{password, throttle};
use crate::db::DbConnection;
use crate::error::Error;
use crate::models::audit::{self, NewAuditEvent, Outcome};
use crate::models::principal::{self, Principal, PrincipalKind};
use crate::models::{new_id, password as password_row};

/// RFC 6749 §5.1: the successful response. The tokens are secrets: they are
/// serialised into the response and never shown by `Debug`.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    #[serde(serialize_with = "serialize_exposed")]
    pub access_token: SecretString,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "serialize_exposed_opt")]
    pub refresh_token: Option<SecretString>,
}

/// Sign the access token of `grant` (RFC 9068) and build the response.
pub(super) fn respond(
    keys: &KeySnapshot,
    grant: &Grant,
    refresh_token: Option<SecretString>,
) -> Result<TokenResponse, OAuthError> {
    let access_token = jwt::sign(keys, &grant.claims).map_err(|e| Error::internal(format!("signing: {e}")))?;
    Ok(TokenResponse {
        access_token: SecretString::new(access_token),
        token_type: "Bearer",
        expires_in: grant.claims.exp - grant.claims.iat,
        scope: grant.scopes.join(" "),
        refresh_token,
    })
}

/// Handle one token request at `now`.
pub async fn exchange(
    ctx: &OAuthContext,
    request: TokenRequest,
    creds: ClientCredentials,
    remote: Option<String>,
    now: DateTime<Utc>,
) -> Result<TokenResponse, OAuthError> {
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
            refresh::exchange(ctx, creds, refresh_token, scope, remote, now).await
        }
    }
}

/// RFC 8707 §2: `resource` names the service the token is for.
fn resolve_resource(conn: &mut DbConnection, resource: Option<&str>) -> Result<Option<Principal>, OAuthError> {
    let Some(name) = resource else { return Ok(None) };
    match principal::find_by_name(conn, name)? {
        Some(p) if p.kind == PrincipalKind::Service.as_str() && p.is_active() => Ok(Some(p)),
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

/// RFC 6749 §4.4.
async fn client_credentials(
    ctx: &OAuthContext,
    creds: ClientCredentials,
    scope: Option<String>,
    resource: Option<String>,
    remote: Option<String>,
    now: DateTime<Utc>,
) -> Result<TokenResponse, OAuthError> {
    let (checks, cfg) = (ctx.checks(), ctx.token.clone());
    // A client verified recently, asking for a token for Roster itself:
    // everything is in memory, so no database round trip and no thread hop.
    if resource.is_none()
        && let Some(client) = client_auth::recently_verified(&checks.at(remote.as_deref(), now), &creds)
    {
        let grant = grants::client_credentials(
            &client.principal,
            &client.scopes,
            scope.as_deref(),
            Audience::Roster,
            &cfg,
            now,
            new_id(),
        )?;
        return respond(&ctx.keys.current(), &grant, None);
    }
    let grant = ctx
        .db
        .run(move |conn| {
            let client = client_auth::authenticate(conn, &checks.at(remote.as_deref(), now), &creds)?
                .ok_or_else(OAuthError::invalid_client)?;
            let target = resolve_resource(conn, resource.as_deref())?;
            grants::client_credentials(
                &client.principal,
                &client.scopes,
                scope.as_deref(),
                audience(&target),
                &cfg,
                now,
                new_id(),
            )
        })
        .await?;
    respond(&ctx.keys.current(), &grant, None)
}

/// The password grant's parameters (RFC 6749 §4.3.2).
struct PasswordLogin {
    username: String,
    password: SecretString,
    scope: Option<String>,
    resource: Option<String>,
}

/// What the password grant loads before argon2 runs.
struct Loaded {
    client: Client,
    user: Option<Principal>,
    phc: Option<String>,
    target: Option<Principal>,
    throttle_keys: throttle::Keys,
    throttle_rows: Vec<crate::models::throttle::ThrottleRow>,
}

/// RFC 6749 §4.3. An unknown user and a wrong password are the same error and
/// cost the same argon2 work. After argon2, the issuing transaction checks
/// again that the person is active and the password unchanged, so a disable
/// or password change while the check queued cannot be outrun.
async fn password_grant(
    ctx: &OAuthContext,
    creds: ClientCredentials,
    login: PasswordLogin,
    remote: Option<String>,
    now: DateTime<Utc>,
) -> Result<TokenResponse, OAuthError> {
    let checks = ctx.checks();
    let (username, resource, remote_for_load) = (login.username, login.resource, remote.clone());
    let loaded = ctx
        .db
        .run(move |conn| {
            // A throttled login is refused before anything else, argon2 included.
            let throttle_keys = throttle::Keys::new(&checks.pepper, &username, remote_for_load.as_deref());
            let throttle_rows = throttle::load(conn, &throttle_keys)?;
            if let Some(wait) = throttle::blocked_for(&throttle_rows, now) {
                checks.failures.record(
                    conn,
                    NewAuditEvent::new("login.throttled", Outcome::Failed)
                        .remote(remote_for_load.as_deref())
                        .reason("too many failed logins")
                        .details(serde_json::json!({"retry_after": wait.num_seconds()})),
                    now,
                )?;
                return Err(OAuthError::Throttled {
                    retry_after: wait.num_seconds() + i64::from(wait.subsec_nanos() > 0),
                });
            }
            let client = client_auth::identify(conn, &checks.at(remote_for_load.as_deref(), now), &creds)?;
            let target = resolve_resource(conn, resource.as_deref())?;
            let user = principal::find_by_name(conn, &username)?;
            let phc = match &user {
                Some(u) if u.kind == PrincipalKind::Human.as_str() => password_row::find(conn, &u.id)?,
                _ => None,
            };
            Ok::<_, OAuthError>(Loaded {
                client,
                user,
                phc,
                target,
                throttle_keys,
                throttle_rows,
            })
        })
        .await?;

    let (phc, password) = (loaded.phc.clone(), login.password);
    let verified = ctx
        .argon
        .run(move || match phc {
            Some(phc) => password::verify_password(&password, &phc),
            None => {
                password::dummy_verify(&password);
                false
            }
        })
        .await
        .map_err(Error::from)?;

    let (cfg, pepper, keys, scope) = (ctx.token.clone(), ctx.pepper.clone(), ctx.keys.current(), login.scope);
    let (failures, throttle_policy) = (ctx.failures.clone(), ctx.throttle.clone());
    ctx.db
        .run(move |conn| {
            let failure = match &loaded.user {
                None => Some("unknown user"),
                Some(u) if u.kind != PrincipalKind::Human.as_str() => Some("principal is not a human"),
                Some(_) if !verified => Some("wrong password"),
                Some(u) if !u.is_active() => Some("principal is disabled"),
                Some(_) => None,
            };
            let user = match (&loaded.user, failure) {
                (Some(u), None) => u,
                (user, reason) => {
                    let subject = user.as_ref().map(|u| u.id.as_str());
                    failures.record(
                        conn,
                        NewAuditEvent::new("login.password", Outcome::Failed)
                            .principal(subject)
                            .remote(remote.as_deref())
                            .reason(reason.unwrap_or("login refused")),
                        now,
                    )?;
                    throttle::record_failure(conn, &loaded.throttle_keys, subject, &throttle_policy, now)?;
                    return Err(OAuthError::invalid_grant("invalid username or password"));
                }
            };
            crate::db::transaction(conn, |conn| {
                // Re-read inside the transaction: the checks above may be stale.
                let current = principal::find_by_id(conn, &user.id)?.filter(Principal::is_active);
                let still_valid = current.is_some() && password_row::find(conn, &user.id)? == loaded.phc;
                let Some(current) = current.filter(|_| still_valid) else {
                    return Err(OAuthError::invalid_grant("invalid username or password"));
                };
                let granted = principal::scopes_of(conn, &current.id)?;
                let grant = grants::password(
                    &current,
                    &granted,
                    loaded.client.name(),
                    scope.as_deref(),
                    audience(&loaded.target),
                    &cfg,
                    now,
                    new_id(),
                )?;
                let token = refresh::store(conn, &pepper, &current, &grant, &loaded.client, None, now)?;
                throttle::record_success(conn, &loaded.throttle_keys, &loaded.throttle_rows)?;
                audit::record(
                    conn,
                    NewAuditEvent::new("login.password", Outcome::Ok)
                        .principal(Some(&current.id))
                        .remote(remote.as_deref())
                        .details(serde_json::json!({"client_id": loaded.client.name(), "scope": grant.scopes})),
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
