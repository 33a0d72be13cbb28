//! RFC 8414 authorization server metadata (also served as OpenID discovery).

use serde::Serialize;

use super::OAuthContext;
use crate::auth::keys::SigningAlg;
use crate::error::Result;
use crate::models::principal;

#[derive(Debug, Serialize)]
pub struct ServerMetadata {
    pub issuer: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub grant_types_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    pub scopes_supported: Vec<String>,
    pub response_types_supported: Vec<&'static str>,
    pub subject_types_supported: Vec<&'static str>,
    /// The JWS algorithms of access tokens (RFC 9068). Roster issues no ID
    /// tokens; the OpenID field is filled for discovery clients that require it.
    pub access_token_signing_alg_values_supported: Vec<&'static str>,
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub service_documentation: String,
}

/// The metadata document, with the scopes granted to any principal as
/// `scopes_supported`.
pub async fn document(ctx: &OAuthContext) -> Result<ServerMetadata> {
    let scopes = ctx.db.run(principal::all_granted_scopes).await?;
    Ok(metadata(ctx.issuer(), scopes))
}

/// RFC 8414 §2.
pub fn metadata(issuer: &str, scopes: Vec<String>) -> ServerMetadata {
    let url = |path: &str| format!("{issuer}{path}");
    let auth_methods = vec!["client_secret_basic", "client_secret_post"];
    let algs = vec![SigningAlg::EdDsa.as_str(), SigningAlg::Es256.as_str()];
    ServerMetadata {
        issuer: issuer.to_string(),
        token_endpoint: url("/oauth/token"),
        jwks_uri: url("/.well-known/jwks.json"),
        introspection_endpoint: url("/oauth/introspect"),
        revocation_endpoint: url("/oauth/revoke"),
        grant_types_supported: vec!["client_credentials", "password", "refresh_token"],
        token_endpoint_auth_methods_supported: auth_methods.clone(),
        introspection_endpoint_auth_methods_supported: auth_methods.clone(),
        revocation_endpoint_auth_methods_supported: auth_methods,
        scopes_supported: scopes,
        // No authorization endpoint, so no response types (RFC 8414 §2).
        response_types_supported: vec![],
        subject_types_supported: vec!["public"],
        access_token_signing_alg_values_supported: algs.clone(),
        id_token_signing_alg_values_supported: algs,
        service_documentation: url("/openapi.yaml"),
    }
}
