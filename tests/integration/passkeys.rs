//! Passkeys over real HTTP without a browser (webauthn-rs's software
//! authenticator answers; a browser's virtual authenticator does in
//! tests/browser/passkey_test.py): invitations, where an admin creates a
//! person with no password and a single-use link whose page registers a
//! passkey, and which then works no more, whoever answers it, however many
//! at once; and a passkey as the fresh second step of the self-service API.

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::on_both_backends;
use crate::support::{Backend, FormReply, TestApp, t0};
use roster::clock::Clock;

const UNUSABLE: &str = "this invitation link is unknown, used or expired: ask your administrator for a new one";

on_both_backends!(
    an_invited_person_registers_a_passkey_with_the_link_once,
    invitations_are_only_for_people_who_cannot_sign_in,
    a_new_link_replaces_the_old_and_links_expire,
    one_link_answered_by_32_browsers_registers_one_passkey,
    garbage_at_the_invitation_endpoints_is_a_clear_4xx,
    a_passkey_answers_the_fresh_step_of_the_self_service_api,
);

/// A Roster whose issuer is `http://localhost:PORT` (a WebAuthn relying
/// party needs a domain name), on a manual clock.
async fn app(backend: Backend) -> TestApp {
    TestApp::builder(backend)
        .clock(Clock::manual(t0()))
        .settings(|s| {
            let mut at_localhost = roster::config::Settings::new(s.issuer().replace("127.0.0.1", "localhost"));
            at_localhost.password_hashing = s.password_hashing;
            at_localhost
        })
        .spawn()
        .await
}

/// The token of an invitation link (its fragment).
fn token_of(invitation: &Value) -> String {
    let url = invitation["url"].as_str().unwrap();
    url.split_once('#').unwrap().1.to_string()
}

/// The person `name` created with an invitation: the whole answer.
async fn invite_new(app: &TestApp, admin: &str, name: &str) -> FormReply {
    app.call(
        Method::POST,
        "/api/v1/principals",
        Some(admin),
        Some(json!({"kind": "human", "name": name, "invite": true, "scopes": ["registry:read"]})),
    )
    .await
}

async fn start(app: &TestApp, token: &str) -> FormReply {
    app.call(
        Method::POST,
        "/oauth/invitation/start",
        None,
        Some(json!({"token": token})),
    )
    .await
}

/// What the browser would answer to `navigator.credentials.create` with
/// the options of `begun`. The software authenticator keeps no resident
/// keys, so it is asked for a plain credential (the server does not insist:
/// a browser's passkey is resident anyway).
fn create_credential(app: &TestApp, authenticator: &mut WebauthnAuthenticator<SoftPasskey>, begun: &Value) -> Value {
    let mut options = begun["options"].clone();
    let selection = &mut options["publicKey"]["authenticatorSelection"];
    selection["residentKey"] = json!("discouraged");
    selection["requireResidentKey"] = json!(false);
    let options = serde_json::from_value(options).unwrap();
    let origin = url::Url::parse(&app.issuer()).unwrap();
    let credential = authenticator.do_registration(origin, options).unwrap();
    serde_json::to_value(credential).unwrap()
}

async fn finish(app: &TestApp, token: &str, ceremony: &str, credential: &Value) -> FormReply {
    app.call(
        Method::POST,
        "/oauth/invitation/finish",
        None,
        Some(json!({"token": token, "ceremony": ceremony, "credential": credential})),
    )
    .await
}

fn refused(r: &FormReply) {
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.body, json!({"error": "forbidden", "error_description": UNUSABLE}));
}

