//! Signing-key rotation, the argon2 pool, and disabled principals.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{Duration, Utc};
use roster::clock::Clock;
use roster::models::principal::PrincipalStatus::{Active, Disabled};

use crate::on_both_backends;
use crate::support::{Backend, TEST_PEPPER, TestApp, roster_bin, verify_with_jwks};

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

fn jwks_kids(jwks: &jsonwebtoken::jwk::JwkSet) -> Vec<String> {
    let mut kids: Vec<String> = jwks.keys.iter().filter_map(|k| k.common.key_id.clone()).collect();
    kids.sort();
    kids
}

on_both_backends!(
    rotation_publishes_first_and_keeps_old_tokens_valid,
    automatic_rotation_follows_the_schedule,
    disabled_principals_lose_their_tokens,
    a_failed_key_reload_keeps_the_last_good_keys,
    an_unknown_kid_makes_an_instance_reload_once,
    revoking_a_token_of_a_key_not_loaded_yet_is_a_503,
    a_refresh_that_cannot_be_signed_leaves_the_token_valid
);

/// When the new access token cannot be signed, the refresh rotation does not
/// commit: the presented refresh token stays valid and its family alive.
async fn a_refresh_that_cannot_be_signed_leaves_the_token_valid(backend: Backend) {
    use diesel::RunQueryDsl;
    let app = TestApp::builder(backend).clock(Clock::manual(Utc::now())).spawn().await;
    app.create_human("alice", "correct horse battery", &[]).await;
    let (_, refresh) = app.login("alice", "correct horse battery").await;
    let set_state = |state: &'static str| {
        move |c: &mut roster::db::DbConnection| {
            diesel::sql_query(format!(
                "UPDATE signing_keys SET state = '{state}', publish_until = activated_at"
            ))
            .execute(c)?;
            Ok(())
        }
    };
    // No key may sign: every key retired (still published).
    app.query(set_state("retired")).await;
    app.clock.advance(Duration::seconds(6));
    app.tick().await;
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
    let r = app.post_form("/oauth/token", None, &form).await;
    assert_eq!((r.status, r.error()), (500, "server_error"), "{}", r.body);
    // The keys are back: the same refresh token works, once.
    app.query(set_state("active")).await;
    app.clock.advance(Duration::seconds(6));
    app.tick().await;
    let r = app.post_form("/oauth/token", None, &form).await;
    assert_eq!(r.status, 200, "the failed attempt spent nothing: {}", r.body);
    assert!(r.body["refresh_token"].is_string());
}

/// Two instances on one database, and a key rotated and promoted on A that
/// B has not loaded (B does not tick): (A, B, the service `billing`, a
/// token A signed with the new key, its `kid`).
async fn a_key_only_a_has_loaded(backend: Backend) -> (TestApp, TestApp, crate::support::TestService, String, String) {
    let start = Utc::now();
    let shared = |mut s: roster::config::Settings| {
        s.token.issuer = roster::auth::jwt::Issuer::new("https://roster.test");
        s.keys.publish_delay = Duration::seconds(60);
        s
    };
    let a = TestApp::builder(backend)
        .clock(Clock::manual(start))
        .settings(shared)
        .spawn()
        .await;
    let b = TestApp::builder(backend)
        .clock(Clock::manual(start))
        .settings(shared)
        .same_database_as(&a)
        .spawn()
        .await;
    let svc = a.create_service("billing", &[]).await;
    let rotated = a
        .query({
            let pepper = a.state.oauth().pepper.clone();
            move |c| roster::auth::keys::rotate(c, &pepper, roster::auth::keys::SigningAlg::EdDsa, start)
        })
        .await;
    // A promotes the new key after the publish delay; B does not tick.
    a.clock.advance(Duration::seconds(61));
    b.clock.advance(Duration::seconds(61));
    a.tick().await;
    let token = a.client_token("billing", &svc.secret).await;
    assert_eq!(kid(&token), rotated);
    (a, b, svc, token, rotated)
}

