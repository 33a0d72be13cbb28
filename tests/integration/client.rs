//! `roster-client` against a real Roster process (this workspace's binary),
//! on both backends: the token cache and single flight, renewal, key
//! rotation, refused tokens, the revocation feed, the registry agent, and
//! Roster stopped and restarted under it.

use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, Utc};
use roster_client::{
    Backoff, Category, Clock, RegistryAgent, RevocationPolicy, SecretString, ServiceRegistration, TokenError,
    TokenRequest, TokenSource, Verifier, VerifierConfig, VerifyError,
};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::Backend;
use crate::support::process::Roster;

on_both_backends!(
    a_hundred_callers_cause_one_token_request,
    tokens_renew_at_80_percent_and_after_invalid_token,
    the_verifier_keeps_accepting_across_a_key_rotation,
    forged_expired_and_misaddressed_tokens_are_refused,
    revocations_reach_the_verifier_through_the_feed,
    the_agent_registers_heartbeats_and_leaves,
    roster_stopped_then_restarted,
    the_verifier_reads_the_feed_again_and_finds_a_late_row,
    a_service_exchanges_its_callers_token_and_the_next_sees_the_chain,
);

impl Roster {
    async fn tokens(&self, name: &str, secret: &str, clock: Clock) -> TokenSource {
        TokenSource::discover_with(
            &self.issuer(),
            name,
            SecretString::from(secret.to_string()),
            clock,
            Backoff::default(),
        )
        .await
        .unwrap()
    }

    async fn verifier(&self, audience: &str, clock: Clock) -> Verifier {
        let mut config = VerifierConfig::new(&self.issuer(), audience);
        config.clock = clock;
        Verifier::discover(config).await.unwrap()
    }
}

/// Await `f`, failing the test after 30 s instead of hanging.
async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(StdDuration::from_secs(30), f)
        .await
        .expect("the agent did not get there within 30 s")
}

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

