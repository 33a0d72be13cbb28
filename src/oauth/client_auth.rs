//! Client authentication shared by the token, introspection and revocation
//! endpoints (RFC 6749 §2.3): client secrets, and JWT client assertions
//! (RFC 7523 §2.2: `private_key_jwt`, and workload tokens of trusted
//! issuers). Failures are audited with the reason and counted by the
//! guessing throttle; a secret's failure is only ever `invalid_client`, an
//! assertion's says what was wrong with it.

use chrono::{DateTime, Utc};

use super::OAuthContext;
use super::error::{ErrorCode, OAuthError};
use super::request::ClientCredentials;
use crate::auth::assertion::{self, Refusal};
use crate::auth::client::{self, Asserted, Asserter, AuthenticatedClient, CheckedAssertion, KeySource};
use crate::auth::jti_ledger::Spend;
use crate::auth::secrets::Pepper;
use crate::auth::throttle;
use crate::auth::verified::{Key, VerifiedClients};
use crate::db::DbConnection;
use crate::models::audit::{NewAuditEvent, Outcome};
use crate::models::client_settings::{self, ClientSettings};
use crate::models::principal::{self, PrincipalKind};
use crate::models::throttle::ThrottleRow;

/// Characters of an unknown `client_id` kept in the audit log.
const UNKNOWN_CLIENT_PREFIX: usize = 8;

/// How a failed `client_id` is recorded. One that names a principal is kept
/// (it is a name, and its row is linked); one that names nobody may be a
/// secret sent in the wrong field, so only a short prefix (printable ASCII)
/// and a keyed hash, enough to group attempts, are kept.
fn audited_client_id(pepper: &Pepper, client_id: &str, known: bool) -> serde_json::Value {
    if known {
        return serde_json::json!({ "client_id": client_id });
    }
    let prefix: String = client_id
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(UNKNOWN_CLIENT_PREFIX)
        .collect();
    serde_json::json!({ "client_id_prefix": prefix, "client_id_hash": audit_hash(pepper, "audit-client-id", client_id) })
}

/// A short keyed hash of a value the audit log must not keep in clear (a
/// name that names nobody may be a secret typed into the wrong field):
/// enough to group attempts, never the value itself.
pub(super) fn audit_hash(pepper: &Pepper, purpose: &str, value: &str) -> String {
    let mut hash = pepper.mac_hex(format!("{purpose}:{value}").as_bytes());
    hash.truncate(16);
    hash
}

/// A failed client authentication, as audited.
struct Failed<'a> {
    /// The principal it tried to be, if it names one.
    principal: Option<&'a str>,
    /// The `client_id` (or assertion issuer) presented.
    client_id: &'a str,
    reason: &'a str,
    /// Tell the client the reason (an assertion's flaw), or only
    /// `invalid_client` (a secret's, so that guesses learn nothing).
    told: bool,
}

/// Audit a failed client authentication and answer `invalid_client`. The
/// audit row is written outside any transaction, so it stays.
fn refuse(
    conn: &mut DbConnection,
    ctx: &OAuthContext,
    remote: Option<&str>,
    now: DateTime<Utc>,
    f: Failed<'_>,
) -> OAuthError {
    let recorded = ctx.failures.record(
        conn,
        NewAuditEvent::new("login.client", Outcome::Failed)
            .principal(f.principal)
            .remote(remote)
            .reason(f.reason)
            .details(audited_client_id(&ctx.pepper, f.client_id, f.principal.is_some())),
        now,
    );
    match recorded {
        Ok(()) if f.told => OAuthError::new(ErrorCode::InvalidClient, f.reason),
        Ok(()) => OAuthError::invalid_client(),
        Err(e) => e.into(),
    }
}

/// The client, when the exact `client_id` and secret presented were
/// verified recently (see [`crate::auth::verified`]): no database needed.
/// A hit counts a use of the secret, as a database check does.
pub fn recently_verified(
    ctx: &OAuthContext,
    now: DateTime<Utc>,
    creds: &ClientCredentials,
) -> Option<AuthenticatedClient> {
    let (client_id, secret) = creds.presented_secret()?;
    cached(ctx, now, &VerifiedClients::key(&ctx.pepper, client_id, secret))
}

fn cached(ctx: &OAuthContext, now: DateTime<Utc>, key: &Key) -> Option<AuthenticatedClient> {
    let hit = ctx.verified.get(key, now)?;
    if let Some(id) = &hit.secret_id {
        ctx.usage.record(id, now);
    }
    Some(hit)
}

