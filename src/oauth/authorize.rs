//! The authorization endpoint (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2):
//! check the request, then either answer with a code at once (a live
//! session: single sign-on) or ask the person to log in on Roster's page.

use chrono::{DateTime, Utc};

use super::client_auth::login_client;
use super::error::OAuthError;
use super::request::FormParams;
use super::session::{self, LiveSession};
use super::step::{self, StepPage};
use super::{OAuthContext, code, person, pkce};
use crate::auth::amr::{Amr, Level};
use crate::auth::second_factor::{self, Due};
use crate::auth::secrets::SecretString;
use crate::db::DbConnection;
use crate::error::Error;
use crate::models::audit::{self, NewAuditEvent, Outcome};
use crate::models::login_session::Pending;
use crate::models::principal;
use crate::names::Scopes;

/// Longest `state` and `nonce` accepted, in bytes.
pub const MAX_STATE_LEN: usize = 1024;
pub const MAX_NONCE_LEN: usize = 255;

/// The error codes of a refused authorization request sent back to the
/// client (RFC 6749 §4.1.2.1; `login_required`, `request_not_supported` and
/// `request_uri_not_supported` are OpenID Connect Core §3.1.2.6). The ones Roster answers; a closed set, as the token
/// endpoint's [`super::error::ErrorCode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizeErrorCode {
    InvalidRequest,
    UnsupportedResponseType,
    InvalidScope,
    LoginRequired,
    RequestNotSupported,
    RequestUriNotSupported,
}

impl AuthorizeErrorCode {
    /// The code as it goes on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::LoginRequired => "login_required",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
        }
    }
}

/// How a refused authorization request is answered (§4.1.2.1).
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    /// The client or the redirect URI cannot be trusted: shown to the person
    /// on a page, never redirected.
    #[error("{0}")]
    Page(String),
    /// Sent to the client at its redirect URI (a URL with `error`, `state`, `iss`).
    #[error("redirected with an error")]
    Redirect(String),
    /// Storage or an internal step failed.
    #[error(transparent)]
    Server(#[from] Error),
}

impl From<crate::db::PoolError> for AuthorizeError {
    fn from(e: crate::db::PoolError) -> Self {
        Self::Server(e.into())
    }
}

impl crate::db::HasFault for AuthorizeError {
    fn fault(&self) -> Option<crate::db::Fault> {
        match self {
            Self::Server(e) => e.fault(),
            Self::Page(_) | Self::Redirect(_) => None,
        }
    }
}

impl From<diesel::result::Error> for AuthorizeError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Server(e.into())
    }
}

pub use super::authorization_request::{AuthorizationRequest, Prompt};

/// `redirect_uri` with `params` added to its query (§4.1.2), plus `iss` (RFC 9207 §2).
pub fn redirect_url(redirect_uri: &str, issuer: &str, params: &[(&str, &str)]) -> Result<String, Error> {
    let mut url = url::Url::parse(redirect_uri).map_err(|_| Error::internal("stored redirect_uri is not a URL"))?;
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
        q.append_pair("iss", issuer);
    }
    Ok(url.to_string())
}

/// An error for the client (§4.1.2.1), at its redirect URI.
fn client_error(
    issuer: &str,
    redirect_uri: &str,
    state: Option<&str>,
    error: AuthorizeErrorCode,
    description: &str,
) -> AuthorizeError {
    let mut params = vec![("error", error.as_str()), ("error_description", description)];
    if let Some(s) = state {
        params.push(("state", s));
    }
    match redirect_url(redirect_uri, issuer, &params) {
        Ok(url) => AuthorizeError::Redirect(url),
        Err(e) => AuthorizeError::Server(e),
    }
}

