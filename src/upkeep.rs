//! The background tick of every instance, once a second. It owns all of the
//! instance's maintenance, so that no request pays for it:
//! - the key store: rotation steps, reload, and the deny-list cleanup, every
//!   key refresh interval;
//! - the registry: leases, health checks, manifest pulls, the change index;
//! - client-secret use counts, written in one batch;
//! - the cache of verified clients, dropped when the authentication
//!   generation in the database moves;
//! - the revocation feed's index, so that long polls here wake for
//!   revocations made on other instances or by the CLI;
//! - introspection's live view ([`crate::auth::live`]), caught up with the
//!   revocation log (its own follower does this five times a second);
//! - the counts of folded login failures whose window closed;
//! - the JWK Sets fetched from `jwks_uri`s, fetched again every few minutes;
//! - spent client-assertion `jti`s past their expiry, and audit retention: events older than the retention go, a batch a minute.
//!
//! It also answers readiness: the database answers, and the keys in service
//! are not older than [`Upkeep::keys_stale_after`].

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::auth::failures::FailureLog;
use crate::auth::keys::KeyStore;
use crate::auth::usage::{self, UsageRecorder};
use crate::clock::Clock;
use crate::db::Pool;
use crate::error::{Error, Result};
use crate::models::{audit, revoked_token};
use crate::registry::RegistryContext;

/// How often the background tick runs.
pub const TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// Most audit events one retention pass deletes.
pub const RETENTION_BATCH: i64 = 500;
/// How often a retention pass runs.
const RETENTION_EVERY_SECS: i64 = 60;

/// Shortest bound on the age of the keys in service before readiness fails.
const MIN_KEYS_STALE_AFTER_SECS: i64 = 30;

pub struct Upkeep {
    pub parts: Parts,
    last_key_refresh: Mutex<Option<DateTime<Utc>>>,
    last_retention: Mutex<Option<DateTime<Utc>>>,
}

/// The parts an [`Upkeep`] looks after.
pub struct Parts {
    pub db: Pool,
    pub keys: Arc<KeyStore>,
    pub usage: Arc<UsageRecorder>,
    pub failures: Arc<FailureLog>,
    /// Per-source budgets of unauthenticated creations; closed windows are forgotten here.
    pub budget: Arc<crate::auth::source_budget::SourceBudget>,
    pub registry: Arc<RegistryContext>,
    /// Forgotten when the database's authentication generation moves.
    pub verified: Arc<crate::auth::verified::VerifiedClients>,
    /// Wakes the revocation feed's long polls.
    pub revocations: Arc<crate::feed::ChangeFeed>,
    /// Introspection's view of revocations and principals; its follower
    /// keeps it current, and each tick catches it up too.
    pub live: Arc<crate::auth::live::LiveView>,
    /// Origins allowed cross-origin (CORS), reloaded every tick.
    pub origins: Arc<crate::oauth::origins::AllowedOrigins>,
    /// JWK Sets fetched from `jwks_uri`s, refreshed when due.
    pub remote_keys: Arc<crate::auth::remote_keys::RemoteKeys>,
    pub clock: Clock,
    /// How often the keys are reloaded (and the rotation steps run).
    pub key_refresh: Duration,
    /// Audit events older than this are deleted; `None` keeps them all.
    pub audit_retention: Option<Duration>,
    /// The password checks' pool, whose queue the metrics show.
    pub argon: crate::blocking::BlockingPool,
    /// When a new signing key is due; `None`: manual rotation only.
    pub rotation_interval: Option<Duration>,
}

/// What `/readyz` reports.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Readiness {
    pub status: &'static str,
    pub database: &'static str,
    /// Seconds since the signing keys in service were loaded.
    pub keys_age_seconds: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.error.is_none()
    }
}

impl Upkeep {
    pub fn new(parts: Parts) -> Self {
        Self {
            parts,
            last_key_refresh: Mutex::new(None),
            last_retention: Mutex::new(None),
        }
    }

    /// Keys older than this make the instance unready: six refresh intervals,
    /// and at least 30 seconds.
    pub fn keys_stale_after(&self) -> Duration {
        (self.parts.key_refresh * 6).max(Duration::seconds(MIN_KEYS_STALE_AFTER_SECS))
    }

