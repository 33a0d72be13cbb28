//! Token exchange (RFC 8693): a service trades a token it was sent for one
//! that lets it act for the same subject towards another service, checked
//! hop by hop against the services an admin allowed and the registry.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::OAuthContext;
use super::client_auth;
use super::error::{ErrorCode, OAuthError};
use super::grants::{self, Exchange};
use super::request::{ClientCredentials, ExchangeParams};
use super::response::{TokenResponse, respond};
use crate::auth::access::{self, verify_reloading};
use crate::auth::jwt::AccessTokenClaims;
use crate::auth::live::{Known, Lookup};
use crate::db::Tx;
use crate::group_commit::GroupCommit;
use crate::models::audit::{self, NewAuditEvent, Outcome};
use crate::models::new_id;
use crate::models::principal::{self, Principal, PrincipalKind};
use crate::models::registration::{self, Health};
use crate::models::token_exchange::{self, ExchangePolicy, ExchangedToken};
use roster_proto::claims::token_exchange::{ACCESS_TOKEN, CATEGORY_PREFIX};

/// What the token is for (RFC 8693 §2.1 `resource` / `audience`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// One registered service, by name.
    Service(String),
    /// The services of a registry category that are up.
    Category(String),
}

impl Target {
    /// Parse the name a request gave (a service name, or
    /// `urn:roster:category:<name>`).
    pub fn parse(named: &str) -> Result<Self, OAuthError> {
        let (target, name) = match named.strip_prefix(CATEGORY_PREFIX) {
            Some(category) => (Self::Category(category.to_string()), category),
            None => (Self::Service(named.to_string()), named),
        };
        if crate::names::validate_name("audience", name).is_err() {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                format!("audience '{}' is not a service or a category", named.escape_debug()),
            ));
        }
        Ok(target)
    }

    /// The name as a policy lists it.
    pub fn as_named(&self) -> String {
        match self {
            Self::Service(name) => name.clone(),
            Self::Category(name) => format!("{CATEGORY_PREFIX}{name}"),
        }
    }
}

/// The request's checks that need nothing stored (RFC 8693 §2.1): the token
/// types, the actor token's pair, and one target.
pub fn check_params(p: &ExchangeParams) -> Result<Target, OAuthError> {
    if p.subject_token_type != ACCESS_TOKEN {
        return Err(OAuthError::invalid_request(format!(
            "subject_token_type must be {ACCESS_TOKEN}"
        )));
    }
    if p.requested_token_type.as_deref().is_some_and(|t| t != ACCESS_TOKEN) {
        return Err(OAuthError::invalid_request(format!(
            "requested_token_type must be {ACCESS_TOKEN}"
        )));
    }
    match (&p.actor_token, p.actor_token_type.as_deref()) {
        (Some(_), Some(ACCESS_TOKEN)) | (None, None) => {}
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(format!(
                "actor_token_type must be {ACCESS_TOKEN}"
            )));
        }
        (Some(_), None) => return Err(OAuthError::invalid_request("actor_token without actor_token_type")),
        (None, Some(_)) => return Err(OAuthError::invalid_request("actor_token_type without actor_token")),
    }
    let named = match (p.resource.as_deref(), p.audience.as_deref()) {
        (Some(r), Some(a)) if r != a => {
            return Err(OAuthError::invalid_request(
                "name one target: resource and audience differ",
            ));
        }
        (Some(named), _) | (None, Some(named)) => named,
        (None, None) => {
            return Err(OAuthError::invalid_request(
                "missing parameter 'audience' (or 'resource'): the service the token is for",
            ));
        }
    };
    Target::parse(named)
}

/// The subject token was not live: RFC 8693 §2.2.2 with `invalid_grant`.
fn inactive_subject() -> OAuthError {
    OAuthError::invalid_grant("the subject token is invalid, expired or revoked")
}

