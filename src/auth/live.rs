//! What a verified access token's liveness depends on, kept in memory per
//! instance: the revoked `jti`s, and for each principal seen its status, the
//! instant before which its tokens are dead, and the scopes it holds now.
//!
//! The view follows the revocation log ([`crate::models::revocation`]),
//! which numbers every revocation and every change to a principal's status
//! or scopes in the transaction that makes it, and never lets a reader pass
//! a row not yet visible. Reading the counter first and the rows up to it
//! second therefore brings the view exactly up to that counter.
//!
//! - On the instance that made a change, the change's own operation brings
//!   the view up to date before it answers (see
//!   [`crate::auth::revocation_feed::publish`]), so introspection there is
//!   as exact as a database read.
//! - Elsewhere (another instance, the CLI), [`LiveView::follow`] polls the
//!   counter every [`FOLLOW_EVERY`] and catches up when it moved.
//! - A view that has not caught up for [`MAX_STALENESS`] answers
//!   [`Lookup::Stale`], and the caller reads the database instead: a view
//!   cut off from the database never vouches for long.

use std::collections::HashMap;
use std::sync::RwLock;

use chrono::{DateTime, Duration, Utc};

use super::jwt::AccessTokenClaims;
use crate::db::DbConnection;
use crate::error::Result;
use crate::models::principal::{Principal, PrincipalStatus};
use crate::models::revocation::{self, RevocationKind};

/// How often a follower asks whether the log moved.
pub const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// A view older than this is not trusted.
pub const MAX_STALENESS: Duration = Duration::seconds(5);

/// Rows read from the log at a time.
const BATCH: i64 = 1000;

/// A principal as its tokens' liveness sees it.
#[derive(Debug, Clone)]
pub struct Known {
    pub principal: Principal,
    /// The scopes it holds now.
    pub scopes: Vec<String>,
}

/// What the view can say of a verified token.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// Live, and this is its principal now.
    Live(Box<Known>),
    /// Revoked, or its principal disabled or disabled since it was issued.
    Dead,
    /// Its principal is not in the view yet: read it from the database and
    /// [`LiveView::remember`] it.
    Unknown,
    /// The view has not caught up recently: read the database.
    Stale,
}