    /// One round of upkeep at the clock's `now`. Each part runs even when an
    /// earlier one failed; the first error is returned.
    pub async fn tick(&self) -> Result<()> {
        let now = self.parts.clock.now();
        let verified = self.observe_auth_generation(now).await;
        let live = self.catch_up_live(now).await;
        let keys = self.refresh_keys_if_due(now).await;
        let registry = crate::registry::worker::tick(&self.parts.registry, now, &self.parts.clock).await;
        self.parts.remote_keys.refresh_due(now).await;
        self.parts.budget.forget_closed(now);
        let usage = self.flush_usage().await;
        let failures = self.flush_failures(now, false).await;
        let retention = self.apply_retention_if_due(now).await;
        self.gauges();
        verified
            .and(live)
            .and(keys)
            .and(registry)
            .and(usage)
            .and(failures)
            .and(retention)
    }

    /// What the metrics show of the pools and feeds, read at each tick.
    fn gauges(&self) {
        let p = &self.parts;
        crate::telemetry::pools(p.db.in_use(), p.db.waiting(), p.argon.waiting());
        crate::telemetry::revocation_waiters(p.revocations.waiters());
        let (principals, revoked) = p.live.size();
        crate::telemetry::live_view(principals, revoked);
        crate::telemetry::upkeep();
    }

    /// The signing keys' ages and phases, after each reload.
    fn key_gauges(&self, keys: &[crate::auth::keys::KeyInfo], now: DateTime<Utc>) {
        use crate::models::signing_key::KeyState;
        let active = keys
            .iter()
            .find(|k| k.state == KeyState::Active)
            .and_then(|k| k.activated_at);
        let age = active
            .map(|t| (now - t).num_milliseconds() as f64 / 1000.0)
            .unwrap_or(0.0);
        let next = match (active, self.parts.rotation_interval) {
            (Some(t), Some(every)) => ((t + every) - now).num_milliseconds() as f64 / 1000.0,
            _ => f64::INFINITY,
        };
        let count = |s: KeyState| keys.iter().filter(|k| k.state == s).count();
        crate::telemetry::keys(
            age,
            next,
            &[
                ("active", count(KeyState::Active)),
                ("next", count(KeyState::Next)),
                ("retired", count(KeyState::Retired)),
            ],
        );
    }

    /// A change made by another instance or the CLI moved the database's
    /// authentication generation: forget the clients verified before it, and
    /// reload the CORS origins. The revocation index is read on the way.
    /// Bring introspection's live view up to the revocation log (its
    /// follower does this five times a second; the tick is its backstop).
    async fn catch_up_live(&self, now: DateTime<Utc>) -> Result<()> {
        let live = self.parts.live.clone();
        self.parts.db.run(move |c| live.catch_up(c, now)).await.map(|_| ())
    }

    async fn observe_auth_generation(&self, now: DateTime<Utc>) -> Result<()> {
        let (generation, revocations) = self.parts.db.run(crate::models::auth_state::counters).await?;
        self.parts.revocations.observe(revocations);
        self.parts.verified.observe(generation, now);
        if self.parts.origins.is_behind(generation) {
            let origins = self.parts.origins.clone();
            self.parts.db.run(move |c| origins.reload(c, generation)).await?;
        }
        Ok(())
    }

    /// Write the counts of folded failures whose window closed (all, when `all`).
    pub async fn flush_failures(&self, now: DateTime<Utc>, all: bool) -> Result<()> {
        if self.parts.failures.open_windows() == 0 {
            return Ok(());
        }
        let failures = self.parts.failures.clone();
        self.parts.db.run(move |c| failures.flush(c, now, all)).await
    }

    /// Once a minute: forget login counters quiet for a day, and delete one
    /// batch of audit events past the retention.
    async fn apply_retention_if_due(&self, now: DateTime<Utc>) -> Result<()> {
        {
            let mut last = match self.last_retention.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            if last.is_some_and(|t| now >= t && now - t < Duration::seconds(RETENTION_EVERY_SECS)) {
                return Ok(());
            }
            *last = Some(now);
        }
        let retention = self.parts.audit_retention;
        let deleted = self
            .parts
            .db
            .run(move |c| {
                crate::models::throttle::delete_stale(c, now - Duration::days(1), now)?;
                crate::models::login_session::delete_expired(c, now)?;
                crate::models::client_key::prune_jtis(c, now)?;
                crate::models::revocation::delete_expired(c, now)?;
                // Revocations an older Roster put on the deny list only.
                let repaired = crate::models::revoked_token::repair_feed(c, now)?;
                if repaired > 0 {
                    tracing::warn!(
                        repaired,
                        "revoked tokens missing from the revocation feed were added to it"
                    );
                }
                // Tokens exchanged while the token they came from was being revoked.
                let orphans = crate::models::token_exchange::orphans(c, now, 500)?;
                if !orphans.is_empty() {
                    crate::db::transaction(c, |tx| crate::models::revoked_token::insert_many(tx, &orphans, now))?;
                    tracing::info!(revoked = orphans.len(), "exchanged tokens of revoked tokens revoked");
                }
                crate::models::token_exchange::delete_expired(c, now)?;
                crate::models::device_code::delete_expired(c, now)?;
                crate::models::second_factor::delete_expired_ceremonies(c, now)?;
                crate::models::invitation::delete_expired(c, now)?;
                // TOTP enrolments never confirmed.
                crate::models::second_factor::delete_unconfirmed_before(
                    c,
                    now - crate::auth::second_factor::ENROLMENT_TTL,
                )?;
                crate::models::authorization_code::delete_expired(c, now - crate::oauth::code::CODE_MEMORY)?;
                match retention {
                    Some(r) => audit::delete_older_than(c, now - r, RETENTION_BATCH),
                    None => Ok(0),
                }
            })
            .await?;
        if deleted > 0 {
            tracing::info!(deleted, "audit events past their retention deleted");
        }
        Ok(())
    }

