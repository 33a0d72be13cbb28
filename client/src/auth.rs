//! [`ClientAuth`]: how a service proves who it is at the token endpoint. A
//! client secret; a private key that signs a fresh `private_key_jwt`
//! assertion for every request (RFC 7523 §2.2); or a workload token that
//! the platform writes to a file and rotates (a Kubernetes projected
//! service-account token, a SPIFFE JWT-SVID), read again for every request.

use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::SecretString;

/// RFC 7523 §2.2: the `client_assertion_type` of a JWT.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion this client signs lives: well under Roster's
/// five-minute limit, enough for a slow network.
const ASSERTION_LIFETIME: Duration = Duration::seconds(60);

/// How the service authenticates.
pub enum ClientAuth {
    /// A client secret, sent with HTTP Basic (RFC 6749 §2.3.1).
    Secret(SecretString),
    /// A private key: every token request carries a new assertion it signed.
    PrivateKey(AssertionSigner),
    /// A file holding a token from a trusted issuer, which the platform
    /// replaces before it expires: read anew for every token request.
    AssertionFile(PathBuf),
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Secret(_) => f.write_str("ClientAuth::Secret([redacted])"),
            Self::PrivateKey(s) => write!(f, "ClientAuth::PrivateKey({s:?})"),
            Self::AssertionFile(p) => write!(f, "ClientAuth::AssertionFile({})", p.display()),
        }
    }
}

/// The signing algorithms of a client's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlg {
    /// Ed25519 (an `-----BEGIN PRIVATE KEY-----` PKCS#8 PEM).
    EdDsa,
    /// ECDSA P-256 with SHA-256 (PKCS#8 PEM).
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (PKCS#1 or PKCS#8 PEM).
    Rs256,
    /// RSASSA-PSS with SHA-256 (PKCS#1 or PKCS#8 PEM).
    Ps256,
}

impl SigningAlg {
    fn jwt(self) -> Algorithm {
        match self {
            Self::EdDsa => Algorithm::EdDSA,
            Self::Es256 => Algorithm::ES256,
            Self::Rs256 => Algorithm::RS256,
            Self::Ps256 => Algorithm::PS256,
        }
    }
}

/// A key that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("the private key could not be read: {0}")]
pub struct KeyError(String);

/// A private key and its `kid`: signs this client's assertions. `Debug`
/// shows the algorithm and `kid`, never the key.
pub struct AssertionSigner {
    key: EncodingKey,
    alg: SigningAlg,
    kid: Option<String>,
}

impl std::fmt::Debug for AssertionSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssertionSigner")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl AssertionSigner {
    /// A key from its PEM text. `kid` names it in the JWK Set registered
    /// with Roster (give one when the set holds more than one key).
    pub fn from_pem(alg: SigningAlg, pem: &[u8], kid: Option<&str>) -> Result<Self, KeyError> {
        let key = match alg {
            SigningAlg::EdDsa => EncodingKey::from_ed_pem(pem),
            SigningAlg::Es256 => EncodingKey::from_ec_pem(pem),
            SigningAlg::Rs256 | SigningAlg::Ps256 => EncodingKey::from_rsa_pem(pem),
        }
        .map_err(|e| KeyError(e.to_string()))?;
        let signer = Self {
            key,
            alg,
            kid: kid.map(str::to_string),
        };
        // A key of another kind than `alg` fails here, not at the first request.
        signer.public_jwk()?;
        Ok(signer)
    }

    /// The public half, as the JWK to register (`kid`, `alg` and `use` set).
    pub fn public_jwk(&self) -> Result<Jwk, KeyError> {
        let mut jwk = Jwk::from_encoding_key(&self.key, self.alg.jwt()).map_err(|e| KeyError(e.to_string()))?;
        jwk.common.key_id = self.kid.clone();
        jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
        Ok(jwk)
    }

    /// The JWK Set to register for the service: this key alone.
    pub fn public_jwk_set(&self) -> Result<JwkSet, KeyError> {
        Ok(JwkSet {
            keys: vec![self.public_jwk()?],
        })
    }

    /// A new assertion for `client_id` towards `audience` (the token
    /// endpoint URL), valid for a minute from `now`, with a fresh `jti`.
    pub fn sign(&self, client_id: &str, audience: &str, now: DateTime<Utc>) -> Result<String, KeyError> {
        let mut header = Header::new(self.alg.jwt());
        header.kid = self.kid.clone();
        let claims = serde_json::json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "iat": now.timestamp(),
            "exp": (now + ASSERTION_LIFETIME).timestamp(),
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| KeyError(e.to_string()))
    }
}

/// The `client_assertion` to send now, if this authentication uses one.
pub(crate) fn assertion(
    auth: &ClientAuth,
    client_id: &str,
    token_endpoint: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>, String> {
    match auth {
        ClientAuth::Secret(_) => Ok(None),
        ClientAuth::PrivateKey(signer) => signer
            .sign(client_id, token_endpoint, now)
            .map(Some)
            .map_err(|e| e.to_string()),
        ClientAuth::AssertionFile(path) => std::fs::read_to_string(path)
            .map(|t| Some(t.trim().to_string()))
            .map_err(|e| format!("the assertion file {} could not be read: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIBERERERERERERERERERERERERERERERERERERERERER\n-----END PRIVATE KEY-----\n";

    #[test]
    fn assertions_carry_what_rfc_7523_asks_and_verify_with_the_public_jwk() {
        let signer = AssertionSigner::from_pem(SigningAlg::EdDsa, ED_PEM.as_bytes(), Some("k1")).unwrap();
        let now = DateTime::from_timestamp(1_900_000_000, 0).unwrap();
        let a = signer
            .sign("billing", "https://roster.example/oauth/token", now)
            .unwrap();
        let b = signer
            .sign("billing", "https://roster.example/oauth/token", now)
            .unwrap();
        let jwk = signer.public_jwk().unwrap();
        assert_eq!(jwk.common.key_id.as_deref(), Some("k1"));
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let mut v = jsonwebtoken::Validation::new(Algorithm::EdDSA);
        v.validate_exp = false;
        v.set_audience(&["https://roster.example/oauth/token"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(&a, &key, &v).unwrap().claims;
        assert_eq!(claims["iss"], "billing");
        assert_eq!(claims["sub"], "billing");
        assert_eq!(claims["exp"], 1_900_000_060);
        let other = jsonwebtoken::decode::<serde_json::Value>(&b, &key, &v).unwrap().claims;
        assert_ne!(claims["jti"], other["jti"]);
        assert!(!format!("{signer:?}").contains("MC4C"));
        assert!(AssertionSigner::from_pem(SigningAlg::Es256, ED_PEM.as_bytes(), None).is_err());
    }
}
