//! Token exchange (RFC 8693) through real HTTP on both backends: a
//! three-service chain with nested `act`, the depth and policy limits, the
//! revocation cascade into introspection and the feed, and each refusal
//! with its whole body.

use reqwest::Method;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, FormReply, TestApp, TestService, claims_of, t0, verify_with_jwks};
use roster::clock::Clock;

pub const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";

on_both_backends!(
    a_chain_of_three_services_acts_for_a_person_and_ends_with_their_token,
    each_refusal_names_its_rule,
    a_category_audience_is_every_service_of_it_that_is_up,
    losing_a_scope_or_the_acting_service_ends_derived_tokens,
    policies_are_set_shown_and_refused_when_malformed,
    an_exchange_that_races_a_revocation_still_ends,
    exchanges_from_memory_are_stored_and_stop_at_once,
    a_service_with_a_key_exchanges_with_its_assertion,
);

async fn app(backend: Backend) -> TestApp {
    TestApp::builder(backend).clock(Clock::manual(t0())).spawn().await
}

/// `actor` exchanges `subject` for a token towards `audience`, plus extras.
pub async fn exchange(
    app: &TestApp,
    actor: &TestService,
    subject: &str,
    audience: &str,
    extra: &[(&str, &str)],
) -> FormReply {
    let mut form = vec![
        ("grant_type", GRANT),
        ("subject_token", subject),
        ("subject_token_type", ACCESS),
        ("audience", audience),
    ];
    form.extend_from_slice(extra);
    app.post_form("/oauth/token", Some((&actor.name, &actor.secret)), &form)
        .await
}

/// Set `service`'s exchange policy through the admin API.
pub async fn allow(app: &TestApp, admin: &str, service: &TestService, policy: Value) {
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/principals/{}", service.id),
            Some(admin),
            Some(json!({"token_exchange": policy})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["token_exchange"], policy);
}