/// Carol is created with a link and no password; the link's page
/// registers her passkey; the link is then spent, and she has one factor.
async fn an_invited_person_registers_a_passkey_with_the_link_once(backend: Backend) {
    let app = app(backend).await;
    let admin = app.admin_token().await;
    let r = invite_new(&app, &admin, "carol").await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.headers["location"], format!("/api/v1/principals/{id}"));
    let token = token_of(&r.body["invitation"]);
    assert_eq!(token.len(), 43, "32 random bytes, base64url");
    let mut expected = r.body.clone();
    expected["invitation"]["url"] = json!("<url>");
    assert_eq!(
        expected,
        json!({
            "id": id, "kind": "human", "name": "carol", "display_name": null, "email": null,
            "status": "active", "scopes": ["registry:read"],
            "created_at": "2026-01-01T12:00:00Z", "updated_at": "2026-01-01T12:00:00Z",
            "invitation": {"principal_id": id, "url": "<url>", "expires_at": "2026-01-04T12:00:00Z"},
        })
    );
    assert_eq!(
        r.body["invitation"]["url"],
        format!("{}/oauth/invitation#{token}", app.issuer())
    );
    // No password: the password grant knows her no better than a stranger.
    let grant = app.password_grant("carol", "correct horse battery").await;
    let stranger = app.password_grant("nobody", "x").await;
    assert_eq!((grant.status, &grant.body), (stranger.status, &stranger.body));

    // The page is the same for every link, with its own script only.
    let page = app.client.get(app.url("/oauth/invitation")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("script-src 'self';"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(
        html.contains(
            r#"<script src="/oauth/webauthn.js" defer></script><script src="/oauth/invitation.js" defer></script>"#
        ),
        "{html}"
    );
    assert!(
        html.contains(r#"href="http://localhost:"#),
        "the console to sign in to: {html}"
    );
    let script = app.client.get(app.url("/oauth/invitation.js")).send().await.unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(script.text().await.unwrap().contains("/oauth/invitation/finish"));
    let shared = app.client.get(app.url("/oauth/webauthn.js")).send().await.unwrap();
    assert_eq!(shared.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(shared.text().await.unwrap().contains("window.RosterWebAuthn"));

    let begun = start(&app, &token).await;
    assert_eq!(begun.status, 200, "{}", begun.body);
    assert_eq!(begun.body["name"], "carol");
    let user = &begun.body["options"]["publicKey"]["user"];
    assert_eq!(
        (&user["name"], &user["displayName"]),
        (&json!("carol"), &json!("carol"))
    );
    assert_eq!(
        begun.body["options"]["publicKey"]["authenticatorSelection"]["userVerification"],
        "required"
    );
    let mut authenticator = WebauthnAuthenticator::new(SoftPasskey::new(true));
    let credential = create_credential(&app, &mut authenticator, &begun.body);
    let ceremony = begun.body["ceremony"].as_str().unwrap();
    let done = finish(&app, &token, ceremony, &credential).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let factor_id = done.body["factor"]["id"].as_str().unwrap();
    assert_eq!(
        done.body,
        json!({
            "principal_id": id, "name": "carol",
            "factor": {
                "id": factor_id, "kind": "passkey", "name": "Passkey", "confirmed": true,
                "created_at": "2026-01-01T12:00:00Z", "last_used_at": null,
            },
        })
    );

    // Spent: neither a new start nor the same answer again.
    refused(&start(&app, &token).await);
    refused(&finish(&app, &token, ceremony, &credential).await);

    // One passkey, and no recovery codes: they stand in for a second step
    // after a password she does not have.
    let factors = app
        .call(
            Method::GET,
            &format!("/api/v1/principals/{id}/factors"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        factors.body,
        json!({
            "mfa": "optional", "mfa_required": false, "recovery_codes_left": 0,
            "factors": [{
                "id": factor_id, "kind": "passkey", "name": "Passkey", "confirmed": true,
                "created_at": "2026-01-01T12:00:00Z", "last_used_at": null,
            }],
        })
    );
    // Now she can sign in: no link for her any more.
    let again = app
        .call(
            Method::POST,
            &format!("/api/v1/principals/{id}/invitation"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(
        again.body["error_description"],
        "carol already has a second factor: reset their factors first (DELETE /api/v1/principals/{id}/factors)"
    );

    let audit = app.audit_types().await;
    let hers: Vec<_> = audit
        .iter()
        .filter(|e| e.2.as_deref() == Some(id.as_str()))
        .map(|e| (e.0.as_str(), e.1.as_str()))
        .collect();
    assert_eq!(
        hers,
        [
            ("factor.added", "ok"),
            ("invitation.used", "ok"),
            ("login.password", "failed"),
            ("invitation.created", "ok"),
            ("principal.created", "ok"),
        ]
    );
    // A spent link names nobody: it is refused like an unknown one, and
    // the refusals from one place are folded into one row.
    assert_eq!(
        refusals(&app, &admin).await,
        [json!({"principal_id": null, "reason": "unknown, used or expired", "count": 2})]
    );
}

/// The `invitation.refused` rows once their fold window closed.
async fn refusals(app: &TestApp, admin: &str) -> Vec<Value> {
    app.clock.advance(Duration::seconds(61));
    app.tick().await;
    let r = app
        .call(Method::GET, "/api/v1/audit?type=invitation.refused", Some(admin), None)
        .await;
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| json!({"principal_id": e["principal_id"], "reason": e["reason"], "count": e["count"]}))
        .collect()
}

/// A link can never take over an account: not for a person with a
/// password, nor a service, nor on an issuer that cannot have passkeys;
/// and a password and a link together make no sense.
async fn invitations_are_only_for_people_who_cannot_sign_in(backend: Backend) {
    let app = app(backend).await;
    let admin = app.admin_token().await;
    let bob = app.create_human("bob", "correct horse battery", &[]).await;
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/principals/{bob}/invitation"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"error": "conflict", "error_description":
            "bob has a password: an invitation is only for a person with no password and no second factor"})
    );
    let svc = app.create_service("billing", &[]).await;
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/principals/{}/invitation", svc.id),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"error": "invalid_field", "field": "id", "error_description":
            "only people are invited; a service gets a client secret"})
    );
    let r = app
        .call(
            Method::POST,
            "/api/v1/principals",
            Some(&admin),
            Some(json!({"kind": "service", "name": "svc2", "invite": true})),
        )
        .await;
    assert_eq!((r.status, &r.body["field"]), (422, &json!("invite")), "{}", r.body);
    let r = app
        .call(
            Method::POST,
            "/api/v1/principals",
            Some(&admin),
            Some(json!({"kind": "human", "name": "dora", "invite": true, "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"error": "invalid_field", "field": "invite", "error_description":
            "give a password or an invitation, not both: an invited person registers a passkey instead"})
    );
    let r = app
        .call(Method::POST, "/api/v1/principals/nobody/invitation", Some(&admin), None)
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    // Only admins.
    let bobs = app.login("bob", "correct horse battery").await.0;
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/principals/{bob}/invitation"),
            Some(&bobs),
            None,
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);

    // A disabled person's link stops working.
    let carol = invite_new(&app, &admin, "carol").await;
    let token = token_of(&carol.body["invitation"]);
    let id = carol.body["id"].as_str().unwrap();
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/principals/{id}"),
            Some(&admin),
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    refused(&start(&app, &token).await);
    let audit = app.audit_types().await;
    assert_eq!(
        (audit[0].0.as_str(), audit[0].2.as_deref(), audit[0].3.as_deref()),
        ("invitation.refused", Some(id), Some("carol is disabled"))
    );

    // An IP-address issuer cannot have passkeys: nothing is created.
    let ip = TestApp::spawn(backend).await;
    let admin = ip.admin_token().await;
    let r = invite_new(&ip, &admin, "erin").await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(
        r.body["error_description"],
        format!(
            "passkeys need an issuer with a domain name (WebAuthn refuses IP addresses): {}",
            ip.issuer()
        )
    );
    let list = ip.call(Method::GET, "/api/v1/principals", Some(&admin), None).await;
    let names: Vec<_> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert!(!names.contains(&json!("erin")), "{names:?}");
    let page = ip.client.get(ip.url("/oauth/invitation")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::CONFLICT);
    assert!(!page.text().await.unwrap().contains("invitation.js"));
}

