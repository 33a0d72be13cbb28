//! The OAuth 2.0 token service end to end, with the `oauth2` crate as client
//! and `jsonwebtoken` as a resource server would use it.

use oauth2::basic::BasicErrorResponseType;
use oauth2::{
    AuthType, RequestTokenError, ResourceOwnerPassword, ResourceOwnerUsername, Scope, TokenIntrospectionResponse,
    TokenResponse,
};

use reqwest::Method;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp, oauth_client, oauth_http, verify_with_jwks};

fn error_code<T: std::fmt::Debug>(
    r: Result<T, RequestTokenError<oauth2::HttpClientError<oauth2::reqwest::Error>, oauth2::basic::BasicErrorResponse>>,
) -> BasicErrorResponseType {
    match r {
        Err(RequestTokenError::ServerResponse(e)) => e.error().clone(),
        other => panic!("expected an OAuth error response, got {other:?}"),
    }
}

on_both_backends!(
    client_credentials_with_basic_and_post,
    client_credentials_scope_and_resource,
    password_grant_and_refresh_rotation,
    refresh_reuse_revokes_the_family,
    logins_do_not_enumerate_users_and_are_audited,
    token_endpoint_errors_follow_rfc6749,
    introspection_reports_live_tokens_only,
    revocation_of_access_and_refresh_tokens,
    me_requires_a_live_bearer_token,
    concurrent_refreshes_of_one_token,
    expired_refresh_tokens_are_refused,
    revoking_another_clients_refresh_token_does_nothing,
    use_counts_are_written_when_the_tick_stops,
    a_confidential_clients_refresh_token_needs_its_secret,
    an_access_token_is_no_refresh_token_or_code,
    password_logins_run_at_the_production_cost,
);

