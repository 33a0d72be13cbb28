//! Spending client-assertion `jti`s in batches (group commit): requests
//! that arrive together have their `jti`s written by one transaction, so a
//! busy client's assertions cost one database write per batch, not one
//! contended write each. The database's primary key still decides: a `jti`
//! spent before, here or on another instance, or twice in one batch, is
//! answered `false`.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use crate::db::Pool;
use crate::error::{Error, Result};
use crate::models::client_key;

/// Most `jti`s written by one transaction.
const MAX_BATCH: usize = 256;

/// One `jti` to spend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spend {
    pub principal_id: String,
    pub jti: String,
    pub expires_at: DateTime<Utc>,
}

struct Pending {
    spend: Spend,
    answer: oneshot::Sender<Result<bool>>,
}

#[derive(Default)]
pub struct JtiLedger {
    queue: Mutex<Vec<Pending>>,
    /// Held by the request writing a batch; the others queue meanwhile.
    writing: tokio::sync::Mutex<()>,
}

impl JtiLedger {
    pub fn new() -> Self {
        Self::default()
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<Pending>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Spend `spend.jti` for its client: `true` the first time ever, `false`
    /// for a replay. The answer is durable when it comes.
    pub async fn spend(&self, db: &Pool, spend: Spend) -> Result<bool> {
        let (tx, mut rx) = oneshot::channel();
        self.queue().push(Pending { spend, answer: tx });
        // Whoever holds the lock writes what is queued. A request answered
        // by another's batch returns at once instead of queueing for the
        // lock; one that takes the lock writes the next batch (its own
        // entry is in it, or already answered).
        loop {
            let writing = tokio::select! {
                biased;
                answer = &mut rx => {
                    return answer.unwrap_or_else(|_| Err(Error::Unavailable("the database could not take the jti batch".into())));
                }
                writing = self.writing.lock() => writing,
            };
            let batch: Vec<Pending> = {
                let mut queue = self.queue();
                let n = queue.len().min(MAX_BATCH);
                queue.drain(..n).collect()
            };
            if !batch.is_empty() {
                write(db, batch).await;
            }
            drop(writing);
        }
    }
}

/// Spend a batch: one read and one insert; if another writer spent one of
/// them in between (the insert met the primary key), again one by one,
/// each insert in a savepoint, so that each gets its own answer.
fn spend_all(conn: &mut crate::db::DbConnection, spends: &[Spend]) -> Result<Vec<bool>> {
    let items: Vec<(String, String, DateTime<Utc>)> = spends
        .iter()
        .map(|s| (s.principal_id.clone(), s.jti.clone(), s.expires_at))
        .collect();
    match crate::db::transaction(conn, |tx| client_key::spend_jtis(tx, &items)) {
        Err(Error::Conflict(_)) => {}
        other => return other,
    }
    crate::db::transaction(conn, |tx| {
        spends
            .iter()
            .map(|s| {
                crate::db::insert_unless_present(tx, |c| {
                    client_key::insert_jti(c, &s.principal_id, &s.jti, s.expires_at)
                })
                .map_err(Error::from)
            })
            .collect::<Result<Vec<bool>>>()
    })
}

/// One transaction for the batch; each waiter gets its own answer, or the
/// batch's error. The answers are sent from the pool's thread, so a leader
/// whose request is cancelled mid-write (its client went away) still
/// answers the others; a batch the pool never ran (closed or full) drops
/// its senders, which its waiters read as unavailable.
async fn write(db: &Pool, batch: Vec<Pending>) {
    let _ = db
        .run(move |conn| {
            let spends: Vec<Spend> = batch.iter().map(|p| p.spend.clone()).collect();
            match spend_all(conn, &spends) {
                Ok(fresh) => {
                    for (p, fresh) in batch.into_iter().zip(fresh) {
                        let _ = p.answer.send(Ok(fresh));
                    }
                }
                Err(e) => {
                    let transient = e.is_transient();
                    let message = e.to_string();
                    for p in batch {
                        let _ = p.answer.send(Err(if transient {
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