impl OAuthContext {
    /// RFC 8693 §2: exchange `params.subject_token` for a token that lets the
    /// authenticated calling service act for its subject towards the target.
    pub(super) async fn exchange(
        &self,
        creds: ClientCredentials,
        params: ExchangeParams,
        remote: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<TokenResponse, OAuthError> {
        let target = check_params(&params)?;
        let issuer = &self.token.issuer;
        let (db, keys, signatures) = (&self.db, &self.keys, &self.signatures);
        let subject = params.subject_token.expose();
        let subject = access::valid_or_none(verify_reloading(db, keys, signatures, subject, issuer, now).await)?;
        // `Some(None)`: an actor token was sent and is not valid (refused
        // once the caller has authenticated, as the subject token is).
        let actor_token = match &params.actor_token {
            Some(t) => Some(access::valid_or_none(
                verify_reloading(db, keys, signatures, t.expose(), issuer, now).await,
            )?),
            None => None,
        };
        // The steady state: the caller verified recently, the subject token's
        // liveness in the live view, the target resolved a moment ago. Only
        // the token's row and audit event are written, in a batch.
        if actor_token.is_none()
            && let Some(subject) = &subject
            && let Some((grant, record)) =
                self.decided_in_memory(&creds, subject, &target, params.scope.as_ref(), remote.as_deref(), now)
        {
            self.exchanges.submit(&self.db, record).await?;
            return issued(self, &grant);
        }
        let (epoch, index) = (self.verified.epoch(), self.live.index());
        let (oauth, cfg, scope, asked_for) = (self.clone(), self.token.clone(), params.scope, target.clone());
        let (grant, known) = self
            .db
            .run(move |conn| {
                let client = client_auth::authenticate(conn, &oauth, remote.as_deref(), now, &creds)?
                    .ok_or_else(OAuthError::invalid_client)?;
                let subject = subject.ok_or_else(inactive_subject)?;
                let actor_token = match actor_token {
                    Some(None) => {
                        return Err(OAuthError::invalid_request(
                            "the actor token is invalid, expired or revoked",
                        ));
                    }
                    Some(Some(own)) => Some(own),
                    None => None,
                };
                crate::db::transaction(conn, |tx| {
                    let asked = Asked {
                        actor: &client.principal,
                        subject: &subject,
                        actor_token: actor_token.as_ref(),
                        target: &asked_for,
                        scope: scope.as_ref(),
                    };
                    exchange(tx, asked, &cfg, remote.as_deref(), now)
                })
            })
            .await?;
        // What the next exchange of this kind needs from memory.
        self.targets.remember(&target, grant.claims.aud.as_slice(), epoch, now);
        self.live.remember(index, known);
        issued(self, &grant)
    }

    /// The exchange decided from memory alone, or `None` for anything
    /// that needs the database (a cache miss, or any refusal: the database
    /// path gives it, audited and exact).
    fn decided_in_memory(
        &self,
        creds: &ClientCredentials,
        subject: &AccessTokenClaims,
        target: &Target,
        scope: Option<&crate::names::Scopes>,
        remote: Option<&str>,
        now: DateTime<Utc>,
    ) -> Option<(grants::Grant, ExchangeRecord)> {
        let client = client_auth::recently_verified(self, now, creds)?;
        let Lookup::Live(known) = self.live.check(subject, now) else {
            return None;
        };
        let policy = client.exchange.as_ref()?;
        let actor = &client.principal;
        if !subject.aud.contains(&actor.name)
            || !policy.audiences.contains(&target.as_named())
            || check_depth(subject, policy, &actor.name).is_err()
            || !access::delegation_holds(subject, &known.scopes)
        {
            return None;
        }
        let audiences = self.targets.get(target, self.verified.epoch(), now)?;
        let x = Exchange {
            subject_token: subject,
            subject: &known.principal,
            held: &known.scopes,
            actor,
            audiences: &audiences,
            scope,
        };
        let grant = grants::exchange(
            x,
            grants::Issued {
                cfg: &self.token,
                now,
                jti: new_id(),
            },
        )
        .ok()?;
        let record = ExchangeRecord::of(&x, &grant, remote, now);
        Some((grant, record))
    }
}

/// The answer to an exchange (RFC 8693 §2.2.1).
fn issued(ctx: &OAuthContext, grant: &grants::Grant) -> Result<TokenResponse, OAuthError> {
    let mut response = respond(&ctx.keys.current(), grant, None)?;
    response.issued_token_type = Some(ACCESS_TOKEN);
    Ok(response)
}

/// What an exchange stores: the token's row (for revocation to follow)
/// and its audit event.
pub struct ExchangeRecord {
    row: ExchangedToken,
    audit: NewAuditEvent,
    now: DateTime<Utc>,
}

impl ExchangeRecord {
    fn of(x: &Exchange<'_>, grant: &grants::Grant, remote: Option<&str>, now: DateTime<Utc>) -> Self {
        let claims = &grant.claims;
        let mut chain = vec![x.subject.name.clone()];
        if let Some(act) = &claims.act {
            chain.extend(act.chain().iter().rev().map(|a| a.client_id.clone()));
        }
        Self {
            row: ExchangedToken {
                jti: claims.jti.clone(),
                parent_jti: x.subject_token.jti.clone(),
                root_jti: x.subject_token.root().to_string(),
                principal_id: x.subject.id.clone(),
                actor_id: x.actor.id.clone(),
                expires_at: DateTime::from_timestamp(claims.exp, 0).unwrap_or(now),
            },
            audit: NewAuditEvent::new("token.exchanged", Outcome::Ok)
                .actor(Some(&x.actor.id))
                .principal(Some(&x.subject.id))
                .remote(remote)
                .details(serde_json::json!({
                    "chain": chain,
                    "audience": x.audiences,
                    "scope": grant.scopes,
                    "jti": claims.jti,
                    "subject_jti": x.subject_token.jti,
                    "root_jti": x.subject_token.root(),
                })),
            now,
        }
    }