/// Every other test hashes at argon2's cheapest cost; this one keeps the
/// default end to end: a person created through the API is stored at
/// OWASP's parameters, logs in, changes their password (stored at the same
/// cost) and is refused with the old one.
async fn password_logins_run_at_the_production_cost(backend: Backend) {
    let app = TestApp::builder(backend)
        .settings(|mut s| {
            s.password_hashing = roster::auth::password::Hashing::default();
            s
        })
        .spawn()
        .await;
    assert_eq!(
        app.state.settings().password_hashing,
        roster::auth::password::Hashing::OWASP
    );
    let admin = app.admin_token().await;
    let r = app
        .call(
            Method::POST,
            "/api/v1/principals",
            Some(&admin),
            Some(json!({"kind": "human", "name": "grace", "password": "hopper-compiler-1952"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let lookup = id.clone();
    let phc = app
        .query(move |c| roster::models::password::find(c, &lookup).map(Option::unwrap))
        .await;
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    let (token, _) = app.login("grace", "hopper-compiler-1952").await;
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/principals/{id}/password"),
            Some(&token),
            Some(json!({"current_password": "hopper-compiler-1952", "password": "cobol-was-next-1959"})),
        )
        .await;
    assert_eq!((r.status, r.body), (204, Value::Null));
    let phc = app
        .query(move |c| roster::models::password::find(c, &id).map(Option::unwrap))
        .await;
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    assert_eq!(app.password_grant("grace", "hopper-compiler-1952").await.status, 400);
    app.login("grace", "cobol-was-next-1959").await;
}

/// RFC 6749 §5.2: a refresh token or code that is not a live one is
/// `invalid_grant`, whatever its length: clients send their user back to
/// log in on that code. An access token (a JWT of hundreds of bytes) sent in
/// their place is the common mistake.
async fn an_access_token_is_no_refresh_token_or_code(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_human("alice", "correct horse battery", &[]).await;
    let spa = app.create_service("spa", &[]).await;
    let (access, _) = app.login("alice", "correct horse battery").await;
    let access = access.as_str();
    assert!(access.len() > 255, "{access}");
    let r = app
        .post_form(
            "/oauth/token",
            None,
            &[("grant_type", "refresh_token"), ("refresh_token", access)],
        )
        .await;
    assert_eq!(
        (r.status, r.body),
        (
            400,
            serde_json::json!({"error": "invalid_grant", "error_description": "the refresh token is invalid, expired or revoked"})
        )
    );
    let r = app
        .post_form(
            "/oauth/token",
            Some(("spa", &spa.secret)),
            &[
                ("grant_type", "authorization_code"),
                ("code", access),
                ("redirect_uri", "https://spa.example/cb"),
                ("code_verifier", &"v".repeat(43)),
            ],
        )
        .await;
    assert_eq!(
        (r.status, r.body),
        (
            400,
            serde_json::json!({"error": "invalid_grant", "error_description": "the authorization code is invalid, expired or already used"})
        )
    );
    // The cap against abuse stays, far above any real token.
    let huge = "x".repeat(8193);
    for param in ["refresh_token", "code"] {
        let grant = if param == "code" {
            "authorization_code"
        } else {
            "refresh_token"
        };
        let r = app
            .post_form("/oauth/token", None, &[("grant_type", grant), (param, &huge)])
            .await;
        assert_eq!(
            (r.status, r.body),
            (
                400,
                serde_json::json!({"error": "invalid_request", "error_description": format!("parameter '{param}' is longer than 8192 bytes")})
            )
        );
    }
}

/// A refresh token issued to a client that authenticated with its secret
/// refreshes only with that secret: a bare client_id is not enough.
async fn a_confidential_clients_refresh_token_needs_its_secret(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_human("alice", "correct horse battery", &[]).await;
    let portal = app.create_service("portal", &[]).await;
    let login = app
        .post_form(
            "/oauth/token",
            Some(("portal", &portal.secret)),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.body);
    let refresh = login.body["refresh_token"].as_str().unwrap();
    let bare = app
        .post_form(
            "/oauth/token",
            None,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("client_id", "portal"),
            ],
        )
        .await;
    assert_eq!(
        (bare.status, bare.body),
        (
            401,
            serde_json::json!({"error": "invalid_client", "error_description": "client authentication failed"})
        )
    );
    // The refusal did not spend it: with the secret it refreshes.
    let ok = app
        .post_form(
            "/oauth/token",
            Some(("portal", &portal.secret)),
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    // And the rotated token is bound the same way.
    let next = ok.body["refresh_token"].as_str().unwrap();
    let bare = app
        .post_form(
            "/oauth/token",
            None,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", next),
                ("client_id", "portal"),
            ],
        )
        .await;
    assert_eq!(bare.status, 401);
}

/// Use counts wait in memory for the tick; stopping the tick (as shutdown
/// does) writes them, so a clean stop loses none.
async fn use_counts_are_written_when_the_tick_stops(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let svc = app.create_service("billing", &[]).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    // A tick far in the future: only the stop can write the counts.
    let ticker = tokio::spawn(
        app.state
            .upkeep()
            .clone()
            .run(std::time::Duration::from_secs(3600), stopped),
    );
    for _ in 0..4 {
        app.client_token("billing", &svc.secret).await;
    }
    let id = svc.id.clone();
    let counts = move |c: &mut roster::db::DbConnection| {
        Ok(roster::models::secret::list_for(c, &id)?
            .into_iter()
            .map(|s| s.use_count)
            .collect::<Vec<_>>())
    };
    assert_eq!(app.query(counts.clone()).await, vec![0]);
    stop.send(true).unwrap();
    ticker.await.unwrap();
    assert_eq!(app.query(counts).await, vec![4]);
}

async fn client_credentials_with_basic_and_post(backend: Backend) {
    // A clock that stands still, so that the use counter's flush interval never passes by itself.
    let app = TestApp::builder(backend)
        .clock(roster::clock::Clock::manual(chrono::Utc::now()))
        .spawn()
        .await;
    let svc = app
        .create_service("billing", &["invoices:read", "invoices:write"])
        .await;
    let http = oauth_http();
    let jwks = app.jwks().await;

    for auth in [AuthType::BasicAuth, AuthType::RequestBody] {
        let client = oauth_client(&app, &svc.name, Some(&svc.secret), auth.clone());
        let token = client.exchange_client_credentials().request_async(&http).await.unwrap();
        assert_eq!(token.token_type(), &oauth2::basic::BasicTokenType::Bearer);
        assert!(
            token.refresh_token().is_none(),
            "client_credentials issues no refresh token"
        );
        assert_eq!(token.expires_in().unwrap().as_secs(), 300);
        let scopes: Vec<_> = token.scopes().unwrap().iter().map(|s| s.to_string()).collect();
        assert_eq!(scopes, ["invoices:read", "invoices:write"]);

        let claims = verify_with_jwks(&jwks, token.access_token().secret(), &app.issuer(), &app.issuer());
        assert_eq!(claims["sub"], svc.id.as_str());
        assert_eq!(claims["client_id"], "billing");
        assert_eq!(claims["name"], "billing");
        assert_eq!(claims["principal_kind"], "service");
        assert_eq!(claims["scope"], "invoices:read invoices:write");
        for c in ["exp", "iat", "nbf", "jti"] {
            assert!(claims.get(c).is_some(), "claim {c} missing: {claims}");
        }
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 300);
    }

    // Headers of a token response (RFC 6749 §5.1).
    let r = app.client_grant("billing", &svc.secret).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), "no-store");
    assert_eq!(r.header("pragma"), "no-cache");
    assert_eq!(r.body["token_type"], "Bearer");

    // Issuance records use on the secret instead of an audit row per token:
    // counted in memory; no request writes them.
    let svc_id = svc.id.clone();
    let id = svc_id.clone();
    let secrets = app.query(move |c| roster::models::secret::list_for(c, &id)).await;
    assert_eq!(secrets[0].use_count, 0);
    assert_eq!(secrets[0].last_used_at, None);
    // The background tick writes them in one batch.
    app.tick().await;
    let secrets = app.query(move |c| roster::models::secret::list_for(c, &svc_id)).await;
    assert_eq!(secrets[0].use_count, 3);
    assert!(secrets[0].last_used_at.is_some());
}

