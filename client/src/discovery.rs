//! Authorization server metadata (RFC 8414 §3): where the token endpoint and
//! the JWKS are, found from the issuer URL.

use serde::Deserialize;

/// The parts of Roster's metadata the client uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    /// The issuer URL, exactly as tokens carry it in `iss`.
    pub issuer: String,
    /// Where tokens are issued (RFC 6749 §3.2).
    pub token_endpoint: String,
    /// Where the public keys are (RFC 7517).
    pub jwks_uri: String,
}

/// Why discovery failed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The metadata URL could not be fetched.
    #[error("cannot reach {url}: {source}")]
    Unreachable {
        /// The metadata URL.
        url: String,
        /// What failed.
        source: reqwest::Error,
    },
    /// It answered with an error status.
    #[error("{url} answered {status}")]
    Status {
        /// The metadata URL.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The answer is not RFC 8414 metadata.
    #[error("{url} is not authorization server metadata: {source}")]
    Malformed {
        /// The metadata URL.
        url: String,
        /// What is wrong with it.
        source: reqwest::Error,
    },
    /// RFC 8414 §3.3: the metadata must name the issuer it was fetched for.
    #[error("the metadata names the issuer {found}, not {expected}")]
    IssuerMismatch {
        /// The issuer asked for.
        expected: String,
        /// The issuer the metadata names.
        found: String,
    },
}

impl Metadata {
    /// Fetch `{issuer}/.well-known/oauth-authorization-server` and check
    /// that it names `issuer` (RFC 8414 §3.1, §3.3).
    pub async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Self, DiscoveryError> {
        let issuer = issuer.trim_end_matches('/');
        let url = format!("{issuer}/.well-known/oauth-authorization-server");
        let resp = http
            .get(&url)
            .send()
            .await
            .map_err(|source| DiscoveryError::Unreachable {
                url: url.clone(),
                source,
            })?;
        if !resp.status().is_success() {
            return Err(DiscoveryError::Status {
                url,
                status: resp.status().as_u16(),
            });
        }
        let meta: Metadata = resp.json().await.map_err(|source| DiscoveryError::Malformed {
            url: url.clone(),
            source,
        })?;
        if meta.issuer.trim_end_matches('/') != issuer {
            return Err(DiscoveryError::IssuerMismatch {
                expected: issuer.to_string(),
                found: meta.issuer,
            });
        }
        Ok(meta)
    }
}
