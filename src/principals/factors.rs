//! Second factors as people and admins manage them: a person lists,
//! enrols and removes their own (removal, and new recovery codes, after a
//! fresh second step); an admin reads a person's, sets their MFA policy,
//! and resets them, which ends the person's sessions and refresh tokens.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{PrincipalsContext, row};
use crate::auth::access::Caller;
use crate::auth::passkeys::{Begun, Refused, Registrant};
use crate::auth::second_factor::{self, ConfirmRefusal, Passed};
use crate::auth::secrets::{SecretString, serialize_exposed};
use crate::auth::throttle;
use crate::db::DbConnection;
use crate::error::{Error, Result};
use crate::models::audit::{self, NewAuditEvent, Outcome};
use crate::models::principal::{Principal, PrincipalKind};
use crate::models::second_factor::{self as rows, FactorKind, FactorRow, Mfa};
use crate::models::{login_session, refresh_token};

/// One factor as listed: never its secret.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FactorView {
    pub id: String,
    pub kind: FactorKind,
    pub name: String,
    /// False until its first code confirmed it; it does not count before.
    pub confirmed: bool,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<FactorRow> for FactorView {
    fn from(r: FactorRow) -> Self {
        Self {
            confirmed: r.confirmed(),
            id: r.id,
            kind: r.kind,
            name: r.name,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
        }
    }
}

/// A person's second factors and policy.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FactorsView {
    /// Their own setting.
    pub mfa: Mfa,
    /// Whether a second step is required of them, by their setting or the
    /// server's rule for admins.
    pub mfa_required: bool,
    pub factors: Vec<FactorView>,
    pub recovery_codes_left: i64,
}

/// `POST /api/v1/me/factors/totp`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartTotp {
    pub name: Option<String>,
}

/// A TOTP enrolment, answered once.
#[derive(Debug, Serialize)]
pub struct TotpStarted {
    pub id: String,
    #[serde(serialize_with = "serialize_exposed")]
    pub secret: SecretString,
    #[serde(serialize_with = "serialize_exposed")]
    pub otpauth_uri: SecretString,
}

/// `POST /api/v1/me/factors/totp/confirm`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmTotp {
    pub id: String,
    pub code: SecretString,
}

/// A confirmed factor, with the recovery codes when it was the first.
#[derive(Debug, Serialize)]
pub struct TotpConfirmed {
    pub factor: FactorView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes: Option<Vec<String>>,
}

/// `POST /api/v1/me/factors/passkeys/start`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartPasskey {
    pub name: Option<String>,
}

/// `POST /api/v1/me/factors/passkeys/finish`: the ceremony and the
/// browser's answer to `navigator.credentials.create`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinishPasskey {
    pub ceremony: String,
    pub credential: webauthn_rs::prelude::RegisterPublicKeyCredential,
}

/// A fresh second step, for removing a factor or new recovery codes: a
/// TOTP or recovery code, or a passkey's answer to a challenge of
/// `POST /api/v1/me/factors/passkeys/challenge` (for people whose only
/// factor is a passkey).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreshStep {
    pub code: Option<SecretString>,
    pub passkey: Option<PasskeyAnswer>,
}

/// A passkey's answer to a challenge: the ceremony, and the browser's
/// answer to `navigator.credentials.get`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasskeyAnswer {
    pub ceremony: String,
    pub credential: webauthn_rs::prelude::PublicKeyCredential,
}

/// New recovery codes, answered once.
#[derive(Debug, Serialize)]
pub struct RecoveryCodesView {
    pub recovery_codes: Vec<String>,
}

/// `PUT /api/v1/principals/{id}/mfa`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetMfa {
    pub mfa: Mfa,
}

/// What an admin's reset ended.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct FactorsReset {
    pub factors_removed: usize,
    pub sessions_ended: usize,
    pub refresh_tokens_revoked: usize,
}

/// The person behind `caller`'s own token: a human, acting for themselves.
fn own_person(caller: &Caller) -> Result<&Principal> {
    if caller.principal.kind != PrincipalKind::Human {
        return Err(Error::Forbidden("only people have second factors".into()));
    }
    if caller.claims.act.is_some() {
        return Err(Error::Forbidden(
            "a token exchanged by a service cannot manage its subject's factors".into(),
        ));
    }
    Ok(&caller.principal)
}