#[derive(Debug, Default)]
struct State {
    /// Every log row up to here is applied.
    index: i64,
    /// When the view last caught up with the log.
    fresh_at: Option<DateTime<Utc>>,
    /// Revoked `jti`s and when they could expire anyway.
    revoked: HashMap<String, DateTime<Utc>>,
    principals: HashMap<String, Known>,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct LiveView {
    state: RwLock<State>,
    /// One catch-up at a time: two interleaved ones could apply an older
    /// row after a newer one.
    catching_up: std::sync::Mutex<()>,
    /// Tokens judged from memory alone (live or dead), for the metrics and
    /// the tests.
    answered: std::sync::atomic::AtomicU64,
}

/// The state, even if a writer panicked while holding the lock (the view is
/// then at worst behind, which the next catch-up repairs).
fn read(lock: &RwLock<State>) -> std::sync::RwLockReadGuard<'_, State> {
    lock.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write(lock: &RwLock<State>) -> std::sync::RwLockWriteGuard<'_, State> {
    lock.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl LiveView {
    pub fn new() -> Self {
        Self::default()
    }

    /// The log index the view is at.
    pub fn index(&self) -> i64 {
        read(&self.state).index
    }

    /// Is the token with these (verified) claims live at `now`?
    pub fn check(&self, claims: &AccessTokenClaims, now: DateTime<Utc>) -> Lookup {
        let s = read(&self.state);
        if s.fresh_at.is_none_or(|t| now - t > MAX_STALENESS) {
            return Lookup::Stale;
        }
        let revoked = |jti: &str| s.revoked.contains_key(jti);
        let answer = if revoked(&claims.jti) || (claims.root_jti.is_some() && revoked(claims.root())) {
            Lookup::Dead
        } else {
            match s.principals.get(&claims.sub) {
                None => return Lookup::Unknown,
                Some(k) if k.principal.is_active() && !k.principal.killed_token(claims.iat) => {
                    Lookup::Live(Box::new(k.clone()))
                }
                Some(_) => Lookup::Dead,
            }
        };
        self.answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        answer
    }

    /// How many tokens were judged from memory alone.
    pub fn answered_from_memory(&self) -> u64 {
        self.answered.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Keep a principal read from the database while the view stood at
    /// `index`. If the view moved meanwhile, a row for this principal may
    /// have been passed over, so nothing is kept (the next miss reads again).
    pub fn remember(&self, index: i64, known: Known) {
        let mut s = write(&self.state);
        if s.index == index {
            s.principals.entry(known.principal.id.clone()).or_insert(known);
        }
    }

    /// Bring the view up to the log's counter now; returns how many rows
    /// were applied. A counter behind the view means the database was
    /// restored or replaced: the view starts over.
    pub fn catch_up(&self, conn: &mut DbConnection, now: DateTime<Utc>) -> Result<usize> {
        let _one = self
            .catching_up
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let top = revocation::current_index(conn)?;
        let mut at = self.index();
        if top < at {
            *write(&self.state) = State::default();
            at = 0;
        }
        let mut applied = 0;
        while at < top {
            let rows = revocation::since(conn, at, BATCH)?;
            let rows: Vec<_> = rows.into_iter().filter(|r| r.idx <= top).collect();
            let Some(last) = rows.last().map(|r| r.idx) else { break };
            let mut s = write(&self.state);
            for r in rows.into_iter().filter(|r| r.idx > at) {
                match r.kind {
                    RevocationKind::Token => {
                        s.revoked.insert(r.subject, r.expires_at);
                    }
                    RevocationKind::Principal => {
                        if let Some(k) = s.principals.get_mut(&r.subject) {
                            if let Some(status) = r.status.as_deref().and_then(PrincipalStatus::from_name) {
                                k.principal.status = status;
                            }
                            k.principal.tokens_not_before = r.not_before;
                            if let Some(scopes) = r.scopes.as_deref().and_then(|j| serde_json::from_str(j).ok()) {
                                k.scopes = scopes;
                            }
                        }
                    }
                }
                applied += 1;
            }
            s.index = last;
            at = last;
        }
        let mut s = write(&self.state);
        s.index = top;
        s.fresh_at = Some(now);
        s.revoked.retain(|_, exp| *exp > now);
        Ok(applied)
    }

    /// A catch-up failed after a change made here: until the next one
    /// succeeds, answer [`Lookup::Stale`], so nothing this instance just
    /// revoked is vouched for from memory.
    pub fn mark_stale(&self) {
        write(&self.state).fresh_at = None;
    }

    /// The log did not move: the view is current as of `now`.
    pub fn confirm(&self, index: i64, now: DateTime<Utc>) {
        let mut s = write(&self.state);
        if s.index == index {
            s.fresh_at = Some(now);
        }
    }

    /// How many principals and revoked tokens the view holds.
    pub fn size(&self) -> (usize, usize) {
        let s = read(&self.state);
        (s.principals.len(), s.revoked.len())
    }
}

/// Follow the log until `stop`: every [`FOLLOW_EVERY`], read the counter,
/// and catch up when it moved. A failed read leaves the view to go stale.
pub async fn follow(
    view: std::sync::Arc<LiveView>,
    db: crate::db::Pool,
    clock: crate::clock::Clock,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let (view2, now) = (view.clone(), clock.now());
        let followed = db
            .run(move |conn| {
                let top = revocation::current_index(conn)?;
                if top == view2.index() {
                    view2.confirm(top, now);
                    Ok(0)
                } else {
                    view2.catch_up(conn, now)
                }
            })
            .await;
        if let Err(e) = followed {
            tracing::warn!(error = %e, "the live view did not catch up with the revocation log");
        }
        tokio::select! {
            _ = tokio::time::sleep(FOLLOW_EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}
