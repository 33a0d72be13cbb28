//! Introspection from memory: the live view answers the steady state with no
//! database read, stays exact on the instance that made a change, goes back
//! to the database when it falls behind, and (with real processes) carries
//! a change made on one instance to another within the documented bound.

use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, Utc};
use roster::clock::Clock;
use serde_json::{Value, json};

use crate::metrics::{scrape, value};
use crate::on_both_backends;
use crate::support::process::{Roster, free_port};
use crate::support::{Backend, FormReply, TestApp, claims_of};

on_both_backends!(
    introspection_answers_from_memory_and_is_exact_where_the_change_was_made,
    a_view_that_fell_behind_reads_the_database,
    a_revocation_on_one_instance_reaches_introspection_on_another,
);

async fn introspect(app: &TestApp, rs: (&str, &str), token: &str) -> FormReply {
    app.post_form("/oauth/introspect", Some(rs), &[("token", token)]).await
}

async fn introspection_answers_from_memory_and_is_exact_where_the_change_was_made(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rs = app.create_service("resource-server", &[]).await;
    let svc = app
        .create_service("billing", &["invoices:read", "invoices:write"])
        .await;
    let admin = app.admin_token().await;
    let rs = ("resource-server", rs.secret.as_str());
    app.tick().await;
    let view = &app.state.oauth().live;

    // The first answer reads the principal; the next ones are from memory.
    let token = app.client_token("billing", &svc.secret).await;
    assert_eq!(introspect(&app, rs, &token).await.body["active"], true);
    let before = view.answered_from_memory();
    for _ in 0..3 {
        let r = introspect(&app, rs, &token).await;
        assert_eq!(r.body["scope"], "invoices:read invoices:write");
    }
    assert_eq!(view.answered_from_memory(), before + 3);

    // A demotion made here: the next answer already knows.
    let r = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/principals/{}", svc.id),
            Some(&admin),
            Some(json!({"scopes": ["invoices:read"]})),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = introspect(&app, rs, &token).await;
    assert_eq!(
        (r.body["active"].clone(), r.body["scope"].clone()),
        (json!(true), json!("invoices:read"))
    );

    // A revocation made here: inactive at once, from memory.
    let revoked = app.client_token("billing", &svc.secret).await;
    assert_eq!(introspect(&app, rs, &revoked).await.body["active"], true);
    let r = app
        .post_form("/oauth/revoke", Some(("billing", &svc.secret)), &[("token", &revoked)])
        .await;
    assert_eq!(r.status, 200);
    let answered = view.answered_from_memory();
    assert_eq!(introspect(&app, rs, &revoked).await.body, json!({"active": false}));
    assert_eq!(view.answered_from_memory(), answered + 1);

    // A disable made here: every token of the principal, at once.
    let r = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/principals/{}", svc.id),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(introspect(&app, rs, &token).await.body, json!({"active": false}));
}

async fn a_view_that_fell_behind_reads_the_database(backend: Backend) {
    let app = TestApp::builder(backend).clock(Clock::manual(Utc::now())).spawn().await;
    let rs = app.create_service("resource-server", &[]).await;
    let svc = app.create_service("billing", &[]).await;
    let rs = ("resource-server", rs.secret.as_str());
    app.tick().await;
    let token = app.client_token("billing", &svc.secret).await;
    assert_eq!(introspect(&app, rs, &token).await.body["active"], true);
    assert_eq!(introspect(&app, rs, &token).await.body["active"], true);

    // Revoked beside this instance (by another instance, which writes the
    // deny list and the log in one transaction), and this instance's view
    // has not followed the log for longer than it may.
    let claims = claims_of(&token);
    let (jti, exp) = (
        claims["jti"].as_str().unwrap().to_string(),
        claims["exp"].as_i64().unwrap(),
    );
    let now = app.clock.now();
    app.query(move |c| {
        roster::db::transaction(c, |tx| {
            let exp = chrono::DateTime::from_timestamp(exp, 0).unwrap();
            roster::models::revoked_token::insert(tx, &jti, exp, now)
        })
    })
    .await;
    app.clock
        .advance(roster::auth::live::MAX_STALENESS + Duration::milliseconds(1));
    // The cache of verified clients is confirmed (as a tick does), so only
    // the live view's own staleness sends this answer to the database.
    let (generation, _) = app.query(roster::models::auth_state::counters).await;
    app.state.oauth().verified.observe(generation, app.clock.now());
    let view = &app.state.oauth().live;
    let answered = view.answered_from_memory();
    assert_eq!(introspect(&app, rs, &token).await.body, json!({"active": false}));
    assert_eq!(view.answered_from_memory(), answered, "read from the database");
}

