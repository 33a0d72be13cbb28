//! The second step of a browser login: after the password, or stepping up
//! a live session that `acr_values=mfa` or the person's policy finds
//! short. The person types a TOTP code or a recovery code, or, when their
//! policy requires a second factor they do not have, enrols a TOTP factor
//! on the spot. Failures are audited and count toward the same throttle as
//! passwords.

use chrono::{DateTime, Utc};

use super::OAuthContext;
use super::authorize::{AuthorizationRequest, AuthorizeError, LoginForm, LoginProblem, LoginStep, answer, check};
use super::request::FormParams;
use super::session::{self, LiveSession};
use super::step::{StepKind, StepPage, StepProblem};
use crate::auth::amr::Method;
use crate::auth::second_factor::{self, Passed};
use crate::auth::secrets::SecretString;
use crate::auth::throttle;
use crate::db::DbConnection;
use crate::error::Error;
use crate::models::audit::{self, NewAuditEvent, Outcome};

/// The form of the second-step page.
#[derive(Debug)]
pub struct StepForm {
    pub params: FormParams,
    pub csrf_ok: bool,
    pub session_token: Option<SecretString>,
    pub code: Option<String>,
    /// The TOTP enrolment being confirmed, if the page showed one.
    pub enrolment: Option<String>,
}

/// What a code proved.
enum Proof {
    Passed(Passed),
    Enrolled(second_factor::Confirmed),
}

impl OAuthContext {
    /// `POST /oauth/login/second`: the second-step page's form.
    pub async fn second_step(
        &self,
        form: StepForm,
        remote: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<LoginStep, AuthorizeError> {
        let oauth = self.clone();
        self.db
            .run(move |conn| second_step(conn, &oauth, form, remote.as_deref(), now))
            .await
    }
}

fn expired(request: AuthorizationRequest) -> LoginStep {
    LoginStep::Retry(Box::new(LoginForm {
        request,
        username: None,
        problem: Some(LoginProblem::Expired),
    }))
}

fn second_step(
    conn: &mut DbConnection,
    oauth: &OAuthContext,
    form: StepForm,
    remote: Option<&str>,
    now: DateTime<Utc>,
) -> Result<LoginStep, AuthorizeError> {
    let request = check(conn, oauth.issuer(), &form.params)?;
    let live = match &form.session_token {
        Some(t) => session::for_second_step(conn, &oauth.pepper, t, &oauth.sessions, now)?,
        None => None,
    };
    let Some(live) = live else {
        return Ok(expired(request));
    };
    let again = |conn: &mut DbConnection, request, problem| -> Result<LoginStep, AuthorizeError> {
        let kind = match &form.enrolment {
            Some(id) => match second_factor::reopen_totp(
                conn,
                &oauth.pepper,
                &live.person,
                id,
                &second_factor::issuer_label(oauth.issuer()),
                now,
            )? {
                Some(e) => StepKind::Enrol(e),
                None => return Ok(expired(request)),
            },
            None => StepKind::Code,
        };
        let mut page = StepPage::new(request, &live.person, kind);
        page.problem = Some(problem);
        Ok(LoginStep::SecondStep {
            page: Box::new(page),
            session_token: None,
        })
    };
    if !form.csrf_ok {
        return again(conn, request, StepProblem::Csrf);
    }
    let keys = throttle::Keys::new(&oauth.pepper, &live.person.name, remote);
    let rows = throttle::load(conn, &keys)?;
    if let Some(retry_after) = throttle::retry_after_secs(&rows, now) {
        oauth.failures.record(
            conn,
            NewAuditEvent::new("login.throttled", Outcome::Failed)
                .principal(Some(&live.person.id))
                .remote(remote)
                .reason("too many failed logins")
                .details(serde_json::json!({"retry_after": retry_after, "step": "second_factor"})),
            now,
        )?;
        return again(conn, request, StepProblem::Throttled { retry_after });
    }
    let code = form.code.as_deref().unwrap_or("");
    let outcome = crate::db::transaction(conn, |conn| {
        let proof = match &form.enrolment {
            Some(id) => second_factor::confirm_totp(conn, &oauth.pepper, &live.person.id, id, code, now)?
                .ok()
                .map(Proof::Enrolled),
            None => second_factor::pass(conn, &oauth.pepper, &live.person.id, code, now)?.map(Proof::Passed),
        };
        let Some(proof) = proof else {
            return Ok::<_, AuthorizeError>(None);
        };
        let Some(done) = session::complete(conn, &live, &[Method::Otp], &oauth.sessions, now)? else {
            return Ok(None);
        };
        throttle::record_success(conn, &keys, &rows)?;
        record_proof(conn, &live, &proof, remote, now)?;
        if let Proof::Enrolled(second_factor::Confirmed {
            recovery_codes: Some(codes),
            ..
        }) = proof
        {
            // Shown before the code is issued: the person may take longer
            // to keep them than a code lives. Going on is single sign-on.
            return Ok(Some(LoginStep::RecoveryCodes {
                codes,
                continue_to: request.authorize_url(),
            }));
        }
        let redirect = answer(conn, oauth, &request, &done, "login.browser", remote, now)?;
        Ok(Some(LoginStep::Done {
            redirect,
            session_token: form.session_token.clone().unwrap_or_else(|| SecretString::new("")),
        }))
    })?;
    if let Some(step) = outcome {
        return Ok(step);
    }
    oauth.failures.record(
        conn,
        NewAuditEvent::new("login.second_factor", Outcome::Failed)
            .principal(Some(&live.person.id))
            .remote(remote)
            .reason("wrong second-factor code"),
        now,
    )?;
    throttle::record_failure(conn, &keys, Some(&live.person.id), &oauth.throttle, now)?;
    again(conn, request, StepProblem::WrongCode)
}

/// Audit a passed second step: how, and what it spent or added.
fn record_proof(
    conn: &mut DbConnection,
    live: &LiveSession,
    proof: &Proof,
    remote: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let event = |t| {
        NewAuditEvent::new(t, Outcome::Ok)
            .principal(Some(&live.person.id))
            .remote(remote)
    };
    let (method, details) = match proof {
        Proof::Passed(Passed::Totp { id }) => ("totp", serde_json::json!({"factor_id": id})),
        Proof::Passed(Passed::RecoveryCode { left }) => {
            audit::record(
                conn,
                event("recovery_code.used").details(serde_json::json!({"left": left, "via": "login"})),
                now,
            )?;
            ("recovery_code", serde_json::json!({"recovery_codes_left": left}))
        }
        Proof::Enrolled(c) => {
            audit::record(
                conn,
                event("factor.added").details(serde_json::json!({
                    "factor_id": c.factor.id,
                    "kind": c.factor.kind,
                    "name": c.factor.name,
                    "via": "login",
                })),
                now,
            )?;
            ("totp", serde_json::json!({"factor_id": c.factor.id}))
        }
    };
    let mut details = details;
    details["method"] = method.into();
    details["session_id"] = live.row.id.clone().into();
    details["step_up"] = (live.pending().is_none()).into();
    audit::record(conn, event("login.second_factor").details(details), now)
}
