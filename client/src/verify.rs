//! [`Verifier`]: checks incoming access tokens offline (RFC 9068 §4) against
//! Roster's JWKS, and optionally against the revocation feed.

use std::sync::{Arc, Mutex, RwLock, Weak};

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, Validation};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::discovery::{DiscoveryError, Metadata};
use crate::error::VerifyError;
use crate::jwks::{self, KeySet, KeysError};
use crate::revocation::{FeedPage, RevocationPolicy, RevocationState, Verdict};
use crate::token::{TokenError, TokenRequest, TokenSource};
use roster_proto::claims::{AccessTokenClaims, Actor, is_access_token_typ};

/// Who is calling: the claims of a verified access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The principal's id (`sub`).
    pub id: String,
    /// The principal's name (a service's name is its `client_id`).
    pub name: String,
    /// `service` or `human`.
    pub kind: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// The scopes the token carries (less any the principal has lost since,
    /// when the verifier follows the revocation feed).
    pub scopes: Vec<String>,
    /// The token's id (what revocation names).
    pub jti: String,
    /// `iat`.
    pub issued_at: DateTime<Utc>,
    /// `exp`.
    pub expires_at: DateTime<Utc>,
    /// RFC 8693 §4.1: for a token made by token exchange, the service that
    /// acts for the subject, with the actors before it nested inside.
    pub act: Option<Actor>,
}

impl Claims {
    /// The services acting for the subject, the one that called first:
    /// empty for a token the subject got for itself.
    pub fn actors(&self) -> Vec<&str> {
        let mut chain: Vec<&str> = match &self.act {
            Some(act) => act.chain().iter().map(|a| a.client_id.as_str()).collect(),
            None => Vec::new(),
        };
        chain.reverse();
        chain
    }

    /// Does the token carry `scope`?
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// `Ok` if the token carries every scope in `required`, else 403
    /// `insufficient_scope` naming them (RFC 6750 §3.1).
    pub fn require(&self, required: &[&str]) -> Result<(), VerifyError> {
        if required.iter().all(|r| self.has_scope(r)) {
            Ok(())
        } else {
            Err(VerifyError::InsufficientScope(required.join(" ")))
        }
    }
}

/// Settings of a [`Verifier`].
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// Roster's issuer URL.
    pub issuer: String,
    /// The audience tokens must name: by default, the service's own name
    /// (the `resource` callers asked tokens for).
    pub audience: String,
    /// Allowed clock skew on `exp` and `nbf`.
    pub leeway: Duration,
    /// A token with an unknown `kid` makes the verifier refetch the JWKS at
    /// most once per this interval, so forged `kid`s are no lever on Roster.
    pub unknown_kid_refetch: Duration,
    /// The time `exp`, `nbf` and the feed's staleness are judged by.
    pub clock: Clock,
}

impl VerifierConfig {
    /// Defaults: 30 s leeway, at most one refetch for unknown `kid`s every 30 s.
    pub fn new(issuer: &str, audience: &str) -> Self {
        Self {
            issuer: issuer.trim_end_matches('/').to_string(),
            audience: audience.to_string(),
            leeway: Duration::seconds(30),
            unknown_kid_refetch: Duration::seconds(30),
            clock: Clock::system(),
        }
    }
}

/// Why a [`Verifier`] could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The issuer's metadata could not be read (RFC 8414).
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The issuer's keys could not be read.
    #[error(transparent)]
    Keys(#[from] KeysError),
}

/// Why the revocation feed could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FeedError {
    /// No token to read it with, or the request could not be sent.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Roster answered with an error status.
    #[error("the revocation feed answered {0}")]
    Status(u16),
    /// The answer is not a feed page.
    #[error("the revocation feed answered garbage: {0}")]
    Malformed(String),
}

struct Following {
    state: RwLock<RevocationState>,
    policy: RevocationPolicy,
    index: watch::Sender<i64>,
    /// Complete reads of the feed from the start so far.
    resyncs: watch::Sender<u64>,
}

struct Inner {
    config: VerifierConfig,
    http: reqwest::Client,
    meta: Metadata,
    keys: RwLock<Arc<KeySet>>,
    /// Held by the one task refetching the JWKS.
    refetch: tokio::sync::Mutex<()>,
    last_forced: Mutex<Option<DateTime<Utc>>>,
    following: RwLock<Option<Arc<Following>>>,
}

