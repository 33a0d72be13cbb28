//! The registry's second round over real HTTP on both backends: replicas,
//! flap damping, draining, description and meta, and blocking queries that
//! wake only the watchers of what changed. The clock is manual and the
//! background work runs by explicit ticks.

use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use reqwest::Method;
use roster::clock::Clock;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, FakeService, TestApp, manifest_json};

on_both_backends!(
    replicas_keep_a_service_up_until_the_last_goes,
    flapping_within_the_thresholds_changes_nothing_a_frontend_sees,
    a_draining_instance_is_left_out_of_the_category_answer,
    the_manifest_is_pulled_from_an_instance_that_is_up,
    a_watcher_wakes_only_for_what_it_shows,
    a_watcher_on_another_instance_wakes_only_for_its_view,
    the_single_instance_routes_are_the_instance_default,
    instance_input_is_checked,
);

async fn app(backend: Backend) -> TestApp {
    TestApp::builder(backend).clock(Clock::manual(Utc::now())).spawn().await
}

async fn put(app: &TestApp, token: &str, service: &str, id: &str, body: Value) -> Value {
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/services/{service}/instances/{id}"),
            Some(token),
            Some(body),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

async fn beat(app: &TestApp, token: &str, service: &str, id: &str) -> Value {
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/services/{service}/instances/{id}/heartbeat"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

async fn get(app: &TestApp, token: &str, path: &str) -> Value {
    let r = app.call(Method::GET, path, Some(token), None).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.body
}

/// (id, status, draining) of each instance a service view shows.
fn instances(view: &Value) -> Vec<(String, String, bool)> {
    view["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_string(),
                i["status"].as_str().unwrap().to_string(),
                i["draining"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// (instance, from, to, reason) of each transition, newest first.
fn transitions(view: &Value) -> Vec<(Option<String>, String, String, String)> {
    view["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["instance"].as_str().map(str::to_string),
                t["from"].as_str().unwrap().to_string(),
                t["to"].as_str().unwrap().to_string(),
                t["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn tr(instance: Option<&str>, from: &str, to: &str, reason: &str) -> (Option<String>, String, String, String) {
    (instance.map(str::to_string), from.into(), to.into(), reason.into())
}

async fn menu_codes(app: &TestApp) -> Vec<String> {
    let r = app.call(Method::GET, "/api/v1/modules", None, None).await;
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["pages"].as_array().unwrap().iter())
        .map(|p| p["code"].as_str().unwrap().to_string())
        .collect()
}

fn ids(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("mail-{i}")).collect()
}

/// Three replicas of one service: one stopping leaves the service up (and
/// its pages in the menu); all stopping takes it down.
async fn replicas_keep_a_service_up_until_the_last_goes(backend: Backend) {
    let app = app(backend).await;
    let (mail, token) = app.service_with_token("mail", &[]).await;
    for (n, id) in ids(3).iter().enumerate() {
        put(
            &app,
            &token,
            "mail",
            id,
            json!({"base_url": format!("http://10.0.0.{}/", n + 1), "ttl_seconds": 30,
                   "categories": [{"name": "notification", "priority": 5}],
                   "description": "Sends mail", "meta": {"version": "1.4.2", "zone": "eu-1"}}),
        )
        .await;
    }
    let r = app
        .call(
            Method::PUT,
            "/api/v1/services/mail/modules",
            Some(&token),
            Some(manifest_json("mail", &[("inbox", 1, None)])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let view = get(&app, &token, "/api/v1/services/mail").await;
    assert_eq!(view["status"], "up");
    assert_eq!(view["description"], "Sends mail");
    assert_eq!(view["meta"], json!({"version": "1.4.2", "zone": "eu-1"}));
    assert_eq!(
        instances(&view),
        [
            ("mail-1".into(), "up".into(), false),
            ("mail-2".into(), "up".into(), false),
            ("mail-3".into(), "up".into(), false)
        ]
    );
    let category = |live: Value, status: &str, base: Value| {
        json!({"name": "notification", "services": [{
            "name": "mail", "priority": 5, "status": status, "description": "Sends mail",
            "base_url": base, "instances": live}]})
    };
    assert_eq!(
        get(&app, &token, "/api/v1/categories/notification").await,
        category(
            json!([{"id": "mail-1", "base_url": "http://10.0.0.1/"},
                   {"id": "mail-2", "base_url": "http://10.0.0.2/"},
                   {"id": "mail-3", "base_url": "http://10.0.0.3/"}]),
            "up",
            json!("http://10.0.0.1/")
        )
    );

    // mail-3 stops heartbeating: its lease lapses, the others carry on.
    app.clock.advance(Duration::seconds(20));
    beat(&app, &token, "mail", "mail-1").await;
    beat(&app, &token, "mail", "mail-2").await;
    app.clock.advance(Duration::seconds(11));
    app.tick().await;
    let view = get(&app, &token, "/api/v1/services/mail").await;
    assert_eq!(view["status"], "up");
    assert_eq!(
        instances(&view),
        [
            ("mail-1".into(), "up".into(), false),
            ("mail-2".into(), "up".into(), false),
            ("mail-3".into(), "down".into(), false)
        ]
    );
    assert_eq!(menu_codes(&app).await, ["inbox"], "the service is still up");
    // mail-2 leaves cleanly.
    let r = app
        .call(
            Method::DELETE,
            "/api/v1/services/mail/instances/mail-2",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        get(&app, &token, "/api/v1/categories/notification").await,
        category(
            json!([{"id": "mail-1", "base_url": "http://10.0.0.1/"}]),
            "up",
            json!("http://10.0.0.1/")
        )
    );

    // The last live one stops: the service is down, its pages leave the menu.
    app.clock.advance(Duration::seconds(31));
    app.tick().await;
    let view = get(&app, &token, "/api/v1/services/mail").await;
    assert_eq!(view["status"], "down");
    assert_eq!(menu_codes(&app).await, Vec::<String>::new());
    assert_eq!(
        get(&app, &token, "/api/v1/categories/notification").await,
        category(json!([]), "down", Value::Null)
    );
    assert_eq!(
        transitions(&view),
        [
            tr(None, "up", "down", "no instance is up (instance mail-1: lease expired)"),
            tr(Some("mail-1"), "up", "down", "lease expired"),
            tr(Some("mail-2"), "up", "removed", "deregistered"),
            tr(Some("mail-3"), "up", "down", "lease expired"),
            tr(Some("mail-3"), "unknown", "up", "registered"),
            tr(Some("mail-2"), "unknown", "up", "registered"),
            tr(None, "unknown", "up", "instance mail-1 registered"),
            tr(Some("mail-1"), "unknown", "up", "registered"),
        ]
    );
    let listed = get(&app, &token, "/api/v1/services?status=down").await;
    assert_eq!(listed["items"][0]["name"], "mail");
    assert_eq!(listed["items"][0]["instances"].as_array().unwrap().len(), 2);
    assert!(
        listed["items"][0].get("transitions").is_none(),
        "listings leave them out"
    );

    // One heartbeat brings an instance without a health check back.
    let view = beat(&app, &token, "mail", "mail-3").await;
    assert_eq!(view["status"], "up");
    assert_eq!(menu_codes(&app).await, ["inbox"]);

    // Gone for longer than the deregistration window: removed; with none
    // left, the service is unknown (it stays a principal).
    app.clock.advance(Duration::hours(73));
    app.tick().await; // mail-1 goes; mail-3's lease lapses now
    app.clock.advance(Duration::hours(73));
    app.tick().await; // and mail-3 goes
    let token = app.client_token("mail", &mail.secret).await;
    let view = get(&app, &token, "/api/v1/services/mail").await;
    assert_eq!(view["status"], "unknown");
    assert_eq!(view["instances"], json!([]));
    assert_eq!(
        transitions(&view)[0],
        tr(None, "down", "unknown", "no instance is left")
    );
}

/// A health check that fails fewer than `failures_before_down` times in a
/// row changes nothing a frontend sees: not the menu, its ETag, the category
/// answer, nor the change index.
async fn flapping_within_the_thresholds_changes_nothing_a_frontend_sees(backend: Backend) {
    let app = app(backend).await;
    let fake = FakeService::start(manifest_json("shop", &[("cart", 1, None)]));
    let (_, token) = app.service_with_token("shop", &[]).await;
    put(
        &app,
        &token,
        "shop",
        "shop-a",
        json!({"base_url": fake.base_url(), "health_url": "/health", "modules_url": "/getModules.json",
               "ttl_seconds": 3600, "categories": [{"name": "web"}]}),
    )
    .await;
    app.tick().await;
    let seen = || async {
        let menu = app.call(Method::GET, "/api/v1/modules", None, None).await;
        let services = app.call(Method::GET, "/api/v1/services", Some(&token), None).await;
        (
            menu.header("etag").to_string(),
            menu.body,
            get(&app, &token, "/api/v1/categories/web").await,
            services.header("x-roster-index").to_string(),
        )
    };
    let before = seen().await;
    assert_eq!(before.1["items"][0]["pages"][0]["code"], "cart");
    let check = |healthy: bool| {
        fake.set_healthy(healthy);
        app.clock.advance(Duration::seconds(10));
        app.tick()
    };
    for healthy in [false, false, true, false, false, true, true, false, false] {
        check(healthy).await;
        assert_eq!(
            seen().await,
            before,
            "a flap within the thresholds (healthy: {healthy})"
        );
    }
    let view = get(&app, &token, "/api/v1/services/shop").await;
    assert_eq!(view["instances"][0]["health"]["ok"], false, "the check did fail");
    assert_eq!(view["instances"][0]["status"], "up");

    // The third failure in a row takes it down.
    check(false).await;
    assert_eq!(menu_codes(&app).await, Vec::<String>::new());
    // One pass is not enough to come back; two are.
    check(true).await;
    assert_eq!(menu_codes(&app).await, Vec::<String>::new());
    check(true).await;
    assert_eq!(menu_codes(&app).await, ["cart"]);
    let view = get(&app, &token, "/api/v1/services/shop").await;
    assert_eq!(
        transitions(&view)[..4],
        [
            tr(None, "down", "up", "instance shop-a is up"),
            tr(Some("shop-a"), "down", "up", "2 consecutive health checks passed"),
            tr(
                None,
                "up",
                "down",
                "no instance is up (instance shop-a: health check failed: bad_status (3 consecutive failures))"
            ),
            tr(
                Some("shop-a"),
                "up",
                "down",
                "health check failed: bad_status (3 consecutive failures)"
            ),
        ]
    );

    // The thresholds are the instance's own: with 1, one failure decides.
    put(
        &app,
        &token,
        "shop",
        "shop-a",
        json!({"base_url": fake.base_url(), "health_url": "/health", "ttl_seconds": 3600,
               "failures_before_down": 1, "passes_before_up": 1}),
    )
    .await;
    check(false).await;
    assert_eq!(menu_codes(&app).await, Vec::<String>::new());
    check(true).await;
    assert_eq!(menu_codes(&app).await, ["cart"]);
}

/// Draining (Eureka's OUT_OF_SERVICE): the instance stays registered and
/// checked, but callers stop picking it.
async fn a_draining_instance_is_left_out_of_the_category_answer(backend: Backend) {
    let app = app(backend).await;
    let (_, token) = app.service_with_token("api", &[]).await;
    let admin = app.admin_token().await;
    let body = |ip: &str, draining: bool| {
        json!({"base_url": format!("http://{ip}/"), "ttl_seconds": 60, "draining": draining,
               "categories": [{"name": "backend", "priority": 1}]})
    };
    put(&app, &token, "api", "a1", body("10.0.1.1", false)).await;
    put(&app, &token, "api", "a2", body("10.0.1.2", false)).await;
    // a2 drains itself before a deploy.
    let view = put(&app, &token, "api", "a2", body("10.0.1.2", true)).await;
    assert_eq!(
        instances(&view),
        [("a1".into(), "up".into(), false), ("a2".into(), "up".into(), true)]
    );
    let live = |c: &Value| c["services"][0]["instances"].clone();
    let c = get(&app, &token, "/api/v1/categories/backend").await;
    assert_eq!(live(&c), json!([{"id": "a1", "base_url": "http://10.0.1.1/"}]));
    assert_eq!(c["services"][0]["status"], "up");
    // A person who is not an admin may not drain it; an admin may.
    let (_, other) = app.service_with_token("other", &[]).await;
    let r = app
        .call(
            Method::PUT,
            "/api/v1/services/api/instances/a1",
            Some(&other),
            Some(body("10.0.1.1", true)),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    put(&app, &admin, "api", "a1", body("10.0.1.1", true)).await;
    let c = get(&app, &token, "/api/v1/categories/backend").await;
    assert_eq!(live(&c), json!([]));
    assert_eq!(c["services"][0]["status"], "up", "draining instances still serve");
    // Drained instances are still checked and leased: a2 lapses to down.
    app.clock.advance(Duration::seconds(30));
    beat(&app, &token, "api", "a1").await;
    app.clock.advance(Duration::seconds(31));
    app.tick().await;
    let view = get(&app, &token, "/api/v1/services/api").await;
    assert_eq!(
        instances(&view),
        [("a1".into(), "up".into(), true), ("a2".into(), "down".into(), true)]
    );
    // Back in service.
    put(&app, &token, "api", "a1", body("10.0.1.1", false)).await;
    let c = get(&app, &token, "/api/v1/categories/backend").await;
    assert_eq!(live(&c), json!([{"id": "a1", "base_url": "http://10.0.1.1/"}]));
}

/// The manifest belongs to the service and is pulled from an instance that
/// is up: a dead replica first by id does not keep the menu empty.
async fn the_manifest_is_pulled_from_an_instance_that_is_up(backend: Backend) {
    let app = app(backend).await;
    let fake = FakeService::start(manifest_json("shop", &[("cart", 1, None)]));
    let (_, token) = app.service_with_token("shop", &[]).await;
    let dead = json!({"base_url": "http://127.0.0.1:1/", "health_url": "/health", "modules_url": "/getModules.json",
                      "ttl_seconds": 3600, "failures_before_down": 1});
    put(&app, &token, "shop", "a-dead", dead).await;
    put(
        &app,
        &token,
        "shop",
        "b-live",
        json!({"base_url": fake.base_url(), "health_url": "/health", "modules_url": "/getModules.json", "ttl_seconds": 3600}),
    )
    .await;
    // The first tick checks both and pulls from a-dead, still up then: it fails.
    app.tick().await;
    let view = get(&app, &token, "/api/v1/services/shop").await;
    assert_eq!(
        instances(&view),
        [
            ("a-dead".into(), "down".into(), false),
            ("b-live".into(), "up".into(), false)
        ]
    );
    assert_eq!(
        view["manifest_error"],
        "unreachable: request failed: error sending request for url (http://127.0.0.1:1/getModules.json)",
        "pulled from a-dead, up when the pull was claimed"
    );
    // The next pull skips the instance that is down.
    app.clock.advance(Duration::seconds(60));
    app.tick().await;
    let view = get(&app, &token, "/api/v1/services/shop").await;
    assert_eq!(view["manifest"]["code"], "shop", "{view}");
    assert_eq!(view["manifest_error"], Value::Null);
    assert_eq!(menu_codes(&app).await, ["cart"]);
}

/// A long-poll loop on `path` of `app`: it re-polls with each answer's
/// `X-Roster-Index` until an answer satisfies `done`, and returns every
/// answer it received. The receiver counts the answers so far.
fn watch(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    index: i64,
    done: fn(&Value) -> bool,
) -> (tokio::task::JoinHandle<Vec<Value>>, tokio::sync::watch::Receiver<usize>) {
    let (client, base, token) = (app.client.clone(), app.url(path), token.map(str::to_string));
    let (count, counted) = tokio::sync::watch::channel(0);
    let handle = tokio::spawn(async move {
        let mut answers = Vec::new();
        let mut index = index;
        loop {
            let sep = if base.contains('?') { '&' } else { '?' };
            let mut req = client.get(format!("{base}{sep}index={index}&wait=60s"));
            if let Some(t) = &token {
                req = req.bearer_auth(t);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 200);
            index = resp.headers()["x-roster-index"].to_str().unwrap().parse().unwrap();
            let body: Value = resp.json().await.unwrap();
            let finished = done(&body);
            answers.push(body);
            count.send_replace(answers.len());
            if finished {
                return answers;
            }
        }
    });
    (handle, counted)
}

async fn answers(watcher: tokio::task::JoinHandle<Vec<Value>>, what: &str) -> Vec<Value> {
    tokio::time::timeout(StdDuration::from_secs(20), watcher)
        .await
        .unwrap_or_else(|_| panic!("{what}: never answered"))
        .unwrap()
}

/// Wait (bounded) until a watcher has received `n` answers.
async fn answered(counted: &mut tokio::sync::watch::Receiver<usize>, n: usize) {
    tokio::time::timeout(StdDuration::from_secs(20), counted.wait_for(|c| *c >= n))
        .await
        .expect("the watcher was answered")
        .unwrap();
}

async fn index_of(app: &TestApp, token: &str, path: &str) -> i64 {
    app.call(Method::GET, path, Some(token), None)
        .await
        .header("x-roster-index")
        .parse()
        .unwrap()
}

/// Precise wake-ups: a watcher of service B, of B's category and of the
/// menu each receive exactly one answer, for the change they show; changes
/// to A, heartbeats that change nothing, and changes the view does not show
/// wake nobody.
async fn a_watcher_wakes_only_for_what_it_shows(backend: Backend) {
    let app = app(backend).await;
    let (_, a) = app.service_with_token("svc-a", &[]).await;
    let (_, b) = app.service_with_token("svc-b", &[]).await;
    let reg = |cat: &str, extra: Value| {
        let mut body = json!({"base_url": "http://10.0.2.1/", "ttl_seconds": 600, "categories": [{"name": cat}]});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    put(&app, &a, "svc-a", "a1", reg("cat-a", json!({}))).await;
    put(&app, &b, "svc-b", "b1", reg("cat-b", json!({}))).await;
    let feed = &app.state.registry().feed;

    let index = index_of(&app, &b, "/api/v1/services").await;
    let two = |v: &Value| v["instances"].as_array().unwrap().len() == 2;
    let (service, mut service_count) = watch(&app, "/api/v1/services/svc-b", Some(&b), index, two);
    let (category, _) = watch(&app, "/api/v1/categories/cat-b", Some(&b), index, |v| {
        v["services"][0]["instances"].as_array().unwrap().len() == 2
    });
    let (menu, _) = watch(&app, "/api/v1/modules", None, index, |v| {
        !v["items"].as_array().unwrap().is_empty()
    });
    feed.until_waiting(3).await;

    // Changes to A, and a scoped page anonymous callers do not see.
    put(&app, &a, "svc-a", "a2", reg("cat-a", json!({"description": "A"}))).await;
    let r = app
        .call(
            Method::PUT,
            "/api/v1/services/svc-a/modules",
            Some(&a),
            Some(manifest_json("svc-a", &[("secret", 1, Some("ops:read"))])),
        )
        .await;
    assert_eq!(r.status, 200);
    // Heartbeats that change nothing.
    for _ in 0..3 {
        beat(&app, &a, "svc-a", "a1").await;
        beat(&app, &b, "svc-b", "b1").await;
    }
    // B's meta changes: B's view shows it, its category does not.
    put(&app, &b, "svc-b", "b1", reg("cat-b", json!({"meta": {"k": "v"}}))).await;
    answered(&mut service_count, 1).await;
    // Two ticks of background work, so that any wrong wake-up has long been answered.
    app.tick().await;
    app.tick().await;

    // Now what each shows changes.
    put(&app, &b, "svc-b", "b2", reg("cat-b", json!({}))).await;
    let r = app
        .call(
            Method::PUT,
            "/api/v1/services/svc-a/modules",
            Some(&a),
            Some(manifest_json(
                "svc-a",
                &[("secret", 1, Some("ops:read")), ("home", 2, None)],
            )),
        )
        .await;
    assert_eq!(r.status, 200);

    let service = answers(service, "service").await;
    assert_eq!(service.len(), 2, "one answer for the meta, one for b2");
    assert_eq!(service[0]["meta"], json!({"k": "v"}));
    let category = answers(category, "category").await;
    assert_eq!(category.len(), 1, "{category:?}");
    let menu = answers(menu, "menu").await;
    assert_eq!(menu.len(), 1, "{menu:?}");
    assert_eq!(
        menu[0]["items"][0]["pages"],
        json!([{"name": "HOME", "code": "home", "module_link": "/svc-a/home", "icon": "box", "menu_position": 2}])
    );
}

/// The same across Roster instances on one database: a watcher on B sees
/// changes made on A at B's next tick, and only those to its view.
async fn a_watcher_on_another_instance_wakes_only_for_its_view(backend: Backend) {
    let one = app(backend).await;
    let issuer = one.issuer();
    let two = TestApp::builder(backend)
        .clock(Clock::manual(one.clock.now()))
        .same_database_as(&one)
        .settings(move |mut s| {
            s.token.issuer = roster::auth::jwt::Issuer::new(issuer);
            s
        })
        .spawn()
        .await;
    let (_, a) = one.service_with_token("svc-a", &[]).await;
    let (_, b) = one.service_with_token("svc-b", &[]).await;
    let body = |d: &str| json!({"base_url": "http://10.0.3.1/", "ttl_seconds": 600, "description": d});
    put(&one, &a, "svc-a", "a1", body("a")).await;
    put(&one, &b, "svc-b", "b1", body("b")).await;
    two.tick().await;
    let index = index_of(&two, &b, "/api/v1/services").await;
    let (watcher, _) = watch(&two, "/api/v1/services/svc-b", Some(&b), index, |v| {
        v["description"] == "b2"
    });
    two.state.registry().feed.until_waiting(1).await;

    put(&one, &a, "svc-a", "a1", body("a2")).await;
    put(&one, &a, "svc-a", "a2", body("a3")).await;
    two.tick().await;
    two.tick().await;
    put(&one, &b, "svc-b", "b1", body("b2")).await;
    two.tick().await;
    let got = answers(watcher, "across instances").await;
    assert_eq!(got.len(), 1, "{got:?}");
}

/// The routes of the first registry round are the instance `default`.
async fn the_single_instance_routes_are_the_instance_default(backend: Backend) {
    let app = app(backend).await;
    let (_, token) = app.service_with_token("legacy", &[]).await;
    let r = app
        .call(
            Method::PUT,
            "/api/v1/services/legacy/registration",
            Some(&token),
            Some(json!({"base_url": "http://10.0.4.1/", "ttl_seconds": 30})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(instances(&r.body), [("default".into(), "up".into(), false)]);
    assert_eq!(r.body["base_url"], "http://10.0.4.1/");
    // A replica beside it: the old fields keep showing `default`.
    put(
        &app,
        &token,
        "legacy",
        "extra",
        json!({"base_url": "http://10.0.4.2/", "ttl_seconds": 30}),
    )
    .await;
    app.clock.advance(Duration::seconds(31));
    app.tick().await;
    let r = app
        .call(Method::POST, "/api/v1/services/legacy/heartbeat", Some(&token), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        instances(&r.body),
        [
            ("default".into(), "up".into(), false),
            ("extra".into(), "down".into(), false)
        ]
    );
    assert_eq!(r.body["base_url"], "http://10.0.4.1/");
    let r = app
        .call(
            Method::DELETE,
            "/api/v1/services/legacy/registration",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(instances(&r.body), [("extra".into(), "down".into(), false)]);
    assert_eq!(r.body["base_url"], "http://10.0.4.2/");
    let r = app
        .call(Method::POST, "/api/v1/services/legacy/heartbeat", Some(&token), None)
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (404, Some("not_found")),
        "{}",
        r.body
    );
    assert!(app.audit_types().await.iter().any(|a| a.0 == "service.deregistered"));
}

/// Garbage gets 422 naming the field, and a service cannot grow without bound.
async fn instance_input_is_checked(backend: Backend) {
    let app = app(backend).await;
    let (_, token) = app.service_with_token("picky", &[]).await;
    let ok = json!({"base_url": "http://10.0.5.1/"});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let long = "x".repeat(501);
    let many: serde_json::Map<String, Value> = (0..33).map(|i| (format!("k{i}"), json!("v"))).collect();
    for (id, body, field) in [
        ("bad%20id", ok.clone(), "instance"),
        ("%C3%A9t%C3%A9", ok.clone(), "instance"),
        ("-x", ok.clone(), "instance"),
        ("ok", with("failures_before_down", json!(0)), "failures_before_down"),
        ("ok", with("passes_before_up", json!(21)), "passes_before_up"),
        ("ok", with("description", json!(long)), "description"),
        ("ok", with("description", json!("a\u{7}b")), "description"),
        ("ok", with("meta", Value::Object(many)), "meta"),
        ("ok", with("meta", json!({"Not A Name": "v"})), "meta"),
        ("ok", with("meta", json!({"k": 5})), "meta.k"),
        ("ok", with("draining", json!("yes")), "draining"),
        ("ok", with("replicas", json!(3)), "replicas"),
    ] {
        let r = app
            .call(
                Method::PUT,
                &format!("/api/v1/services/picky/instances/{id}"),
                Some(&token),
                Some(body),
            )
            .await;
        assert_eq!(r.status, 422, "{id} {}", r.body);
        assert_eq!(r.body["field"], field, "{}", r.body);
    }
    for q in ["index=abc", "index=1&wait=forever", "verbose=1"] {
        let r = app
            .call(Method::GET, &format!("/api/v1/services/picky?{q}"), Some(&token), None)
            .await;
        assert_eq!(r.status, 422, "{q}: {}", r.body);
        let r = app.call(Method::GET, &format!("/api/v1/modules?{q}"), None, None).await;
        assert_eq!(r.status, 422, "{q}: {}", r.body);
        let r = app
            .call(Method::GET, &format!("/api/v1/categories/any?{q}"), Some(&token), None)
            .await;
        assert_eq!(r.status, 422, "{q}: {}", r.body);
    }
    let r = app
        .call(
            Method::POST,
            "/api/v1/services/picky/instances/nope/heartbeat",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);

    let max = roster::registry::MAX_INSTANCES as usize;
    for i in 0..max {
        put(&app, &token, "picky", &format!("i{i}"), ok.clone()).await;
    }
    let r = app
        .call(
            Method::PUT,
            "/api/v1/services/picky/instances/one-more",
            Some(&token),
            Some(ok.clone()),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    // A known one may still re-register.
    put(&app, &token, "picky", "i0", ok).await;
}
