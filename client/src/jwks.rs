//! The verifier's copy of Roster's JWKS (RFC 7517): only the algorithms
//! Roster signs with, refetched after `Cache-Control: max-age`.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey};

/// The algorithms accepted: what Roster publishes. Never `none`, never HMAC
/// (a public key used as an HMAC secret is the classic forgery).
pub const ACCEPTED: [Algorithm; 2] = [Algorithm::EdDSA, Algorithm::ES256];

/// A fetched key set.
pub struct KeySet {
    pub keys: HashMap<String, (Algorithm, DecodingKey)>,
    /// Refetch after this.
    pub stale_at: DateTime<Utc>,
}

/// How long a JWKS may be used without refetching, when it says nothing.
const DEFAULT_MAX_AGE: i64 = 60;
/// Bounds on a server's `max-age`.
const MIN_MAX_AGE: i64 = 5;
const MAX_MAX_AGE: i64 = 3600;

/// `max-age` of a `Cache-Control` value (RFC 9111 §5.2.2.1), bounded.
pub fn max_age(cache_control: Option<&str>) -> Duration {
    let secs = cache_control
        .into_iter()
        .flat_map(|v| v.split(','))
        .filter_map(|d| d.trim().strip_prefix("max-age="))
        .find_map(|s| s.trim_matches('"').parse::<i64>().ok())
        .unwrap_or(DEFAULT_MAX_AGE);
    Duration::seconds(secs.clamp(MIN_MAX_AGE, MAX_MAX_AGE))
}

/// Why Roster's keys could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeysError {
    /// The JWKS could not be fetched.
    #[error("cannot fetch the JWKS at {uri}: {reason}")]
    Unreachable {
        /// The `jwks_uri`.
        uri: String,
        /// What failed.
        reason: String,
    },
    /// The JWKS answered with an error status.
    #[error("the JWKS at {uri} answered {status}")]
    Status {
        /// The `jwks_uri`.
        uri: String,
        /// The HTTP status.
        status: u16,
    },
    /// The answer is not a JWK set (RFC 7517 §5).
    #[error("the JWKS at {uri} is malformed: {reason}")]
    Malformed {
        /// The `jwks_uri`.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Fetch the JWKS at `uri`, keeping only signing keys with an accepted `alg`.
pub async fn fetch(http: &reqwest::Client, uri: &str, now: DateTime<Utc>) -> Result<KeySet, KeysError> {
    let resp = http.get(uri).send().await.map_err(|e| KeysError::Unreachable {
        uri: uri.to_string(),
        reason: e.to_string(),
    })?;
    if !resp.status().is_success() {
        return Err(KeysError::Status {
            uri: uri.to_string(),
            status: resp.status().as_u16(),
        });
    }
    let age = max_age(
        resp.headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok()),
    );
    let set: JwkSet = resp.json().await.map_err(|e| KeysError::Malformed {
        uri: uri.to_string(),
        reason: e.to_string(),
    })?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let (Some(kid), Some(alg)) = (jwk.common.key_id.clone(), jwk.common.key_algorithm) else {
            continue;
        };
        let Ok(alg) = alg.to_string().parse::<Algorithm>() else {
            continue;
        };
        if !ACCEPTED.contains(&alg) {
            continue;
        }
        if let Ok(key) = DecodingKey::from_jwk(jwk) {
            keys.insert(kid, (alg, key));
        }
    }
    Ok(KeySet {
        keys,
        stale_at: now + age,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_and_bounded() {
        assert_eq!(max_age(Some("public, max-age=300")), Duration::seconds(300));
        assert_eq!(max_age(Some("max-age=0")), Duration::seconds(MIN_MAX_AGE));
        assert_eq!(max_age(Some("max-age=99999999")), Duration::seconds(MAX_MAX_AGE));
        assert_eq!(max_age(Some("no-cache")), Duration::seconds(DEFAULT_MAX_AGE));
        assert_eq!(max_age(None), Duration::seconds(DEFAULT_MAX_AGE));
    }
}