/// Refuse with 429 when the throttle blocks `client_id` from `remote`;
/// otherwise the throttle's keys and rows, to record the outcome with.
fn check_throttle(
    conn: &mut DbConnection,
    ctx: &OAuthContext,
    remote: Option<&str>,
    now: DateTime<Utc>,
    client_id: &str,
) -> Result<(throttle::Keys, Vec<ThrottleRow>), OAuthError> {
    // Guessing a client's credentials is throttled like a password, per
    // (client, network), per network and per client; checked before them.
    let keys = throttle::Keys::new(&ctx.pepper, &format!("client:{client_id}"), remote);
    let rows = throttle::load(conn, &keys)?;
    let Some(retry_after) = throttle::retry_after_secs(&rows, now) else {
        return Ok((keys, rows));
    };
    // Whose credentials are being guessed, recorded as a failed client_id is.
    let target = principal::find_by_name(conn, client_id)?;
    let mut details = audited_client_id(&ctx.pepper, client_id, target.is_some());
    details["retry_after"] = retry_after.into();
    ctx.failures.record(
        conn,
        NewAuditEvent::new("login.throttled", Outcome::Failed)
            .principal(target.as_ref().map(|p| p.id.as_str()))
            .remote(remote)
            .reason("too many failed client authentications")
            .details(details),
        now,
    )?;
    Err(OAuthError::Throttled { retry_after })
}

/// Authenticate the client's credentials; `None` when it presented none.
/// A secret's success counts a use of the secret, written by the
/// background tick, and is remembered for the next request of the same client.
pub fn authenticate(
    conn: &mut DbConnection,
    ctx: &OAuthContext,
    remote: Option<&str>,
    now: DateTime<Utc>,
    creds: &ClientCredentials,
) -> Result<Option<AuthenticatedClient>, OAuthError> {
    match creds {
        ClientCredentials::Asserted(checked) => {
            return authenticate_assertion(conn, ctx, remote, now, checked).map(Some);
        }
        ClientCredentials::Assertion { .. } => {
            return Err(OAuthError::Server(crate::error::Error::internal(
                "a client assertion reached the database unchecked",
            )));
        }
        _ => {}
    }
    let Some((client_id, secret)) = creds.presented_secret() else {
        return Ok(None);
    };
    let key = VerifiedClients::key(&ctx.pepper, client_id, secret);
    if let Some(hit) = cached(ctx, now, &key) {
        return Ok(Some(hit));
    }
    let epoch = ctx.verified.epoch();
    let (keys, rows) = check_throttle(conn, ctx, remote, now, client_id)?;
    match client::authenticate(conn, &ctx.pepper, client_id, secret, now)? {
        Ok(c) => {
            if let Some(id) = &c.secret_id {
                ctx.usage.record(id, now);
            }
            throttle::record_success(conn, &keys, &rows)?;
            ctx.verified.insert(key, c.clone(), epoch);
            Ok(Some(c))
        }
        Err((failure, principal)) => {
            let subject = principal.as_ref().map(|p| p.id.as_str());
            throttle::record_failure(conn, &keys, subject, &ctx.throttle, now)?;
            Err(refuse(
                conn,
                ctx,
                remote,
                now,
                Failed {
                    principal: subject,
                    client_id,
                    reason: failure.reason(),
                    told: false,
                },
            ))
        }
    }
}

/// The database's part of an assertion checked in memory: the throttle,
/// the service it stands for, and the one use of its `jti`. A refusal,
/// from either part, counts toward the throttle and is audited.
fn authenticate_assertion(
    conn: &mut DbConnection,
    ctx: &OAuthContext,
    remote: Option<&str>,
    now: DateTime<Utc>,
    checked: &CheckedAssertion,
) -> Result<AuthenticatedClient, OAuthError> {
    let claimed = checked.claimed.as_str();
    let epoch = ctx.verified.epoch();
    let (keys, rows) = check_throttle(conn, ctx, remote, now, claimed)?;
    let outcome = match &checked.outcome {
        Ok(asserted) => client::authenticate_asserted(conn, asserted, checked.client_id.as_deref(), now)?
            .map_err(|(failure, p)| (failure.to_string(), p)),
        Err(refusal) => Err((refusal.to_string(), principal::find_by_name(conn, claimed)?)),
    };
    match outcome {
        Ok(c) => {
            throttle::record_success(conn, &keys, &rows)?;
            if let Ok(asserted) = &checked.outcome {
                ctx.verified.insert(cache_key(asserted), c.clone(), epoch);
            }
            Ok(c)
        }
        Err((reason, principal)) => {
            let subject = principal.as_ref().map(|p| p.id.as_str());
            throttle::record_failure(conn, &keys, subject, &ctx.throttle, now)?;
            Err(refuse(
                conn,
                ctx,
                remote,
                now,
                Failed {
                    principal: subject,
                    client_id: principal.as_ref().map_or(claimed, |p| p.name.as_str()),
                    reason: &reason,
                    told: true,
                },
            ))
        }
    }
}