/// A new link replaces the person's unused one; a link works for the time
/// asked (five minutes to thirty days), then not.
async fn a_new_link_replaces_the_old_and_links_expire(backend: Backend) {
    let app = app(backend).await;
    let admin = app.admin_token().await;
    let carol = invite_new(&app, &admin, "carol").await;
    let id = carol.body["id"].as_str().unwrap().to_string();
    let old = token_of(&carol.body["invitation"]);
    let path = format!("/api/v1/principals/{id}/invitation");
    let r = app
        .call(Method::POST, &path, Some(&admin), Some(json!({"expires_in": 299})))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"error": "invalid_field", "field": "expires_in", "error_description":
            "must be between 300 and 2592000 seconds"})
    );
    // By name, as the CLI names people.
    let r = app
        .call(
            Method::POST,
            "/api/v1/principals/carol/invitation",
            Some(&admin),
            Some(json!({"expires_in": 300})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(
        (&r.body["principal_id"], &r.body["expires_at"]),
        (&json!(id), &json!("2026-01-01T12:05:00Z"))
    );
    let new = token_of(&r.body);
    assert_ne!(old, new);
    refused(&start(&app, &old).await);
    assert_eq!(start(&app, &new).await.status, 200);
    app.clock.advance(Duration::seconds(300));
    refused(&start(&app, &new).await);
    // The upkeep forgets it once it is past (its retention runs once a minute).
    app.tick().await;
    let count = || {
        app.query(|c| {
            use diesel::prelude::*;
            roster::db::schema::invitations::table
                .count()
                .get_result::<i64>(c)
                .map_err(Into::into)
        })
    };
    assert_eq!(count().await, 1);
    app.clock.advance(Duration::minutes(1));
    app.tick().await;
    assert_eq!(count().await, 0);
    let audit = app.audit_types().await;
    let created: Vec<_> = audit.iter().filter(|e| e.0 == "invitation.created").collect();
    assert_eq!(created.len(), 2);
}

/// Thirty-two browsers answer one link at once, each with its own passkey:
/// exactly one is registered, the others hear that the link is spent, and
/// nobody gets a 5xx.
async fn one_link_answered_by_32_browsers_registers_one_passkey(backend: Backend) {
    let app = app(backend).await;
    let admin = app.admin_token().await;
    let carol = invite_new(&app, &admin, "carol").await;
    let id = carol.body["id"].as_str().unwrap().to_string();
    let token = token_of(&carol.body["invitation"]);
    let mut answers = Vec::new();
    for _ in 0..32 {
        let begun = start(&app, &token).await;
        assert_eq!(begun.status, 200, "{}", begun.body);
        let mut authenticator = WebauthnAuthenticator::new(SoftPasskey::new(true));
        let credential = create_credential(&app, &mut authenticator, &begun.body);
        answers.push((begun.body["ceremony"].as_str().unwrap().to_string(), credential));
    }
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = answers
        .into_iter()
        .map(|(ceremony, credential)| {
            let (app, token) = (app.clone(), token.clone());
            tokio::spawn(async move { finish(&app, &token, &ceremony, &credential).await })
        })
        .collect();
    let mut ok = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            200 => ok.push(r.body),
            _ => refused(&r),
        }
    }
    assert_eq!(ok.len(), 1, "{ok:?}");
    let factors = app
        .call(
            Method::GET,
            &format!("/api/v1/principals/{id}/factors"),
            Some(&admin),
            None,
        )
        .await;
    let listed = factors.body["factors"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{}", factors.body);
    assert_eq!(listed[0]["id"], ok[0]["factor"]["id"]);
    let audit = app.audit_types().await;
    assert_eq!(audit.iter().filter(|e| e.0 == "invitation.used").count(), 1);
    assert_eq!(
        refusals(&app, &admin).await,
        [json!({"principal_id": null, "reason": "unknown, used or expired", "count": 31})]
    );
    // However the race fell, the link is spent by compare-and-set: a late
    // spender (whose read saw it live) changes nothing.
    let now = app.clock.now();
    let spent_again = app
        .query(move |c| {
            use diesel::prelude::*;
            let hash: String = roster::db::schema::invitations::table
                .select(roster::db::schema::invitations::token_hash)
                .first(c)?;
            roster::models::invitation::spend(c, &hash, now)
        })
        .await;
    assert!(!spent_again);
}

