//! Whole bodies as snapshots (insta): every kind of error body the API and
//! the OAuth endpoints answer, and the main views, on both backends against
//! the same snapshot files. Values that change from run to run (ids, times,
//! tokens, secrets, keys) are redacted by [`redacted`] before comparing.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, FormReply, TestApp, manifest_json};

on_both_backends!(error_bodies_are_as_documented, views_are_as_documented);

/// Keys whose values change from run to run.
const VOLATILE: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "jti",
    "exp",
    "iat",
    "nbf",
    "auth_time",
    "kid",
    "x",
    "y",
    "n",
    "e",
    "etag",
    "next_cursor",
];

/// A token, a secret, a key: `[key]` in place of its value. Any string that
/// is a UUID becomes `[uuid]`, one that is a time `[time]`, and the test
/// server's address (its port changes) `[issuer]`.
pub fn redacted(v: Value, issuer: &str) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let volatile = VOLATILE.contains(&k.as_str());
                    let v = if volatile && !v.is_null() {
                        Value::String(format!("[{k}]"))
                    } else {
                        redacted(v, issuer)
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(|v| redacted(v, issuer)).collect()),
        Value::String(s) if uuid::Uuid::parse_str(&s).is_ok() => Value::String("[uuid]".into()),
        Value::String(s) if chrono::DateTime::parse_from_rfc3339(&s).is_ok() => Value::String("[time]".into()),
        Value::String(s) => Value::String(s.replace(issuer, "[issuer]")),
        other => other,
    }
}

/// Status, the challenge if any, and the whole body.
fn answer(app: &TestApp, r: &FormReply) -> Value {
    let mut v = json!({"status": r.status, "body": redacted(r.body.clone(), &app.issuer())});
    if let Some(challenge) = r.headers.get("www-authenticate") {
        v["www-authenticate"] = json!(challenge.to_str().unwrap());
    }
    v
}

async fn error_bodies_are_as_documented(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let svc = app.create_service("billing", &["invoices:read"]).await;
    app.create_human("alice", "correct horse battery", &[]).await;
    let admin = app.admin_token().await;
    let alice = app.password_grant("alice", "correct horse battery").await.body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let billing = Some(("billing", svc.secret.as_str()));
    let cc = ("grant_type", "client_credentials");

    let mut seen = BTreeMap::new();
    let mut form = async |name: &str, path: &str, basic: Option<(&str, &str)>, f: &[(&str, &str)]| {
        seen.insert(name.to_string(), answer(&app, &app.post_form(path, basic, f).await));
    };
    form("token: no grant_type", "/oauth/token", billing, &[]).await;
    form(
        "token: unknown grant_type",
        "/oauth/token",
        billing,
        &[("grant_type", "magic")],
    )
    .await;
    form("token: wrong secret", "/oauth/token", Some(("billing", "wrong")), &[cc]).await;
    form("token: unknown client", "/oauth/token", Some(("nobody", "x")), &[cc]).await;
    form(
        "token: malformed scope",
        "/oauth/token",
        billing,
        &[cc, ("scope", "Not Valid")],
    )
    .await;
    form(
        "token: scope not granted",
        "/oauth/token",
        billing,
        &[cc, ("scope", "admin")],
    )
    .await;
    form(
        "token: unknown resource",
        "/oauth/token",
        billing,
        &[cc, ("resource", "nobody")],
    )
    .await;
    form(
        "token: bad refresh token",
        "/oauth/token",
        None,
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
    )
    .await;
    form(
        "token: wrong password",
        "/oauth/token",
        None,
        &[("grant_type", "password"), ("username", "alice"), ("password", "nope")],
    )
    .await;
    form("introspect: no client", "/oauth/introspect", None, &[("token", "x")]).await;

    let mut call = async |name: &str, method: Method, path: &str, token: Option<&str>, body: Option<Value>| {
        seen.insert(
            name.to_string(),
            answer(&app, &app.call(method, path, token, body).await),
        );
    };
    call("api: no token", Method::GET, "/api/v1/me", None, None).await;
    call("api: forged token", Method::GET, "/api/v1/me", Some("a.b.c"), None).await;
    call(
        "api: not an admin",
        Method::GET,
        "/api/v1/principals",
        Some(&alice),
        None,
    )
    .await;
    call(
        "api: unknown principal",
        Method::GET,
        "/api/v1/principals/nope",
        Some(&admin),
        None,
    )
    .await;
    let service = |name: &str| json!({"kind": "service", "name": name});
    call(
        "api: duplicate name",
        Method::POST,
        "/api/v1/principals",
        Some(&admin),
        Some(service("billing")),
    )
    .await;
    call(
        "api: invalid name",
        Method::POST,
        "/api/v1/principals",
        Some(&admin),
        Some(service("Not A Name")),
    )
    .await;
    call(
        "api: unknown field",
        Method::POST,
        "/api/v1/principals",
        Some(&admin),
        Some(json!({"kind": "service", "name": "x", "colour": "blue"})),
    )
    .await;
    call(
        "registry: unknown service",
        Method::GET,
        "/api/v1/services/nope",
        Some(&admin),
        None,
    )
    .await;
    call(
        "registry: someone else's service",
        Method::PUT,
        "/api/v1/services/billing/registration",
        Some(&alice),
        Some(json!({"base_url": "http://127.0.0.1:9/"})),
    )
    .await;
    call(
        "registry: bad instance id",
        Method::PUT,
        "/api/v1/services/billing/instances/-x",
        Some(&admin),
        Some(json!({"base_url": "http://127.0.0.1:9/"})),
    )
    .await;
    insta::assert_json_snapshot!("error_bodies", seen);
}