fn cache_key(asserted: &Asserted) -> Key {
    match asserted {
        Asserted::Key { principal_id, .. } => VerifiedClients::asserted_key(principal_id),
        Asserted::Federated { issuer_id, subject } => VerifiedClients::federated_key(issuer_id, subject),
    }
}

/// The client of an assertion verified in memory, when the database
/// confirmed that client recently (see [`crate::auth::verified`]): no
/// database read. What is left is to spend the assertion's `jti` (a
/// client's own assertion; a federated token is not spent).
pub fn recently_asserted(
    ctx: &OAuthContext,
    now: DateTime<Utc>,
    creds: &ClientCredentials,
) -> Option<(AuthenticatedClient, Option<Spend>)> {
    let ClientCredentials::Asserted(checked) = creds else {
        return None;
    };
    let asserted = checked.outcome.as_ref().ok()?;
    let hit = ctx.verified.get(&cache_key(asserted), now)?;
    if checked.client_id.as_deref().is_some_and(|id| id != hit.principal.name) {
        return None;
    }
    let spend = match asserted {
        Asserted::Key { principal_id, jti, exp } => Some(Spend {
            principal_id: principal_id.clone(),
            jti: jti.clone(),
            expires_at: *exp,
        }),
        Asserted::Federated { .. } => None,
    };
    Some((hit, spend))
}

/// Check a client assertion in memory before the database is asked: read
/// it, find who verifies assertions from its `iss` (a service with
/// `private_key_jwt`, or a trusted issuer; from the cache of verified
/// clients, else the database), get their keys (fetching a `jwks_uri` if
/// need be), and verify the signature and claims at `now`. Other
/// credentials pass through unchanged.
pub async fn check_assertion(
    ctx: &OAuthContext,
    creds: ClientCredentials,
    now: DateTime<Utc>,
) -> Result<ClientCredentials, OAuthError> {
    let ClientCredentials::Assertion { client_id, assertion } = creds else {
        return Ok(creds);
    };
    let (claimed, outcome) = match assertion::peek(assertion.expose()) {
        Ok(head) => (
            head.iss.clone(),
            verify_assertion(ctx, client_id.as_deref(), assertion.expose(), &head, now).await?,
        ),
        Err(refusal) => (client_id.clone().unwrap_or_default(), Err(refusal)),
    };
    Ok(ClientCredentials::Asserted(Box::new(CheckedAssertion {
        client_id,
        claimed,
        outcome,
    })))
}