/// Garbage gets a clear JSON 4xx: a missing or wrong token, a forged
/// ceremony, a credential that is not one, another person's ceremony.
async fn garbage_at_the_invitation_endpoints_is_a_clear_4xx(backend: Backend) {
    let app = app(backend).await;
    let admin = app.admin_token().await;
    let carol = invite_new(&app, &admin, "carol").await;
    let token = token_of(&carol.body["invitation"]);
    let dave = invite_new(&app, &admin, "dave").await;
    let daves = token_of(&dave.body["invitation"]);

    let r = app
        .call(Method::POST, "/oauth/invitation/start", None, Some(json!({})))
        .await;
    assert_eq!((r.status, &r.body["field"]), (422, &json!("token")), "{}", r.body);
    refused(&start(&app, "x").await);
    refused(&start(&app, &"A".repeat(43)).await);
    let raw = app
        .client
        .post(app.url("/oauth/invitation/start"))
        .header("content-type", "application/json")
        .body("{\"token\":")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);

    let begun = start(&app, &token).await;
    let mut authenticator = WebauthnAuthenticator::new(SoftPasskey::new(true));
    let credential = create_credential(&app, &mut authenticator, &begun.body);
    let ceremony = begun.body["ceremony"].as_str().unwrap();
    // Not a credential.
    let r = finish(&app, &token, ceremony, &json!({"id": "x"})).await;
    assert_eq!(
        (r.status, &r.body["error"]),
        (422, &json!("invalid_field")),
        "{}",
        r.body
    );
    // Another ceremony, or carol's ceremony with dave's link.
    let r = finish(&app, &token, "forged", &credential).await;
    assert_eq!(
        r.body,
        json!({"error": "invalid_request", "error_description":
            "the passkey registration expired (after 5 minutes): start again"})
    );
    let r = finish(&app, &daves, ceremony, &credential).await;
    assert_eq!(r.status, 400, "{}", r.body);
    // The answer to another challenge does not verify.
    let other = start(&app, &token).await;
    let r = finish(&app, &token, other.body["ceremony"].as_str().unwrap(), &credential).await;
    assert_eq!(
        r.body,
        json!({"error": "invalid_request", "error_description": "the passkey could not be verified"})
    );
    // None of these spent the link or registered anything.
    let r = finish(&app, &token, ceremony, &credential).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let audit = app.audit_types().await;
    let reasons: Vec<_> = audit
        .iter()
        .filter(|e| e.0 == "invitation.refused")
        .map(|e| e.3.clone().unwrap_or_default())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("the passkey could not be verified: ")),
        "{reasons:?}"
    );
}

