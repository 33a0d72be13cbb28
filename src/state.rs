//! Shared state of the HTTP layer.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::auth::keys::{self, KeyRing, KeySnapshot};
use crate::auth::secrets::Pepper;
use crate::auth::usage::{self, UsageRecorder};
use crate::blocking::BlockingPool;
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::{DatabaseTarget, DbConnection, DbPool};
use crate::error::Result;
use crate::registry::RegistryConfig;
use crate::registry::feed::ChangeFeed;
use crate::registry::fetch::Fetcher;

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    pool: DbPool,
    target: DatabaseTarget,
    db_work: BlockingPool,
    argon_work: BlockingPool,
    pepper: Pepper,
    clock: Clock,
    settings: Settings,
    keys: KeyRing,
    usage: Arc<UsageRecorder>,
    registry: Arc<RegistryRuntime>,
}

/// What the registry needs at run time.
pub struct RegistryRuntime {
    pub config: RegistryConfig,
    pub fetcher: Fetcher,
    pub feed: ChangeFeed,
    /// Names this instance as the holder of polling leases.
    pub instance_id: String,
}

impl AppState {
    pub fn new(
        pool: DbPool,
        target: DatabaseTarget,
        pepper: Pepper,
        clock: Clock,
        settings: Settings,
    ) -> std::result::Result<Self, String> {
        let db_size = pool.max_size() as usize;
        // argon2 is CPU-bound: one verification per core at a time.
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                target,
                db_work: BlockingPool::new("db", db_size),
                argon_work: BlockingPool::new("argon2", cores),
                pepper,
                clock,
                keys: KeyRing::new(settings.keys.clone(), settings.key_refresh),
                usage: Arc::new(UsageRecorder::new(settings.usage_flush)),
                registry: Arc::new(RegistryRuntime {
                    fetcher: Fetcher::new(
                        settings
                            .registry
                            .fetch_timeout
                            .to_std()
                            .unwrap_or(std::time::Duration::from_secs(2)),
                    )?,
                    config: settings.registry.clone(),
                    feed: ChangeFeed::new(),
                    instance_id: crate::models::new_id(),
                }),
                settings,
            }),
        })
    }

    pub fn registry(&self) -> &RegistryRuntime {
        &self.inner.registry
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    pub fn pepper(&self) -> &Pepper {
        &self.inner.pepper
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn target(&self) -> &DatabaseTarget {
        &self.inner.target
    }

    /// Run `f` with a pooled connection on the bounded database pool.
    pub async fn db<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&mut DbConnection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.inner.pool.clone();
        self.inner
            .db_work
            .run(move || {
                let mut conn = pool.get()?;
                f(&mut conn)
            })
            .await?
    }

    /// Run CPU-bound credential work (argon2) on its own bounded pool.
    pub async fn argon<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        Ok(self.inner.argon_work.run(f).await?)
    }

    /// Readiness: the database answers (and, for SQLite, its file is still there).
    pub async fn ping(&self) -> std::result::Result<(), String> {
        let pool = self.inner.pool.clone();
        let target = self.inner.target.clone();
        self.inner
            .db_work
            .run(move || crate::db::ping(&pool, &target))
            .await
            .map_err(|e| e.to_string())?
    }

    /// The signing keys as of now: the cached snapshot while it is fresh.
    /// Once it is stale, one request reloads it (running the rotation steps
    /// that are due) while the others keep using the previous snapshot, so a
    /// reload never stalls issuance. Only the very first load is waited for.
    pub async fn keys(&self) -> Result<Arc<KeySnapshot>> {
        let now = self.now();
        let ring = &self.inner.keys;
        if let Some(snap) = ring.fresh(now) {
            return Ok(snap);
        }
        let _guard = match ring.try_reload_guard() {
            Some(guard) => guard,
            None => match ring.latest() {
                Some(stale) => return Ok(stale),
                None => ring.reload_guard().await,
            },
        };
        if let Some(snap) = ring.fresh(now) {
            return Ok(snap);
        }
        let pepper = self.inner.pepper.clone();
        let policy = ring.policy.clone();
        let snap = self
            .db(move |conn| {
                keys::maintain(conn, &pepper, &policy, now)?;
                crate::models::revoked_token::delete_expired(conn, now)?;
                keys::load(conn, &pepper, now)
            })
            .await?;
        Ok(ring.store(snap))
    }

    /// Client-secret use counts waiting to be written.
    pub fn usage(&self) -> Arc<UsageRecorder> {
        self.inner.usage.clone()
    }

    /// Write every pending use count now (at shutdown, or on demand).
    pub async fn flush_usage(&self) -> Result<()> {
        let batch = self.inner.usage.take();
        if batch.is_empty() {
            return Ok(());
        }
        self.db(move |conn| usage::apply(conn, &batch)).await
    }
}
