//! What admins send to create and change principals, and the rules it must
//! follow before anything is stored.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::auth::secrets::SecretString;
use crate::error::{Error, Result};
use crate::models::client_key::AuthMethod;
use crate::models::client_settings::ClientSettings;
use crate::models::principal::{CategoryAssignment, PrincipalKind, PrincipalStatus};
pub use crate::models::token_exchange::ExchangePolicy;
use crate::names::{validate_categories, validate_name, validate_scope};
use roster_proto::claims::token_exchange::CATEGORY_PREFIX;

/// `POST /api/v1/principals`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePrincipal {
    pub kind: PrincipalKind,
    pub name: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub password: Option<SecretString>,
    /// A person with no password: answer a single-use link with which
    /// they register their first passkey.
    #[serde(default)]
    pub invite: bool,
    #[serde(default)]
    pub categories: Vec<CategoryAssignment>,
    /// A frontend without a secret (RFC 6749 §2.1): no secret is created.
    #[serde(default)]
    pub public_client: bool,
    /// Where this service may send people back after a login (exact URLs).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Where this service may send people back after a logout (exact URLs).
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// RFC 7591 §2: how the service authenticates (default `client_secret_post`).
    pub token_endpoint_auth_method: Option<AuthMethod>,
    /// `private_key_jwt`: the service's public keys (a JWK Set)...
    pub jwks: Option<serde_json::Value>,
    /// ...or where Roster fetches them.
    pub jwks_uri: Option<String>,
    /// External identities (a trusted issuer's subject) that stand for it.
    pub federated_subjects: Option<Vec<FederatedSubject>>,
    /// RFC 8693: which audiences it may exchange its callers' tokens for.
    pub token_exchange: Option<ExchangePolicy>,
}

impl CreatePrincipal {
    /// The principal to create, without its password.
    pub fn principal(&self) -> NewPrincipal {
        NewPrincipal {
            kind: self.kind,
            name: self.name.clone(),
            display_name: self.display_name.clone(),
            email: self.email.clone(),
            scopes: self.scopes.clone(),
            categories: self.categories.clone(),
            client: ClientSettings {
                public_client: self.public_client || self.token_endpoint_auth_method == Some(AuthMethod::None),
                redirect_uris: self.redirect_uris.clone(),
                post_logout_redirect_uris: self.post_logout_redirect_uris.clone(),
            },
            credentials: CredentialChanges {
                method: self.token_endpoint_auth_method,
                jwks: self.jwks.clone().map(Some),
                jwks_uri: self.jwks_uri.clone().map(Some),
                federated_subjects: self.federated_subjects.clone(),
            },
            token_exchange: self.token_exchange.clone(),
        }
    }
}

/// `PATCH /api/v1/principals/{id}`: a missing field stays as it is; `null`
/// clears a nullable one.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchPrincipal {
    #[serde(default, deserialize_with = "double_option")]
    pub display_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub email: Option<Option<String>>,
    pub scopes: Option<Vec<String>>,
    pub categories: Option<Vec<CategoryAssignment>>,
    pub status: Option<PrincipalStatus>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub token_endpoint_auth_method: Option<AuthMethod>,
    #[serde(default, deserialize_with = "double_option")]
    pub jwks: Option<Option<serde_json::Value>>,
    #[serde(default, deserialize_with = "double_option")]
    pub jwks_uri: Option<Option<String>>,
    pub federated_subjects: Option<Vec<FederatedSubject>>,
    /// `null` removes the policy: the service exchanges nothing.
    #[serde(default, deserialize_with = "double_option")]
    pub token_exchange: Option<Option<ExchangePolicy>>,
}

/// For PATCH: a missing field is `None`, `null` is `Some(None)`.
fn double_option<'de, T, D>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Deserialize::deserialize(d).map(Some)
}

/// A new principal, as the CLI and the API both build it.
#[derive(Debug, Clone)]
pub struct NewPrincipal {
    pub kind: PrincipalKind,
    pub name: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub scopes: Vec<String>,
    pub categories: Vec<CategoryAssignment>,
    /// Browser-login settings of a service.
    pub client: ClientSettings,
    /// How a service authenticates, besides the default secret.
    pub credentials: CredentialChanges,
    /// What it may exchange its callers' tokens for (RFC 8693).
    pub token_exchange: Option<ExchangePolicy>,
}

