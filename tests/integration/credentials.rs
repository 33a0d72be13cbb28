//! Client secrets verify in the store on both backends; wrong, expired and
//! deleted ones fail.

use chrono::Duration;
use roster::auth::client::{self, ClientAuthFailure};
use roster::auth::secrets::SecretString;
use roster::models::secret;

use crate::on_both_backends;
use crate::support::{Backend, TestApp, t0};

on_both_backends!(client_secrets_verify_and_wrong_or_deleted_ones_fail);

async fn client_secrets_verify_and_wrong_or_deleted_ones_fail(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let pepper = app.state.oauth().pepper.clone();
    let now = t0();
    let created = app.create_service("mailer", &["mail:send"]).await;
    let secret_id = app.state.principals().secrets(created.id.clone()).await.unwrap()[0]
        .id
        .clone();
    let good = SecretString::new(created.secret);
    app.query(move |conn| {
        let ok = client::authenticate(conn, &pepper, "mailer", &good, now)?.unwrap();
        assert_eq!(ok.principal.name, "mailer");
        assert_eq!(ok.secret_id.as_deref(), Some(secret_id.as_str()));
        let rows = secret::list_for(conn, &ok.principal.id)?;
        // The stored value is a keyed hash, not the secret.
        assert_ne!(rows[0].secret_hash, good.expose());

        let fail = |r: Result<_, (ClientAuthFailure, _)>| r.err().map(|(f, _)| f);
        let wrong = SecretString::new(format!("{}x", good.expose()));
        assert_eq!(
            fail(client::authenticate(conn, &pepper, "mailer", &wrong, now)?),
            Some(ClientAuthFailure::WrongSecret)
        );
        assert_eq!(
            fail(client::authenticate(conn, &pepper, "nobody", &good, now)?),
            Some(ClientAuthFailure::UnknownClient)
        );

        // A second secret overlaps with the first; an expiring one stops at its time.
        let extra = roster::auth::secrets::generate_client_secret(&pepper).unwrap();
        secret::insert(conn, &ok.principal.id, &extra.hash, now, Some(now + Duration::hours(1)))?;
        assert!(client::authenticate(conn, &pepper, "mailer", &extra.secret, now)?.is_ok());
        assert!(client::authenticate(conn, &pepper, "mailer", &good, now)?.is_ok());
        let later = now + Duration::hours(2);
        assert_eq!(
            fail(client::authenticate(conn, &pepper, "mailer", &extra.secret, later)?),
            Some(ClientAuthFailure::ExpiredSecret)
        );

        // A deleted secret stops working at once.
        assert!(secret::delete(conn, &ok.principal.id, &secret_id)?);
        assert_eq!(
            fail(client::authenticate(conn, &pepper, "mailer", &good, now)?),
            Some(ClientAuthFailure::WrongSecret)
        );
        Ok(())
    })
    .await;
}

on_both_backends!(a_verified_client_stops_working_when_it_changes_anywhere);

/// A service's next token needs no database (the cache of verified
/// clients), yet a change to it takes effect at once on the instance that
/// made it, and on every other instance at its next tick.
async fn a_verified_client_stops_working_when_it_changes_anywhere(backend: Backend) {
    use reqwest::Method;
    use serde_json::json;
    let a = TestApp::builder(backend)
        .clock(roster::clock::Clock::manual(t0()))
        .spawn()
        .await;
    let b = TestApp::builder(backend)
        .clock(roster::clock::Clock::manual(t0()))
        .same_database_as(&a)
        .spawn()
        .await;
    let admin = a.admin_token().await;
    let svc = a.create_service("billing", &["invoices:read"]).await;
    let scope = |r: crate::support::FormReply| (r.status, r.body["scope"].clone());
    for app in [&a, &b] {
        app.tick().await; // each has seen the generation
        assert_eq!(
            scope(app.client_grant("billing", &svc.secret).await),
            (200, json!("invoices:read"))
        );
    }
    // Scopes change through A's API: A at once, B after its tick.
    let path = format!("/api/v1/principals/{}", svc.id);
    let r = a
        .call(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"scopes": ["invoices:write"]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        scope(a.client_grant("billing", &svc.secret).await),
        (200, json!("invoices:write"))
    );
    assert_eq!(
        scope(b.client_grant("billing", &svc.secret).await),
        (200, json!("invoices:read")),
        "B still holds what it verified"
    );
    b.tick().await;
    assert_eq!(
        scope(b.client_grant("billing", &svc.secret).await),
        (200, json!("invoices:write"))
    );

    // Disabled through A's API: refused by A at once, by B after its tick.
    let r = a
        .call(Method::PATCH, &path, Some(&admin), Some(json!({"status": "disabled"})))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(a.client_grant("billing", &svc.secret).await.status, 401);
    b.tick().await;
    assert_eq!(b.client_grant("billing", &svc.secret).await.status, 401);
    let r = a
        .call(Method::PATCH, &path, Some(&admin), Some(json!({"status": "active"})))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // A deleted secret, likewise.
    let old = a
        .call(Method::GET, &format!("{path}/secrets"), Some(&admin), None)
        .await
        .body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for app in [&a, &b] {
        app.tick().await;
        assert_eq!(app.client_grant("billing", &svc.secret).await.status, 200);
    }
    let r = a
        .call(Method::DELETE, &format!("{path}/secrets/{old}"), Some(&admin), None)
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(a.client_grant("billing", &svc.secret).await.status, 401);
    b.tick().await;
    assert_eq!(b.client_grant("billing", &svc.secret).await.status, 401);

    // A secret that expires stops at its expiry, cached or not.
    let r = a
        .call(
            Method::POST,
            &format!("{path}/secrets"),
            Some(&admin),
            Some(json!({"expires_in": 60})),
        )
        .await;
    let short = r.body["client_secret"].as_str().unwrap().to_string();
    assert_eq!(a.client_grant("billing", &short).await.status, 200);
    a.clock.advance(Duration::seconds(61));
    assert_eq!(a.client_grant("billing", &short).await.status, 401);
}