/// Two `roster serve` processes on one database: a revocation, a disable
/// and a demotion made through one reach introspection on the other within
/// the bound (the follower reads the log every 200 ms; see docs/operating.md).
async fn a_revocation_on_one_instance_reaches_introspection_on_another(backend: Backend) {
    let a = Roster::start(backend, &[]).await;
    let (_, rs_secret) = a.service("resource-server", &[]).await;
    let (billing, secret) = a.service("billing", &["invoices:read", "invoices:write"]).await;
    let metrics = format!("127.0.0.1:{}", free_port());
    let mut b = a.second_instance(&["--metrics-listen", &metrics]);
    let b_url = listen_url(&b.wait_for("roster listening on"));
    let from_memory = async || {
        let seen = scrape(&format!("http://{metrics}/metrics")).await;
        value(&seen, "roster_introspections_total", &[("answered_from", "memory")])
    };
    let http = reqwest::Client::new();
    let introspect_on_b = |token: String| {
        let (http, url, rs_secret) = (http.clone(), b_url.clone(), rs_secret.clone());
        async move {
            http.post(format!("{url}/oauth/introspect"))
                .basic_auth("resource-server", Some(rs_secret))
                .form(&[("token", token)])
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    // Polls B until `done`; fails after 10 s. Returns how long it took.
    let until = async |token: &str, done: &dyn Fn(&Value) -> bool| {
        let started = Instant::now();
        loop {
            let answer = introspect_on_b(token.to_string()).await;
            if done(&answer) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < StdDuration::from_secs(10),
                "B still answers {answer}"
            );
            tokio::task::yield_now().await;
        }
    };

    // B answers t1 from memory before anything changes (its first answers
    // may read the database while its caches fill).
    let t1 = a.raw_token("billing", &secret, None).await;
    let started = Instant::now();
    while from_memory().await < 1.0 {
        assert_eq!(introspect_on_b(t1.clone()).await["active"], true);
        assert!(
            started.elapsed() < StdDuration::from_secs(10),
            "B never answered from memory"
        );
    }
    a.revoke("billing", &secret, &t1).await;
    let revoked = until(&t1, &|v| v["active"] == false).await;

    let t2 = a.raw_token("billing", &secret, None).await;
    assert_eq!(
        introspect_on_b(t2.clone()).await["scope"],
        "invoices:read invoices:write"
    );
    let admin = a.admin_token().await;
    let patch = http
        .patch(format!("{}/api/v1/principals/{billing}", a.issuer()))
        .bearer_auth(&admin)
        .json(&json!({"scopes": ["invoices:read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), 200);
    let demoted = until(&t2, &|v| v["scope"] == "invoices:read").await;

    let disable = http
        .delete(format!("{}/api/v1/principals/{billing}", a.issuer()))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(disable.status(), 200);
    let disabled = until(&t2, &|v| v["active"] == false).await;
    println!(
        "figure: on another instance, a revocation showed after {revoked:?}, a demotion {demoted:?}, a disable {disabled:?}"
    );
    for (what, took) in [("revocation", revoked), ("demotion", demoted), ("disable", disabled)] {
        assert!(
            took < StdDuration::from_secs(2),
            "bound: 1 s at p99; the {what} took {took:?}"
        );
    }
    b.terminate();
}

fn listen_url(line: &str) -> String {
    let at = line.find("http://").unwrap();
    line[at..].split_whitespace().next().unwrap().to_string()
}