/// Instance A signs with a key instance B has not loaded yet (B's tick has
/// not run): B reloads on the unknown `kid` instead of refusing the token,
/// and a forged `kid` cannot make it reload on every request.
async fn an_unknown_kid_makes_an_instance_reload_once(backend: Backend) {
    let (_a, b, _, token, rotated) = a_key_only_a_has_loaded(backend).await;
    assert!(!b.state.keys().knows(&rotated));
    let me = b.call(reqwest::Method::GET, "/api/v1/me", Some(&token), None).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert!(b.state.keys().knows(&rotated), "B reloaded on the unknown kid");

    // A forged kid: refused, and it claims the reload slot only once a second.
    assert!(
        b.state
            .keys()
            .claim_unknown_kid_reload(b.clock.now() + Duration::seconds(5))
    );
    assert!(
        !b.state
            .keys()
            .claim_unknown_kid_reload(b.clock.now() + Duration::seconds(5))
    );
}

/// B cannot load A's new key just now (its reload slot was spent a moment
/// ago): revoking A's token at B is a 503 to retry, never a 200 that revoked
/// nothing; once B may reload, the same request revokes it.
async fn revoking_a_token_of_a_key_not_loaded_yet_is_a_503(backend: Backend) {
    let (a, b, svc, token, _) = a_key_only_a_has_loaded(backend).await;
    // A forged kid spent B's reload slot for this second.
    assert!(b.state.keys().claim_unknown_kid_reload(b.clock.now()));

    let form = [("token", token.as_str())];
    let revoke = || b.post_form("/oauth/revoke", Some(("billing", &svc.secret)), &form);
    let r = revoke().await;
    assert_eq!(
        (r.status, r.header("retry-after"), r.body.clone()),
        (
            503,
            "1",
            serde_json::json!({"error": "temporarily_unavailable", "error_description": "the service is temporarily unavailable"})
        )
    );
    let active = a
        .post_form(
            "/oauth/introspect",
            Some(("billing", &svc.secret)),
            &[("token", &token)],
        )
        .await;
    assert_eq!(active.body["active"], true, "nothing was revoked");

    b.clock.advance(Duration::seconds(2));
    assert_eq!(revoke().await.status, 200);
    // A revocation made on B reaches A's live view when A next follows the
    // revocation log (five times a second in a server; the tick here).
    a.tick().await;
    let inactive = a
        .post_form(
            "/oauth/introspect",
            Some(("billing", &svc.secret)),
            &[("token", &token)],
        )
        .await;
    assert_eq!(inactive.body, serde_json::json!({"active": false}));
}

