//! JWT client assertions (RFC 7523 §2.2 and §3, OpenID Connect Core §9):
//! reading one, choosing the key that may verify it, and checking its
//! signature and claims at a given `now`. Pure: no storage, no clock.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// RFC 7523 §2.2: the `client_assertion_type` of a JWT client assertion.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The signing algorithms accepted: asymmetric only. `none` and the HMAC
/// family are never accepted, since a client's keys are public.
pub const ALGORITHMS: &[(Algorithm, &str)] = &[
    (Algorithm::EdDSA, "EdDSA"),
    (Algorithm::ES256, "ES256"),
    (Algorithm::ES384, "ES384"),
    (Algorithm::RS256, "RS256"),
    (Algorithm::RS384, "RS384"),
    (Algorithm::RS512, "RS512"),
    (Algorithm::PS256, "PS256"),
    (Algorithm::PS384, "PS384"),
    (Algorithm::PS512, "PS512"),
];

/// How far `iat` and `nbf` may lie in the future (clocks drift).
pub const LEEWAY: Duration = Duration::seconds(30);

/// Why an assertion is refused. The description is sent to the client as
/// the `error_description` of `invalid_client` and kept in the audit log.
/// Whatever is decided before the signature is verified says nothing about
/// which clients or keys exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the client assertion is not a JWT: {0}")]
    Malformed(&'static str),
    #[error("the client assertion's algorithm '{0}' is not accepted: use an asymmetric one")]
    Algorithm(String),
    #[error("the client assertion's signature could not be verified with the keys registered for its issuer")]
    Signature,
    #[error("the client assertion's sub must equal its iss (the client id)")]
    SubjectNotIssuer,
    #[error("client_id does not match the client assertion")]
    ClientIdMismatch,
    #[error("the client assertion's aud does not name this server")]
    Audience,
    #[error("the client assertion has no exp")]
    NoExpiry,
    #[error("the client assertion has expired")]
    Expired,
    #[error("the client assertion lives longer than the {0} s accepted")]
    TooLong(i64),
    #[error("the client assertion's iat is in the future")]
    IssuedInFuture,
    #[error("the client assertion is not valid yet (nbf)")]
    NotYetValid,
    #[error("the client assertion has no jti")]
    NoJti,
}

/// What is read before any key is chosen (unverified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unverified {
    pub alg: Algorithm,
    pub kid: Option<String>,
    /// Whom the assertion claims to come from: a client id, or a trusted issuer.
    pub iss: String,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: Option<String>,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct RawIssuer {
    iss: Option<String>,
}

/// One string or many (RFC 7519 §4.1.3 `aud`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// The registered claims checked (RFC 7519 §4.1).
#[derive(Debug, Clone, Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<OneOrMany>,
    exp: Option<i64>,
    iat: Option<i64>,
    nbf: Option<i64>,
    jti: Option<String>,
}

/// Read the header and the issuer of a compact JWS, without trusting them.
pub fn peek(token: &str) -> Result<Unverified, Refusal> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_sig), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed("it must have three parts"));
    };
    let decode = |part: &str| {
        B64.decode(part)
            .map_err(|_| Refusal::Malformed("a part is not base64url"))
    };
    let header: RawHeader =
        serde_json::from_slice(&decode(header)?).map_err(|_| Refusal::Malformed("the header is not a JSON object"))?;
    let alg = header.alg.ok_or(Refusal::Malformed("the header has no alg"))?;
    let alg = ALGORITHMS
        .iter()
        .find(|(_, name)| *name == alg)
        .map(|(a, _)| *a)
        .ok_or(Refusal::Algorithm(alg.chars().take(16).collect()))?;
    let claims: RawIssuer = serde_json::from_slice(&decode(payload)?)
        .map_err(|_| Refusal::Malformed("the payload is not a JSON object"))?;
    let iss = claims.iss.ok_or(Refusal::Malformed("it has no iss"))?;
    if iss.is_empty() || iss.len() > 500 || iss.chars().any(char::is_control) {
        return Err(Refusal::Malformed(
            "its iss is empty, too long or holds control characters",
        ));
    }
    Ok(Unverified {
        alg,
        kid: header.kid,
        iss,
    })
}

