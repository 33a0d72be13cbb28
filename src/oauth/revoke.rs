//! Token revocation (RFC 7009).

use super::client_auth::{self, checked};
use super::error::OAuthError;
use super::request::ClientCredentials;
use super::token::refresh_token_hash;
use crate::auth::jwt;
use crate::auth::secrets::SecretString;
use crate::models::audit::{self, NewAuditEvent, Outcome};
use crate::models::{refresh_token, revoked_token};
use crate::state::AppState;

/// RFC 7009 §2.1. A client revokes tokens issued to it after authenticating;
/// a person who logged in without a client revokes a token by presenting it.
/// Unknown or invalid tokens are not an error (§2.2).
///
/// An access token goes on the deny list until its `exp`; a refresh token
/// revokes its whole family.
pub async fn revoke(
    state: &AppState,
    creds: ClientCredentials,
    token: Option<String>,
    remote: Option<String>,
) -> Result<(), OAuthError> {
    let Some(token) = token else {
        return Err(OAuthError::invalid_request("missing parameter 'token'"));
    };
    let keys = state.keys().await?;
    let now = state.now();
    let issuer = state.settings().issuer().to_string();
    let claims = jwt::verify(&keys, &token, &issuer, now).ok();
    let pepper = state.pepper().clone();
    let usage = state.usage();
    state
        .db(move |conn| {
            let client = checked!(client_auth::authenticate(conn, &pepper, &usage, &creds, remote.as_deref(), now)).map(|c| c.principal.name);
            // Who may revoke: the client the token was issued to, or anyone
            // holding a token that a person got without a client.
            let allowed = |token_client: Option<&str>| -> Result<bool, OAuthError> {
                match (token_client, client.as_deref()) {
                    (None, _) => Ok(true),
                    (Some(t), Some(c)) => Ok(t == c),
                    (Some(_), None) => Err(OAuthError::invalid_client()),
                }
            };
            if let Some(claims) = claims {
                let own_client = claims.principal_kind == "human" && claims.client_id == claims.name;
                let token_client = (!own_client).then_some(claims.client_id.as_str());
                match allowed(token_client) {
                    Ok(true) => {}
                    Ok(false) => return Ok(Ok(())),
                    Err(e) => return Ok(Err(e)),
                }
                let exp = chrono::DateTime::from_timestamp(claims.exp, 0).unwrap_or(now);
                revoked_token::insert(conn, &claims.jti, exp, now)?;
                audit::record(
                    conn,
                    NewAuditEvent::new("token.revoked", Outcome::Ok)
                        .principal(Some(&claims.sub))
                        .remote(remote.as_deref())
                        .details(serde_json::json!({"token_type": "access_token", "jti": claims.jti})),
                    now,
                )?;
                return Ok(Ok(()));
            }
            let hash = refresh_token_hash(&pepper, &SecretString::new(token));
            let Some(row) = refresh_token::find_by_hash(conn, &hash)? else {
                return Ok(Ok(()));
            };
            match allowed(row.client_id.as_deref()) {
                Ok(true) => {}
                Ok(false) => return Ok(Ok(())),
                Err(e) => return Ok(Err(e)),
            }
            let revoked = refresh_token::revoke_family(conn, &row.family_id, now)?;
            audit::record(
                conn,
                NewAuditEvent::new("token.revoked", Outcome::Ok)
                    .principal(Some(&row.principal_id))
                    .remote(remote.as_deref())
                    .details(serde_json::json!({"token_type": "refresh_token", "family_id": row.family_id, "revoked": revoked})),
                now,
            )?;
            Ok(Ok(()))
        })
        .await?
}