/// The key store serves its last good snapshot when a reload fails, and
/// readiness says so once the keys are older than the documented bound.
async fn a_failed_key_reload_keeps_the_last_good_keys(backend: Backend) {
    let app = TestApp::builder(backend).clock(Clock::manual(Utc::now())).spawn().await;
    let svc = app.create_service("billing", &[]).await;
    let before = app.client_token("billing", &svc.secret).await;
    let jwks_before = jwks_kids(&app.jwks().await);

    // The stored active key can no longer be opened: every reload fails.
    app.query(|c| {
        use diesel::RunQueryDsl;
        diesel::sql_query("UPDATE signing_keys SET private_key = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAA'").execute(c)?;
        Ok(())
    })
    .await;
    app.clock.advance(Duration::seconds(6));
    let failed = app.state.upkeep().tick().await;
    assert!(failed.is_err(), "the reload must fail: {failed:?}");

    // Requests are served from the last good snapshot.
    let after = app.client_token("billing", &svc.secret).await;
    assert_eq!(kid(&after), kid(&before));
    assert_eq!(jwks_kids(&app.jwks().await), jwks_before);
    let (status, body) = app.get_json("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["keys_age_seconds"], 6);

    // Past the bound (6 refresh intervals, at least 30 s), readiness fails.
    let bound = app.state.upkeep().keys_stale_after().num_seconds();
    assert_eq!(bound, 30);
    app.clock.advance(Duration::seconds(bound));
    assert!(app.state.upkeep().tick().await.is_err());
    let (status, body) = app.get_json("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body,
        serde_json::json!({
            "status": "unavailable",
            "database": if backend == Backend::Sqlite { "sqlite" } else { "postgres" },
            "keys_age_seconds": 36,
            "error": "keys_stale",
            "error_description": "the signing keys were last loaded 36 s ago (bound 30 s)",
        })
    );
    // Still serving: a stale key set is a warning for the operator, not an outage.
    app.client_token("billing", &svc.secret).await;
}

async fn rotation_publishes_first_and_keeps_old_tokens_valid(backend: Backend) {
    let app = TestApp::builder(backend)
        .clock(Clock::manual(Utc::now()))
        .settings(|mut s| {
            s.keys.publish_delay = Duration::seconds(60);
            s
        })
        .spawn()
        .await;
    let svc = app.create_service("billing", &[]).await;
    let before = app.client_token("billing", &svc.secret).await;
    let old_kid = kid(&before);

    // `roster keys rotate` against the same database, as an operator would.
    let out = Command::new(roster_bin())
        .env("DATABASE_URL", &app.db.url)
        .env("ROSTER_KEY_FILE", app.db.key_file())
        .env("ROSTER_SECRET_PEPPER", TEST_PEPPER)
        .args(["keys", "rotate"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{:?} stdout={} stderr={}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rotated: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let new_kid = rotated["kid"].as_str().unwrap().to_string();
    assert_ne!(new_kid, old_kid);

    // Private keys are stored encrypted: what the table holds is not a key.
    let rows = app.query(roster::models::signing_key::all).await;
    assert_eq!(rows.len(), 2);
    for row in rows {
        use base64::Engine;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&row.private_key)
            .unwrap();
        assert!(
            ring::signature::Ed25519KeyPair::from_pkcs8(&raw).is_err(),
            "plaintext key stored"
        );
        assert!(
            ring::signature::Ed25519KeyPair::from_pkcs8(&raw[12..]).is_err(),
            "plaintext key stored"
        );
        assert!(!row.public_jwk.contains("\"d\""), "private part in the public JWK");
    }

    // Phase 1: once instances reload, the new key is published but signs nothing.
    // Reloading is the background tick's job, never a request's.
    app.clock.advance(Duration::seconds(6));
    assert_eq!(
        jwks_kids(&app.jwks().await),
        vec![old_kid.clone()],
        "no request reloads the keys"
    );
    app.tick().await;
    let jwks = app.jwks().await;
    let mut both = vec![old_kid.clone(), new_kid.clone()];
    both.sort();
    assert_eq!(jwks_kids(&jwks), both);
    assert_eq!(kid(&app.client_token("billing", &svc.secret).await), old_kid);

    // Phase 2: after the publish delay it signs.
    app.clock.advance(Duration::seconds(61));
    app.tick().await;
    let after = app.client_token("billing", &svc.secret).await;
    assert_eq!(kid(&after), new_kid);

    // Phase 3: the old key stays published, so the earlier token still verifies.
    let jwks = app.jwks().await;
    assert_eq!(jwks_kids(&jwks), both);
    verify_with_jwks(&jwks, &before, &app.issuer(), &app.issuer());
    verify_with_jwks(&jwks, &after, &app.issuer(), &app.issuer());
    let me = app
        .client
        .get(app.url("/api/v1/me"))
        .bearer_auth(&before)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    // Once every token it signed has expired (5 min + 60 s leeway), it is gone.
    app.clock.advance(Duration::seconds(300 + 60 + 6));
    app.tick().await;
    assert_eq!(jwks_kids(&app.jwks().await), vec![new_kid]);
}

async fn automatic_rotation_follows_the_schedule(backend: Backend) {
    let app = TestApp::builder(backend)
        .clock(Clock::manual(Utc::now()))
        .settings(|mut s| {
            s.keys.publish_delay = Duration::seconds(60);
            s.keys.rotation_interval = Some(Duration::hours(1));
            s
        })
        .spawn()
        .await;
    let svc = app.create_service("billing", &[]).await;
    let first = kid(&app.client_token("billing", &svc.secret).await);
    assert_eq!(app.jwks().await.keys.len(), 1);

    app.clock.advance(Duration::minutes(59));
    app.tick().await;
    assert_eq!(app.jwks().await.keys.len(), 1, "not due yet");
    app.clock.advance(Duration::minutes(1) + Duration::seconds(6));
    app.tick().await;
    assert_eq!(app.jwks().await.keys.len(), 2, "a new key is published when due");
    assert_eq!(kid(&app.client_token("billing", &svc.secret).await), first);
    app.clock.advance(Duration::seconds(66));
    app.tick().await;
    assert_ne!(
        kid(&app.client_token("billing", &svc.secret).await),
        first,
        "and signs after the delay"
    );
}

async fn disabled_principals_lose_their_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let svc = app.create_service("billing", &[]).await;
    let rs = app.create_service("resource-server", &[]).await;
    let alice = app.create_human("alice", "correct horse battery", &[]).await;
    let access = app.client_token("billing", &svc.secret).await;
    let (_, refresh) = app.login("alice", "correct horse battery").await;

    let (now, elsewhere) = (app.clock.now(), app.elsewhere());
    for id in [&svc.id, &alice] {
        elsewhere.set_status(None, id.clone(), Disabled, now).await.unwrap();
    }
    // A change made beside this instance's API (as by the CLI or another
    // instance) reaches its cache of verified clients on the next tick.
    app.tick().await;

    let r = app
        .post_form(
            "/oauth/introspect",
            Some(("resource-server", &rs.secret)),
            &[("token", &access)],
        )
        .await;
    assert_eq!(r.body, serde_json::json!({"active": false}));
    let r = app.client_grant("billing", &svc.secret).await;
    assert_eq!((r.status, r.error()), (401, "invalid_client"));
    let r = app
        .post_form(
            "/oauth/token",
            None,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(r.error(), "invalid_grant");
    let r = app.password_grant("alice", "correct horse battery").await;
    assert_eq!(r.error(), "invalid_grant");

    // Re-enabled: new tokens again (the old refresh token stays dead).
    elsewhere
        .set_status(None, svc.id.clone(), Active, app.clock.now())
        .await
        .unwrap();
    let fresh = app.client_token("billing", &svc.secret).await;
    // Re-enabling revives no token issued before the disable.
    let r = app
        .post_form(
            "/oauth/introspect",
            Some(("resource-server", &rs.secret)),
            &[("token", &access)],
        )
        .await;
    assert_eq!(r.body, serde_json::json!({"active": false}), "the old token stays dead");
    let me = app.call(reqwest::Method::GET, "/api/v1/me", Some(&access), None).await;
    assert_eq!((me.status, me.error()), (401, "invalid_token"));
    let r = app
        .post_form(
            "/oauth/introspect",
            Some(("resource-server", &rs.secret)),
            &[("token", &fresh)],
        )
        .await;
    assert_eq!(
        r.body["active"], true,
        "a token issued after re-enabling works: {}",
        r.body
    );
}

/// An admin whose `admin` scope is removed loses admin power at once, with
/// the token already in hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_admin_loses_power_at_once() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let root = app.admin_token().await;
    app.create_human("dana", "dana-password-123", &["admin", "reports:read"])
        .await;
    let (dana, dana_refresh) = app.login("dana", "dana-password-123").await;
    let r = app
        .call(reqwest::Method::GET, "/api/v1/principals", Some(&dana), None)
        .await;
    assert_eq!(r.status, 200);
    let rs = app.create_service("resource-server", &[]).await;
    let introspected = |token: String| {
        let (app, secret) = (&app, rs.secret.clone());
        async move {
            let r = app
                .post_form(
                    "/oauth/introspect",
                    Some(("resource-server", &secret)),
                    &[("token", &token)],
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
            (r.body["active"].clone(), r.body["scope"].clone())
        }
    };
    assert_eq!(
        introspected(dana.clone()).await,
        (serde_json::json!(true), serde_json::json!("admin reports:read"))
    );
    let dana_id = app
        .call(reqwest::Method::GET, "/api/v1/principals?q=dana", Some(&root), None)
        .await
        .body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/principals/{dana_id}"),
            Some(&root),
            Some(serde_json::json!({"scopes": ["reports:read"]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Her token still says admin; Roster asks the database.
    let r = app
        .call(
            reqwest::Method::POST,
            "/api/v1/principals",
            Some(&dana),
            Some(serde_json::json!({"kind": "human", "name": "mallory", "password": "mallory-pw-123", "scopes": ["admin"]})),
        )
        .await;
    assert_eq!((r.status, r.error()), (403, "forbidden"), "{}", r.body);
    assert_eq!(
        app.password_grant("mallory", "mallory-pw-123").await.status,
        400,
        "no admin was made"
    );
    let r = app
        .call(reqwest::Method::GET, "/api/v1/principals", Some(&dana), None)
        .await;
    assert_eq!(r.status, 403);
    // What she still holds keeps working.
    let me = app.call(reqwest::Method::GET, "/api/v1/me", Some(&dana), None).await;
    assert_eq!(me.status, 200);
    // Every answer about her old tokens says what they can do now: her own
    // view, and introspection of the access and the refresh token.
    assert_eq!(me.body["scopes"], serde_json::json!(["reports:read"]), "{}", me.body);
    assert_eq!(
        introspected(dana.clone()).await,
        (serde_json::json!(true), serde_json::json!("reports:read"))
    );
    assert_eq!(
        introspected(dana_refresh.clone()).await,
        (serde_json::json!(true), serde_json::json!("reports:read"))
    );
}

/// argon2 runs on a pool of its own: while every argon2 thread is taken,
/// client-credentials issuance still goes through, and a password login waits
/// for argon2 instead of taking a database thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_argon2_pool_does_not_stall_client_credentials() {
    let app = Arc::new(TestApp::spawn(Backend::Sqlite).await);
    app.create_human("alice", "correct horse battery", &[]).await;
    let svc = app.create_service("billing", &[]).await;

    // Take every argon2 thread, and hold them until released.
    let hold = ArgonHold::take_all(&app.state.oauth().argon).await;

    let login = {
        let app = app.clone();
        tokio::spawn(async move { app.password_grant("alice", "correct horse battery").await })
    };
    // Issued while argon2 is fully taken (the guard only turns a stall into
    // a failure instead of a hang).
    let issued = Arc::new(AtomicUsize::new(0));
    let issue = async {
        for _ in 0..5 {
            app.client_token("billing", &svc.secret).await;
            issued.fetch_add(1, Ordering::SeqCst);
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), issue)
        .await
        .expect("client credentials stalled behind argon2");
    assert_eq!(issued.load(Ordering::SeqCst), 5);
    assert!(!login.is_finished(), "the password login cannot finish without argon2");

    hold.release().await;
    let r = login.await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
}

/// The argon2 queue is bounded: once it is full, a password login is
/// answered 503 with Retry-After at once, and client credentials still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_argon2_queue_answers_503() {
    const QUEUE: usize = 2;
    let app = Arc::new(
        TestApp::builder(Backend::Sqlite)
            .settings(|mut s| {
                s.argon_queue = QUEUE;
                s
            })
            .spawn()
            .await,
    );
    app.create_human("alice", "correct horse battery", &[]).await;
    let svc = app.create_service("billing", &[]).await;
    let argon = app.state.oauth().argon.clone();
    let hold = ArgonHold::take_all(&argon).await;
    let queued: Vec<_> = (0..QUEUE)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { app.password_grant("alice", "correct horse battery").await.status })
        })
        .collect();
    let fill = async {
        while argon.waiting() < QUEUE {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), fill)
        .await
        .expect("the queue filled");

    let r = app.password_grant("alice", "correct horse battery").await;
    assert_eq!(
        (r.status, r.body.clone()),
        (
            503,
            serde_json::json!({"error": "temporarily_unavailable", "error_description": "the service is temporarily unavailable"})
        )
    );
    assert_eq!(r.header("retry-after"), "1");
    app.client_token("billing", &svc.secret).await;

    hold.release().await;
    for q in queued {
        assert_eq!(q.await.unwrap(), 200, "queued logins finish once argon2 is free");
    }
}

