//! [`TokenSource`]: client-credentials tokens (RFC 6749 §4.4) through the
//! `oauth2` crate, cached per (scope, resource) with single-flight renewal
//! and bounded back-off.

use roster_proto::error::ErrorCode;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Duration, Utc};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, ClientId, ClientSecret, EndpointNotSet, EndpointSet, RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};

use crate::auth::ClientAuth;
use crate::backoff::Backoff;
use crate::clock::Clock;
use crate::discovery::Metadata;

/// An access token. Its `Debug` never shows the token.
#[derive(Clone)]
pub struct AccessToken {
    secret: Arc<SecretString>,
    expires_at: DateTime<Utc>,
}

impl AccessToken {
    /// The token, for an `Authorization: Bearer` header.
    pub fn secret(&self) -> &str {
        self.secret.expose_secret()
    }

    /// When the token expires, by the clock of the source that got it.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What a token is asked for: its scopes and the service it is for. The
/// default asks for everything the service holds, for Roster itself.
///
/// ```
/// # use roster_client::TokenRequest;
/// let for_billing = TokenRequest::new().scope("invoices:read").resource("billing");
/// # let _ = for_billing;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TokenRequest {
    scope: Option<String>,
    resource: Option<String>,
}

impl TokenRequest {
    /// Everything the service holds, for Roster itself.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only these scopes (space-separated), RFC 6749 §3.3.
    pub fn scope(mut self, scope: &str) -> Self {
        self.scope = Some(scope.to_string());
        self
    }

    /// For this service (its name), RFC 8707 §2: the token's audience.
    pub fn resource(mut self, resource: &str) -> Self {
        self.resource = Some(resource.to_string());
        self
    }
}

/// Why no token could be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    /// Roster refused the request (RFC 6749 §5.2), e.g. `invalid_client` or
    /// `invalid_scope`.
    #[error("Roster refused the token request: {error}: {description}")]
    Refused {
        /// The RFC 6749 §5.2 error code.
        error: String,
        /// Roster's `error_description`.
        description: String,
    },
    /// Roster could not be reached or answered garbage; no valid token is
    /// cached. The next attempt waits until `retry_at` (back-off).
    #[error("Roster is unavailable ({reason}); next attempt at {retry_at}")]
    Unavailable {
        /// What went wrong, for logs.
        reason: String,
        /// No request is sent before this.
        retry_at: DateTime<Utc>,
    },
    /// The issuer's metadata could not be read.
    #[error("discovery failed: {0}")]
    Discovery(String),
    /// The request could not be sent at all.
    #[error("request failed: {0}")]
    Request(String),
}

impl TokenError {
    /// The RFC 6749 §5.2 code of a refusal, when it is one Roster defines.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Refused { error, .. } => ErrorCode::from_name(error),
            _ => None,
        }
    }
}

type Oauth = BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// One cached token and what is known about renewing it.
struct Cached {
    token: AccessToken,
    /// Renew after this (80 % of the lifetime).
    renew_after: DateTime<Utc>,
}

#[derive(Default)]
struct Renewal {
    failures: u32,
    retry_at: Option<DateTime<Utc>>,
    last_error: Option<TokenError>,
}

#[derive(Default)]
struct Slot {
    current: RwLock<Option<Cached>>,
    /// Held while one caller renews: the others wait for its answer.
    renewal: tokio::sync::Mutex<Renewal>,
}

impl Slot {
    fn fresh(&self, now: DateTime<Utc>) -> Option<AccessToken> {
        self.read(|c| (now < c.renew_after).then(|| c.token.clone()))
    }

    fn valid(&self, now: DateTime<Utc>, margin: Duration) -> Option<AccessToken> {
        self.read(|c| (now + margin < c.token.expires_at).then(|| c.token.clone()))
    }

    fn read(&self, f: impl FnOnce(&Cached) -> Option<AccessToken>) -> Option<AccessToken> {
        match self.current.read() {
            Ok(g) => g.as_ref().and_then(f),
            Err(p) => p.into_inner().as_ref().and_then(f),
        }
    }