async fn a_hundred_callers_cause_one_token_request(backend: Backend) {
    let mut roster = Roster::start(backend, &[]).await;
    let (id, secret) = roster.service("orders", &["orders:read"]).await;
    let tokens = roster.tokens("orders", &secret, Clock::system()).await;
    let callers: Vec<_> = (0..100)
        .map(|_| {
            let t = tokens.clone();
            tokio::spawn(async move { t.token(&TokenRequest::new()).await.unwrap() })
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    for c in callers {
        seen.insert(c.await.unwrap().secret().to_string());
    }
    assert_eq!(seen.len(), 1, "every caller got the one token");
    assert_eq!(tokens.requests_sent(), 1);
    // Another (scope, resource) is another token; the same one again is cached.
    tokens.token(&TokenRequest::new().scope("orders:read")).await.unwrap();
    tokens.token(&TokenRequest::new().scope("orders:read")).await.unwrap();
    assert_eq!(tokens.requests_sent(), 2);
    // Roster counted the same: its record of the secret's uses.
    roster.stop();
    assert_eq!(roster.secret_uses(&id).await, 2);
    println!("figure: 100 concurrent callers -> {} token request", 1);
    // The secret never prints.
    assert!(!format!("{tokens:?}").contains(&secret));
}

async fn tokens_renew_at_80_percent_and_after_invalid_token(backend: Backend) {
    let roster = Roster::start(backend, &["--access-token-ttl", "60s"]).await;
    let (_, secret) = roster.service("orders", &[]).await;
    let clock = Clock::manual(Utc::now());
    let tokens = roster.tokens("orders", &secret, clock.clone()).await;
    let first = tokens.token(&TokenRequest::new()).await.unwrap();
    assert!(
        !format!("{first:?}").contains(first.secret()),
        "Debug redacts the token"
    );
    clock.advance(Duration::seconds(47));
    assert_eq!(
        tokens.token(&TokenRequest::new()).await.unwrap().secret(),
        first.secret(),
        "before 80 %: cached"
    );
    assert_eq!(tokens.requests_sent(), 1);
    clock.advance(Duration::seconds(2));
    let second = tokens.token(&TokenRequest::new()).await.unwrap();
    assert_ne!(second.secret(), first.secret(), "past 80 % of 60 s: renewed");
    assert_eq!(tokens.requests_sent(), 2);

    // Revoked behind its back: the 401 invalid_token makes it renew at once.
    roster.revoke("orders", &secret, second.secret()).await;
    let http = reqwest::Client::new();
    let me = format!("{}/api/v1/me", roster.issuer());
    let resp = tokens.send(&TokenRequest::new(), || http.get(&me)).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["name"], "orders");
    assert_eq!(tokens.requests_sent(), 3);
    assert_ne!(
        tokens.token(&TokenRequest::new()).await.unwrap().secret(),
        second.secret()
    );
}

async fn the_verifier_keeps_accepting_across_a_key_rotation(backend: Backend) {
    let roster = Roster::start(backend, &["--key-publish-delay", "11s"]).await;
    let (_, secret) = roster.service("orders", &[]).await;
    let verifier = roster.verifier(&roster.issuer(), Clock::system()).await;
    let before = roster.raw_token("orders", &secret, None).await;
    let old_kid = kid(&before);
    verifier.verify(&before).await.unwrap();

    let out = roster.command().args(["keys", "rotate"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Every token Roster issues while it takes up the new key is accepted.
    let started = Instant::now();
    let mut verified = 0;
    loop {
        let token = roster.raw_token("orders", &secret, None).await;
        verifier
            .verify(&token)
            .await
            .unwrap_or_else(|e| panic!("refused during the rotation after {verified} tokens: {e}"));
        verified += 1;
        if kid(&token) != old_kid {
            break;
        }
        assert!(
            started.elapsed() < StdDuration::from_secs(60),
            "Roster never signed with the new key"
        );
    }
    verifier
        .verify(&before)
        .await
        .expect("a token of the old key stays valid");
    println!("figure: {verified} tokens verified across the rotation, none refused");
}

async fn forged_expired_and_misaddressed_tokens_are_refused(backend: Backend) {
    let roster = Roster::start(backend, &[]).await;
    let (_, secret) = roster.service("orders", &["orders:read"]).await;
    roster.service("billing", &[]).await;
    let clock = Clock::manual(Utc::now());
    let verifier = roster.verifier("orders", clock.clone()).await;
    let good = roster.raw_token("orders", &secret, Some("orders")).await;
    let claims = verifier.verify(&good).await.unwrap();
    assert_eq!((claims.name.as_str(), claims.kind.as_str()), ("orders", "service"));

    use base64::Engine as _;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let parts: Vec<&str> = good.split('.').collect();
    let payload: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    let mut escalated = payload.clone();
    escalated["scope"] = json!("admin orders:read");
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[0])
            .unwrap(),
    )
    .unwrap();
    let mut none = header.clone();
    none["alg"] = json!("none");
    let mut hs = header.clone();
    hs["alg"] = json!("HS256");
    let mut id_token = header.clone();
    id_token["typ"] = json!("JWT");
    let cases = [
        (
            "changed claims",
            format!("{}.{}.{}", parts[0], b64(&escalated), parts[2]),
        ),
        ("alg none", format!("{}.{}.", b64(&none), parts[1])),
        ("HS256", format!("{}.{}.{}", b64(&hs), parts[1], parts[2])),
        ("typ JWT", format!("{}.{}.{}", b64(&id_token), parts[1], parts[2])),
        ("garbage", "not.a.token".to_string()),
        (
            "another audience",
            roster.raw_token("orders", &secret, Some("billing")).await,
        ),
        ("Roster's audience", roster.raw_token("orders", &secret, None).await),
    ];
    for (what, token) in &cases {
        match verifier.verify(token).await {
            Err(VerifyError::Invalid(_)) => {}
            other => panic!("{what}: {other:?}"),
        }
    }
    clock.advance(Duration::minutes(5) + Duration::seconds(31));
    assert_eq!(verifier.verify(&good).await, Err(VerifyError::Invalid("expired")));

    // Through actix-web and through axum: the same RFC 6750 answers.
    clock.advance(-(Duration::minutes(5) + Duration::seconds(31)));
    let (addr, _server) = actix_app(verifier.clone());
    framework_answers_as_rfc_6750_says(addr, &good, &cases[0].1).await;
    let addr = axum_app(verifier.clone()).await;
    framework_answers_as_rfc_6750_says(addr, &good, &cases[0].1).await;
}

/// What a framework integration answers: no token, a forged one, too few
/// scopes, and enough.
async fn framework_answers_as_rfc_6750_says(addr: std::net::SocketAddr, good: &str, forged: &str) {
    let http = reqwest::Client::new();
    let get = |path: &str, token: Option<&str>| {
        let mut req = http.get(format!("http://{addr}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let r = get("/hello", None).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], r#"Bearer realm="roster""#);
    let r = get("/hello", Some(forged)).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        r#"Bearer realm="roster", error="invalid_token", error_description="the access token is invalid, expired or revoked""#
    );
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "invalid_token", "error_description": "the access token is invalid, expired or revoked"})
    );
    let r = get("/write", Some(good)).await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.headers()["www-authenticate"],
        r#"Bearer realm="roster", error="insufficient_scope", scope="orders:write""#
    );
    let r = get("/read", Some(good)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"name": "orders", "scopes": ["orders:read"]})
    );
}

