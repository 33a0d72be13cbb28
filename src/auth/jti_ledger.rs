//! Spending client-assertion `jti`s in batches (group commit): requests
//! that arrive together have their `jti`s written by one transaction, so a
//! busy client's assertions cost one database write per batch, not one
//! contended write each. The database's primary key still decides: a `jti`
//! spent before, here or on another instance, or twice in one batch, is
//! answered `false`.

use chrono::{DateTime, Utc};

use crate::db::Pool;
use crate::error::{Error, Result};
use crate::group_commit::GroupCommit;
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

pub struct JtiLedger(GroupCommit<Spend, bool>);

impl Default for JtiLedger {
    fn default() -> Self {
        Self(GroupCommit::new("jti", MAX_BATCH, 1, spend_all))
    }
}

impl JtiLedger {
    pub fn new() -> Self {
        Self::default()
    }

    /// Spend `spend.jti` for its client: `true` the first time ever, `false`
    /// for a replay. The answer is durable when it comes.
    pub async fn spend(&self, db: &Pool, spend: Spend) -> Result<bool> {
        self.0.submit(db, spend).await
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
