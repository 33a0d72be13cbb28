//! The revocation feed (`GET /api/v1/revocations`): RFC 7009 revocation
//! carried to services that verify tokens offline. It lists the `jti`s
//! revoked and the principals changed since an index, as a blocking query.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::access::Caller;
use crate::db::Pool;
use crate::error::{Error, Result};
use crate::feed::{ChangeFeed, parse_wait};
use crate::models::principal::PrincipalKind;
use crate::models::revocation::{self, RevocationKind, RevocationRow};

/// Most entries in one answer; `more` says when there are others.
pub const MAX_LIMIT: i64 = 1000;

/// `GET /api/v1/revocations` query.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    /// Answer with what came after this index, blocking until there is
    /// something new or `wait` has elapsed. Omitted: everything still
    /// relevant, at once.
    pub index: Option<i64>,
    /// How long to block when nothing is new, e.g. `30s` (at most 5 minutes).
    pub wait: Option<String>,
    /// At most this many entries (1 to 1000, default 1000).
    pub limit: Option<i64>,
}

/// One answer of the feed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FeedPage {
    /// Follow on from here.
    pub index: i64,
    /// The index asked for is ahead of this database (it was restored or
    /// replaced): this answer starts from nothing, so forget what you hold.
    pub reset: bool,
    /// More entries wait after `index`: ask again at once.
    pub more: bool,
    pub tokens: Vec<RevokedToken>,
    /// The latest state of each principal changed in this window.
    pub principals: Vec<PrincipalState>,
    /// For a service reader: the principals' `scopes` list only the scopes
    /// that concern this service (`NAME` and `NAME:…`); whether a principal
    /// holds others is not its business. Absent for admins, who see all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes_within: Option<String>,
}

impl FeedPage {
    /// What a service reader `service` is shown: every revoked token (any
    /// token may be presented to any verifier), every principal's status and
    /// `not_before`, and of its scopes only those that concern `service`.
    pub fn narrowed_to(mut self, service: &str) -> Self {
        for p in &mut self.principals {
            p.scopes.retain(|s| crate::names::scope_concerns(s, service));
        }
        self.scopes_within = Some(service.to_string());
        self
    }
}

/// An access token refused until it expires anyway.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RevokedToken {
    pub jti: String,
    pub expires_at: DateTime<Utc>,
}

/// What a verifier applies to a principal's tokens: refuse them all unless
/// `status` is `active`; refuse those issued at or before `not_before`;
/// honour only the scopes still in `scopes`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PrincipalState {
    pub id: String,
    pub status: String,
    pub not_before: Option<DateTime<Utc>>,
    pub scopes: Vec<String>,
}

/// Who may read the feed: services (the verifiers) and admins.
fn may_read(caller: &Caller) -> Result<()> {
    if caller.is_admin() || caller.principal.kind == PrincipalKind::Service {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "the revocation feed is for services and admins".into(),
        ))
    }
}

/// Fold rows (in index order) into an answer: every token, and the last
/// state of each principal.
pub fn fold(rows: Vec<RevocationRow>, index: i64, reset: bool, more: bool) -> FeedPage {
    let mut tokens = Vec::new();
    let mut principals: Vec<PrincipalState> = Vec::new();
    for row in rows {
        match row.kind {
            RevocationKind::Token => tokens.push(RevokedToken {
                jti: row.subject,
                // Stored with the leeway added; the token's own expiry is the row's minus it.
                expires_at: row.expires_at - revocation::LEEWAY,
            }),
            RevocationKind::Principal => {
                let state = PrincipalState {
                    scopes: row
                        .scopes
                        .as_deref()
                        .and_then(|s| serde_json::from_str(s).ok())
                        .unwrap_or_default(),
                    id: row.subject,
                    status: row.status.unwrap_or_default(),
                    not_before: row.not_before,
                };
                principals.retain(|p| p.id != state.id);
                principals.push(state);
            }
        }
    }
    FeedPage {
        index,
        reset,
        more,
        tokens,
        principals,
        scopes_within: None,
    }
}

