//! Parsing of OAuth requests: the form body (RFC 6749 §3.2), client
//! authentication (§2.3.1) and the grant, as a serde-tagged enum (§4.3.2, §4.4.2, §6).

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use super::error::{ErrorCode, OAuthError};
use crate::auth::assertion::JWT_BEARER;
use crate::auth::client::CheckedAssertion;
use crate::auth::secrets::SecretString;
use crate::names::Scopes;

/// The parameters of a form body, each present at most once. Parameters sent
/// without a value are treated as omitted (RFC 6749 §3.1). Values may be
/// secrets, so `Debug` shows the names only.
#[derive(Default)]
pub struct FormParams(HashMap<String, String>);

impl std::fmt::Debug for FormParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.0.keys().collect();
        names.sort();
        f.debug_struct("FormParams")
            .field("names", &names)
            .finish_non_exhaustive()
    }
}

impl FormParams {
    /// Parse `application/x-www-form-urlencoded` text (a body or a query
    /// string): UTF-8, each parameter at most once (RFC 6749 §3.1) and within
    /// [`PARAM_LIMITS`]; a parameter without a value counts as omitted. The
    /// error says which parameter is wrong.
    pub fn parse(text: &[u8]) -> Result<Self, String> {
        if std::str::from_utf8(text).is_err() {
            return Err("the parameters are not UTF-8".into());
        }
        let mut map = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(text) {
            check_length(&k, &v)?;
            if k.contains('\0') || v.contains('\0') {
                return Err(format!(
                    "parameter '{}': {}",
                    k.replace('\0', ""),
                    crate::error::NUL_REFUSED
                ));
            }
            if map.contains_key(k.as_ref()) {
                return Err(format!("parameter '{k}' is repeated"));
            }
            map.insert(k.into_owned(), v.into_owned());
        }
        map.retain(|_, v: &mut String| !v.is_empty());
        Ok(Self(map))
    }
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
    /// Remove and return a parameter (the login form's own fields).
    pub fn take(&mut self, name: &str) -> Option<String> {
        self.0.remove(name)
    }
    pub fn as_map(&self) -> &HashMap<String, String> {
        &self.0
    }
}

/// The longest value accepted for each parameter, in bytes. Longer is
/// `invalid_request` before anything is looked up or written.
pub const PARAM_LIMITS: &[(&str, usize)] = &[
    ("grant_type", 64),
    ("client_id", 255),
    ("client_secret", 255),
    ("client_assertion_type", 128),
    ("client_assertion", 8192),
    ("username", 255),
    ("password", crate::auth::password::MAX_PASSWORD_BYTES),
    ("scope", 1024),
    ("resource", 255),
    // Far above any token Roster issues: a value that is not a live token
    // (an access token sent by mistake, say) is then `invalid_grant`
    // (RFC 6749 §5.2), which clients act on, not a length complaint.
    ("refresh_token", 8192),
    ("code", 8192),
    ("code_verifier", 128),
    ("redirect_uri", 2000),
    ("token", 8192),
    ("token_type_hint", 64),
    ("subject_token", 8192),
    ("subject_token_type", 128),
    ("actor_token", 8192),
    ("actor_token_type", 128),
    ("requested_token_type", 128),
    ("audience", 255),
];

fn check_length(name: &str, value: &str) -> Result<(), String> {
    match PARAM_LIMITS.iter().find(|(n, _)| *n == name) {
        Some((_, max)) if value.len() > *max => Err(format!("parameter '{name}' is longer than {max} bytes")),
        _ => Ok(()),
    }
}

/// Is `content_type` `application/x-www-form-urlencoded` (parameters allowed)?
pub fn is_form(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// Parse an `application/x-www-form-urlencoded` body. A repeated parameter is
/// `invalid_request` (RFC 6749 §3.2: "MUST NOT be included more than once").
pub fn parse_form(content_type: Option<&str>, body: &[u8]) -> Result<FormParams, OAuthError> {
    if !is_form(content_type) {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    if std::str::from_utf8(body).is_err() {
        return Err(OAuthError::invalid_request("the body is not UTF-8"));
    }
    FormParams::parse(body).map_err(OAuthError::invalid_request)
}

/// How the client identified itself (RFC 6749 §2.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCredentials {
    None,
    /// `client_secret_basic`: HTTP Basic, both parts form-urlencoded first.
    Basic {
        client_id: String,
        secret: SecretString,
    },
    /// `client_secret_post`: `client_id` and `client_secret` in the body.
    Post {
        client_id: String,
        secret: SecretString,
    },
    /// Only a `client_id`, no secret.
    IdOnly(String),
    /// `private_key_jwt` or a federated workload token: a JWT in
    /// `client_assertion` (RFC 7523 §2.2, RFC 7521 §4.2), not yet checked.
    Assertion {
        client_id: Option<String>,
        assertion: SecretString,
    },
    /// An assertion after its signature and claims were checked in memory
    /// ([`super::client_auth::check_assertion`]); the database confirms the rest.
    Asserted(Box<CheckedAssertion>),
}

impl ClientCredentials {
    pub fn presented_secret(&self) -> Option<(&str, &SecretString)> {
        match self {
            Self::Basic { client_id, secret } | Self::Post { client_id, secret } => Some((client_id, secret)),
            _ => None,
        }
    }
}

/// Undo `application/x-www-form-urlencoded` on one component (§2.3.1): `+` is a
/// space and `%XX` a byte. Standard clients send `-` as `%2D`.
fn form_decode(s: &str) -> Result<String, OAuthError> {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| OAuthError::invalid_client())
}