/// A person's token for `resource`, by the password grant.
async fn person_token(app: &TestApp, user: &str, password: &str, resource: &str) -> String {
    let r = app
        .post_form(
            "/oauth/token",
            None,
            &[
                ("grant_type", "password"),
                ("username", user),
                ("password", password),
                ("resource", resource),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["access_token"].as_str().unwrap().to_string()
}

async fn introspect(app: &TestApp, caller: &TestService, token: &str) -> Value {
    let r = app
        .post_form(
            "/oauth/introspect",
            Some((&caller.name, &caller.secret)),
            &[("token", token)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// A reply as (status, whole body), to compare with [`refused`].
fn reply(r: FormReply) -> (u16, Value) {
    (r.status, r.body)
}

/// An RFC 6749 §5.2 refusal, whole.
fn refused(status: u16, error: &str, description: &str) -> (u16, Value) {
    (status, json!({"error": error, "error_description": description}))
}

/// Disable a principal through the admin API.
async fn disable(app: &TestApp, admin: &str, id: &str) {
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/principals/{id}"),
            Some(admin),
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

fn token(r: &FormReply) -> String {
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["access_token"].as_str().unwrap().to_string()
}

/// The whole body of a successful exchange, less the token itself.
fn assert_issued(r: &FormReply, scope: &str) {
    let mut body = r.body.clone();
    body["access_token"] = json!("…");
    assert_eq!(
        body,
        json!({"access_token": "…", "token_type": "Bearer", "expires_in": 300, "scope": scope,
               "issued_token_type": ACCESS})
    );
    assert_eq!(r.header("cache-control"), "no-store");
}

async fn a_chain_of_three_services_acts_for_a_person_and_ends_with_their_token(backend: Backend) {
    // The system clock: the tokens are verified as a resource server would, now.
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let alice = app
        .create_human("alice", "alice-password-1", &["orders:read", "billing:read"])
        .await;
    let orders = app.create_service("orders", &[]).await;
    let billing = app.create_service("billing", &[]).await;
    let ledger = app.create_service("ledger", &[]).await;
    let archive = app.create_service("archive", &[]).await;
    allow(&app, &admin, &orders, json!({"audiences": ["billing"], "max_depth": 3})).await;
    allow(&app, &admin, &billing, json!({"audiences": ["ledger"], "max_depth": 3})).await;
    allow(&app, &admin, &ledger, json!({"audiences": ["archive"], "max_depth": 3})).await;
    allow(&app, &admin, &archive, json!({"audiences": ["orders"], "max_depth": 3})).await;

    let frontend = person_token(&app, "alice", "alice-password-1", "orders").await;
    let root = claims_of(&frontend);
    let jwks = app.jwks().await;
    let iss = app.issuer();

    // Hop 1: orders acts for alice towards billing.
    let r = exchange(&app, &orders, &frontend, "billing", &[]).await;
    assert_issued(&r, "billing:read orders:read");
    let t1 = token(&r);
    let c1 = verify_with_jwks(&jwks, &t1, &iss, "billing");
    let act1 = json!({"sub": orders.id, "client_id": "orders"});
    assert_eq!(
        c1,
        json!({"iss": iss, "sub": alice, "aud": "billing", "exp": root["exp"], "iat": c1["iat"], "nbf": c1["iat"],
               "jti": c1["jti"], "client_id": "orders", "scope": "billing:read orders:read",
               "principal_kind": "human", "name": "alice", "act": act1, "root_jti": root["jti"]})
    );

    // Hop 2: billing, holding that token, acts towards ledger, narrowing the scope.
    let r = exchange(&app, &billing, &t1, "ledger", &[("scope", "billing:read")]).await;
    assert_issued(&r, "billing:read");
    let t2 = token(&r);
    let c2 = verify_with_jwks(&jwks, &t2, &iss, "ledger");
    let act2 = json!({"sub": billing.id, "client_id": "billing", "act": act1});
    assert_eq!(
        (&c2["sub"], &c2["client_id"], &c2["act"], &c2["root_jti"]),
        (&json!(alice), &json!("billing"), &act2, &root["jti"])
    );

    // Hop 3: ledger towards archive: three hops, the most allowed.
    let t3 = token(&exchange(&app, &ledger, &t2, "archive", &[]).await);
    let c3 = verify_with_jwks(&jwks, &t3, &iss, "archive");
    let act3 = json!({"sub": ledger.id, "client_id": "ledger", "act": act2});
    assert_eq!(
        (&c3["sub"], &c3["act"], &c3["scope"]),
        (&json!(alice), &act3, &json!("billing:read"))
    );

    // Hop 4 would make four.
    let r = exchange(&app, &archive, &t3, "orders", &[]).await;
    assert_eq!(
        reply(r),
        refused(
            400,
            "invalid_request",
            "the delegation chain would have 4 hops; 'archive' may make at most 3"
        )
    );
    // A hop the policy does not name.
    let r = exchange(&app, &orders, &frontend, "ledger", &[]).await;
    assert_eq!(
        reply(r),
        refused(
            400,
            "unauthorized_client",
            "'orders' may not exchange tokens for 'ledger'"
        )
    );

    // Introspection shows the chain.
    let seen = introspect(&app, &archive, &t3).await;
    assert_eq!(
        (&seen["active"], &seen["act"], &seen["aud"]),
        (&json!(true), &act3, &json!("archive"))
    );

    // Each exchange is audited with the whole chain.
    let exchanged: Vec<Value> = app
        .query(|c| roster::models::audit::recent(c, 100))
        .await
        .into_iter()
        .filter(|e| e.event_type == "token.exchanged")
        .map(|e| serde_json::from_str::<Value>(e.details.as_deref().unwrap()).unwrap()["chain"].clone())
        .collect();
    assert_eq!(
        exchanged,
        [
            json!(["alice", "orders", "billing", "ledger"]),
            json!(["alice", "orders", "billing"]),
            json!(["alice", "orders"])
        ]
    );

    // Alice revokes her token: every token made from it is inactive, and in the feed.
    let r = app.post_form("/oauth/revoke", None, &[("token", &frontend)]).await;
    assert_eq!(r.status, 200);
    for t in [&t1, &t2, &t3] {
        assert_eq!(introspect(&app, &archive, t).await, json!({"active": false}));
    }
    let (_, reader) = app.service_with_token("reader", &[]).await;
    let feed = crate::revocations::feed(&app, &reader, "").await;
    let mut listed: Vec<&str> = feed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["jti"].as_str().unwrap())
        .collect();
    listed.sort();
    let mut expected: Vec<&str> = [&root, &c1, &c2, &c3]
        .iter()
        .map(|c| c["jti"].as_str().unwrap())
        .collect();
    expected.sort();
    assert_eq!(listed, expected);
    // And nothing more can be made from them.
    let r = exchange(&app, &billing, &t1, "ledger", &[]).await;
    assert_eq!(
        reply(r),
        refused(400, "invalid_grant", "the subject token is invalid, expired or revoked")
    );
}

async fn each_refusal_names_its_rule(backend: Backend) {
    let app = app(backend).await;
    let admin = app.admin_token().await;
    app.create_human("alice", "alice-password-1", &["orders:read"]).await;
    let orders = app.create_service("orders", &[]).await;
    let billing = app.create_service("billing", &[]).await;
    let ghost = app.create_service("ghost", &[]).await;
    let bare = app.create_service("bare", &[]).await;
    allow(
        &app,
        &admin,
        &orders,
        json!({"audiences": ["billing", "nobody", "ghost"], "max_depth": 3}),
    )
    .await;
    allow(&app, &admin, &billing, json!({"audiences": ["orders"], "max_depth": 1})).await;
    disable(&app, &admin, &ghost.id).await;
    let frontend = person_token(&app, "alice", "alice-password-1", "orders").await;

    // The subject token is not live.
    assert_eq!(
        reply(exchange(&app, &orders, "not-a-token", "billing", &[]).await),
        refused(400, "invalid_grant", "the subject token is invalid, expired or revoked")
    );
    // It was sent to another service.
    assert_eq!(
        reply(exchange(&app, &billing, &frontend, "orders", &[]).await),
        refused(
            400,
            "invalid_grant",
            "the subject token was not issued to 'billing': a service exchanges only tokens sent to it"
        )
    );
    // The calling service has no policy, or the policy does not name the target.
    let for_bare = person_token(&app, "alice", "alice-password-1", "bare").await;
    assert_eq!(
        reply(exchange(&app, &bare, &for_bare, "billing", &[]).await),
        refused(400, "unauthorized_client", "'bare' has no token exchange policy")
    );
    assert_eq!(
        reply(exchange(&app, &orders, &frontend, "ledger", &[]).await),
        refused(
            400,
            "unauthorized_client",
            "'orders' may not exchange tokens for 'ledger'"
        )
    );
    // The target is allowed but does not exist, or is disabled.
    assert_eq!(
        reply(exchange(&app, &orders, &frontend, "nobody", &[]).await),
        refused(
            400,
            "invalid_target",
            "audience 'nobody' is not a registered, enabled service"
        )
    );
    assert_eq!(
        reply(exchange(&app, &orders, &frontend, "ghost", &[]).await),
        refused(
            400,
            "invalid_target",
            "audience 'ghost' is not a registered, enabled service"
        )
    );
    // The chain would be longer than the calling service may make.
    let t1 = token(&exchange(&app, &orders, &frontend, "billing", &[]).await);
    assert_eq!(
        reply(exchange(&app, &billing, &t1, "orders", &[]).await),
        refused(
            400,
            "invalid_request",
            "the delegation chain would have 2 hops; 'billing' may make at most 1"
        )
    );
    // A scope beyond the subject token's.
    assert_eq!(
        reply(exchange(&app, &orders, &frontend, "billing", &[("scope", "orders:read admin")]).await),
        refused(
            400,
            "invalid_scope",
            "scope 'admin' is not among the subject token's scopes"
        )
    );
    // Token types: only access tokens go in and come out.
    let r = app
        .post_form(
            "/oauth/token",
            Some((&orders.name, &orders.secret)),
            &[
                ("grant_type", GRANT),
                ("subject_token", &frontend),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
                ("audience", "billing"),
            ],
        )
        .await;
    assert_eq!(
        reply(r),
        refused(
            400,
            "invalid_request",
            "subject_token_type must be urn:ietf:params:oauth:token-type:access_token"
        )
    );
    // An actor token must be the calling service's own.
    let billing_own = app.client_token("billing", &billing.secret).await;
    let orders_own = app.client_token("orders", &orders.secret).await;
    assert_eq!(
        reply(
            exchange(
                &app,
                &orders,
                &frontend,
                "billing",
                &[("actor_token", &billing_own), ("actor_token_type", ACCESS)]
            )
            .await
        ),
        refused(
            400,
            "invalid_request",
            "the actor token must be the calling service's own live token"
        )
    );
    assert_eq!(
        exchange(
            &app,
            &orders,
            &frontend,
            "billing",
            &[("actor_token", &orders_own), ("actor_token_type", ACCESS)]
        )
        .await
        .status,
        200
    );
    assert_eq!(
        reply(
            exchange(
                &app,
                &orders,
                &frontend,
                "billing",
                &[("actor_token", "garbage"), ("actor_token_type", ACCESS)]
            )
            .await
        ),
        refused(400, "invalid_request", "the actor token is invalid, expired or revoked")
    );
    // Before the caller authenticates, nothing about the tokens is said.
    let r = app
        .post_form(
            "/oauth/token",
            Some(("orders", "wrong-secret")),
            &[
                ("grant_type", GRANT),
                ("subject_token", &frontend),
                ("subject_token_type", ACCESS),
                ("audience", "billing"),
                ("actor_token", "garbage"),
                ("actor_token_type", ACCESS),
            ],
        )
        .await;
    assert_eq!((r.status, r.error()), (401, "invalid_client"));
    // No target, or two different ones.
    let r = app
        .post_form(
            "/oauth/token",
            Some((&orders.name, &orders.secret)),
            &[
                ("grant_type", GRANT),
                ("subject_token", &frontend),
                ("subject_token_type", ACCESS),
            ],
        )
        .await;
    assert_eq!(
        reply(r),
        refused(
            400,
            "invalid_request",
            "missing parameter 'audience' (or 'resource'): the service the token is for"
        )
    );
    assert_eq!(
        reply(exchange(&app, &orders, &frontend, "billing", &[("resource", "ledger")]).await),
        refused(400, "invalid_request", "name one target: resource and audience differ")
    );
    // No subject token at all.
    let r = app
        .post_form(
            "/oauth/token",
            Some((&orders.name, &orders.secret)),
            &[("grant_type", GRANT), ("audience", "billing")],
        )
        .await;
    assert_eq!(
        reply(r),
        refused(400, "invalid_request", "missing parameter 'subject_token'")
    );
    // The caller must authenticate: a wrong secret is 401 before any token is judged.
    let r = app
        .post_form(
            "/oauth/token",
            Some(("orders", "wrong-secret")),
            &[
                ("grant_type", GRANT),
                ("subject_token", "x"),
                ("subject_token_type", ACCESS),
                ("audience", "billing"),
            ],
        )
        .await;
    assert_eq!((r.status, r.error()), (401, "invalid_client"));
    // The discovery document lists the grant.
    let (_, meta) = app.get_json("/.well-known/oauth-authorization-server").await;
    assert!(
        meta["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(GRANT)),
        "{meta}"
    );
}

async fn a_category_audience_is_every_service_of_it_that_is_up(backend: Backend) {
    let app = app(backend).await;
    let admin = app.admin_token().await;
    app.create_human("alice", "alice-password-1", &["notify"]).await;
    let events = app.create_service("events", &[]).await;
    allow(
        &app,
        &admin,
        &events,
        json!({"audiences": ["urn:roster:category:notification"], "max_depth": 3}),
    )
    .await;
    let subject = person_token(&app, "alice", "alice-password-1", "events").await;
    let category = "urn:roster:category:notification";

    let r = exchange(&app, &events, &subject, category, &[]).await;
    assert_eq!(
        reply(r),
        refused(400, "invalid_target", "no service of category 'notification' is up")
    );

    for (name, ip) in [("push", "10.0.0.2"), ("mail", "10.0.0.1")] {
        let svc = app.create_service(name, &[]).await;
        let own = app.client_token(name, &svc.secret).await;
        let r = app
            .call(
                Method::PUT,
                &format!("/api/v1/services/{name}/registration"),
                Some(&own),
                Some(json!({"base_url": format!("http://{ip}/"), "categories": [{"name": "notification", "priority": 1}]})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let r = exchange(&app, &events, &subject, category, &[]).await;
    let c = claims_of(&token(&r));
    assert_eq!(
        (&c["aud"], &c["client_id"]),
        (&json!(["mail", "push"]), &json!("events"))
    );
    // Named as resource, the same.
    let r = app
        .post_form(
            "/oauth/token",
            Some((&events.name, &events.secret)),
            &[
                ("grant_type", GRANT),
                ("subject_token", &subject),
                ("subject_token_type", ACCESS),
                ("resource", category),
            ],
        )
        .await;
    assert_eq!(claims_of(&token(&r))["aud"], json!(["mail", "push"]));
}

async fn losing_a_scope_or_the_acting_service_ends_derived_tokens(backend: Backend) {
    let app = app(backend).await;
    let admin = app.admin_token().await;
    let alice = app
        .create_human("alice", "alice-password-1", &["orders:read", "billing:read"])
        .await;
    let orders = app.create_service("orders", &[]).await;
    let billing = app.create_service("billing", &[]).await;
    allow(&app, &admin, &orders, json!({"audiences": ["billing"], "max_depth": 3})).await;
    let frontend = person_token(&app, "alice", "alice-password-1", "orders").await;
    let narrow = token(&exchange(&app, &orders, &frontend, "billing", &[("scope", "billing:read")]).await);
    let wide = token(&exchange(&app, &orders, &frontend, "billing", &[]).await);
    assert_eq!(introspect(&app, &billing, &wide).await["active"], true);

    // Alice loses orders:read: the token that carried it ends; the other does not.
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/principals/{alice}"),
            Some(&admin),
            Some(json!({"scopes": ["billing:read"]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(introspect(&app, &billing, &wide).await, json!({"active": false}));
    assert_eq!(introspect(&app, &billing, &narrow).await["active"], true);

    // orders is disabled: what it got by exchange is revoked, and in the feed.
    disable(&app, &admin, &orders.id).await;
    assert_eq!(introspect(&app, &billing, &narrow).await, json!({"active": false}));
    let (_, reader) = app.service_with_token("reader", &[]).await;
    let feed = crate::revocations::feed(&app, &reader, "").await;
    let listed: Vec<&Value> = feed["tokens"].as_array().unwrap().iter().map(|t| &t["jti"]).collect();
    assert!(listed.contains(&&claims_of(&narrow)["jti"]), "{feed}");
    assert!(listed.contains(&&claims_of(&wide)["jti"]), "{feed}");
}

async fn policies_are_set_shown_and_refused_when_malformed(backend: Backend) {
    let app = app(backend).await;
    let admin = app.admin_token().await;
    let orders = app.create_service("orders", &[]).await;
    let own = app.client_token("orders", &orders.secret).await;
    let path = format!("/api/v1/principals/{}", orders.id);

    // Created with one; max_depth defaults to 3.
    let r = app
        .call(
            Method::POST,
            "/api/v1/principals",
            Some(&admin),
            Some(json!({"kind": "service", "name": "events", "token_exchange": {"audiences": ["urn:roster:category:mail"]}})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.body["token_exchange"],
        json!({"audiences": ["urn:roster:category:mail"], "max_depth": 3})
    );

    for (policy, description) in [
        (
            json!({"audiences": ["Billing"]}),
            "audience 'Billing' is neither a service name nor urn:roster:category:<category>",
        ),
        (
            json!({"audiences": ["urn:roster:category:"]}),
            "audience 'urn:roster:category:' is neither a service name nor urn:roster:category:<category>",
        ),
        (json!({"audiences": ["a", "a"]}), "an audience is listed twice"),
        (json!({"audiences": ["a"], "max_depth": 0}), "max_depth is from 1 to 10"),
        (
            json!({"audiences": ["a"], "max_depth": 11}),
            "max_depth is from 1 to 10",
        ),
    ] {
        let r = app
            .call(
                Method::PATCH,
                &path,
                Some(&admin),
                Some(json!({"token_exchange": policy})),
            )
            .await;
        assert_eq!(
            (r.status, &r.body),
            (
                422,
                &json!({"error": "invalid_field", "error_description": description, "field": "token_exchange"})
            ),
            "{policy}"
        );
    }
    let r = app
        .call(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"token_exchange": {"audiences": [], "extra": 1}})),
        )
        .await;
    assert_eq!(
        (r.status, &r.body),
        (
            422,
            &json!({"error": "invalid_field", "field": "token_exchange.extra",
                      "error_description": "unknown field `extra`, expected `audiences` or `max_depth`"})
        )
    );

    // A service cannot widen its own policy.
    let r = app
        .call(
            Method::PATCH,
            &path,
            Some(&own),
            Some(json!({"token_exchange": {"audiences": ["billing"]}})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    // A person has none.
    let alice = app.create_human("alice", "alice-password-1", &[]).await;
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/principals/{alice}"),
            Some(&admin),
            Some(json!({"token_exchange": {"audiences": ["billing"]}})),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);

    allow(&app, &admin, &orders, json!({"audiences": ["billing"], "max_depth": 2})).await;
    let r = app.call(Method::GET, &path, Some(&admin), None).await;
    assert_eq!(
        r.body["token_exchange"],
        json!({"audiences": ["billing"], "max_depth": 2})
    );
    // null removes it.
    let r = app
        .call(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"token_exchange": null})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.get("token_exchange").is_none(), "{}", r.body);
    // Every change is audited with the policy.
    let updates: Vec<Value> = app
        .query(|c| roster::models::audit::recent(c, 100))
        .await
        .into_iter()
        .filter(|e| e.event_type == "principal.updated")
        .map(|e| serde_json::from_str::<Value>(e.details.as_deref().unwrap()).unwrap()["token_exchange"].clone())
        .collect();
    assert_eq!(
        updates,
        [json!(null), json!({"audiences": ["billing"], "max_depth": 2})]
    );
}

/// A token exchanged while the token it came from was being revoked: its
/// row was not visible to the revocation's search. The root's revocation
/// still ends it at once (its `root_jti`), and a mid-chain revocation ends
/// it at the next tick, which also names it in the feed.
async fn an_exchange_that_races_a_revocation_still_ends(backend: Backend) {
    use diesel::prelude::*;
    use roster::db::schema::exchanged_tokens;
    let app = app(backend).await;
    let admin = app.admin_token().await;
    app.create_human("alice", "alice-password-1", &["orders:read"]).await;
    let orders = app.create_service("orders", &[]).await;
    let billing = app.create_service("billing", &[]).await;
    app.create_service("ledger", &[]).await;
    allow(&app, &admin, &orders, json!({"audiences": ["billing"], "max_depth": 3})).await;
    allow(&app, &admin, &billing, json!({"audiences": ["ledger"], "max_depth": 3})).await;
    let (_, reader) = app.service_with_token("reader", &[]).await;
    let feed_jtis = || async {
        let feed = crate::revocations::feed(&app, &reader, "").await;
        feed["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["jti"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };

    // Mid-chain: orders revokes the token it got; the one billing made from
    // it was not yet visible.
    let frontend = person_token(&app, "alice", "alice-password-1", "orders").await;
    let t1 = token(&exchange(&app, &orders, &frontend, "billing", &[]).await);
    let t2 = token(&exchange(&app, &billing, &t1, "ledger", &[]).await);
    let j2 = claims_of(&t2)["jti"].as_str().unwrap().to_string();
    let hidden: roster::models::token_exchange::ExchangedToken = {
        let j2 = j2.clone();
        app.query(move |c| {
            let row = exchanged_tokens::table
                .find(&j2)
                .select(roster::models::token_exchange::ExchangedToken::as_select())
                .first(c)?;
            diesel::delete(exchanged_tokens::table.find(&j2)).execute(c)?;
            Ok::<_, roster::error::Error>(row)
        })
        .await
    };
    let r = app
        .post_form("/oauth/revoke", Some(("orders", &orders.secret)), &[("token", &t1)])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(introspect(&app, &billing, &t1).await, json!({"active": false}));
    assert_eq!(
        introspect(&app, &billing, &t2).await["active"],
        true,
        "not found by the revocation"
    );
    assert!(!feed_jtis().await.contains(&j2));
    // The exchange commits; the next tick finds it.
    app.query(move |c| roster::models::token_exchange::insert(c, &hidden))
        .await;
    app.tick().await;
    assert_eq!(introspect(&app, &billing, &t2).await, json!({"active": false}));
    assert!(feed_jtis().await.contains(&j2));

    // At the root: ended at once by its root_jti, whatever the rows say.
    let frontend = person_token(&app, "alice", "alice-password-1", "orders").await;
    let t1 = token(&exchange(&app, &orders, &frontend, "billing", &[]).await);
    app.query(|c| {
        diesel::delete(exchanged_tokens::table)
            .execute(c)
            .map_err(roster::error::Error::from)
    })
    .await;
    let r = app.post_form("/oauth/revoke", None, &[("token", &frontend)]).await;
    assert_eq!(r.status, 200);
    assert_eq!(introspect(&app, &billing, &t1).await, json!({"active": false}));
}

/// The steady state decides from memory (the caller verified recently, the
/// subject in the live view, the target resolved a moment ago) and stores
/// each exchange in a batch: 32 concurrent exchanges are each acknowledged
/// with a row and an audit event, and a revocation or a disabled target
/// here stops the next one at once.
async fn exchanges_from_memory_are_stored_and_stop_at_once(backend: Backend) {
    use diesel::prelude::*;
    use roster::db::schema::exchanged_tokens;
    let app = app(backend).await;
    let admin = app.admin_token().await;
    app.create_human("alice", "alice-password-1", &["orders:read"]).await;
    let orders = app.create_service("orders", &[]).await;
    let billing = app.create_service("billing", &[]).await;
    allow(&app, &admin, &orders, json!({"audiences": ["billing"], "max_depth": 3})).await;
    let frontend = person_token(&app, "alice", "alice-password-1", "orders").await;
    app.tick().await;
    // The first goes to the database and leaves what the next ones need.
    token(&exchange(&app, &orders, &frontend, "billing", &[]).await);
    assert_eq!(app.state.oauth().exchanges.submitted(), 0);

    let replies =
        futures_util::future::join_all((0..32).map(|_| exchange(&app, &orders, &frontend, "billing", &[]))).await;
    let mut acknowledged: Vec<String> = replies
        .iter()
        .map(|r| claims_of(&token(r))["jti"].as_str().unwrap().to_string())
        .collect();
    acknowledged.sort();
    assert_eq!(
        app.state.oauth().exchanges.submitted(),
        32,
        "decided from memory, stored in batches"
    );
    let mut stored: Vec<String> = app
        .query(|c| {
            Ok(exchanged_tokens::table
                .select(exchanged_tokens::jti)
                .load::<String>(c)?)
        })
        .await;
    stored.sort();
    let audited: Vec<String> = app
        .query(|c| roster::models::audit::recent(c, 1000))
        .await
        .into_iter()
        .filter(|e| e.event_type == "token.exchanged")
        .map(|e| {
            serde_json::from_str::<Value>(e.details.as_deref().unwrap()).unwrap()["jti"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(stored.len(), 33);
    assert_eq!(audited.len(), 33);
    // Each names where the request came from, as the database path does.
    let remotes: Vec<Option<String>> = app
        .audit_types()
        .await
        .into_iter()
        .filter(|e| e.0 == "token.exchanged")
        .map(|e| e.4)
        .collect();
    assert_eq!(remotes, vec![Some("127.0.0.1".to_string()); 33]);
    for jti in &acknowledged {
        assert!(
            stored.contains(jti) && audited.contains(jti),
            "{jti} acknowledged but not stored"
        );
    }

    // Revoked here: the next exchange of it is refused at once.
    let r = app.post_form("/oauth/revoke", None, &[("token", &frontend)]).await;
    assert_eq!(r.status, 200);
    let r = exchange(&app, &orders, &frontend, "billing", &[]).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{}",
        r.body
    );

    // billing disabled here: a fresh subject token is refused towards it at once.
    let frontend = person_token(&app, "alice", "alice-password-1", "orders").await;
    token(&exchange(&app, &orders, &frontend, "billing", &[]).await);
    app.tick().await;
    token(&exchange(&app, &orders, &frontend, "billing", &[]).await);
    disable(&app, &admin, &billing.id).await;
    let r = exchange(&app, &orders, &frontend, "billing", &[]).await;
    assert_eq!(
        reply(r),
        refused(
            400,
            "invalid_target",
            "audience 'billing' is not a registered, enabled service"
        )
    );
}

/// A service that authenticates with `private_key_jwt` exchanges as any
/// other: its assertion in the exchange request, used once.
async fn a_service_with_a_key_exchanges_with_its_assertion(backend: Backend) {
    use crate::assertions::{TestKey, claims};
    let app = app(backend).await;
    let admin = app.admin_token().await;
    app.create_human("alice", "alice-password-1", &["orders:read"]).await;
    app.create_service("billing", &[]).await;
    let key = TestKey::new(7, "o1");
    let r = app
        .call(
            Method::POST,
            "/api/v1/principals",
            Some(&admin),
            Some(
                json!({"kind": "service", "name": "orders", "token_endpoint_auth_method": "private_key_jwt",
                        "jwks": TestKey::set(&[&key]), "token_exchange": {"audiences": ["billing"]}}),
            ),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let frontend = person_token(&app, "alice", "alice-password-1", "orders").await;
    let assertion = key.sign(&claims(&app, "orders"));
    let form = [
        ("grant_type", GRANT),
        ("subject_token", frontend.as_str()),
        ("subject_token_type", ACCESS),
        ("audience", "billing"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion.as_str()),
    ];
    let r = app.post_form("/oauth/token", None, &form).await;
    assert_issued(&r, "orders:read");
    assert_eq!(claims_of(&token(&r))["act"]["client_id"], "orders");
    // The same assertion again: refused, as everywhere.
    let r = app.post_form("/oauth/token", None, &form).await;
    assert_eq!(
        reply(r),
        refused(
            401,
            "invalid_client",
            "the client assertion was used before (its jti is spent)"
        )
    );
}