    /// Cache a token just got, `lifetime` long, renewed after `renew_at` of it.
    fn keep(&self, secret: SecretString, lifetime: Duration, renew_at: f64, now: DateTime<Utc>) -> AccessToken {
        let renew_in = Duration::milliseconds((lifetime.num_milliseconds() as f64 * renew_at) as i64);
        let token = AccessToken {
            secret: Arc::new(secret),
            expires_at: now + lifetime,
        };
        self.store(Some(Cached {
            token: token.clone(),
            renew_after: now + renew_in,
        }));
        token
    }

    fn store(&self, c: Option<Cached>) {
        match self.current.write() {
            Ok(mut g) => *g = c,
            Err(p) => *p.into_inner() = c,
        }
    }
}

/// (scope, resource): scopes sorted and joined by one space.
type SlotKey = (String, String);

struct Inner {
    auth: ClientAuth,
    token_endpoint: String,
    oauth: Oauth,
    http: reqwest::Client,
    clock: Clock,
    backoff: Backoff,
    /// Renew once this share of the lifetime has passed.
    renew_at: f64,
    slots: Mutex<HashMap<SlotKey, Arc<Slot>>>,
    /// Exchanged tokens, per (subject token, audience).
    exchanges: Mutex<HashMap<SlotKey, Arc<Slot>>>,
    requests: AtomicU64,
}

/// Most exchanged tokens cached at once: past it, expired ones go, and if
/// none had, the cache starts over (a flood of callers costs requests,
/// never unbounded memory).
const MAX_EXCHANGE_SLOTS: usize = 4096;

/// Client-credentials tokens for one service, shared by all its tasks
/// (cheap to clone).
#[derive(Clone)]
pub struct TokenSource {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("client_id", &self.inner.oauth.client_id().as_str())
            .finish_non_exhaustive()
    }
}

/// A token this close to expiry is not handed out from the cache.
const EXPIRY_MARGIN: Duration = Duration::seconds(5);

impl TokenSource {
    /// Discover the token endpoint from `issuer` (RFC 8414) and log in as
    /// `client_id` with `secret` (HTTP Basic, RFC 6749 §2.3.1).
    pub async fn discover(issuer: &str, client_id: &str, secret: SecretString) -> Result<Self, TokenError> {
        Self::discover_with(issuer, client_id, secret, Clock::system(), Backoff::default()).await
    }

    /// [`TokenSource::discover`] with a clock and a back-off of your own.
    pub async fn discover_with(
        issuer: &str,
        client_id: &str,
        secret: SecretString,
        clock: Clock,
        backoff: Backoff,
    ) -> Result<Self, TokenError> {
        Self::discover_authenticated(issuer, client_id, ClientAuth::Secret(secret), clock, backoff).await
    }