fn human(conn: &mut DbConnection, id: &str) -> Result<Principal> {
    let p = row(conn, id)?;
    if p.kind != PrincipalKind::Human {
        return Err(Error::invalid("id", "only people have second factors"));
    }
    Ok(p)
}

fn view(conn: &mut DbConnection, ctx: &PrincipalsContext, person: &Principal) -> Result<FactorsView> {
    Ok(FactorsView {
        mfa: rows::mfa_of(conn, &person.id)?,
        mfa_required: second_factor::required(conn, person, ctx.mfa)?,
        factors: rows::of(conn, &person.id)?.into_iter().map(FactorView::from).collect(),
        recovery_codes_left: rows::recovery_codes_left(conn, &person.id)?,
    })
}

/// A factor name as given: trimmed, not empty, at most 64 characters.
fn factor_name(name: Option<String>, default: &str) -> Result<String> {
    let name = name
        .map(|n| n.trim().to_string())
        .unwrap_or_else(|| default.to_string());
    if name.is_empty() || name.chars().count() > second_factor::MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "name",
            "a factor's name is 1 to 64 characters, without control characters",
        ));
    }
    Ok(name)
}

/// Check a fresh second step of `person`: throttled like a login, each
/// failure audited and counted. The code (or the passkey's challenge) is
/// spent when it passes.
fn fresh_step(
    conn: &mut DbConnection,
    ctx: &PrincipalsContext,
    person: &Principal,
    step: &FreshStep,
    remote: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    let keys = throttle::Keys::new(&ctx.pepper, &person.name, remote);
    let loaded = throttle::load(conn, &keys)?;
    if let Some(retry_after) = throttle::retry_after_secs(&loaded, now) {
        return Err(Error::Throttled { retry_after });
    }
    let passed = match (&step.code, &step.passkey) {
        (Some(code), None) => match second_factor::pass(conn, &ctx.pepper, &person.id, code.expose(), now)? {
            Some(Passed::RecoveryCode { left }) => {
                audit::record(
                    conn,
                    NewAuditEvent::new("recovery_code.used", Outcome::Ok)
                        .principal(Some(&person.id))
                        .remote(remote)
                        .details(serde_json::json!({"left": left, "via": "api"})),
                    now,
                )?;
                true
            }
            Some(Passed::Totp { .. }) => true,
            None => false,
        },
        (None, Some(answer)) => crate::db::transaction(conn, |conn| {
            crate::auth::passkeys::finish_authentication(
                conn,
                &ctx.passkeys,
                &answer.ceremony,
                &answer.credential,
                Some(&person.id),
                now,
            )
        })?
        .is_ok(),
        _ => {
            return Err(Error::invalid(
                "code",
                "give a fresh second step: a code, or a passkey's answer (not both)",
            ));
        }
    };
    if !passed {
        return Err(wrong_code(conn, ctx, person, &keys, remote, now));
    }
    throttle::record_success(conn, &keys, &loaded)?;
    Ok(())
}

/// Audit and count a wrong code; the error to answer.
fn wrong_code(
    conn: &mut DbConnection,
    ctx: &PrincipalsContext,
    person: &Principal,
    keys: &throttle::Keys,
    remote: Option<&str>,
    now: DateTime<Utc>,
) -> Error {
    let recorded = audit::record(
        conn,
        NewAuditEvent::new("login.second_factor", Outcome::Failed)
            .principal(Some(&person.id))
            .remote(remote)
            .reason("wrong second-factor code"),
        now,
    )
    .and_then(|()| throttle::record_failure(conn, keys, Some(&person.id), &ctx.throttle, now));
    match recorded {
        Ok(()) => Error::InvalidCode("the code is not valid: it may be mistyped, expired or already used".into()),
        Err(e) => e,
    }
}

impl PrincipalsContext {
    /// `GET /api/v1/me/factors`.
    pub async fn my_factors(&self, caller: &Caller) -> Result<FactorsView> {
        let person = own_person(caller)?.clone();
        let ctx = self.clone();
        self.db.run(move |conn| view(conn, &ctx, &person)).await
    }

