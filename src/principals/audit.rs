//! The audit log as admins read it: filtered, newest first, a page at a time.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use super::PrincipalsContext;
use crate::db::DbConnection;
use crate::error::{Error, Result};
use crate::models::audit::{self, AuditEventRow, AuditFilter};
use crate::page::{self, Page};

/// `GET /api/v1/audit` query.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub principal: Option<String>,
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditEventView {
    pub id: String,
    pub created_at: DateTime<Utc>,
    #[serde(rename = "type")]
    pub event_type: String,
    pub outcome: String,
    pub actor_id: Option<String>,
    pub principal_id: Option<String>,
    pub remote_addr: Option<String>,
    pub reason: Option<String>,
    pub details: Option<serde_json::Value>,
    /// How many occurrences this event stands for: repeated failures from
    /// one source within a minute are one event.
    pub count: i32,
}

impl From<AuditEventRow> for AuditEventView {
    fn from(r: AuditEventRow) -> Self {
        Self {
            id: r.id,
            created_at: r.created_at,
            event_type: r.event_type,
            outcome: r.outcome,
            actor_id: r.actor_id,
            principal_id: r.principal_id,
            remote_addr: r.remote_addr,
            reason: r.reason,
            details: r.details.and_then(|d| serde_json::from_str(&d).ok()),
            count: r.repeat_count,
        }
    }
}

const CURSOR_TIME: &str = "%Y-%m-%dT%H:%M:%S%.6f";

/// A cursor names the last event of a page: its time and id.
fn decode(cursor: &str) -> Result<(DateTime<Utc>, String)> {
    let parts = page::decode_cursor(cursor, 2)?;
    let at = NaiveDateTime::parse_from_str(&parts[0], "%Y-%m-%dT%H:%M:%S%.f")
        .map_err(|_| Error::invalid("cursor", "not a cursor returned by this API"))?;
    Ok((at.and_utc(), parts[1].clone()))
}

fn encode(row: &AuditEventRow) -> String {
    page::encode_cursor(&[&row.created_at.format(CURSOR_TIME).to_string(), &row.id])
}

/// One page of events, newest first.
fn audit(conn: &mut DbConnection, query: &AuditQuery) -> Result<Page<AuditEventView>> {
    let limit = page::limit(query.limit)?;
    let filter = AuditFilter {
        principal: query.principal.clone(),
        event_type: query.event_type.clone(),
        since: query.since,
    };
    let before = query.cursor.as_deref().map(decode).transpose()?;
    let rows = audit::page(conn, &filter, before, limit + 1)?;
    page::paginate(rows, limit, encode, |rows| {
        Ok(rows.into_iter().map(Into::into).collect())
    })
}

impl PrincipalsContext {
    /// `GET /api/v1/audit`: one page of events, newest first.
    pub async fn audit(&self, query: AuditQuery) -> Result<Page<AuditEventView>> {
        self.db.run(move |c| audit(c, &query)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_a_field_error() {
        let row = AuditEventRow {
            id: "e1".into(),
            created_at: chrono::NaiveDate::from_ymd_opt(2026, 1, 2)
                .unwrap()
                .and_hms_micro_opt(3, 4, 5, 6)
                .unwrap()
                .and_utc(),
            event_type: "x".into(),
            outcome: "ok".into(),
            actor_id: None,
            principal_id: None,
            remote_addr: None,
            reason: None,
            details: None,
            repeat_count: 1,
        };
        assert_eq!(decode(&encode(&row)).unwrap(), (row.created_at, "e1".to_string()));
        assert!(matches!(decode("!!"), Err(Error::Invalid { field, .. }) if field == "cursor"));
        let two_parts_bad_time = page::encode_cursor(&["yesterday", "e1"]);
        assert!(matches!(decode(&two_parts_bad_time), Err(Error::Invalid { field, .. }) if field == "cursor"));
    }
}
