//! The claims of a Roster access token: RFC 9068 §2.2 plus `principal_kind`
//! and `name`.

use serde::{Deserialize, Serialize};

/// RFC 9068 §2.1: the `typ` header of a JWT access token.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Does a JOSE `typ` header name an access token? RFC 9068 §4 accepts both
/// spellings, compared without case (RFC 7515 §4.1.9).
pub fn is_access_token_typ(typ: &str) -> bool {
    typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || typ.eq_ignore_ascii_case("application/at+jwt")
}

/// RFC 8693 §2.3 token type identifiers, and the grant of §2.1.
pub mod token_exchange {
    /// `grant_type` of a token exchange (RFC 8693 §2.1).
    pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
    /// An OAuth 2.0 access token (RFC 8693 §3).
    pub const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
    /// The prefix of an audience that names a registry category: every
    /// service of the category that is up.
    pub const CATEGORY_PREFIX: &str = "urn:roster:category:";
}

/// RFC 7519 §4.1.3 `aud`: one audience, serialised as a string, or
/// several, serialised as an array.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Audience(Vec<String>);

impl Audience {
    pub fn one(aud: impl Into<String>) -> Self {
        Self(vec![aud.into()])
    }

    pub fn many(auds: Vec<String>) -> Self {
        Self(auds)
    }

    /// Does the token name `aud` among its audiences?
    pub fn contains(&self, aud: &str) -> bool {
        self.0.iter().any(|a| a == aud)
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// The audience of a token that has exactly one.
    pub fn single(&self) -> Option<&str> {
        match self.0.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }
}

impl From<String> for Audience {
    fn from(aud: String) -> Self {
        Self::one(aud)
    }
}

impl From<&str> for Audience {
    fn from(aud: &str) -> Self {
        Self::one(aud)
    }
}

impl PartialEq<&str> for Audience {
    fn eq(&self, other: &&str) -> bool {
        self.single() == Some(*other)
    }
}

impl Serialize for Audience {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.single() {
            Some(one) => s.serialize_str(one),
            None => self.0.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        Ok(match OneOrMany::deserialize(d)? {
            OneOrMany::One(one) => Self(vec![one]),
            OneOrMany::Many(many) => Self(many),
        })
    }
}

/// RFC 8693 §4.1 `act`: the party acting for the token's subject. A
/// delegation chain nests: the `act` inside names the actor before this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The acting service's principal id.
    pub sub: String,
    /// The acting service's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_id: String,
    /// The actor before this one, if the token it exchanged had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
}

impl Actor {
    /// The actors from the current one (outermost) to the first.
    pub fn chain(&self) -> Vec<&Actor> {
        let mut out = vec![self];
        let mut at = self;
        while let Some(prior) = at.act.as_deref() {
            out.push(prior);
            at = prior;
        }
        out
    }

    /// How many hops the chain has.
    pub fn depth(&self) -> usize {
        self.chain().len()
    }
}

/// The claims Roster signs into every access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    /// The principal's UUID.
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    /// Roster always sets it; a verifier falls back to `iat` without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub jti: String,
    pub client_id: String,
    /// Space-separated scopes (RFC 9068 §2.2.3, RFC 8693 §4.2).
    #[serde(default)]
    pub scope: String,
    /// `human` or `service`.
    #[serde(default)]
    pub principal_kind: String,
    /// The principal's name (a service's name is its `client_id`).
    #[serde(default)]
    pub name: String,
    /// RFC 8693 §4.1: the delegation chain of an exchanged token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    /// The `jti` of the token an exchanged token derives from at the start
    /// of its chain: revoking that token ends this one too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_jti: Option<String>,
    /// How the person logged in (RFC 8176 method names: `pwd`, `otp`,
    /// `hwk`, `mfa`...), for tokens of a browser or device login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// The level the login reached (`pwd` or `mfa`), with `amr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
}

impl AccessTokenClaims {
    /// The scopes, in the order they were granted.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split_whitespace()
    }

    /// The `jti` that roots this token's chain: its own, unless exchanged.
    pub fn root(&self) -> &str {
        self.root_jti.as_deref().unwrap_or(&self.jti)
    }

    /// How many exchanges made this token (0 for one issued directly).
    pub fn depth(&self) -> usize {
        self.act.as_ref().map_or(0, Actor::depth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_is_compared_without_case() {
        for typ in ["at+jwt", "AT+JWT", "application/at+jwt", "Application/At+Jwt"] {
            assert!(is_access_token_typ(typ), "{typ}");
        }
        for typ in ["JWT", "at+jwt ", "", "application/jwt"] {
            assert!(!is_access_token_typ(typ), "{typ}");
        }
    }

    #[test]
    fn claims_round_trip_and_tolerate_what_older_tokens_lacked() {
        let c: AccessTokenClaims = serde_json::from_str(
            r#"{"iss":"https://r","sub":"s","aud":"a","exp":2,"iat":1,"jti":"j","client_id":"c"}"#,
        )
        .unwrap();
        assert_eq!((c.nbf, c.scope.as_str(), c.scopes().count()), (None, "", 0));
        let c = AccessTokenClaims {
            nbf: Some(1),
            scope: "a b".into(),
            ..c
        };
        let back: AccessTokenClaims = serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        assert_eq!(c.scopes().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!((c.root(), c.depth()), ("j", 0));
    }

    #[test]
    fn audiences_are_a_string_or_an_array_and_act_nests() {
        let one: Audience = serde_json::from_str(r#""billing""#).unwrap();
        assert_eq!(one, "billing");
        assert_eq!(serde_json::to_string(&one).unwrap(), r#""billing""#);
        let many: Audience = serde_json::from_str(r#"["mail","push"]"#).unwrap();
        assert!(many.contains("push") && !many.contains("billing") && many.single().is_none());
        assert_eq!(serde_json::to_string(&many).unwrap(), r#"["mail","push"]"#);
        let act: Actor = serde_json::from_str(r#"{"sub":"b","client_id":"billing","act":{"sub":"o"}}"#).unwrap();
        assert_eq!(act.depth(), 2);
        assert_eq!(
            act.chain().iter().map(|a| a.sub.as_str()).collect::<Vec<_>>(),
            ["b", "o"]
        );
        assert_eq!(
            serde_json::to_value(&act).unwrap(),
            serde_json::json!({"sub": "b", "client_id": "billing", "act": {"sub": "o"}})
        );
    }
}
