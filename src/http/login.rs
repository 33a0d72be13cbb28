//! Browser login: thin handlers over `crate::oauth::{authorize, logout}` and
//! the OpenID UserInfo endpoint. They read parameters and cookies, make one
//! call, and map its outcome to a redirect, a page or a cookie.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use actix_web::{HttpRequest, HttpResponse, web};

use super::extract::{Bearer, BearerError, remote};
use super::pages;
use crate::auth::secrets::SecretString;
use crate::error::RETRY_AFTER_SECS;
use crate::oauth::authorize::{AuthorizeError, LoginForm, LoginProblem, LoginStep, Step};
use crate::oauth::device::{DeviceForm, DevicePage, DeviceProblem};
use crate::oauth::logout::LogoutStep;
use crate::oauth::origins::origin_of;
use crate::oauth::passkey_login::PasskeyForm;
use crate::oauth::request::{self, FormParams};
use crate::oauth::second_step::StepForm;
use crate::oauth::step::{StepKind, StepPage, StepProblem};
use crate::oauth::{oidc, session};
use crate::state::AppState;

/// Cookies are `Secure` (and `__Host-` prefixed) when the issuer is https.
fn secure(state: &AppState) -> bool {
    state.issuer().starts_with("https://")
}

fn session_cookie_name(state: &AppState) -> &'static str {
    if secure(state) {
        "__Host-roster_session"
    } else {
        "roster_session"
    }
}

fn csrf_cookie_name(state: &AppState) -> &'static str {
    if secure(state) {
        "__Host-roster_csrf"
    } else {
        "roster_csrf"
    }
}

/// A host-only, `HttpOnly`, `SameSite=Lax` cookie for the whole site.
fn cookie(state: &AppState, name: &'static str, value: String) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .secure(secure(state))
        .same_site(SameSite::Lax)
        .finish()
}

fn cookie_value(req: &HttpRequest, name: &str) -> Option<SecretString> {
    req.cookie(name)
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(SecretString::new)
}

fn see_other(url: &str) -> actix_web::HttpResponseBuilder {
    let mut resp = HttpResponse::SeeOther();
    resp.insert_header((LOCATION, url.to_string()))
        .insert_header((CACHE_CONTROL, "no-store"));
    resp
}

/// A refused request, as §4.1.2.1 says: a page, or a redirect to the client.
fn refused(e: AuthorizeError) -> HttpResponse {
    match e {
        AuthorizeError::Page(message) => pages::respond(StatusCode::BAD_REQUEST, pages::error(&message), &[]),
        AuthorizeError::Redirect(url) => see_other(&url).finish(),
        AuthorizeError::Server(e) => {
            let transient = e.is_transient();
            if transient {
                tracing::warn!(detail = %e, "login unavailable");
            } else {
                tracing::error!(detail = %e, "login failed");
            }
            let (status, message) = if transient {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Login is unavailable for a moment. Try again shortly.",
                )
            } else {
                (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong on our side.")
            };
            let mut resp = pages::respond(status, pages::error(message), &[]);
            if transient && let Ok(v) = RETRY_AFTER_SECS.to_string().parse() {
                resp.headers_mut().insert(RETRY_AFTER, v);
            }
            resp
        }
    }
}

/// The browser's CSRF cookie, and a new one to set when it has none.
fn csrf_cookie(req: &HttpRequest, state: &AppState) -> Result<(SecretString, Option<Cookie<'static>>), AuthorizeError> {
    if let Some(existing) = cookie_value(req, csrf_cookie_name(state)) {
        return Ok((existing, None));
    }
    let fresh = session::new_csrf_cookie()?;
    let set = cookie(state, csrf_cookie_name(state), fresh.expose().to_string());
    Ok((fresh, Some(set)))
}

