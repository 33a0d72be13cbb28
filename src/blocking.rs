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
    async fn never_runs_more_than_its_size_at_once() {
        let pool = BlockingPool::new("test", 2);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let (pool, running, peak, rx) = (pool.clone(), running.clone(), peak.clone(), rx.clone());
            tasks.push(tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    // Wait for the test to release one task at a time.
                    let _ = rx.lock().unwrap().recv();
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
                .unwrap();
            }));
        }
        for _ in 0..6 {
            tx.send(()).unwrap();
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert!(peak.load(Ordering::SeqCst) <= 2, "peak {}", peak.load(Ordering::SeqCst));
        assert!(peak.load(Ordering::SeqCst) >= 1);
    }
}