impl NewPrincipal {
    pub fn validate(&self) -> Result<()> {
        validate_name("name", &self.name)?;
        if let Some(d) = &self.display_name {
            validate_display_name(d)?;
        }
        if let Some(e) = &self.email {
            validate_email(e)?;
        }
        for s in &self.scopes {
            validate_scope(s)?;
        }
        if self.kind == PrincipalKind::Human && !self.categories.is_empty() {
            return Err(Error::invalid(
                "categories",
                "only service principals belong to categories",
            ));
        }
        validate_client(self.kind, &self.client)?;
        validate_credentials(self.kind, &self.credentials)?;
        if let Some(policy) = &self.token_exchange {
            validate_exchange_policy(self.kind, policy)?;
        }
        if self.client.public_client && self.credentials.method.is_some_and(|m| m != AuthMethod::None) {
            return Err(Error::invalid(
                "token_endpoint_auth_method",
                "a public client's token_endpoint_auth_method is none",
            ));
        }
        validate_categories(&self.categories)
    }
}

/// Changes to a principal; `None` leaves a field as it is. For the nullable
/// fields, `Some(None)` clears them.
#[derive(Debug, Clone, Default)]
pub struct PrincipalChanges {
    pub display_name: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub scopes: Option<Vec<String>>,
    pub categories: Option<Vec<CategoryAssignment>>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub credentials: CredentialChanges,
    /// `Some(None)` removes the exchange policy.
    pub token_exchange: Option<Option<ExchangePolicy>>,
}

impl From<&PatchPrincipal> for PrincipalChanges {
    fn from(p: &PatchPrincipal) -> Self {
        Self {
            display_name: p.display_name.clone(),
            email: p.email.clone(),
            scopes: p.scopes.clone(),
            categories: p.categories.clone(),
            redirect_uris: p.redirect_uris.clone(),
            post_logout_redirect_uris: p.post_logout_redirect_uris.clone(),
            credentials: CredentialChanges {
                method: p.token_endpoint_auth_method,
                jwks: p.jwks.clone(),
                jwks_uri: p.jwks_uri.clone(),
                federated_subjects: p.federated_subjects.clone(),
            },
            token_exchange: p.token_exchange.clone(),
        }
    }
}

impl PrincipalChanges {
    pub fn validate(&self, kind: PrincipalKind) -> Result<()> {
        if let Some(Some(d)) = &self.display_name {
            validate_display_name(d)?;
        }
        if let Some(Some(e)) = &self.email {
            validate_email(e)?;
        }
        for s in self.scopes.iter().flatten() {
            validate_scope(s)?;
        }
        if let Some(cats) = &self.categories {
            if kind == PrincipalKind::Human && !cats.is_empty() {
                return Err(Error::invalid(
                    "categories",
                    "only service principals belong to categories",
                ));
            }
            validate_categories(cats)?;
        }
        for (field, list) in [
            ("redirect_uris", &self.redirect_uris),
            ("post_logout_redirect_uris", &self.post_logout_redirect_uris),
        ] {
            if let Some(list) = list {
                if kind == PrincipalKind::Human {
                    return Err(Error::invalid(field, "only service principals log people in"));
                }
                validate_redirect_uris(field, list)?;
            }
        }
        validate_credentials(kind, &self.credentials)?;
        if let Some(Some(policy)) = &self.token_exchange {
            validate_exchange_policy(kind, policy)?;
        }
        if kind == PrincipalKind::Human && self.token_exchange.is_some() {
            return Err(Error::invalid("token_exchange", "only services exchange tokens"));
        }
        Ok(())
    }

    /// Does this change touch the browser-login settings?
    pub fn touches_client(&self) -> bool {
        self.redirect_uris.is_some() || self.post_logout_redirect_uris.is_some()
    }

    /// The names of the fields this change touches, for the audit log.
    pub fn fields(&self) -> Vec<&'static str> {
        [
            ("display_name", self.display_name.is_some()),
            ("email", self.email.is_some()),
            ("scopes", self.scopes.is_some()),
            ("categories", self.categories.is_some()),
            ("redirect_uris", self.redirect_uris.is_some()),
            ("post_logout_redirect_uris", self.post_logout_redirect_uris.is_some()),
            ("token_exchange", self.token_exchange.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, touched)| touched.then_some(name))
        .chain(self.credentials.fields())
        .collect()
    }
}

