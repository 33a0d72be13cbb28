//! Bounded pools for blocking work (diesel queries, argon2), kept off the async
//! workers. Each pool is a semaphore in front of `spawn_blocking`: a flood of
//! password logins fills the argon2 pool and queues there, while database work
//! for client-credentials issuance keeps its own permits.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum BlockingError {
    #[error("blocking pool '{0}' is closed")]
    Closed(&'static str),
    #[error("blocking task in pool '{0}' failed")]
    Panicked(&'static str),
    /// As many tasks wait as the pool's queue holds: refused, not queued.
    #[error("the queue of pool '{0}' is full")]
    Full(&'static str),
}

#[derive(Clone, Debug)]
pub struct BlockingPool {
    name: &'static str,
    permits: Arc<Semaphore>,
    /// Most tasks waiting for a permit; `None`: no bound.
    max_waiting: Option<usize>,
    waiting: Arc<AtomicUsize>,
}

/// Counts a waiting task until it gets its permit or gives up.
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl BlockingPool {
    pub fn new(name: &'static str, size: usize) -> Self {
        Self {
            name,
            permits: Arc::new(Semaphore::new(size.max(1))),
            max_waiting: None,
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A pool whose queue holds at most `max_waiting` tasks; more are refused
    /// with [`BlockingError::Full`] at once.
    pub fn bounded(name: &'static str, size: usize, max_waiting: usize) -> Self {
        Self {
            max_waiting: Some(max_waiting),
            ..Self::new(name, size)
        }
    }

    /// Tasks waiting for a permit now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Refuse new work; work already queued or running still finishes.
    pub fn close(&self) {
        self.permits.close();
    }

    /// Run `f` on a blocking thread once a permit is free.
    pub async fn run<T, F>(&self, f: F) -> Result<T, BlockingError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(tokio::sync::TryAcquireError::Closed) => return Err(BlockingError::Closed(self.name)),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                let queued = self.waiting.fetch_add(1, Ordering::SeqCst) + 1;
                let _waiting = Waiting(self.waiting.clone());
                if self.max_waiting.is_some_and(|max| queued > max) {
                    return Err(BlockingError::Full(self.name));
                }
                self.permits
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| BlockingError::Closed(self.name))?
            }
        };
        let name = self.name;
        tokio::task::spawn_blocking(move || {
            let out = f();
            drop(permit);
            out
        })
        .await
        .map_err(|_| BlockingError::Panicked(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_exactly_its_size_at_once_and_queues_the_rest() {
        let pool = BlockingPool::new("test", 2);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel::<()>();
        let (release, rx) = std::sync::mpsc::channel::<()>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let (pool, running, peak, rx, started_tx) = (
                pool.clone(),
                running.clone(),
                peak.clone(),
                rx.clone(),
                started_tx.clone(),
            );
            tasks.push(tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    started_tx.send(()).unwrap();
                    // Hold the permit until the test releases one task.
                    let _ = rx.lock().unwrap().recv();
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
                .unwrap();
            }));
        }
        // Two start, and no third while both hold their permits.
        started.recv().await.unwrap();
        started.recv().await.unwrap();
        assert_eq!(running.load(Ordering::SeqCst), 2);
        assert!(started.try_recv().is_err(), "a third task ran beside two");
        // Each release lets exactly one queued task in.
        for _ in 0..4 {
            release.send(()).unwrap();
            started.recv().await.unwrap();
        }
        release.send(()).unwrap();
        release.send(()).unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_at_once() {
        let pool = BlockingPool::bounded("q", 1, 2);
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel::<()>();
        let holder = {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.run(move || {
                    started_tx.send(()).unwrap();
                    let _ = held.recv();
                })
                .await
            })
        };
        started.recv().await.unwrap();
        let queued: Vec<_> = (0..2)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.run(|| 7).await })
            })
            .collect();
        while pool.waiting() < 2 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(pool.run(|| 7).await, Err(BlockingError::Full("q"))));
        assert_eq!(pool.waiting(), 2, "the refused task left the queue as it was");
        release.send(()).unwrap();
        holder.await.unwrap().unwrap();
        for q in queued {
            assert_eq!(q.await.unwrap().unwrap(), 7);
        }
        assert_eq!(pool.waiting(), 0);
    }

    #[tokio::test]
    async fn a_closed_pool_refuses_work() {
        let pool = BlockingPool::new("test", 1);
        pool.close();
        assert!(matches!(pool.run(|| 1).await, Err(BlockingError::Closed("test"))));
    }
}
