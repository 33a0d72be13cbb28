//! JWT signing keys: generation, encryption at rest, three-phase rotation and
//! the [`KeyStore`] every instance signs and verifies with.
//!
//! Rotation (all instances share the keys through the database):
//! 1. `next`: a new key is published in the JWKS but signs nothing yet;
//! 2. after the publish delay it becomes `active` and signs new tokens;
//! 3. the previous key is `retired`: still published until the last token it
//!    signed has expired (activation time + access-token lifetime + leeway).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use diesel::Connection;
use jsonwebtoken::{Algorithm, DecodingKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

use crate::auth::sealed;
use crate::auth::secrets::Pepper;
use crate::db::DbConnection;
use crate::error::{Error, Result};
use crate::models::signing_key::{self, KeyState, SigningKeyRow};

/// The JWS algorithms Roster signs with. Never HS*.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SigningAlg {
    #[value(name = "EdDSA")]
    EdDsa,
    #[value(name = "ES256")]
    Es256,
}

impl SigningAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "EdDSA" => Some(Self::EdDsa),
            "ES256" => Some(Self::Es256),
            _ => None,
        }
    }
    pub fn jwt_alg(self) -> Algorithm {
        match self {
            Self::EdDsa => Algorithm::EdDSA,
            Self::Es256 => Algorithm::ES256,
        }
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How keys are rotated.
#[derive(Debug, Clone)]
pub struct KeyPolicy {
    pub alg: SigningAlg,
    /// How long a `next` key is published before it signs.
    pub publish_delay: Duration,
    /// Access-token lifetime: a retired key stays published this long (plus leeway).
    pub access_token_ttl: Duration,
    /// Automatic rotation: a new key once the active one is this old. `None`: manual only.
    pub rotation_interval: Option<Duration>,
}

/// Clock skew allowed for resource servers, added to the retirement window.
pub const RETIRE_LEEWAY_SECS: i64 = 60;

struct Generated {
    pkcs8: Vec<u8>,
    public_jwk: Value,
}

fn generate(alg: SigningAlg, kid: &str) -> Result<Generated> {
    let rng = SystemRandom::new();
    match alg {
        SigningAlg::EdDsa => {
            let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| Error::internal("Ed25519 key generation"))?;
            let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).map_err(|_| Error::internal("Ed25519 key parse"))?;
            let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
            Ok(Generated {
                pkcs8: doc.as_ref().to_vec(),
                public_jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}),
            })
        }
        SigningAlg::Es256 => {
            let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| Error::internal("P-256 key generation"))?;
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref(), &rng)
                .map_err(|_| Error::internal("P-256 key parse"))?;
            // Uncompressed point: 0x04 || X (32) || Y (32).
            let point = pair.public_key().as_ref();
            if point.len() != 65 {
                return Err(Error::internal("unexpected P-256 public key length"));
            }
            let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
            let y = URL_SAFE_NO_PAD.encode(&point[33..65]);
            Ok(Generated {
                pkcs8: doc.as_ref().to_vec(),
                public_jwk: json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "alg": "ES256", "use": "sig"}),
            })
        }
    }
}

const SEALING_PURPOSE: &str = "signing-key-encryption";

/// Encrypt a private key; the kid is bound as associated data.
fn seal(pepper: &Pepper, kid: &str, plaintext: &[u8]) -> Result<String> {
    sealed::seal(&sealed::key_for(pepper, SEALING_PURPOSE)?, kid.as_bytes(), plaintext)
}

fn open(pepper: &Pepper, kid: &str, sealed_key: &str) -> Result<Vec<u8>> {
    // Keys sealed before key derivation moved to HKDF open with the old sub-key.
    let keys = [
        sealed::key_for(pepper, SEALING_PURPOSE)?,
        sealed::aes_key(&pepper.legacy_derive_key(SEALING_PURPOSE))?,
    ];
    sealed::open(&keys, kid.as_bytes(), sealed_key, "signing key")
}