    /// Discover the token endpoint from `issuer` and log in as `client_id`
    /// the way `auth` says: a secret, a private key (`private_key_jwt`), or
    /// a platform's workload token read from a file.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// use roster_client::{AssertionSigner, ClientAuth, Clock, Backoff, SigningAlg, TokenSource};
    /// let key = AssertionSigner::from_pem(SigningAlg::EdDsa, &std::fs::read("billing.pem")?, Some("2026-12"))?;
    /// let tokens = TokenSource::discover_authenticated(
    ///     "https://roster.example", "billing", ClientAuth::PrivateKey(key), Clock::system(), Backoff::default(),
    /// ).await?;
    /// # let _ = tokens; Ok(()) }
    /// ```
    pub async fn discover_authenticated(
        issuer: &str,
        client_id: &str,
        auth: ClientAuth,
        clock: Clock,
        backoff: Backoff,
    ) -> Result<Self, TokenError> {
        let http = crate::http_client(std::time::Duration::from_secs(10));
        let meta = Metadata::discover(&http, issuer)
            .await
            .map_err(|e| TokenError::Discovery(e.to_string()))?;
        let token_endpoint = meta.token_endpoint.clone();
        let token_url = TokenUrl::new(meta.token_endpoint).map_err(|e| TokenError::Discovery(e.to_string()))?;
        let oauth = BasicClient::new(ClientId::new(client_id.to_string())).set_token_uri(token_url);
        let oauth = match &auth {
            ClientAuth::Secret(secret) => oauth
                .set_client_secret(ClientSecret::new(secret.expose_secret().to_string()))
                .set_auth_type(AuthType::BasicAuth),
            // `client_id` goes in the body, beside the assertion.
            _ => oauth.set_auth_type(AuthType::RequestBody),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                auth,
                token_endpoint,
                oauth,
                http,
                clock,
                backoff,
                renew_at: 0.8,
                slots: Mutex::new(HashMap::new()),
                exchanges: Mutex::new(HashMap::new()),
                requests: AtomicU64::new(0),
            }),
        })
    }

    /// How many token requests this source has sent.
    pub fn requests_sent(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    fn slot(&self, req: &TokenRequest) -> Arc<Slot> {
        let mut scopes: Vec<&str> = req.scope.as_deref().unwrap_or("").split_whitespace().collect();
        scopes.sort_unstable();
        scopes.dedup();
        let key = (scopes.join(" "), req.resource.clone().unwrap_or_default());
        let mut slots = match self.inner.slots.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        slots.entry(key).or_default().clone()
    }

    /// A token as `req` asks ([`TokenRequest::new`]: everything the service
    /// holds, for Roster itself).
    ///
    /// From the cache until 80 % of its lifetime has passed; then one caller
    /// renews while the others wait for that one answer (or keep using the
    /// still-valid token). While Roster is down, attempts back off
    /// exponentially and the cached token is served for as long as it is valid.
    pub async fn token(&self, req: &TokenRequest) -> Result<AccessToken, TokenError> {
        let slot = self.slot(req);
        if let Some(t) = slot.fresh(self.inner.clock.now()) {
            return Ok(t);
        }
        // Someone is renewing: a still-valid token does not wait for them.
        let mut renewal = match slot.renewal.try_lock() {
            Ok(g) => g,
            Err(_) => {
                if let Some(t) = slot.valid(self.inner.clock.now(), EXPIRY_MARGIN) {
                    return Ok(t);
                }
                slot.renewal.lock().await
            }
        };
        let now = self.inner.clock.now();
        if let Some(t) = slot.fresh(now) {
            return Ok(t);
        }
        if let Some(retry_at) = renewal.retry_at
            && now < retry_at
        {
            return match slot.valid(now, EXPIRY_MARGIN) {
                Some(t) => Ok(t),
                None => Err(renewal.last_error.clone().unwrap_or(TokenError::Unavailable {
                    reason: "backing off".into(),
                    retry_at,
                })),
            };
        }
        match self.request(req).await {
            Ok((secret, lifetime)) => {
                let token = slot.keep(secret, lifetime, self.inner.renew_at, self.inner.clock.now());
                *renewal = Renewal::default();
                Ok(token)
            }
            Err(e) => {
                let now = self.inner.clock.now();
                renewal.failures = renewal.failures.saturating_add(1);
                let pause = self.inner.backoff.after(renewal.failures);
                let retry_at = now + Duration::from_std(pause).unwrap_or(Duration::seconds(30));
                renewal.retry_at = Some(retry_at);
                let e = match e {
                    TokenError::Unavailable { reason, .. } => TokenError::Unavailable { reason, retry_at },
                    other => other,
                };
                tracing::warn!(error = %e, failures = renewal.failures, "token request failed");
                renewal.last_error = Some(e.clone());
                match slot.valid(now, EXPIRY_MARGIN) {
                    Some(t) => Ok(t),
                    None => Err(e),
                }
            }
        }
    }

    /// Forget `token` if it is the one cached for `req`: a call
    /// answered 401 `invalid_token` (revoked, or the principal changed), so
    /// the next [`TokenSource::token`] asks Roster at once.
    pub fn invalidate(&self, req: &TokenRequest, token: &AccessToken) {
        let slot = self.slot(req);
        let same = slot.read(|c| Arc::ptr_eq(&c.token.secret, &token.secret).then(|| c.token.clone()));
        if same.is_some() {
            slot.store(None);
        }
    }

    /// Send a request with a token for `req` as its Bearer. If
    /// the answer is 401 `invalid_token` (RFC 6750 §3.1), the token is
    /// forgotten and the request sent once more with a new one.
    pub async fn send(
        &self,
        req: &TokenRequest,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, TokenError> {
        let token = self.token(req).await?;
        let resp = build()
            .bearer_auth(token.secret())
            .send()
            .await
            .map_err(|e| TokenError::Request(e.to_string()))?;
        if !is_invalid_token(&resp) {
            return Ok(resp);
        }
        self.invalidate(req, &token);
        let token = self.token(req).await?;
        build()
            .bearer_auth(token.secret())
            .send()
            .await
            .map_err(|e| TokenError::Request(e.to_string()))
    }

    /// Token exchange (RFC 8693): a token that lets this service act for the
    /// subject of `subject` (a token a caller sent it) towards `audience` (a
    /// service's name, or `urn:roster:category:NAME`). Roster checks that
    /// `subject` was sent to this service, that an admin allowed the hop,
    /// and the length of the chain; the new token carries the subject and
    /// `act` naming this service.
    ///
    /// Cached per (subject token, audience) until 80 % of its
    /// lifetime, with one request however many callers ask at once. A
    /// refusal is not cached: it is the caller's to answer.
    ///
    /// ```no_run
    /// # async fn f(tokens: roster_client::TokenSource, incoming: &str) -> Result<(), roster_client::TokenError> {
    /// let for_billing = tokens.exchange(incoming, "billing").await?;
    /// # let _ = for_billing; Ok(()) }
    /// ```
    pub async fn exchange(&self, subject: &str, audience: &str) -> Result<AccessToken, TokenError> {
        let slot = self.exchange_slot(subject, audience);
        if let Some(t) = slot.fresh(self.inner.clock.now()) {
            return Ok(t);
        }
        let _one = slot.renewal.lock().await;
        if let Some(t) = slot.fresh(self.inner.clock.now()) {
            return Ok(t);
        }
        let (secret, lifetime) = self.request_exchange(subject, audience).await?;
        Ok(slot.keep(secret, lifetime, self.inner.renew_at, self.inner.clock.now()))
    }

    fn exchange_slot(&self, subject: &str, audience: &str) -> Arc<Slot> {
        // Keyed by the whole token, never by a claim read from it unverified:
        // a forged token that copies a real one's `jti` must not be handed
        // the real one's exchanged token.
        let mut slots = match self.inner.exchanges.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if slots.len() >= MAX_EXCHANGE_SLOTS {
            let now = self.inner.clock.now();
            slots.retain(|_, slot| slot.valid(now, Duration::zero()).is_some());
            if slots.len() >= MAX_EXCHANGE_SLOTS {
                slots.clear();
            }
        }
        slots
            .entry((subject.to_string(), audience.to_string()))
            .or_default()
            .clone()
    }

    /// How many exchanged tokens are cached.
    pub fn exchanges_cached(&self) -> usize {
        match self.inner.exchanges.lock() {
            Ok(g) => g.len(),
            Err(p) => p.into_inner().len(),
        }
    }

    /// One token-exchange request (RFC 8693 §2.1): the token and its lifetime.
    async fn request_exchange(&self, subject: &str, audience: &str) -> Result<(SecretString, Duration), TokenError> {
        use roster_proto::claims::token_exchange::{ACCESS_TOKEN, GRANT_TYPE};
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        let client_id = self.inner.oauth.client_id().as_str().to_string();
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", GRANT_TYPE.into()),
            ("subject_token", subject.into()),
            ("subject_token_type", ACCESS_TOKEN.into()),
            ("audience", audience.into()),
        ];
        let mut req = self.inner.http.post(&self.inner.token_endpoint);
        match &self.inner.auth {
            // RFC 6749 §2.3.1: both parts form-urlencoded, then Basic.
            crate::auth::ClientAuth::Secret(secret) => {
                let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                req = req.basic_auth(enc(&client_id), Some(enc(secret.expose_secret())));
            }
            auth => {
                let assertion =
                    crate::auth::assertion(auth, &client_id, &self.inner.token_endpoint, self.inner.clock.now())
                        .map_err(TokenError::Request)?
                        .unwrap_or_default();
                form.push(("client_id", client_id.clone()));
                form.push(("client_assertion_type", crate::auth::JWT_BEARER.into()));
                form.push(("client_assertion", assertion));
            }
        }
        let unavailable = |reason: String| TokenError::Unavailable {
            reason,
            retry_at: self.inner.clock.now(),
        };
        let resp = req.form(&form).send().await.map_err(|e| unavailable(error_chain(&e)))?;
        let status = resp.status();
        let body: serde_json::Value = resp
            .json()
            .await
            .map_err(|e| unavailable(format!("{status}: {}", error_chain(&e))))?;
        let text = |field: &str| body.get(field).and_then(|v| v.as_str()).map(str::to_string);
        if status.is_success()
            && let Some(token) = text("access_token")
        {
            let lifetime = body
                .get("expires_in")
                .and_then(serde_json::Value::as_i64)
                .map(Duration::seconds)
                .unwrap_or(Duration::seconds(60));
            return Ok((SecretString::from(token), lifetime));
        }
        match text("error") {
            Some(error) if status.is_client_error() => Err(TokenError::Refused {
                error,
                description: text("error_description").unwrap_or_default(),
            }),
            _ => Err(unavailable(format!("the token endpoint answered {status}"))),
        }
    }

    /// One client-credentials request: the token and its lifetime.
    async fn request(&self, asked: &TokenRequest) -> Result<(SecretString, Duration), TokenError> {
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        let mut req = self.inner.oauth.exchange_client_credentials();
        if let Some(scope) = &asked.scope {
            req = req.add_scopes(scope.split_whitespace().map(|s| Scope::new(s.to_string())));
        }
        if let Some(resource) = &asked.resource {
            req = req.add_extra_param("resource", resource.clone());
        }
        let client_id = self.inner.oauth.client_id().as_str().to_string();
        let assertion = crate::auth::assertion(
            &self.inner.auth,
            &client_id,
            &self.inner.token_endpoint,
            self.inner.clock.now(),
        )
        .map_err(TokenError::Request)?;
        if let Some(assertion) = assertion {
            req = req
                .add_extra_param("client_assertion_type", crate::auth::JWT_BEARER)
                .add_extra_param("client_assertion", assertion);
        }
        match req.request_async(&self.inner.http).await {
            Ok(resp) => {
                let lifetime = resp
                    .expires_in()
                    .and_then(|d| Duration::from_std(d).ok())
                    .unwrap_or(Duration::seconds(60));
                Ok((SecretString::from(resp.access_token().secret().to_string()), lifetime))
            }
            Err(RequestTokenError::ServerResponse(e)) => Err(TokenError::Refused {
                error: e.error().to_string(),
                description: e.error_description().cloned().unwrap_or_default(),
            }),
            Err(e) => Err(TokenError::Unavailable {
                reason: error_chain(&e),
                retry_at: self.inner.clock.now(),
            }),
        }
    }
}