/// A person's passkey answers a fresh second step: a challenge, then the
/// answer in `passkey` instead of a code. Each answer works once; a wrong
/// one counts like a wrong code; a code and a passkey together are refused.
async fn a_passkey_answers_the_fresh_step_of_the_self_service_api(backend: Backend) {
    let app = app(backend).await;
    app.create_human("alice", "correct horse battery", &[]).await;
    let token = app.login("alice", "correct horse battery").await.0;
    let none = app
        .call(
            Method::POST,
            "/api/v1/me/factors/passkeys/challenge",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (none.status, &none.body),
        (
            409,
            &json!({"error": "conflict", "error_description": "alice has no passkey"})
        )
    );
    let mut authenticator = WebauthnAuthenticator::new(SoftPasskey::new(true));
    let register = |name: &str| {
        app.call(
            Method::POST,
            "/api/v1/me/factors/passkeys/start",
            Some(&token),
            Some(json!({"name": name})),
        )
    };
    let begun = register("Laptop").await;
    let credential = create_credential(&app, &mut authenticator, &begun.body);
    let laptop = app
        .call(
            Method::POST,
            "/api/v1/me/factors/passkeys/finish",
            Some(&token),
            Some(json!({"ceremony": begun.body["ceremony"], "credential": credential})),
        )
        .await;
    assert_eq!(laptop.status, 200, "{}", laptop.body);
    assert_eq!(laptop.body["recovery_codes"].as_array().unwrap().len(), 10);
    let begun = register("Phone").await;
    let credential = create_credential(&app, &mut authenticator, &begun.body);
    let phone = app
        .call(
            Method::POST,
            "/api/v1/me/factors/passkeys/finish",
            Some(&token),
            Some(json!({"ceremony": begun.body["ceremony"], "credential": credential})),
        )
        .await;
    assert_eq!(phone.status, 200, "{}", phone.body);
    let phone_id = phone.body["factor"]["id"].as_str().unwrap().to_string();

    // Without a step, with both, or with nothing in it: a clear 422.
    let path = format!("/api/v1/me/factors/{phone_id}");
    for body in [
        json!({}),
        json!({"code": "123456", "passkey": {"ceremony": "x", "credential": {}}}),
    ] {
        let r = app.call(Method::DELETE, &path, Some(&token), Some(body)).await;
        assert_eq!(r.status, 422, "{}", r.body);
    }
    let challenge = app
        .call(
            Method::POST,
            "/api/v1/me/factors/passkeys/challenge",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(challenge.status, 200, "{}", challenge.body);
    assert_eq!(challenge.headers["cache-control"], "no-store");
    let options = serde_json::from_value(challenge.body["options"].clone()).unwrap();
    let origin = url::Url::parse(&app.issuer()).unwrap();
    let answer = serde_json::to_value(authenticator.do_authentication(origin, options).unwrap()).unwrap();
    let step = json!({"passkey": {"ceremony": challenge.body["ceremony"], "credential": answer}});
    let removed = app.call(Method::DELETE, &path, Some(&token), Some(step.clone())).await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    // The same answer again: its challenge is spent, and it counts as a wrong code.
    let laptop_id = laptop.body["factor"]["id"].as_str().unwrap();
    let again = app
        .call(
            Method::DELETE,
            &format!("/api/v1/me/factors/{laptop_id}"),
            Some(&token),
            Some(step),
        )
        .await;
    assert_eq!(
        (again.status, &again.body),
        (
            400,
            &json!({"error": "invalid_code", "error_description":
                "the code is not valid: it may be mistyped, expired or already used"})
        )
    );
    let mine = app.call(Method::GET, "/api/v1/me/factors", Some(&token), None).await;
    let names: Vec<_> = mine.body["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].clone())
        .collect();
    assert_eq!(names, [json!("Laptop")]);
    let audit = app.audit_types().await;
    assert_eq!(
        (audit[0].0.as_str(), audit[0].1.as_str(), audit[0].3.as_deref()),
        ("login.second_factor", "failed", Some("wrong second-factor code"))
    );
}