fn new_key_row(
    pepper: &Pepper,
    alg: SigningAlg,
    kid: String,
    state: KeyState,
    now: DateTime<Utc>,
) -> Result<SigningKeyRow> {
    let g = generate(alg, &kid)?;
    Ok(SigningKeyRow {
        private_key: seal(pepper, &kid, &g.pkcs8)?,
        public_jwk: g.public_jwk.to_string(),
        alg: alg.as_str().to_string(),
        state,
        created_at: now,
        activated_at: (state == KeyState::Active).then_some(now),
        publish_until: None,
        kid,
    })
}

/// A kid derived from the pepper and a label, so that instances racing to
/// create "the same" key collide on the primary key instead of making two.
fn derived_kid(pepper: &Pepper, label: &str) -> String {
    pepper.mac_hex(format!("kid:{label}").as_bytes())[..16].to_string()
}

fn random_kid() -> Result<String> {
    let mut b = [0u8; 8];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| Error::internal("random kid"))?;
    Ok(crate::auth::secrets::hex(&b))
}

/// Insert a key in a savepoint; a primary-key collision means another instance
/// made it first, which is fine.
fn insert_unless_exists(conn: &mut DbConnection, row: &SigningKeyRow) -> Result<()> {
    match conn.transaction(|conn| signing_key::insert(conn, row)) {
        Ok(()) | Err(Error::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The key that signs: the most recently activated active one.
fn active_key(keys: &[SigningKeyRow]) -> Option<&SigningKeyRow> {
    keys.iter()
        .filter(|k| k.state == KeyState::Active)
        .max_by_key(|k| (k.activated_at, k.kid.clone()))
}

/// Start a rotation: publish a new `next` key. Returns its kid.
pub fn rotate(conn: &mut DbConnection, pepper: &Pepper, alg: SigningAlg, now: DateTime<Utc>) -> Result<String> {
    let row = new_key_row(pepper, alg, random_kid()?, KeyState::Next, now)?;
    signing_key::insert(conn, &row)?;
    Ok(row.kid)
}

/// Bring the keys up to date at `now`: create the first key, promote a `next`
/// key whose publish delay has passed, retire the old one, start an automatic
/// rotation when due, and drop retired keys nobody can hold a token for.
pub fn maintain(conn: &mut DbConnection, pepper: &Pepper, policy: &KeyPolicy, now: DateTime<Utc>) -> Result<()> {
    crate::db::transaction(conn, |conn| {
        let keys = signing_key::all(conn)?;
        let active = active_key(&keys);
        let next = keys
            .iter()
            .filter(|k| k.state == KeyState::Next)
            .min_by_key(|k| (k.created_at, k.kid.clone()));

        match (active, next) {
            (None, None) => {
                // First start: nothing has been signed yet, so there is nothing
                // to publish ahead of; the first key is active at once.
                let row = new_key_row(pepper, policy.alg, derived_kid(pepper, "first"), KeyState::Active, now)?;
                insert_unless_exists(conn, &row)?;
            }
            (None, Some(next)) => {
                signing_key::activate(conn, &next.kid, now)?;
            }
            (Some(active), Some(next)) => {
                let due = next.created_at + policy.publish_delay <= now;
                // Conditional promotion: of several instances, one does it.
                if due && signing_key::activate(conn, &next.kid, now)? {
                    let until = now + policy.access_token_ttl + Duration::seconds(RETIRE_LEEWAY_SECS);
                    signing_key::retire_others(conn, &next.kid, until)?;
                    tracing::info!(new = %next.kid, old = %active.kid, "signing key rotated");
                }
            }
            (Some(active), None) => {
                if let Some(interval) = policy.rotation_interval {
                    let since = active.activated_at.unwrap_or(now);
                    if since + interval <= now {
                        let row = new_key_row(
                            pepper,
                            policy.alg,
                            derived_kid(pepper, &format!("after:{}", active.kid)),
                            KeyState::Next,
                            now,
                        )?;
                        insert_unless_exists(conn, &row)?;
                    }
                }
            }
        }
        signing_key::delete_expired(conn, now)?;
        Ok(())
    })
}

/// The key that signs, decrypted.
pub struct ActiveKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub signer: Signer,
}

/// The private key of the active key, parsed once per reload. (Through
/// `jsonwebtoken::encode` it was parsed from PKCS#8 for every token, and for
/// Ed25519 that derives the public key again: a second scalar
/// multiplication per token, about as costly as the signature itself.)
pub enum Signer {
    EdDsa(ed25519_dalek::SigningKey),
    Es256(p256::ecdsa::SigningKey),
}

impl Signer {
    fn from_pkcs8(alg: SigningAlg, der: &[u8]) -> Result<Self> {
        use ed25519_dalek::pkcs8::DecodePrivateKey as _;
        match alg {
            SigningAlg::EdDsa => ed25519_dalek::SigningKey::from_pkcs8_der(der)
                .map(Self::EdDsa)
                .map_err(|_| ()),
            SigningAlg::Es256 => p256::ecdsa::SigningKey::from_pkcs8_der(der)
                .map(Self::Es256)
                .map_err(|_| ()),
        }
        .map_err(|()| Error::internal("the active signing key cannot be parsed"))
    }

    /// The JWS signature of `message` (RFC 7518 §3.4: ES256 is `r || s`).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        use ed25519_dalek::Signer as _;
        match self {
            Self::EdDsa(k) => k.sign(message).to_bytes().to_vec(),
            Self::Es256(k) => {
                let signature: p256::ecdsa::Signature = k.sign(message);
                signature.to_bytes().to_vec()
            }
        }
    }
}

/// A loaded view of the keys: what signs, what verifies, and the JWKS.
pub struct KeySnapshot {
    pub loaded_at: DateTime<Utc>,
    pub active: Option<ActiveKey>,
    pub verifying: HashMap<String, (Algorithm, DecodingKey)>,
    pub jwks: Value,
}

fn decoding_key(jwk: &Value) -> Option<(Algorithm, DecodingKey)> {
    let s = |k: &str| jwk.get(k).and_then(Value::as_str);
    match (s("kty")?, s("alg")?) {
        ("OKP", "EdDSA") => DecodingKey::from_ed_components(s("x")?)
            .ok()
            .map(|k| (Algorithm::EdDSA, k)),
        ("EC", "ES256") => DecodingKey::from_ec_components(s("x")?, s("y")?)
            .ok()
            .map(|k| (Algorithm::ES256, k)),
        _ => None,
    }
}

/// Load every published key at `now`, decrypting only the active one.
pub fn load(conn: &mut DbConnection, pepper: &Pepper, now: DateTime<Utc>) -> Result<KeySnapshot> {
    let rows = signing_key::all(conn)?;
    let mut verifying = HashMap::new();
    let mut published = Vec::new();
    for r in &rows {
        let visible = match r.state {
            KeyState::Next | KeyState::Active => true,
            KeyState::Retired => r.publish_until.is_some_and(|t| t > now),
        };
        if !visible {
            continue;
        }
        let jwk: Value = serde_json::from_str(&r.public_jwk).map_err(Error::internal)?;
        // A `next` key verifies nothing yet, but must already be in the JWKS.
        if r.state != KeyState::Next
            && let Some(dk) = decoding_key(&jwk)
        {
            verifying.insert(r.kid.clone(), dk);
        }
        published.push(jwk);
    }
    let active = match active_key(&rows) {
        Some(r) => {
            let alg = SigningAlg::parse(&r.alg).ok_or_else(|| Error::internal(format!("unknown alg {}", r.alg)))?;
            let pkcs8 = open(pepper, &r.kid, &r.private_key)?;
            Some(ActiveKey {
                kid: r.kid.clone(),
                alg,
                signer: Signer::from_pkcs8(alg, &pkcs8)?,
            })
        }
        None => None,
    };
    Ok(KeySnapshot {
        loaded_at: now,
        active,
        verifying,
        jwks: json!({ "keys": published }),
    })
}

/// A snapshot of one fresh EdDSA key, active and verifying, for unit tests.
#[cfg(test)]
pub(crate) fn snapshot_for_tests(kid: &str, now: DateTime<Utc>) -> KeySnapshot {
    let generated = generate(SigningAlg::EdDsa, kid).unwrap();
    let mut verifying = HashMap::new();
    verifying.insert(kid.to_string(), decoding_key(&generated.public_jwk).unwrap());
    KeySnapshot {
        loaded_at: now,
        active: Some(ActiveKey {
            kid: kid.to_string(),
            alg: SigningAlg::EdDsa,
            signer: Signer::from_pkcs8(SigningAlg::EdDsa, &generated.pkcs8).unwrap(),
        }),
        verifying,
        jwks: json!({ "keys": [generated.public_jwk] }),
    }
}

/// What `roster keys list` shows of a key: never the private part.
#[derive(Debug, serde::Serialize)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: String,
    pub state: KeyState,
    pub created_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
    pub publish_until: Option<DateTime<Utc>>,
}

