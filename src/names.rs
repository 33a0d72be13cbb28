//! The syntax of names (principals, categories) and scopes, shared by every
//! domain: one rule each, so that what one part of Roster accepts another
//! never refuses.

use crate::error::{Error, Result};
use crate::models::principal::CategoryAssignment;

/// `openid` asks for an ID token (OpenID Connect Core §3.1.2.1); `profile`
/// and `email` for the person's own claims (§5.4). They are never granted to
/// anyone: every person may let a first-party frontend know who they are.
pub const OIDC_SCOPES: [&str; 3] = ["openid", "profile", "email"];

pub fn is_oidc_scope(s: &str) -> bool {
    OIDC_SCOPES.contains(&s)
}

/// Does `scope` concern the service named `service`: the scope `service`
/// itself, or one of the form `service:…` (`orders:read` concerns `orders`).
/// The revocation feed shows a service only the scopes that concern it.
pub fn scope_concerns(scope: &str, service: &str) -> bool {
    scope
        .strip_prefix(service)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(':'))
}

/// Longest scope token.
pub const MAX_SCOPE_LEN: usize = 128;

/// Names of principals and categories: `[a-z0-9][a-z0-9._-]{0,62}`.
pub fn validate_name(field: &str, name: &str) -> Result<()> {
    let bytes = name.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 63
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("'{name}' is not a valid name: use 1 to 63 of a-z 0-9 . _ -, starting with a letter or digit"),
        ))
    }
}

/// Scopes (RFC 6749 §3.3 scope-tokens, narrowed): `[a-z0-9:._-]+`, at most
/// [`MAX_SCOPE_LEN`] characters.
pub fn validate_scope(scope: &str) -> Result<()> {
    let ok = !scope.is_empty()
        && scope.len() <= MAX_SCOPE_LEN
        && scope
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b':' | b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "scopes",
            format!("'{scope}' is not a valid scope: use a-z 0-9 : . _ -"),
        ))
    }
}

/// A `scope` (RFC 6749 §3.3): a set of scope tokens, kept sorted, written
/// space-delimited. A client's `scope` parameter is parsed into one once, at
/// the edge ([`Scopes::parse`]); a scope Roster signed or stored itself is
/// read back with [`Scopes::from_stored`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct Scopes(std::collections::BTreeSet<String>);

impl TryFrom<String> for Scopes {
    type Error = InvalidScope;

    fn try_from(value: String) -> std::result::Result<Self, InvalidScope> {
        Self::parse(&value)
    }
}

/// A scope token that breaks the rule of [`validate_scope`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a valid scope")]
pub struct InvalidScope(pub String);

impl Scopes {
    /// A client's `scope` parameter: tokens separated by spaces (runs of
    /// spaces are tolerated), each following [`validate_scope`].
    pub fn parse(value: &str) -> std::result::Result<Self, InvalidScope> {
        value
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(|s| match validate_scope(s) {
                Ok(()) => Ok(s.to_string()),
                Err(_) => Err(InvalidScope(s.to_string())),
            })
            .collect::<std::result::Result<_, _>>()
            .map(Self)
    }

    /// A scope Roster wrote itself (a token's claim, a stored grant).
    pub fn from_stored(value: &str) -> Self {
        Self(value.split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect())
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sorted, each once.
    pub fn to_vec(&self) -> Vec<String> {
        self.0.iter().cloned().collect()
    }
}

impl<S: Into<String>> FromIterator<S> for Scopes {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        Self(iter.into_iter().map(Into::into).collect())
    }
}

/// The space-delimited form, as a token's `scope` claim carries it.
impl std::fmt::Display for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(s)?;
        }
        Ok(())
    }
}

/// Category memberships: names follow the name rule and appear once each.
pub fn validate_categories(cats: &[CategoryAssignment]) -> Result<()> {
    for c in cats {
        validate_name("categories", &c.name)?;
    }
    let mut names: Vec<&str> = cats.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::invalid("categories", "a category is listed twice"));
    }
    Ok(())
}

/// Roster's own first-party public client: the admin console's login, the
/// device login's verification page, and `roster login`.
pub const FIRST_PARTY_CLIENT: &str = "roster-console";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rule() {
        for ok in ["a", "billing", "mail-sender", "svc.v2", "a_b", "0day", &"a".repeat(63)] {
            assert!(validate_name("name", ok).is_ok(), "{ok}");
        }
        for bad in ["", "Billing", "-x", ".x", "_x", "a b", "é", "a/b", &"a".repeat(64)] {
            assert!(
                matches!(validate_name("name", bad), Err(Error::Invalid { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_scope_parameter_is_a_sorted_set_of_valid_tokens() {
        let s = Scopes::parse("b a  b orders:read").unwrap();
        assert_eq!(s.to_vec(), ["a", "b", "orders:read"]);
        assert_eq!(s.to_string(), "a b orders:read");
        assert!(s.contains("orders:read") && !s.contains("orders"));
        assert_eq!(Scopes::parse("").unwrap(), Scopes::default());
        assert_eq!(Scopes::parse("a Bad c"), Err(InvalidScope("Bad".into())));
        assert_eq!(Scopes::parse("a\tb"), Err(InvalidScope("a\tb".into())));
        assert_eq!(Scopes::from_stored(" x  y ").to_vec(), ["x", "y"]);
    }

    #[test]
    fn scopes_follow_the_rule() {
        assert!(validate_scope("admin").is_ok());
        assert!(validate_scope("registry:write").is_ok());
        assert!(validate_scope(&"a".repeat(MAX_SCOPE_LEN)).is_ok());
        for bad in ["Admin", "a b", "", &"a".repeat(MAX_SCOPE_LEN + 1)] {
            assert!(matches!(validate_scope(bad), Err(Error::Invalid { .. })), "{bad}");
        }
    }
}