/// Only services authenticate as clients; the rest of the rules are the
/// credentials' own ([`CredentialChanges::validate`]).
fn validate_credentials(kind: PrincipalKind, c: &CredentialChanges) -> Result<()> {
    if kind == PrincipalKind::Human
        && let Some(field) = c.fields().first()
    {
        return Err(Error::invalid(
            *field,
            "only service principals authenticate as clients",
        ));
    }
    c.validate()
}

/// Most audiences one exchange policy names.
pub const MAX_EXCHANGE_AUDIENCES: usize = 50;
/// The longest delegation chain a policy may allow.
pub const MAX_EXCHANGE_DEPTH: i32 = 10;

/// An exchange policy names services or categories, each once, and allows
/// chains of 1 to [`MAX_EXCHANGE_DEPTH`] hops. The names need not exist
/// yet: a target is checked when a token is exchanged for it.
fn validate_exchange_policy(kind: PrincipalKind, policy: &ExchangePolicy) -> Result<()> {
    const FIELD: &str = "token_exchange";
    if kind == PrincipalKind::Human {
        return Err(Error::invalid(FIELD, "only services exchange tokens"));
    }
    if policy.audiences.len() > MAX_EXCHANGE_AUDIENCES {
        return Err(Error::invalid(
            FIELD,
            format!("at most {MAX_EXCHANGE_AUDIENCES} audiences"),
        ));
    }
    for aud in &policy.audiences {
        let name = aud.strip_prefix(CATEGORY_PREFIX).unwrap_or(aud);
        validate_name(FIELD, name).map_err(|_| {
            Error::invalid(
                FIELD,
                format!(
                    "audience '{}' is neither a service name nor {CATEGORY_PREFIX}<category>",
                    aud.escape_debug()
                ),
            )
        })?;
    }
    let mut names: Vec<&str> = policy.audiences.iter().map(String::as_str).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::invalid(FIELD, "an audience is listed twice"));
    }
    if !(1..=MAX_EXCHANGE_DEPTH).contains(&policy.max_depth) {
        return Err(Error::invalid(
            FIELD,
            format!("max_depth is from 1 to {MAX_EXCHANGE_DEPTH}"),
        ));
    }
    Ok(())
}

/// Most external identities one service accepts.
pub const MAX_FEDERATED_SUBJECTS: usize = 20;
/// Longest external subject, in bytes.
pub const MAX_SUBJECT_LEN: usize = 255;

/// One external identity that stands for a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederatedSubject {
    /// A trusted issuer's identifier (`iss`), as registered.
    pub issuer: String,
    /// The `sub` its tokens carry for this service.
    pub subject: String,
}

/// A change to how a service authenticates; `None` leaves a part as it is,
/// and `Some(None)` clears `jwks` or `jwks_uri`. Creation is a change of a
/// service that has none of it yet.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CredentialChanges {
    pub method: Option<AuthMethod>,
    pub jwks: Option<Option<serde_json::Value>>,
    pub jwks_uri: Option<Option<String>>,
    pub federated_subjects: Option<Vec<FederatedSubject>>,
}