/// Every stored key, public facts only.
pub fn list(conn: &mut DbConnection) -> Result<Vec<KeyInfo>> {
    Ok(signing_key::all(conn)?
        .into_iter()
        .map(|k| KeyInfo {
            kid: k.kid,
            alg: k.alg,
            state: k.state,
            created_at: k.created_at,
            activated_at: k.activated_at,
            publish_until: k.publish_until,
        })
        .collect())
}

/// The keys of one instance. Requests read the current snapshot without
/// waiting; only [`KeyStore::refresh`], run by the background tick, talks to
/// the database: it runs the rotation steps that are due and loads a new
/// snapshot. A failed refresh keeps the last good snapshot in service, and
/// [`KeyStore::age`] tells readiness how old it has become.
pub struct KeyStore {
    current: RwLock<Arc<KeySnapshot>>,
    pepper: Pepper,
    policy: KeyPolicy,
    last_error: Mutex<Option<String>>,
    /// When a token with an unknown `kid` last made this instance reload.
    last_unknown_reload: Mutex<Option<DateTime<Utc>>>,
}

/// Least time between two reloads caused by tokens with an unknown `kid`,
/// so that forged kids cannot make every request reload.
pub const UNKNOWN_KID_RELOAD_EVERY_SECS: i64 = 1;