/// Verifies access tokens for one service (cheap to clone).
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.inner.config.issuer)
            .field("audience", &self.inner.config.audience)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Discover the JWKS from the issuer (RFC 8414) and fetch it once.
    pub async fn discover(config: VerifierConfig) -> Result<Self, SetupError> {
        let http = crate::http_client(std::time::Duration::from_secs(10));
        let meta = Metadata::discover(&http, &config.issuer).await?;
        let now = config.clock.now();
        let keys = jwks::fetch(&http, &meta.jwks_uri, now).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                http,
                meta,
                keys: RwLock::new(Arc::new(keys)),
                refetch: tokio::sync::Mutex::new(()),
                // The first fetch does not count: a rotation may need one forced refetch at once.
                last_forced: Mutex::new(None),
                following: RwLock::new(None),
            }),
        })
    }

    fn keys(&self) -> Arc<KeySet> {
        match self.inner.keys.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Refetch the JWKS (the caller holds `refetch`). A failure keeps the
    /// old keys, and is tried again after a short pause rather than per request.
    async fn refetch(&self, now: DateTime<Utc>) {
        match jwks::fetch(&self.inner.http, &self.inner.meta.jwks_uri, now).await {
            Ok(set) => match self.inner.keys.write() {
                Ok(mut g) => *g = Arc::new(set),
                Err(p) => *p.into_inner() = Arc::new(set),
            },
            Err(e) => {
                tracing::warn!(error = %e, "JWKS refetch failed; keeping the keys held");
                let old = self.keys();
                let retry = KeySet {
                    keys: old.keys.clone(),
                    stale_at: now + Duration::seconds(5),
                };
                match self.inner.keys.write() {
                    Ok(mut g) => *g = Arc::new(retry),
                    Err(p) => *p.into_inner() = Arc::new(retry),
                }
            }
        }
    }

    /// The key for `kid`: from the cache; past `max-age`, one caller
    /// refetches while the others use the keys held; an unknown `kid` waits
    /// for a refetch in flight, or starts one if none ran within the interval.
    async fn key_for(&self, kid: &str) -> Option<(Algorithm, jsonwebtoken::DecodingKey)> {
        let now = self.inner.config.clock.now();
        let keys = self.keys();
        if now >= keys.stale_at
            && let Ok(_guard) = self.inner.refetch.try_lock()
            && now >= self.keys().stale_at
        {
            self.refetch(now).await;
        }
        if let Some(k) = self.keys().keys.get(kid) {
            return Some(k.clone());
        }
        let _guard = self.inner.refetch.lock().await;
        if let Some(k) = self.keys().keys.get(kid) {
            return Some(k.clone());
        }
        let now = self.inner.config.clock.now();
        {
            let mut last = match self.inner.last_forced.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            if last.is_some_and(|t| now >= t && now - t < self.inner.config.unknown_kid_refetch) {
                return None;
            }
            *last = Some(now);
        }
        self.refetch(now).await;
        self.keys().keys.get(kid).cloned()
    }

    /// Verify the caller of a request from its `Authorization` header
    /// (RFC 6750 §2.1): no Bearer credentials is [`VerifyError::Missing`].
    /// What the framework integrations call.
    pub async fn verify_authorization(&self, header: Option<&[u8]>) -> Result<Claims, VerifyError> {
        self.verify(crate::error::bearer_token(header)?).await
    }

    /// Verify a Bearer token: RFC 9068 §4 (`typ` `at+jwt`, an accepted
    /// algorithm matching the key's, signature, `iss`, `aud`, `exp` and `nbf`
    /// with the leeway), then the revocation feed if followed.
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Invalid("malformed"))?;
        if !header.typ.as_deref().is_some_and(is_access_token_typ) {
            return Err(VerifyError::Invalid("not an access token (typ)"));
        }
        if !jwks::ACCEPTED.contains(&header.alg) {
            return Err(VerifyError::Invalid("algorithm not accepted"));
        }
        let kid = header.kid.ok_or(VerifyError::Invalid("no kid"))?;
        let (alg, key) = self.key_for(&kid).await.ok_or(VerifyError::Invalid("unknown kid"))?;
        if alg != header.alg {
            return Err(VerifyError::Invalid("algorithm differs from the key's"));
        }
        let cfg = &self.inner.config;
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&cfg.issuer]);
        validation.set_audience(&[&cfg.audience]);
        // Time is checked below against the verifier's clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<AccessTokenClaims>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            VerifyError::Invalid(match e.kind() {
                ErrorKind::InvalidSignature => "bad signature",
                ErrorKind::InvalidIssuer => "wrong issuer",
                ErrorKind::InvalidAudience => "wrong audience",
                _ => "malformed claims",
            })
        })?;
        let c = data.claims;
        let now = cfg.clock.now();
        let t = now.timestamp();
        let leeway = cfg.leeway.num_seconds();
        if c.exp + leeway <= t {
            return Err(VerifyError::Invalid("expired"));
        }
        if c.nbf.unwrap_or(c.iat) > t + leeway {
            return Err(VerifyError::Invalid("not yet valid"));
        }
        let mut scopes: Vec<String> = c.scope.split_whitespace().map(str::to_string).collect();
        if let Some(f) = self.following() {
            let state = match f.state.read() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            match state.judge_token(&c, now, &f.policy) {
                Verdict::Accept(s) => scopes = s,
                Verdict::Revoked(why) => return Err(VerifyError::Invalid(why)),
                Verdict::Stale => return Err(VerifyError::Unavailable("the revocation feed is stale")),
            }
        }
        Ok(Claims {
            id: c.sub,
            name: c.name,
            kind: c.principal_kind,
            client_id: c.client_id,
            scopes,
            jti: c.jti,
            issued_at: DateTime::from_timestamp(c.iat, 0).unwrap_or(now),
            expires_at: DateTime::from_timestamp(c.exp, 0).unwrap_or(now),
            act: c.act,
        })
    }

    /// [`Verifier::verify`], then require every scope in `required`.
    pub async fn verify_scopes(&self, token: &str, required: &[&str]) -> Result<Claims, VerifyError> {
        let claims = self.verify(token).await?;
        claims.require(required)?;
        Ok(claims)
    }

    fn following(&self) -> Option<Arc<Following>> {
        match self.inner.following.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Follow Roster's revocation feed with `tokens` (the service's own
    /// credentials): read it once now (an error if Roster cannot be read),
    /// then keep a long poll open in a background task for as long as the
    /// verifier lives. From then on a revoked token, or a token of a disabled
    /// or demoted principal, is refused about as soon as Roster records it.
    /// If the feed has not answered for [`RevocationPolicy::max_staleness`],
    /// tokens are refused with 503 ([`crate::FailMode::Closed`], the default)
    /// or accepted on signature alone ([`crate::FailMode::Open`]).
    pub async fn follow_revocations(&self, tokens: TokenSource, policy: RevocationPolicy) -> Result<(), FeedError> {
        let url = format!("{}/api/v1/revocations", self.inner.config.issuer);
        let http = crate::http_client(policy.wait + std::time::Duration::from_secs(15));
        let first = poll(&tokens, &http, &url, None, policy.wait).await?;
        let mut state = RevocationState::default();
        let now = self.inner.config.clock.now();
        let more = first.more;
        state.apply(first, now);
        let following = Arc::new(Following {
            index: watch::channel(state.index).0,
            resyncs: watch::channel(0).0,
            state: RwLock::new(state),
            policy,
        });
        match self.inner.following.write() {
            Ok(mut g) => *g = Some(following.clone()),
            Err(p) => *p.into_inner() = Some(following.clone()),
        }
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(follow(weak, following, tokens, http, url, more));
        Ok(())
    }

    /// The feed index this verifier has applied (0 when not following).
    pub fn revocation_index(&self) -> i64 {
        self.following().map_or(0, |f| *f.index.borrow())
    }

    #[cfg(feature = "testing")]
    /// Complete reads of the feed from the start so far.
    pub fn revocation_resyncs(&self) -> u64 {
        self.following().map_or(0, |f| *f.resyncs.borrow())
    }

    #[cfg(feature = "testing")]
    /// Resolve once the verifier has read the whole feed again from the
    /// start `count` times ([`RevocationPolicy::resync_every`]).
    pub async fn revocations_resynced(&self, count: u64) {
        if let Some(f) = self.following() {
            let mut rx = f.resyncs.subscribe();
            let _ = rx.wait_for(|n| *n >= count).await;
        }
    }

    #[cfg(feature = "testing")]
    /// Resolve once the verifier has applied the feed up to `index`.
    pub async fn revocations_applied(&self, index: i64) {
        if let Some(f) = self.following() {
            let mut rx = f.index.subscribe();
            let _ = rx.wait_for(|i| *i >= index).await;
        }
    }
}

