//! Passkeys on the login page: "sign in with a passkey" (a discoverable
//! credential, no username typed), and a passkey as the second step after a
//! password. The page's script asks for a challenge, the browser asks the
//! authenticator, and the answer comes back as a form with the carried
//! authorization request, so that the browser follows the redirect itself.

use crate::auth::source_budget::Creation;
use chrono::{DateTime, Utc};
use webauthn_rs::prelude::PublicKeyCredential;

use super::OAuthContext;
use super::authorize::{AuthorizeError, LoginStep, answer, check};
use super::request::FormParams;
use super::session;
use super::step::{StepKind, StepPage, StepProblem};
use crate::auth::amr::{Amr, Level};
use crate::auth::passkeys::{self, Begun, Refused};
use crate::auth::second_factor::{self, Due};
use crate::auth::secrets::SecretString;
use crate::db::DbConnection;
use crate::error::Error;
use crate::models::audit::{self, NewAuditEvent, Outcome};
use crate::models::principal::{self, Principal};

/// A passkey login's form.
#[derive(Debug)]
pub struct PasskeyForm {
    pub params: FormParams,
    pub csrf_ok: bool,
    pub session_token: Option<SecretString>,
    pub ceremony: String,
    /// The authenticator's answer, as JSON.
    pub credential: String,
}