/// May `jwk` verify a signature made with `alg`? Its own `alg`, if it names
/// one, must be that one; its `use`, if any, must be `sig`; and its type and
/// curve must be the algorithm's (RFC 7518 §3.1).
pub fn key_allows(jwk: &Jwk, alg: Algorithm) -> bool {
    if let Some(named) = jwk.common.key_algorithm
        && !same_algorithm(named, alg)
    {
        return false;
    }
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return false;
    }
    use Algorithm::*;
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
        AlgorithmParameters::EllipticCurve(p) => {
            matches!(
                (&p.curve, alg),
                (EllipticCurve::P256, ES256) | (EllipticCurve::P384, ES384)
            )
        }
        AlgorithmParameters::OctetKeyPair(p) => {
            p.key_type == OctetKeyPairType::OctetKeyPair && p.curve == EllipticCurve::Ed25519 && alg == EdDSA
        }
        _ => false,
    }
}

fn same_algorithm(named: KeyAlgorithm, alg: Algorithm) -> bool {
    ALGORITHMS
        .iter()
        .find(|(a, _)| *a == alg)
        .is_some_and(|(_, name)| named.to_string() == *name)
}

/// What a set of public keys must hold to be registered: at least one key,
/// every key public and usable for one accepted algorithm, `kid`s unique.
pub fn check_key_set(value: &serde_json::Value) -> Result<JwkSet, String> {
    const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "k", "oth"];
    let keys = value
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or("a JWK Set is an object with a 'keys' array")?;
    if keys.is_empty() {
        return Err("the JWK Set has no keys".into());
    }
    if keys.len() > 20 {
        return Err("a JWK Set holds at most 20 keys".into());
    }
    for key in keys {
        if PRIVATE_MEMBERS.iter().any(|m| key.get(m).is_some()) {
            return Err("the JWK Set must hold public keys only: a key has private or symmetric parts".into());
        }
    }
    let set: JwkSet = serde_json::from_value(value.clone()).map_err(|e| format!("not a JWK Set: {e}"))?;
    let mut kids = std::collections::HashSet::new();
    for jwk in &set.keys {
        if !ALGORITHMS.iter().any(|(alg, _)| key_allows(jwk, *alg)) || DecodingKey::from_jwk(jwk).is_err() {
            return Err(format!(
                "key {} cannot verify any accepted algorithm ({})",
                jwk.common.key_id.as_deref().unwrap_or("without kid"),
                algorithm_names().join(", ")
            ));
        }
        if let Some(kid) = &jwk.common.key_id
            && !kids.insert(kid.clone())
        {
            return Err(format!("two keys have the kid '{kid}'"));
        }
    }
    Ok(set)
}

pub fn algorithm_names() -> Vec<&'static str> {
    ALGORITHMS.iter().map(|(_, n)| *n).collect()
}

/// Is there a key in `keys` for this assertion's `kid` (any key, if it has none)?
pub fn has_key(keys: &JwkSet, kid: Option<&str>) -> bool {
    match kid {
        Some(kid) => keys.find(kid).is_some(),
        None => !keys.keys.is_empty(),
    }
}

/// What an assertion must satisfy besides its signature.
#[derive(Debug, Clone)]
pub struct Rules<'a> {
    /// `aud` must hold one of these.
    pub audiences: &'a [&'a str],
    /// The longest `exp - iat` (or `exp - now` without `iat`).
    pub max_lifetime: Duration,
    /// `sub` must equal `iss` (a client's own assertion, RFC 7523 §3 item 2).
    pub subject_is_issuer: bool,
    /// `jti` must be present (RFC 7523 §3 item 7, for the replay check).
    pub require_jti: bool,
}

/// A verified assertion's claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub iss: String,
    pub sub: String,
    pub jti: Option<String>,
    pub exp: DateTime<Utc>,
}

