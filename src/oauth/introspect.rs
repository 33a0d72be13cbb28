//! Token introspection (RFC 7662).

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::OAuthContext;
use super::client_auth;
use super::error::OAuthError;
use super::refresh;
use super::request::ClientCredentials;
use crate::auth::access;
use crate::auth::access::verify_reloading;
use crate::auth::jwt::AccessTokenClaims;
use crate::auth::live::{Known, LiveView, Lookup};
use crate::auth::secrets::SecretString;
use crate::db::DbConnection;
use crate::error::Result;
use crate::models::principal::{self, Principal};
use crate::names::Scopes;

/// RFC 7662 §2.2. Inactive tokens are `{"active": false}` and nothing else.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct IntrospectionResponse {
    pub active: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub token: Option<ActiveToken>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ActiveToken {
    pub sub: String,
    pub scope: String,
    pub client_id: String,
    pub username: String,
    pub exp: i64,
    pub iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub iss: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<crate::auth::jwt::Audience>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    pub token_type: &'static str,
    pub principal_kind: String,
    /// RFC 8693 §4.1: who acts for the subject, for an exchanged token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act: Option<crate::auth::jwt::Actor>,
    /// How the person logged in (RFC 8176), for a token of a browser or device login.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
}

impl IntrospectionResponse {
    pub fn inactive() -> Self {
        Self {
            active: false,
            token: None,
        }
    }

    fn active(token: ActiveToken) -> Self {
        Self {
            active: true,
            token: Some(token),
        }
    }
}

/// A verified access token, if it is still live, read from the database;
/// the principal read is kept in the live view for the next time.
fn access_token_state(
    conn: &mut DbConnection,
    view: &LiveView,
    claims: AccessTokenClaims,
) -> Result<IntrospectionResponse> {
    let index = view.index();
    let Some(p) = access::live(conn, &claims)? else {
        return Ok(IntrospectionResponse::inactive());
    };
    let held = principal::scopes_of(conn, &p.id)?;
    let answer = active_access_token(claims, &p, &held);
    view.remember(
        index,
        Known {
            principal: p,
            scopes: held,
        },
    );
    Ok(answer)
}

/// RFC 7662 §2.2 for a live access token of `p`, who holds `held` now
/// (an exchanged token whose delegation no longer holds is inactive).
fn active_access_token(claims: AccessTokenClaims, p: &Principal, held: &[String]) -> IntrospectionResponse {
    if !access::delegation_holds(&claims, held) {
        return IntrospectionResponse::inactive();
    }
    let scope = access::effective_scopes(&Scopes::from_stored(&claims.scope), held).join(" ");
    IntrospectionResponse::active(ActiveToken {
        sub: claims.sub,
        scope,
        client_id: claims.client_id,
        username: p.name.clone(),
        exp: claims.exp,
        iat: claims.iat,
        nbf: claims.nbf,
        iss: claims.iss,
        aud: Some(claims.aud),
        jti: Some(claims.jti),
        token_type: "Bearer",
        principal_kind: claims.principal_kind,
        act: claims.act,
        amr: claims.amr,
        acr: claims.acr,
    })
}

/// A refresh token, if it is unspent, unexpired and its principal active.
fn refresh_token_state(
    conn: &mut DbConnection,
    ctx_pepper: &crate::auth::secrets::Pepper,
    token: &SecretString,
    issuer: &str,
    now: DateTime<Utc>,
) -> Result<IntrospectionResponse> {
    let Some(row) = refresh::find(conn, ctx_pepper, token)? else {
        return Ok(IntrospectionResponse::inactive());
    };
    if row.is_spent() || row.is_expired(now) {
        return Ok(IntrospectionResponse::inactive());
    }
    let Some(p) = principal::find_by_id(conn, &row.principal_id)?.filter(Principal::is_active) else {
        return Ok(IntrospectionResponse::inactive());
    };
    // What a refresh would issue now (RFC 6749 §6 narrows to what is held).
    let held = principal::scopes_of(conn, &p.id)?;
    let scope = access::effective_scopes(&Scopes::from_stored(&row.scope), &held).join(" ");
    Ok(IntrospectionResponse::active(ActiveToken {
        client_id: row.client_id.clone().unwrap_or_else(|| p.name.clone()),
        username: p.name.clone(),
        sub: p.id,
        scope,
        exp: row.expires_at.timestamp(),
        iat: row.created_at.timestamp(),
        nbf: None,
        iss: issuer.to_string(),
        aud: Some(row.audience.into()),
        jti: None,
        token_type: "refresh_token",
        principal_kind: p.kind.to_string(),
        act: None,
        amr: None,
        acr: None,
    }))
}

impl OAuthContext {
    /// RFC 7662 §2.1: the caller authenticates as a service; any token it shows
    /// is answered, and anything not live is `active: false`.
    pub async fn introspect(
        &self,
        creds: ClientCredentials,
        token: Option<String>,
        remote: Option<String>,
        now: DateTime<Utc>,
    ) -> std::result::Result<IntrospectionResponse, OAuthError> {
        let issuer = self.token.issuer.clone();
        let claims = match token.as_deref() {
            Some(t) => crate::auth::access::valid_or_none(
                verify_reloading(&self.db, &self.keys, &self.signatures, t, &issuer, now).await,
            )?,
            None => None,
        };
        // The steady state: a client verified recently, and a token whose
        // liveness the view knows. Signature, cache and view: no database.
        let creds = client_auth::check_assertion(self, creds, now).await?;
        let client = client_auth::recently_verified(self, now, &creds);
        if client.is_some()
            && let Some(claims) = &claims
        {
            let from_memory = match self.live.check(claims, now) {
                Lookup::Live(known) => Some(active_access_token(claims.clone(), &known.principal, &known.scopes)),
                Lookup::Dead => Some(IntrospectionResponse::inactive()),
                Lookup::Unknown | Lookup::Stale => None,
            };
            if let Some(answer) = from_memory {
                crate::telemetry::introspection("memory");
                return Ok(answer);
            }
        }
        if claims.is_some() {
            crate::telemetry::introspection("database");
        }
        let oauth = self.clone();
        self.db
            .run(move |conn| {
                if client.is_none() {
                    client_auth::authenticate(conn, &oauth, remote.as_deref(), now, &creds)?
                        .ok_or_else(OAuthError::invalid_client)?;
                }
                let token = token.ok_or_else(|| OAuthError::invalid_request("missing parameter 'token'"))?;
                Ok(match claims {
                    Some(claims) => access_token_state(conn, &oauth.live, claims)?,
                    None => refresh_token_state(conn, &oauth.pepper, &SecretString::new(token), issuer.as_str(), now)?,
                })
            })
            .await
    }
}
