//! The admin console from the server's side: its pages and their policy,
//! its login client (registered at start, no privilege of its own), the
//! code flow it runs, and the menu "as" a principal. The console's script
//! itself runs in Chromium (tests/browser/console_test.py).

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::browser_login::{Browser, exchange};
use crate::on_both_backends;
use crate::support::{Backend, TestApp, manifest_json, t0};
use roster::clock::Clock;
use roster::principals::console::{self, ConsoleClient};

on_both_backends!(
    the_console_is_served_with_a_strict_policy,
    the_console_client_is_registered_once_and_follows_the_issuer,
    the_console_client_is_never_taken_over,
    a_console_login_carries_the_persons_scopes_only,
    admins_see_the_menu_as_a_chosen_principal,
);

const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                      connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A page as a browser without JavaScript gets it (no redirects followed).
async fn get(app: &TestApp, path: &str) -> crate::browser_login::Page {
    Browser::new().get(&app.url(path)).await
}

async fn register_console(app: &TestApp, issuer: &str) -> ConsoleClient {
    let pepper = app.state.oauth().pepper.clone();
    let issuer = issuer.to_string();
    app.query(move |c| console::ensure(c, &pepper, &issuer, t0())).await
}

async fn the_console_is_served_with_a_strict_policy(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // A browser opening the server's address lands on the console.
    for path in ["/", "/console"] {
        let r = get(&app, path).await;
        assert_eq!(r.status, StatusCode::FOUND, "{path}");
        assert_eq!(r.headers["location"], "console/", "{path}");
    }

    let r = get(&app, "/console/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-security-policy"], POLICY);
    assert_eq!(r.headers["x-frame-options"], "DENY");
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(r.headers["content-type"], "text/html; charset=utf-8");
    let html = r.html;
    assert_eq!(html, roster::http::console::shell_html(&app.issuer()));
    assert!(html.contains(&format!("<meta name=\"roster-issuer\" content=\"{}\">", app.issuer())));
    // No inline script: the two script elements (the shared WebAuthn helper,
    // then the console) have a src and no body, and no element carries an
    // event-handler attribute or a style attribute.
    assert_eq!(html.matches("<script").count(), 2);
    assert!(html.contains("<script src=\"/oauth/webauthn.js\" defer></script><script src=\"app.js\" defer></script>"));
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains(" onclick=") && !lower.contains(" onload=") && !lower.contains(" style="));

    for (path, kind, body) in [
        (
            "/console/app.js",
            "text/javascript; charset=utf-8",
            roster::http::console::SCRIPT,
        ),
        (
            "/console/app.css",
            "text/css; charset=utf-8",
            roster::http::console::STYLE,
        ),
    ] {
        let r = get(&app, path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.headers["content-type"], kind);
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
        assert_eq!(r.html, body);
    }

    // Switched off, it is not there at all.
    let off = TestApp::builder(backend)
        .same_database_as(&app)
        .settings(|mut s| {
            s.console = false;
            s
        })
        .spawn()
        .await;
    let r = get(&off, "/").await;
    assert_eq!(r.status, StatusCode::OK);
    let issuer = off.issuer();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&r.html).unwrap(),
        json!({
            "service": "roster",
            "issuer": issuer,
            "openid_configuration": format!("{issuer}/.well-known/openid-configuration"),
            "openapi": format!("{issuer}/openapi.yaml"),
            "console": null,
        })
    );
    for path in ["/console", "/console/", "/console/app.js"] {
        let r = get(&off, path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&r.html).unwrap(),
            json!({"error": "not_found", "error_description": "/console/ (the admin console is off) not found"})
        );
    }
}