    /// `POST /api/v1/me/factors/totp`: an unconfirmed TOTP factor.
    pub async fn start_totp(
        &self,
        caller: &Caller,
        body: StartTotp,
        issuer: String,
        now: DateTime<Utc>,
    ) -> Result<TotpStarted> {
        let person = own_person(caller)?.clone();
        let name = factor_name(body.name, "Authenticator app")?;
        let pepper = self.pepper.clone();
        self.db
            .run(move |conn| {
                let e = second_factor::begin_totp(
                    conn,
                    &pepper,
                    &person,
                    &name,
                    &second_factor::issuer_label(&issuer),
                    now,
                )?;
                Ok(TotpStarted {
                    id: e.id,
                    secret: e.secret,
                    otpauth_uri: e.otpauth_uri,
                })
            })
            .await
    }

    /// `POST /api/v1/me/factors/totp/confirm`: the enrolment counts once
    /// its first code is right; the first factor brings recovery codes.
    pub async fn confirm_totp(
        &self,
        caller: &Caller,
        body: ConfirmTotp,
        remote: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<TotpConfirmed> {
        let person = own_person(caller)?.clone();
        let ctx = self.clone();
        self.db
            .run(move |conn| confirm_totp(conn, &ctx, &person, body, remote.as_deref(), now))
            .await
    }

    /// `POST /api/v1/me/factors/passkeys/start`: a WebAuthn registration
    /// challenge for `navigator.credentials.create`.
    pub async fn start_passkey(&self, caller: &Caller, body: StartPasskey, now: DateTime<Utc>) -> Result<Begun> {
        let person = own_person(caller)?.clone();
        let name = factor_name(body.name, "Passkey")?;
        let passkeys = self.passkeys.clone();
        self.db
            .run(move |conn| {
                crate::auth::passkeys::begin_registration(conn, &passkeys, &person, &name, Registrant::Own, now)
            })
            .await
    }

    /// `POST /api/v1/me/factors/passkeys/challenge`: a challenge for one of
    /// the person's passkeys, whose answer is a fresh second step.
    pub async fn passkey_challenge(&self, caller: &Caller, now: DateTime<Utc>) -> Result<Begun> {
        let person = own_person(caller)?.clone();
        let passkeys = self.passkeys.clone();
        self.db
            .run(move |conn| crate::auth::passkeys::begin_authentication(conn, &passkeys, Some(&person), now))
            .await
    }

    /// `POST /api/v1/me/factors/passkeys/finish`: the passkey is stored
    /// confirmed; the first factor brings recovery codes.
    pub async fn finish_passkey(
        &self,
        caller: &Caller,
        body: FinishPasskey,
        remote: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<TotpConfirmed> {
        let person = own_person(caller)?.clone();
        let ctx = self.clone();
        self.db
            .run(move |conn| {
                crate::db::transaction(conn, |conn| {
                    let done = crate::auth::passkeys::finish_registration(
                        conn,
                        &ctx.passkeys,
                        &ctx.pepper,
                        (&person.id, Registrant::Own),
                        &body.ceremony,
                        &body.credential,
                        now,
                    )?;
                    let c = match done {
                        Ok(c) => c,
                        Err(Refused::UnknownCeremony) => {
                            return Err(Error::NotFound(format!(
                                "passkey registration {} (they expire after 5 minutes)",
                                body.ceremony
                            )));
                        }
                        Err(Refused::Invalid(why)) => {
                            return Err(Error::BadRequest(format!("the passkey could not be verified: {why}")));
                        }
                        Err(Refused::UnknownCredential) => {
                            return Err(Error::BadRequest("the passkey could not be verified".into()));
                        }
                    };
                    audit::record(
                        conn,
                        NewAuditEvent::new("factor.added", Outcome::Ok)
                            .actor(Some(&person.id))
                            .principal(Some(&person.id))
                            .remote(remote.as_deref())
                            .details(serde_json::json!({
                                "factor_id": c.factor.id,
                                "kind": c.factor.kind,
                                "name": c.factor.name,
                                "via": "api",
                                "recovery_codes_issued": c.recovery_codes.is_some(),
                            })),
                        now,
                    )?;
                    Ok(TotpConfirmed {
                        factor: c.factor.into(),
                        recovery_codes: c
                            .recovery_codes
                            .map(|codes| codes.iter().map(|c| c.expose().to_string()).collect()),
                    })
                })
            })
            .await
    }

    /// `DELETE /api/v1/me/factors/{id}`, after a fresh second step.
    pub async fn delete_my_factor(
        &self,
        caller: &Caller,
        id: String,
        body: FreshStep,
        remote: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let person = own_person(caller)?.clone();
        let ctx = self.clone();
        self.db
            .run(move |conn| delete_my_factor(conn, &ctx, &person, &id, &body, remote.as_deref(), now))
            .await
    }

    /// `POST /api/v1/me/factors/recovery-codes`: ten new codes, after a
    /// fresh second step; the old ones stop working.
    pub async fn new_recovery_codes(
        &self,
        caller: &Caller,
        body: FreshStep,
        remote: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<RecoveryCodesView> {
        let person = own_person(caller)?.clone();
        let ctx = self.clone();
        self.db
            .run(move |conn| new_recovery_codes(conn, &ctx, &person, &body, remote.as_deref(), now))
            .await
    }

    /// `GET /api/v1/principals/{id}/factors` (admins).
    pub async fn factors_of(&self, id: String) -> Result<FactorsView> {
        let ctx = self.clone();
        self.db
            .run(move |conn| {
                let person = human(conn, &id)?;
                view(conn, &ctx, &person)
            })
            .await
    }

    /// `PUT /api/v1/principals/{id}/mfa` (admins).
    pub async fn set_mfa(
        &self,
        actor: Option<&str>,
        id: String,
        body: SetMfa,
        now: DateTime<Utc>,
    ) -> Result<FactorsView> {
        let (ctx, actor) = (self.clone(), actor.map(str::to_string));
        self.db
            .run(move |conn| set_mfa(conn, &ctx, actor.as_deref(), &id, body.mfa, now))
            .await
    }

    /// `DELETE /api/v1/principals/{id}/factors` (admins): remove every
    /// factor and recovery code, and end the person's sessions and refresh
    /// tokens. Also the CLI's `roster principal reset-factors`.
    pub async fn reset_factors(&self, actor: Option<&str>, id: String, now: DateTime<Utc>) -> Result<FactorsReset> {
        let actor = actor.map(str::to_string);
        let result = self
            .db
            .run(move |conn| reset_factors(conn, actor.as_deref(), &id, now))
            .await;
        self.changed(now).await;
        result
    }
}

fn confirm_totp(
    conn: &mut DbConnection,
    ctx: &PrincipalsContext,
    person: &Principal,
    body: ConfirmTotp,
    remote: Option<&str>,
    now: DateTime<Utc>,
) -> Result<TotpConfirmed> {
    let keys = throttle::Keys::new(&ctx.pepper, &person.name, remote);
    let loaded = throttle::load(conn, &keys)?;
    if let Some(retry_after) = throttle::retry_after_secs(&loaded, now) {
        return Err(Error::Throttled { retry_after });
    }
    let confirmed = crate::db::transaction(conn, |conn| {
        let confirmed =
            match second_factor::confirm_totp(conn, &ctx.pepper, &person.id, &body.id, body.code.expose(), now)? {
                Ok(c) => c,
                Err(refusal) => return Ok::<_, Error>(Err(refusal)),
            };
        audit::record(
            conn,
            NewAuditEvent::new("factor.added", Outcome::Ok)
                .actor(Some(&person.id))
                .principal(Some(&person.id))
                .remote(remote)
                .details(serde_json::json!({
                    "factor_id": confirmed.factor.id,
                    "kind": confirmed.factor.kind,
                    "name": confirmed.factor.name,
                    "via": "api",
                    "recovery_codes_issued": confirmed.recovery_codes.is_some(),
                })),
            now,
        )?;
        throttle::record_success(conn, &keys, &loaded)?;
        Ok(Ok(confirmed))
    })?;
    match confirmed {
        Ok(c) => Ok(TotpConfirmed {
            factor: c.factor.into(),
            recovery_codes: c
                .recovery_codes
                .map(|codes| codes.iter().map(|c| c.expose().to_string()).collect()),
        }),
        Err(ConfirmRefusal::Unknown) => Err(Error::NotFound(format!(
            "unconfirmed TOTP enrolment {} (enrolments expire after 15 minutes)",
            body.id
        ))),
        Err(ConfirmRefusal::WrongCode) => Err(wrong_code(conn, ctx, person, &keys, remote, now)),
    }
}

fn delete_my_factor(
    conn: &mut DbConnection,
    ctx: &PrincipalsContext,
    person: &Principal,
    id: &str,
    body: &FreshStep,
    remote: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    let target = rows::find(conn, &person.id, id)?.ok_or_else(|| Error::NotFound(format!("factor {id}")))?;
    if target.confirmed() {
        fresh_step(conn, ctx, person, body, remote, now)?;
    }
    crate::db::transaction(conn, |conn| {
        let others = rows::of(conn, &person.id)?
            .into_iter()
            .filter(|f| f.confirmed() && f.id != id)
            .count();
        if target.confirmed() && others == 0 && second_factor::required(conn, person, ctx.mfa)? {
            return Err(Error::Conflict(
                "a second factor is required of you: add another before removing the last one".into(),
            ));
        }
        if !rows::delete(conn, &person.id, id)? {
            return Err(Error::NotFound(format!("factor {id}")));
        }
        if others == 0 {
            // No factor left: the recovery codes stood in for one.
            rows::replace_recovery_codes(conn, &person.id, &[], now)?;
        }
        audit::record(
            conn,
            NewAuditEvent::new("factor.removed", Outcome::Ok)
                .actor(Some(&person.id))
                .principal(Some(&person.id))
                .remote(remote)
                .details(serde_json::json!({"factor_id": id, "kind": target.kind, "name": target.name})),
            now,
        )
    })
}

fn new_recovery_codes(
    conn: &mut DbConnection,
    ctx: &PrincipalsContext,
    person: &Principal,
    body: &FreshStep,
    remote: Option<&str>,
    now: DateTime<Utc>,
) -> Result<RecoveryCodesView> {
    if !rows::has_confirmed(conn, &person.id)? {
        return Err(Error::Conflict(
            "recovery codes stand in for a second factor: add one first".into(),
        ));
    }
    fresh_step(conn, ctx, person, body, remote, now)?;
    crate::db::transaction(conn, |conn| {
        let codes = second_factor::new_recovery_codes(conn, &ctx.pepper, &person.id, now)?;
        audit::record(
            conn,
            NewAuditEvent::new("recovery_codes.regenerated", Outcome::Ok)
                .actor(Some(&person.id))
                .principal(Some(&person.id))
                .remote(remote),
            now,
        )?;
        Ok(RecoveryCodesView {
            recovery_codes: codes.iter().map(|c| c.expose().to_string()).collect(),
        })
    })
}

fn set_mfa(
    conn: &mut DbConnection,
    ctx: &PrincipalsContext,
    actor: Option<&str>,
    id: &str,
    mfa: Mfa,
    now: DateTime<Utc>,
) -> Result<FactorsView> {
    crate::db::transaction(conn, |conn| {
        let person = human(conn, id)?;
        let before = rows::mfa_of(conn, id)?;
        rows::set_mfa(conn, id, mfa, now)?;
        if before != mfa {
            audit::record(
                conn,
                NewAuditEvent::new("mfa.changed", Outcome::Ok)
                    .actor(actor)
                    .principal(Some(id))
                    .details(serde_json::json!({"from": before, "to": mfa})),
                now,
            )?;
        }
        view(conn, ctx, &person)
    })
}

fn reset_factors(conn: &mut DbConnection, actor: Option<&str>, id: &str, now: DateTime<Utc>) -> Result<FactorsReset> {
    crate::db::transaction(conn, |conn| {
        human(conn, id)?;
        let factors_removed = rows::delete_all(conn, id)?;
        let sessions_ended = login_session::end_all_for_principal(conn, id, now)?.len();
        let refresh_tokens_revoked = refresh_token::revoke_all_for_principal(conn, id, now)?;
        let reset = FactorsReset {
            factors_removed,
            sessions_ended,
            refresh_tokens_revoked,
        };
        audit::record(
            conn,
            NewAuditEvent::new("factors.reset", Outcome::Ok)
                .actor(actor)
                .principal(Some(id))
                .details(serde_json::json!(reset)),
            now,
        )?;
        Ok(reset)
    })
}
