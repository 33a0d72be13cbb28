//! The connection pool: at most N connections, opened on demand by the
//! blocking thread that needs one, kept idle for reuse, closed at shutdown.
//!
//! It has no threads of its own. r2d2 opens connections on background
//! threads, and one still inside libpq's connect when the process exited
//! crashed libpq's exit cleanup. Here every connection is opened and used on
//! a thread of the bounded blocking pool, which the runtime joins before the
//! process exits, so after [`Pool::close`] no thread can be inside libpq.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use diesel::Connection;
use diesel::connection::TransactionManager;

use super::gate::{self, WriteGate};
use super::{DatabaseTarget, DbConnection, Fault, HasFault, PoolOptions};
use crate::blocking::{BlockingError, BlockingPool};

/// Why no connection could be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PoolError {
    /// The database did not accept a new connection.
    #[error("{0}")]
    Connect(String),
    /// The process is shutting down.
    #[error("the database pool is closed")]
    Closed,
    /// A database task panicked (a bug); its connection was dropped.
    #[error("a database task failed")]
    Panicked,
}

/// A cheap handle to the pool, shared by every component that queries.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    target: DatabaseTarget,
    /// SQLite's writers queue here (see [`gate`]); `None` for PostgreSQL,
    /// whose row locks queue writers themselves.
    gate: Option<Arc<WriteGate>>,
    idle: Mutex<Vec<DbConnection>>,
    work: BlockingPool,
    max_size: usize,
    closed: AtomicBool,
    /// Tasks holding or opening a connection now; `close` waits for zero.
    busy: Mutex<usize>,
    quiet: Condvar,
}

/// Counts a task as busy from checkout until its connection is back.
struct Busy<'a>(&'a Inner);

impl<'a> Busy<'a> {
    fn enter(inner: &'a Inner) -> Self {
        match inner.busy.lock() {
            Ok(mut n) => *n += 1,
            Err(poisoned) => *poisoned.into_inner() += 1,
        }
        Self(inner)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        match self.0.busy.lock() {
            Ok(mut n) => *n = n.saturating_sub(1),
            Err(poisoned) => {
                let mut n = poisoned.into_inner();
                *n = n.saturating_sub(1);
            }
        }
        self.0.quiet.notify_all();
    }
}

impl Pool {
    pub fn new(target: DatabaseTarget, opts: &PoolOptions) -> Self {
        let max_size = opts.max_size.max(1);
        let gate = matches!(target, DatabaseTarget::Sqlite(_)).then(|| Arc::new(WriteGate::default()));
        Self {
            inner: Arc::new(Inner {
                gate,
                target,
                idle: Mutex::new(Vec::with_capacity(max_size)),
                work: BlockingPool::new("db", max_size),
                max_size,
                closed: AtomicBool::new(false),
                busy: Mutex::new(0),
                quiet: Condvar::new(),
            }),
        }
    }

    pub fn target(&self) -> &DatabaseTarget {
        &self.inner.target
    }

    pub fn max_size(&self) -> usize {
        self.inner.max_size
    }

    /// Tasks holding or opening a connection now.
    pub fn in_use(&self) -> usize {
        self.inner.busy.lock().map(|g| *g).unwrap_or(0)
    }

    /// Tasks waiting for their turn on the pool now.
    pub fn waiting(&self) -> usize {
        self.inner.work.waiting()
    }

    /// Idle connections kept open now.
    pub fn idle(&self) -> usize {
        self.inner.idle.lock().map(|g| g.len()).unwrap_or(0)
    }

    /// Run `f` with a connection on the bounded blocking pool. A connection
    /// whose server went away (the error says [`Fault::Disconnected`]) is
    /// dropped instead of going back to the pool.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<PoolError> + HasFault + Send + 'static,
    {
        let inner = self.inner.clone();
        let ran = self
            .inner
            .work
            .run(move || {
                let _busy = Busy::enter(&inner);
                let mut conn = inner.checkout().map_err(E::from)?;
                let out = gate::with_gate(inner.gate.clone(), || f(&mut conn));
                let lost = matches!(&out, Err(e) if e.fault() == Some(Fault::Disconnected));
                inner.give_back(conn, lost);
                out
            })
            .await;
        match ran {
            Ok(out) => out,
            Err(BlockingError::Closed(_)) => Err(PoolError::Closed.into()),
            Err(BlockingError::Panicked(_)) => Err(PoolError::Panicked.into()),
            Err(BlockingError::Full(_)) => Err(PoolError::Closed.into()),
        }
    }

    /// Refuse new work, wait up to `grace` for the tasks that hold or are
    /// opening a connection, and close every connection. When it returns
    /// true, no thread of this pool is inside the database driver, so the
    /// process may exit (libpq's exit cleanup must not race a connect).
    pub fn close(&self, grace: Duration) -> bool {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.work.close();
        let busy = match self.inner.busy.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let quiet = match self.inner.quiet.wait_timeout_while(busy, grace, |n| *n > 0) {
            Ok((n, _)) => *n == 0,
            Err(poisoned) => *poisoned.into_inner().0 == 0,
        };
        let drained: Vec<DbConnection> = match self.inner.idle.lock() {
            Ok(mut g) => std::mem::take(&mut *g),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        drop(drained);
        quiet
    }
}

impl Inner {
    fn checkout(&self) -> Result<DbConnection, PoolError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(PoolError::Closed);
        }
        let reused = match self.idle.lock() {
            Ok(mut g) => g.pop(),
            Err(poisoned) => poisoned.into_inner().pop(),
        };
        match reused {
            Some(c) => Ok(c),
            None => self
                .target
                .connect()
                .map_err(|e| PoolError::Connect(format!("{}: {e}", self.target.describe()))),
        }
    }

    /// Keep a connection for reuse, unless it is broken (its server went
    /// away, or a transaction was left open) or the pool was closed.
    fn give_back(&self, mut conn: DbConnection, lost: bool) {
        let broken = lost || <DbConnection as Connection>::TransactionManager::is_broken_transaction_manager(&mut conn);
        if broken || self.closed.load(Ordering::SeqCst) {
            return;
        }
        match self.idle.lock() {
            Ok(mut g) => g.push(conn),
            Err(poisoned) => poisoned.into_inner().push(conn),
        }
    }
}
