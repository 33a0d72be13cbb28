//! Bounded HTTP fetches (health endpoints, manifests, JWK Sets), policed where
//! Roster connects (vaultwarden's `http_client.rs` shape): every resolved
//! address and every literal one passes the [`FetchPolicy`], redirects stay
//! on the same origin for a few hops, and every fetch has a timeout and a
//! size limit.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{ETAG, IF_NONE_MATCH};
use reqwest::redirect;
use url::Url;

use super::policy::FetchPolicy;

pub const MAX_REDIRECTS: usize = 3;

#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    pub timeout: Duration,
    policy: Arc<FetchPolicy>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FetchError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    #[error("redirect refused: {0}")]
    Redirect(String),
    #[error("refused by the fetch policy: {0}")]
    Refused(String),
    #[error("request failed: {0}")]
    Failed(String),
}

impl FetchError {
    /// The coarse reason shown to readers who may not see the details:
    /// `timeout`, `bad_status`, `bad_manifest` or `unreachable`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Status(_) => "bad_status",
            Self::TooLarge(_) => "bad_manifest",
            Self::Redirect(_) | Self::Refused(_) | Self::Failed(_) => "unreachable",
        }
    }

    /// The recorded text: the coarse reason, then the details
    /// (see [`crate::registry::service::public_error`]).
    pub fn recorded(&self) -> String {
        format!("{}: {self}", self.reason())
    }
}

/// Same scheme, host and port.
fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme() && a.host() == b.host() && a.port_or_known_default() == b.port_or_known_default()
}

pub enum Manifest {
    NotModified,
    Body { bytes: Vec<u8>, etag: Option<String> },
}

impl Fetcher {
    pub fn new(timeout: Duration, policy: Arc<FetchPolicy>) -> Result<Self, String> {
        // Follow a few redirects, only on the origin first asked (another
        // scheme, host or port is refused, http → https too).
        let redirects = redirect::Policy::custom(|attempt| {
            let same = attempt
                .previous()
                .first()
                .is_some_and(|first| same_origin(first, attempt.url()));
            if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else if !same {
                attempt.error("redirect to another origin")
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .redirect(redirects)
            .dns_resolver(policy.resolver())
            // No proxy from the environment: the policy judges the real target.
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("roster/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            timeout,
            policy,
        })
    }

    /// The URL, if the policy lets Roster fetch it (a literal address is not
    /// resolved, so it is checked here; names are checked when resolved).
    fn target(&self, url: &str) -> Result<Url, FetchError> {
        let url = Url::parse(url).map_err(|e| FetchError::Refused(e.to_string()))?;
        self.policy.check_url(&url).map_err(|e| FetchError::Refused(e.0))?;
        Ok(url)
    }

    fn error(&self, e: reqwest::Error) -> FetchError {
        if e.is_timeout() {
            FetchError::Timeout(self.timeout)
        } else if e.is_redirect() {
            let why = std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default();
            FetchError::Redirect(why)
        } else if let Some(refusal) = find_refusal(&e) {
            FetchError::Refused(refusal)
        } else {
            FetchError::Failed(e.to_string())
        }
    }

    async fn read_limited(&self, resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, FetchError> {
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.error(e))?;
            if body.len() + chunk.len() > limit {
                return Err(FetchError::TooLarge(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// A 2xx answer means up; anything else, or no answer, is the error.
    pub async fn health(&self, url: &str) -> Result<(), FetchError> {
        let url = self.target(url)?;
        let resp = self.client.get(url).send().await.map_err(|e| self.error(e))?;
        let status = resp.status();
        // Drain a little of the body so the connection can be reused; ignore it.
        let _ = self.read_limited(resp, 4096).await;
        if status.is_success() {
            Ok(())
        } else {
            Err(FetchError::Status(status.as_u16()))
        }
    }

    /// Fetch a document (a JWK Set) of at most `limit` bytes; a non-2xx
    /// answer is the error.
    pub async fn document(&self, url: &str, limit: usize) -> Result<Vec<u8>, FetchError> {
        let resp = self
            .client
            .get(self.target(url)?)
            .send()
            .await
            .map_err(|e| self.error(e))?;
        if !resp.status().is_success() {
            return Err(FetchError::Status(resp.status().as_u16()));
        }
        self.read_limited(resp, limit).await
    }

    /// Fetch a manifest, conditionally on the ETag of the last good one.
    pub async fn manifest(&self, url: &str, etag: Option<&str>, limit: usize) -> Result<Manifest, FetchError> {
        let mut req = self.client.get(self.target(url)?);
        if let Some(etag) = etag {
            req = req.header(IF_NONE_MATCH, etag);
        }
        let resp = req.send().await.map_err(|e| self.error(e))?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(Manifest::NotModified);
        }
        if !status.is_success() {
            return Err(FetchError::Status(status.as_u16()));
        }
        let etag = resp
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = self.read_limited(resp, limit).await?;
        Ok(Manifest::Body { bytes, etag })
    }
}

/// The policy's refusal somewhere in the error's chain of sources.
fn find_refusal(e: &reqwest::Error) -> Option<String> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<super::policy::Refusal>() {
            return Some(r.0.clone());
        }
        source = s.source();
    }
    None
}