impl OAuthContext {
    /// `POST /oauth/passkey/start`: a challenge for the person waiting for
    /// their second step (`second`), or for anyone (`discoverable`).
    pub async fn passkey_start(
        &self,
        second: bool,
        csrf_ok: bool,
        session_token: Option<SecretString>,
        remote: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Begun, Error> {
        if !csrf_ok {
            return Err(Error::Forbidden(
                "the form did not come from this browser's page".into(),
            ));
        }
        // Each challenge is a row: a budget per source bounds a flood of clicks.
        if let Some(retry_after) = self.budget.spend(Creation::PasskeyChallenge, remote.as_deref(), now) {
            return Err(Error::Throttled { retry_after });
        }
        let oauth = self.clone();
        self.db
            .run(move |conn| {
                let person = if second {
                    let token = session_token.ok_or_else(|| Error::Unauthorized("no login is under way".into()))?;
                    let live = session::for_second_step(conn, &oauth.pepper, &token, &oauth.sessions, now)?
                        .ok_or_else(|| Error::Unauthorized("the login expired: log in again".into()))?;
                    Some(live.person)
                } else {
                    None
                };
                passkeys::begin_authentication(conn, &oauth.passkeys, person.as_ref(), now)
            })
            .await
    }

    /// `POST /oauth/passkey/finish`: the authenticator's answer.
    pub async fn passkey_finish(
        &self,
        form: PasskeyForm,
        remote: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<LoginStep, AuthorizeError> {
        let oauth = self.clone();
        self.db
            .run(move |conn| passkey_finish(conn, &oauth, form, remote.as_deref(), now))
            .await
    }
}

/// The second-step page again, or the login page, with `problem`.
fn again(
    request: super::authorize::AuthorizationRequest,
    person: Option<&Principal>,
    problem: StepProblem,
) -> Result<LoginStep, AuthorizeError> {
    Ok(match person {
        Some(p) => {
            let mut page = StepPage::new(request, p, StepKind::Code);
            page.problem = Some(problem);
            LoginStep::SecondStep {
                page: Box::new(page),
                session_token: None,
            }
        }
        None => LoginStep::Retry(Box::new(super::authorize::LoginForm {
            request,
            username: None,
            problem: Some(match problem {
                StepProblem::Csrf => super::authorize::LoginProblem::Csrf,
                StepProblem::Throttled { retry_after } => super::authorize::LoginProblem::Throttled { retry_after },
                StepProblem::WrongCode => super::authorize::LoginProblem::PasskeyRefused,
            }),
        })),
    })
}

fn passkey_finish(
    conn: &mut DbConnection,
    oauth: &OAuthContext,
    form: PasskeyForm,
    remote: Option<&str>,
    now: DateTime<Utc>,
) -> Result<LoginStep, AuthorizeError> {
    let request = check(conn, oauth.issuer(), &form.params)?;
    // A second step when a login is under way in this browser, unless the
    // button was "Sign in with a passkey": that is a new login, whoever
    // half-logged in here before (the ceremony says which it was).
    let waiting = match &form.session_token {
        Some(t) if !passkeys::is_discoverable(conn, &form.ceremony)? => {
            session::for_second_step(conn, &oauth.pepper, t, &oauth.sessions, now)?
                .filter(|s| s.pending().is_some() || s.amr().level() < Level::Multi)
        }
        _ => None,
    };
    let person = waiting.as_ref().map(|s| s.person.clone());
    if !form.csrf_ok {
        return again(request, person.as_ref(), StepProblem::Csrf);
    }
    let refused = |conn: &mut DbConnection, why: String, whose: Option<&str>| -> Result<(), Error> {
        oauth.failures.record(
            conn,
            NewAuditEvent::new("login.passkey", Outcome::Failed)
                .principal(whose)
                .remote(remote)
                .reason(&why),
            now,
        )
    };
    let credential: PublicKeyCredential = match serde_json::from_str(&form.credential) {
        Ok(c) => c,
        Err(_) => {
            refused(
                conn,
                "a malformed passkey answer".into(),
                person.as_ref().map(|p| p.id.as_str()),
            )?;
            return again(request, person.as_ref(), StepProblem::WrongCode);
        }
    };
    let verified = crate::db::transaction(conn, |conn| {
        passkeys::finish_authentication(
            conn,
            &oauth.passkeys,
            &form.ceremony,
            &credential,
            person.as_ref().map(|p| p.id.as_str()),
            now,
        )
    })?;
    let verified = match verified {
        Ok(v) => v,
        Err(r) => {
            let why = match r {
                Refused::UnknownCeremony => "no such passkey challenge (used, expired or another person's)".to_string(),
                Refused::UnknownCredential => "a passkey registered to nobody here".to_string(),
                Refused::Invalid(e) => format!("the passkey's answer did not verify: {e}"),
            };
            refused(conn, why, person.as_ref().map(|p| p.id.as_str()))?;
            return again(request, person.as_ref(), StepProblem::WrongCode);
        }
    };
    crate::db::transaction(conn, |conn| {
        let (live, fresh) = match &waiting {
            Some(s) => {
                let done = session::complete(conn, s, &verified.methods, &oauth.sessions, now)?
                    .ok_or_else(|| Error::Unauthorized("the login expired".into()))?;
                (done, None)
            }
            None => {
                let user = principal::find_by_id(conn, &verified.principal_id)?
                    .filter(|p| p.is_active() && p.kind == principal::PrincipalKind::Human)
                    .ok_or_else(|| Error::Unauthorized("this passkey's person cannot log in".into()))?;
                let amr = Amr::default().with(&verified.methods);
                // A passkey without user verification is one factor: not
                // enough for a person whose second step is due.
                let due = second_factor::due(conn, &user, oauth.mfa, request.level() == Level::Multi)?;
                if due != Due::Nothing && amr.level() < Level::Multi {
                    return Err(AuthorizeError::Page(
                        "This passkey did not verify you (no PIN or biometric): log in with your password.".into(),
                    ));
                }
                let (token, live) = session::start(conn, &oauth.pepper, &user, &oauth.sessions, (&amr, None), now)?;
                (live, Some(token))
            }
        };
        audit::record(
            conn,
            NewAuditEvent::new("login.passkey", Outcome::Ok)
                .principal(Some(&live.person.id))
                .remote(remote)
                .details(serde_json::json!({
                    "factor_id": verified.factor_id,
                    "session_id": live.row.id,
                    "second_step": waiting.is_some(),
                })),
            now,
        )?;
        let redirect = answer(conn, oauth, &request, &live, "login.browser", remote, now)?;
        let session_token = fresh
            .or_else(|| form.session_token.clone())
            .unwrap_or_else(|| SecretString::new(""));
        Ok(LoginStep::Done {
            redirect,
            session_token,
        })
    })
}