impl KeyStore {
    /// The first load, at start: bring the keys up to date and load them.
    pub fn open(conn: &mut DbConnection, pepper: Pepper, policy: KeyPolicy, now: DateTime<Utc>) -> Result<Self> {
        maintain(conn, &pepper, &policy, now)?;
        let snap = load(conn, &pepper, now)?;
        Ok(Self {
            current: RwLock::new(Arc::new(snap)),
            pepper,
            policy,
            last_error: Mutex::new(None),
            last_unknown_reload: Mutex::new(None),
        })
    }

    /// Does the snapshot in service verify tokens of `kid`?
    pub fn knows(&self, kid: &str) -> bool {
        self.current().verifying.contains_key(kid)
    }

    /// May a token with an unknown `kid` make this instance reload now? At
    /// most once per [`UNKNOWN_KID_RELOAD_EVERY_SECS`]; claims the slot.
    pub fn claim_unknown_kid_reload(&self, now: DateTime<Utc>) -> bool {
        let mut last = match self.last_unknown_reload.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let due = last.is_none_or(|t| now < t || now - t >= Duration::seconds(UNKNOWN_KID_RELOAD_EVERY_SECS));
        if due {
            *last = Some(now);
        }
        due
    }

    /// Load the keys as they are now, without running rotation steps (the
    /// tick's job): what a token signed by another instance needs.
    pub fn reload(&self, conn: &mut DbConnection, now: DateTime<Utc>) -> Result<()> {
        let snap = Arc::new(load(conn, &self.pepper, now)?);
        match self.current.write() {
            Ok(mut g) => *g = snap,
            Err(poisoned) => *poisoned.into_inner() = snap,
        }
        Ok(())
    }

