//! The HTTP layer's container: the domain contexts, the clock and the
//! settings that handlers hand down. Domain code never sees it.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::auth::failures::FailureLog;
use crate::auth::keys::KeyStore;
use crate::auth::usage::UsageRecorder;
use crate::blocking::BlockingPool;
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::{Pool, PoolOptions};
use crate::oauth::OAuthContext;
use crate::principals::PrincipalsContext;
use crate::registry::RegistryContext;
use crate::startup::Session;
use crate::upkeep::Upkeep;

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    db: Pool,
    clock: Clock,
    settings: Settings,
    oauth: OAuthContext,
    principals: PrincipalsContext,
    registry: Arc<RegistryContext>,
    upkeep: Arc<Upkeep>,
}

impl AppState {
    /// Build every context from a migrated, verified database session: load
    /// the signing keys on the session's connection, then open the pool.
    pub fn new(session: Session, pool: &PoolOptions, clock: Clock, settings: Settings) -> Result<Self, String> {
        let Session {
            target,
            mut conn,
            pepper,
            ..
        } = session;
        let keys = Arc::new(
            KeyStore::open(&mut conn, pepper.clone(), settings.keys.clone(), clock.now())
                .map_err(|e| format!("cannot load the signing keys: {e}"))?,
        );
        // Cross-origin callers are known from the first request on.
        let origins = Arc::new(crate::oauth::origins::AllowedOrigins::new());
        crate::models::auth_state::current(&mut conn)
            .and_then(|generation| origins.reload(&mut conn, generation))
            .map_err(|e| format!("cannot load the allowed origins: {e}"))?;
        drop(conn);
        let db = Pool::new(target, pool);
        // argon2 is CPU-bound: one verification per core at a time.
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let argon = BlockingPool::bounded("argon2", cores, settings.argon_queue);
        let usage = Arc::new(UsageRecorder::new());
        let failures = Arc::new(FailureLog::default());
        let budget = Arc::new(crate::auth::source_budget::SourceBudget::default());
        let verified = Arc::new(crate::auth::verified::VerifiedClients::new());
        let revocations = Arc::new(crate::feed::ChangeFeed::new());
        let live = Arc::new(crate::auth::live::LiveView::new());
        let registry = Arc::new(RegistryContext::new(db.clone(), settings.registry.clone())?);
        let remote_keys = Arc::new(crate::auth::remote_keys::RemoteKeys::new(registry.fetcher.clone()));
        let passkeys = crate::auth::passkeys::Passkeys::for_issuer(settings.issuer());
        let upkeep = Arc::new(Upkeep::new(crate::upkeep::Parts {
            db: db.clone(),
            keys: keys.clone(),
            usage: usage.clone(),
            failures: failures.clone(),
            budget: budget.clone(),
            registry: registry.clone(),
            verified: verified.clone(),
            revocations: revocations.clone(),
            live: live.clone(),
            remote_keys: remote_keys.clone(),
            origins,
            clock: clock.clone(),
            key_refresh: settings.key_refresh,
            audit_retention: settings.audit_retention,
            argon: argon.clone(),
            rotation_interval: settings.keys.rotation_interval,
        }));
        Ok(Self {
            inner: Arc::new(Inner {
                oauth: OAuthContext::new(crate::oauth::Parts {
                    db: db.clone(),
                    argon: argon.clone(),
                    hashing: settings.password_hashing,
                    keys,
                    pepper: pepper.clone(),
                    usage,
                    failures: failures.clone(),
                    budget,
                    throttle: settings.throttle.clone(),
                    token: settings.token.clone(),
                    verified: verified.clone(),
                    sessions: settings.sessions,
                    revocations: revocations.clone(),
                    live: live.clone(),
                    signatures: crate::auth::jwt::VerifiedSignatures::new(),
                    remote_keys,
                    jtis: crate::auth::jti_ledger::JtiLedger::new(),
                    exchanges: crate::oauth::exchange::ledger(),
                    targets: crate::oauth::exchange::TargetCache::new(),
                    mfa: settings.mfa,
                    passkeys: passkeys.clone(),
                }),
                principals: PrincipalsContext {
                    db: db.clone(),
                    argon,
                    hashing: settings.password_hashing,
                    pepper,
                    verified,
                    revocations,
                    live,
                    mfa: settings.mfa,
                    throttle: settings.throttle.clone(),
                    passkeys: passkeys.clone(),
                    issuer: settings.issuer().to_string(),
                    failures,
                },
                registry,
                upkeep,
                db,
                clock,
                settings,
            }),
        })
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn issuer(&self) -> &str {
        self.inner.settings.issuer()
    }

    pub fn db(&self) -> &Pool {
        &self.inner.db
    }

    pub fn keys(&self) -> &Arc<KeyStore> {
        &self.inner.oauth.keys
    }

    pub fn oauth(&self) -> &OAuthContext {
        &self.inner.oauth
    }

    pub fn principals(&self) -> &PrincipalsContext {
        &self.inner.principals
    }

    pub fn registry(&self) -> &RegistryContext {
        &self.inner.registry
    }

    pub fn origins(&self) -> &crate::oauth::origins::AllowedOrigins {
        &self.inner.upkeep.parts.origins
    }

    pub fn upkeep(&self) -> &Arc<Upkeep> {
        &self.inner.upkeep
    }
}
