//! Password guessing is slowed down, from every instance, without locking the
//! owner out from another address.

use chrono::{Duration, Utc};
use reqwest::Method;
use roster::clock::Clock;
use serde_json::json;

use crate::on_both_backends;
use crate::support::{Backend, FormReply, TestApp};

on_both_backends!(
    guessing_is_throttled_per_name_and_network,
    throttling_counts_across_instances,
    guessing_a_client_secret_is_throttled
);

async fn guessing_a_client_secret_is_throttled(backend: Backend) {
    let app = TestApp::builder(backend).clock(Clock::manual(Utc::now())).spawn().await;
    let svc = app.create_service("billing", &[]).await;
    let guess = |secret: &'static str| {
        let app = &app;
        async move {
            app.post_form(
                "/oauth/token",
                Some(("billing", secret)),
                &[("grant_type", "client_credentials")],
            )
            .await
        }
    };
    for _ in 0..5 {
        assert_eq!(guess("wrong-secret").await.status, 401);
    }
    let r = guess("wrong-secret").await;
    assert_eq!((r.status, r.error(), r.header("retry-after")), (429, "slow_down", "1"));
    // The record of the block names the service whose secret is guessed.
    let admin = app.admin_token().await;
    let throttled = app
        .call(
            Method::GET,
            &format!("/api/v1/audit?principal={}&type=login.throttled", svc.id),
            Some(&admin),
            None,
        )
        .await;
    let items = throttled.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", throttled.body);
    assert_eq!(
        (&items[0]["reason"], &items[0]["details"]),
        (
            &json!("too many failed client authentications"),
            &json!({"client_id": "billing", "retry_after": 1})
        )
    );
    // The real secret waits too: the block is checked before any secret.
    let r = app.client_grant("billing", &svc.secret).await;
    assert_eq!(r.status, 429);
    app.clock.advance(Duration::seconds(1));
    app.client_token("billing", &svc.secret).await;
    // The success cleared the counter: five more guesses before a block.
    for _ in 0..5 {
        assert_eq!(guess("wrong-secret").await.status, 401);
    }
    assert_eq!(guess("wrong-secret").await.status, 429);
}

/// A client whose requests come from `ip` (any address of 127.0.0.0/8).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn login_from(app: &TestApp, client: &reqwest::Client, user: &str, password: &str) -> FormReply {
    let resp = client
        .post(app.url("/oauth/token"))
        .form(&[("grant_type", "password"), ("username", user), ("password", password)])
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.json().await.unwrap();
    FormReply { status, headers, body }
}

