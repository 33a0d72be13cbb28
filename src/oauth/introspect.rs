//! Token introspection (RFC 7662) and the online check shared with `/api/v1/me`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::client_auth::{self, checked};
use super::error::OAuthError;
use super::request::ClientCredentials;
use super::token::refresh_token_hash;
use crate::auth::jwt::{self, AccessTokenClaims};
use crate::auth::secrets::SecretString;
use crate::db::DbConnection;
use crate::error::Result;
use crate::models::principal::{self, Principal};
use crate::models::{from_db_time, refresh_token, revoked_token};
use crate::state::AppState;

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
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    pub token_type: &'static str,
    pub principal_kind: String,
}

impl IntrospectionResponse {
    pub fn inactive() -> Self {
        Self {
            active: false,
            token: None,
        }
    }
}

/// Is this verified access token still live: not on the deny list, and its
/// principal still exists and is active? Returns the principal when it is.
pub fn access_token_live(conn: &mut DbConnection, claims: &AccessTokenClaims) -> Result<Option<Principal>> {
    if revoked_token::is_revoked(conn, &claims.jti)? {
        return Ok(None);
    }
    Ok(principal::find_by_id(conn, &claims.sub)?.filter(Principal::is_active))
}

fn refresh_token_state(
    conn: &mut DbConnection,
    hash: &str,
    issuer: &str,
    now: DateTime<Utc>,
) -> Result<IntrospectionResponse> {
    let Some(row) = refresh_token::find_by_hash(conn, hash)? else {
        return Ok(IntrospectionResponse::inactive());
    };
    if row.is_spent() || row.is_expired(now) {
        return Ok(IntrospectionResponse::inactive());
    }
    let Some(p) = principal::find_by_id(conn, &row.principal_id)?.filter(Principal::is_active) else {
        return Ok(IntrospectionResponse::inactive());
    };
    Ok(IntrospectionResponse {
        active: true,
        token: Some(ActiveToken {
            client_id: row.client_id.clone().unwrap_or_else(|| p.name.clone()),
            username: p.name.clone(),
            sub: p.id,
            scope: row.scope,
            exp: from_db_time(row.expires_at).timestamp(),
            iat: from_db_time(row.created_at).timestamp(),
            nbf: None,
            iss: issuer.to_string(),
            aud: Some(row.audience),
            jti: None,
            token_type: "refresh_token",
            principal_kind: p.kind,
        }),
    })
}

/// RFC 7662 §2.1: the caller authenticates as a service; any token it shows
/// is answered, and anything not live is `active: false`.
pub async fn introspect(
    state: &AppState,
    creds: ClientCredentials,
    token: Option<String>,
    remote: Option<String>,
) -> std::result::Result<IntrospectionResponse, OAuthError> {
    let keys = state.keys().await?;
    let now = state.now();
    let issuer = state.settings().issuer().to_string();
    let claims = token.as_deref().and_then(|t| jwt::verify(&keys, t, &issuer, now).ok());
    let pepper = state.pepper().clone();
    let usage = state.usage();
    state
        .db(move |conn| {
            if checked!(client_auth::authenticate(
                conn,
                &pepper,
                &usage,
                &creds,
                remote.as_deref(),
                now
            ))
            .is_none()
            {
                return Ok(Err(OAuthError::invalid_client()));
            }
            let Some(token) = token else {
                return Ok(Err(OAuthError::invalid_request("missing parameter 'token'")));
            };
            if let Some(claims) = claims {
                let Some(p) = access_token_live(conn, &claims)? else {
                    return Ok(Ok(IntrospectionResponse::inactive()));
                };
                return Ok(Ok(IntrospectionResponse {
                    active: true,
                    token: Some(ActiveToken {
                        sub: claims.sub,
                        scope: claims.scope,
                        client_id: claims.client_id,
                        username: p.name,
                        exp: claims.exp,
                        iat: claims.iat,
                        nbf: Some(claims.nbf),
                        iss: claims.iss,
                        aud: Some(claims.aud),
                        jti: Some(claims.jti),
                        token_type: "Bearer",
                        principal_kind: claims.principal_kind,
                    }),
                }));
            }
            let hash = refresh_token_hash(&pepper, &SecretString::new(token));
            Ok(Ok(refresh_token_state(conn, &hash, &issuer, now)?))
        })
        .await?
}