async fn client_credentials_scope_and_resource(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let svc = app
        .create_service("billing", &["invoices:read", "invoices:write"])
        .await;
    app.create_service("ledger", &[]).await;
    app.create_human("alice", "alice-password", &[]).await;
    let http = oauth_http();
    let client = oauth_client(&app, &svc.name, Some(&svc.secret), AuthType::BasicAuth);

    let token = client
        .exchange_client_credentials()
        .add_scope(Scope::new("invoices:read".into()))
        .request_async(&http)
        .await
        .unwrap();
    let scopes: Vec<_> = token.scopes().unwrap().iter().map(|s| s.to_string()).collect();
    assert_eq!(scopes, ["invoices:read"]);

    let e = client
        .exchange_client_credentials()
        .add_scope(Scope::new("admin".into()))
        .request_async(&http)
        .await;
    assert_eq!(error_code(e), BasicErrorResponseType::InvalidScope);

    // RFC 8707: a resource names a registered service, which becomes `aud`.
    let token = client
        .exchange_client_credentials()
        .add_extra_param("resource", "ledger")
        .request_async(&http)
        .await
        .unwrap();
    let jwks = app.jwks().await;
    let claims = verify_with_jwks(&jwks, token.access_token().secret(), &app.issuer(), "ledger");
    assert_eq!(claims["aud"], "ledger");

    for unknown in ["nope", "alice"] {
        let r = app
            .post_form(
                "/oauth/token",
                Some(("billing", &svc.secret)),
                &[("grant_type", "client_credentials"), ("resource", unknown)],
            )
            .await;
        assert_eq!((r.status, r.error()), (400, "invalid_target"), "{unknown}: {}", r.body);
    }
}

async fn password_grant_and_refresh_rotation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app
        .create_human("alice", "correct horse battery", &["reports:read", "reports:write"])
        .await;
    app.create_service("portal", &[]).await;
    let http = oauth_http();
    // A public client: identified by client_id, no secret.
    let client = oauth_client(&app, "portal", None, AuthType::RequestBody);

    let token = client
        .exchange_password(
            &ResourceOwnerUsername::new("alice".into()),
            &ResourceOwnerPassword::new("correct horse battery".into()),
        )
        .request_async(&http)
        .await
        .unwrap();
    let jwks = app.jwks().await;
    let claims = verify_with_jwks(&jwks, token.access_token().secret(), &app.issuer(), &app.issuer());
    assert_eq!(claims["sub"], alice.as_str());
    assert_eq!(claims["principal_kind"], "human");
    assert_eq!(claims["name"], "alice");
    assert_eq!(claims["client_id"], "portal");
    let refresh1 = token
        .refresh_token()
        .expect("password grant returns a refresh token")
        .clone();

    // Refresh, narrowing the scope.
    let token2 = client
        .exchange_refresh_token(&refresh1)
        .add_scope(Scope::new("reports:read".into()))
        .request_async(&http)
        .await
        .unwrap();
    let claims2 = verify_with_jwks(&jwks, token2.access_token().secret(), &app.issuer(), &app.issuer());
    assert_eq!(claims2["scope"], "reports:read");
    assert_ne!(claims2["jti"], claims["jti"]);
    let refresh2 = token2.refresh_token().unwrap().clone();
    assert_ne!(refresh1.secret(), refresh2.secret(), "refresh tokens rotate");

    // The rotated token keeps the original scope, so it can ask for both again.
    let token3 = client
        .exchange_refresh_token(&refresh2)
        .request_async(&http)
        .await
        .unwrap();
    let scopes: Vec<_> = token3.scopes().unwrap().iter().map(|s| s.to_string()).collect();
    assert_eq!(scopes, ["reports:read", "reports:write"]);

    // Refresh tokens are opaque and stored only as hashes.
    assert_eq!(refresh2.secret().matches('.').count(), 0);
    let dump = app
        .query(|c| {
            use diesel::prelude::*;
            use roster::db::schema::refresh_tokens::dsl::*;
            Ok(refresh_tokens.select(token_hash).load::<String>(c)?)
        })
        .await;
    assert!(!dump.iter().any(|h| h == refresh2.secret()));

    // The refresh token is bound to its client: another real (public)
    // client presenting it is refused by the binding check, and the refusal
    // does not spend it.
    app.create_service("kiosk", &[]).await;
    let refresh3 = token3.refresh_token().unwrap().secret().clone();
    let r = app
        .post_form(
            "/oauth/token",
            None,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh3),
                ("client_id", "kiosk"),
            ],
        )
        .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (
            400,
            serde_json::json!({"error": "invalid_grant", "error_description": "the refresh token was issued to another client"})
        )
    );
    client
        .exchange_refresh_token(token3.refresh_token().unwrap())
        .request_async(&http)
        .await
        .expect("still valid for its own client");
}