    /// The snapshot to sign and verify with now.
    pub fn current(&self) -> Arc<KeySnapshot> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn policy(&self) -> &KeyPolicy {
        &self.policy
    }

    /// One round of upkeep at `now`: run the due rotation steps, load the
    /// keys, and serve them. On failure the previous snapshot stays in
    /// service; the error is logged once per change and returned.
    pub fn refresh(&self, conn: &mut DbConnection, now: DateTime<Utc>) -> Result<()> {
        let loaded = maintain(conn, &self.pepper, &self.policy, now).and_then(|()| load(conn, &self.pepper, now));
        let mut last_error = match self.last_error.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        match loaded {
            Ok(snap) => {
                if last_error.take().is_some() {
                    tracing::info!("signing keys reloaded after earlier failures");
                }
                let snap = Arc::new(snap);
                match self.current.write() {
                    Ok(mut g) => *g = snap,
                    Err(poisoned) => *poisoned.into_inner() = snap,
                }
                Ok(())
            }
            Err(e) => {
                let text = e.to_string();
                if last_error.as_deref() != Some(text.as_str()) {
                    tracing::warn!(error = %text, "cannot reload the signing keys: serving the last good ones");
                }
                *last_error = Some(text);
                Err(e)
            }
        }
    }

    /// How long ago the snapshot in service was loaded.
    pub fn age(&self, now: DateTime<Utc>) -> Duration {
        now - self.current().loaded_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pepper() -> Pepper {
        Pepper::from_bytes(b"0123456789abcdef0123456789abcdef").unwrap()
    }

    #[test]
    fn sealed_keys_open_only_with_the_same_pepper_and_kid() {
        let p = pepper();
        let sealed = seal(&p, "kid1", b"private bytes").unwrap();
        assert!(!sealed.contains("private"));
        assert_eq!(open(&p, "kid1", &sealed).unwrap(), b"private bytes");
        assert!(open(&p, "kid2", &sealed).is_err());
        let other = Pepper::from_bytes(b"another-pepper-another-pepper-xx").unwrap();
        assert!(open(&other, "kid1", &sealed).is_err());
    }

    #[test]
    fn keys_sealed_with_the_legacy_sub_key_still_open() {
        use ring::aead::{Aad, NONCE_LEN, Nonce};
        let p = pepper();
        let legacy = sealed::aes_key(&p.legacy_derive_key(SEALING_PURPOSE)).unwrap();
        let nonce = [7u8; NONCE_LEN];
        let mut buf = b"old key".to_vec();
        legacy
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(b"kid1".as_slice()),
                &mut buf,
            )
            .unwrap();
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&buf);
        let sealed = URL_SAFE_NO_PAD.encode(sealed);
        assert_eq!(open(&p, "kid1", &sealed).unwrap(), b"old key");
        // New seals use the HKDF sub-key, which differs from the legacy one.
        assert_ne!(
            p.derive_key(SEALING_PURPOSE).unwrap(),
            p.legacy_derive_key(SEALING_PURPOSE)
        );
    }

    #[test]
    fn generated_keys_publish_public_parts_only() {
        for alg in [SigningAlg::EdDsa, SigningAlg::Es256] {
            let g = generate(alg, "k").unwrap();
            let jwk = &g.public_jwk;
            assert_eq!(jwk["use"], "sig");
            assert_eq!(jwk["alg"], alg.as_str());
            assert_eq!(jwk["kid"], "k");
            assert!(jwk.get("d").is_none());
            assert!(decoding_key(jwk).is_some());
        }
    }
}