/// The same app in axum, with the extractor and the tower layer, on loopback.
async fn axum_app(verifier: Verifier) -> std::net::SocketAddr {
    use axum::Router;
    use axum::routing::get;
    use roster_client::axum::{Caller, RequireScopeLayer};
    async fn show(caller: Caller) -> axum::Json<Value> {
        axum::Json(json!({"name": caller.name, "scopes": caller.scopes}))
    }
    let app = Router::new()
        .route("/hello", get(show))
        .route(
            "/read",
            get(show).layer(RequireScopeLayer::new(verifier.clone(), "orders:read")),
        )
        .route(
            "/write",
            get(show).layer(RequireScopeLayer::new(verifier.clone(), "orders:write")),
        )
        .with_state(verifier);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// An actix-web app using the extractor and the middleware, on loopback.
fn actix_app(verifier: Verifier) -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    use actix_web::{App, HttpResponse, HttpServer, web};
    use roster_client::actix::{Caller, RequireScope};
    async fn show(caller: Caller) -> HttpResponse {
        HttpResponse::Ok().json(json!({"name": caller.name, "scopes": caller.scopes}))
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let data = web::Data::new(verifier);
            HttpServer::new(move || {
                App::new()
                    .app_data(data.clone())
                    .route("/hello", web::get().to(show))
                    .service(web::resource("/read").wrap(RequireScope::new("orders:read")).to(show))
                    .service(web::resource("/write").wrap(RequireScope::new("orders:write")).to(show))
            })
            .workers(1)
            .disable_signals()
            .listen(listener)
            .unwrap()
            .run()
            .await
            .unwrap();
        })
    });
    (addr, handle)
}