/// A disable that lands while a password login waits for argon2 stops it:
/// the issuing transaction checks the principal again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disable_during_the_password_check_stops_the_login() {
    let app = Arc::new(TestApp::spawn(Backend::Sqlite).await);
    let alice = app.create_human("alice", "correct horse battery", &[]).await;
    let argon = app.state.oauth().argon.clone();
    let hold = ArgonHold::take_all(&argon).await;
    // The login has loaded alice and waits for argon2...
    let login = {
        let app = app.clone();
        tokio::spawn(async move { app.password_grant("alice", "correct horse battery").await })
    };
    let queued = async {
        while argon.waiting() < 1 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), queued)
        .await
        .expect("the login queued");
    // ...when an admin disables her.
    app.elsewhere()
        .set_status(None, alice, Disabled, app.clock.now())
        .await
        .unwrap();
    hold.release().await;
    let r = login.await.unwrap();
    assert_eq!(
        (r.status, r.body.clone()),
        (
            400,
            serde_json::json!({"error": "invalid_grant", "error_description": "invalid username or password"})
        )
    );
    let tokens = app
        .query(|c| {
            use diesel::prelude::*;
            use roster::db::schema::refresh_tokens;
            Ok(refresh_tokens::table.count().get_result::<i64>(c)?)
        })
        .await;
    assert_eq!(tokens, 0, "no refresh token was issued");
}

