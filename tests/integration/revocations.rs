//! The revocation feed (`GET /api/v1/revocations`) and leaving the registry
//! (`DELETE /api/v1/services/{name}/registration`), over real HTTP on both
//! backends with a manual clock.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use reqwest::Method;
use roster::clock::Clock;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp, claims_of as claims, t0};

on_both_backends!(
    the_feed_lists_revoked_tokens_and_principal_changes,
    only_services_and_admins_read_the_feed_and_garbage_is_refused,
    a_long_poll_wakes_on_a_revocation_here_and_on_another_instance,
    the_feed_pages_resets_and_forgets_what_expired,
    a_service_leaves_the_registry,
    tokens_only_on_the_deny_list_are_added_to_the_feed,
);

/// An older Roster could acknowledge a revocation that reached the deny list
/// but never the feed. The minute's upkeep finds such tokens and appends
/// them, so offline verifiers learn of them after an upgrade.
async fn tokens_only_on_the_deny_list_are_added_to_the_feed(backend: Backend) {
    let app = app(backend).await;
    let (_, svc) = app.service_with_token("orders", &[]).await;
    let exp = t0() + Duration::minutes(5);
    app.query(move |c| {
        use diesel::prelude::*;
        use roster::db::schema::revoked_tokens::dsl::*;
        diesel::insert_into(revoked_tokens)
            .values((
                jti.eq("lost-jti"),
                expires_at.eq(exp.naive_utc()),
                revoked_at.eq(t0().naive_utc()),
            ))
            .execute(c)?;
        Ok(())
    })
    .await;
    assert_eq!(feed(&app, &svc, "").await["tokens"], json!([]));
    app.clock.advance(Duration::seconds(61));
    app.tick().await;
    assert_eq!(
        feed(&app, &svc, "").await,
        json!({"index": 1, "reset": false, "more": false,
               "tokens": [{"jti": "lost-jti", "expires_at": rfc3339(exp)}], "principals": [], "scopes_within": "orders"})
    );
    // Repaired once: the next pass adds nothing.
    app.clock.advance(Duration::seconds(61));
    app.tick().await;
    assert_eq!(feed(&app, &svc, "").await["index"], 1);
}

async fn app(backend: Backend) -> TestApp {
    TestApp::builder(backend).clock(Clock::manual(t0())).spawn().await
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub(crate) async fn feed(app: &TestApp, token: &str, query: &str) -> Value {
    let r = app
        .call(Method::GET, &format!("/api/v1/revocations{query}"), Some(token), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), "no-store");
    r.body
}