/// `GET /api/v1/revocations`: the entries after `index`, at once when there
/// are any, else once one arrives or `wait` has elapsed (a blocking query,
/// like the registry's). Entries are kept only while a token they concern
/// can still be valid, so starting from 0 gives everything that matters.
pub async fn since(db: &Pool, feed: &ChangeFeed, caller: &Caller, query: FeedQuery) -> Result<FeedPage> {
    may_read(caller)?;
    let wait = parse_wait(query.wait.as_deref())?;
    let limit = match query.limit {
        None => MAX_LIMIT,
        Some(l) if (1..=MAX_LIMIT).contains(&l) => l,
        Some(_) => return Err(Error::invalid("limit", format!("an integer from 1 to {MAX_LIMIT}"))),
    };
    let asked = match query.index {
        None => 0,
        Some(i) if i >= 0 => i,
        Some(_) => {
            return Err(Error::invalid(
                "index",
                "a non-negative integer (the index of an earlier answer)",
            ));
        }
    };
    let mut current = db.run(revocation::current_index).await?;
    feed.observe(current);
    let reset = asked > current;
    let after = if reset { 0 } else { asked };
    if query.index.is_some() && !reset && current <= after {
        feed.wait_past(after, wait).await;
        current = db.run(revocation::current_index).await?;
    }
    let rows = db.run(move |c| revocation::since(c, after, limit + 1)).await?;
    let more = rows.len() as i64 > limit;
    let rows: Vec<RevocationRow> = rows.into_iter().take(limit as usize).collect();
    // Without `more`, the answer covers everything up to the index read
    // before the rows (pruned or rolled-back numbers included).
    let index = match (more, rows.last()) {
        (true, Some(last)) => last.idx,
        _ => current.max(rows.last().map_or(after, |r| r.idx)),
    };
    let page = fold(rows, index, reset, more);
    Ok(if caller.is_admin() {
        page
    } else {
        page.narrowed_to(&caller.principal.name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn row(idx: i64, kind: RevocationKind, subject: &str, status: Option<&str>, scopes: Option<&str>) -> RevocationRow {
        RevocationRow {
            idx,
            kind,
            subject: subject.into(),
            status: status.map(str::to_string),
            not_before: status.map(|_| at(idx)),
            scopes: scopes.map(str::to_string),
            created_at: at(idx),
            expires_at: at(600) + revocation::LEEWAY,
        }
    }

    #[test]
    fn folding_keeps_every_token_and_the_last_state_of_each_principal() {
        let page = fold(
            vec![
                row(3, RevocationKind::Token, "jti-a", None, None),
                row(
                    4,
                    RevocationKind::Principal,
                    "p1",
                    Some("disabled"),
                    Some(r#"["a","b"]"#),
                ),
                row(5, RevocationKind::Principal, "p2", Some("active"), Some(r#"["x"]"#)),
                row(6, RevocationKind::Principal, "p1", Some("active"), Some(r#"["a"]"#)),
                row(7, RevocationKind::Token, "jti-b", None, None),
            ],
            7,
            false,
            false,
        );
        assert_eq!(
            page,
            FeedPage {
                index: 7,
                reset: false,
                more: false,
                tokens: vec![
                    RevokedToken {
                        jti: "jti-a".into(),
                        expires_at: at(600)
                    },
                    RevokedToken {
                        jti: "jti-b".into(),
                        expires_at: at(600)
                    },
                ],
                principals: vec![
                    PrincipalState {
                        id: "p2".into(),
                        status: "active".into(),
                        not_before: Some(at(5)),
                        scopes: vec!["x".into()]
                    },
                    PrincipalState {
                        id: "p1".into(),
                        status: "active".into(),
                        not_before: Some(at(6)),
                        scopes: vec!["a".into()]
                    },
                ],
                scopes_within: None,
            }
        );
    }

    #[test]
    fn a_service_sees_only_the_scopes_that_concern_it() {
        let page = fold(
            vec![
                row(1, RevocationKind::Token, "jti-a", None, None),
                row(
                    2,
                    RevocationKind::Principal,
                    "p1",
                    Some("active"),
                    Some(r#"["orders","orders:read","ordersx:y","billing:pay","admin"]"#),
                ),
            ],
            2,
            false,
            false,
        )
        .narrowed_to("orders");
        assert_eq!(page.tokens.len(), 1, "every verifier gets every revoked token");
        assert_eq!(page.principals[0].scopes, ["orders", "orders:read"]);
        assert_eq!(page.scopes_within.as_deref(), Some("orders"));
    }
}
