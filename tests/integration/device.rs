//! The device login (RFC 8628) end to end over real HTTP: a device asks
//! for codes, polls (pending, slow down), a person with a second factor
//! approves it in a browser after the normal login and second step, and
//! the device gets tokens once; denial, expiry, the wrong client and
//! wrong user codes are refused.

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::browser_login::Browser;
use crate::on_both_backends;
use crate::support::{Backend, TestApp, claims_of, t0};
use roster::clock::Clock;

const PASSWORD: &str = "correct horse battery";
const CLI: &str = "roster-console";

on_both_backends!(
    a_person_with_a_second_factor_logs_a_device_in,
    device_codes_are_refused_as_rfc_8628_says,
    device_authorizations_have_a_budget_per_source,
);

async fn app(backend: Backend) -> TestApp {
    let app = TestApp::builder(backend)
        .clock(Clock::manual(t0() + Duration::seconds(10)))
        .spawn()
        .await;
    let pepper = app.state.oauth().pepper.clone();
    let issuer = app.issuer();
    app.query(move |c| roster::principals::console::ensure(c, &pepper, &issuer, t0()))
        .await;
    app.create_human("alice", PASSWORD, &["registry:read"]).await;
    app.tick().await;
    app
}

async fn start(app: &TestApp, client: &str) -> Value {
    let r = app
        .post_form(
            "/oauth/device_authorization",
            None,
            &[("client_id", client), ("scope", "openid registry:read")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

async fn poll(app: &TestApp, client: &str, device_code: &str) -> crate::support::FormReply {
    app.post_form(
        "/oauth/token",
        None,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", client),
            ("device_code", device_code),
        ],
    )
    .await
}

fn error(code: &str, description: &str) -> Value {
    json!({"error": code, "error_description": description})
}

/// Answer the device's request in a browser already logged in (or logging
/// in as alice without a second factor): the final page.
async fn answer(app: &TestApp, browser: &mut Browser, user_code: &str, action: &str) -> crate::browser_login::Page {
    let confirm = browser
        .get(&app.url(&format!("/oauth/device?user_code={user_code}")))
        .await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.html);
    let mut form = confirm.hidden();
    form.push(("action".into(), action.into()));
    browser.post(&app.url("/oauth/device"), &form).await
}

async fn a_person_with_a_second_factor_logs_a_device_in(backend: Backend) {
    let app = app(backend).await;
    let token = app.login("alice", PASSWORD).await.0;
    let started = app
        .call(Method::POST, "/api/v1/me/factors/totp", Some(&token), None)
        .await;
    let secret = started.body["secret"].as_str().unwrap().to_string();
    let code_at = |steps: i64| {
        let at = app.clock.now().timestamp() + steps * 30;
        roster::auth::totp::code_at(&roster::auth::totp::from_base32(&secret).unwrap(), at as u64).unwrap()
    };
    let confirmed = app
        .call(
            Method::POST,
            "/api/v1/me/factors/totp/confirm",
            Some(&token),
            Some(json!({"id": started.body["id"], "code": code_at(0)})),
        )
        .await;
    assert_eq!(confirmed.status, 200);
    // The password grant is closed to alice now; the device flow is the way.
    assert_eq!(app.password_grant("alice", PASSWORD).await.status, 400);
    app.clock.advance(Duration::seconds(30));

    let device = start(&app, CLI).await;
    let user_code = device["user_code"].as_str().unwrap().to_string();
    let device_code = device["device_code"].as_str().unwrap().to_string();
    let issuer = app.issuer();
    assert_eq!(
        device,
        json!({
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": format!("{issuer}/oauth/device"),
            "verification_uri_complete": format!("{issuer}/oauth/device?user_code={user_code}"),
            "expires_in": 600,
            "interval": 5,
        })
    );
    assert_eq!(user_code.len(), 9);
    assert!(
        user_code
            .chars()
            .all(|c| c == '-' || "BCDFGHJKLMNPQRSTVWXZ".contains(c)),
        "{user_code}"
    );

    let pending = poll(&app, CLI, &device_code).await;
    assert_eq!(
        (pending.status, &pending.body),
        (400, &error("authorization_pending", "the person has not answered yet"))
    );
    let fast = poll(&app, CLI, &device_code).await;
    assert_eq!(
        (fast.status, &fast.body),
        (
            400,
            &error("slow_down", "polling too fast: wait 10 seconds between polls")
        )
    );
    app.clock.advance(Duration::seconds(10));
    assert_eq!(
        poll(&app, CLI, &device_code).await.body["error"],
        "authorization_pending"
    );

    // The person opens the verification link: the normal login first.
    let mut browser = Browser::new();
    let to_login = browser.get(device["verification_uri_complete"].as_str().unwrap()).await;
    assert_eq!(to_login.status, StatusCode::SEE_OTHER);
    let login = browser.get(&app.url(to_login.location.as_deref().unwrap())).await;
    assert!(login.html.contains("name=\"password\""), "{}", login.html);
    let step = browser.log_in(&app, &login, "alice", PASSWORD).await;
    assert!(step.html.contains("Two-step verification"), "{}", step.html);
    let mut form = step.hidden();
    form.push(("code".into(), code_at(0)));
    let back = browser.post(&app.url("/oauth/login/second"), &form).await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.html);
    assert_eq!(
        back.redirect_param("state").as_deref(),
        Some(user_code.replace('-', "").as_str())
    );
    let confirm = browser.get(back.location.as_deref().unwrap()).await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.html);
    assert!(confirm.html.contains(&user_code), "{}", confirm.html);
    assert!(confirm.html.contains("Roster admin console"), "{}", confirm.html);
    let mut form = confirm.hidden();
    form.push(("action".into(), "approve".into()));
    let done = browser.post(&app.url("/oauth/device"), &form).await;
    assert!(done.html.contains("Device signed in"), "{}", done.html);

    // Another client cannot redeem it.
    let admin = app.admin_token().await;
    let spa = app
        .call(
            Method::POST,
            "/api/v1/principals",
            Some(&admin),
            Some(json!({"kind": "service", "name": "spa", "public_client": true, "redirect_uris": ["http://localhost:5173/cb"]})),
        )
        .await;
    assert_eq!(spa.status, 201);
    let spa = poll(&app, "spa", &device_code).await;
    assert_eq!(
        spa.body,
        error("invalid_grant", "the device code is invalid or already used")
    );
    app.clock.advance(Duration::seconds(5));
    let tokens = poll(&app, CLI, &device_code).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let at = claims_of(tokens.body["access_token"].as_str().unwrap());
    assert_eq!(
        (&at["name"], &at["client_id"], &at["scope"], &at["amr"], &at["acr"]),
        (
            &json!("alice"),
            &json!(CLI),
            &json!("openid registry:read"),
            &json!(["pwd", "otp", "mfa"]),
            &json!("mfa")
        )
    );
    assert!(tokens.body["refresh_token"].is_string() && tokens.body["id_token"].is_string());
    // A refreshed token says how she logged in, as the first did.
    let refreshed = app
        .post_form(
            "/oauth/token",
            None,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", CLI),
                ("refresh_token", tokens.body["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let rt = claims_of(refreshed.body["access_token"].as_str().unwrap());
    assert_eq!((&rt["amr"], &rt["acr"]), (&json!(["pwd", "otp", "mfa"]), &json!("mfa")));
    let again = poll(&app, CLI, &device_code).await;
    assert_eq!(
        again.body,
        error("invalid_grant", "the device code is invalid or already used")
    );
    let types = app.audit_types().await;
    for t in ["device.approved", "login.device"] {
        assert!(types.iter().any(|x| x.0 == t), "{t}: {types:?}");
    }
}

async fn device_codes_are_refused_as_rfc_8628_says(backend: Backend) {
    let app = app(backend).await;
    let unknown = app
        .post_form("/oauth/device_authorization", None, &[("client_id", "nobody")])
        .await;
    assert_eq!(unknown.status, 401);
    let none = app.post_form("/oauth/device_authorization", None, &[]).await;
    assert_eq!(none.body, error("invalid_request", "client_id is required"));

    // A person without a second factor answers after the password alone.
    let denied = start(&app, CLI).await;
    let mut browser = Browser::new();
    let to_login = browser.get(&app.url("/oauth/device")).await;
    let login = browser.get(&app.url(to_login.location.as_deref().unwrap())).await;
    let back = browser.log_in(&app, &login, "alice", PASSWORD).await;
    let enter = browser.get(back.location.as_deref().unwrap()).await;
    assert!(enter.html.contains("Enter the code"), "{}", enter.html);
    // A wrong code is refused and counted.
    let mut form = enter.hidden();
    form.push(("user_code".into(), "BBBB-BBBB".into()));
    let wrong = browser.post(&app.url("/oauth/device"), &form).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(wrong.html.contains("That code is not valid or has expired."));
    assert!(app.audit_types().await.iter().any(|t| t.0 == "device.refused"));

    let page = answer(&app, &mut browser, denied["user_code"].as_str().unwrap(), "deny").await;
    assert!(page.html.contains("Sign-in denied"), "{}", page.html);
    let r = poll(&app, CLI, denied["device_code"].as_str().unwrap()).await;
    assert_eq!(r.body, error("access_denied", "the person refused"));

    let late = start(&app, CLI).await;
    app.clock.advance(Duration::minutes(10));
    let r = poll(&app, CLI, late["device_code"].as_str().unwrap()).await;
    assert_eq!(r.body, error("expired_token", "the device code expired: start again"));
    let r = poll(&app, CLI, "not-a-device-code").await;
    assert_eq!(
        r.body,
        error("invalid_grant", "the device code is invalid or already used")
    );

    let metadata = app
        .call(Method::GET, "/.well-known/oauth-authorization-server", None, None)
        .await;
    assert_eq!(
        metadata.body["device_authorization_endpoint"],
        format!("{}/oauth/device_authorization", app.issuer())
    );
    assert!(
        metadata.body["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("urn:ietf:params:oauth:grant-type:device_code"))
    );
}

mod cli {
    use super::*;
    use crate::support::process::{ADMIN_PASSWORD, Roster};
    use std::io::BufRead as _;

    on_both_backends!(roster_login_logs_the_admin_in_with_a_second_factor,);

    /// The walkthrough: the admin runs `roster login`, answers in a browser
    /// (enrolling TOTP on this first login, as admins must), and later
    /// commands print the kept token. With the console off: the device
    /// login needs only Roster's first-party client, registered anyway.
    async fn roster_login_logs_the_admin_in_with_a_second_factor(backend: Backend) {
        let roster = Roster::start(backend, &["--console", "off"]).await;
        let console = reqwest::get(format!("{}/console/", roster.issuer())).await.unwrap();
        assert_eq!(console.status(), 404, "the console is off");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token.json");
        let mut child = roster
            .command()
            .args(["login", "--url", &roster.issuer()])
            .env("ROSTER_TOKEN_FILE", &file)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                if tx.send(line.unwrap()).is_err() {
                    break;
                }
            }
        });
        let shown = rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap();
        let user_code = shown.rsplit(' ').next().unwrap().to_string();
        assert!(shown.contains("/oauth/device and enter the code"), "{shown}");

        let mut browser = Browser::new();
        let url = format!("{}/oauth/device?user_code={user_code}", roster.issuer());
        let to_login = browser.get(&url).await;
        let login = browser
            .get(&format!("{}{}", roster.issuer(), to_login.location.as_deref().unwrap()))
            .await;
        let mut form = login.hidden();
        form.push(("username".into(), "admin".into()));
        form.push(("password".into(), ADMIN_PASSWORD.into()));
        let enrol = browser.post(&format!("{}/oauth/login", roster.issuer()), &form).await;
        assert!(enrol.html.contains("Set up two-step verification"), "{}", enrol.html);
        let back = browser
            .finish_enrolment(&roster.issuer(), &enrol, chrono::Utc::now().timestamp())
            .await;
        let confirm = browser.get(back.location.as_deref().unwrap()).await;
        assert!(confirm.html.contains(&user_code), "{}", confirm.html);
        let mut form = confirm.hidden();
        form.push(("action".into(), "approve".into()));
        let done = browser.post(&format!("{}/oauth/device", roster.issuer()), &form).await;
        assert!(done.html.contains("Device signed in"), "{}", done.html);

        let status = child.wait().unwrap();
        assert!(status.success(), "{status}");
        let kept = std::fs::metadata(&file).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(kept.permissions().mode() & 0o777, 0o600);
        let out = roster
            .command()
            .arg("token")
            .env("ROSTER_TOKEN_FILE", &file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let token = String::from_utf8(out.stdout).unwrap();
        let claims = claims_of(token.trim());
        assert_eq!(
            (&claims["name"], &claims["scope"], &claims["acr"]),
            (&json!("admin"), &json!("admin openid"), &json!("mfa"))
        );
        let me = reqwest::Client::new()
            .get(format!("{}/api/v1/me/factors", roster.issuer()))
            .bearer_auth(token.trim())
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 200);
        let me: Value = me.json().await.unwrap();
        assert_eq!(
            (&me["mfa_required"], &me["recovery_codes_left"]),
            (&json!(true), &json!(10))
        );
    }
}

/// A device authorization is a row stored before anyone authenticated: one
/// address gets 20 a minute, then `429 slow_down` with Retry-After; the
/// upkeep tick forgets the window once it closed.
async fn device_authorizations_have_a_budget_per_source(backend: Backend) {
    let app = app(backend).await;
    let start = || app.post_form("/oauth/device_authorization", None, &[("client_id", CLI)]);
    for _ in 0..20 {
        assert_eq!(start().await.status, 200);
    }
    app.clock.advance(Duration::seconds(15));
    let over = start().await;
    assert_eq!(over.status, 429, "{}", over.body);
    assert_eq!(over.headers["retry-after"], "45");
    assert_eq!(
        over.body,
        error("slow_down", "too many requests from this address: retry later")
    );
    assert_eq!(app.state.oauth().budget.open_windows(), 1);
    app.clock.advance(Duration::seconds(45));
    app.tick().await;
    assert_eq!(app.state.oauth().budget.open_windows(), 0);
    assert_eq!(start().await.status, 200);
}