    /// Store it in the caller's transaction.
    fn store(&self, tx: &mut Tx<'_>) -> Result<(), crate::error::Error> {
        token_exchange::insert(tx, &self.row)?;
        audit::record(tx, self.audit.clone(), self.now)
    }
}

/// Most exchanges stored by one transaction.
const MAX_BATCH: usize = 256;
/// Batches written at once: one fills while another commits.
const WRITERS: usize = 2;

/// Exchanges decided from memory, stored in batches (group commit).
pub type ExchangeLedger = GroupCommit<ExchangeRecord, ()>;

pub fn ledger() -> ExchangeLedger {
    GroupCommit::new("token exchange", MAX_BATCH, WRITERS, |conn, records| {
        let rows: Vec<ExchangedToken> = records.iter().map(|r| r.row.clone()).collect();
        let events: Vec<(NewAuditEvent, DateTime<Utc>)> = records.iter().map(|r| (r.audit.clone(), r.now)).collect();
        crate::db::transaction(conn, |tx| {
            token_exchange::insert_all(tx, &rows)?;
            audit::record_all(tx, &events)?;
            Ok(vec![(); records.len()])
        })
    })
}

/// How long a resolved target is trusted without the database.
const TARGET_TTL_MS: i64 = 1000;
/// Most targets remembered.
const MAX_TARGETS: usize = 1024;

/// Targets resolved recently (a service's name, or a category's services
/// that are up), each for [`TARGET_TTL_MS`] and only while no principal
/// changed here since (the verified clients' epoch): a target disabled
/// here is refused at once, elsewhere within the TTL.
#[derive(Debug, Default)]
pub struct TargetCache {
    entries: std::sync::Mutex<HashMap<Target, Resolved>>,
}

/// A target's services, the epoch they were read at, and when.
#[derive(Debug)]
struct Resolved {
    audiences: Vec<String>,
    epoch: u64,
    at: DateTime<Utc>,
}

impl TargetCache {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Target, Resolved>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, target: &Target, epoch: u64, now: DateTime<Utc>) -> Option<Vec<String>> {
        let entries = self.lock();
        let r = entries.get(target)?;
        let age = (now - r.at).num_milliseconds();
        (r.epoch == epoch && (0..TARGET_TTL_MS).contains(&age)).then(|| r.audiences.clone())
    }

    fn remember(&self, target: &Target, audiences: &[String], epoch: u64, now: DateTime<Utc>) {
        let mut entries = self.lock();
        if entries.len() >= MAX_TARGETS {
            entries.clear();
        }
        entries.insert(
            target.clone(),
            Resolved {
                audiences: audiences.to_vec(),
                epoch,
                at: now,
            },
        );
    }
}

/// What an exchange was asked, once its tokens' signatures were checked.
struct Asked<'a> {
    actor: &'a Principal,
    subject: &'a AccessTokenClaims,
    actor_token: Option<&'a AccessTokenClaims>,
    target: &'a Target,
    scope: Option<&'a crate::names::Scopes>,
}