async fn the_console_client_is_registered_once_and_follows_the_issuer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let issuer = app.issuer();
    assert_eq!(register_console(&app, &issuer).await, ConsoleClient::Registered);
    assert_eq!(register_console(&app, &issuer).await, ConsoleClient::Unchanged);
    let admin = app.admin_token().await;
    let r = app
        .call(Method::GET, "/api/v1/principals?q=roster-console", Some(&admin), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let p = &r.body["items"][0];
    let redirect = format!("{issuer}/console/");
    assert_eq!(
        (
            &p["name"],
            &p["kind"],
            &p["status"],
            &p["scopes"],
            &p["public_client"],
            &p["redirect_uris"],
            &p["post_logout_redirect_uris"],
        ),
        (
            &json!("roster-console"),
            &json!("service"),
            &json!("active"),
            &json!([]),
            &json!(true),
            &json!([redirect, format!("{issuer}/oauth/device")]),
            &json!([redirect]),
        )
    );
    // A public client: no secret exists to steal.
    let id = p["id"].as_str().unwrap().to_string();
    let secrets = app
        .call(
            Method::GET,
            &format!("/api/v1/principals/{id}/secrets"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(secrets.body["items"], json!([]));

    // A new issuer (a new public address): the redirect URIs follow it.
    assert_eq!(
        register_console(&app, "https://id.example.com").await,
        ConsoleClient::Updated
    );
    let p = app
        .call(Method::GET, &format!("/api/v1/principals/{id}"), Some(&admin), None)
        .await;
    assert_eq!(
        p.body["redirect_uris"],
        json!(["https://id.example.com/console/", "https://id.example.com/oauth/device"])
    );
    assert_eq!(
        p.body["post_logout_redirect_uris"],
        json!(["https://id.example.com/console/"])
    );
    // Registered once, by nobody but the server (no actor), and audited.
    let created = app
        .call(
            Method::GET,
            &format!("/api/v1/audit?principal={id}&type=principal.created"),
            Some(&admin),
            None,
        )
        .await;
    let items = created.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", created.body);
    assert_eq!(items[0]["actor_id"], json!(null));
    assert_eq!(
        items[0]["details"]["redirect_uris"],
        json!([redirect, format!("{issuer}/oauth/device")])
    );
}

async fn the_console_client_is_never_taken_over(backend: Backend) {
    // A plain-http issuer off loopback gets no console: admin tokens would cross in the clear.
    let app = TestApp::spawn(backend).await;
    match register_console(&app, "http://id.example.com").await {
        ConsoleClient::Unavailable(why) => assert!(why.contains("https"), "{why}"),
        other => panic!("{other:?}"),
    }
    // The name belongs to someone else: left alone.
    app.create_human("roster-console", "correct horse battery", &[]).await;
    match register_console(&app, &app.issuer()).await {
        ConsoleClient::Unavailable(why) => assert!(why.contains("not a public client"), "{why}"),
        other => panic!("{other:?}"),
    }

    // Disabled by an admin: it stays disabled, and its redirect URIs stay put.
    let other = TestApp::spawn(backend).await;
    assert_eq!(
        register_console(&other, &other.issuer()).await,
        ConsoleClient::Registered
    );
    let admin = other.admin_token().await;
    let r = other
        .call(Method::GET, "/api/v1/principals?q=roster-console", Some(&admin), None)
        .await;
    let id = r.body["items"][0]["id"].as_str().unwrap().to_string();
    let r = other
        .call(Method::DELETE, &format!("/api/v1/principals/{id}"), Some(&admin), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        register_console(&other, "https://elsewhere.example").await,
        ConsoleClient::Disabled
    );
    let p = other
        .call(Method::GET, &format!("/api/v1/principals/{id}"), Some(&admin), None)
        .await;
    assert_eq!(
        (&p.body["status"], &p.body["redirect_uris"]),
        (
            &json!("disabled"),
            &json!([
                format!("{}/console/", other.issuer()),
                format!("{}/oauth/device", other.issuer())
            ])
        )
    );
}

/// The console's login, as its script runs it: code + PKCE for `user`.
async fn console_login(app: &TestApp, user: &str, password: &str) -> serde_json::Value {
    let redirect = format!("{}/console/", app.issuer());
    let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
    let mut url = url::Url::parse(&app.url("/oauth/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "roster-console")
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", "openid admin")
        .append_pair("state", "s")
        .append_pair("nonce", "n")
        .append_pair("code_challenge", challenge.as_str())
        .append_pair("code_challenge_method", "S256")
        .append_pair("acr_values", "mfa");
    let mut browser = Browser::new();
    let page = browser.get(url.as_str()).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    // The page names the client by its display name, not its id.
    assert!(
        page.html
            .contains("<p class=\"lead\">to continue to <strong>Roster admin console</strong></p>"),
        "{}",
        page.html
    );
    let enrol = browser.log_in(app, &page, user, password).await;
    // The console asks for a second step: a first login enrols a TOTP factor.
    assert_eq!(enrol.status, StatusCode::OK, "{}", enrol.html);
    assert!(enrol.html.contains("Set up two-step verification"), "{}", enrol.html);
    let done = browser
        .finish_enrolment(&app.url(""), &enrol, app.clock.now().timestamp())
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    assert!(
        done.location
            .as_deref()
            .unwrap()
            .starts_with(&format!("{redirect}?code="))
    );
    let code = done.redirect_param("code").unwrap();
    let r = exchange(app, "roster-console", &redirect, &code, Some(verifier.secret())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

async fn a_console_login_carries_the_persons_scopes_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    register_console(&app, &app.issuer()).await;
    app.tick().await;
    app.create_human("root", "correct horse battery", &["admin"]).await;
    app.create_human("bob", "correct horse battery", &["registry:read"])
        .await;

    let admin = console_login(&app, "root", "correct horse battery").await;
    assert_eq!(admin["scope"], "admin openid");
    let token = admin["access_token"].as_str().unwrap();
    let r = app.call(Method::GET, "/api/v1/me", Some(token), None).await;
    assert_eq!(r.body["client_id"], "roster-console");
    assert_eq!(r.body["scopes"], json!(["admin", "openid"]));
    let r = app.call(Method::GET, "/api/v1/principals", Some(token), None).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Someone who is not an admin asks for admin through the console, and does not get it.
    let bob = console_login(&app, "bob", "correct horse battery").await;
    assert_eq!(bob["scope"], "openid");
    let token = bob["access_token"].as_str().unwrap();
    let r = app.call(Method::GET, "/api/v1/principals", Some(token), None).await;
    assert_eq!((r.status, &r.body["error"]), (403, &json!("forbidden")), "{}", r.body);
    // And the console cannot log in by itself: it has no secret and no grant of its own.
    let r = app
        .post_form(
            "/oauth/token",
            None,
            &[("grant_type", "client_credentials"), ("client_id", "roster-console")],
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.body["error"], "invalid_client");
}

async fn admins_see_the_menu_as_a_chosen_principal(backend: Backend) {
    let app = TestApp::builder(backend).clock(Clock::manual(t0())).spawn().await;
    let admin = app.admin_token().await;
    let (_svc, svc_token) = app.service_with_token("billing", &[]).await;
    let r = app
        .call(
            Method::PUT,
            "/api/v1/services/billing/registration",
            Some(&svc_token),
            Some(json!({"base_url": "http://10.0.0.5:8080/"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let manifest = manifest_json(
        "billing",
        &[("invoices", 1, None), ("settings", 2, Some("billing:admin"))],
    );
    let r = app
        .call(
            Method::PUT,
            "/api/v1/services/billing/modules",
            Some(&svc_token),
            Some(manifest),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    app.create_human("grace", "correct horse battery", &["billing:admin"])
        .await;
    app.create_human("ivan", "correct horse battery", &[]).await;

    let pages = crate::registry::page_codes;
    let r = app
        .call(Method::GET, "/api/v1/modules?as=grace", Some(&admin), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(pages(&r.body), ["invoices", "settings"]);
    let r = app
        .call(Method::GET, "/api/v1/modules?as=ivan", Some(&admin), None)
        .await;
    assert_eq!(pages(&r.body), ["invoices"]);
    // The admin's own menu is not grace's.
    let r = app.call(Method::GET, "/api/v1/modules", Some(&admin), None).await;
    assert_eq!(pages(&r.body), ["invoices"]);

    let r = app
        .call(Method::GET, "/api/v1/modules?as=nobody", Some(&admin), None)
        .await;
    assert_eq!(
        (r.status, r.body),
        (
            404,
            json!({"error": "not_found", "error_description": "principal nobody not found"})
        )
    );
    // Only admins look through someone else's eyes.
    let r = app
        .call(Method::GET, "/api/v1/modules?as=grace", Some(&svc_token), None)
        .await;
    assert_eq!(
        (r.status, r.body),
        (
            403,
            json!({"error": "forbidden", "error_description": "only an admin may see the menu as another principal"})
        )
    );
    let r = app.call(Method::GET, "/api/v1/modules?as=grace", None, None).await;
    assert_eq!(r.status, 401, "{}", r.body);
}
