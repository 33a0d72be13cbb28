//! Group commit: writes that arrive together are made by one transaction,
//! so a busy path costs one database write per batch, not one contended
//! write per request. Each request still waits for its own answer, which
//! is durable when it comes.

use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::db::{DbConnection, Pool};
use crate::error::{Error, Result};

/// What writes a batch: one answer per item, in order. It runs on the
/// database pool and makes its own transaction(s).
pub type WriteBatch<T, A> = fn(&mut DbConnection, &[T]) -> Result<Vec<A>>;

struct Pending<T, A> {
    item: T,
    answer: oneshot::Sender<Result<A>>,
}

/// A queue of items and the requests that write them, a few at a time.
pub struct GroupCommit<T, A> {
    queue: Mutex<Vec<Pending<T, A>>>,
    /// A permit is held by each request writing a batch; the others queue
    /// meanwhile. More than one lets a batch fill while another commits.
    writing: tokio::sync::Semaphore,
    max_batch: usize,
    write: WriteBatch<T, A>,
    /// What a failed batch is called in its error.
    what: &'static str,
    /// Items submitted, for the metrics and the tests.
    submitted: std::sync::atomic::AtomicU64,
}

impl<T: Send + 'static, A: Send + 'static> GroupCommit<T, A> {
    /// Batches of at most `max_batch` items, written by `write`, at most
    /// `writers` at once.
    pub fn new(what: &'static str, max_batch: usize, writers: usize, write: WriteBatch<T, A>) -> Self {
        Self {
            queue: Mutex::new(Vec::new()),
            writing: tokio::sync::Semaphore::new(writers.max(1)),
            max_batch: max_batch.max(1),
            write,
            what,
            submitted: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// How many items were submitted.
    pub fn submitted(&self) -> u64 {
        self.submitted.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<Pending<T, A>>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queue `item` and wait for its answer.
    ///
    /// Whoever holds a permit writes what is queued. A request answered by
    /// another's batch returns at once instead of queueing for a permit;
    /// one that takes a permit writes the next batch, which holds its own
    /// item, or finds the queue empty: then its item is in a batch being
    /// written, which will answer it.
    pub async fn submit(&self, db: &Pool, item: T) -> Result<A> {
        let (tx, mut rx) = oneshot::channel();
        self.submitted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.queue().push(Pending { item, answer: tx });
        let unavailable = || Error::Unavailable(format!("the database could not take the {} batch", self.what));
        loop {
            let permit = tokio::select! {
                biased;
                answer = &mut rx => return answer.unwrap_or_else(|_| Err(unavailable())),
                permit = self.writing.acquire() => permit.map_err(|_| unavailable())?,
            };
            let batch: Vec<Pending<T, A>> = {
                let mut queue = self.queue();
                let n = queue.len().min(self.max_batch);
                queue.drain(..n).collect()
            };
            if batch.is_empty() {
                drop(permit);
                return rx.await.unwrap_or_else(|_| Err(unavailable()));
            }
            self.write_batch(db, batch).await;
            drop(permit);
        }
    }

    /// Write one batch; each waiter gets its own answer, or the batch's
    /// error. The answers are sent from the pool's thread, so a leader
    /// whose request is cancelled mid-write (its client went away) still
    /// answers the others; a batch the pool never ran (closed or full)
    /// drops its senders, which its waiters read as unavailable.
    async fn write_batch(&self, db: &Pool, batch: Vec<Pending<T, A>>) {
        let write = self.write;
        let _ = db
            .run(move |conn| {
                let (items, answers): (Vec<T>, Vec<oneshot::Sender<Result<A>>>) =
                    batch.into_iter().map(|p| (p.item, p.answer)).unzip();
                match write(conn, &items) {
                    Ok(results) if results.len() == answers.len() => {
                        for (answer, result) in answers.into_iter().zip(results) {
                            let _ = answer.send(Ok(result));
                        }
                    }
                    Ok(_) => {
                        for answer in answers {
                            let _ =
                                answer.send(Err(Error::internal("a batch write answered the wrong number of items")));
                        }
                    }
                    Err(e) => {
                        let transient = e.is_transient();
                        let message = e.to_string();
                        for answer in answers {
                            let _ = answer.send(Err(if transient {
                                Error::Unavailable(message.clone())
                            } else {
                                Error::internal(message.clone())
                            }));
                        }
                    }
                }
                Ok::<_, Error>(())
            })
            .await;
    }
}
