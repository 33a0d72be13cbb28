//! Services without secrets: `private_key_jwt` client assertions (RFC 7523
//! §2.2) and workload identity federation, through real HTTP on both
//! backends, each refusal with its whole body, the replay check across two
//! instances, and a `jwks_uri` that rotates.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::Duration;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, FakeService, FormReply, TestApp};
use roster::clock::Clock;

/// An Ed25519 key pair: the private half signs, the public half is a JWK.
pub struct TestKey {
    encoding: EncodingKey,
    pub kid: String,
    pub jwk: Value,
}

impl TestKey {
    pub fn new(seed: u8, kid: &str) -> Self {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let signing = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        let der = signing.to_pkcs8_der().unwrap();
        Self {
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            kid: kid.into(),
            jwk: json!({
                "kty": "OKP", "crv": "Ed25519", "use": "sig", "kid": kid,
                "x": B64.encode(signing.verifying_key().as_bytes()),
            }),
        }
    }

    pub fn set(keys: &[&TestKey]) -> Value {
        json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()})
    }

    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// A client's own assertion for `client`, good for a minute from the app's now.
pub fn claims(app: &TestApp, client: &str) -> Value {
    let now = app.clock.now().timestamp();
    json!({
        "iss": client, "sub": client, "aud": app.url("/oauth/token"),
        "iat": now, "exp": now + 60, "jti": uuid::Uuid::new_v4().to_string(),
    })
}

/// client_credentials authenticated by `assertion`, plus extra parameters.
pub async fn grant(app: &TestApp, assertion: &str, extra: &[(&str, &str)]) -> FormReply {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion),
    ];
    form.extend_from_slice(extra);
    app.post_form("/oauth/token", None, &form).await
}

fn refused(description: &str) -> Value {
    json!({"error": "invalid_client", "error_description": description})
}

/// A service created by an admin over HTTP with the given authentication fields.
async fn create(app: &TestApp, admin: &str, name: &str, fields: Value) -> FormReply {
    let mut body = json!({"kind": "service", "name": name, "scopes": ["ledger.read"]});
    body.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    app.call(Method::POST, "/api/v1/principals", Some(admin), Some(body))
        .await
}

on_both_backends!(
    private_key_jwt_clients_get_tokens_without_a_secret,
    each_flawed_assertion_is_refused_with_its_reason,
    a_replayed_assertion_is_refused_on_every_instance,
    federated_workload_tokens_stand_for_their_service,
);

