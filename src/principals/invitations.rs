//! Invitations: an admin's single-use link with which a person who has no
//! password and no passkey registers their first passkey on Roster's
//! invitation page, and so becomes a passkey-only person.
//!
//! The link carries its token in the URL fragment, which browsers never
//! send to a server, so it is in no access log and no `Referer`; the page's
//! script hands it to `start` and `finish`. The token is stored only as a
//! keyed hash. An invitation is spent, in the transaction that stores the
//! passkey, by one compare-and-set: of two answers to one link, one wins.

use chrono::{DateTime, Duration, Utc};
use diesel::result::Error as DieselError;
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::RegisterPublicKeyCredential;

use super::factors::FactorView;
use super::{PrincipalsContext, row};
use crate::auth::passkeys::{self, Begun, Refused, Registrant};
use crate::auth::secrets::{Pepper, SecretString, random_secret, serialize_exposed};
use crate::db::{DbConnection, Fault, HasFault, PoolError};
use crate::error::{Error, Result};
use crate::models::audit::{self, NewAuditEvent, Outcome};
use crate::models::invitation::{self as rows, InvitationRow};
use crate::models::principal::{self, Principal, PrincipalKind, PrincipalStatus};
use crate::models::second_factor as factor_rows;

/// The invitation page; the link is this, on the issuer, with `#token`.
pub const PAGE_PATH: &str = "/oauth/invitation";
/// How long a link works unless the admin says otherwise.
pub const DEFAULT_TTL: Duration = Duration::hours(72);
const MIN_TTL: Duration = Duration::minutes(5);
const MAX_TTL: Duration = Duration::days(30);
const TOKEN_BYTES: usize = 32;
/// The name of the passkey an invitation registers.
const PASSKEY_NAME: &str = "Passkey";
/// What a refused link is told: which of unknown, used or expired is
/// nobody's business.
const UNUSABLE: &str = "this invitation link is unknown, used or expired: ask your administrator for a new one";

/// `POST /api/v1/principals/{id}/invitation`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewInvitation {
    /// Seconds the link works (300 to 2,592,000; default 259,200, three days).
    pub expires_in: Option<i64>,
}

/// An invitation made: its link, shown once.
#[derive(Debug, Serialize)]
pub struct InvitationView {
    pub principal_id: String,
    #[serde(serialize_with = "serialize_exposed")]
    pub url: SecretString,
    pub expires_at: DateTime<Utc>,
}

/// `POST /oauth/invitation/start`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartInvited {
    pub token: SecretString,
}

/// A registration begun for the invited person.
#[derive(Debug, Serialize)]
pub struct InvitedBegun {
    /// Whose invitation it is (their login name).
    pub name: String,
    pub ceremony: String,
    /// For `navigator.credentials.create`.
    pub options: serde_json::Value,
}

/// `POST /oauth/invitation/finish`: the token again, the ceremony, and the
/// browser's answer to `navigator.credentials.create`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinishInvited {
    pub token: SecretString,
    pub ceremony: String,
    pub credential: RegisterPublicKeyCredential,
}

/// An invitation accepted: the person's passkey is registered.
#[derive(Debug, Serialize)]
pub struct InvitationAccepted {
    pub principal_id: String,
    pub name: String,
    pub factor: FactorView,
}

fn hash(pepper: &Pepper, token: &str) -> String {
    pepper.mac_hex(format!("invitation:{token}").as_bytes())
}

/// How long a new link works.
fn lifetime(expires_in: Option<i64>) -> Result<Duration> {
    let Some(secs) = expires_in else {
        return Ok(DEFAULT_TTL);
    };
    let d = Duration::seconds(secs);
    if d < MIN_TTL || d > MAX_TTL {
        return Err(Error::invalid(
            "expires_in",
            format!(
                "must be between {} and {} seconds",
                MIN_TTL.num_seconds(),
                MAX_TTL.num_seconds()
            ),
        ));
    }
    Ok(d)
}