/// One read of the feed: after `index` (blocking), or everything (`None`).
async fn poll(
    tokens: &TokenSource,
    http: &reqwest::Client,
    url: &str,
    index: Option<i64>,
    wait: std::time::Duration,
) -> Result<FeedPage, FeedError> {
    let query: Vec<(&str, String)> = match index {
        Some(i) => vec![
            ("index", i.to_string()),
            ("wait", format!("{}s", wait.as_secs().max(1))),
        ],
        None => vec![],
    };
    let resp = tokens
        .send(&TokenRequest::new(), || http.get(url).query(&query))
        .await?;
    if !resp.status().is_success() {
        return Err(FeedError::Status(resp.status().as_u16()));
    }
    resp.json::<FeedPage>()
        .await
        .map_err(|e| FeedError::Malformed(e.to_string()))
}

/// The whole feed from the start, page by page, as a fresh state.
async fn read_all(
    tokens: &TokenSource,
    http: &reqwest::Client,
    url: &str,
    clock: &crate::clock::Clock,
) -> Result<RevocationState, FeedError> {
    let mut state = RevocationState::default();
    let mut page = poll(tokens, http, url, None, std::time::Duration::ZERO).await?;
    loop {
        let more = page.more;
        state.apply(page, clock.now());
        if !more {
            return Ok(state);
        }
        page = poll(tokens, http, url, Some(state.index), std::time::Duration::ZERO).await?;
    }
}

