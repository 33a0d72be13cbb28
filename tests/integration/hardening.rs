//! Hardening, tried as an attacker would: a service turned against the
//! network or the menus, anonymous floods of the audit log, secrets in the
//! wrong field, and the headers every response carries.

use chrono::{Duration, Utc};
use reqwest::Method;
use roster::clock::Clock;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, FakeService, TestApp, manifest_json};

on_both_backends!(
    registration_refuses_other_hosts_and_forbidden_urls,
    redirects_to_another_origin_are_not_followed,
    resolved_addresses_are_checked_at_connect_time,
    every_address_form_is_judged_after_unwrapping,
    registry_urls_carry_no_query_or_fragment,
    script_links_never_reach_the_menu,
    icon_class_lists_reach_the_menu_unchanged,
    overlong_client_ids_are_refused_and_not_stored,
    a_flood_of_bad_client_authentications_is_folded,
    a_secret_sent_as_client_id_is_not_kept,
    audit_retention_deletes_old_events_in_batches,
);

/// The answer to a registration refused for `field`.
fn invalid_field(field: &str, message: &str) -> (u16, Value) {
    (
        422,
        json!({"error": "invalid_field", "error_description": message, "field": field}),
    )
}

async fn register(app: &TestApp, token: &str, name: &str, body: Value) -> crate::support::FormReply {
    app.call(
        Method::PUT,
        &format!("/api/v1/services/{name}/registration"),
        Some(token),
        Some(body),
    )
    .await
}

