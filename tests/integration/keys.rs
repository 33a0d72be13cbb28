//! Signing-key rotation, the argon2 pool, and disabled principals.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{Duration, Utc};
use roster::clock::Clock;

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
    disabled_principals_lose_their_tokens
);

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

    let now = app.clock.now();
    let (svc_id, alice_id) = (svc.id.clone(), alice.clone());
    app.query(move |c| {
        use roster::models::principal::PrincipalStatus::Disabled;
        roster::principals::set_status(c, &svc_id, Disabled, None, now)?;
        roster::principals::set_status(c, &alice_id, Disabled, None, now)
    })
    .await;

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
    let (svc_id, now) = (svc.id.clone(), app.clock.now());
    app.query(move |c| {
        roster::principals::set_status(
            c,
            &svc_id,
            roster::models::principal::PrincipalStatus::Active,
            None,
            now,
        )
    })
    .await;
    app.client_token("billing", &svc.secret).await;
}

/// argon2 runs on a pool of its own: while a flood of password logins queues
/// there, client-credentials issuance still goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_flood_does_not_stall_client_credentials() {
    const LOGINS: usize = 24;
    let app = Arc::new(TestApp::spawn(Backend::Sqlite).await);
    app.create_human("alice", "correct horse battery", &[]).await;
    let svc = app.create_service("billing", &[]).await;
    let done = Arc::new(AtomicUsize::new(0));
    let mut flood = Vec::new();
    for _ in 0..LOGINS {
        let (app, done) = (app.clone(), done.clone());
        flood.push(tokio::spawn(async move {
            let r = app.password_grant("alice", "correct horse battery").await;
            assert_eq!(r.status, 200);
            done.fetch_add(1, Ordering::SeqCst);
        }));
    }
    // Wait until the flood has reached the server (the first logins finish).
    while done.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    app.client_token("billing", &svc.secret).await;
    let finished_before_cc = done.load(Ordering::SeqCst);
    eprintln!("password logins finished before client credentials: {finished_before_cc}/{LOGINS}");
    for f in flood {
        f.await.unwrap();
    }
    assert!(
        finished_before_cc < LOGINS,
        "client credentials waited for all {LOGINS} password logins"
    );
}