/// RFC 6750 §3: a 401 whose `WWW-Authenticate` says `invalid_token`.
fn is_invalid_token(resp: &reqwest::Response) -> bool {
    resp.status() == reqwest::StatusCode::UNAUTHORIZED
        && resp
            .headers()
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.contains("invalid_token")))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refusal names its RFC 6749 §5.2 code as the shared enum; a code
    /// Roster does not define, or another failure, names none.
    #[test]
    fn refusals_name_their_code() {
        let refused = |error: &str| TokenError::Refused {
            error: error.into(),
            description: String::new(),
        };
        assert_eq!(refused("invalid_client").code(), Some(ErrorCode::InvalidClient));
        assert_eq!(refused("invalid_scope").code(), Some(ErrorCode::InvalidScope));
        assert_eq!(refused("access_denied").code(), Some(ErrorCode::AccessDenied));
        assert_eq!(refused("consent_required").code(), None);
        assert_eq!(TokenError::Request("refused".into()).code(), None);
    }

    /// The builder fills what it is given and nothing else.
    #[test]
    fn requests_say_what_they_ask_for() {
        assert_eq!(
            TokenRequest::new(),
            TokenRequest {
                scope: None,
                resource: None
            }
        );
        assert_eq!(
            TokenRequest::new().scope("a b").resource("billing"),
            TokenRequest {
                scope: Some("a b".into()),
                resource: Some("billing".into())
            }
        );
    }
}