/// Why `person` cannot be invited: an invitation is only for a person with
/// no way to sign in, so that a link can never take over an account.
fn not_invitable(conn: &mut DbConnection, person: &Principal) -> Result<Option<String>> {
    if person.kind != PrincipalKind::Human {
        return Ok(Some("only people are invited; a service gets a client secret".into()));
    }
    if person.status != PrincipalStatus::Active {
        return Ok(Some(format!("{} is disabled", person.name)));
    }
    if crate::models::password::find(conn, &person.id)?.is_some() {
        return Ok(Some(format!(
            "{} has a password: an invitation is only for a person with no password and no second factor",
            person.name
        )));
    }
    if factor_rows::has_confirmed(conn, &person.id)? {
        return Ok(Some(format!(
            "{} already has a second factor: reset their factors first (DELETE /api/v1/principals/{{id}}/factors)",
            person.name
        )));
    }
    Ok(None)
}

/// Make a link for `person`, replacing their unused ones; audited.
pub(super) fn issue(
    conn: &mut DbConnection,
    ctx: &PrincipalsContext,
    person: &Principal,
    created_by: Option<&str>,
    expires_in: Option<i64>,
    now: DateTime<Utc>,
) -> Result<InvitationView> {
    let ttl = lifetime(expires_in)?;
    ctx.passkeys.require()?;
    if let Some(why) = not_invitable(conn, person)? {
        return Err(match person.kind {
            PrincipalKind::Service => Error::invalid("id", why),
            PrincipalKind::Human => Error::Conflict(why),
        });
    }
    let token = random_secret(TOKEN_BYTES)?;
    crate::db::transaction(conn, |conn| {
        let replaced = rows::delete_unused_of(conn, &person.id)?;
        let invitation = InvitationRow {
            token_hash: hash(&ctx.pepper, token.expose()),
            principal_id: person.id.clone(),
            created_by: created_by.map(str::to_string),
            created_at: now,
            expires_at: now + ttl,
            used_at: None,
        };
        rows::insert(conn, &invitation)?;
        audit::record(
            conn,
            NewAuditEvent::new("invitation.created", Outcome::Ok)
                .actor(created_by)
                .principal(Some(&person.id))
                .details(serde_json::json!({"expires_at": invitation.expires_at, "replaced": replaced})),
            now,
        )?;
        Ok(InvitationView {
            principal_id: person.id.clone(),
            url: SecretString::new(format!(
                "{}{PAGE_PATH}#{}",
                ctx.issuer.trim_end_matches('/'),
                token.expose()
            )),
            expires_at: invitation.expires_at,
        })
    })
}

/// Why a link was refused, for the audit; the caller hears only [`UNUSABLE`].
#[derive(Debug)]
enum Refusal {
    /// Unknown, used or expired.
    Unusable,
    /// The person can no longer be invited (disabled, or given a password).
    NotInvitable { principal_id: String, why: String },
    /// The passkey did not verify, or its ceremony ran out.
    Passkey { principal_id: String, why: Refused },
}

/// A transaction stopped: a refusal (rolled back) or a failure.
#[derive(Debug)]
enum Stop {
    Refused(Refusal),
    Failed(Error),
}

impl From<DieselError> for Stop {
    fn from(e: DieselError) -> Self {
        Self::Failed(e.into())
    }
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Self::Failed(e)
    }
}

impl From<PoolError> for Stop {
    fn from(e: PoolError) -> Self {
        Self::Failed(e.into())
    }
}

impl HasFault for Stop {
    fn fault(&self) -> Option<Fault> {
        match self {
            Self::Failed(e) => e.fault(),
            Self::Refused(_) => None,
        }
    }
}