async fn registration_refuses_other_hosts_and_forbidden_urls(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, token) = app.service_with_token("billing", &[]).await;
    let cases = [
        (
            json!({"base_url": "http://127.0.0.1:8080/", "health_url": "http://10.0.0.9/health"}),
            "health_url",
            "must be on the host of base_url",
        ),
        (
            json!({"base_url": "http://127.0.0.1:8080/", "modules_url": "http://metadata.internal/m.json"}),
            "modules_url",
            "must be on the host of base_url",
        ),
        (
            json!({"base_url": "http://169.254.169.254/"}),
            "base_url",
            "the address 169.254.169.254 is not allowed",
        ),
        (
            json!({"base_url": "http://2852039166/"}),
            "base_url",
            "the address 169.254.169.254 is not allowed",
        ),
        (
            json!({"base_url": "http://[::ffff:169.254.169.254]/"}),
            "base_url",
            "the address ::ffff:169.254.169.254 is not allowed",
        ),
        (
            json!({"base_url": "http://[fe80::1]:80/"}),
            "base_url",
            "the address fe80::1 is not allowed",
        ),
        (
            json!({"base_url": "http://0.0.0.0:80/"}),
            "base_url",
            "the address 0.0.0.0 is not allowed",
        ),
        (
            json!({"base_url": "http://224.0.0.1/"}),
            "base_url",
            "the address 224.0.0.1 is not allowed",
        ),
        (
            json!({"base_url": "http://svc:hunter2@127.0.0.1/"}),
            "base_url",
            "must not carry a user name or password",
        ),
        (
            json!({"base_url": "gopher://127.0.0.1/"}),
            "base_url",
            "must be an http(s) URL",
        ),
    ];
    for (body, field, message) in cases {
        let r = register(&app, &token, "billing", body.clone()).await;
        assert_eq!((r.status, r.body.clone()), invalid_field(field, message), "{body}");
    }
    // Nothing was registered.
    let r = app
        .call(Method::GET, "/api/v1/services/billing", Some(&token), None)
        .await;
    assert_eq!(r.body["status"], "unknown");
    // A management port on the same host is fine.
    let r = register(
        &app,
        &token,
        "billing",
        json!({"base_url": "http://127.0.0.1:8080/", "health_url": "http://127.0.0.1:9090/health"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

async fn redirects_to_another_origin_are_not_followed(backend: Backend) {
    let app = TestApp::builder(backend).clock(Clock::manual(Utc::now())).spawn().await;
    let (_, token) = app.service_with_token("billing", &[]).await;
    let (_, reader) = app.service_with_token("reader", &[]).await;
    let fake = FakeService::start(manifest_json("billing", &[("invoices", 1, None)]));
    let other = FakeService::start(manifest_json("other", &[]));
    *fake.redirect_to.lock().unwrap() = format!("{}health", other.base_url());
    let r = register(
        &app,
        &token,
        "billing",
        json!({"base_url": fake.base_url(), "health_url": "/elsewhere", "ttl_seconds": 3600,
               "failures_before_down": 1, "passes_before_up": 1}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    app.tick().await;
    assert_eq!(
        other.health_hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the other listener was never reached"
    );
    // The service itself reads the detail; another service the reason only.
    let own = app
        .call(Method::GET, "/api/v1/services/billing", Some(&token), None)
        .await;
    assert_eq!(own.body["status"], "down");
    let error = own.body["health"]["error"].as_str().unwrap();
    assert!(error.starts_with("unreachable: redirect refused"), "{error}");
    assert!(error.contains("another origin"), "{error}");
    let seen = app
        .call(Method::GET, "/api/v1/services/billing", Some(&reader), None)
        .await;
    assert_eq!(seen.body["health"]["error"], "unreachable");
    let listed = app.call(Method::GET, "/api/v1/services", Some(&reader), None).await;
    assert_eq!(listed.body["items"][0]["health"]["error"], "unreachable");

    // A redirect on the same origin is still followed.
    *fake.redirect_to.lock().unwrap() = "/health".into();
    app.clock.advance(Duration::seconds(10));
    app.tick().await;
    let own = app
        .call(Method::GET, "/api/v1/services/billing", Some(&token), None)
        .await;
    assert_eq!(own.body["status"], "up", "{}", own.body);
}

/// A name is not judged at registration, but every address it resolves to
/// is judged when Roster connects: with loopback denied, `localhost` is
/// never reached, however it was registered.
async fn resolved_addresses_are_checked_at_connect_time(backend: Backend) {
    let app = TestApp::builder(backend)
        .clock(Clock::manual(Utc::now()))
        .settings(|mut s| {
            s.registry.fetch = roster::outbound::policy::FetchPolicy::new(
                vec![],
                vec![
                    roster::outbound::policy::parse_net("127.0.0.0/8").unwrap(),
                    roster::outbound::policy::parse_net("::1").unwrap(),
                ],
            );
            s
        })
        .spawn()
        .await;
    let (_, token) = app.service_with_token("billing", &[]).await;
    let fake = FakeService::start(manifest_json("billing", &[("invoices", 1, None)]));
    let port = fake.addr.port();
    // The literal address is refused at registration...
    let r = register(&app, &token, "billing", json!({"base_url": fake.base_url()})).await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("base_url")));
    // ...and a name for it is refused where Roster connects.
    let r = register(
        &app,
        &token,
        "billing",
        json!({"base_url": format!("http://localhost:{port}/"), "health_url": "/health", "ttl_seconds": 3600,
               "failures_before_down": 1}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    app.tick().await;
    assert_eq!(fake.health_hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    let own = app
        .call(Method::GET, "/api/v1/services/billing", Some(&token), None)
        .await;
    assert_eq!(own.body["status"], "down");
    assert_eq!(
        own.body["health"]["error"],
        "unreachable: refused by the fetch policy: localhost resolves to no allowed address"
    );
}

/// Every spelling of an address a service might smuggle, with the verdict:
/// `true` is allowed. The NAT64 prefixes `2001:db8:64::/96` and
/// `2001:db8:122::/48` are declared by the operator in this test.
const ADDRESS_FORMS: &[(&str, bool)] = &[
    // IPv4 forms of the metadata service and the refused ranges.
    ("169.254.169.254", false),
    ("100.100.100.200", false),
    ("168.63.129.16", false),
    ("192.0.0.192", false),
    ("192.88.99.1", false),
    ("240.0.0.1", false),
    ("250.1.2.3", false),
    ("255.255.255.254", false),
    ("255.255.255.255", false),
    ("0.0.0.0", false),
    // IPv6 forms carrying 169.254.169.254, or not judgeable.
    ("::169.254.169.254", false),                    // IPv4-compatible
    ("::ffff:169.254.169.254", false),               // IPv4-mapped
    ("::ffff:0:a9fe:a9fe", false),                   // SIIT
    ("64:ff9b::a9fe:a9fe", false),                   // NAT64, well-known prefix
    ("2001:db8:64::a9fe:a9fe", false),               // NAT64, declared /96
    ("2001:db8:122:a9fe:a9:fe00::", false),          // NAT64, declared /48 (RFC 6052 u octet)
    ("2002:a9fe:a9fe::1", false),                    // 6to4
    ("2002:e000:1::1", false),                       // 6to4 of multicast 224.0.1.0
    ("::224.0.0.1", false),                          // IPv4-compatible multicast
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", false), // Teredo
    ("64:ff9b:1::a9fe:a9fe", false),                 // local-use NAT64
    ("100::1", false),                               // discard-only
    ("fec0::1", false),                              // site-local
    ("fd00:ec2::254", false),                        // AWS metadata over IPv6
    ("fe80::1", false),
    ("ff02::1", false),
    ("::", false),
    // Allowed: where a system's services live, and what the forms carry of it.
    ("127.0.0.1", true),
    ("10.1.2.3", true),
    ("100.64.0.1", true),
    ("8.8.8.8", true),
    ("::1", true),
    ("fd00::1", true),
    ("fd00:ec2::253", true),
    ("2606:4700::1111", true),
    ("::ffff:10.0.0.1", true),
    ("::10.0.0.1", true),
    ("::ffff:0:a00:1", true),
    ("64:ff9b::a00:1", true),
    ("2001:db8:64::a00:1", true),
    ("2002:a00:1::1", true),
];

fn with_declared_nat64(mut s: roster::config::Settings) -> roster::config::Settings {
    use roster::outbound::policy::parse_nat64;
    s.registry.fetch.nat64 = vec![
        parse_nat64("2001:db8:64::/96").unwrap(),
        parse_nat64("2001:db8:122::/48").unwrap(),
    ];
    s.registry.fetch.hosts = ADDRESS_FORMS
        .iter()
        .enumerate()
        .map(|(i, (addr, _))| (format!("form{i}.test"), vec![addr.parse().unwrap()]))
        .collect();
    s
}

/// Each form in [`ADDRESS_FORMS`], as a literal `base_url` at registration
/// and as the only address a name resolves to when Roster connects.
async fn every_address_form_is_judged_after_unwrapping(backend: Backend) {
    use reqwest::dns::Resolve;
    let app = TestApp::builder(backend).settings(with_declared_nat64).spawn().await;
    let (_, token) = app.service_with_token("billing", &[]).await;
    let policy = std::sync::Arc::new(app.state.settings().registry.fetch.clone());
    let resolver = policy.resolver();
    for (i, (addr, allowed)) in ADDRESS_FORMS.iter().enumerate() {
        let ip: std::net::IpAddr = addr.parse().unwrap();
        let literal = if ip.is_ipv6() {
            format!("[{addr}]")
        } else {
            addr.to_string()
        };
        let r = register(
            &app,
            &token,
            "billing",
            json!({"base_url": format!("http://{literal}/")}),
        )
        .await;
        if *allowed {
            assert_eq!(r.status, 200, "{addr}: {}", r.body);
        } else {
            assert_eq!(
                (r.status, r.body.clone()),
                invalid_field("base_url", &format!("the address {ip} is not allowed")),
                "{addr}"
            );
        }
        let name = format!("form{i}.test");
        let resolved = resolver.resolve(name.parse().unwrap()).await;
        match (allowed, resolved) {
            (true, Ok(addrs)) => assert_eq!(addrs.map(|a| a.ip()).collect::<Vec<_>>(), vec![ip], "{addr}"),
            (false, Err(e)) => assert_eq!(e.to_string(), format!("{name} resolves to no allowed address")),
            (true, Err(e)) => panic!("{addr} must resolve at connect time: {e}"),
            (false, Ok(_)) => panic!("{addr} must be refused at connect time"),
        }
    }
    // And end to end: a health check to a name with such an AAAA record never connects.
    let smuggled = ADDRESS_FORMS
        .iter()
        .position(|(a, _)| *a == "::169.254.169.254")
        .unwrap();
    let r = register(
        &app,
        &token,
        "billing",
        json!({"base_url": format!("http://form{smuggled}.test:1/"), "health_url": "/health",
               "failures_before_down": 1}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    app.tick().await;
    let own = app
        .call(Method::GET, "/api/v1/services/billing", Some(&token), None)
        .await;
    assert_eq!(
        own.body["health"]["error"],
        format!("unreachable: refused by the fetch policy: form{smuggled}.test resolves to no allowed address")
    );
}

/// Other services read these URLs: a query or fragment is refused, an
/// empty one is harmless.
async fn registry_urls_carry_no_query_or_fragment(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, token) = app.service_with_token("billing", &[]).await;
    let message = "must not carry a query or fragment: every service reading the registry sees it";
    for (body, field) in [
        (json!({"base_url": "http://127.0.0.1:8080/?token=SECRET"}), "base_url"),
        (json!({"base_url": "http://127.0.0.1:8080/#token=SECRET"}), "base_url"),
        (
            json!({"base_url": "http://127.0.0.1:8080/", "health_url": "/health?key=SECRET"}),
            "health_url",
        ),
        (
            json!({"base_url": "http://127.0.0.1:8080/", "modules_url": "/getModules.json#SECRET"}),
            "modules_url",
        ),
        (
            json!({"base_url": "http://127.0.0.1:8080/", "modules_url": "http://127.0.0.1:9090/m?SECRET"}),
            "modules_url",
        ),
    ] {
        let r = register(&app, &token, "billing", body.clone()).await;
        assert_eq!((r.status, r.body.clone()), invalid_field(field, message), "{body}");
    }
    let r = register(
        &app,
        &token,
        "billing",
        json!({"base_url": "http://127.0.0.1:8080/?", "health_url": "/health?#"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let listed = app.call(Method::GET, "/api/v1/services", Some(&token), None).await;
    assert!(!listed.body.to_string().contains("SECRET"), "{}", listed.body);
}

fn with_link(link: &str) -> Value {
    json!({"name": "Billing", "code": "billing", "pages": [
        {"name": "Invoices", "code": "invoices", "module_link": link, "icon": "receipt", "menu_position": 1}
    ]})
}

async fn script_links_never_reach_the_menu(backend: Backend) {
    let app = TestApp::builder(backend).clock(Clock::manual(Utc::now())).spawn().await;
    let (_, token) = app.service_with_token("billing", &[]).await;
    let r = register(
        &app,
        &token,
        "billing",
        json!({"base_url": "http://127.0.0.1:1/", "ttl_seconds": 3600}),
    )
    .await;
    assert_eq!(r.status, 200);
    let push = |m: Value| {
        let (app, token) = (&app, token.clone());
        async move {
            app.call(Method::PUT, "/api/v1/services/billing/modules", Some(&token), Some(m))
                .await
        }
    };
    assert_eq!(push(with_link("/billing/invoices")).await.status, 200);
    for bad in [
        "javascript:alert(document.cookie)",
        " JaVaScRiPt:alert(1)",
        "javascript&#58;alert(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "vbscript:msgbox(1)",
    ] {
        let r = push(with_link(bad)).await;
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (422, Some("pages[0].module_link")),
            "{bad}"
        );
    }
    let mut extra = with_link("/ok");
    extra["js"] = json!(["http://evil.example/steal.js"]);
    let r = push(extra).await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("js")));
    let mut named = with_link("/ok");
    named["pages"][0]["name"] = json!("<img src=x onerror=alert(1)>");
    assert_eq!(push(named).await.status, 422);

    // A pulled manifest with a script link is rejected whole; the last good stays.
    let fake = FakeService::start(with_link("/billing/invoices"));
    let r = register(
        &app,
        &token,
        "billing",
        json!({"base_url": fake.base_url(), "modules_url": "/getModules.json", "ttl_seconds": 3600}),
    )
    .await;
    assert_eq!(r.status, 200);
    app.tick().await;
    fake.set_manifest(&with_link("javascript:alert(1)").to_string());
    app.clock.advance(Duration::seconds(60));
    app.tick().await;
    let own = app
        .call(Method::GET, "/api/v1/services/billing", Some(&token), None)
        .await;
    assert!(
        own.body["manifest_error"]
            .as_str()
            .unwrap()
            .starts_with("bad_manifest: invalid manifest"),
        "{}",
        own.body
    );
    let resp = app.client.get(app.url("/api/v1/modules")).send().await.unwrap();
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    let menu: Value = resp.json().await.unwrap();
    assert_eq!(
        menu["items"][0]["pages"],
        json!([{"name": "Invoices", "code": "invoices", "module_link": "/billing/invoices", "icon": "receipt", "menu_position": 1}])
    );
    assert!(!menu.to_string().to_lowercase().contains("javascript"));
}

fn with_icon(code: &str, icon: &str) -> Value {
    json!({"name": code.to_uppercase(), "code": code, "pages": [
        {"name": "Tickets", "code": "tickets", "module_link": format!("/{code}/tickets"), "icon": icon, "menu_position": 1}
    ]})
}

/// Icon-font class lists (`fa fa-ticket`), the commonest icon in frontend
/// menus, are accepted pushed and pulled and listed as stored; anything that
/// could leave a `class` attribute is still refused, naming the field.
async fn icon_class_lists_reach_the_menu_unchanged(backend: Backend) {
    let app = TestApp::builder(backend).clock(Clock::manual(Utc::now())).spawn().await;
    let (_, pushed) = app.service_with_token("events", &[]).await;
    let r = register(
        &app,
        &pushed,
        "events",
        json!({"base_url": "http://127.0.0.1:1/", "ttl_seconds": 3600}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app
        .call(
            Method::PUT,
            "/api/v1/services/events/modules",
            Some(&pushed),
            Some(with_icon("events", "fa fa-cog")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    for bad in [
        "fa  fa-cog",
        "fa \"x",
        "fa <b>",
        "fa fa-cog:x",
        "fa\tfa-cog",
        "JaVaScRiPt:alert(1)",
    ] {
        let r = app
            .call(
                Method::PUT,
                "/api/v1/services/events/modules",
                Some(&pushed),
                Some(with_icon("events", bad)),
            )
            .await;
        assert_eq!(
            (r.status, r.body["error"].as_str(), r.body["field"].as_str()),
            (422, Some("invalid_field"), Some("pages[0].icon")),
            "{bad:?}: {}",
            r.body
        );
    }

    let (_, pulled) = app.service_with_token("tools", &[]).await;
    let fake = FakeService::start(with_icon("tools", "fa-solid fa-wrench"));
    let r = register(
        &app,
        &pulled,
        "tools",
        json!({"base_url": fake.base_url(), "modules_url": "/getModules.json", "ttl_seconds": 3600}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    app.tick().await;

    let (status, menu) = app.get_json("/api/v1/modules").await;
    assert_eq!(status, 200, "{menu}");
    let mut icons: Vec<(String, Value)> = menu["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["code"].as_str().unwrap().to_string(), m["pages"].clone()))
        .collect();
    icons.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        icons,
        vec![
            (
                "events".to_string(),
                json!([{"name": "Tickets", "code": "tickets", "module_link": "/events/tickets", "icon": "fa fa-cog", "menu_position": 1}])
            ),
            (
                "tools".to_string(),
                json!([{"name": "Tickets", "code": "tickets", "module_link": "/tools/tickets", "icon": "fa-solid fa-wrench", "menu_position": 1}])
            ),
        ],
        "{menu}"
    );
}

async fn overlong_client_ids_are_refused_and_not_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let before = app.query(roster::models::audit::count).await;
    let long = "L".repeat(60 * 1024);
    let expect =
        json!({"error": "invalid_request", "error_description": "parameter 'client_id' is longer than 255 bytes"});
    let r = app
        .post_form(
            "/oauth/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &long),
                ("client_secret", "x"),
            ],
        )
        .await;
    assert_eq!((r.status, r.body.clone()), (400, expect.clone()));
    let r = app
        .post_form(
            "/oauth/token",
            Some((&long, "secret")),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!((r.status, r.body), (400, expect));
    let r = app
        .post_form(
            "/oauth/token",
            None,
            &[("grant_type", "password"), ("username", &long), ("password", "x")],
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        app.query(roster::models::audit::count).await,
        before,
        "nothing was written"
    );
    assert!(!app.audit_dump().await.contains(&"L".repeat(64)));
}

async fn a_flood_of_bad_client_authentications_is_folded(backend: Backend) {
    const FLOOD: usize = 1000;
    // Throttling off, to see the folding of the audit log on its own.
    let app = TestApp::builder(backend)
        .clock(Clock::manual(Utc::now()))
        .settings(|mut s| {
            s.throttle.pair_limit = i32::MAX;
            s.throttle.network_limit = i32::MAX;
            s.throttle.name_limit = i32::MAX;
            s
        })
        .spawn()
        .await;
    app.create_service("billing", &[]).await;
    let before = app.query(roster::models::audit::count).await;
    let mut done = 0;
    while done < FLOOD {
        let batch: Vec<_> = (done..(done + 50).min(FLOOD))
            .map(|i| {
                let (app, id) = (
                    &app,
                    if i % 2 == 0 {
                        "billing".to_string()
                    } else {
                        format!("nobody-{i}")
                    },
                );
                async move {
                    app.post_form(
                        "/oauth/token",
                        Some((&id, "wrong-secret")),
                        &[("grant_type", "client_credentials")],
                    )
                    .await
                    .status
                }
            })
            .collect();
        for status in futures_util::future::join_all(batch).await {
            assert_eq!(status, 401);
        }
        done += 50;
    }
    let rows = app.query(roster::models::audit::count).await - before;
    // One row per (source, principal) in the window: billing, and the unknown ones.
    assert_eq!(rows, 2, "a flood of {FLOOD} added {rows} audit rows");
    // When the window closes, the tick writes the counts.
    app.clock.advance(Duration::seconds(61));
    app.tick().await;
    let admin = app.admin_token().await;
    let r = app
        .call(Method::GET, "/api/v1/audit?type=login.client", Some(&admin), None)
        .await;
    let mut counts: Vec<i64> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["count"].as_i64().unwrap())
        .collect();
    counts.sort();
    assert_eq!(counts, vec![500, 500]);
    // The next window opens a new row.
    let r = app
        .post_form(
            "/oauth/token",
            Some(("billing", "wrong")),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status, 401);
    // +3 for the admin (created, granted admin, logged in), +1 for the new window.
    assert_eq!(app.query(roster::models::audit::count).await - before, 6);
}

async fn a_secret_sent_as_client_id_is_not_kept(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let svc = app.create_service("billing", &[]).await;
    // Basic with the parts swapped: the secret arrives as the client_id.
    let r = app
        .post_form(
            "/oauth/token",
            Some((&svc.secret, "billing")),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status, 401);
    let dump = app.audit_dump().await;
    assert!(!dump.contains(&svc.secret[8..]), "the secret was kept: {dump}");
    let admin = app.admin_token().await;
    let r = app
        .call(Method::GET, "/api/v1/audit?type=login.client", Some(&admin), None)
        .await;
    let details = &r.body["items"][0]["details"];
    assert_eq!(details["client_id_prefix"], &svc.secret[..8]);
    assert_eq!(details["client_id_hash"].as_str().unwrap().len(), 16);
    assert!(details.get("client_id").is_none());
}

async fn audit_retention_deletes_old_events_in_batches(backend: Backend) {
    let start = Utc::now();
    let app = TestApp::builder(backend)
        .clock(Clock::manual(start))
        .settings(|mut s| {
            s.audit_retention = Some(Duration::days(90));
            s
        })
        .spawn()
        .await;
    app.query(move |c| {
        for _ in 0..(roster::upkeep::RETENTION_BATCH + 100) {
            roster::models::audit::insert(
                c,
                roster::models::audit::NewAuditEvent::new("test.old", roster::models::audit::Outcome::Ok),
                start,
            )?;
        }
        Ok(())
    })
    .await;
    app.tick().await;
    assert_eq!(app.query(roster::models::audit::count).await, 600, "nothing is old yet");
    app.clock.advance(Duration::days(91));
    app.tick().await;
    assert_eq!(app.query(roster::models::audit::count).await, 100, "one batch per pass");
    app.clock.advance(Duration::seconds(61));
    app.tick().await;
    assert_eq!(app.query(roster::models::audit::count).await, 0);
}

/// Headers every response carries, 405s that say what is allowed, and no
/// caching of responses that hold a secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_carry_security_headers() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let admin = app.admin_token().await;
    for path in ["/healthz", "/no/such/route", "/.well-known/jwks.json", "/api/v1/me"] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
        assert!(r.headers().get("server").is_none(), "no version banner on {path}");
    }
    let r = app.client.delete(app.url("/oauth/token")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "method_not_allowed", "error_description": "DELETE is not allowed here; use POST"})
    );
    let r = app.client.post(app.url("/api/v1/principals/abc")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "DELETE, GET, PATCH");

    let created = app
        .call(
            Method::POST,
            "/api/v1/principals",
            Some(&admin),
            Some(json!({"kind": "service", "name": "svc"})),
        )
        .await;
    assert_eq!(created.status, 201);
    assert_eq!(
        (created.header("cache-control"), created.header("pragma")),
        ("no-store", "no-cache")
    );
    let id = created.body["id"].as_str().unwrap();
    let second = app
        .call(
            Method::POST,
            &format!("/api/v1/principals/{id}/secrets"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(second.status, 201);
    assert_eq!(second.header("cache-control"), "no-store");
}

/// Bodies or heads that trickle in cannot hold the server: a real request
/// still goes through while hundreds are held open, and every held
/// connection is answered and closed once its timeout passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const HELD: usize = 200;
    let app = TestApp::builder(Backend::Sqlite)
        .settings(|mut s| {
            s.http.head_timeout = std::time::Duration::from_secs(1);
            s.http.request_timeout = std::time::Duration::from_secs(1);
            s
        })
        .spawn()
        .await;
    let svc = app.create_service("billing", &[]).await;
    let mut held = Vec::new();
    for i in 0..HELD {
        let mut c = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        let partial: &[u8] = if i % 2 == 0 {
            // A whole head, then a body that never finishes.
            b"POST /oauth/token HTTP/1.1\r\nHost: roster\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ngrant_type=cl"
        } else {
            // A head that never finishes.
            b"POST /oauth/token HTTP/1.1\r\nHost: roster\r\nContent-Le"
        };
        c.write_all(partial).await.unwrap();
        held.push(c);
    }
    // Meanwhile a real client is served.
    app.client_token("billing", &svc.secret).await;
    // Each held connection is answered and closed by the server (the guard
    // only turns a hang into a failure).
    for (i, mut c) in held.into_iter().enumerate() {
        let mut buf = Vec::new();
        tokio::time::timeout(std::time::Duration::from_secs(30), c.read_to_end(&mut buf))
            .await
            .expect("the server kept a slow connection open")
            .unwrap_or(0);
        let text = String::from_utf8_lossy(&buf);
        if i % 2 == 0 {
            assert!(text.starts_with("HTTP/1.1 400"), "{text}");
            assert!(text.contains("the request body did not arrive within 1s"), "{text}");
        } else {
            assert!(text.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
        }
    }
}

/// PostgreSQL kills Roster's connections (a failover, `pg_terminate_backend`):
/// the request that meets a dead connection is a 503 with Retry-After, never
/// a 500, and the next one is served on a fresh connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(roster_test_postgres),
    ignore = "PostgreSQL only: set TEST_DATABASE_URL (see README)"
)]
async fn killed_database_connections_are_a_503_then_recover() {
    use diesel::{Connection, RunQueryDsl};
    let admin_url = crate::support::require_postgres();
    let app = TestApp::spawn(Backend::Postgres).await;
    let svc = app.create_service("billing", &[]).await;
    // A token for a named resource: the resource is looked up in the
    // database on every request (a plain client_credentials request of a
    // client verified moments ago needs no database at all).
    let grant = || {
        app.post_form(
            "/oauth/token",
            Some(("billing", &svc.secret)),
            &[("grant_type", "client_credentials"), ("resource", "billing")],
        )
    };
    // Every pooled connection is open and idle.
    for _ in 0..4 {
        assert_eq!(grant().await.status, 200);
    }
    let dbname = url::Url::parse(&app.db.url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_string();
    let mut admin = diesel::PgConnection::establish(&admin_url).unwrap();
    diesel::sql_query(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{dbname}' AND pid <> pg_backend_pid()"
    ))
    .execute(&mut admin)
    .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = grant().await;
        if r.status == 503 {
            assert_eq!(r.header("retry-after"), "1");
            assert_eq!(
                r.body,
                json!({"error": "temporarily_unavailable", "error_description": "the service is temporarily unavailable"})
            );
        }
        statuses.push(r.status);
    }
    assert_eq!(statuses[0], 503, "the dead connection was used: {statuses:?}");
    assert!(!statuses.contains(&500), "{statuses:?}");
    assert_eq!(*statuses.last().unwrap(), 200, "recovered: {statuses:?}");
}

on_both_backends!(nul_characters_are_refused_everywhere_never_a_500);

/// PostgreSQL cannot store U+0000 in text, SQLite can: every way in refuses
/// it alike, with a 400 that says so, and none reaches the database as a 500.
async fn nul_characters_are_refused_everywhere_never_a_500(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let refused = "text must not contain a NUL character (U+0000)";
    let oauth = |param: &str| serde_json::json!({"error": "invalid_request", "error_description": format!("parameter '{param}': {refused}")});
    // OAuth forms: a client_id in the body, a username.
    let r = app
        .post_form(
            "/oauth/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "a\0b"),
                ("client_secret", "x"),
            ],
        )
        .await;
    assert_eq!((r.status, r.body), (400, oauth("client_id")));
    let r = app
        .post_form(
            "/oauth/token",
            None,
            &[("grant_type", "password"), ("username", "ad\0min"), ("password", "x")],
        )
        .await;
    assert_eq!((r.status, r.body), (400, oauth("username")));
    // Basic credentials.
    let r = app
        .post_form(
            "/oauth/token",
            Some(("a\0b", "x")),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(
        (r.status, r.body),
        (
            400,
            serde_json::json!({"error": "invalid_request", "error_description": format!("Basic credentials: {refused}")})
        )
    );
    // A client assertion whose iss holds one.
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let assertion = format!("{}.{}.c2ln", b64(r#"{"alg":"EdDSA"}"#), b64(r#"{"iss":"a\u0000b"}"#));
    let r = app
        .post_form(
            "/oauth/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &assertion),
            ],
        )
        .await;
    assert_eq!(
        (r.status, r.body),
        (
            401,
            serde_json::json!({"error": "invalid_client", "error_description": "the client assertion is not a JWT: its iss is empty, too long or holds control characters"})
        )
    );
    // JSON bodies, query strings and paths of the API.
    let bad_request = serde_json::json!({"error": "invalid_request", "error_description": refused});
    let r = app
        .call(
            reqwest::Method::POST,
            "/api/v1/principals",
            Some(&admin),
            Some(serde_json::json!({"kind": "service", "name": "x1", "display_name": "a\u{0}b"})),
        )
        .await;
    assert_eq!((r.status, r.body), (400, bad_request.clone()));
    let r = app
        .call(reqwest::Method::GET, "/api/v1/principals?q=a%00b", Some(&admin), None)
        .await;
    assert_eq!((r.status, r.body), (400, bad_request.clone()));
    let r = app
        .call(reqwest::Method::GET, "/api/v1/principals/a%00b", Some(&admin), None)
        .await;
    assert!(r.status == 400 || r.status == 404, "{} {}", r.status, r.body);
}