    async fn refresh_keys_if_due(&self, now: DateTime<Utc>) -> Result<()> {
        {
            let last = match self.last_key_refresh.lock() {
                Ok(g) => *g,
                Err(poisoned) => *poisoned.into_inner(),
            };
            if last.is_some_and(|t| now - t < self.parts.key_refresh && now >= t) {
                return Ok(());
            }
        }
        let keys = self.parts.keys.clone();
        let listed = self
            .parts
            .db
            .run(move |c| {
                keys.refresh(c, now)?;
                revoked_token::delete_expired(c, now)?;
                if crate::telemetry::enabled() {
                    crate::auth::keys::list(c).map(Some)
                } else {
                    Ok(None)
                }
            })
            .await?;
        if let Some(listed) = listed {
            self.key_gauges(&listed, now);
        }
        match self.last_key_refresh.lock() {
            Ok(mut g) => *g = Some(now),
            Err(poisoned) => *poisoned.into_inner() = Some(now),
        }
        Ok(())
    }

    /// Write every pending use count now. A failed write keeps the counts
    /// for the next try.
    pub async fn flush_usage(&self) -> Result<()> {
        let batch = self.parts.usage.take();
        if batch.is_empty() {
            return Ok(());
        }
        let kept = batch.clone();
        let written = self.parts.db.run(move |conn| usage::apply(conn, &batch)).await;
        if written.is_err() {
            self.parts.usage.restore(kept);
        }
        written
    }

    /// Tick every `period` (the first one after a period) until `stop`
    /// turns true; a failed tick is logged. On stop, pending use counts are
    /// written before it returns, so a clean shutdown loses none.
    pub async fn run(self: Arc<Self>, period: std::time::Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = stop.wait_for(|s| *s) => break,
            }
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "background tick failed");
            }
        }
        if let Err(e) = self.flush_usage().await {
            tracing::warn!(error = %e, "could not write pending client secret use counts");
        }
        if let Err(e) = self.flush_failures(self.parts.clock.now(), true).await {
            tracing::warn!(error = %e, "could not write the counts of folded login failures");
        }
    }

    /// Is this instance ready to serve? The database must answer and the
    /// keys in service must be fresh.
    pub async fn readiness(&self) -> Readiness {
        let now = self.parts.clock.now();
        let target = self.parts.db.target().clone();
        let database = target.backend_name();
        let keys_age_seconds = self.parts.keys.age(now).num_seconds();
        let pinged = self
            .parts
            .db
            .run(move |c| crate::db::ping(c, &target).map_err(Error::Unavailable))
            .await;
        let (error, error_description) = match pinged {
            Err(e) => (Some("database_unavailable"), Some(public_reason(&e))),
            Ok(()) if self.parts.keys.age(now) > self.keys_stale_after() => (
                Some("keys_stale"),
                Some(format!(
                    "the signing keys were last loaded {keys_age_seconds} s ago (bound {} s)",
                    self.keys_stale_after().num_seconds()
                )),
            ),
            Ok(()) => (None, None),
        };
        Readiness {
            status: if error.is_none() { "ready" } else { "unavailable" },
            database,
            keys_age_seconds,
            error,
            error_description,
        }
    }
}

/// The reason readiness gives: the kind of failure, never the driver's text
/// (which may name hosts and users); the detail goes to the log.
fn public_reason(e: &Error) -> String {
    tracing::warn!(detail = %e, "not ready");
    match e {
        Error::Unavailable(detail) if detail.contains("is gone") => "the SQLite file is gone".into(),
        Error::Unavailable(_) | Error::Busy => "the database does not answer".into(),
        _ => "the database check failed".into(),
    }
}