/// Check `params` as an authorization request. The client and the redirect
/// URI first: until both are known good, every error is a page.
pub fn check(
    conn: &mut DbConnection,
    issuer: &str,
    params: &FormParams,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let client_id = params
        .get("client_id")
        .ok_or_else(|| AuthorizeError::Page("The request names no client (client_id is missing).".into()))?;
    let unknown = || AuthorizeError::Page("The application that sent you here is not registered for login.".into());
    let (client, settings) = login_client(conn, client_id)?.ok_or_else(unknown)?;
    let redirect_uri = params.get("redirect_uri").ok_or_else(|| {
        AuthorizeError::Page("The request has no redirect_uri, so there is nowhere to send you back.".into())
    })?;
    // §3.1.2.3, RFC 9700 §4.1.3: exact string match, no prefix or pattern.
    if !settings.redirect_uris.iter().any(|r| r == redirect_uri) {
        return Err(AuthorizeError::Page(
            "The address this application asked to send you back to is not registered for it.".into(),
        ));
    }
    let state = params.get("state");
    let fail = |error: AuthorizeErrorCode, description: &str| {
        let state = state.filter(|s| s.len() <= MAX_STATE_LEN);
        client_error(issuer, redirect_uri, state, error, description)
    };
    if state.is_some_and(|s| s.len() > MAX_STATE_LEN) {
        return Err(fail(AuthorizeErrorCode::InvalidRequest, "state is too long"));
    }
    if params.get("request").is_some() {
        return Err(fail(
            AuthorizeErrorCode::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if params.get("request_uri").is_some() {
        return Err(fail(
            AuthorizeErrorCode::RequestUriNotSupported,
            "request_uri is not supported",
        ));
    }
    match params.get("response_type") {
        Some("code") => {}
        None => return Err(fail(AuthorizeErrorCode::InvalidRequest, "response_type is missing")),
        Some(_) => {
            return Err(fail(
                AuthorizeErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ));
        }
    }
    if params.get("response_mode").is_some_and(|m| m != "query") {
        return Err(fail(
            AuthorizeErrorCode::InvalidRequest,
            "only response_mode=query is supported",
        ));
    }
    // RFC 7636 §4.4.1, RFC 9700 §2.1.1: PKCE with S256, for every client.
    let code_challenge = params.get("code_challenge").ok_or_else(|| {
        fail(
            AuthorizeErrorCode::InvalidRequest,
            "PKCE is required: send code_challenge and code_challenge_method=S256",
        )
    })?;
    match params.get("code_challenge_method") {
        Some("S256") => {}
        None | Some("plain") => {
            return Err(fail(
                AuthorizeErrorCode::InvalidRequest,
                "code_challenge_method must be S256 (plain is not accepted)",
            ));
        }
        Some(_) => {
            return Err(fail(
                AuthorizeErrorCode::InvalidRequest,
                "code_challenge_method must be S256",
            ));
        }
    }
    if !pkce::valid_challenge(code_challenge) {
        return Err(fail(
            AuthorizeErrorCode::InvalidRequest,
            "code_challenge is not an S256 challenge",
        ));
    }
    let scope = Scopes::parse(params.get("scope").unwrap_or(""))
        .map_err(|_| fail(AuthorizeErrorCode::InvalidScope, "the scope is malformed"))?;
    let nonce = params.get("nonce");
    if nonce.is_some_and(|n| n.len() > MAX_NONCE_LEN) {
        return Err(fail(AuthorizeErrorCode::InvalidRequest, "nonce is too long"));
    }
    let prompt = parse_prompt(params.get("prompt")).map_err(|d| fail(AuthorizeErrorCode::InvalidRequest, d))?;
    let max_age = match params.get("max_age") {
        None => None,
        Some(v) => Some(v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            fail(
                AuthorizeErrorCode::InvalidRequest,
                "max_age must be a number of seconds",
            )
        })?),
    };
    let acr_values = params.get("acr_values");
    if acr_values.is_some_and(|a| a.len() > MAX_NONCE_LEN) {
        return Err(fail(AuthorizeErrorCode::InvalidRequest, "acr_values is too long"));
    }
    let client_display = client
        .display_name
        .filter(|d| !d.trim().is_empty())
        .unwrap_or_else(|| client.name.clone());
    Ok(AuthorizationRequest {
        client_id: client.name,
        client_display,
        redirect_uri: redirect_uri.to_string(),
        state: state.map(str::to_string),
        scope,
        nonce: nonce.map(str::to_string),
        code_challenge: code_challenge.to_string(),
        prompt,
        max_age,
        acr_values: acr_values.map(str::to_string),
    })
}

/// §3.1.2.1: a space-separated list; `none` stands alone. `consent` and
/// `select_account` are accepted and change nothing: frontends are
/// first-party, and a browser holds one session.
fn parse_prompt(value: Option<&str>) -> Result<Prompt, &'static str> {
    let values: Vec<&str> = value.unwrap_or("").split(' ').filter(|s| !s.is_empty()).collect();
    if values
        .iter()
        .any(|v| !matches!(*v, "none" | "login" | "consent" | "select_account"))
    {
        return Err("prompt must be none, login, consent or select_account");
    }
    if values.contains(&"none") {
        return if values.len() == 1 {
            Ok(Prompt::None)
        } else {
            Err("prompt=none cannot be combined with other values")
        };
    }
    Ok(if values.contains(&"login") {
        Prompt::Login
    } else {
        Prompt::Default
    })
}