/// Two instances on one database agree at once: a token from A introspects
/// on B, a revocation on A holds on B, a secret deleted on A stops working on
/// B, and a key rotated on A is in B's JWKS before any token is signed with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_agree() {
    let backend = if cfg!(roster_test_postgres) {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    let start = Utc::now();
    let shared = |mut s: roster::config::Settings| {
        s.token.issuer = roster::auth::jwt::Issuer::new("https://roster.test");
        s.keys.publish_delay = Duration::seconds(60);
        s
    };
    let a = TestApp::builder(backend)
        .clock(Clock::manual(start))
        .settings(shared)
        .spawn()
        .await;
    let b = TestApp::builder(backend)
        .clock(Clock::manual(start))
        .settings(shared)
        .same_database_as(&a)
        .spawn()
        .await;
    let svc = a.create_service("billing", &[]).await;
    let rs = a.create_service("reports", &[]).await;
    let token = a.client_token("billing", &svc.secret).await;
    async fn introspect(app: &TestApp, secret: &str, token: &str) -> serde_json::Value {
        app.post_form("/oauth/introspect", Some(("reports", secret)), &[("token", token)])
            .await
            .body["active"]
            .clone()
    }
    assert_eq!(introspect(&b, &rs.secret, &token).await, true);
    let r = a
        .post_form("/oauth/revoke", Some(("billing", &svc.secret)), &[("token", &token)])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        introspect(&b, &rs.secret, &token).await,
        false,
        "revoked on A, refused on B"
    );

    // A second secret, the first deleted on A: B refuses the first at once.
    let admin = a.admin_token().await;
    let second = a
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/principals/{}/secrets", svc.id),
            Some(&admin),
            None,
        )
        .await;
    let first_id = a
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/principals/{}/secrets", svc.id),
            Some(&admin),
            None,
        )
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] != second.body["id"])
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = a
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/principals/{}/secrets/{first_id}", svc.id),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(b.client_grant("billing", &svc.secret).await.status, 401);
    b.client_token("billing", second.body["client_secret"].as_str().unwrap())
        .await;

    // A rotation on A is in B's JWKS (after B's next tick) before it signs.
    let kid = a
        .query({
            let pepper = a.state.oauth().pepper.clone();
            move |c| roster::auth::keys::rotate(c, &pepper, roster::auth::keys::SigningAlg::EdDsa, start)
        })
        .await;
    b.clock.advance(Duration::seconds(6));
    b.tick().await;
    assert!(jwks_kids(&b.jwks().await).contains(&kid), "published on B");
    let before = a
        .client_token("billing", second.body["client_secret"].as_str().unwrap())
        .await;
    assert_ne!(super::keys::kid(&before), kid, "not signing yet");
}

/// Every argon2 thread of an app, held until released, so that a test can
/// show what happens while argon2 is fully taken.
struct ArgonHold {
    release: std::sync::mpsc::Sender<()>,
    holders: Vec<tokio::task::JoinHandle<()>>,
}

impl ArgonHold {
    async fn take_all(argon: &roster::blocking::BlockingPool) -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel::<()>();
        let (release, held) = std::sync::mpsc::channel::<()>();
        let held = Arc::new(std::sync::Mutex::new(held));
        let mut holders = Vec::new();
        for _ in 0..cores {
            let (argon, started_tx, held) = (argon.clone(), started_tx.clone(), held.clone());
            holders.push(tokio::spawn(async move {
                argon
                    .run(move || {
                        started_tx.send(()).unwrap();
                        let _ = held.lock().unwrap().recv();
                    })
                    .await
                    .unwrap();
            }));
        }
        for _ in 0..cores {
            started.recv().await.unwrap();
        }
        Self { release, holders }
    }

    async fn release(self) {
        for _ in 0..self.holders.len() {
            self.release.send(()).unwrap();
        }
        for h in self.holders {
            h.await.unwrap();
        }
    }
}
