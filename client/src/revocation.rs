//! Following Roster's revocation feed (`GET /api/v1/revocations`), so that
//! an offline verifier refuses revoked tokens and disabled or demoted
//! principals within about a second, and knows how stale its view is.

use std::collections::{HashMap, HashSet};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use crate::backoff::Backoff;
use roster_proto::claims::AccessTokenClaims;

/// What the verifier does when the feed has not answered for longer than
/// [`RevocationPolicy::max_staleness`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// Refuse every token with 503 until the feed answers again (default).
    Closed,
    /// Keep accepting tokens on signature and claims alone, and log it.
    Open,
}

/// How the verifier follows the feed.
#[derive(Debug, Clone)]
pub struct RevocationPolicy {
    /// The long poll's wait (the server answers at least this often).
    pub wait: StdDuration,
    /// How old the last answer may be before [`FailMode`] applies. Default
    /// 60 s: two missed long polls of 30 s.
    pub max_staleness: Duration,
    /// What to do once the feed is staler than `max_staleness`.
    pub on_stale: FailMode,
    /// Between failed polls.
    pub backoff: Backoff,
    /// How often the whole feed is read again from the start, and swapped in
    /// once complete. Roster never hands out a position past a row that is
    /// not yet visible; this is the verifier's own defence should that ever
    /// fail (an older server, say). Default 10 minutes. A reset answer
    /// (a sign of a gap) starts one at once.
    pub resync_every: StdDuration,
}

impl Default for RevocationPolicy {
    fn default() -> Self {
        Self {
            wait: StdDuration::from_secs(30),
            max_staleness: Duration::seconds(60),
            on_stale: FailMode::Closed,
            backoff: Backoff {
                initial: StdDuration::from_millis(250),
                max: StdDuration::from_secs(5),
            },
            resync_every: StdDuration::from_secs(600),
        }
    }
}

/// One answer of the feed.
#[derive(Debug, Clone, Deserialize)]
pub struct FeedPage {
    pub index: i64,
    pub reset: bool,
    pub more: bool,
    pub tokens: Vec<FeedToken>,
    pub principals: Vec<FeedPrincipal>,
    /// Set when the principals' `scopes` list only the scopes that concern
    /// this service (`NAME` and `NAME:…`): scopes outside it are not judged.
    #[serde(default)]
    pub scopes_within: Option<String>,
}

/// Does `scope` concern the service `service` (Roster's rule: `service`
/// itself, or `service:…`)?
fn scope_concerns(scope: &str, service: &str) -> bool {
    scope
        .strip_prefix(service)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(':'))
}

#[derive(Debug, Clone, Deserialize)]
pub struct FeedToken {
    pub jti: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FeedPrincipal {
    pub id: String,
    pub status: String,
    pub not_before: Option<DateTime<Utc>>,
    pub scopes: Vec<String>,
}

/// What the verifier knows of revocations.
#[derive(Debug, Default)]
pub struct RevocationState {
    pub index: i64,
    /// Revoked `jti`s, until they would have expired.
    tokens: HashMap<String, DateTime<Utc>>,
    principals: HashMap<String, FeedPrincipal>,
    /// The scopes the feed reports on, when it reports on this service's only.
    scopes_within: Option<String>,
    /// When the feed last answered.
    pub synced_at: Option<DateTime<Utc>>,
}

/// A token's fate under the feed.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Accept, with these scopes (the token's, less what was taken away).
    Accept(Vec<String>),
    Revoked(&'static str),
    /// The feed is too stale to vouch for the token (fail closed).
    Stale,
}

impl RevocationState {
    /// Everything known now, replaced by `fresh`: a complete read of the
    /// feed from the start, made by the same task that follows it (so
    /// nothing was applied meanwhile). A row the follow had missed is in it.
    pub fn replace_with(&mut self, fresh: RevocationState) {
        *self = fresh;
    }

    /// Apply one answer received at `now`.
    pub fn apply(&mut self, page: FeedPage, now: DateTime<Utc>) {
        if page.reset {
            self.tokens.clear();
            self.principals.clear();
        }
        for t in page.tokens {
            self.tokens.insert(t.jti, t.expires_at);
        }
        for p in page.principals {
            self.principals.insert(p.id.clone(), p);
        }
        self.scopes_within = page.scopes_within;
        self.tokens.retain(|_, exp| *exp > now - Duration::minutes(5));
        self.index = page.index;
        self.synced_at = Some(now);
    }