/// The live invitation of `token` and its person, still invitable.
fn live(
    conn: &mut DbConnection,
    pepper: &Pepper,
    token: &SecretString,
    now: DateTime<Utc>,
) -> std::result::Result<(InvitationRow, Principal), Stop> {
    let Some(invitation) = rows::find_live(conn, &hash(pepper, token.expose()), now)? else {
        return Err(Stop::Refused(Refusal::Unusable));
    };
    let person = row(conn, &invitation.principal_id)?;
    if let Some(why) = not_invitable(conn, &person)? {
        return Err(Stop::Refused(Refusal::NotInvitable {
            principal_id: person.id,
            why,
        }));
    }
    Ok((invitation, person))
}

impl PrincipalsContext {
    /// `POST /api/v1/principals/{id}/invitation` (admins) and `roster
    /// principal invite`: a new single-use link for a person with no
    /// password and no second factor; their unused links stop working.
    pub async fn invite(
        &self,
        actor: Option<&str>,
        id: String,
        body: NewInvitation,
        now: DateTime<Utc>,
    ) -> Result<InvitationView> {
        let (ctx, actor) = (self.clone(), actor.map(str::to_string));
        self.db
            .run(move |conn| {
                let person = match principal::find_by_id(conn, &id)? {
                    Some(p) => p,
                    None => principal::find_by_name(conn, &id)?.ok_or_else(|| super::not_found(&id))?,
                };
                issue(conn, &ctx, &person, actor.as_deref(), body.expires_in, now)
            })
            .await
    }