async fn the_feed_lists_revoked_tokens_and_principal_changes(backend: Backend) {
    let app = app(backend).await;
    let (_, svc) = app.service_with_token("orders", &[]).await;
    let admin = app.admin_token().await;
    assert_eq!(
        feed(&app, &svc, "").await,
        json!({"index": 0, "reset": false, "more": false, "tokens": [], "principals": [], "scopes_within": "orders"}),
        "nothing revoked yet"
    );

    let alice = app
        .create_human(
            "alice",
            "alice-password-1",
            &["orders:read", "orders:write", "billing:pay"],
        )
        .await;
    let (token, _) = app.login("alice", "alice-password-1").await;
    let c = claims(&token);
    let r = app.post_form("/oauth/revoke", None, &[("token", &token)]).await;
    assert_eq!(r.status, 200);
    let exp = DateTime::from_timestamp(c["exp"].as_i64().unwrap(), 0).unwrap();
    assert_eq!(
        feed(&app, &svc, "").await,
        json!({"index": 1, "reset": false, "more": false,
               "tokens": [{"jti": c["jti"], "expires_at": rfc3339(exp)}], "principals": [], "scopes_within": "orders"})
    );

    // Demotion: the feed carries the scopes that remain.
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/principals/{alice}"),
            Some(&admin),
            Some(json!({"scopes": ["orders:read", "billing:pay"]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Each service sees the scopes that concern it; an admin sees all.
    assert_eq!(
        feed(&app, &svc, "?index=1").await,
        json!({"index": 2, "reset": false, "more": false, "tokens": [],
               "principals": [{"id": alice, "status": "active", "not_before": null, "scopes": ["orders:read"]}],
               "scopes_within": "orders"})
    );
    let (_, billing) = app.service_with_token("billing", &[]).await;
    assert_eq!(
        feed(&app, &billing, "?index=1").await,
        json!({"index": 2, "reset": false, "more": false, "tokens": [],
               "principals": [{"id": alice, "status": "active", "not_before": null, "scopes": ["billing:pay"]}],
               "scopes_within": "billing"})
    );
    let mut all = feed(&app, &admin, "?index=1").await;
    all["principals"][0]["scopes"]
        .as_array_mut()
        .unwrap()
        .sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    assert_eq!(
        all,
        json!({"index": 2, "reset": false, "more": false, "tokens": [],
               "principals": [{"id": alice, "status": "active", "not_before": null, "scopes": ["billing:pay", "orders:read"]}]})
    );

    // Disabling: the latest state wins within one answer.
    app.clock.advance(Duration::seconds(5));
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/principals/{alice}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let disabled_at = rfc3339(t0() + Duration::seconds(5));
    assert_eq!(
        feed(&app, &svc, "?index=1").await,
        json!({"index": 3, "reset": false, "more": false, "tokens": [],
               "principals": [{"id": alice, "status": "disabled", "not_before": disabled_at, "scopes": ["orders:read"]}],
               "scopes_within": "orders"})
    );
    // Revoking twice adds nothing.
    let r = app.post_form("/oauth/revoke", None, &[("token", &token)]).await;
    assert_eq!(r.status, 200);
    assert_eq!(feed(&app, &svc, "").await["index"], 3);
}

async fn only_services_and_admins_read_the_feed_and_garbage_is_refused(backend: Backend) {
    let app = app(backend).await;
    let (_, svc) = app.service_with_token("orders", &[]).await;
    let admin = app.admin_token().await;
    app.create_human("bob", "bob-password-12", &[]).await;
    let (bob, _) = app.login("bob", "bob-password-12").await;

    let r = app.call(Method::GET, "/api/v1/revocations", None, None).await;
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").starts_with("Bearer"));
    let r = app.call(Method::GET, "/api/v1/revocations", Some(&bob), None).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"error": "forbidden", "error_description": "the revocation feed is for services and admins"})
    );
    assert_eq!(feed(&app, &admin, "").await["index"], 0);

    for (query, field) in [
        ("?index=-1", "index"),
        ("?index=abc", "index"),
        ("?limit=0", "limit"),
        ("?limit=1001", "limit"),
        ("?wait=forever", "wait"),
        ("?since=1", "since"),
    ] {
        let r = app
            .call(Method::GET, &format!("/api/v1/revocations{query}"), Some(&svc), None)
            .await;
        assert_eq!(r.status, 422, "{query}: {}", r.body);
        assert_eq!(r.body["field"], field, "{query}: {}", r.body);
    }
}

async fn a_long_poll_wakes_on_a_revocation_here_and_on_another_instance(backend: Backend) {
    let a = app(backend).await;
    // Instances behind one load balancer share the database and the issuer.
    let issuer = a.issuer();
    let b = TestApp::builder(backend)
        .clock(a.clock.clone())
        .same_database_as(&a)
        .settings(move |mut s| {
            s.token.issuer = roster::auth::jwt::Issuer::new(issuer);
            s
        })
        .spawn()
        .await;
    let (_, svc) = a.service_with_token("orders", &[]).await;
    a.create_human("carol", "carol-password-1", &[]).await;
    let (t1, _) = a.login("carol", "carol-password-1").await;
    let (t2, _) = a.login("carol", "carol-password-1").await;

    // Here: the revoking instance wakes its own waiter at once.
    let url = a.url("/api/v1/revocations?index=0&wait=60s");
    let client = a.client.clone();
    let token = svc.clone();
    let waiter = tokio::spawn(async move { client.get(url).bearer_auth(token).send().await.unwrap() });
    a.state.oauth().revocations.until_waiting(1).await;
    assert_eq!(a.post_form("/oauth/revoke", None, &[("token", &t1)]).await.status, 200);
    let body: Value = tokio::time::timeout(StdDuration::from_secs(10), waiter)
        .await
        .expect("the waiter was not woken")
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["index"], 1);
    assert_eq!(body["tokens"][0]["jti"], claims(&t1)["jti"]);

    // There: instance b learns of it on its background tick.
    let url = b.url("/api/v1/revocations?index=1&wait=60s");
    let client = b.client.clone();
    let token = svc.clone();
    let waiter = tokio::spawn(async move { client.get(url).bearer_auth(token).send().await.unwrap() });
    b.tick().await;
    b.state.oauth().revocations.until_waiting(1).await;
    assert_eq!(a.post_form("/oauth/revoke", None, &[("token", &t2)]).await.status, 200);
    assert!(!waiter.is_finished());
    b.tick().await;
    let body: Value = tokio::time::timeout(StdDuration::from_secs(10), waiter)
        .await
        .expect("the other instance's waiter was not woken by its tick")
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["index"], 2);
    assert_eq!(body["tokens"].as_array().unwrap().len(), 1);
    assert_eq!(body["tokens"][0]["jti"], claims(&t2)["jti"]);

    // Nothing new: the wait runs out and the index stays.
    let body = feed(&a, &svc, "?index=2&wait=1s").await;
    assert_eq!(
        body,
        json!({"index": 2, "reset": false, "more": false, "tokens": [], "principals": [], "scopes_within": "orders"})
    );
}