async fn views_are_as_documented(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let mut seen = BTreeMap::new();

    let created = app
        .call(
            Method::POST,
            "/api/v1/principals",
            Some(&admin),
            Some(
                json!({"kind": "service", "name": "billing", "scopes": ["invoices:read"],
                        "categories": [{"name": "finance", "priority": 5}]}),
            ),
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_string();
    let secret = created.body["client_secret"].as_str().unwrap().to_string();
    seen.insert("principal created", answer(&app, &created));
    let mut get = async |name: &'static str, path: &str, token: &str| {
        seen.insert(
            name,
            answer(&app, &app.call(Method::GET, path, Some(token), None).await),
        );
    };
    get("principal", &format!("/api/v1/principals/{id}"), &admin).await;
    get("me", "/api/v1/me", &admin).await;

    let issued = app
        .post_form(
            "/oauth/token",
            Some(("billing", &secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    let token = issued.body["access_token"].as_str().unwrap().to_string();
    seen.insert("token response", answer(&app, &issued));
    let introspected = app
        .post_form("/oauth/introspect", Some(("billing", &secret)), &[("token", &token)])
        .await;
    seen.insert("introspection", answer(&app, &introspected));

    let registered = app
        .call(
            Method::PUT,
            "/api/v1/services/billing/registration",
            Some(&token),
            Some(json!({"base_url": "http://127.0.0.1:9/", "ttl_seconds": 30, "description": "Invoices"})),
        )
        .await;
    seen.insert("service registered", answer(&app, &registered));
    let manifest = manifest_json("billing", &[("invoices", 10, None)]);
    let pushed = app
        .call(
            Method::PUT,
            "/api/v1/services/billing/modules",
            Some(&token),
            Some(manifest),
        )
        .await;
    seen.insert("manifest pushed", answer(&app, &pushed));
    let mut get = async |name: &'static str, path: &str, token: &str| {
        seen.insert(
            name,
            answer(&app, &app.call(Method::GET, path, Some(token), None).await),
        );
    };
    get("services", "/api/v1/services", &token).await;
    get("categories", "/api/v1/categories", &token).await;
    get("category", "/api/v1/categories/finance", &token).await;
    get("modules", "/api/v1/modules", &token).await;
    get("metadata", "/.well-known/oauth-authorization-server", &token).await;
    get("audit, newest three", "/api/v1/audit?limit=3", &admin).await;
    insta::assert_json_snapshot!("views", seen);
}
