//! Bounded HTTP fetches of health endpoints and manifests. Services live on
//! private networks, so loopback and private addresses are allowed; every
//! fetch has a timeout, a size limit, and follows no redirect to another scheme.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{ETAG, IF_NONE_MATCH};
use reqwest::redirect;

pub const MAX_REDIRECTS: usize = 3;

#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    pub timeout: Duration,
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
    #[error("request failed: {0}")]
    Failed(String),
}

pub enum Manifest {
    NotModified,
    Body { bytes: Vec<u8>, etag: Option<String> },
}

impl Fetcher {
    pub fn new(timeout: Duration) -> Result<Self, String> {
        // Follow a few redirects, never to another scheme (http → https is refused too).
        let policy = redirect::Policy::custom(|attempt| {
            let same_scheme = attempt
                .previous()
                .first()
                .is_some_and(|first| first.scheme() == attempt.url().scheme());
            if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else if !same_scheme {
                attempt.error("redirect to another scheme")
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .redirect(policy)
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("roster/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { client, timeout })
    }

    fn error(&self, e: reqwest::Error) -> FetchError {
        if e.is_timeout() {
            FetchError::Timeout(self.timeout)
        } else if e.is_redirect() {
            let why = std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default();
            FetchError::Redirect(why)
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

    /// Fetch a manifest, conditionally on the ETag of the last good one.
    pub async fn manifest(&self, url: &str, etag: Option<&str>, limit: usize) -> Result<Manifest, FetchError> {
        let mut req = self.client.get(url);
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
