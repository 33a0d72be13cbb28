//! Throttled logins as admins see them, and clearing a principal's counters.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::PrincipalsContext;
use super::row;
use crate::db::DbConnection;
use crate::error::Result;
use crate::models::audit::{self, NewAuditEvent, Outcome};
use crate::models::throttle::{self, ThrottleRow};

/// A counter that blocks logins now.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ThrottleView {
    /// The principal whose name is being guessed; absent for a network-wide
    /// counter or a name that is no principal.
    pub principal_id: Option<String>,
    /// `pair` (one name from one network), `network` or `name` (from anywhere).
    pub scope: &'static str,
    pub failures: i32,
    pub last_failure: DateTime<Utc>,
    pub blocked_until: Option<DateTime<Utc>>,
}

impl From<ThrottleRow> for ThrottleView {
    fn from(r: ThrottleRow) -> Self {
        let scope = match r.key.split(':').next() {
            Some("pair") => "pair",
            Some("net") => "network",
            _ => "name",
        };
        Self {
            principal_id: r.subject,
            scope,
            failures: r.failures,
            last_failure: r.last_failure,
            blocked_until: r.blocked_until,
        }
    }
}

/// The counters that block logins at `now`.
fn throttles(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<Vec<ThrottleView>> {
    Ok(throttle::blocked(conn, now)?.into_iter().map(Into::into).collect())
}

/// Forget the failures counted against principal `id`'s name. Audited.
fn clear_throttle(conn: &mut DbConnection, actor: Option<&str>, id: &str, now: DateTime<Utc>) -> Result<usize> {
    crate::db::transaction(conn, |c| {
        row(c, id)?;
        let cleared = throttle::delete_subject(c, id)?;
        audit::record(
            c,
            NewAuditEvent::new("throttle.cleared", Outcome::Ok)
                .actor(actor)
                .principal(Some(id))
                .details(serde_json::json!({"counters": cleared})),
            now,
        )?;
        Ok(cleared)
    })
}

impl PrincipalsContext {
    /// `GET /api/v1/throttles`: the counters that block logins now.
    pub async fn throttles(&self, now: DateTime<Utc>) -> Result<Vec<ThrottleView>> {
        self.db.run(move |c| throttles(c, now)).await
    }

    /// `DELETE /api/v1/principals/{id}/throttle`: forget the failures
    /// counted against the principal's name, everywhere. Audited.
    pub async fn clear_throttle(&self, actor: Option<&str>, id: String, now: DateTime<Utc>) -> Result<usize> {
        let actor = actor.map(str::to_string);
        self.db
            .run(move |c| clear_throttle(c, actor.as_deref(), &id, now))
            .await
    }
}