async fn guessing_is_throttled_per_name_and_network(backend: Backend) {
    let app = TestApp::builder(backend).clock(Clock::manual(Utc::now())).spawn().await;
    app.create_human("alice", "correct horse battery", &[]).await;
    let attacker = client_from("127.0.0.1");
    let owner = client_from("127.0.1.1");

    // Five wrong guesses are answered as usual...
    for _ in 0..5 {
        let r = login_from(&app, &attacker, "alice", "wrong-guess-123").await;
        assert_eq!((r.status, r.error()), (400, "invalid_grant"));
    }
    // ...the sixth is slowed down, before any password check.
    let r = login_from(&app, &attacker, "alice", "correct horse battery").await;
    assert_eq!(
        (r.status, r.body.clone()),
        (
            429,
            json!({"error": "slow_down", "error_description": "too many failed logins: retry later"})
        )
    );
    assert_eq!(r.header("retry-after"), "1");
    // The owner, from another network, is not kept out at all.
    let r = login_from(&app, &owner, "alice", "correct horse battery").await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Unknown names are throttled the same way, so 429s do not reveal who exists.
    for _ in 0..5 {
        assert_eq!(login_from(&app, &attacker, "nobody", "x-guess-123").await.status, 400);
    }
    assert_eq!(login_from(&app, &attacker, "nobody", "x-guess-123").await.status, 429);

    // Each further failure doubles the wait.
    app.clock.advance(Duration::seconds(1));
    assert_eq!(
        login_from(&app, &attacker, "alice", "wrong-guess-123").await.status,
        400
    );
    let r = login_from(&app, &attacker, "alice", "wrong-guess-123").await;
    assert_eq!((r.status, r.header("retry-after")), (429, "2"));

    // Admins see the blocks and clear them; a success clears the pair too.
    let admin = app.admin_token().await;
    let listed = app.call(Method::GET, "/api/v1/throttles", Some(&admin), None).await;
    let alice_id = app
        .call(Method::GET, "/api/v1/principals?q=alice", Some(&admin), None)
        .await
        .body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mine: Vec<_> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["principal_id"] == alice_id.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "{}", listed.body);
    assert_eq!(
        (mine[0]["scope"].as_str(), mine[0]["failures"].as_i64()),
        (Some("pair"), Some(6))
    );
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/principals/{alice_id}/throttle"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        login_from(&app, &attacker, "alice", "correct horse battery")
            .await
            .status,
        200
    );
    let audit = app.audit_types().await;
    assert!(audit.iter().any(|(t, ..)| t == "throttle.cleared"), "{audit:?}");

    // The throttling records say whose account was guessed: found by the
    // person's id, folded per (source, principal); a name that is nobody's
    // is kept only as a keyed hash. (The tick writes a closed window's count.)
    app.clock.advance(Duration::seconds(61));
    app.tick().await;
    let throttled = app
        .call(
            Method::GET,
            &format!("/api/v1/audit?principal={alice_id}&type=login.throttled"),
            Some(&admin),
            None,
        )
        .await;
    let items = throttled.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "both blocks fold into one row: {}", throttled.body);
    let e = &items[0];
    assert_eq!(
        (
            &e["principal_id"],
            &e["remote_addr"],
            &e["reason"],
            &e["outcome"],
            &e["details"],
            &e["count"]
        ),
        (
            &json!(alice_id),
            &json!("127.0.0.1"),
            &json!("too many failed logins"),
            &json!("failed"),
            &json!({"retry_after": 1}),
            &json!(2)
        ),
        "{e}"
    );
    let all = app
        .call(Method::GET, "/api/v1/audit?type=login.throttled", Some(&admin), None)
        .await;
    let nobody: Vec<_> = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["principal_id"].is_null())
        .collect();
    assert_eq!(nobody.len(), 1, "{}", all.body);
    assert_eq!(nobody[0]["details"]["username_hash"].as_str().map(str::len), Some(16));
    assert!(!all.body.to_string().contains("nobody"), "{}", all.body);
}

async fn throttling_counts_across_instances(backend: Backend) {
    let start = Utc::now();
    let a = TestApp::builder(backend).clock(Clock::manual(start)).spawn().await;
    let b = TestApp::builder(backend)
        .clock(Clock::manual(start))
        .same_database_as(&a)
        .spawn()
        .await;
    a.create_human("alice", "correct horse battery", &[]).await;
    let attacker = client_from("127.0.0.1");
    for app in [&a, &b, &a, &b, &a] {
        assert_eq!(login_from(app, &attacker, "alice", "wrong-guess-123").await.status, 400);
    }
    assert_eq!(login_from(&b, &attacker, "alice", "wrong-guess-123").await.status, 429);
    assert_eq!(login_from(&a, &attacker, "alice", "wrong-guess-123").await.status, 429);
}

/// Behind a trusted proxy the client address is the forwarded one, so users
/// behind one proxy are not throttled together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_addresses_count_behind_a_trusted_proxy() {
    let app = TestApp::builder(Backend::Sqlite)
        .settings(|mut s| {
            s.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
            s
        })
        .spawn()
        .await;
    app.create_human("alice", "correct horse battery", &[]).await;
    let via = |forwarded: &'static str, password: &'static str| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/oauth/token"))
                .header("x-forwarded-for", forwarded)
                .form(&[
                    ("grant_type", "password"),
                    ("username", "alice"),
                    ("password", password),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    for _ in 0..5 {
        assert_eq!(via("6.6.6.6, 198.51.100.7", "wrong-guess-123").await, 400);
    }
    assert_eq!(via("198.51.100.7", "wrong-guess-123").await, 429);
    // Someone else behind the same proxy is not held back, whatever the
    // attacker writes to the left of the header.
    assert_eq!(via("198.51.100.7, 203.0.113.9", "correct horse battery").await, 200);
    let audit = app.audit_types().await;
    assert!(
        audit
            .iter()
            .any(|(t, _, _, _, remote)| t == "login.password" && remote.as_deref() == Some("198.51.100.7")),
        "{audit:?}"
    );
}