/// Does a live session answer `request` without a new login?
fn session_suffices(request: &AuthorizationRequest, session: &LiveSession, now: DateTime<Utc>) -> bool {
    if request.prompt == Prompt::Login {
        return false;
    }
    match request.max_age {
        Some(max_age) => (now - session.auth_time()).num_seconds() <= max_age,
        None => true,
    }
}

/// The scopes a code carries: those asked for that the person holds, and the
/// OpenID scopes (asked scopes the person lacks are dropped, not refused).
fn granted_scopes(
    conn: &mut DbConnection,
    request: &AuthorizationRequest,
    person_id: &str,
) -> Result<Vec<String>, Error> {
    let held = principal::scopes_of(conn, person_id)?;
    Ok(crate::auth::access::effective_scopes(&request.scope, &held))
}

/// Issue a code for `session` and build the redirect (§4.1.2).
pub(super) fn answer(
    conn: &mut DbConnection,
    ctx: &OAuthContext,
    request: &AuthorizationRequest,
    session: &LiveSession,
    event: &'static str,
    remote: Option<&str>,
    now: DateTime<Utc>,
) -> Result<String, AuthorizeError> {
    let scopes = granted_scopes(conn, request, &session.person.id)?;
    let code = code::issue(conn, &ctx.pepper, request, session, &scopes, now)?;
    audit::record(
        conn,
        NewAuditEvent::new(event, Outcome::Ok)
            .principal(Some(&session.person.id))
            .remote(remote)
            .details(serde_json::json!({
                "client_id": request.client_id,
                "session_id": session.row.id,
                "scope": scopes,
            })),
        now,
    )?;
    let mut params = vec![("code", code.expose())];
    if let Some(s) = &request.state {
        params.push(("state", s.as_str()));
    }
    Ok(redirect_url(&request.redirect_uri, ctx.issuer(), &params)?)
}

/// The login page to show: the request to carry, and why it is shown again.
#[derive(Debug, Clone)]
pub struct LoginForm {
    pub request: AuthorizationRequest,
    pub username: Option<String>,
    pub problem: Option<LoginProblem>,
}

/// Why the login page is shown again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginProblem {
    /// The form did not come from a page Roster rendered for this browser.
    Csrf,
    Refused,
    Throttled {
        retry_after: i64,
    },
    /// The login waited too long for its second step: start again.
    Expired,
    /// A passkey's answer was refused.
    PasskeyRefused,
}