async fn private_key_jwt_clients_get_tokens_without_a_secret(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let key = TestKey::new(1, "k1");
    let made = create(
        &app,
        &admin,
        "billing",
        json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": TestKey::set(&[&key])}),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.body);
    // No secret is made or shown; the keys are.
    assert_eq!(made.body["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(made.body["jwks"], TestKey::set(&[&key]));
    assert!(made.body.get("client_secret").is_none(), "{}", made.body);
    let id = made.body["id"].as_str().unwrap().to_string();

    let r = grant(&app, &key.sign(&claims(&app, "billing")), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let token = r.body["access_token"].as_str().unwrap().to_string();
    let jwks = app.jwks().await;
    let verified = crate::support::verify_with_jwks(&jwks, &token, &app.issuer(), &app.issuer());
    assert_eq!(
        (verified["sub"].as_str(), verified["client_id"].as_str()),
        (Some(id.as_str()), Some("billing"))
    );
    assert_eq!(verified["scope"], "ledger.read");

    // The same client introspects with a fresh assertion, `client_id` matching.
    let fresh = key.sign(&claims(&app, "billing"));
    let r = app
        .post_form(
            "/oauth/introspect",
            None,
            &[
                ("token", token.as_str()),
                ("client_id", "billing"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", fresh.as_str()),
            ],
        )
        .await;
    assert_eq!((r.status, r.body["active"].clone()), (200, json!(true)), "{}", r.body);

    // A secret is refused for it, and none can be made.
    let r = app.client_grant("billing", "any-secret-at-all").await;
    assert_eq!(
        (r.status, r.body.clone()),
        (
            401,
            json!({"error": "invalid_client", "error_description": "client authentication failed"})
        )
    );
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/principals/{id}/secrets"),
            Some(&admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(
        r.body["error_description"],
        "this service authenticates with private_key_jwt: it has no secrets"
    );
    let reasons: Vec<Option<String>> = app
        .audit_types()
        .await
        .into_iter()
        .filter(|(t, ..)| t == "login.client")
        .map(|(_, _, _, reason, _)| reason)
        .collect();
    assert_eq!(
        reasons,
        vec![Some("the client does not authenticate with a secret".to_string())]
    );

    // Discovery says how (RFC 8414 §2).
    let (_, meta) = app.get_json("/.well-known/oauth-authorization-server").await;
    assert!(
        meta["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("private_key_jwt"))
    );
    assert_eq!(
        meta["token_endpoint_auth_signing_alg_values_supported"],
        json!([
            "EdDSA", "ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"
        ])
    );

    // A service switched from its secret to keys loses its secrets at once.
    let old = app.create_service("orders", &[]).await;
    assert_eq!(app.client_login_status("orders", &old.secret).await, 200);
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/principals/{}", old.id),
            Some(&admin),
            Some(json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": TestKey::set(&[&key])})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(app.client_login_status("orders", &old.secret).await, 401);
    assert_eq!(grant(&app, &key.sign(&claims(&app, "orders")), &[]).await.status, 200);
    let secrets = app
        .call(
            Method::GET,
            &format!("/api/v1/principals/{}/secrets", old.id),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(secrets.body["items"], json!([]));
}

async fn each_flawed_assertion_is_refused_with_its_reason(backend: Backend) {
    let app = TestApp::builder(backend)
        .clock(Clock::manual(chrono::Utc::now()))
        .settings(|mut s| {
            // Every case below fails; none may be refused for the count instead.
            s.throttle.pair_limit = 1000;
            s
        })
        .spawn()
        .await;
    let admin = app.admin_token().await;
    let key = TestKey::new(1, "k1");
    let stranger = TestKey::new(2, "k1");
    let r = create(
        &app,
        &admin,
        "billing",
        json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": TestKey::set(&[&key])}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let now = app.clock.now().timestamp();
    let with = |k: &str, v: Value| {
        let mut c = claims(&app, "billing");
        c[k] = v;
        c
    };
    let signature = "the client assertion's signature could not be verified with the keys registered for its issuer";
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong aud",
            key.sign(&with("aud", json!("https://elsewhere.example/token"))),
            "the client assertion's aud does not name this server",
        ),
        (
            "expired",
            key.sign(&with("exp", json!(now - 1))),
            "the client assertion has expired",
        ),
        (
            "lifetime over the limit",
            key.sign(&with("exp", json!(now + 301))),
            "the client assertion lives longer than the 300 s accepted",
        ),
        (
            "iat in the future",
            key.sign(&with("iat", json!(now + 120))),
            "the client assertion's iat is in the future",
        ),
        (
            "no jti",
            key.sign(&{
                let mut c = claims(&app, "billing");
                c.as_object_mut().unwrap().remove("jti");
                c
            }),
            "the client assertion has no jti",
        ),
        (
            "sub is not iss",
            key.sign(&with("sub", json!("orders"))),
            "the client assertion's sub must equal its iss (the client id)",
        ),
        (
            "signed by another key",
            stranger.sign(&claims(&app, "billing")),
            signature,
        ),
        (
            "unknown kid",
            TestKey::new(1, "k9").sign(&claims(&app, "billing")),
            signature,
        ),
        (
            "unknown client",
            key.sign(&{
                let mut c = claims(&app, "nobody");
                c["sub"] = json!("nobody");
                c
            }),
            signature,
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                B64.encode(r#"{"alg":"none","kid":"k1"}"#),
                B64.encode(claims(&app, "billing").to_string())
            ),
            "the client assertion's algorithm 'none' is not accepted: use an asymmetric one",
        ),
        (
            "HS256 with the public key",
            {
                let x = key.jwk["x"].as_str().unwrap();
                let mut h = Header::new(Algorithm::HS256);
                h.kid = Some("k1".into());
                jsonwebtoken::encode(&h, &claims(&app, "billing"), &EncodingKey::from_secret(x.as_bytes())).unwrap()
            },
            "the client assertion's algorithm 'HS256' is not accepted: use an asymmetric one",
        ),
        (
            "not a JWT",
            "garbage".to_string(),
            "the client assertion is not a JWT: it must have three parts",
        ),
    ];
    for (case, assertion, description) in &cases {
        let r = grant(&app, assertion, &[]).await;
        assert_eq!((r.status, &r.body), (401, &refused(description)), "{case}");
    }
    // client_id, when sent, must name the assertion's client.
    let r = grant(&app, &key.sign(&claims(&app, "billing")), &[("client_id", "orders")]).await;
    assert_eq!(
        (r.status, r.body),
        (401, refused("client_id does not match the client assertion"))
    );
    // Half an assertion, or one beside a secret, is a malformed request.
    let r = app
        .post_form(
            "/oauth/token",
            None,
            &[("grant_type", "client_credentials"), ("client_assertion", "x.y.z")],
        )
        .await;
    assert_eq!((r.status, r.error()), (400, "invalid_request"));
    let r = app
        .post_form(
            "/oauth/token",
            Some(("billing", "secret")),
            &[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", "x.y.z"),
            ],
        )
        .await;
    assert_eq!((r.status, r.error()), (400, "invalid_request"));
    // Every refusal was audited, with its reason (the same reason from the
    // same source folds into one row with a count).
    let mut audited: Vec<String> = app
        .audit_types()
        .await
        .into_iter()
        .filter(|(t, ..)| t == "login.client")
        .filter_map(|(_, _, _, reason, _)| reason)
        .collect();
    audited.sort();
    audited.dedup();
    let mut expected: Vec<String> = cases.iter().map(|(_, _, d)| d.to_string()).collect();
    expected.push("client_id does not match the client assertion".into());
    expected.sort();
    expected.dedup();
    assert_eq!(audited, expected);
    // A good one still works after all that.
    assert_eq!(grant(&app, &key.sign(&claims(&app, "billing")), &[]).await.status, 200);
}

async fn a_replayed_assertion_is_refused_on_every_instance(backend: Backend) {
    // Replays count toward the throttle; here, every one must be seen as a replay.
    let lenient = |mut s: roster::config::Settings| {
        s.throttle.pair_limit = 1000;
        s
    };
    let a = TestApp::builder(backend).settings(lenient).spawn().await;
    let b = TestApp::builder(backend)
        .settings(lenient)
        .same_database_as(&a)
        .spawn()
        .await;
    let admin = a.admin_token().await;
    let key = TestKey::new(1, "k1");
    create(
        &a,
        &admin,
        "billing",
        json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": TestKey::set(&[&key])}),
    )
    .await;
    // Both instances accept the issuer URL of their own; an assertion for
    // both names both token endpoints.
    let both = |app: &TestApp| {
        let mut c = claims(app, "billing");
        c["aud"] = json!([a.url("/oauth/token"), b.url("/oauth/token")]);
        key.sign(&c)
    };
    // Each instance's tick confirms its cache, so that after the first
    // login the fast path (the jti spent in a batch, no other read) answers.
    a.tick().await;
    b.tick().await;
    let once = both(&a);
    assert_eq!(grant(&a, &once, &[]).await.status, 200);
    let replayed = refused("the client assertion was used before (its jti is spent)");
    let r = grant(&a, &once, &[]).await;
    assert_eq!((r.status, r.body), (401, replayed.clone()));
    let r = grant(&b, &once, &[]).await;
    assert_eq!((r.status, r.body), (401, replayed.clone()));
    // First on the other instance, then here.
    let other = both(&b);
    assert_eq!(grant(&b, &other, &[]).await.status, 200);
    let r = grant(&a, &other, &[]).await;
    assert_eq!((r.status, r.body), (401, replayed));
    // Sent at once to both, 16 times over: exactly one answer is a token.
    let racing = both(&a);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let app = if i % 2 == 0 { &a } else { &b };
        tasks.push(grant(app, &racing, &[]));
    }
    let statuses: Vec<u16> = futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 15, "{statuses:?}");
}

/// A trusted issuer's token: `sub` the workload, `aud` Roster's audience.
fn workload(issuer: &str, subject: &str, audience: &str, lifetime: i64, now: i64) -> Value {
    json!({"iss": issuer, "sub": subject, "aud": [audience], "iat": now, "exp": now + lifetime})
}

async fn federated_workload_tokens_stand_for_their_service(backend: Backend) {
    let app = TestApp::builder(backend)
        .settings(|mut s| {
            s.throttle.pair_limit = 1000;
            s
        })
        .spawn()
        .await;
    let admin = app.admin_token().await;
    let cluster = TestKey::new(7, "cluster-1");
    const K8S: &str = "https://kubernetes.default.svc.cluster.local";
    let r = app
        .call(
            Method::POST,
            "/api/v1/federation/issuers",
            Some(&admin),
            Some(json!({"issuer": K8S, "audience": "roster", "jwks": TestKey::set(&[&cluster]), "max_lifetime_secs": 3600})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let issuer_id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.header("location"), format!("/api/v1/federation/issuers/{issuer_id}"));
    let sa = "system:serviceaccount:payments:api";
    let made = create(
        &app,
        &admin,
        "payments",
        json!({"token_endpoint_auth_method": "private_key_jwt", "federated_subjects": [{"issuer": K8S, "subject": sa}]}),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(made.body["federated_subjects"], json!([{"issuer": K8S, "subject": sa}]));
    let payments = made.body["id"].as_str().unwrap().to_string();

    let now = app.clock.now().timestamp();
    let projected = cluster.sign(&workload(K8S, sa, "roster", 3600, now));
    let r = grant(&app, &projected, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let claims = crate::support::claims_of(r.body["access_token"].as_str().unwrap());
    assert_eq!(
        (claims["sub"].clone(), claims["client_id"].clone()),
        (json!(payments), json!("payments"))
    );
    // Platforms reuse one token until it expires: so may its workload.
    assert_eq!(grant(&app, &projected, &[]).await.status, 200);
    assert_eq!(grant(&app, &projected, &[("client_id", "payments")]).await.status, 200);

    let cases: Vec<(&str, String, Value)> = vec![
        (
            "wrong audience",
            cluster.sign(&workload(K8S, sa, "vault", 600, now)),
            refused("the client assertion's aud does not name this server"),
        ),
        (
            "expired",
            cluster.sign(&workload(K8S, sa, "roster", 600, now - 700)),
            refused("the client assertion has expired"),
        ),
        (
            "longer than the issuer allows",
            cluster.sign(&workload(K8S, sa, "roster", 7200, now)),
            refused("the client assertion lives longer than the 3600 s accepted"),
        ),
        (
            "unmapped subject",
            cluster.sign(&workload(
                K8S,
                "system:serviceaccount:payments:worker",
                "roster",
                600,
                now,
            )),
            refused("the token's subject stands for no service"),
        ),
        (
            "untrusted issuer",
            cluster.sign(&workload("https://evil.example", sa, "roster", 600, now)),
            refused("the client assertion's signature could not be verified with the keys registered for its issuer"),
        ),
        (
            "the issuer's name, another key",
            TestKey::new(8, "cluster-1").sign(&workload(K8S, sa, "roster", 600, now)),
            refused("the client assertion's signature could not be verified with the keys registered for its issuer"),
        ),
    ];
    for (case, token, body) in &cases {
        let r = grant(&app, token, &[]).await;
        assert_eq!((r.status, &r.body), (401, body), "{case}");
    }
    let r = grant(&app, &projected, &[("client_id", "orders")]).await;
    assert_eq!(
        (r.status, r.body),
        (401, refused("client_id does not match the client assertion"))
    );

    // A subject stands for one service only.
    let r = create(
        &app,
        &admin,
        "impostor",
        json!({"federated_subjects": [{"issuer": K8S, "subject": sa}]}),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
    let r = create(
        &app,
        &admin,
        "lost",
        json!({"federated_subjects": [{"issuer": "https://unknown.example", "subject": sa}]}),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error_description"].clone()),
        (
            422,
            json!("'https://unknown.example' is not a trusted issuer: register it first")
        )
    );

    // Disabled: its workload's token no longer works.
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/principals/{payments}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let r = grant(&app, &projected, &[]).await;
    assert_eq!(
        (r.status, r.body),
        (401, refused("the client is not an active service"))
    );

    // The issuer's own API: list, read, change, and no delete while named.
    let r = app
        .call(Method::GET, "/api/v1/federation/issuers", Some(&admin), None)
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["items"][0]["issuer"], K8S);
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/federation/issuers/{issuer_id}"),
            Some(&admin),
            Some(json!({"audience": "roster-2"})),
        )
        .await;
    assert_eq!((r.status, r.body["audience"].clone()), (200, json!("roster-2")));
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/federation/issuers/{issuer_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/principals/{payments}"),
            Some(&admin),
            Some(json!({"federated_subjects": [], "token_endpoint_auth_method": "client_secret_basic"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/federation/issuers/{issuer_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/federation/issuers/{issuer_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    let kinds: Vec<String> = app
        .audit_types()
        .await
        .into_iter()
        .map(|(t, ..)| t)
        .filter(|t| t.starts_with("federation."))
        .collect();
    assert_eq!(kinds.len(), 3, "{kinds:?}");
}

/// Assertions count toward the guessing throttle like secrets do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flawed_assertions_are_throttled() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let admin = app.admin_token().await;
    let key = TestKey::new(1, "k1");
    create(
        &app,
        &admin,
        "billing",
        json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": TestKey::set(&[&key])}),
    )
    .await;
    let mut expired = claims(&app, "billing");
    expired["exp"] = json!(app.clock.now().timestamp() - 10);
    let bad = key.sign(&expired);
    for _ in 0..5 {
        assert_eq!(grant(&app, &bad, &[]).await.status, 401);
    }
    let r = grant(&app, &key.sign(&claims(&app, "billing")), &[]).await;
    assert_eq!((r.status, r.error()), (429, "slow_down"), "{}", r.body);
    assert!(r.header("retry-after").parse::<i64>().unwrap() >= 1);
}

/// A `jwks_uri` on loopback rotates its key: Roster fetches the set when a
/// new `kid` shows up, without a restart; a made-up `kid` cannot make it
/// fetch again and again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_jwks_uri_is_followed_without_a_restart() {
    let clock = Clock::manual(chrono::Utc::now());
    let app = TestApp::builder(Backend::Sqlite)
        .clock(clock.clone())
        .settings(|mut s| {
            s.throttle.pair_limit = 1000;
            s
        })
        .spawn()
        .await;
    let admin = app.admin_token().await;
    let old = TestKey::new(1, "2026-01");
    let new = TestKey::new(2, "2026-02");
    let keys = FakeService::start(TestKey::set(&[&old]));
    let uri = format!("http://{}/document.json", keys.addr);
    let r = create(
        &app,
        &admin,
        "billing",
        json!({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": uri}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["jwks_uri"], uri);
    assert_eq!(grant(&app, &old.sign(&claims(&app, "billing")), &[]).await.status, 200);

    // The client rotates: the set now has only the new key.
    keys.set_manifest(&TestKey::set(&[&new]).to_string());
    clock.advance(Duration::seconds(6));
    let r = grant(&app, &new.sign(&claims(&app, "billing")), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The old key is gone from the set Roster holds.
    let r = grant(&app, &old.sign(&claims(&app, "billing")), &[]).await;
    assert_eq!(r.status, 401, "{}", r.body);

    // A stranger's kid makes one fetch, then none for a while.
    let served = || keys.document_hits.load(std::sync::atomic::Ordering::SeqCst);
    let start = served();
    clock.advance(Duration::seconds(6));
    for _ in 0..5 {
        let r = grant(&app, &TestKey::new(3, "made-up").sign(&claims(&app, "billing")), &[]).await;
        assert_eq!(r.status, 401);
    }
    assert_eq!(served() - start, 1);

    // A trusted issuer that publishes its keys and rotates them: the same.
    let first = TestKey::new(4, "cluster-a");
    let second = TestKey::new(5, "cluster-b");
    let cluster = FakeService::start(TestKey::set(&[&first]));
    const ISS: &str = "https://oidc.ci.example";
    let r = app
        .call(
            Method::POST,
            "/api/v1/federation/issuers",
            Some(&admin),
            Some(json!({"issuer": ISS, "audience": "roster", "jwks_uri": format!("http://{}/document.json", cluster.addr)})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = create(
        &app,
        &admin,
        "deployer",
        json!({"federated_subjects": [{"issuer": ISS, "subject": "repo:acme/app:ref:refs/heads/main"}]}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let job = |key: &TestKey| {
        key.sign(&workload(
            ISS,
            "repo:acme/app:ref:refs/heads/main",
            "roster",
            300,
            app.clock.now().timestamp(),
        ))
    };
    assert_eq!(grant(&app, &job(&first), &[]).await.status, 200);
    cluster.set_manifest(&TestKey::set(&[&second]).to_string());
    clock.advance(Duration::seconds(6));
    let r = grant(&app, &job(&second), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

on_both_backends!(roster_client_signs_assertions_and_reads_rotated_tokens);

/// An Ed25519 private key (PKCS#8 PEM), as a service would keep it.
const CLIENT_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIBERERERERERERERERERERERERERERERERERERERERER\n-----END PRIVATE KEY-----\n";

/// `roster-client` with a private key signs a fresh assertion per request;
/// with an assertion file it reads the file again for every request, so a
/// token the platform rotated is the one sent.
async fn roster_client_signs_assertions_and_reads_rotated_tokens(backend: Backend) {
    use roster_client::{AssertionSigner, Backoff, ClientAuth, SigningAlg, TokenRequest, TokenSource};
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let signer = AssertionSigner::from_pem(SigningAlg::EdDsa, CLIENT_KEY_PEM.as_bytes(), Some("svc-1")).unwrap();
    let jwks = serde_json::to_value(signer.public_jwk_set().unwrap()).unwrap();
    let r = create(
        &app,
        &admin,
        "billing",
        json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": jwks}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let source = TokenSource::discover_authenticated(
        &app.issuer(),
        "billing",
        ClientAuth::PrivateKey(signer),
        roster_client::Clock::system(),
        Backoff::default(),
    )
    .await
    .unwrap();
    // Two slots, two requests, two assertions (each jti spent once).
    let all = source.token(&TokenRequest::new()).await.unwrap();
    let some = source.token(&TokenRequest::new().scope("ledger.read")).await.unwrap();
    assert_eq!(source.requests_sent(), 2);
    for t in [&all, &some] {
        assert_eq!(crate::support::claims_of(t.secret())["client_id"], "billing");
    }

    // A workload whose platform writes its token to a file.
    let cluster = TestKey::new(7, "cluster-1");
    const K8S: &str = "https://kubernetes.default.svc";
    let r = app
        .call(
            Method::POST,
            "/api/v1/federation/issuers",
            Some(&admin),
            Some(json!({"issuer": K8S, "audience": "roster", "jwks": TestKey::set(&[&cluster])})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let sa = "system:serviceaccount:payments:api";
    let r = create(
        &app,
        &admin,
        "payments",
        json!({"federated_subjects": [{"issuer": K8S, "subject": sa}]}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    let now = app.clock.now().timestamp();
    std::fs::write(&file, cluster.sign(&workload(K8S, sa, "roster", 600, now - 700))).unwrap();
    let source = TokenSource::discover_authenticated(
        &app.issuer(),
        "payments",
        ClientAuth::AssertionFile(file.clone()),
        roster_client::Clock::system(),
        Backoff::default(),
    )
    .await
    .unwrap();
    let err = source.token(&TokenRequest::new()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Roster refused the token request: invalid_client: the client assertion has expired"
    );
    // The platform rotates the file; the next request reads the new token.
    std::fs::write(&file, cluster.sign(&workload(K8S, sa, "roster", 600, now))).unwrap();
    let t = source.token(&TokenRequest::new().resource("payments")).await.unwrap();
    assert_eq!(crate::support::claims_of(t.secret())["client_id"], "payments");
}