/// Verify `token` (already [`peek`]ed as `head`) with the keys of its
/// issuer: the signature with the key its `kid` names (or any key that
/// allows its algorithm, without a `kid`), then the claims at `now`.
pub fn verify(
    token: &str,
    head: &Unverified,
    keys: &JwkSet,
    rules: &Rules<'_>,
    now: DateTime<Utc>,
) -> Result<Verified, Refusal> {
    let candidates: Vec<&Jwk> = match &head.kid {
        Some(kid) => keys.find(kid).into_iter().collect(),
        None => keys.keys.iter().collect(),
    };
    let mut validation = Validation::new(head.alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = candidates
        .into_iter()
        .filter(|jwk| key_allows(jwk, head.alg))
        .filter_map(|jwk| DecodingKey::from_jwk(jwk).ok())
        .find_map(|key| jsonwebtoken::decode::<Claims>(token, &key, &validation).ok())
        .ok_or(Refusal::Signature)?
        .claims;
    check_claims(claims, head, rules, now)
}

fn check_claims(claims: Claims, head: &Unverified, rules: &Rules<'_>, now: DateTime<Utc>) -> Result<Verified, Refusal> {
    // The signed iss is the one the keys were chosen by.
    if claims.iss.as_deref() != Some(head.iss.as_str()) {
        return Err(Refusal::Signature);
    }
    let sub = claims.sub.ok_or(Refusal::Malformed("it has no sub"))?;
    if rules.subject_is_issuer && sub != head.iss {
        return Err(Refusal::SubjectNotIssuer);
    }
    let audience_ok = match &claims.aud {
        Some(OneOrMany::One(a)) => rules.audiences.contains(&a.as_str()),
        Some(OneOrMany::Many(list)) => list.iter().any(|a| rules.audiences.contains(&a.as_str())),
        None => false,
    };
    if !audience_ok {
        return Err(Refusal::Audience);
    }
    let exp = claims.exp.ok_or(Refusal::NoExpiry)?;
    let at =
        |secs: i64| DateTime::<Utc>::from_timestamp(secs, 0).ok_or(Refusal::Malformed("a time claim is out of range"));
    let exp = at(exp)?;
    if exp <= now {
        return Err(Refusal::Expired);
    }
    if let Some(iat) = claims.iat.map(at).transpose()?
        && iat > now + LEEWAY
    {
        return Err(Refusal::IssuedInFuture);
    }
    if let Some(nbf) = claims.nbf.map(at).transpose()?
        && nbf > now + LEEWAY
    {
        return Err(Refusal::NotYetValid);
    }
    let start = match claims.iat.map(at).transpose()? {
        Some(iat) => iat.min(now),
        None => now,
    };
    if exp - start > rules.max_lifetime {
        return Err(Refusal::TooLong(rules.max_lifetime.num_seconds()));
    }
    if rules.require_jti && claims.jti.as_deref().is_none_or(str::is_empty) {
        return Err(Refusal::NoJti);
    }
    Ok(Verified {
        iss: head.iss.clone(),
        sub,
        jti: claims.jti,
        exp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};

    const AUD: &str = "https://roster.example";

    fn keypair() -> (EncodingKey, serde_json::Value) {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let signing = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let der = signing.to_pkcs8_der().unwrap();
        let x = B64.encode(signing.verifying_key().as_bytes());
        (
            EncodingKey::from_ed_der(der.as_bytes()),
            serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k1", "use": "sig"}]}),
        )
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_900_000_000, 0).unwrap()
    }

    fn sign(claims: serde_json::Value) -> String {
        let (key, _) = keypair();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some("k1".into());
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    }

    fn good() -> serde_json::Value {
        let t = now().timestamp();
        serde_json::json!({"iss": "billing", "sub": "billing", "aud": AUD, "iat": t, "exp": t + 60, "jti": "j1"})
    }

    fn rules() -> Rules<'static> {
        Rules {
            audiences: &[AUD],
            max_lifetime: Duration::minutes(5),
            subject_is_issuer: true,
            require_jti: true,
        }
    }

    fn check(claims: serde_json::Value) -> Result<Verified, Refusal> {
        let token = sign(claims);
        let head = peek(&token)?;
        let set = check_key_set(&keypair().1).unwrap();
        verify(&token, &head, &set, &rules(), now())
    }

    #[test]
    fn a_good_assertion_passes() {
        let v = check(good()).unwrap();
        assert_eq!(
            v,
            Verified {
                iss: "billing".into(),
                sub: "billing".into(),
                jti: Some("j1".into()),
                exp: now() + Duration::seconds(60)
            }
        );
    }

    #[test]
    fn each_claim_rule_refuses() {
        let t = now().timestamp();
        let with = |k: &str, v: serde_json::Value| {
            let mut c = good();
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v;
            }
            check(c).unwrap_err()
        };
        assert_eq!(with("aud", "https://other".into()), Refusal::Audience);
        assert_eq!(with("aud", serde_json::Value::Null), Refusal::Audience);
        assert!(
            check({
                let mut c = good();
                c["aud"] = serde_json::json!(["x", AUD]);
                c
            })
            .is_ok()
        );
        assert_eq!(with("sub", "orders".into()), Refusal::SubjectNotIssuer);
        assert_eq!(with("exp", serde_json::Value::Null), Refusal::NoExpiry);
        assert_eq!(with("exp", (t - 1).into()), Refusal::Expired);
        assert_eq!(with("exp", (t + 301).into()), Refusal::TooLong(300));
        assert_eq!(with("iat", (t + 31).into()), Refusal::IssuedInFuture);
        assert_eq!(with("nbf", (t + 31).into()), Refusal::NotYetValid);
        assert!(
            check({
                let mut c = good();
                c["iat"] = (t + 20).into();
                c
            })
            .is_ok()
        );
        assert_eq!(with("jti", serde_json::Value::Null), Refusal::NoJti);
        assert_eq!(with("jti", "".into()), Refusal::NoJti);
        // An iat long ago makes a short remaining life too long in all.
        let mut c = good();
        c["iat"] = (t - 600).into();
        assert_eq!(check(c).unwrap_err(), Refusal::TooLong(300));
    }

    #[test]
    fn none_and_hmac_are_refused_before_any_key() {
        let body = B64.encode(good().to_string());
        let none = format!("{}.{body}.", B64.encode(r#"{"alg":"none"}"#));
        assert_eq!(peek(&none).unwrap_err(), Refusal::Algorithm("none".into()));
        // HS256 keyed with the public key's bytes (the classic confusion).
        let (_, jwks) = keypair();
        let x = jwks["keys"][0]["x"].as_str().unwrap();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let forged = jsonwebtoken::encode(&header, &good(), &EncodingKey::from_secret(x.as_bytes())).unwrap();
        assert_eq!(peek(&forged).unwrap_err(), Refusal::Algorithm("HS256".into()));
        assert_eq!(peek("a.b").unwrap_err(), Refusal::Malformed("it must have three parts"));
    }

    #[test]
    fn a_key_of_another_kind_or_kid_does_not_verify() {
        let token = sign(good());
        let mut head = peek(&token).unwrap();
        let set = check_key_set(&keypair().1).unwrap();
        head.kid = Some("other".into());
        assert_eq!(
            verify(&token, &head, &set, &rules(), now()).unwrap_err(),
            Refusal::Signature
        );
        // The same key, but declared for ES256 only.
        let mut v = keypair().1;
        v["keys"][0]["alg"] = "ES256".into();
        assert!(check_key_set(&v).is_err());
        let mut jwk = set.keys[0].clone();
        jwk.common.key_algorithm = Some(KeyAlgorithm::ES256);
        assert!(!key_allows(&jwk, Algorithm::EdDSA));
        jwk.common.key_algorithm = Some(KeyAlgorithm::EdDSA);
        assert!(key_allows(&jwk, Algorithm::EdDSA));
    }

    #[test]
    fn key_sets_with_private_or_symmetric_keys_are_refused() {
        let mut v = keypair().1;
        v["keys"][0]["d"] = "secret".into();
        assert!(check_key_set(&v).unwrap_err().contains("public keys only"));
        let oct = serde_json::json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]});
        assert!(check_key_set(&oct).is_err());
        assert!(check_key_set(&serde_json::json!({"keys": []})).is_err());
        assert!(check_key_set(&serde_json::json!([1])).is_err());
    }
}