/// Render the login page for `form`.
fn login_page(req: &HttpRequest, state: &AppState, form: &LoginForm) -> HttpResponse {
    let (csrf, set) = match csrf_cookie(req, state) {
        Ok(c) => c,
        Err(e) => return refused(e),
    };
    let token = session::csrf_token(&state.oauth().pepper, &csrf);
    let (status, message, retry_after) = match form.problem {
        None => (StatusCode::OK, None, None),
        Some(LoginProblem::Refused) => (
            StatusCode::UNAUTHORIZED,
            Some("Invalid username or password.".to_string()),
            None,
        ),
        Some(LoginProblem::Csrf) => (
            StatusCode::FORBIDDEN,
            Some("This form expired or did not come from this page. Please log in again.".to_string()),
            None,
        ),
        Some(LoginProblem::Throttled { retry_after }) => (
            StatusCode::TOO_MANY_REQUESTS,
            Some(format!("Too many failed logins. Try again in {retry_after} seconds.")),
            Some(retry_after.max(1)),
        ),
        Some(LoginProblem::PasskeyRefused) => (
            StatusCode::UNAUTHORIZED,
            Some("That passkey could not sign you in.".to_string()),
            None,
        ),
        Some(LoginProblem::Expired) => (
            StatusCode::UNAUTHORIZED,
            Some("Your login took too long to finish. Please log in again.".to_string()),
            None,
        ),
    };
    let html = pages::login(
        &form.request.client_display,
        &form.request.carried(),
        &token,
        form.username.as_deref(),
        message.as_deref(),
        state.oauth().passkeys.available(),
    );
    let targets: Vec<String> = form.request.redirect_origin().into_iter().collect();
    let mut resp = pages::respond(status, html, &targets);
    if let Some(c) = set {
        let _ = resp.add_cookie(&c);
    }
    if let Some(secs) = retry_after
        && let Ok(v) = secs.to_string().parse()
    {
        resp.headers_mut().insert(RETRY_AFTER, v);
    }
    resp
}

/// Render the second-step page.
fn second_step_page(
    req: &HttpRequest,
    state: &AppState,
    page: &StepPage,
    set_session: Option<&SecretString>,
) -> HttpResponse {
    let (csrf, set) = match csrf_cookie(req, state) {
        Ok(c) => c,
        Err(e) => return refused(e),
    };
    let token = session::csrf_token(&state.oauth().pepper, &csrf);
    let (status, message, retry_after) = match page.problem {
        None => (StatusCode::OK, None, None),
        Some(StepProblem::WrongCode) => (
            StatusCode::UNAUTHORIZED,
            Some("That code is not valid.".to_string()),
            None,
        ),
        Some(StepProblem::Csrf) => (
            StatusCode::FORBIDDEN,
            Some("This form expired or did not come from this page. Please try again.".to_string()),
            None,
        ),
        Some(StepProblem::Throttled { retry_after }) => (
            StatusCode::TOO_MANY_REQUESTS,
            Some(format!("Too many failed attempts. Try again in {retry_after} seconds.")),
            Some(retry_after.max(1)),
        ),
    };
    let step = match &page.kind {
        StepKind::Code => pages::SecondStep::Code,
        StepKind::Enrol(e) => pages::SecondStep::Enrol {
            id: &e.id,
            secret: e.secret.expose(),
            otpauth_uri: e.otpauth_uri.expose(),
        },
    };
    let html = pages::second_step(
        &page.request.client_display,
        &page.person,
        &page.request.carried(),
        &token,
        &step,
        message.as_deref(),
        state.oauth().passkeys.available(),
    );
    let mut resp = pages::respond(status, html, &[]);
    for c in set
        .into_iter()
        .chain(set_session.map(|t| cookie(state, session_cookie_name(state), t.expose().to_string())))
    {
        let _ = resp.add_cookie(&c);
    }
    if let Some(secs) = retry_after
        && let Ok(v) = secs.to_string().parse()
    {
        resp.headers_mut().insert(RETRY_AFTER, v);
    }
    resp
}

