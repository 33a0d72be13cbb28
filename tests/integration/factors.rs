//! Second factors end to end over real HTTP: TOTP enrolment through the
//! self-service API and at login, the login's second step with TOTP and
//! recovery codes (each accepted once), `acr_values` stepping a session up,
//! `amr`/`acr` in tokens, the password grant refusing people with a second
//! factor, the throttle, removal, and an admin's reset.

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::browser_login::{Browser, Page};
use crate::on_both_backends;
use crate::support::{Backend, TestApp, claims_of, t0};
use roster::clock::Clock;

const APP: &str = "http://localhost:5173/callback";
const PASSWORD: &str = "correct horse battery";

on_both_backends!(
    a_totp_factor_counts_once_confirmed_and_ends_the_password_grant,
    the_login_asks_for_a_code_and_each_code_works_once,
    people_who_must_have_a_factor_enrol_at_login,
    acr_values_mfa_steps_up_a_live_session,
    wrong_codes_are_throttled_like_passwords,
    factors_are_removed_after_a_fresh_step_and_reset_by_admins,
    first_factors_confirmed_at_once_bring_one_set_of_recovery_codes,
);

/// The code of a base32 secret, `steps` time steps from the app's now.
fn code(app: &TestApp, secret: &str, steps: i64) -> String {
    let bytes = roster::auth::totp::from_base32(secret).unwrap();
    let at = app.clock.now().timestamp() + steps * 30;
    roster::auth::totp::code_at(&bytes, at as u64).unwrap()
}

async fn app(backend: Backend) -> TestApp {
    // Mid-step, so that one step either side is a whole step away.
    TestApp::builder(backend)
        .clock(Clock::manual(t0() + Duration::seconds(10)))
        .spawn()
        .await
}