    /// `POST /oauth/invitation/start`: a passkey registration for the
    /// invited person. The link stays unspent until `finish`.
    pub async fn invitation_start(
        &self,
        body: StartInvited,
        remote: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<InvitedBegun> {
        let ctx = self.clone();
        let outcome = self
            .db
            .run(move |conn| invitation_start(conn, &ctx, &body.token, now))
            .await;
        self.settle(outcome, remote, now).await
    }

    /// `POST /oauth/invitation/finish`: the passkey is stored and the link
    /// spent, together; audited.
    pub async fn invitation_finish(
        &self,
        body: FinishInvited,
        remote: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<InvitationAccepted> {
        let (ctx, at) = (self.clone(), remote.clone());
        let outcome = self
            .db
            .run(move |conn| invitation_finish(conn, &ctx, &body, at.as_deref(), now))
            .await;
        self.settle(outcome, remote, now).await
    }

    /// A refusal is audited (after its transaction rolled back) and
    /// answered as [`UNUSABLE`], or as the passkey's own trouble.
    async fn settle<T>(
        &self,
        outcome: std::result::Result<T, Stop>,
        remote: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<T> {
        let refusal = match outcome {
            Ok(done) => return Ok(done),
            Err(Stop::Failed(e)) => return Err(e),
            Err(Stop::Refused(r)) => r,
        };
        let (principal_id, reason, answer) = match refusal {
            Refusal::Unusable => (
                None,
                "unknown, used or expired".to_string(),
                Error::Forbidden(UNUSABLE.into()),
            ),
            Refusal::NotInvitable { principal_id, why } => (Some(principal_id), why, Error::Forbidden(UNUSABLE.into())),
            Refusal::Passkey { principal_id, why } => {
                let answer = match &why {
                    Refused::UnknownCeremony => {
                        Error::BadRequest("the passkey registration expired (after 5 minutes): start again".into())
                    }
                    Refused::Invalid(_) | Refused::UnknownCredential => {
                        Error::BadRequest("the passkey could not be verified".into())
                    }
                };
                let reason = match why {
                    Refused::Invalid(w) => format!("the passkey could not be verified: {w}"),
                    Refused::UnknownCeremony => "unknown or expired passkey registration".into(),
                    Refused::UnknownCredential => "the passkey could not be verified".into(),
                };
                (Some(principal_id), reason, answer)
            }
        };
        // Folded like failed logins: a flood of made-up links from one
        // place costs one audit row a minute, not one per request.
        let failures = self.failures.clone();
        self.db
            .run(move |conn| {
                failures.record(
                    conn,
                    NewAuditEvent::new("invitation.refused", Outcome::Failed)
                        .principal(principal_id.as_deref())
                        .remote(remote.as_deref())
                        .reason(&reason),
                    now,
                )
            })
            .await?;
        Err(answer)
    }
}

fn invitation_start(
    conn: &mut DbConnection,
    ctx: &PrincipalsContext,
    token: &SecretString,
    now: DateTime<Utc>,
) -> std::result::Result<InvitedBegun, Stop> {
    ctx.passkeys.require()?;
    crate::db::transaction(conn, |conn| {
        let (_, person) = live(conn, &ctx.pepper, token, now)?;
        let Begun { ceremony, options } =
            passkeys::begin_registration(conn, &ctx.passkeys, &person, PASSKEY_NAME, Registrant::Invited, now)?;
        Ok(InvitedBegun {
            name: person.name,
            ceremony,
            options,
        })
    })
}

fn invitation_finish(
    conn: &mut DbConnection,
    ctx: &PrincipalsContext,
    body: &FinishInvited,
    remote: Option<&str>,
    now: DateTime<Utc>,
) -> std::result::Result<InvitationAccepted, Stop> {
    ctx.passkeys.require()?;
    crate::db::transaction(conn, |conn| {
        let (invitation, person) = live(conn, &ctx.pepper, &body.token, now)?;
        // First, so that of two answers to one link the second waits here
        // for the first, then finds the link spent.
        if !rows::spend(conn, &invitation.token_hash, now)? {
            return Err(Stop::Refused(Refusal::Unusable));
        }
        let done = passkeys::finish_registration(
            conn,
            &ctx.passkeys,
            &ctx.pepper,
            (&person.id, Registrant::Invited),
            &body.ceremony,
            &body.credential,
            now,
        )?;
        let confirmed = done.map_err(|why| {
            Stop::Refused(Refusal::Passkey {
                principal_id: person.id.clone(),
                why,
            })
        })?;
        let factor = confirmed.factor;
        audit::record_all(
            conn,
            &[
                (
                    NewAuditEvent::new("invitation.used", Outcome::Ok)
                        .actor(Some(&person.id))
                        .principal(Some(&person.id))
                        .remote(remote)
                        .details(serde_json::json!({"created_by": invitation.created_by})),
                    now,
                ),
                (
                    NewAuditEvent::new("factor.added", Outcome::Ok)
                        .actor(Some(&person.id))
                        .principal(Some(&person.id))
                        .remote(remote)
                        .details(serde_json::json!({
                            "factor_id": factor.id,
                            "kind": factor.kind,
                            "name": factor.name,
                            "via": "invitation",
                            "recovery_codes_issued": false,
                        })),
                    now,
                ),
            ],
        )?;
        Ok(InvitationAccepted {
            principal_id: person.id,
            name: person.name,
            factor: factor.into(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_lives_three_days_unless_told_between_five_minutes_and_thirty_days() {
        assert_eq!(lifetime(None).unwrap(), Duration::hours(72));
        assert_eq!(lifetime(Some(300)).unwrap(), Duration::minutes(5));
        assert_eq!(lifetime(Some(2_592_000)).unwrap(), Duration::days(30));
        assert!(lifetime(Some(299)).is_err());
        assert!(lifetime(Some(2_592_001)).is_err());
        assert!(lifetime(Some(-1)).is_err());
    }

    #[test]
    fn tokens_are_kept_by_keyed_hash() {
        let pepper = Pepper::from_bytes(&[7u8; 32]).unwrap();
        let other = Pepper::from_bytes(&[8u8; 32]).unwrap();
        let h = hash(&pepper, "token");
        assert_eq!(h.len(), 64);
        assert!(!h.contains("token"));
        assert_ne!(h, hash(&other, "token"));
        assert_ne!(h, hash(&pepper, "tokem"));
    }
}