/// Two refreshes of one token at once: exactly one wins, the other is reuse,
/// and reuse revokes the family, the winner's new token included.
async fn concurrent_refreshes_of_one_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_human("alice", "correct horse battery", &[]).await;
    let (_, token) = app.login("alice", "correct horse battery").await;
    let form = [("grant_type", "refresh_token"), ("refresh_token", token.as_str())];
    let (a, b) = tokio::join!(
        app.post_form("/oauth/token", None, &form),
        app.post_form("/oauth/token", None, &form)
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 400], "{} / {}", a.body, b.body);
    let (winner, loser) = if a.status == 200 { (a, b) } else { (b, a) };
    assert_eq!(
        loser.body,
        serde_json::json!({"error": "invalid_grant", "error_description": "the refresh token is invalid, expired or revoked"})
    );
    let next = winner.body["refresh_token"].as_str().unwrap();
    let r = app
        .post_form(
            "/oauth/token",
            None,
            &[("grant_type", "refresh_token"), ("refresh_token", next)],
        )
        .await;
    assert_eq!((r.status, r.error()), (400, "invalid_grant"), "the family is revoked");
}

/// An expired refresh token is refused over HTTP, and says no more than any other.
async fn expired_refresh_tokens_are_refused(backend: Backend) {
    let app = TestApp::builder(backend)
        .clock(roster::clock::Clock::manual(chrono::Utc::now()))
        .settings(|mut s| {
            s.token.refresh_ttl = chrono::Duration::hours(1);
            s
        })
        .spawn()
        .await;
    app.create_human("alice", "correct horse battery", &[]).await;
    let (_, token) = app.login("alice", "correct horse battery").await;
    app.clock.advance(chrono::Duration::minutes(59));
    let r = app
        .post_form(
            "/oauth/token",
            None,
            &[("grant_type", "refresh_token"), ("refresh_token", &token)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let token = r.body["refresh_token"].as_str().unwrap().to_string();
    app.clock.advance(chrono::Duration::hours(1));
    let r = app
        .post_form(
            "/oauth/token",
            None,
            &[("grant_type", "refresh_token"), ("refresh_token", &token)],
        )
        .await;
    assert_eq!(
        (r.status, r.body),
        (
            400,
            serde_json::json!({"error": "invalid_grant", "error_description": "the refresh token is invalid, expired or revoked"})
        )
    );
}

/// A client cannot revoke a refresh token issued to another client: the
/// answer is 200 (RFC 7009 §2.2) and the token keeps working.
async fn revoking_another_clients_refresh_token_does_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_human("alice", "correct horse battery", &[]).await;
    let portal = app.create_service("portal", &[]).await;
    let other = app.create_service("other", &[]).await;
    let login = app
        .post_form(
            "/oauth/token",
            Some(("portal", &portal.secret)),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.body);
    let refresh = login.body["refresh_token"].as_str().unwrap();
    let r = app
        .post_form("/oauth/revoke", Some(("other", &other.secret)), &[("token", refresh)])
        .await;
    assert_eq!((r.status, r.body.clone()), (200, serde_json::json!({})));
    let still = app
        .post_form(
            "/oauth/token",
            Some(("portal", &portal.secret)),
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(still.status, 200, "{}", still.body);
    let refresh = still.body["refresh_token"].as_str().unwrap();
    // Without client authentication, a real client-bound token and garbage
    // get the same answer, and the real one keeps working.
    let access = still.body["access_token"].as_str().unwrap();
    for token in [refresh, access, "garbage", "eyJhbGciOiJFZERTQSJ9.e30.AAAA"] {
        let r = app.post_form("/oauth/revoke", None, &[("token", token)]).await;
        assert_eq!((r.status, r.body.clone()), (200, serde_json::json!({})), "{token}");
    }
    let me = app.call(reqwest::Method::GET, "/api/v1/me", Some(access), None).await;
    assert_eq!(me.status, 200, "{}", me.body);
    let still = app
        .post_form(
            "/oauth/token",
            Some(("portal", &portal.secret)),
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(still.status, 200, "{}", still.body);
    // Its own client can.
    let refresh = still.body["refresh_token"].as_str().unwrap();
    let r = app
        .post_form("/oauth/revoke", Some(("portal", &portal.secret)), &[("token", refresh)])
        .await;
    assert_eq!(r.status, 200);
    let gone = app
        .post_form(
            "/oauth/token",
            Some(("portal", &portal.secret)),
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!((gone.status, gone.error()), (400, "invalid_grant"));
}

async fn refresh_reuse_revokes_the_family(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_human("alice", "correct horse battery", &["r"]).await;
    let (_, first) = app.login("alice", "correct horse battery").await;
    let refresh = |t: String| {
        let app = &app;
        async move {
            app.post_form(
                "/oauth/token",
                None,
                &[("grant_type", "refresh_token"), ("refresh_token", &t)],
            )
            .await
        }
    };
    let second = refresh(first.clone()).await;
    assert_eq!(second.status, 200);
    let second = second.body["refresh_token"].as_str().unwrap().to_string();

    // Presenting the spent first token is reuse: it fails and kills the family.
    let reuse = refresh(first).await;
    assert_eq!((reuse.status, reuse.error()), (400, "invalid_grant"));
    let after = refresh(second).await;
    assert_eq!(
        (after.status, after.error()),
        (400, "invalid_grant"),
        "the family is revoked"
    );
    let audit = app.audit_types().await;
    assert!(
        audit
            .iter()
            .any(|(t, o, ..)| t == "token.refresh_reused" && o == "failed"),
        "{audit:?}"
    );

    // A garbage refresh token is invalid_grant too.
    let junk = refresh("not-a-token".into()).await;
    assert_eq!((junk.status, junk.error()), (400, "invalid_grant"));
}

async fn logins_do_not_enumerate_users_and_are_audited(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.create_human("alice", "correct horse battery", &[]).await;
    let svc = app.create_service("billing", &[]).await;
    let login = |user: &'static str, pw: &'static str| {
        let app = &app;
        async move { app.password_grant(user, pw).await }
    };
    let wrong = login("alice", "not-her-password-123").await;
    let unknown = login("mallory", "not-her-password-123").await;
    let service_as_user = login("billing", "whatever-password").await;
    for r in [&wrong, &unknown, &service_as_user] {
        assert_eq!(r.status, 400);
        assert_eq!(r.body, wrong.body, "same answer for every failed login");
    }
    assert_eq!(wrong.error(), "invalid_grant");

    // A human's name used as a client fails client authentication.
    let r = app.client_grant("alice", "correct horse battery").await;
    assert_eq!((r.status, r.error()), (401, "invalid_client"));
    assert!(r.header("www-authenticate").starts_with("Basic"));

    let ok = login("alice", "correct horse battery").await;
    assert_eq!(ok.status, 200);

    let audit = app.audit_types().await;
    let failed_password: Vec<_> = audit
        .iter()
        .filter(|(t, o, ..)| t == "login.password" && o == "failed")
        .collect();
    assert_eq!(failed_password.len(), 3, "{audit:?}");
    assert!(
        failed_password
            .iter()
            .any(|(.., p, r, _)| p.as_deref() == Some(&alice) && r.as_deref() == Some("wrong password"))
    );
    assert!(
        failed_password
            .iter()
            .any(|(.., p, r, _)| p.is_none() && r.as_deref() == Some("unknown user"))
    );
    assert!(
        failed_password
            .iter()
            .any(|(.., p, _, _)| p.as_deref() == Some(&svc.id))
    );
    assert!(
        failed_password
            .iter()
            .all(|(.., remote)| remote.as_deref() == Some("127.0.0.1"))
    );
    assert!(
        audit
            .iter()
            .any(|(t, o, p, ..)| t == "login.password" && o == "ok" && p.as_deref() == Some(&alice))
    );
    assert!(audit.iter().any(|(t, o, p, r, _)| t == "login.client"
        && o == "failed"
        && p.as_deref() == Some(&alice)
        && r.as_deref() == Some("principal is not a service")));
    let dump = app.audit_dump().await;
    for secret in ["correct horse battery", "not-her-password-123", svc.secret.as_str()] {
        assert!(!dump.contains(secret), "audit log holds a secret");
    }
}

async fn token_endpoint_errors_follow_rfc6749(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let svc = app.create_service("mail-sender", &["mail:send"]).await;

    // Basic credentials are form-urlencoded before base64 (§2.3.1): '-' as %2D works.
    let r = app
        .post_form(
            "/oauth/token",
            Some(("mail%2Dsender", &svc.secret.replace('-', "%2D"))),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let basic = Some(("mail-sender", svc.secret.as_str()));
    type Case<'a> = (Option<(&'a str, &'a str)>, Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (basic, vec![], 400, "invalid_request"),
        (
            basic,
            vec![("grant_type", "implicit"), ("code", "x")],
            400,
            "unsupported_grant_type",
        ),
        (
            basic,
            vec![("grant_type", "authorization_code"), ("code", "x")],
            400,
            "invalid_grant",
        ),
        (
            basic,
            vec![
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
            ],
            400,
            "invalid_request",
        ),
        (
            basic,
            vec![("grant_type", "client_credentials"), ("scope", "a"), ("scope", "b")],
            400,
            "invalid_request",
        ),
        (
            basic,
            vec![("grant_type", "client_credentials"), ("scope", "Not Valid")],
            400,
            "invalid_scope",
        ),
        (
            basic,
            vec![("grant_type", "password"), ("username", "x")],
            400,
            "invalid_request",
        ),
        (
            basic,
            vec![("grant_type", "client_credentials"), ("client_secret", "x")],
            400,
            "invalid_request",
        ),
        (
            Some(("mail-sender", "wrong")),
            vec![("grant_type", "client_credentials")],
            401,
            "invalid_client",
        ),
        (
            Some(("nobody", "x")),
            vec![("grant_type", "client_credentials")],
            401,
            "invalid_client",
        ),
        (None, vec![("grant_type", "client_credentials")], 401, "invalid_client"),
        (
            None,
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "mail-sender"),
                ("client_secret", "bad"),
            ],
            401,
            "invalid_client",
        ),
        (None, vec![("grant_type", "refresh_token")], 400, "invalid_request"),
    ];
    for (auth, form, status, error) in cases {
        let r = app.post_form("/oauth/token", auth, &form).await;
        assert_eq!((r.status, r.error()), (status, error), "{form:?}: {}", r.body);
        assert!(r.body["error_description"].is_string());
        assert_eq!(r.header("cache-control"), "no-store");
        if status == 401 && auth.is_some() {
            assert!(r.header("www-authenticate").starts_with("Basic"), "{form:?}");
        }
    }

    // Malformed bodies: wrong content type, bad Basic header, huge body, bad UTF-8.
    let post = |ct: &'static str, body: Vec<u8>| {
        app.client
            .post(app.url("/oauth/token"))
            .header("content-type", ct)
            .body(body)
    };
    let r = post("application/json", br#"{"grant_type":"client_credentials"}"#.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"], "invalid_request");
    let r = post(
        "application/x-www-form-urlencoded",
        b"grant_type=client_credentials".to_vec(),
    )
    .header("authorization", "Basic !!!not-base64")
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 401);
    let r = post("application/x-www-form-urlencoded", vec![b'a'; 200_000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"], "invalid_request");
    let r = post("application/x-www-form-urlencoded", vec![0xff, 0xfe, b'=', 0x80])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = app.client.get(app.url("/oauth/token")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
}

async fn introspection_reports_live_tokens_only(backend: Backend) {
    let app = TestApp::builder(backend)
        .clock(roster::clock::Clock::manual(chrono::Utc::now()))
        .spawn()
        .await;
    let svc = app.create_service("billing", &["invoices:read"]).await;
    let rs = app.create_service("resource-server", &[]).await;
    app.create_human("alice", "correct horse battery", &["r"]).await;
    let http = oauth_http();
    let client = oauth_client(&app, &svc.name, Some(&svc.secret), AuthType::BasicAuth);
    let token = client.exchange_client_credentials().request_async(&http).await.unwrap();

    // The resource server introspects with the oauth2 crate.
    let rs_client = oauth_client(&app, &rs.name, Some(&rs.secret), AuthType::BasicAuth);
    let info = rs_client
        .introspect(token.access_token())
        .request_async(&http)
        .await
        .unwrap();
    assert!(info.active());
    assert_eq!(info.client_id().unwrap().as_str(), "billing");
    assert_eq!(info.username(), Some("billing"));
    assert_eq!(info.scopes().unwrap()[0].as_str(), "invoices:read");
    assert_eq!(info.iss(), Some(app.issuer().as_str()));

    let r = app
        .post_form(
            "/oauth/introspect",
            Some(("resource-server", &rs.secret)),
            &[("token", token.access_token().secret())],
        )
        .await;
    assert_eq!(r.status, 200);
    for field in [
        "active",
        "sub",
        "scope",
        "client_id",
        "exp",
        "iat",
        "iss",
        "token_type",
        "principal_kind",
    ] {
        assert!(r.body.get(field).is_some(), "{field} missing: {}", r.body);
    }
    assert_eq!(r.body["sub"], svc.id.as_str());
    assert_eq!(r.body["principal_kind"], "service");
    assert_eq!(r.body["token_type"], "Bearer");

    // The caller must authenticate as a service.
    let r = app
        .post_form("/oauth/introspect", None, &[("token", token.access_token().secret())])
        .await;
    assert_eq!((r.status, r.error()), (401, "invalid_client"));
    let r = app
        .post_form(
            "/oauth/introspect",
            Some(("alice", "correct horse battery")),
            &[("token", "x")],
        )
        .await;
    assert_eq!((r.status, r.error()), (401, "invalid_client"));

    // Garbage and foreign tokens are inactive.
    let inactive = |t: String| {
        let app = &app;
        let secret = rs.secret.clone();
        async move {
            let r = app
                .post_form(
                    "/oauth/introspect",
                    Some(("resource-server", &secret)),
                    &[("token", &t)],
                )
                .await;
            assert_eq!(r.status, 200);
            r.body
        }
    };
    assert_eq!(inactive("garbage".into()).await, serde_json::json!({"active": false}));
    let other = TestApp::spawn(backend).await;
    let other_svc = other.create_service("billing", &[]).await;
    let foreign = other.client_token("billing", &other_svc.secret).await;
    assert_eq!(inactive(foreign).await, serde_json::json!({"active": false}));

    // Refresh tokens introspect too.
    let (_, refresh) = app.login("alice", "correct horse battery").await;
    let body = inactive(refresh).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "refresh_token");
    assert_eq!(body["username"], "alice");

    // Expired: move the server's clock past the 5-minute lifetime.
    app.clock.advance(chrono::Duration::seconds(301));
    assert_eq!(
        inactive(token.access_token().secret().clone()).await,
        serde_json::json!({"active": false})
    );
}

async fn revocation_of_access_and_refresh_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let svc = app.create_service("billing", &[]).await;
    let other = app.create_service("other", &[]).await;
    app.create_human("alice", "correct horse battery", &[]).await;
    let http = oauth_http();
    let client = oauth_client(&app, &svc.name, Some(&svc.secret), AuthType::BasicAuth);
    let introspect = |t: String| {
        let app = &app;
        let secret = other.secret.clone();
        async move {
            app.post_form("/oauth/introspect", Some(("other", &secret)), &[("token", &t)])
                .await
                .body["active"]
                .as_bool()
                .unwrap()
        }
    };

    // A service revokes its own access token, with the oauth2 crate.
    let token = client.exchange_client_credentials().request_async(&http).await.unwrap();
    let access = token.access_token().secret().clone();
    // Another client's attempt does nothing.
    let r = app
        .post_form("/oauth/revoke", Some(("other", &other.secret)), &[("token", &access)])
        .await;
    assert_eq!(r.status, 200);
    assert!(introspect(access.clone()).await);
    // Without client authentication a service's token cannot be revoked:
    // the same 200 as for garbage, and the token stays active.
    let r = app.post_form("/oauth/revoke", None, &[("token", &access)]).await;
    assert_eq!((r.status, r.body.clone()), (200, serde_json::json!({})));
    assert!(introspect(access.clone()).await);
    // (The oauth2 crate refuses to revoke over plain http, so this is a raw request.)
    let r = app
        .post_form(
            "/oauth/revoke",
            Some(("billing", &svc.secret)),
            &[("token", &access), ("token_type_hint", "access_token")],
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(!introspect(access.clone()).await);
    let me = app
        .client
        .get(app.url("/api/v1/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);
    // Revoking again, or an unknown token, is 200.
    assert_eq!(
        app.post_form("/oauth/revoke", Some(("billing", &svc.secret)), &[("token", &access)])
            .await
            .status,
        200
    );
    assert_eq!(
        app.post_form("/oauth/revoke", Some(("billing", &svc.secret)), &[("token", "unknown")])
            .await
            .status,
        200
    );
    assert_eq!(
        app.post_form("/oauth/revoke", None, &[("token", "unknown")])
            .await
            .status,
        200
    );

    // A person who logged in without a client revokes by presenting the token.
    let (access, refresh) = app.login("alice", "correct horse battery").await;
    assert_eq!(
        app.post_form(
            "/oauth/revoke",
            None,
            &[("token", &refresh), ("token_type_hint", "refresh_token")]
        )
        .await
        .status,
        200
    );
    let r = app
        .post_form(
            "/oauth/token",
            None,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(r.error(), "invalid_grant");
    assert!(introspect(access.clone()).await);
    assert_eq!(
        app.post_form("/oauth/revoke", None, &[("token", &access)]).await.status,
        200
    );
    assert!(!introspect(access).await);
    let r = app.post_form("/oauth/revoke", None, &[]).await;
    assert_eq!((r.status, r.error()), (400, "invalid_request"));
}

async fn me_requires_a_live_bearer_token(backend: Backend) {
    let app = TestApp::builder(backend)
        .clock(roster::clock::Clock::manual(chrono::Utc::now()))
        .spawn()
        .await;
    let alice = app
        .create_human("alice", "correct horse battery", &["reports:read", "reports:write"])
        .await;
    let login = app
        .post_form(
            "/oauth/token",
            None,
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "correct horse battery"),
                ("scope", "reports:read"),
            ],
        )
        .await;
    let access = login.body["access_token"].as_str().unwrap().to_string();
    let r = app
        .client
        .get(app.url("/api/v1/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: serde_json::Value = r.json().await.unwrap();
    assert_eq!(me["id"], alice.as_str());
    assert_eq!(me["name"], "alice");
    assert_eq!(me["kind"], "human");
    assert_eq!(me["scopes"], serde_json::json!(["reports:read"]), "the token's scopes");

    let r = app.client.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    // RFC 6750 §3.1: credentials of another scheme are no Bearer credentials
    // at all: the challenge carries no error code (as roster-client answers,
    // both through roster_proto::bearer).
    for other in ["Basic YWxpY2U6c2VjcmV0", "Token abc", "Negotiate"] {
        let r = app
            .client
            .get(app.url("/api/v1/me"))
            .header("authorization", other)
            .send()
            .await
            .unwrap();
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_string();
        assert_eq!(
            (
                r.status().as_u16(),
                challenge,
                r.json::<serde_json::Value>().await.unwrap()
            ),
            (
                401,
                r#"Bearer realm="roster""#.to_string(),
                json!({"error": "unauthorized", "error_description": "a Bearer token is required"})
            ),
            "{other}"
        );
    }
    for bad in ["garbage", "a.b.c", &format!("{access}x")] {
        let r = app
            .client
            .get(app.url("/api/v1/me"))
            .bearer_auth(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{bad}");
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains(r#"error="invalid_token""#)
        );
        assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"], "invalid_token");
    }
    // A token for another audience is not for Roster's API.
    let svc = app.create_service("billing", &[]).await;
    app.create_service("ledger", &[]).await;
    let r = app
        .post_form(
            "/oauth/token",
            Some(("billing", &svc.secret)),
            &[("grant_type", "client_credentials"), ("resource", "ledger")],
        )
        .await;
    let other_aud = r.body["access_token"].as_str().unwrap().to_string();
    let r = app
        .client
        .get(app.url("/api/v1/me"))
        .bearer_auth(&other_aud)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    app.clock.advance(chrono::Duration::seconds(301));
    let r = app
        .client
        .get(app.url("/api/v1/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn well_known_documents_describe_the_server() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.create_service("billing", &["invoices:read"]).await;
    let (s1, oauth) = app.get_json("/.well-known/oauth-authorization-server").await;
    let (s2, oidc) = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(oauth, oidc);
    let issuer = app.issuer();
    assert_eq!(oauth["issuer"], issuer.as_str());
    for (field, path) in [
        ("token_endpoint", "/oauth/token"),
        ("jwks_uri", "/.well-known/jwks.json"),
        ("introspection_endpoint", "/oauth/introspect"),
        ("revocation_endpoint", "/oauth/revoke"),
        ("device_authorization_endpoint", "/oauth/device_authorization"),
    ] {
        assert_eq!(oauth[field], format!("{issuer}{path}"), "{field}");
    }
    assert_eq!(
        oauth["grant_types_supported"],
        serde_json::json!([
            "authorization_code",
            "client_credentials",
            "password",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "urn:ietf:params:oauth:grant-type:device_code"
        ])
    );
    assert_eq!(
        oauth["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post", "private_key_jwt", "none"])
    );
    assert_eq!(oauth["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(oauth["subject_types_supported"], serde_json::json!(["public"]));
    assert_eq!(oauth["authorization_response_iss_parameter_supported"], true);
    for claim in ["sub", "auth_time", "nonce", "sid", "at_hash"] {
        assert!(
            oauth["claims_supported"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!(claim)),
            "{claim}"
        );
    }
    let scopes = oauth["scopes_supported"].as_array().unwrap();
    assert!(scopes.contains(&serde_json::json!("invoices:read")));

    let (_, jwks) = app.get_json("/.well-known/jwks.json").await;
    let keys = jwks["keys"].as_array().unwrap();
    assert!(!keys.is_empty());
    for k in keys {
        assert!(k["kid"].is_string());
        assert_eq!(k["use"], "sig");
        assert!(k["alg"] == "EdDSA" || k["alg"] == "ES256");
        assert!(k.get("d").is_none(), "private part published");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn es256_is_an_option() {
    let app = TestApp::builder(Backend::Sqlite)
        .settings(|mut s| {
            s.keys.alg = roster::auth::keys::SigningAlg::Es256;
            s
        })
        .spawn()
        .await;
    let svc = app.create_service("billing", &[]).await;
    let r = app.client_grant("billing", &svc.secret).await;
    let token = r.body["access_token"].as_str().unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(token).unwrap().alg,
        jsonwebtoken::Algorithm::ES256
    );
    let jwks = app.jwks().await;
    verify_with_jwks(&jwks, token, &app.issuer(), &app.issuer());
}