impl CredentialChanges {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// The names of the fields this change touches, for the audit log.
    pub fn fields(&self) -> Vec<&'static str> {
        [
            ("token_endpoint_auth_method", self.method.is_some()),
            ("jwks", self.jwks.is_some()),
            ("jwks_uri", self.jwks_uri.is_some()),
            ("federated_subjects", self.federated_subjects.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, touched)| touched.then_some(name))
        .collect()
    }

    /// The rules that need no database: a JWK Set of public keys, a
    /// `jwks_uri` that is `https` (`http` only on a loopback host), subjects
    /// within bounds and none twice.
    pub fn validate(&self) -> Result<()> {
        if let Some(Some(jwks)) = &self.jwks {
            crate::auth::assertion::check_key_set(jwks).map_err(|e| Error::invalid("jwks", e))?;
        }
        if let Some(Some(uri)) = &self.jwks_uri {
            validate_redirect_uri("jwks_uri", uri)?;
        }
        if let Some(subjects) = &self.federated_subjects {
            if subjects.len() > MAX_FEDERATED_SUBJECTS {
                return Err(Error::invalid(
                    "federated_subjects",
                    format!("at most {MAX_FEDERATED_SUBJECTS} subjects"),
                ));
            }
            for (i, s) in subjects.iter().enumerate() {
                if s.issuer.is_empty() || s.issuer.len() > 500 || s.issuer.chars().any(char::is_control) {
                    return Err(Error::invalid(
                        "federated_subjects",
                        "an issuer is 1 to 500 bytes without control characters",
                    ));
                }
                if s.subject.is_empty() || s.subject.len() > MAX_SUBJECT_LEN || s.subject.chars().any(char::is_control)
                {
                    return Err(Error::invalid(
                        "federated_subjects",
                        format!("a subject is 1 to {MAX_SUBJECT_LEN} bytes without control characters"),
                    ));
                }
                if subjects[..i].contains(s) {
                    return Err(Error::invalid(
                        "federated_subjects",
                        format!("'{}' of '{}' is listed twice", s.subject, s.issuer),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Most URLs in one redirect list.
pub const MAX_REDIRECT_URIS: usize = 20;
/// Longest redirect URL, in bytes.
pub const MAX_REDIRECT_URI_LEN: usize = 2000;

fn validate_client(kind: PrincipalKind, c: &ClientSettings) -> Result<()> {
    if kind == PrincipalKind::Human && c != &ClientSettings::default() {
        let field = if c.public_client {
            "public_client"
        } else {
            "redirect_uris"
        };
        return Err(Error::invalid(field, "only service principals log people in"));
    }
    validate_redirect_uris("redirect_uris", &c.redirect_uris)?;
    validate_redirect_uris("post_logout_redirect_uris", &c.post_logout_redirect_uris)
}

/// A list of redirect URIs: each absolute, at most [`MAX_REDIRECT_URIS`], none twice.
pub fn validate_redirect_uris(field: &str, list: &[String]) -> Result<()> {
    if list.len() > MAX_REDIRECT_URIS {
        return Err(Error::invalid(field, format!("at most {MAX_REDIRECT_URIS} URLs")));
    }
    for (i, uri) in list.iter().enumerate() {
        validate_redirect_uri(field, uri)?;
        if list[..i].contains(uri) {
            return Err(Error::invalid(field, format!("'{uri}' is listed twice")));
        }
    }
    Ok(())
}

/// One redirect URI (RFC 6749 §3.1.2, RFC 9700 §2.1, RFC 8252 §7.3): an
/// absolute `https` URL, or `http` on a loopback host; no fragment and no
/// user or password. It is matched exactly, as a string, so it is kept as sent.
pub fn validate_redirect_uri(field: &str, uri: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::invalid(field, format!("'{uri}' {why}")));
    if uri.len() > MAX_REDIRECT_URI_LEN {
        return Err(Error::invalid(
            field,
            format!("a URL is longer than {MAX_REDIRECT_URI_LEN} bytes"),
        ));
    }
    let Ok(url) = url::Url::parse(uri) else {
        return bad("is not an absolute URL");
    };
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return bad("has no host"),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return bad("must use https (http only on a loopback host)"),
        _ => return bad("must be an https URL"),
    }
    if url.fragment().is_some() || uri.contains('#') {
        return bad("must not have a fragment (RFC 6749 §3.1.2)");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return bad("must not carry a user or password");
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("must not contain spaces or control characters");
    }
    Ok(())
}

fn validate_display_name(d: &str) -> Result<()> {
    if d.is_empty() || d.chars().count() > 200 {
        return Err(Error::invalid("display_name", "must be 1 to 200 characters"));
    }
    Ok(())
}

pub fn validate_email(email: &str) -> Result<()> {
    let ok = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid("email", "not a valid email address"))
    }
}

/// `NAME` or `NAME:PRIORITY`, as the CLI takes a category.
pub fn parse_category(s: &str) -> Result<CategoryAssignment> {
    let (name, priority) = match s.rsplit_once(':') {
        Some((name, p)) => {
            let priority = i32::from_str(p)
                .map_err(|_| Error::invalid("category", format!("priority '{p}' is not an integer")))?;
            (name, priority)
        }
        None => (s, 0),
    };
    validate_name("category", name)?;
    Ok(CategoryAssignment {
        name: name.to_string(),
        priority,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(e: Error) -> String {
        match e {
            Error::Invalid { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn category_assignments_parse() {
        assert_eq!(
            parse_category("notification:10").unwrap(),
            CategoryAssignment {
                name: "notification".into(),
                priority: 10
            }
        );
        assert_eq!(parse_category("application").unwrap().priority, 0);
        assert_eq!(field(parse_category("x:high").unwrap_err()), "category");
        assert_eq!(field(parse_category("Bad:1").unwrap_err()), "category");
    }

    #[test]
    fn new_principals_are_checked_field_by_field() {
        let ok = NewPrincipal {
            kind: PrincipalKind::Human,
            name: "alice".into(),
            display_name: Some("Alice".into()),
            email: Some("alice@example.com".into()),
            scopes: vec!["registry:read".into()],
            categories: vec![],
            client: ClientSettings::default(),
            credentials: CredentialChanges::default(),
            token_exchange: None,
        };
        ok.validate().unwrap();
        let mut bad = ok.clone();
        bad.email = Some("not an email".into());
        assert_eq!(field(bad.validate().unwrap_err()), "email");
        let mut bad = ok.clone();
        bad.display_name = Some(String::new());
        assert_eq!(field(bad.validate().unwrap_err()), "display_name");
        let mut bad = ok.clone();
        bad.categories = vec![CategoryAssignment {
            name: "x".into(),
            priority: 0,
        }];
        assert_eq!(field(bad.validate().unwrap_err()), "categories");
        let twice = vec![
            CategoryAssignment {
                name: "x".into(),
                priority: 0,
            },
            CategoryAssignment {
                name: "x".into(),
                priority: 1,
            },
        ];
        assert_eq!(field(validate_categories(&twice).unwrap_err()), "categories");
    }

    #[test]
    fn redirect_uris_are_absolute_https_or_loopback_http_without_fragment() {
        for ok in [
            "https://app.example/callback",
            "https://app.example:8443/cb?x=1",
            "http://127.0.0.1:5173/cb",
            "http://localhost:3000/",
            "http://[::1]:8080/cb",
        ] {
            validate_redirect_uri("redirect_uris", ok).unwrap();
        }
        for bad in [
            "/callback",
            "app.example/cb",
            "http://app.example/cb",
            "https://app.example/cb#frag",
            "https://user:pw@app.example/cb",
            "javascript:alert(1)",
            "data:text/html,x",
            "ftp://app.example/",
            "https://app.example/c b",
            "http://127.0.0.1.evil.example/cb",
        ] {
            assert_eq!(
                field(validate_redirect_uri("redirect_uris", bad).unwrap_err()),
                "redirect_uris",
                "{bad}"
            );
        }
        let twice = vec!["https://a.example/".to_string(), "https://a.example/".to_string()];
        assert!(validate_redirect_uris("redirect_uris", &twice).is_err());
        let long = vec![format!("https://a.example/{}", "x".repeat(MAX_REDIRECT_URI_LEN))];
        assert!(validate_redirect_uris("redirect_uris", &long).is_err());
        let human = NewPrincipal {
            kind: PrincipalKind::Human,
            name: "alice".into(),
            display_name: None,
            email: None,
            scopes: vec![],
            categories: vec![],
            client: ClientSettings {
                redirect_uris: vec!["https://a.example/".into()],
                ..Default::default()
            },
            credentials: CredentialChanges::default(),
            token_exchange: None,
        };
        assert_eq!(field(human.validate().unwrap_err()), "redirect_uris");
    }

    #[test]
    fn changes_name_the_fields_they_touch() {
        let c = PrincipalChanges {
            email: Some(None),
            scopes: Some(vec![]),
            ..Default::default()
        };
        assert_eq!(c.fields(), vec!["email", "scopes"]);
        assert_eq!(
            field(
                PrincipalChanges {
                    categories: Some(vec![CategoryAssignment {
                        name: "a".into(),
                        priority: 0
                    }]),
                    ..Default::default()
                }
                .validate(PrincipalKind::Human)
                .unwrap_err()
            ),
            "categories"
        );
    }
}