/// The outcome of the login form or the second-step form.
fn login_outcome(req: &HttpRequest, state: &AppState, outcome: Result<LoginStep, AuthorizeError>) -> HttpResponse {
    match outcome {
        Ok(LoginStep::Done {
            redirect,
            session_token,
        }) => see_other(&redirect)
            .cookie(cookie(
                state,
                session_cookie_name(state),
                session_token.expose().to_string(),
            ))
            .finish(),
        Ok(LoginStep::Retry(form)) => login_page(req, state, &form),
        Ok(LoginStep::SecondStep { page, session_token }) => {
            second_step_page(req, state, &page, session_token.as_ref())
        }
        Ok(LoginStep::RecoveryCodes { codes, continue_to }) => {
            let codes: Vec<&str> = codes.iter().map(SecretString::expose).collect();
            pages::respond(StatusCode::OK, pages::recovery_codes(&codes, &continue_to), &[])
        }
        Err(e) => refused(e),
    }
}

/// Read a form body; anything else is a page error.
async fn read_form(req: &HttpRequest, payload: web::Payload) -> Result<FormParams, AuthorizeError> {
    if !request::is_form(req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok())) {
        return Err(AuthorizeError::Page("The form was not sent as a form.".into()));
    }
    let body = super::read_body(req, payload, super::MAX_BODY_BYTES)
        .await
        .map_err(|_| AuthorizeError::Page("The form could not be read.".into()))?;
    FormParams::parse(&body).map_err(|m| AuthorizeError::Page(format!("The form is malformed: {m}.")))
}

fn query(req: &HttpRequest) -> Result<FormParams, AuthorizeError> {
    FormParams::parse(req.query_string().as_bytes())
        .map_err(|m| AuthorizeError::Page(format!("The request is malformed: {m}.")))
}

/// `GET /oauth/authorize` (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2.1).
pub async fn authorize(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let params = match query(&req) {
        Ok(p) => p,
        Err(e) => return refused(e),
    };
    let session = cookie_value(&req, session_cookie_name(&state));
    match state
        .oauth()
        .authorize(params, session, remote(&req), state.now())
        .await
    {
        Ok(Step::Redirect(url)) => see_other(&url).finish(),
        Ok(Step::Login(form)) => login_page(&req, &state, &form),
        Ok(Step::SecondStep(page)) => second_step_page(&req, &state, &page, None),
        Err(e) => refused(e),
    }
}

/// `POST /oauth/login`: the login page's form.
pub async fn login(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let mut params = match read_form(&req, payload).await {
        Ok(p) => p,
        Err(e) => return refused(e),
    };
    let username = params.take("username");
    let password = params.take("password").map(SecretString::new);
    let csrf = params.take("csrf");
    let csrf_ok = session::csrf_ok(
        &state.oauth().pepper,
        cookie_value(&req, csrf_cookie_name(&state)).as_ref(),
        csrf.as_deref(),
    );
    let outcome = state
        .oauth()
        .login(params, csrf_ok, username, password, remote(&req), state.now())
        .await;
    login_outcome(&req, &state, outcome)
}

/// `POST /oauth/login/second`: the second-step page's form.
pub async fn second_step(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let mut params = match read_form(&req, payload).await {
        Ok(p) => p,
        Err(e) => return refused(e),
    };
    let code = params.take("code");
    let enrolment = params.take("enrolment");
    let csrf = params.take("csrf");
    let form = StepForm {
        csrf_ok: session::csrf_ok(
            &state.oauth().pepper,
            cookie_value(&req, csrf_cookie_name(&state)).as_ref(),
            csrf.as_deref(),
        ),
        session_token: cookie_value(&req, session_cookie_name(&state)),
        params,
        code,
        enrolment,
    };
    let outcome = state.oauth().second_step(form, remote(&req), state.now()).await;
    login_outcome(&req, &state, outcome)
}

/// `GET /oauth/logout` (OpenID Connect RP-Initiated Logout 1.0 §2).
pub async fn logout_get(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    match query(&req) {
        Ok(params) => logout(&state, &req, params, false).await,
        Err(e) => refused(e),
    }
}