/// The outcome of a GET on the authorization endpoint.
#[derive(Debug)]
pub enum Step {
    /// To the client, with a code or an error.
    Redirect(String),
    /// The person must log in.
    Login(Box<LoginForm>),
    /// The person, logged in, must pass a second step first.
    SecondStep(Box<StepPage>),
}

impl OAuthContext {
    /// `GET /oauth/authorize`.
    pub async fn authorize(
        &self,
        params: FormParams,
        session_token: Option<SecretString>,
        remote: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Step, AuthorizeError> {
        let oauth = self.clone();
        self.db
            .run(move |conn| {
                let request = check(conn, oauth.issuer(), &params)?;
                let live = match &session_token {
                    Some(t) => session::current(conn, &oauth.pepper, t, &oauth.sessions, now)?,
                    None => None,
                };
                match live {
                    Some(s) if session_suffices(&request, &s, now) => crate::db::transaction(conn, |conn| {
                        // A second step this session has not passed is due:
                        // the person's factor or policy, or `acr_values`.
                        let due = second_factor::due(conn, &s.person, oauth.mfa, request.level() == Level::Multi)?;
                        if due != Due::Nothing && s.amr().level() < Level::Multi {
                            if request.prompt == Prompt::None {
                                return Err(client_error(
                                    oauth.issuer(),
                                    &request.redirect_uri,
                                    request.state.as_deref(),
                                    AuthorizeErrorCode::LoginRequired,
                                    "the person must pass a second step",
                                ));
                            }
                            let kind = step::kind_for(conn, &oauth, &s.person, due, now)?;
                            return Ok(Step::SecondStep(Box::new(StepPage::new(
                                request.clone(),
                                &s.person,
                                kind,
                            ))));
                        }
                        session::touch(conn, &s, now)?;
                        answer(conn, &oauth, &request, &s, "login.sso", remote.as_deref(), now).map(Step::Redirect)
                    }),
                    _ if request.prompt == Prompt::None => Err(client_error(
                        oauth.issuer(),
                        &request.redirect_uri,
                        request.state.as_deref(),
                        AuthorizeErrorCode::LoginRequired,
                        "the person must log in",
                    )),
                    _ => Ok(Step::Login(Box::new(LoginForm {
                        request,
                        username: None,
                        problem: None,
                    }))),
                }
            })
            .await
    }
}

/// The outcome of a login form.
#[derive(Debug)]
pub enum LoginStep {
    /// Logged in: set the session cookie, and send the person to the client.
    Done {
        redirect: String,
        session_token: SecretString,
    },
    /// Show the form again.
    Retry(Box<LoginForm>),
    /// The password was right and a second step is due: show its page,
    /// setting the session cookie when there is a token.
    SecondStep {
        page: Box<StepPage>,
        session_token: Option<SecretString>,
    },
    /// A first factor was enrolled while logging in: show the recovery
    /// codes once, then go on to `continue_to` (the authorization request
    /// again, which the now live session answers).
    RecoveryCodes {
        codes: Vec<SecretString>,
        continue_to: String,
    },
}

impl OAuthContext {
    /// `POST /oauth/login`: the login form, carrying the authorization request.
    /// The password goes through [`person`], as for the password grant.
    pub async fn login(
        &self,
        params: FormParams,
        csrf_ok: bool,
        username: Option<String>,
        password: Option<SecretString>,
        remote: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<LoginStep, AuthorizeError> {
        let oauth = self.clone();
        let user_for_load = username.clone().unwrap_or_default();
        let remote_for_load = remote.clone();
        let (request, candidate) = self
            .db
            .run(move |conn| {
                let request = check(conn, oauth.issuer(), &params)?;
                if !csrf_ok {
                    return Ok::<_, AuthorizeError>((request, Err(LoginProblem::Csrf)));
                }
                match person::load(conn, &oauth, &user_for_load, remote_for_load.as_deref(), now) {
                    Ok(c) => Ok((request, Ok(c))),
                    Err(OAuthError::Throttled { retry_after } | OAuthError::Limited { retry_after }) => {
                        Ok((request, Err(LoginProblem::Throttled { retry_after })))
                    }
                    Err(OAuthError::Server(e)) => Err(e.into()),
                    Err(OAuthError::Client { .. }) => Ok((request, Err(LoginProblem::Refused))),
                }
            })
            .await?;
        let retry = |request: AuthorizationRequest, problem| {
            Ok(LoginStep::Retry(Box::new(LoginForm {
                request,
                username: username.clone(),
                problem: Some(problem),
            })))
        };
        let candidate = match candidate {
            Ok(c) => c,
            Err(problem) => return retry(request, problem),
        };
        let password = password.unwrap_or_else(|| SecretString::new(""));
        let verified = match person::verify(self, &candidate, password).await {
            Ok(v) => v,
            Err(OAuthError::Server(e)) => return Err(e.into()),
            Err(_) => false,
        };
        let (oauth, carried) = (self.clone(), request.clone());
        let outcome = self
            .db
            .run(move |conn| {
                let user = match person::settle(
                    conn,
                    &oauth,
                    &candidate,
                    verified,
                    "login.browser",
                    remote.as_deref(),
                    now,
                ) {
                    Ok(u) => u,
                    Err(OAuthError::Server(e)) => return Err(e.into()),
                    Err(_) => return Ok(None),
                };
                crate::db::transaction(conn, |conn| {
                    let current = match person::confirm(conn, &candidate, &user) {
                        Ok(p) => p,
                        Err(OAuthError::Server(e)) => return Err(AuthorizeError::Server(e)),
                        Err(_) => return Ok(None),
                    };
                    let due = second_factor::due(conn, &current, oauth.mfa, carried.level() == Level::Multi)?;
                    let pending = match due {
                        Due::Nothing => None,
                        Due::SecondFactor => Some(Pending::SecondFactor),
                        Due::Enrol => Some(Pending::Enrol),
                    };
                    let (token, live) = session::start(
                        conn,
                        &oauth.pepper,
                        &current,
                        &oauth.sessions,
                        (&Amr::password(), pending),
                        now,
                    )?;
                    if pending.is_some() {
                        let kind = step::kind_for(conn, &oauth, &current, due, now)?;
                        return Ok(Some(LoginStep::SecondStep {
                            page: Box::new(StepPage::new(carried.clone(), &live.person, kind)),
                            session_token: Some(token),
                        }));
                    }
                    person::cleared(conn, &candidate)?;
                    let redirect = answer(conn, &oauth, &carried, &live, "login.browser", remote.as_deref(), now)?;
                    Ok(Some(LoginStep::Done {
                        redirect,
                        session_token: token,
                    }))
                })
            })
            .await?;
        match outcome {
            Some(done) => Ok(done),
            None => retry(request, LoginProblem::Refused),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_values_follow_openid_connect() {
        assert_eq!(parse_prompt(None), Ok(Prompt::Default));
        assert_eq!(parse_prompt(Some("none")), Ok(Prompt::None));
        assert_eq!(parse_prompt(Some("login consent")), Ok(Prompt::Login));
        assert_eq!(parse_prompt(Some("consent")), Ok(Prompt::Default));
        assert!(parse_prompt(Some("none login")).is_err());
        assert!(parse_prompt(Some("bogus")).is_err());
    }

    #[test]
    fn the_redirect_keeps_the_registered_query_and_adds_iss() {
        let url = redirect_url(
            "https://app.example/cb?tenant=a",
            "https://id.example",
            &[("code", "c&d"), ("state", "s s")],
        )
        .unwrap();
        assert_eq!(
            url,
            "https://app.example/cb?tenant=a&code=c%26d&state=s+s&iss=https%3A%2F%2Fid.example"
        );
    }
}