/// The client credentials of a request, from the `Authorization` header and the body.
/// Using more than one method is `invalid_request` (§2.3).
pub fn client_credentials(authorization: Option<&str>, form: &FormParams) -> Result<ClientCredentials, OAuthError> {
    let body_id = form.get("client_id");
    let body_secret = form.get("client_secret");
    if form.get("client_assertion").is_some() || form.get("client_assertion_type").is_some() {
        return assertion_credentials(authorization, form);
    }
    if let Some(header) = authorization {
        let (scheme, value) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(OAuthError::invalid_client());
        }
        let decoded = STANDARD
            .decode(value.trim())
            .map_err(|_| OAuthError::invalid_client())?;
        let decoded = String::from_utf8(decoded).map_err(|_| OAuthError::invalid_client())?;
        let (id, secret) = decoded.split_once(':').ok_or_else(OAuthError::invalid_client)?;
        let client_id = form_decode(id)?;
        check_length("client_id", &client_id).map_err(OAuthError::invalid_request)?;
        let secret = form_decode(secret)?;
        check_length("client_secret", &secret).map_err(OAuthError::invalid_request)?;
        if client_id.contains('\0') || secret.contains('\0') {
            return Err(OAuthError::invalid_request(format!(
                "Basic credentials: {}",
                crate::error::NUL_REFUSED
            )));
        }
        let secret = SecretString::new(secret);
        if body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not Basic and client_secret together",
            ));
        }
        if body_id.is_some_and(|b| b != client_id) {
            return Err(OAuthError::invalid_request(
                "client_id differs from the Basic credentials",
            ));
        }
        return Ok(ClientCredentials::Basic { client_id, secret });
    }
    match (body_id, body_secret) {
        (Some(id), Some(secret)) => Ok(ClientCredentials::Post {
            client_id: id.to_string(),
            secret: SecretString::new(secret),
        }),
        (Some(id), None) => Ok(ClientCredentials::IdOnly(id.to_string())),
        (None, Some(_)) => Err(OAuthError::invalid_request("client_secret without client_id")),
        (None, None) => Ok(ClientCredentials::None),
    }
}

/// RFC 7521 §4.2: `client_assertion_type` and `client_assertion` together,
/// and no other way of authenticating beside them.
fn assertion_credentials(authorization: Option<&str>, form: &FormParams) -> Result<ClientCredentials, OAuthError> {
    if authorization.is_some() || form.get("client_secret").is_some() {
        return Err(OAuthError::invalid_request(
            "use one client authentication method, not a client assertion and a secret together",
        ));
    }
    let Some(assertion) = form.get("client_assertion") else {
        return Err(OAuthError::invalid_request(
            "client_assertion_type without client_assertion",
        ));
    };
    match form.get("client_assertion_type") {
        Some(JWT_BEARER) => {}
        Some(_) => {
            return Err(OAuthError::new(
                ErrorCode::InvalidClient,
                format!("client_assertion_type must be {JWT_BEARER}"),
            ));
        }
        None => {
            return Err(OAuthError::invalid_request(
                "client_assertion without client_assertion_type",
            ));
        }
    }
    Ok(ClientCredentials::Assertion {
        client_id: form.get("client_id").map(str::to_string),
        assertion: SecretString::new(assertion),
    })
}

/// A token request, tagged by `grant_type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "grant_type", rename_all = "snake_case")]
pub enum TokenRequest {
    /// RFC 6749 §4.4.2, with `resource` from RFC 8707 §2.
    ClientCredentials {
        scope: Option<Scopes>,
        resource: Option<String>,
    },
    /// RFC 6749 §4.3.2.
    Password {
        username: String,
        password: SecretString,
        scope: Option<Scopes>,
        resource: Option<String>,
    },
    /// RFC 6749 §6.
    RefreshToken {
        refresh_token: SecretString,
        scope: Option<Scopes>,
    },
    /// RFC 6749 §4.1.3, with `code_verifier` (RFC 7636 §4.5).
    AuthorizationCode {
        code: SecretString,
        redirect_uri: Option<String>,
        code_verifier: Option<SecretString>,
    },
    /// RFC 8693 §2.1.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange(Box<ExchangeParams>),
    /// RFC 8628 §3.4.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode { device_code: SecretString },
}