async fn revocations_reach_the_verifier_through_the_feed(backend: Backend) {
    let roster = Roster::start(backend, &[]).await;
    let (_, secret) = roster.service("orders", &[]).await;
    let (caller_id, caller_secret) = roster.service("billing", &["orders:read", "orders:write"]).await;
    let tokens = roster.tokens("orders", &secret, Clock::system()).await;
    let verifier = roster.verifier("orders", Clock::system()).await;
    verifier
        .follow_revocations(tokens.clone(), RevocationPolicy::default())
        .await
        .unwrap();
    let own = tokens.token(&TokenRequest::new()).await.unwrap();

    // A revoked token: refused once the feed brings it, timed.
    let t1 = roster.raw_token("billing", &caller_secret, Some("orders")).await;
    verifier.verify(&t1).await.unwrap();
    let index = roster.feed_index(own.secret()).await;
    let started = Instant::now();
    roster.revoke("billing", &caller_secret, &t1).await;
    tokio::time::timeout(StdDuration::from_secs(5), verifier.revocations_applied(index + 1))
        .await
        .expect("the revocation did not arrive within 5 s");
    let seen_after = started.elapsed();
    assert_eq!(verifier.verify(&t1).await, Err(VerifyError::Invalid("revoked")));
    println!("figure: a revocation reached the verifier {seen_after:?} after the revoke call began");
    assert!(
        seen_after < StdDuration::from_secs(2),
        "bound: about a second, took {seen_after:?}"
    );

    // A demotion narrows the scopes of live tokens; a disable refuses them.
    let t2 = roster.raw_token("billing", &caller_secret, Some("orders")).await;
    assert_eq!(
        verifier.verify(&t2).await.unwrap().scopes,
        ["orders:read", "orders:write"]
    );
    let admin = roster.admin_token().await;
    let http = reqwest::Client::new();
    let r = http
        .patch(format!("{}/api/v1/principals/{caller_id}", roster.issuer()))
        .bearer_auth(&admin)
        .json(&json!({"scopes": ["orders:read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::timeout(StdDuration::from_secs(5), verifier.revocations_applied(index + 2))
        .await
        .unwrap();
    assert_eq!(verifier.verify(&t2).await.unwrap().scopes, ["orders:read"]);
    let r = http
        .delete(format!("{}/api/v1/principals/{caller_id}", roster.issuer()))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::timeout(StdDuration::from_secs(5), verifier.revocations_applied(index + 3))
        .await
        .unwrap();
    assert_eq!(
        verifier.verify(&t2).await,
        Err(VerifyError::Invalid("principal disabled"))
    );
}

async fn the_agent_registers_heartbeats_and_leaves(backend: Backend) {
    let roster = Roster::start(backend, &[]).await;
    let (_, secret) = roster.service("orders", &[]).await;
    let tokens = roster.tokens("orders", &secret, Clock::system()).await;
    let agent = RegistryAgent::new(
        &roster.issuer(),
        "orders",
        tokens.clone(),
        ServiceRegistration {
            instance: Some("orders-1".into()),
            description: Some("Takes orders".into()),
            base_url: "http://127.0.0.1:9/".into(),
            health_url: None,
            modules_url: None,
            manifest: Some(json!({"name": "Orders", "code": "orders",
                "pages": [{"code": "orders-home", "name": "Home", "module_link": "/orders/", "icon": "box", "menu_position": 10}]})),
            categories: vec![Category { name: "shop".into(), priority: 7 }],
            ttl: StdDuration::from_secs(1),
            // What the client's body once lacked (the wire contract is now
            // one type, roster_proto's): meta and the health thresholds.
            meta: Some([("team".to_string(), "shop".to_string())].into()),
            failures_before_down: Some(4),
            passes_before_up: Some(2),
            ..Default::default()
        },
    )
    .start()
    .await
    .unwrap();
    let counts = within(agent.until(|c| c.heartbeats >= 2)).await;
    assert_eq!((counts.registrations, counts.failures), (1, 0));
    let http = reqwest::Client::new();
    let token = tokens.token(&TokenRequest::new()).await.unwrap();
    let service = |http: &reqwest::Client| {
        http.get(format!("{}/api/v1/services/orders", roster.issuer()))
            .bearer_auth(token.secret())
            .send()
    };
    let body: Value = service(&http).await.unwrap().json().await.unwrap();
    assert_eq!(
        (
            body["status"].clone(),
            body["categories"].clone(),
            body["manifest"]["pages"][0]["code"].clone(),
            body["instances"][0]["id"].clone(),
            body["description"].clone(),
            body["meta"].clone(),
            body["instances"][0]["failures_before_down"].clone(),
            body["instances"][0]["passes_before_up"].clone(),
            body["instances"][0]["draining"].clone(),
        ),
        (
            json!("up"),
            json!([{"name": "shop", "priority": 7}]),
            json!("orders-home"),
            json!("orders-1"),
            json!("Takes orders"),
            json!({"team": "shop"}),
            json!(4),
            json!(2),
            json!(false),
        )
    );
    let modules: Value = http
        .get(format!("{}/api/v1/modules", roster.issuer()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(modules["items"][0]["code"], "orders", "{modules}");

    // Forgotten by Roster (an admin removed it): the next heartbeat registers again.
    let admin = roster.admin_token().await;
    let r = http
        .delete(format!("{}/api/v1/services/orders/instances/orders-1", roster.issuer()))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let counts = within(agent.until(|c| c.registrations >= 2)).await;
    assert_eq!(counts.failures, 0);
    assert_eq!(
        service(&http).await.unwrap().json::<Value>().await.unwrap()["status"],
        "up"
    );

    agent.leave().await.unwrap();
    let body: Value = service(&http).await.unwrap().json().await.unwrap();
    assert_eq!(
        (body["status"].clone(), body["base_url"].clone()),
        (json!("unknown"), Value::Null)
    );
}

/// A row that commits below a cursor already handed out (an older server,
/// or a bug) is never read by the follow; the verifier's periodic read from
/// the start finds it. Simulated in the database: the counter moves past 2,
/// the verifier follows to 3, and only then does row 2 appear.
async fn the_verifier_reads_the_feed_again_and_finds_a_late_row(backend: Backend) {
    let roster = Roster::start(backend, &[]).await;
    let (_, secret) = roster.service("orders", &[]).await;
    let (_, caller_secret) = roster.service("billing", &[]).await;
    let tokens = roster.tokens("orders", &secret, Clock::system()).await;
    let verifier = roster.verifier("orders", Clock::system()).await;
    verifier
        .follow_revocations(
            tokens.clone(),
            RevocationPolicy {
                resync_every: StdDuration::from_secs(2),
                ..RevocationPolicy::default()
            },
        )
        .await
        .unwrap();
    let first = roster.raw_token("billing", &caller_secret, Some("orders")).await;
    let late = roster.raw_token("billing", &caller_secret, Some("orders")).await;
    roster.revoke("billing", &caller_secret, &first).await;
    within(verifier.revocations_applied(1)).await;

    let mut conn = roster.connect();
    {
        use diesel::prelude::*;
        use roster::db::schema::auth_state::dsl::*;
        diesel::update(auth_state.find(1))
            .set(revocation_index.eq(3))
            .execute(&mut conn)
            .unwrap();
    }
    within(verifier.revocations_applied(3)).await;
    let claims = crate::support::claims_of(&late);
    {
        use diesel::prelude::*;
        use roster::db::schema::revocations::dsl::*;
        let now = Utc::now().naive_utc();
        diesel::insert_into(revocations)
            .values((
                idx.eq(2i64),
                kind.eq("token"),
                subject.eq(claims["jti"].as_str().unwrap()),
                created_at.eq(now),
                expires_at.eq(now + chrono::Duration::hours(1)),
            ))
            .execute(&mut conn)
            .unwrap();
    }
    // The follow never reads below its cursor; a complete read from the
    // start (one begun after the row committed) finds it.
    let resyncs = verifier.revocation_resyncs();
    within(verifier.revocations_resynced(resyncs + 2)).await;
    assert_eq!(verifier.verify(&late).await, Err(VerifyError::Invalid("revoked")));
    assert_eq!(verifier.verify(&first).await, Err(VerifyError::Invalid("revoked")));
}

async fn roster_stopped_then_restarted(backend: Backend) {
    let mut roster = Roster::start(backend, &[]).await;
    let (_, secret) = roster.service("orders", &[]).await;
    let (_, caller_secret) = roster.service("billing", &[]).await;
    let clock = Clock::manual(Utc::now());
    let tokens = roster.tokens("orders", &secret, clock.clone()).await;
    let verifier = roster.verifier("orders", clock.clone()).await;
    verifier
        .follow_revocations(
            tokens.clone(),
            RevocationPolicy {
                max_staleness: Duration::seconds(60),
                ..RevocationPolicy::default()
            },
        )
        .await
        .unwrap();
    let agent = RegistryAgent::new(
        &roster.issuer(),
        "orders",
        tokens.clone(),
        ServiceRegistration {
            base_url: "http://127.0.0.1:9/".into(),
            ttl: StdDuration::from_secs(1),
            ..Default::default()
        },
    )
    .start()
    .await
    .unwrap();
    let cached = tokens.token(&TokenRequest::new()).await.unwrap();
    let incoming = roster.raw_token("billing", &caller_secret, Some("orders")).await;

    roster.stop();
    // The cached token is still served; a new one cannot be had, and the
    // source backs off instead of asking again at once.
    assert_eq!(
        tokens.token(&TokenRequest::new()).await.unwrap().secret(),
        cached.secret()
    );
    let sent = tokens.requests_sent();
    match tokens.token(&TokenRequest::new().scope("other")).await {
        Err(TokenError::Unavailable { .. }) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    match tokens.token(&TokenRequest::new().scope("other")).await {
        Err(TokenError::Unavailable { .. }) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(
        tokens.requests_sent(),
        sent + 1,
        "the second call waited out the back-off"
    );
    // Offline verification goes on while the feed is fresh enough...
    verifier.verify(&incoming).await.unwrap();
    // ...and fails closed once it is staler than allowed.
    clock.advance(Duration::seconds(61));
    assert_eq!(
        verifier.verify(&incoming).await,
        Err(VerifyError::Unavailable("the revocation feed is stale"))
    );
    // Heartbeats fail while Roster is down (awaited, bounded).
    within(agent.until(|c| c.failures >= 1)).await;

    roster.restart();
    let beats = agent.counts().heartbeats;
    // ...and succeed again once it is back.
    within(agent.until(|c| c.heartbeats > beats)).await;
    // The feed answers again, so the verifier vouches again.
    let index = verifier.revocation_index();
    roster.revoke("billing", &caller_secret, &incoming).await;
    tokio::time::timeout(StdDuration::from_secs(15), verifier.revocations_applied(index + 1))
        .await
        .expect("the verifier did not follow the feed after the restart");
    assert_eq!(verifier.verify(&incoming).await, Err(VerifyError::Invalid("revoked")));
    let fresh = roster.raw_token("billing", &caller_secret, Some("orders")).await;
    verifier.verify(&fresh).await.unwrap();
    agent.leave().await.unwrap();
}

/// RFC 8693 through roster-client: `TokenSource::exchange` caches per
/// (subject, audience), the next service's `Verifier` shows the chain, and
/// revoking the caller's token ends the exchanged one there too.
async fn a_service_exchanges_its_callers_token_and_the_next_sees_the_chain(backend: Backend) {
    let roster = Roster::start(backend, &[]).await;
    let admin = roster.admin_token().await;
    let (orders_id, orders_secret) = roster.service("orders", &[]).await;
    let (_, billing_secret) = roster.service("billing", &[]).await;
    let (frontend_id, frontend_secret) = roster.service("frontend", &["orders:read"]).await;
    let r = reqwest::Client::new()
        .patch(format!("{}/api/v1/principals/{orders_id}", roster.issuer()))
        .bearer_auth(&admin)
        .json(&json!({"token_exchange": {"audiences": ["billing"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let incoming = roster.raw_token("frontend", &frontend_secret, Some("orders")).await;

    let orders = roster.tokens("orders", &orders_secret, Clock::system()).await;
    let first = orders.exchange(&incoming, "billing").await.unwrap();
    let again = orders.exchange(&incoming, "billing").await.unwrap();
    assert_eq!(first.secret(), again.secret(), "cached per (subject, audience)");
    assert_eq!((orders.requests_sent(), orders.exchanges_cached()), (1, 1));
    // A forged token that copies the real one's claims (its jti too) is not
    // handed the real one's exchanged token: Roster judges it, and refuses.
    let forged = format!("{}.AAAA", incoming.rsplit_once('.').unwrap().0);
    let e = orders.exchange(&forged, "billing").await.unwrap_err();
    assert_eq!(
        e.code(),
        Some(roster_client::proto::error::ErrorCode::InvalidGrant),
        "{e}"
    );
    assert_eq!(orders.requests_sent(), 2);
    let e = orders.exchange(&incoming, "ledger").await.unwrap_err();
    assert_eq!(
        e.code(),
        Some(roster_client::proto::error::ErrorCode::UnauthorizedClient),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "Roster refused the token request: unauthorized_client: 'orders' may not exchange tokens for 'ledger'"
    );

    let billing = roster.tokens("billing", &billing_secret, Clock::system()).await;
    let verifier = roster.verifier("billing", Clock::system()).await;
    verifier
        .follow_revocations(billing, RevocationPolicy::default())
        .await
        .unwrap();
    let caller = verifier.verify(first.secret()).await.unwrap();
    assert_eq!(
        (
            caller.id.as_str(),
            caller.name.as_str(),
            caller.client_id.as_str(),
            caller.actors()
        ),
        (frontend_id.as_str(), "frontend", "orders", vec!["orders"])
    );
    assert_eq!(
        caller.act,
        Some(roster_client::proto::claims::Actor {
            sub: orders_id,
            client_id: "orders".into(),
            act: None
        })
    );

    let index = verifier.revocation_index();
    roster.revoke("frontend", &frontend_secret, &incoming).await;
    within(verifier.revocations_applied(index + 1)).await;
    assert_eq!(
        verifier.verify(first.secret()).await,
        Err(VerifyError::Invalid("revoked"))
    );
}