/// A public client `spa`, and a person `alice`: her id and password-grant
/// token, and an admin's token.
async fn setup(app: &TestApp) -> (String, String, String) {
    let admin = app.admin_token().await;
    let r = app
        .call(
            Method::POST,
            "/api/v1/principals",
            Some(&admin),
            Some(json!({"kind": "service", "name": "spa", "public_client": true, "redirect_uris": [APP]})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = app.create_human("alice", PASSWORD, &["registry:read"]).await;
    app.tick().await;
    (id, app.login("alice", PASSWORD).await.0, admin)
}

/// Enrol and confirm a TOTP factor with `token`: the secret, and the confirmation's body.
async fn enrol(app: &TestApp, token: &str, name: &str) -> (String, Value) {
    let r = app
        .call(
            Method::POST,
            "/api/v1/me/factors/totp",
            Some(token),
            Some(json!({"name": name})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let secret = r.body["secret"].as_str().unwrap().to_string();
    let id = r.body["id"].as_str().unwrap().to_string();
    let c = app
        .call(
            Method::POST,
            "/api/v1/me/factors/totp/confirm",
            Some(token),
            Some(json!({"id": id, "code": code(app, &secret, 0)})),
        )
        .await;
    assert_eq!(c.status, 200, "{}", c.body);
    (secret, c.body)
}

fn authorize_url(app: &TestApp, extra: &[(&str, &str)]) -> (String, String) {
    let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
    let mut url = url::Url::parse(&app.url("/oauth/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "spa")
        .append_pair("redirect_uri", APP)
        .append_pair("scope", "openid registry:read")
        .append_pair("state", "st")
        .append_pair("code_challenge", challenge.as_str())
        .append_pair("code_challenge_method", "S256");
    for (k, v) in extra {
        url.query_pairs_mut().append_pair(k, v);
    }
    (url.to_string(), verifier.secret().to_string())
}

/// Send the second-step form of `page` with `code`.
async fn second(app: &TestApp, browser: &mut Browser, page: &Page, code: &str) -> Page {
    let mut form = page.hidden();
    form.push(("code".into(), code.into()));
    browser.post(&app.url("/oauth/login/second"), &form).await
}

/// Redeem the code of `done` and return the token response.
async fn redeem(app: &TestApp, done: &Page, verifier: &str) -> Value {
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    let code = done.redirect_param("code").unwrap();
    let r = crate::browser_login::exchange(app, "spa", APP, &code, Some(verifier)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// An admin sets a person's MFA setting: the factors view it answers.
async fn set_mfa(app: &TestApp, admin: &str, person: &str, mfa: &str) -> Value {
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/principals/{person}/mfa"),
            Some(admin),
            Some(json!({"mfa": mfa})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

fn refused_grant() -> Value {
    json!({"error": "invalid_grant", "error_description": "a second factor is required: use the browser or device login"})
}

async fn a_totp_factor_counts_once_confirmed_and_ends_the_password_grant(backend: Backend) {
    let app = app(backend).await;
    let (_, token, _) = setup(&app).await;
    let mine = app.call(Method::GET, "/api/v1/me/factors", Some(&token), None).await;
    assert_eq!(
        mine.body,
        json!({"mfa": "optional", "mfa_required": false, "factors": [], "recovery_codes_left": 0})
    );

    let started = app
        .call(
            Method::POST,
            "/api/v1/me/factors/totp",
            Some(&token),
            Some(json!({"name": "phone"})),
        )
        .await;
    assert_eq!(started.status, 201, "{}", started.body);
    assert_eq!(started.headers["cache-control"], "no-store");
    let (id, secret) = (
        started.body["id"].as_str().unwrap().to_string(),
        started.body["secret"].as_str().unwrap().to_string(),
    );
    let host = app.addr.ip().to_string();
    assert_eq!(
        started.body["otpauth_uri"],
        format!("otpauth://totp/Roster%20{host}:alice?secret={secret}&issuer=Roster%20{host}")
    );
    // Unconfirmed, it does not count: the password grant still works.
    assert_eq!(app.password_grant("alice", PASSWORD).await.status, 200);

    let wrong = app
        .call(
            Method::POST,
            "/api/v1/me/factors/totp/confirm",
            Some(&token),
            Some(json!({"id": id, "code": code(&app, &secret, 2)})),
        )
        .await;
    assert_eq!(wrong.status, 400);
    assert_eq!(
        wrong.body,
        json!({"error": "invalid_code", "error_description": "the code is not valid: it may be mistyped, expired or already used"})
    );
    let mine = app.call(Method::GET, "/api/v1/me/factors", Some(&token), None).await;
    assert_eq!(mine.body["factors"][0]["confirmed"], false);

    let ok = app
        .call(
            Method::POST,
            "/api/v1/me/factors/totp/confirm",
            Some(&token),
            Some(json!({"id": id, "code": code(&app, &secret, 0)})),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let codes = ok.body["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    let created = t0() + Duration::seconds(10);
    assert_eq!(
        ok.body["factor"],
        json!({"id": id, "kind": "totp", "name": "phone", "confirmed": true,
               "created_at": created, "last_used_at": created})
    );

    let refused = app.password_grant("alice", PASSWORD).await;
    assert_eq!((refused.status, &refused.body), (400, &refused_grant()));
    // A wrong password is still only a wrong password.
    let wrong_password = app.password_grant("alice", "not it at all").await;
    assert_eq!(wrong_password.body["error_description"], "invalid username or password");
    // People without a second factor are not affected.
    app.create_human("bob", PASSWORD, &[]).await;
    assert_eq!(app.password_grant("bob", PASSWORD).await.status, 200);

    // A second factor brings no new recovery codes.
    let (_, second) = enrol(&app, &token, "laptop").await;
    assert!(second.get("recovery_codes").is_none(), "{second}");
    let mine = app.call(Method::GET, "/api/v1/me/factors", Some(&token), None).await;
    assert_eq!(mine.body["recovery_codes_left"], 10);
    assert_eq!(mine.body["factors"].as_array().unwrap().len(), 2);
    assert!(!mine.body.to_string().contains(&secret), "never a secret");
    let types = app.audit_types().await;
    assert_eq!(types.iter().filter(|t| t.0 == "factor.added").count(), 2, "{types:?}");
}

async fn the_login_asks_for_a_code_and_each_code_works_once(backend: Backend) {
    let app = app(backend).await;
    let (alice, token, _) = setup(&app).await;
    let (secret, confirmed) = enrol(&app, &token, "phone").await;
    let recovery: Vec<String> = confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    app.clock.advance(Duration::seconds(30));

    let mut browser = Browser::new();
    let (url, verifier) = authorize_url(&app, &[]);
    let login = browser.get(&url).await;
    let step = browser.log_in(&app, &login, "alice", PASSWORD).await;
    assert_eq!(step.status, StatusCode::OK, "{}", step.html);
    assert!(step.html.contains("Two-step verification"), "{}", step.html);
    assert!(step.html.contains("action=\"/oauth/login/second\""));
    // Waiting for its second step, the session answers nothing.
    let again = browser.get(&url).await;
    assert!(again.html.contains("name=\"password\""), "the login page again");

    let wrong = second(&app, &mut browser, &step, "000000").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.html.contains("That code is not valid."), "{}", wrong.html);
    let now_code = code(&app, &secret, 0);
    let done = second(&app, &mut browser, &wrong, &now_code).await;
    let tokens = redeem(&app, &done, &verifier).await;
    let id = claims_of(tokens["id_token"].as_str().unwrap());
    assert_eq!((&id["amr"], &id["acr"]), (&json!(["pwd", "otp", "mfa"]), &json!("mfa")));
    let access = tokens["access_token"].as_str().unwrap();
    let at = claims_of(access);
    assert_eq!((&at["amr"], &at["acr"]), (&json!(["pwd", "otp", "mfa"]), &json!("mfa")));
    let svc_secret = app.create_service("introspector", &[]).await.secret;
    let seen = app
        .post_form(
            "/oauth/introspect",
            Some(("introspector", &svc_secret)),
            &[("token", access)],
        )
        .await;
    assert_eq!(
        (&seen.body["amr"], &seen.body["acr"]),
        (&json!(["pwd", "otp", "mfa"]), &json!("mfa"))
    );

    // The same code again, in another browser: refused (its step was used).
    let mut other = Browser::new();
    let (url2, verifier2) = authorize_url(&app, &[]);
    let login = other.get(&url2).await;
    let step = other.log_in(&app, &login, "alice", PASSWORD).await;
    let replay = second(&app, &mut other, &step, &now_code).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "a code is accepted once");
    // Two steps behind, or two ahead: refused.
    let stale = second(&app, &mut other, &replay, &code(&app, &secret, -2)).await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
    let early = second(&app, &mut other, &stale, &code(&app, &secret, 2)).await;
    assert_eq!(early.status, StatusCode::UNAUTHORIZED);
    // One step ahead (a fast phone clock) is accepted.
    let ahead = second(&app, &mut other, &early, &code(&app, &secret, 1)).await;
    redeem(&app, &ahead, &verifier2).await;

    // A recovery code works once, with its dashes or without.
    let mut third = Browser::new();
    let (url3, verifier3) = authorize_url(&app, &[]);
    let login = third.get(&url3).await;
    let step = third.log_in(&app, &login, "alice", PASSWORD).await;
    let done = second(&app, &mut third, &step, &recovery[0].replace('-', "")).await;
    let tokens = redeem(&app, &done, &verifier3).await;
    assert_eq!(
        claims_of(tokens["id_token"].as_str().unwrap())["amr"],
        json!(["pwd", "otp", "mfa"])
    );
    let mut fourth = Browser::new();
    let login = fourth.get(&authorize_url(&app, &[]).0).await;
    let step = fourth.log_in(&app, &login, "alice", PASSWORD).await;
    let spent = second(&app, &mut fourth, &step, &recovery[0]).await;
    assert_eq!(spent.status, StatusCode::UNAUTHORIZED, "a recovery code is spent");
    let mine = app.call(Method::GET, "/api/v1/me/factors", Some(&token), None).await;
    assert_eq!(mine.body["recovery_codes_left"], 9);

    let types = app.audit_types().await;
    for t in ["login.second_factor", "recovery_code.used"] {
        assert!(types.iter().any(|x| x.0 == t && x.1 == "ok"), "{t}: {types:?}");
    }
    assert!(
        types.iter().any(|x| x.0 == "login.second_factor"
            && x.1 == "failed"
            && x.2.as_deref() == Some(alice.as_str())
            && x.3.as_deref() == Some("wrong second-factor code")),
        "failed second steps are audited: {types:?}"
    );
}

async fn people_who_must_have_a_factor_enrol_at_login(backend: Backend) {
    let app = app(backend).await;
    let (alice, _, admin) = setup(&app).await;
    // Admins must, by default; alice must once an admin says so.
    let set = set_mfa(&app, &admin, &alice, "required").await;
    assert_eq!(
        set,
        json!({"mfa": "required", "mfa_required": true, "factors": [], "recovery_codes_left": 0})
    );
    for (user, password) in [("alice", PASSWORD), ("root-admin", "admin-password-123")] {
        let mut browser = Browser::new();
        let (url, verifier) = authorize_url(&app, &[]);
        let login = browser.get(&url).await;
        let enrol = browser.log_in(&app, &login, user, password).await;
        assert_eq!(enrol.status, StatusCode::OK, "{}", enrol.html);
        assert!(enrol.html.contains("Set up two-step verification"), "{}", enrol.html);
        assert!(enrol.html.contains("<svg"), "a QR code");
        let secret = enrol.totp_secret();
        let wrong = second(&app, &mut browser, &enrol, "123456").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert!(wrong.html.contains(&secret), "the same enrolment is shown again");
        let done = browser
            .finish_enrolment(&app.url(""), &wrong, app.clock.now().timestamp())
            .await;
        let tokens = redeem(&app, &done, &verifier).await;
        assert_eq!(claims_of(tokens["id_token"].as_str().unwrap())["acr"], "mfa");
    }
    let refused = app.password_grant("root-admin", "admin-password-123").await;
    assert_eq!(refused.body, refused_grant());
}

async fn acr_values_mfa_steps_up_a_live_session(backend: Backend) {
    let app = app(backend).await;
    let (_, token, _) = setup(&app).await;
    let mut browser = Browser::new();
    let (url, verifier) = authorize_url(&app, &[]);
    let login = browser.get(&url).await;
    let done = browser.log_in(&app, &login, "alice", PASSWORD).await;
    let tokens = redeem(&app, &done, &verifier).await;
    let id = claims_of(tokens["id_token"].as_str().unwrap());
    assert_eq!((&id["amr"], &id["acr"]), (&json!(["pwd"]), &json!("pwd")));

    let (secret, _) = enrol(&app, &token, "phone").await;
    app.clock.advance(Duration::seconds(30));
    // Without a second step, prompt=none cannot step up.
    let (none, _) = authorize_url(&app, &[("acr_values", "mfa"), ("prompt", "none")]);
    let refused = browser.get(&none).await;
    assert_eq!(refused.redirect_param("error").as_deref(), Some("login_required"));
    let (up, verifier) = authorize_url(&app, &[("acr_values", "mfa")]);
    let step = browser.get(&up).await;
    assert_eq!(step.status, StatusCode::OK);
    assert!(step.html.contains("Two-step verification"), "{}", step.html);
    let done = second(&app, &mut browser, &step, &code(&app, &secret, 0)).await;
    let tokens = redeem(&app, &done, &verifier).await;
    let id = claims_of(tokens["id_token"].as_str().unwrap());
    assert_eq!((&id["amr"], &id["acr"]), (&json!(["pwd", "otp", "mfa"]), &json!("mfa")));
    // The session now answers acr_values=mfa at once.
    let (again, _) = authorize_url(&app, &[("acr_values", "mfa"), ("prompt", "none")]);
    assert!(browser.get(&again).await.redirect_param("code").is_some());
    let metadata = app
        .call(Method::GET, "/.well-known/openid-configuration", None, None)
        .await;
    assert_eq!(metadata.body["acr_values_supported"], json!(["pwd", "mfa"]));
}

async fn wrong_codes_are_throttled_like_passwords(backend: Backend) {
    let app = app(backend).await;
    let (_, token, _) = setup(&app).await;
    let (secret, _) = enrol(&app, &token, "phone").await;
    app.clock.advance(Duration::seconds(30));
    // A known password, typed again before each guess, does not reset the
    // count of wrong codes.
    for _ in 0..5 {
        let mut browser = Browser::new();
        let login = browser.get(&authorize_url(&app, &[]).0).await;
        let step = browser.log_in(&app, &login, "alice", PASSWORD).await;
        assert_eq!(step.status, StatusCode::OK, "{}", step.html);
        let wrong = second(&app, &mut browser, &step, "999999").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    }
    let mut browser = Browser::new();
    let login = browser.get(&authorize_url(&app, &[]).0).await;
    let page = browser.log_in(&app, &login, "alice", PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{}", page.html);
    assert!(page.headers.get("retry-after").is_some());
    // The API's fresh steps meet the same throttle, the right code too.
    let right = app
        .call(
            Method::POST,
            "/api/v1/me/factors/recovery-codes",
            Some(&token),
            Some(json!({"code": code(&app, &secret, 0)})),
        )
        .await;
    assert_eq!(right.status, 429, "{}", right.body);
    assert!(right.headers.get("retry-after").is_some());
    assert_eq!(right.body["error"], "too_many_attempts");
}

async fn factors_are_removed_after_a_fresh_step_and_reset_by_admins(backend: Backend) {
    let app = app(backend).await;
    let (alice, token, admin) = setup(&app).await;
    let (secret, confirmed) = enrol(&app, &token, "phone").await;
    let factor = confirmed["factor"]["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/me/factors/{factor}");
    let missing = app.call(Method::DELETE, &path, Some(&token), Some(json!({}))).await;
    assert_eq!((missing.status, &missing.body["field"]), (422, &json!("code")));
    let wrong = app
        .call(Method::DELETE, &path, Some(&token), Some(json!({"code": "000000"})))
        .await;
    assert_eq!(wrong.status, 400);
    // The last factor of a person who must have one stays.
    set_mfa(&app, &admin, &alice, "required").await;
    app.clock.advance(Duration::seconds(30));
    let kept = app
        .call(
            Method::DELETE,
            &path,
            Some(&token),
            Some(json!({"code": code(&app, &secret, 0)})),
        )
        .await;
    assert_eq!(kept.status, 409, "{}", kept.body);
    set_mfa(&app, &admin, &alice, "optional").await;
    app.clock.advance(Duration::seconds(30));
    let gone = app
        .call(
            Method::DELETE,
            &path,
            Some(&token),
            Some(json!({"code": code(&app, &secret, 0)})),
        )
        .await;
    assert_eq!(gone.status, 204, "{}", gone.body);
    let mine = app.call(Method::GET, "/api/v1/me/factors", Some(&token), None).await;
    assert_eq!(
        mine.body,
        json!({"mfa": "optional", "mfa_required": false, "factors": [], "recovery_codes_left": 0})
    );
    assert_eq!(app.password_grant("alice", PASSWORD).await.status, 200);

    // An admin's reset: factors, sessions and refresh tokens end.
    enrol(&app, &token, "phone").await;
    // A browser waiting for alice's second step: the reset ends its session.
    let mut browser = Browser::new();
    let login = browser.get(&authorize_url(&app, &[]).0).await;
    let step = browser.log_in(&app, &login, "alice", PASSWORD).await;
    assert!(step.html.contains("Two-step verification"), "{}", step.html);
    let mine = app
        .call(
            Method::GET,
            &format!("/api/v1/principals/{alice}/factors"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(mine.body["factors"].as_array().unwrap().len(), 1, "{}", mine.body);
    let reset = app
        .call(
            Method::DELETE,
            &format!("/api/v1/principals/{alice}/factors"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    assert_eq!(reset.body["factors_removed"], 1);
    assert_eq!(reset.body["sessions_ended"], 1, "the waiting browser session ends");
    assert!(
        reset.body["refresh_tokens_revoked"].as_u64().unwrap() >= 1,
        "{}",
        reset.body
    );
    let after = app
        .call(
            Method::GET,
            &format!("/api/v1/principals/{alice}/factors"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        after.body,
        json!({"mfa": "optional", "mfa_required": false, "factors": [], "recovery_codes_left": 0})
    );
    assert!(app.audit_types().await.iter().any(|t| t.0 == "factors.reset"));
    let svc = app.create_service("svc", &[]).await.id;
    let not_a_person = app
        .call(
            Method::GET,
            &format!("/api/v1/principals/{svc}/factors"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(not_a_person.status, 422);
    let not_admin = app
        .call(
            Method::DELETE,
            &format!("/api/v1/principals/{alice}/factors"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(not_admin.status, 403);
}

on_both_backends!(one_code_wins_once_among_concurrent_logins,);

/// 32 browsers, each waiting for its second step, send the same valid code
/// at once: exactly one login completes; none is a server error.
async fn one_code_wins_once_among_concurrent_logins(backend: Backend) {
    let app = app(backend).await;
    let (_, token, _) = setup(&app).await;
    let (secret, _) = enrol(&app, &token, "phone").await;
    app.clock.advance(Duration::seconds(30));
    let mut waiting = Vec::new();
    for _ in 0..32 {
        let mut browser = Browser::new();
        let login = browser.get(&authorize_url(&app, &[]).0).await;
        let step = browser.log_in(&app, &login, "alice", PASSWORD).await;
        assert_eq!(step.status, StatusCode::OK);
        waiting.push((browser, step));
    }
    let code = code(&app, &secret, 0);
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = waiting
        .into_iter()
        .map(|(mut browser, step)| {
            let (app, code) = (app.clone(), code.clone());
            tokio::spawn(async move { second(&app, &mut browser, &step, &code).await.status })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let won = statuses.iter().filter(|s| **s == StatusCode::SEE_OTHER).count();
    assert_eq!(won, 1, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [
            StatusCode::SEE_OTHER,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS
        ]
        .contains(s)),
        "{statuses:?}"
    );
}

on_both_backends!(
    passkeys_need_a_domain_name_and_a_page_of_this_browser,
    passkey_challenges_have_a_budget_per_source,
);

/// Each passkey challenge is a row stored before anyone authenticated: one
/// address gets 60 a minute, then a 429 with Retry-After (here the issuer
/// cannot have passkeys, so each spent challenge is a 409; they count all
/// the same). A minute later the budget is back.
async fn passkey_challenges_have_a_budget_per_source(backend: Backend) {
    let app = app(backend).await;
    setup(&app).await;
    let mut browser = Browser::new();
    let login = browser.get(&authorize_url(&app, &[]).0).await;
    let csrf = login.input("csrf").unwrap();
    let form = [
        ("mode".to_string(), "discoverable".to_string()),
        ("csrf".to_string(), csrf),
    ];
    let start = app.url("/oauth/passkey/start");
    for _ in 0..60 {
        assert_eq!(browser.post(&start, &form).await.status, 409);
    }
    let over = browser.post(&start, &form).await;
    assert_eq!(over.status, 429, "{}", over.html);
    assert_eq!(over.headers["retry-after"], "60");
    assert_eq!(
        serde_json::from_str::<Value>(&over.html).unwrap(),
        json!({"error": "too_many_attempts", "error_description": "too many failed attempts: try again in 60 seconds"})
    );
    app.clock.advance(Duration::seconds(60));
    assert_eq!(browser.post(&start, &form).await.status, 409);
}

/// An IP-address issuer cannot be a WebAuthn relying party: passkeys are
/// refused with the reason. The login page's passkey endpoints refuse a
/// request that did not come from Roster's page. (Passkeys themselves are
/// tested in Chromium with a virtual authenticator: tests/browser.)
async fn passkeys_need_a_domain_name_and_a_page_of_this_browser(backend: Backend) {
    let app = app(backend).await;
    let (_, token, _) = setup(&app).await;
    let r = app
        .call(Method::POST, "/api/v1/me/factors/passkeys/start", Some(&token), None)
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(
        r.body["error_description"],
        format!(
            "passkeys need an issuer with a domain name (WebAuthn refuses IP addresses): {}",
            app.issuer()
        )
    );
    let forged = app
        .post_form(
            "/oauth/passkey/start",
            None,
            &[("mode", "discoverable"), ("csrf", "forged")],
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let script = app.client.get(app.url("/oauth/passkey.js")).send().await.unwrap();
    assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(script.text().await.unwrap().contains("navigator.credentials.get"));
    // Without passkeys, the login page offers none (and loads no script).
    let mut browser = Browser::new();
    let login = browser.get(&authorize_url(&app, &[]).0).await;
    assert!(!login.html.contains("passkey"), "{}", login.html);
}

on_both_backends!(the_admin_rule_can_be_lifted,);

/// `--admin-mfa off`: an admin without a factor finishes with the password;
/// a person whose own setting is `required` still enrols.
async fn the_admin_rule_can_be_lifted(backend: Backend) {
    let app = TestApp::builder(backend)
        .clock(Clock::manual(t0() + Duration::seconds(10)))
        .settings(|mut s| {
            s.mfa.admins_required = false;
            s
        })
        .spawn()
        .await;
    let (alice, _, admin) = setup(&app).await;
    set_mfa(&app, &admin, &alice, "required").await;
    for (user, password, second_step) in [("root-admin", "admin-password-123", false), ("alice", PASSWORD, true)] {
        let mut browser = Browser::new();
        let login = browser.get(&authorize_url(&app, &[]).0).await;
        let page = browser.log_in(&app, &login, user, password).await;
        assert_eq!(page.status == StatusCode::OK, second_step, "{user}: {}", page.html);
    }
}

/// Sixteen authenticator apps of one person confirmed at once: exactly one
/// answer carries recovery codes, and they are the ones that work (a second
/// set would silently have replaced the first).
async fn first_factors_confirmed_at_once_bring_one_set_of_recovery_codes(backend: Backend) {
    let app = std::sync::Arc::new(app(backend).await);
    let (_, token, _) = setup(&app).await;
    let mut started = Vec::new();
    for i in 0..16 {
        let r = app
            .call(
                Method::POST,
                "/api/v1/me/factors/totp",
                Some(&token),
                Some(json!({"name": format!("app {i}")})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let (id, secret) = (r.body["id"].as_str().unwrap(), r.body["secret"].as_str().unwrap());
        started.push((id.to_string(), code(&app, secret, 0)));
    }
    let tasks: Vec<_> = started
        .into_iter()
        .map(|(id, code)| {
            let (app, token) = (app.clone(), token.clone());
            tokio::spawn(async move {
                app.call(
                    Method::POST,
                    "/api/v1/me/factors/totp/confirm",
                    Some(&token),
                    Some(json!({"id": id, "code": code})),
                )
                .await
            })
        })
        .collect();
    let mut sets = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        if let Some(codes) = r.body.get("recovery_codes") {
            sets.push(codes.clone());
        }
    }
    assert_eq!(sets.len(), 1, "{sets:?}");
    let mine = app.call(Method::GET, "/api/v1/me/factors", Some(&token), None).await;
    assert_eq!(mine.body["recovery_codes_left"], 10);
    assert_eq!(mine.body["factors"].as_array().unwrap().len(), 16);
    // The codes shown are the live ones: one of them buys a new set.
    let shown = sets[0][0].as_str().unwrap();
    let r = app
        .call(
            Method::POST,
            "/api/v1/me/factors/recovery-codes",
            Some(&token),
            Some(json!({"code": shown})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}