/// `POST /oauth/logout`: the same request as a form, or the confirmation.
pub async fn logout_post(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let mut params = match read_form(&req, payload).await {
        Ok(p) => p,
        Err(e) => return refused(e),
    };
    let confirm = params.take("confirm").as_deref() == Some("yes");
    let csrf = params.take("csrf");
    let confirmed = confirm
        && session::csrf_ok(
            &state.oauth().pepper,
            cookie_value(&req, csrf_cookie_name(&state)).as_ref(),
            csrf.as_deref(),
        );
    logout(&state, &req, params, confirmed).await
}

async fn logout(state: &AppState, req: &HttpRequest, params: FormParams, confirmed: bool) -> HttpResponse {
    let session = cookie_value(req, session_cookie_name(state));
    match state
        .oauth()
        .logout(params, session, confirmed, remote(req), state.now())
        .await
    {
        Ok(LogoutStep::Done { redirect }) => {
            let mut gone = cookie(state, session_cookie_name(state), String::new());
            gone.make_removal();
            let mut resp = match &redirect {
                Some(url) => see_other(url).finish(),
                None => pages::respond(StatusCode::OK, pages::logged_out(), &[]),
            };
            let _ = resp.add_cookie(&gone);
            resp
        }
        Ok(LogoutStep::Confirm { carried }) => {
            let (csrf, set) = match csrf_cookie(req, state) {
                Ok(c) => c,
                Err(e) => return refused(e),
            };
            let token = session::csrf_token(&state.oauth().pepper, &csrf);
            let target: Vec<String> = carried
                .iter()
                .filter(|(k, _)| *k == "post_logout_redirect_uri")
                .filter_map(|(_, v)| origin_of(v))
                .collect();
            let mut resp = pages::respond(StatusCode::OK, pages::logout_confirm(&carried, &token), &target);
            if let Some(c) = set {
                let _ = resp.add_cookie(&c);
            }
            resp
        }
        Err(e) => refused(e),
    }
}

/// `GET` and `POST /oauth/userinfo` (OpenID Connect Core §5.3): the person's
/// claims, for an access token that carries `openid`.
pub async fn userinfo(Bearer(caller): Bearer) -> Result<HttpResponse, BearerError> {
    if !oidc::may_ask_userinfo(&caller) {
        return Err(BearerError::InsufficientScope("openid"));
    }
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(oidc::userinfo(&caller)))
}

/// `GET /oauth/device`: the device login's verification page (RFC 8628
/// §3.3), with `user_code` (§3.3.1), or back from the browser login with
/// the code in `state`.
pub async fn device_get(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let mut params = match query(&req) {
        Ok(p) => p,
        Err(e) => return refused(e),
    };
    let user_code = params.take("user_code").or_else(|| params.take("state"));
    let form = DeviceForm {
        user_code,
        approve: None,
        csrf_ok: false,
        session_token: cookie_value(&req, session_cookie_name(&state)),
    };
    device_outcome(&req, &state, form).await
}

/// `POST /oauth/device`: a typed user code, or the person's answer.
pub async fn device_post(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let mut params = match read_form(&req, payload).await {
        Ok(p) => p,
        Err(e) => return refused(e),
    };
    let csrf = params.take("csrf");
    let form = DeviceForm {
        user_code: params.take("user_code"),
        approve: match params.take("action").as_deref() {
            Some("approve") => Some(true),
            Some("deny") => Some(false),
            _ => None,
        },
        csrf_ok: session::csrf_ok(
            &state.oauth().pepper,
            cookie_value(&req, csrf_cookie_name(&state)).as_ref(),
            csrf.as_deref(),
        ),
        session_token: cookie_value(&req, session_cookie_name(&state)),
    };
    device_outcome(&req, &state, form).await
}