    /// Judge a token with a valid signature and claims at `now`: [`judge`]
    /// by its `jti`, subject and `iat`, and for a token made by exchange
    /// (RFC 8693), also revoked when the token its chain started from is,
    /// or when its subject lost a scope it carries (delegated authority
    /// holds only while all of it does).
    ///
    /// [`judge`]: RevocationState::judge
    pub fn judge_token(&self, c: &AccessTokenClaims, now: DateTime<Utc>, policy: &RevocationPolicy) -> Verdict {
        let carried: Vec<String> = c.scopes().map(str::to_string).collect();
        match self.judge(&c.jti, &c.sub, c.iat, &carried, now, policy) {
            Verdict::Accept(_) if c.root_jti.is_some() && self.tokens.contains_key(c.root()) => {
                Verdict::Revoked("revoked")
            }
            Verdict::Accept(s) if c.act.is_some() && s.len() < carried.len() => {
                Verdict::Revoked("its subject lost a scope it carries")
            }
            other => other,
        }
    }

    /// Judge a token with a valid signature and claims at `now`.
    pub fn judge(
        &self,
        jti: &str,
        sub: &str,
        iat: i64,
        scopes: &[String],
        now: DateTime<Utc>,
        policy: &RevocationPolicy,
    ) -> Verdict {
        let stale = self.synced_at.is_none_or(|t| now - t > policy.max_staleness);
        if stale {
            match policy.on_stale {
                FailMode::Closed => return Verdict::Stale,
                FailMode::Open => {
                    tracing::warn!("the revocation feed is stale; accepting on signature alone (fail open)")
                }
            }
        }
        if self.tokens.contains_key(jti) {
            return Verdict::Revoked("revoked");
        }
        let Some(p) = self.principals.get(sub) else {
            return Verdict::Accept(scopes.to_vec());
        };
        if p.status != "active" {
            return Verdict::Revoked("principal disabled");
        }
        if p.not_before.is_some_and(|nb| iat <= nb.timestamp()) {
            return Verdict::Revoked("issued before the principal was disabled");
        }
        let held: HashSet<&str> = p.scopes.iter().map(String::as_str).collect();
        // A scope the feed does not report on (another service's) is not
        // judged here; that service's own verifier does.
        let reported = |s: &str| self.scopes_within.as_deref().is_none_or(|ns| scope_concerns(s, ns));
        Verdict::Accept(
            scopes
                .iter()
                .filter(|s| held.contains(s.as_str()) || !reported(s))
                .cloned()
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn page(index: i64, reset: bool, tokens: &[&str], principals: Vec<FeedPrincipal>) -> FeedPage {
        FeedPage {
            index,
            reset,
            more: false,
            tokens: tokens
                .iter()
                .map(|j| FeedToken {
                    jti: j.to_string(),
                    expires_at: at(300),
                })
                .collect(),
            principals,
            scopes_within: None,
        }
    }

    fn principal(id: &str, status: &str, not_before: Option<i64>, scopes: &[&str]) -> FeedPrincipal {
        FeedPrincipal {
            id: id.into(),
            status: status.into(),
            not_before: not_before.map(at),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn scopes(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    /// RFC 8693: a token made by exchange ends with the token its chain
    /// started from, and when its subject loses a scope it carries; a token
    /// of the subject's own only loses the scope.
    #[test]
    fn exchanged_tokens_end_with_their_root_and_with_a_lost_scope() {
        let policy = RevocationPolicy::default();
        let mut state = RevocationState::default();
        state.apply(
            page(2, false, &["root"], vec![principal("demoted", "active", None, &["a"])]),
            at(20),
        );
        let token = |jti: &str, sub: &str, root: Option<&str>, acted: bool| AccessTokenClaims {
            iss: "i".into(),
            sub: sub.into(),
            aud: "billing".into(),
            exp: at(300).timestamp(),
            iat: at(0).timestamp(),
            nbf: None,
            jti: jti.into(),
            client_id: "orders".into(),
            scope: "a b".into(),
            principal_kind: "human".into(),
            name: sub.into(),
            act: acted.then(|| roster_proto::claims::Actor {
                sub: "o".into(),
                client_id: "orders".into(),
                act: None,
            }),
            root_jti: root.map(str::to_string),
            amr: None,
            acr: None,
        };
        let judge = |c: &AccessTokenClaims| state.judge_token(c, at(21), &policy);
        assert_eq!(
            judge(&token("t1", "x", Some("root"), true)),
            Verdict::Revoked("revoked")
        );
        assert_eq!(
            judge(&token("t2", "x", Some("other"), true)),
            Verdict::Accept(scopes(&["a", "b"]))
        );
        assert_eq!(
            judge(&token("t3", "demoted", Some("other"), true)),
            Verdict::Revoked("its subject lost a scope it carries")
        );
        assert_eq!(
            judge(&token("t4", "demoted", None, false)),
            Verdict::Accept(scopes(&["a"]))
        );
    }

    #[test]
    fn revoked_tokens_disabled_principals_and_lost_scopes_are_judged() {
        let policy = RevocationPolicy::default();
        let mut state = RevocationState::default();
        assert_eq!(
            state.judge("j", "p", 0, &[], at(0), &policy),
            Verdict::Stale,
            "never synced"
        );
        state.apply(
            page(
                3,
                false,
                &["gone"],
                vec![
                    principal("off", "disabled", Some(10), &["a"]),
                    principal("demoted", "active", None, &["a"]),
                    principal("back", "active", Some(10), &["a", "b"]),
                ],
            ),
            at(20),
        );
        let ab = scopes(&["a", "b"]);
        let judge = |jti, sub, iat| state.judge(jti, sub, at(iat).timestamp(), &ab, at(21), &policy);
        assert_eq!(judge("gone", "x", 0), Verdict::Revoked("revoked"));
        assert_eq!(judge("ok", "x", 0), Verdict::Accept(ab.clone()));
        assert_eq!(judge("ok", "off", 15), Verdict::Revoked("principal disabled"));
        assert_eq!(judge("ok", "demoted", 15), Verdict::Accept(scopes(&["a"])));
        assert_eq!(
            judge("ok", "back", 10),
            Verdict::Revoked("issued before the principal was disabled")
        );
        assert_eq!(judge("ok", "back", 11), Verdict::Accept(ab.clone()));
        // Stale after 60 s without an answer: closed by default, open if asked.
        assert_eq!(state.judge("ok", "x", 0, &ab, at(81), &policy), Verdict::Stale);
        let open = RevocationPolicy {
            on_stale: FailMode::Open,
            ..RevocationPolicy::default()
        };
        assert_eq!(
            state.judge("ok", "x", 0, &ab, at(81), &open),
            Verdict::Accept(ab.clone())
        );
        assert_eq!(
            state.judge("gone", "x", 0, &ab, at(81), &open),
            Verdict::Revoked("revoked")
        );
        // A reset forgets everything before it.
        state.apply(page(1, true, &[], vec![]), at(82));
        assert_eq!(
            state.judge("gone", "off", 15, &ab, at(83), &policy),
            Verdict::Accept(ab.clone())
        );
        assert_eq!(state.index, 1);
    }

    /// A feed narrowed to this service's scopes judges only those: a lost
    /// `orders:write` goes, another service's scope is left alone.
    #[test]
    fn only_the_scopes_the_feed_reports_on_are_judged() {
        let mut state = RevocationState::default();
        let mut narrowed = page(1, false, &[], vec![principal("p", "active", None, &["orders:read"])]);
        narrowed.scopes_within = Some("orders".into());
        state.apply(narrowed, at(20));
        let policy = RevocationPolicy::default();
        let carried = scopes(&["orders:read", "orders:write", "ordersx:y", "billing:pay", "openid"]);
        assert_eq!(
            state.judge("t", "p", at(10).timestamp(), &carried, at(21), &policy),
            Verdict::Accept(scopes(&["orders:read", "ordersx:y", "billing:pay", "openid"]))
        );
        assert!(scope_concerns("orders", "orders") && !scope_concerns("ordersx:y", "orders"));
    }
}