async fn the_feed_pages_resets_and_forgets_what_expired(backend: Backend) {
    let app = app(backend).await;
    let (orders, svc) = app.service_with_token("orders", &[]).await;
    app.create_human("dave", "dave-password-1", &[]).await;
    let mut jtis = Vec::new();
    for _ in 0..3 {
        let (t, _) = app.login("dave", "dave-password-1").await;
        jtis.push(claims(&t)["jti"].clone());
        assert_eq!(app.post_form("/oauth/revoke", None, &[("token", &t)]).await.status, 200);
    }
    let page = feed(&app, &svc, "?limit=2").await;
    assert_eq!((page["index"].clone(), page["more"].clone()), (json!(2), json!(true)));
    assert_eq!(
        page["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["jti"].clone())
            .collect::<Vec<_>>(),
        jtis[..2]
    );
    let page = feed(&app, &svc, "?index=2&limit=2").await;
    assert_eq!((page["index"].clone(), page["more"].clone()), (json!(3), json!(false)));
    assert_eq!(page["tokens"][0]["jti"], jtis[2]);

    // An index from another (or a restored) database: start again from nothing.
    let page = feed(&app, &svc, "?index=99&wait=60s").await;
    assert_eq!((page["index"].clone(), page["reset"].clone()), (json!(3), json!(true)));
    assert_eq!(page["tokens"].as_array().unwrap().len(), 3);

    // Once the tokens have expired (and the leeway passed), the entries go.
    app.clock
        .advance(Duration::minutes(5) + Duration::minutes(5) + Duration::seconds(1));
    app.tick().await;
    let svc = app.client_token("orders", &orders.secret).await;
    assert_eq!(
        feed(&app, &svc, "").await,
        json!({"index": 3, "reset": false, "more": false, "tokens": [], "principals": [], "scopes_within": "orders"})
    );
}

async fn a_service_leaves_the_registry(backend: Backend) {
    let app = app(backend).await;
    let (_, mail) = app.service_with_token("mail", &[]).await;
    let (_, other) = app.service_with_token("other", &[]).await;
    let r = app
        .call(
            Method::PUT,
            "/api/v1/services/mail/registration",
            Some(&mail),
            Some(json!({"base_url": "http://127.0.0.1:9/", "categories": [{"name": "messaging", "priority": 5}]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let registered_index: i64 = r.header("x-roster-index").parse().unwrap();

    let r = app
        .call(Method::DELETE, "/api/v1/services/mail/registration", Some(&other), None)
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = app
        .call(
            Method::DELETE,
            "/api/v1/services/nobody/registration",
            Some(&mail),
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);

    let r = app
        .call(Method::DELETE, "/api/v1/services/mail/registration", Some(&mail), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-roster-index"), (registered_index + 1).to_string());
    assert_eq!(
        (
            r.body["status"].clone(),
            r.body["base_url"].clone(),
            r.body["categories"].clone()
        ),
        (
            json!("unknown"),
            Value::Null,
            json!([{"name": "messaging", "priority": 5}])
        )
    );
    let listing = app.call(Method::GET, "/api/v1/services", Some(&other), None).await;
    assert_eq!(listing.body["items"], json!([]), "{}", listing.body);
    // Leaving twice is not an error, and changes nothing.
    let r = app
        .call(Method::DELETE, "/api/v1/services/mail/registration", Some(&mail), None)
        .await;
    assert_eq!(
        (r.status, r.header("x-roster-index").to_string()),
        (200, (registered_index + 1).to_string())
    );
    let mut events: Vec<String> = app
        .audit_types()
        .await
        .into_iter()
        .filter(|e| e.0.starts_with("service."))
        .map(|e| e.0)
        .collect();
    events.sort();
    assert_eq!(events, ["service.deregistered", "service.registered"]);
}
