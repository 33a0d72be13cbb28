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
    /// RFC 8628 §4.
    pub device_authorization_endpoint: String,
    pub authorization_endpoint: String,
    pub userinfo_endpoint: String,
    pub end_session_endpoint: String,
    pub grant_types_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    /// RFC 8414 §2: the JWS algorithms of `private_key_jwt` assertions.
    pub token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    pub introspection_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    pub scopes_supported: Vec<String>,
    pub response_types_supported: Vec<&'static str>,
    pub subject_types_supported: Vec<&'static str>,
    /// The JWS algorithms of access tokens (RFC 9068) and ID tokens.
    pub access_token_signing_alg_values_supported: Vec<&'static str>,
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub code_challenge_methods_supported: Vec<&'static str>,
    pub response_modes_supported: Vec<&'static str>,
    pub claims_supported: Vec<&'static str>,
    pub prompt_values_supported: Vec<&'static str>,
    /// OpenID Connect Discovery §3: `mfa` forces a second step.
    pub acr_values_supported: Vec<&'static str>,
    /// RFC 9207 §3: `iss` is on every authorization response.
    pub authorization_response_iss_parameter_supported: bool,
    pub request_parameter_supported: bool,
    pub request_uri_parameter_supported: bool,
    pub service_documentation: String,
}

/// The metadata document, with the scopes granted to any principal as
/// `scopes_supported`.
pub async fn document(ctx: &OAuthContext) -> Result<ServerMetadata> {
    let scopes = ctx.db.run(principal::all_granted_scopes).await?;
    Ok(metadata(ctx.issuer(), scopes, ctx.token.password_grant))
}

/// RFC 8414 §2 and OpenID Connect Discovery 1.0 §3, plus
/// `end_session_endpoint` (RP-Initiated Logout 1.0 §2.1).
pub fn metadata(issuer: &str, granted_scopes: Vec<String>, password_grant: bool) -> ServerMetadata {
    let mut scopes: Vec<String> = super::oidc::OIDC_SCOPES.iter().map(|s| s.to_string()).collect();
    scopes.extend(granted_scopes.into_iter().filter(|s| !super::oidc::is_oidc_scope(s)));
    let mut grants = vec![
        "authorization_code",
        "client_credentials",
        "refresh_token",
        super::request::TOKEN_EXCHANGE,
        super::request::DEVICE_CODE,
    ];
    if password_grant {
        grants.insert(2, "password");
    }
    let url = |path: &str| format!("{issuer}{path}");
    let auth_methods = vec!["client_secret_basic", "client_secret_post", "private_key_jwt"];
    let algs = vec![SigningAlg::EdDsa.as_str(), SigningAlg::Es256.as_str()];
    ServerMetadata {
        issuer: issuer.to_string(),
        token_endpoint: url("/oauth/token"),
        jwks_uri: url("/.well-known/jwks.json"),
        introspection_endpoint: url("/oauth/introspect"),
        revocation_endpoint: url("/oauth/revoke"),
        device_authorization_endpoint: url("/oauth/device_authorization"),
        authorization_endpoint: url("/oauth/authorize"),
        userinfo_endpoint: url("/oauth/userinfo"),
        end_session_endpoint: url("/oauth/logout"),
        grant_types_supported: grants,
        token_endpoint_auth_methods_supported: vec![
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none",
        ],
        token_endpoint_auth_signing_alg_values_supported: crate::auth::assertion::algorithm_names(),
        introspection_endpoint_auth_methods_supported: auth_methods.clone(),
        introspection_endpoint_auth_signing_alg_values_supported: crate::auth::assertion::algorithm_names(),
        revocation_endpoint_auth_signing_alg_values_supported: crate::auth::assertion::algorithm_names(),
        revocation_endpoint_auth_methods_supported: auth_methods,
        scopes_supported: scopes,
        response_types_supported: vec!["code"],
        subject_types_supported: vec!["public"],
        access_token_signing_alg_values_supported: algs.clone(),
        id_token_signing_alg_values_supported: algs,
        code_challenge_methods_supported: vec!["S256"],
        response_modes_supported: vec!["query"],
        claims_supported: vec![
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "sid",
            "at_hash",
            "amr",
            "acr",
            "preferred_username",
            "name",
            "email",
        ],
        prompt_values_supported: vec!["none", "login", "consent", "select_account"],
        acr_values_supported: crate::auth::amr::ACR_VALUES.to_vec(),
        authorization_response_iss_parameter_supported: true,
        request_parameter_supported: false,
        request_uri_parameter_supported: false,
        service_documentation: url("/openapi.yaml"),
    }
}
