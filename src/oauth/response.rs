//! The token endpoint's successful response (RFC 6749 §5.1), shared by
//! every grant: the access token signed (RFC 9068), with what came with it.

use serde::Serialize;

use super::error::OAuthError;
use super::grants::Grant;
use crate::auth::jwt;
use crate::auth::keys::KeySnapshot;
use crate::auth::secrets::{SecretString, serialize_exposed, serialize_exposed_opt};
use crate::error::Error;

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
    /// OpenID Connect Core §3.1.3.3, when `openid` was granted by a code.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "serialize_exposed_opt")]
    pub id_token: Option<SecretString>,
    /// RFC 8693 §2.2.1: the type of the token a token exchange issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
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
        id_token: None,
        issued_token_type: None,
    })
}