async fn verify_assertion(
    ctx: &OAuthContext,
    client_id: Option<&str>,
    token: &str,
    head: &assertion::Unverified,
    now: DateTime<Utc>,
) -> Result<Result<Asserted, Refusal>, OAuthError> {
    let asserter = match ctx.verified.asserter(&head.iss, now) {
        Some(a) => a,
        None => {
            let epoch = ctx.verified.epoch();
            let iss = head.iss.clone();
            match ctx.db.run(move |c| client::asserter(c, &iss)).await? {
                Some(a) => {
                    ctx.verified.insert_asserter(head.iss.clone(), a.clone(), epoch);
                    a
                }
                // Nobody: said as a bad signature, so names are not probed.
                None => return Ok(Err(Refusal::Signature)),
            }
        }
    };
    let (keys, issuer_audience, max_lifetime, federated) = match &asserter {
        Asserter::Client { keys, .. } => (keys, None, ctx.token.assertion_max_lifetime, false),
        Asserter::Issuer {
            keys,
            audience,
            max_lifetime,
            ..
        } => (keys, Some(audience.as_str()), *max_lifetime, true),
    };
    if !federated && client_id.is_some_and(|id| id != head.iss) {
        return Ok(Err(Refusal::ClientIdMismatch));
    }
    let set = match keys {
        KeySource::Inline(set) => set.clone(),
        KeySource::Remote(url) => match ctx.remote_keys.keys(url, head.kid.as_deref(), now).await {
            Ok(set) => set,
            Err(why) => {
                tracing::warn!(iss = %head.iss, %why, "no keys to verify a client assertion with");
                return Ok(Err(Refusal::Signature));
            }
        },
    };
    let token_endpoint = format!("{}/oauth/token", ctx.issuer());
    let roster = [ctx.issuer(), token_endpoint.as_str()];
    let own = issuer_audience.map(|a| [a]);
    let rules = assertion::Rules {
        audiences: match &own {
            Some(a) => a,
            None => &roster,
        },
        max_lifetime,
        subject_is_issuer: !federated,
        require_jti: !federated,
    };
    let verified = match assertion::verify(token, head, &set, &rules, now) {
        Ok(v) => v,
        Err(r) => return Ok(Err(r)),
    };
    Ok(Ok(match asserter {
        Asserter::Client { principal_id, .. } => Asserted::Key {
            principal_id,
            jti: verified.jti.unwrap_or_default(),
            exp: verified.exp,
        },
        Asserter::Issuer { id, .. } => Asserted::Federated {
            issuer_id: id,
            subject: verified.sub,
        },
    }))
}

/// Who the client is, as far as the request says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Client {
    /// No client named: a person acting for themselves.
    None,
    /// A bare `client_id` naming an active service: a public client.
    Public(String),
    /// A service that proved its secret: a confidential client.
    Confidential(String),
}

impl Client {
    pub fn name(&self) -> Option<&str> {
        match self {
            Self::None => None,
            Self::Public(n) | Self::Confidential(n) => Some(n),
        }
    }
}

/// Authenticate when a secret is presented, or accept a bare `client_id` that
/// names an active service (a public client acting for a person).
pub fn identify(
    conn: &mut DbConnection,
    ctx: &OAuthContext,
    remote: Option<&str>,
    now: DateTime<Utc>,
    creds: &ClientCredentials,
) -> Result<Client, OAuthError> {
    match creds {
        ClientCredentials::None => Ok(Client::None),
        ClientCredentials::IdOnly(id) => match principal::find_by_name(conn, id)? {
            Some(p) if p.kind == PrincipalKind::Service && p.is_active() => Ok(Client::Public(p.name)),
            found => Err(refuse(
                conn,
                ctx,
                remote,
                now,
                Failed {
                    principal: found.as_ref().map(|p| p.id.as_str()),
                    client_id: id,
                    reason: "client_id is not an active service",
                    told: false,
                },
            )),
        },
        _ => Ok(match authenticate(conn, ctx, remote, now, creds)? {
            Some(c) => Client::Confidential(c.principal.name),
            None => Client::None,
        }),
    }
}

/// The active service `name` with its browser-login settings, if it has any.
pub(crate) fn login_client(
    conn: &mut DbConnection,
    name: &str,
) -> Result<Option<(principal::Principal, ClientSettings)>, crate::error::Error> {
    let Some(client) =
        principal::find_by_name(conn, name)?.filter(|p| p.kind == PrincipalKind::Service && p.is_active())
    else {
        return Ok(None);
    };
    Ok(client_settings::find(conn, &client.id)?.map(|s| (client, s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_client_ids_are_kept_as_a_prefix_and_a_keyed_hash() {
        let pepper = Pepper::from_bytes(b"0123456789abcdef0123456789abcdef").unwrap();
        let secret_in_wrong_field = "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1u";
        let v = audited_client_id(&pepper, secret_in_wrong_field, false);
        assert_eq!(v["client_id_prefix"], "Zm9vYmFy");
        assert_eq!(v["client_id_hash"].as_str().unwrap().len(), 16);
        assert!(v.get("client_id").is_none());
        assert!(!v.to_string().contains(&secret_in_wrong_field[8..]));
        // The same value hashes the same, so attempts can be grouped.
        assert_eq!(audited_client_id(&pepper, secret_in_wrong_field, false), v);
        assert_eq!(
            audited_client_id(&pepper, "line\nbreak\u{1b}[31m", false)["client_id_prefix"],
            "linebrea"
        );
        assert_eq!(
            audited_client_id(&pepper, "billing", true),
            serde_json::json!({"client_id": "billing"})
        );
    }
}
