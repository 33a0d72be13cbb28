//! The service registry over real HTTP on both backends, watching real little
//! services on loopback. The clock is manual and the background work runs by
//! explicit ticks, so TTLs and intervals pass deterministically.

use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use reqwest::Method;
use roster::clock::Clock;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, FakeService, TestApp, manifest_json};

async fn app(backend: Backend) -> TestApp {
    TestApp::builder(backend).clock(Clock::manual(Utc::now())).spawn().await
}

pub(crate) fn page_codes(modules: &Value) -> Vec<String> {
    modules["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| {
            m["pages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["code"].as_str().unwrap().to_string())
        })
        .collect()
}

on_both_backends!(
    health_checks_and_manifests_drive_status_and_menu,
    ttl_lapse_and_deregistration,
    only_the_service_or_an_admin_may_write,
    pushed_manifests_scope_filtering_and_etags,
    manifest_pulls_use_etags_and_keep_the_last_good_one,
    a_push_stays_until_the_pulled_manifest_changes,
    the_module_list_is_cached_until_the_registry_changes,
    categories_rank_services_by_priority,
    long_poll_wakes_on_change_and_across_instances,
    polling_does_not_multiply_with_instances,
);

async fn health_checks_and_manifests_drive_status_and_menu(backend: Backend) {
    let app = app(backend).await;
    let fake = FakeService::start(manifest_json(
        "billing",
        &[("invoices", 10, None), ("reports", 20, Some("reports:read"))],
    ));
    let (_, token) = app.service_with_token("billing", &[]).await;

    let r = app
        .call(
            Method::PUT,
            "/api/v1/services/billing/registration",
            Some(&token),
            Some(json!({
                "base_url": fake.base_url(), "health_url": "/health", "modules_url": "/getModules.json",
                "categories": [{"name": "application", "priority": 5}],
                // Undamped: one check decides (damping is tested in instances.rs).
                "failures_before_down": 1, "passes_before_up": 1
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "up", "registering starts the lease");
    assert_eq!(r.body["health_url"], format!("{}health", fake.base_url()));
    assert_eq!(r.body["modules_url"], format!("{}getModules.json", fake.base_url()));
    assert!(r.header("x-roster-index").parse::<i64>().unwrap() > 0);

    // The first tick checks health and pulls the manifest.
    app.tick().await;
    let r = app
        .call(Method::GET, "/api/v1/services/billing", Some(&token), None)
        .await;
    assert_eq!(r.body["status"], "up");
    assert_eq!(r.body["health"]["ok"], true);
    assert_eq!(r.body["manifest"]["code"], "billing");
    assert_eq!(r.body["manifest"]["deps"], json!(["base"]));
    assert_eq!(r.body["categories"], json!([{"name": "application", "priority": 5}]));
    let menu = app.call(Method::GET, "/api/v1/modules", None, None).await;
    assert_eq!(page_codes(&menu.body), ["invoices"]);

    // The health endpoint fails: down at the next check, and its pages go.
    fake.set_healthy(false);
    app.clock.advance(Duration::seconds(10));
    app.tick().await;
    let r = app
        .call(Method::GET, "/api/v1/services/billing", Some(&token), None)
        .await;
    assert_eq!(r.body["status"], "down");
    assert_eq!(r.body["health"]["ok"], false);
    assert!(r.body["health"]["error"].as_str().unwrap().contains("503"));
    assert_eq!(
        page_codes(&app.call(Method::GET, "/api/v1/modules", None, None).await.body),
        Vec::<String>::new()
    );
    // A heartbeat does not override a failing health check.
    let r = app
        .call(Method::POST, "/api/v1/services/billing/heartbeat", Some(&token), None)
        .await;
    assert_eq!(r.body["status"], "down");
    let r = app
        .call(Method::GET, "/api/v1/services?status=down", Some(&token), None)
        .await;
    assert_eq!(r.body["items"][0]["name"], "billing");

    // It recovers.
    fake.set_healthy(true);
    app.clock.advance(Duration::seconds(10));
    app.tick().await;
    let r = app
        .call(Method::GET, "/api/v1/services?status=up", Some(&token), None)
        .await;
    assert_eq!(r.body["items"][0]["name"], "billing");
    assert_eq!(
        page_codes(&app.call(Method::GET, "/api/v1/modules", None, None).await.body),
        ["invoices"]
    );

    // Passing checks keep renewing the lease beyond the TTL.
    for _ in 0..4 {
        app.clock.advance(Duration::seconds(10));
        app.tick().await;
    }
    let r = app
        .call(Method::GET, "/api/v1/services/billing", Some(&token), None)
        .await;
    assert_eq!(r.body["status"], "up");
    // One check a tick since the first: the manual clock makes it exact.
    assert_eq!(fake.health_hits.load(std::sync::atomic::Ordering::SeqCst), 7);

    // No answer at all is down too.
    drop(fake);
    app.clock.advance(Duration::seconds(10));
    app.tick().await;
    let r = app
        .call(Method::GET, "/api/v1/services/billing", Some(&token), None)
        .await;
    assert_eq!(r.body["status"], "down");
}

async fn status_of(app: &TestApp, token: &str, name: &str) -> Value {
    app.call(Method::GET, &format!("/api/v1/services/{name}"), Some(token), None)
        .await
        .body["status"]
        .clone()
}

async fn ttl_lapse_and_deregistration(backend: Backend) {
    let app = app(backend).await;
    let (cron, token) = app.service_with_token("cron", &[]).await;
    let r = app
        .call(
            Method::PUT,
            "/api/v1/services/cron/registration",
            Some(&token),
            Some(json!({"base_url": "http://10.1.2.3:9000", "ttl_seconds": 30})),
        )
        .await;
    assert_eq!(r.body["status"], "up");

    app.clock.advance(Duration::seconds(20));
    app.tick().await;
    app.call(Method::POST, "/api/v1/services/cron/heartbeat", Some(&token), None)
        .await;
    app.clock.advance(Duration::seconds(20));
    app.tick().await;
    assert_eq!(
        status_of(&app, &token, "cron").await,
        "up",
        "the heartbeat renewed the lease"
    );

    app.clock.advance(Duration::seconds(11));
    app.tick().await;
    assert_eq!(status_of(&app, &token, "cron").await, "down", "the lease lapsed");
    let r = app
        .call(Method::POST, "/api/v1/services/cron/heartbeat", Some(&token), None)
        .await;
    assert_eq!(r.body["status"], "up", "a heartbeat brings it back");

    // Down for longer than the deregistration window: gone from listings, still a principal.
    app.clock.advance(Duration::seconds(31));
    app.tick().await;
    assert_eq!(status_of(&app, &token, "cron").await, "down");
    app.clock.advance(Duration::hours(72));
    app.tick().await;
    // (Its old token expired with the clock jump.)
    let r = app.client_grant("cron", &cron.secret).await;
    assert_eq!(r.status, 200, "still a principal");
    let token = r.body["access_token"].as_str().unwrap().to_string();
    let r = app.call(Method::GET, "/api/v1/services", Some(&token), None).await;
    assert_eq!(r.body["items"], json!([]), "{}", r.body);
    assert_eq!(status_of(&app, &token, "cron").await, "unknown");
    let r = app
        .call(Method::POST, "/api/v1/services/cron/heartbeat", Some(&token), None)
        .await;
    assert_eq!(r.status, 404, "it must register again");
}

async fn only_the_service_or_an_admin_may_write(backend: Backend) {
    let app = app(backend).await;
    let admin = app.admin_token().await;
    let (_, billing) = app.service_with_token("billing", &[]).await;
    let (_, mailer) = app.service_with_token("mailer", &[]).await;
    app.create_human("dana", "dana-password-1", &[]).await;
    let body = json!({"base_url": "http://10.0.0.1/"});

    let put = |token: Option<String>, name: &'static str, body: Value| {
        let app = &app;
        async move {
            app.call(
                Method::PUT,
                &format!("/api/v1/services/{name}/registration"),
                token.as_deref(),
                Some(body),
            )
            .await
        }
    };
    assert_eq!(put(Some(mailer.clone()), "billing", body.clone()).await.status, 403);
    assert_eq!(put(None, "billing", body.clone()).await.status, 401);
    assert_eq!(put(Some(billing.clone()), "billing", body.clone()).await.status, 200);
    assert_eq!(put(Some(admin.clone()), "mailer", body.clone()).await.status, 200);
    assert_eq!(put(Some(admin.clone()), "nobody", body.clone()).await.status, 404);
    assert_eq!(
        put(Some(admin.clone()), "dana", body.clone()).await.status,
        404,
        "humans are not services"
    );
    let r = app
        .call(Method::POST, "/api/v1/services/billing/heartbeat", Some(&mailer), None)
        .await;
    assert_eq!(r.status, 403);
    let r = app
        .call(
            Method::PUT,
            "/api/v1/services/billing/modules",
            Some(&mailer),
            Some(manifest_json("x", &[("a", 1, None)])),
        )
        .await;
    assert_eq!(r.status, 403);

    for (bad, field) in [
        (json!({"base_url": "ftp://10.0.0.1/"}), "base_url"),
        (
            json!({"base_url": "http://10.0.0.1/", "health_url": "file:///etc/passwd"}),
            "health_url",
        ),
        (json!({"base_url": "http://10.0.0.1/", "ttl_seconds": 0}), "ttl_seconds"),
        (
            json!({"base_url": "http://10.0.0.1/", "categories": [{"name": "Bad Name"}]}),
            "categories",
        ),
        (json!({"health_url": "/h"}), "base_url"),
    ] {
        let r = put(Some(billing.clone()), "billing", bad.clone()).await;
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (422, Some(field)),
            "{bad}: {}",
            r.body
        );
    }
    // Reading needs a token.
    assert_eq!(app.call(Method::GET, "/api/v1/services", None, None).await.status, 401);
    assert_eq!(
        app.call(Method::GET, "/api/v1/categories", None, None).await.status,
        401
    );
    assert_eq!(
        app.call(Method::GET, "/api/v1/services/nobody", Some(&mailer), None)
            .await
            .status,
        404
    );
}

async fn pushed_manifests_scope_filtering_and_etags(backend: Backend) {
    let app = app(backend).await;
    let (_, token) = app.service_with_token("billing", &[]).await;
    app.create_human("rita", "rita-password-1", &["reports:read"]).await;
    let (rita, _) = app.login("rita", "rita-password-1").await;
    app.call(
        Method::PUT,
        "/api/v1/services/billing/registration",
        Some(&token),
        Some(json!({"base_url": "http://10.0.0.2/"})),
    )
    .await;

    let good = manifest_json(
        "billing",
        &[
            ("reports", 20, Some("reports:read")),
            ("invoices", 10, None),
            ("admin", 5, Some("admin")),
        ],
    );
    let r = app
        .call(
            Method::PUT,
            "/api/v1/services/billing/modules",
            Some(&token),
            Some(good),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let anon = app.call(Method::GET, "/api/v1/modules", None, None).await;
    assert_eq!(page_codes(&anon.body), ["invoices"]);
    assert_eq!(anon.body["items"][0]["service"], "billing");
    assert_eq!(anon.body["items"][0]["deps"], json!(["base"]));
    let mine = app.call(Method::GET, "/api/v1/modules", Some(&rita), None).await;
    assert_eq!(
        page_codes(&mine.body),
        ["invoices", "reports"],
        "sorted by menu_position"
    );
    let r = app.call(Method::GET, "/api/v1/modules", Some("garbage"), None).await;
    assert_eq!(r.status, 401);

    // ETag and If-None-Match.
    let etag = anon.header("etag").to_string();
    assert!(etag.starts_with('"'));
    let r = app
        .client
        .get(app.url("/api/v1/modules"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = app
        .client
        .get(app.url("/api/v1/modules"))
        .bearer_auth(&rita)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "another caller's menu differs");

    // An invalid manifest is refused and the previous one stays.
    for bad in [
        json!({"name": "B", "code": "b", "pages": [{"name": "x", "code": "x", "icon": "i"}]}),
        json!({"name": "B", "code": "b", "pages": [{"name": "x", "code": "x", "module_link": "/", "icon": "i"}, {"name": "y", "code": "x", "module_link": "/", "icon": "i"}]}),
        json!({"name": "B", "code": "b", "pages": [], "deps": ["x".repeat(70_000)]}),
        json!("not an object"),
    ] {
        let r = app
            .call(Method::PUT, "/api/v1/services/billing/modules", Some(&token), Some(bad))
            .await;
        assert_eq!(r.status, 422, "{}", r.body);
        assert!(r.body["field"].is_string());
    }
    let again = app.call(Method::GET, "/api/v1/modules", None, None).await;
    assert_eq!(page_codes(&again.body), ["invoices"]);
    assert_eq!(again.header("etag"), etag, "unchanged menu, same ETag");
}

async fn codes(app: &TestApp) -> Vec<String> {
    page_codes(&app.call(Method::GET, "/api/v1/modules", None, None).await.body)
}

/// The module list is rendered once per change of the registry: a change
/// on this instance shows at once; one made on another instance shows at
/// this one's next tick, or after the cache's second at the latest.
async fn the_module_list_is_cached_until_the_registry_changes(backend: Backend) {
    let a = app(backend).await;
    let b = TestApp::builder(backend)
        .clock(Clock::manual(a.clock.now()))
        .same_database_as(&a)
        .spawn()
        .await;
    let (_, token) = a.service_with_token("shop", &[]).await;
    let put = |pages: &'static [(&'static str, i64, Option<&'static str>)]| {
        a.call(
            Method::PUT,
            "/api/v1/services/shop/modules",
            Some(&token),
            Some(manifest_json("shop", pages)),
        )
    };
    a.call(
        Method::PUT,
        "/api/v1/services/shop/registration",
        Some(&token),
        Some(json!({"base_url": "http://10.0.0.2/", "ttl_seconds": 3600})),
    )
    .await;
    assert_eq!(put(&[("cart", 1, None)]).await.status, 200);
    b.tick().await;
    assert_eq!(codes(&a).await, ["cart"]);
    assert_eq!(codes(&b).await, ["cart"]);

    assert_eq!(put(&[("cart", 1, None), ("orders", 2, None)]).await.status, 200);
    assert_eq!(
        codes(&a).await,
        ["cart", "orders"],
        "a change on this instance shows at once"
    );
    assert_eq!(codes(&b).await, ["cart"], "B serves what it rendered");
    b.tick().await;
    assert_eq!(
        codes(&b).await,
        ["cart", "orders"],
        "B's tick saw the change index move"
    );

    assert_eq!(put(&[("orders", 2, None)]).await.status, 200);
    b.clock
        .advance(Duration::milliseconds(roster::registry::menu::MENU_CACHE_TTL_MS));
    assert_eq!(codes(&b).await, ["orders"], "no tick, but the cache's second is over");
}

/// Pushed and pulled manifests: the last writer wins, and a pull replaces a
/// push only when the manifest at `modules_url` changed since the last pull.
async fn a_push_stays_until_the_pulled_manifest_changes(backend: Backend) {
    let app = app(backend).await;
    let fake = FakeService::start(manifest_json("shop", &[("cart", 1, None)]));
    let (_, token) = app.service_with_token("shop", &[]).await;
    app.call(
        Method::PUT,
        "/api/v1/services/shop/registration",
        Some(&token),
        Some(json!({"base_url": fake.base_url(), "modules_url": "getModules.json", "ttl_seconds": 3600})),
    )
    .await;
    // The menu's page codes, and who wrote the manifest.
    let state = || async {
        let r = app.call(Method::GET, "/api/v1/services/shop", Some(&token), None).await;
        let menu = page_codes(&app.call(Method::GET, "/api/v1/modules", None, None).await.body);
        (menu, r.body["manifest_source"].clone())
    };
    app.tick().await;
    assert_eq!(state().await, (vec!["cart".to_string()], json!("pulled")));

    let r = app
        .call(
            Method::PUT,
            "/api/v1/services/shop/modules",
            Some(&token),
            Some(manifest_json("shop", &[("pushed", 1, None)])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(state().await, (vec!["pushed".to_string()], json!("pushed")));

    // The next pull is a 304: the push stays.
    app.clock.advance(Duration::seconds(60));
    app.tick().await;
    assert_eq!(state().await, (vec!["pushed".to_string()], json!("pushed")));
    // A 200 with the same manifest (respelled, so another ETag): the push stays.
    let respelled = serde_json::to_string_pretty(&manifest_json("shop", &[("cart", 1, None)])).unwrap();
    fake.set_manifest(&respelled);
    app.clock.advance(Duration::seconds(60));
    app.tick().await;
    assert_eq!(state().await, (vec!["pushed".to_string()], json!("pushed")));
    // The service's own manifest changed: the pull wins.
    fake.set_manifest(&manifest_json("shop", &[("cart", 1, None), ("orders", 2, None)]).to_string());
    app.clock.advance(Duration::seconds(60));
    app.tick().await;
    assert_eq!(
        state().await,
        (vec!["cart".to_string(), "orders".to_string()], json!("pulled"))
    );
}

async fn manifest_pulls_use_etags_and_keep_the_last_good_one(backend: Backend) {
    use std::sync::atomic::Ordering::SeqCst;
    let app = app(backend).await;
    let fake = FakeService::start(manifest_json("shop", &[("cart", 1, None)]));
    let (shop, token) = app.service_with_token("shop", &[]).await;
    app.call(
        Method::PUT,
        "/api/v1/services/shop/registration",
        Some(&token),
        Some(json!({"base_url": fake.base_url(), "modules_url": "getModules.json", "ttl_seconds": 3600})),
    )
    .await;
    app.tick().await;
    assert_eq!(fake.manifest_hits.load(SeqCst), 1);
    assert_eq!(
        page_codes(&app.call(Method::GET, "/api/v1/modules", None, None).await.body),
        ["cart"]
    );

    // Unchanged: the next pull is conditional and answered 304.
    app.clock.advance(Duration::seconds(60));
    app.tick().await;
    assert_eq!(fake.not_modified.load(SeqCst), 1);
    assert_eq!(fake.manifest_hits.load(SeqCst), 1);

    // Changed: pulled again.
    fake.set_manifest(&manifest_json("shop", &[("cart", 1, None), ("orders", 2, None)]).to_string());
    app.clock.advance(Duration::seconds(60));
    app.tick().await;
    assert_eq!(
        page_codes(&app.call(Method::GET, "/api/v1/modules", None, None).await.body),
        ["cart", "orders"]
    );

    // Invalid: the last good one stays and the error is recorded.
    fake.set_manifest(r#"{"name": "Shop", "pages": "nope"}"#);
    app.clock.advance(Duration::seconds(60));
    app.tick().await;
    let r = app.call(Method::GET, "/api/v1/services/shop", Some(&token), None).await;
    assert!(
        r.body["manifest_error"].as_str().unwrap().contains("invalid manifest"),
        "{}",
        r.body
    );
    assert_eq!(
        page_codes(&app.call(Method::GET, "/api/v1/modules", None, None).await.body),
        ["cart", "orders"]
    );

    // Too large: likewise.
    fake.set_manifest(&format!(
        r#"{{"name": "Shop", "code": "shop", "pages": [], "deps": ["{}"]}}"#,
        "x".repeat(70_000)
    ));
    app.clock.advance(Duration::seconds(60));
    app.tick().await;
    let r = app.call(Method::GET, "/api/v1/services/shop", Some(&token), None).await;
    assert!(
        r.body["manifest_error"].as_str().unwrap().contains("larger than"),
        "{}",
        r.body
    );
    assert_eq!(r.body["manifest"]["pages"].as_array().unwrap().len(), 2);

    // Unreachable: likewise. (Five minutes have passed: a fresh token.)
    let base = fake.base_url();
    drop(fake);
    app.clock.advance(Duration::seconds(60));
    app.tick().await;
    let token = app.client_token("shop", &shop.secret).await;
    let r = app.call(Method::GET, "/api/v1/services/shop", Some(&token), None).await;
    assert!(
        r.body["manifest_error"]
            .as_str()
            .unwrap_or_else(|| panic!("{}", r.body))
            .starts_with("unreachable: request failed"),
        "{}",
        r.body
    );
    assert_eq!(r.body["manifest"]["pages"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["modules_url"], format!("{base}getModules.json"));
}

async fn categories_rank_services_by_priority(backend: Backend) {
    let app = app(backend).await;
    let admin = app.admin_token().await;
    for (name, prio) in [("mail-a", 10), ("mail-b", 50), ("sms", 20)] {
        let (_, t) = app.service_with_token(name, &[]).await;
        app.call(Method::PUT, &format!("/api/v1/services/{name}/registration"), Some(&t), Some(json!({
            "base_url": "http://10.0.0.9/", "categories": [{"name": "notification", "priority": prio}], "ttl_seconds": 60
        })))
        .await;
    }
    // mail-b lapses; sms re-registers elsewhere.
    app.clock.advance(Duration::seconds(61));
    app.tick().await;
    let (_, sms) = app.service_with_token("sms-2", &[]).await;
    app.call(Method::PUT, "/api/v1/services/sms-2/registration", Some(&sms), Some(json!({"base_url": "http://10.0.0.10/", "categories": [{"name": "notification", "priority": 1}, {"name": "sms"}]})))
        .await;

    let r = app.call(Method::GET, "/api/v1/categories", Some(&admin), None).await;
    assert_eq!(
        r.body["items"],
        json!([
            {"name": "notification", "service_count": 4, "up_count": 1},
            {"name": "sms", "service_count": 1, "up_count": 1},
        ])
    );
    let r = app
        .call(Method::GET, "/api/v1/categories/notification", Some(&admin), None)
        .await;
    let ranked: Vec<(String, i64, String)> = r.body["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().into(),
                s["priority"].as_i64().unwrap(),
                s["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        ranked,
        [
            ("mail-b".into(), 50, "down".into()),
            ("sms".into(), 20, "down".into()),
            ("mail-a".into(), 10, "down".into()),
            ("sms-2".into(), 1, "up".into()),
        ]
    );
    let r = app
        .call(Method::GET, "/api/v1/services?category=sms", Some(&admin), None)
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.call(Method::GET, "/api/v1/categories/nope", Some(&admin), None)
            .await
            .status,
        404
    );
}

async fn long_poll_wakes_on_change_and_across_instances(backend: Backend) {
    let a = app(backend).await;
    // Instances behind one load balancer share the database and the issuer.
    let issuer = a.issuer();
    let b = TestApp::builder(backend)
        .clock(Clock::manual(Utc::now()))
        .same_database_as(&a)
        .settings(move |mut s| {
            s.token.issuer = roster::auth::jwt::Issuer::new(issuer);
            s
        })
        .spawn()
        .await;
    let (_, token) = a.service_with_token("billing", &[]).await;
    let r = a.call(Method::GET, "/api/v1/services", Some(&token), None).await;
    let index: i64 = r.header("x-roster-index").parse().unwrap();

    // Nothing changes: the wait elapses and the index is the same.
    let r = a
        .call(
            Method::GET,
            &format!("/api/v1/services?index={index}&wait=1s"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.header("x-roster-index").parse::<i64>().unwrap(), index);

    // A change on the same instance wakes a waiter at once (the guard is far
    // below the 60 s wait).
    let waiter = long_poll(&a, index, &token);
    // Only once the poll is waiting on the server does the change come, so
    // that the wake-up path runs (not the "already past" answer).
    a.state.registry().feed.until_waiting(1).await;
    register_at(&a, &token, "http://10.0.0.3/").await;
    let (woke, body) = woken(waiter, "long poll woke").await;
    assert!(woke > index);
    assert_eq!(body["items"][0]["name"], "billing");

    // A change on instance A wakes a waiter on instance B, whose background
    // work follows the shared change index.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(b.state.upkeep().clone().run(roster::upkeep::TICK, stopped));
    let waiter = long_poll(&b, woke, &token);
    b.state.registry().feed.until_waiting(1).await;
    register_at(&a, &token, "http://10.0.0.4/").await;
    let (later, body) = woken(waiter, "woke across instances").await;
    assert!(later > woke);
    assert_eq!(body["items"][0]["base_url"], "http://10.0.0.4/");
    stop.send(true).unwrap();
    worker.await.unwrap();

    let r = a
        .call(Method::GET, "/api/v1/services?index=0&wait=soon", Some(&token), None)
        .await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("wait")));
}

/// Start `GET /api/v1/services?index=N&wait=60s` on `app`.
fn long_poll(app: &TestApp, index: i64, token: &str) -> tokio::task::JoinHandle<reqwest::Response> {
    let (client, url, token) = (
        app.client.clone(),
        app.url(&format!("/api/v1/services?index={index}&wait=60s")),
        token.to_string(),
    );
    tokio::spawn(async move { client.get(url).bearer_auth(token).send().await.unwrap() })
}

/// The answer of a long poll that must wake well before its 60 s wait:
/// its `X-Roster-Index` and body.
async fn woken(waiter: tokio::task::JoinHandle<reqwest::Response>, what: &str) -> (i64, Value) {
    let resp = tokio::time::timeout(StdDuration::from_secs(20), waiter)
        .await
        .expect(what)
        .unwrap();
    assert_eq!(resp.status(), 200);
    let index = resp.headers()["x-roster-index"].to_str().unwrap().parse().unwrap();
    (index, resp.json().await.unwrap())
}

async fn register_at(app: &TestApp, token: &str, base_url: &str) {
    let r = app
        .call(
            Method::PUT,
            "/api/v1/services/billing/registration",
            Some(token),
            Some(json!({"base_url": base_url})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

async fn polling_does_not_multiply_with_instances(backend: Backend) {
    use std::sync::atomic::Ordering::SeqCst;
    let start = Utc::now();
    let a = TestApp::builder(backend).clock(Clock::manual(start)).spawn().await;
    let b = TestApp::builder(backend)
        .clock(Clock::manual(start))
        .same_database_as(&a)
        .spawn()
        .await;
    let fake = FakeService::start(manifest_json("x", &[("p", 1, None)]));
    let (_, token) = a.service_with_token("billing", &[]).await;
    a.call(
        Method::PUT,
        "/api/v1/services/billing/registration",
        Some(&token),
        Some(json!({"base_url": fake.base_url(), "health_url": "/health", "modules_url": "/getModules.json"})),
    )
    .await;
    for round in 1..=3 {
        // Both instances tick at the same moment; one of them polls.
        tokio::join!(a.tick(), b.tick());
        assert_eq!(fake.health_hits.load(SeqCst), round, "round {round}");
        a.clock.advance(Duration::seconds(10));
        b.clock.advance(Duration::seconds(10));
    }
    assert_eq!(
        fake.manifest_hits.load(SeqCst) + fake.not_modified.load(SeqCst),
        1,
        "one pull per interval"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_without_categories_keeps_them() {
    let app = app(Backend::Sqlite).await;
    let admin = app.admin_token().await;
    let r = app
        .call(
            Method::POST,
            "/api/v1/principals",
            Some(&admin),
            Some(json!({"kind": "service", "name": "billing", "categories": [{"name": "application", "priority": 5}]})),
        )
        .await;
    assert_eq!(r.status, 201);
    let r = app
        .call(
            Method::PUT,
            "/api/v1/services/billing/registration",
            Some(&admin),
            Some(json!({"base_url": "http://10.0.0.1/"})),
        )
        .await;
    assert_eq!(r.body["categories"], json!([{"name": "application", "priority": 5}]));
    let r = app
        .call(
            Method::PUT,
            "/api/v1/services/billing/registration",
            Some(&admin),
            Some(json!({"base_url": "http://10.0.0.1/", "categories": []})),
        )
        .await;
    assert_eq!(r.body["categories"], json!([]), "an explicit list replaces them");
}

/// Health fetches are bounded: a same-scheme redirect is followed, a redirect
/// to another scheme is refused, and a service that never answers times out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_fetches_are_bounded() {
    let app = TestApp::builder(Backend::Sqlite)
        .clock(Clock::manual(Utc::now()))
        .settings(|mut s| {
            s.registry.fetch_timeout = Duration::seconds(1);
            s
        })
        .spawn()
        .await;
    let fake = FakeService::start(manifest_json("x", &[("p", 1, None)]));
    let admin = app.admin_token().await;
    let mut expected = Vec::new();
    for (name, path, up) in [
        ("moved", "/moved", true),
        ("to-https", "/to-https", false),
        ("hangs", "/hang", false),
    ] {
        app.create_service(name, &[]).await;
        let body =
            json!({"base_url": fake.base_url(), "health_url": path, "ttl_seconds": 3600, "failures_before_down": 1});
        let r = app
            .call(
                Method::PUT,
                &format!("/api/v1/services/{name}/registration"),
                Some(&admin),
                Some(body),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        expected.push((name, up));
    }
    app.tick().await;
    for (name, up) in expected {
        let r = app
            .call(Method::GET, &format!("/api/v1/services/{name}"), Some(&admin), None)
            .await;
        assert_eq!(r.body["health"]["ok"], up, "{name}: {}", r.body);
        assert_eq!(r.body["status"], if up { "up" } else { "down" }, "{name}");
        if name == "hangs" {
            assert!(
                r.body["health"]["error"].as_str().unwrap().contains("timed out"),
                "{}",
                r.body
            );
        }
    }
}