/// The parameters of a token exchange (RFC 8693 §2.1), as sent.
#[derive(Debug, Clone, Deserialize)]
pub struct ExchangeParams {
    pub subject_token: SecretString,
    pub subject_token_type: String,
    pub actor_token: Option<SecretString>,
    pub actor_token_type: Option<String>,
    pub requested_token_type: Option<String>,
    /// RFC 8707 §2: a service's name, or `urn:roster:category:<name>`.
    pub resource: Option<String>,
    /// RFC 8693 §2.1: the same names as `resource`.
    pub audience: Option<String>,
    pub scope: Option<Scopes>,
}

pub const SUPPORTED_GRANTS: [&str; 6] = [
    "authorization_code",
    "client_credentials",
    "password",
    "refresh_token",
    TOKEN_EXCHANGE,
    DEVICE_CODE,
];

/// RFC 8628 §3.4.
pub const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

pub use roster_proto::claims::token_exchange::GRANT_TYPE as TOKEN_EXCHANGE;

impl TokenRequest {
    /// Its `grant_type`, as sent.
    pub fn grant_type(&self) -> &'static str {
        match self {
            Self::ClientCredentials { .. } => "client_credentials",
            Self::Password { .. } => "password",
            Self::RefreshToken { .. } => "refresh_token",
            Self::AuthorizationCode { .. } => "authorization_code",
            Self::TokenExchange(_) => TOKEN_EXCHANGE,
            Self::DeviceCode { .. } => DEVICE_CODE,
        }
    }

    /// Read the grant from the form. A missing `grant_type` or parameter is
    /// `invalid_request`; an unknown grant is `unsupported_grant_type`.
    pub fn from_form(form: &FormParams) -> Result<Self, OAuthError> {
        let grant = form
            .get("grant_type")
            .ok_or_else(|| OAuthError::invalid_request("missing grant_type"))?;
        if !SUPPORTED_GRANTS.contains(&grant) {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!("grant_type {grant:?} is not supported"),
            ));
        }
        // RFC 6749 §3.3, parsed once here: the grants see a set.
        if let Some(scope) = form.get("scope") {
            Scopes::parse(scope).map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
        }
        let value = serde_json::to_value(form.as_map()).map_err(|_| OAuthError::invalid_request("bad form"))?;
        serde_json::from_value(value).map_err(|e| {
            let msg = e.to_string();
            let field = msg
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split('`').next())
                .map(|f| format!("missing parameter '{f}'"));
            OAuthError::invalid_request(field.unwrap_or_else(|| "malformed token request".to_string()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(body: &str) -> FormParams {
        parse_form(
            Some("application/x-www-form-urlencoded; charset=UTF-8"),
            body.as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn overlong_parameters_are_refused_before_anything_else() {
        let long = "a".repeat(256);
        for name in ["client_id", "username", "client_secret"] {
            let body = format!("grant_type=password&{name}={long}");
            let e = parse_form(Some("application/x-www-form-urlencoded"), body.as_bytes()).unwrap_err();
            assert_eq!(
                (e.code(), e.description()),
                (
                    ErrorCode::InvalidRequest,
                    format!("parameter '{name}' is longer than 255 bytes").as_str()
                )
            );
        }
        let ok = format!("grant_type=client_credentials&client_id={}", "a".repeat(255));
        assert!(parse_form(Some("application/x-www-form-urlencoded"), ok.as_bytes()).is_ok());
        let header = format!("Basic {}", STANDARD.encode(format!("{long}:secret")));
        let e = client_credentials(Some(&header), &form("grant_type=client_credentials")).unwrap_err();
        assert_eq!(e.description(), "parameter 'client_id' is longer than 255 bytes");
        let e = parse_form(
            Some("application/x-www-form-urlencoded"),
            format!("scope={}", "s".repeat(1025)).as_bytes(),
        )
        .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest);
    }

    #[test]
    fn an_unsupported_grant_type_is_quoted_with_escapes() {
        let e = TokenRequest::from_form(&form("grant_type=x%0Aforged+line")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::UnsupportedGrantType);
        assert_eq!(e.description(), "grant_type \"x\\nforged line\" is not supported");
        assert!(!e.description().contains('\n'));
    }

    #[test]
    fn debug_shows_parameter_names_never_values() {
        let f = form("grant_type=password&username=alice&password=hunter2-secret&client_secret=s3cr3t-value");
        let shown = format!("{f:?}");
        assert!(shown.contains("password") && shown.contains("username"), "{shown}");
        for secret in ["hunter2-secret", "s3cr3t-value", "alice"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        let c = client_credentials(None, &form("client_id=a&client_secret=s3cr3t-value")).unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t-value"));
        let t = TokenRequest::from_form(&f).unwrap();
        assert!(!format!("{t:?}").contains("hunter2-secret"));
    }

    #[test]
    fn repeated_parameters_are_refused() {
        let e = parse_form(
            Some("application/x-www-form-urlencoded"),
            b"grant_type=password&scope=a&scope=b",
        )
        .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest);
        assert!(e.description().contains("scope"));
    }

    #[test]
    fn other_content_types_are_refused() {
        let e = parse_form(Some("application/json"), b"{}").unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest);
        assert!(parse_form(None, b"grant_type=x").is_err());
    }

    #[test]
    fn empty_values_count_as_omitted() {
        let f = form("grant_type=client_credentials&scope=");
        assert_eq!(f.get("scope"), None);
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        // openid-client sends '-' as %2D, and a space as '+'.
        let header = format!("Basic {}", STANDARD.encode("my%2Dsvc:s%2Decret+x"));
        let c = client_credentials(Some(&header), &form("grant_type=client_credentials")).unwrap();
        assert_eq!(
            c,
            ClientCredentials::Basic {
                client_id: "my-svc".into(),
                secret: SecretString::new("s-ecret x")
            }
        );
    }

    #[test]
    fn two_authentication_methods_are_refused() {
        let header = format!("Basic {}", STANDARD.encode("a:b"));
        let e = client_credentials(Some(&header), &form("client_id=a&client_secret=b")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest);
        let e = client_credentials(Some("Basic !!!"), &form("")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidClient);
        let e = client_credentials(Some("Bearer x"), &form("")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidClient);
    }

    #[test]
    fn post_and_id_only_credentials() {
        assert!(matches!(
            client_credentials(None, &form("client_id=a&client_secret=b")).unwrap(),
            ClientCredentials::Post { .. }
        ));
        assert_eq!(
            client_credentials(None, &form("client_id=a")).unwrap(),
            ClientCredentials::IdOnly("a".into())
        );
        assert_eq!(client_credentials(None, &form("")).unwrap(), ClientCredentials::None);
    }

    #[test]
    fn grant_types_parse_into_the_enum() {
        assert!(matches!(
            TokenRequest::from_form(&form("grant_type=client_credentials&scope=a+b")).unwrap(),
            TokenRequest::ClientCredentials { scope: Some(s), resource: None } if s.to_vec() == ["a", "b"]
        ));
        assert!(matches!(
            TokenRequest::from_form(&form("grant_type=password&username=u&password=p")).unwrap(),
            TokenRequest::Password { .. }
        ));
        let e = TokenRequest::from_form(&form("grant_type=password&username=u")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest);
        assert!(e.description().contains("password"), "{}", e.description());
        assert!(matches!(
            TokenRequest::from_form(&form("grant_type=authorization_code&code=x&code_verifier=v")).unwrap(),
            TokenRequest::AuthorizationCode {
                code_verifier: Some(_),
                redirect_uri: None,
                ..
            }
        ));
        let e = TokenRequest::from_form(&form("grant_type=authorization_code")).unwrap_err();
        assert_eq!(e.description(), "missing parameter 'code'");
        let e = TokenRequest::from_form(&form("grant_type=implicit&code=x")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::UnsupportedGrantType);
        let e = TokenRequest::from_form(&form("scope=a")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest);
    }

    proptest::proptest! {
        /// Any body and any Authorization header: an answer, never a panic;
        /// a refused parameter is `invalid_request` or `invalid_client`.
        #[test]
        fn the_token_request_parser_never_panics(
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
            header in proptest::option::of(".{0,200}"),
        ) {
            let parsed = parse_form(Some("application/x-www-form-urlencoded"), &body);
            if let Ok(form) = parsed {
                match client_credentials(header.as_deref(), &form) {
                    Ok(_) => {}
                    Err(e) => proptest::prop_assert!(matches!(e.code(), ErrorCode::InvalidRequest | ErrorCode::InvalidClient)),
                }
                let _ = TokenRequest::from_form(&form);
            }
        }

        /// Basic credentials built from any id and secret come back as sent.
        #[test]
        fn basic_credentials_round_trip(id in "[ -~]{1,60}", secret in "[ -~]{0,60}") {
            let encoded = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let header = format!("Basic {}", STANDARD.encode(format!("{}:{}", encoded(&id), encoded(&secret))));
            let c = client_credentials(Some(&header), &FormParams::default()).unwrap();
            proptest::prop_assert_eq!(c, ClientCredentials::Basic { client_id: id, secret: SecretString::new(secret) });
        }
    }
}