/// The background long poll; ends when the verifier is dropped.
async fn follow(
    verifier: Weak<Inner>,
    following: Arc<Following>,
    tokens: TokenSource,
    http: reqwest::Client,
    url: String,
    mut more: bool,
) {
    let mut failures = 0u32;
    let mut resynced = tokio::time::Instant::now();
    loop {
        if resynced.elapsed() >= following.policy.resync_every {
            resynced = tokio::time::Instant::now();
            let Some(inner) = verifier.upgrade() else { return };
            let clock = inner.config.clock.clone();
            drop(inner);
            match read_all(&tokens, &http, &url, &clock).await {
                Ok(fresh) => {
                    let index = fresh.index;
                    match following.state.write() {
                        Ok(mut s) => s.replace_with(fresh),
                        Err(p) => p.into_inner().replace_with(fresh),
                    }
                    following.index.send_replace(index);
                    following.resyncs.send_modify(|n| *n += 1);
                }
                Err(e) => tracing::warn!(error = %e, "the revocation feed could not be read again from the start"),
            }
        }
        let index = following.index.borrow().to_owned();
        let wait = if more {
            std::time::Duration::from_secs(0)
        } else {
            following.policy.wait
        };
        // A long poll gives way when the next read from the start is due.
        let due = resynced + following.policy.resync_every;
        let answer = tokio::select! {
            answer = poll(&tokens, &http, &url, Some(index), wait) => answer,
            () = tokio::time::sleep_until(due) => continue,
        };
        let Some(inner) = verifier.upgrade() else { return };
        match answer {
            Ok(page) => {
                failures = 0;
                more = page.more;
                if page.reset {
                    // The server's numbering moved under us: read it all again soon.
                    resynced = tokio::time::Instant::now() - following.policy.resync_every;
                }
                let now = inner.config.clock.now();
                let new_index = page.index;
                match following.state.write() {
                    Ok(mut s) => s.apply(page, now),
                    Err(p) => p.into_inner().apply(page, now),
                }
                following.index.send_replace(new_index);
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let pause = following.policy.backoff.after(failures);
                tracing::warn!(error = %e, ?pause, "the revocation feed could not be read");
                drop(inner);
                tokio::time::sleep(pause).await;
            }
        }
    }
}