/// [`OAuthContext::exchange`]'s transaction: every rule of RFC 8693 §2.2.2
/// in the order a request meets them, then the token's row (for revocation
/// to follow) and the audit event, committed together.
fn exchange(
    tx: &mut Tx<'_>,
    asked: Asked<'_>,
    cfg: &grants::TokenConfig,
    remote: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(grants::Grant, Known), OAuthError> {
    let Asked {
        actor,
        subject,
        actor_token,
        target,
        scope,
    } = asked;
    let person = access::live(tx, subject)?.ok_or_else(inactive_subject)?;
    let held = principal::scopes_of(tx, &person.id)?;
    if !access::delegation_holds(subject, &held) {
        return Err(inactive_subject());
    }
    if !subject.aud.contains(&actor.name) {
        return Err(OAuthError::invalid_grant(format!(
            "the subject token was not issued to '{}': a service exchanges only tokens sent to it",
            actor.name
        )));
    }
    if let Some(own) = actor_token
        && (own.sub != actor.id || access::live(tx, own)?.is_none())
    {
        return Err(OAuthError::invalid_request(
            "the actor token must be the calling service's own live token",
        ));
    }
    let policy = token_exchange::find(tx, &actor.id)?
        .ok_or_else(|| OAuthError::unauthorized_client(format!("'{}' has no token exchange policy", actor.name)))?;
    let named = target.as_named();
    if !policy.audiences.contains(&named) {
        return Err(OAuthError::unauthorized_client(format!(
            "'{}' may not exchange tokens for '{named}'",
            actor.name
        )));
    }
    let audiences = resolve(tx, target)?;
    check_depth(subject, &policy, &actor.name)?;
    let x = Exchange {
        subject_token: subject,
        subject: &person,
        held: &held,
        actor,
        audiences: &audiences,
        scope,
    };
    let grant = grants::exchange(
        x,
        grants::Issued {
            cfg,
            now,
            jti: new_id(),
        },
    )?;
    let record = ExchangeRecord::of(&x, &grant, remote, now);
    record.store(tx)?;
    Ok((
        grant,
        Known {
            principal: person,
            scopes: held,
        },
    ))
}

/// The target's services: one active service, or every active service of
/// the category that is up now (`invalid_target` when there is none).
fn resolve(tx: &mut Tx<'_>, target: &Target) -> Result<Vec<String>, OAuthError> {
    match target {
        Target::Service(name) => match principal::find_by_name(tx, name)? {
            Some(p) if p.kind == PrincipalKind::Service && p.is_active() => Ok(vec![p.name]),
            _ => Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                format!("audience '{name}' is not a registered, enabled service"),
            )),
        },
        Target::Category(name) => {
            let mut up = Vec::new();
            for m in registration::category_members(tx, Some(name))? {
                if m.status == Some(Health::Up)
                    && principal::find_by_id(tx, &m.principal_id)?.is_some_and(|p| p.is_active())
                {
                    up.push(m.service);
                }
            }
            if up.is_empty() {
                return Err(OAuthError::new(
                    ErrorCode::InvalidTarget,
                    format!("no service of category '{name}' is up"),
                ));
            }
            up.sort();
            Ok(up)
        }
    }
}

/// RFC 8693 §4.1: the new token's chain is the subject token's plus this
/// hop, and the calling service's policy bounds its length.
fn check_depth(subject: &AccessTokenClaims, policy: &ExchangePolicy, actor: &str) -> Result<(), OAuthError> {
    let hops = subject.depth() + 1;
    match i32::try_from(hops) {
        Ok(h) if h <= policy.max_depth => Ok(()),
        _ => Err(OAuthError::invalid_request(format!(
            "the delegation chain would have {hops} hops; '{actor}' may make at most {}",
            policy.max_depth
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(body: &str) -> ExchangeParams {
        let form = super::super::request::FormParams::parse(body.as_bytes()).unwrap();
        match super::super::request::TokenRequest::from_form(&form).unwrap() {
            super::super::request::TokenRequest::TokenExchange(p) => *p,
            other => panic!("{other:?}"),
        }
    }

    const BASE: &str = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=t&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token";

    #[test]
    fn targets_are_a_service_or_a_category_named_once() {
        assert_eq!(
            check_params(&params(&format!("{BASE}&audience=billing"))).unwrap(),
            Target::Service("billing".into())
        );
        assert_eq!(
            check_params(&params(&format!("{BASE}&resource=urn%3Aroster%3Acategory%3Amail"))).unwrap(),
            Target::Category("mail".into())
        );
        assert_eq!(
            check_params(&params(&format!("{BASE}&resource=billing&audience=billing"))).unwrap(),
            Target::Service("billing".into())
        );
        let e = check_params(&params(&format!("{BASE}&resource=billing&audience=ledger"))).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest);
        let e = check_params(&params(BASE)).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest);
        let e = check_params(&params(&format!("{BASE}&audience=Not+A+Name"))).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidTarget);
        let e = check_params(&params(&format!("{BASE}&audience=urn%3Aroster%3Acategory%3A"))).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidTarget);
    }

    #[test]
    fn token_types_and_the_actor_pair_are_checked() {
        let jwt = BASE.replace("access_token", "jwt");
        let e = check_params(&params(&format!("{jwt}&audience=b"))).unwrap_err();
        assert_eq!(
            (e.code(), e.description()),
            (
                ErrorCode::InvalidRequest,
                "subject_token_type must be urn:ietf:params:oauth:token-type:access_token"
            )
        );
        let e = check_params(&params(&format!("{BASE}&audience=b&actor_token=x"))).unwrap_err();
        assert_eq!(e.description(), "actor_token without actor_token_type");
        let e = check_params(&params(&format!(
            "{BASE}&audience=b&actor_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token"
        )))
        .unwrap_err();
        assert_eq!(e.description(), "actor_token_type without actor_token");
        let e = check_params(&params(&format!(
            "{BASE}&audience=b&requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Arefresh_token"
        )))
        .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest);
    }
}