async fn device_outcome(req: &HttpRequest, state: &AppState, form: DeviceForm) -> HttpResponse {
    let page = match state.oauth().device_page(form, remote(req), state.now()).await {
        Ok(p) => p,
        Err(e) => return refused(AuthorizeError::Server(e)),
    };
    let (csrf, set) = match csrf_cookie(req, state) {
        Ok(c) => c,
        Err(e) => return refused(e),
    };
    let token = session::csrf_token(&state.oauth().pepper, &csrf);
    let mut resp = match page {
        DevicePage::Login(url) => return see_other(&url).finish(),
        DevicePage::Enter { person, problem } => {
            let (status, message, retry_after) = match problem {
                None => (StatusCode::OK, None, None),
                Some(DeviceProblem::UnknownCode) => (
                    StatusCode::BAD_REQUEST,
                    Some("That code is not valid or has expired.".to_string()),
                    None,
                ),
                Some(DeviceProblem::Csrf) => (
                    StatusCode::FORBIDDEN,
                    Some("This form expired or did not come from this page. Please try again.".to_string()),
                    None,
                ),
                Some(DeviceProblem::Throttled { retry_after }) => (
                    StatusCode::TOO_MANY_REQUESTS,
                    Some(format!("Too many failed attempts. Try again in {retry_after} seconds.")),
                    Some(retry_after.max(1)),
                ),
            };
            let mut resp = pages::respond(status, pages::device_enter(&person, &token, message.as_deref()), &[]);
            if let Some(secs) = retry_after
                && let Ok(v) = secs.to_string().parse()
            {
                resp.headers_mut().insert(RETRY_AFTER, v);
            }
            resp
        }
        DevicePage::Confirm {
            person,
            client,
            scope,
            user_code,
        } => pages::respond(
            StatusCode::OK,
            pages::device_confirm(&person, &client, &scope, &user_code, &token),
            &[],
        ),
        DevicePage::Done { approved } => pages::respond(StatusCode::OK, pages::device_done(approved), &[]),
    };
    if let Some(c) = set {
        let _ = resp.add_cookie(&c);
    }
    resp
}

/// `GET /oauth/passkey.js`: the login pages' passkey button.
pub async fn passkey_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((CACHE_CONTROL, "no-cache"))
        .body(pages::PASSKEY_SCRIPT)
}

/// `GET /oauth/webauthn.js`: WebAuthn's JSON both ways, for the pages and the console.
pub async fn webauthn_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((CACHE_CONTROL, "no-cache"))
        .body(pages::WEBAUTHN_SCRIPT)
}

/// `POST /oauth/passkey/start`: a challenge for the page's passkey button.
pub async fn passkey_start(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, crate::error::Error> {
    let mut params = read_form(&req, payload)
        .await
        .map_err(|e| crate::error::Error::BadRequest(e.to_string()))?;
    let second = params.take("mode").as_deref() == Some("second");
    let csrf = params.take("csrf");
    let csrf_ok = session::csrf_ok(
        &state.oauth().pepper,
        cookie_value(&req, csrf_cookie_name(&state)).as_ref(),
        csrf.as_deref(),
    );
    let begun = state
        .oauth()
        .passkey_start(
            second,
            csrf_ok,
            cookie_value(&req, session_cookie_name(&state)),
            remote(&req),
            state.now(),
        )
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(begun))
}

/// `POST /oauth/passkey/finish`: the authenticator's answer, as a form.
pub async fn passkey_finish(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let mut params = match read_form(&req, payload).await {
        Ok(p) => p,
        Err(e) => return refused(e),
    };
    let csrf = params.take("csrf");
    let form = PasskeyForm {
        csrf_ok: session::csrf_ok(
            &state.oauth().pepper,
            cookie_value(&req, csrf_cookie_name(&state)).as_ref(),
            csrf.as_deref(),
        ),
        session_token: cookie_value(&req, session_cookie_name(&state)),
        ceremony: params.take("ceremony").unwrap_or_default(),
        credential: params.take("credential").unwrap_or_default(),
        params,
    };
    let outcome = state.oauth().passkey_finish(form, remote(&req), state.now()).await;
    login_outcome(&req, &state, outcome)
}
