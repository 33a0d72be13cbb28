//! Bounded pools for blocking work (diesel queries, argon2), kept off the async
//! workers. Each pool is a semaphore in front of `spawn_blocking`: a flood of
//! password logins fills the argon2 pool and queues there, while database work
//! for client-credentials issuance keeps its own permits.

use std::sync::Arc;

use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum BlockingError {
    #[error("blocking pool '{0}' is closed")]
    Closed(&'static str),
    #[error("blocking task in pool '{0}' failed")]
    Panicked(&'static str),
}

#[derive(Clone, Debug)]
pub struct BlockingPool {
    name: &'static str,
    permits: Arc<Semaphore>,
}

impl BlockingPool {
    pub fn new(name: &'static str, size: usize) -> Self {
        Self {
            name,
            permits: Arc::new(Semaphore::new(size.max(1))),
        }
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
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| BlockingError::Closed(self.name))?;
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
    use std::sync::atomic::{AtomicUsize, Ordering};

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

    #[tokio::test]
    async fn a_closed_pool_refuses_work() {
        let pool = BlockingPool::new("test", 1);
        pool.close();
        assert!(matches!(pool.run(|| 1).await, Err(BlockingError::Closed("test"))));
    }
}
