//! The admin API over real HTTP on both backends.

use reqwest::Method;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp};

on_both_backends!(
    admin_routes_need_an_admin_token,
    create_principals_and_reject_bad_input,
    list_filters_and_stable_pagination,
    patch_disable_and_enable,
    delete_disables_and_revokes_refresh_tokens,
    password_changes_by_admin_and_by_self,
    secret_rotation_overlaps_and_deleted_secrets_stop,
    audit_log_records_actions_without_secrets,
    granting_admin_is_audited_on_its_own,
    bad_query_parameters_are_named_like_body_fields,
);

/// A bad query parameter is a 422 naming it and the expected format, the
/// same shape as a bad body field.
async fn bad_query_parameters_are_named_like_body_fields(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let r = app
        .call(Method::GET, "/api/v1/principals?kind=robots", Some(&admin), None)
        .await;
    assert_eq!(
        (r.status, r.body),
        (
            422,
            json!({"error": "invalid_field", "field": "kind",
                   "error_description": "invalid query parameter `kind`: unknown variant `robots`, expected `human` or `service`"})
        )
    );
    let r = app
        .call(Method::GET, "/api/v1/audit?since=yesterday", Some(&admin), None)
        .await;
    assert_eq!(
        (r.status, r.body),
        (
            422,
            json!({"error": "invalid_field", "field": "since",
                   "error_description": "invalid query parameter `since`: input contains invalid characters; \
                                         expected an RFC 3339 time such as 2026-01-01T00:00:00Z"})
        )
    );
    let r = app
        .call(Method::GET, "/api/v1/services?index=soon", Some(&admin), None)
        .await;
    assert_eq!((r.status, &r.body["field"]), (422, &json!("index")), "{}", r.body);
    let r = app
        .call(Method::GET, "/api/v1/principals?colour=red", Some(&admin), None)
        .await;
    assert_eq!((r.status, &r.body["field"]), (422, &json!("colour")), "{}", r.body);
}

/// A service may hold `admin` (provisioning jobs), and can then administer;
/// every grant of `admin` is its own audit event, and keeping it is not a
/// new grant.
async fn granting_admin_is_audited_on_its_own(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let grants = |r: Value| -> Vec<(String, String)> {
        r["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["principal_id"].as_str().unwrap().to_string(),
                    e["details"]["kind"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let audit = "/api/v1/audit?type=admin.granted";
    let before = grants(app.call(Method::GET, audit, Some(&admin), None).await.body);
    assert_eq!(before.len(), 1, "the first-start admin: {before:?}");

    let r = app
        .call(
            Method::POST,
            "/api/v1/principals",
            Some(&admin),
            Some(json!({"kind": "service", "name": "provisioner", "scopes": ["admin"]})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let provisioner = r.body["id"].as_str().unwrap().to_string();
    let secret = r.body["client_secret"].as_str().unwrap().to_string();
    let token = app.client_token("provisioner", &secret).await;
    assert_eq!(
        app.call(Method::GET, "/api/v1/principals", Some(&token), None)
            .await
            .status,
        200
    );

    let carol = app.create_human("carol", "carol-password-1", &["reports:read"]).await;
    let path = format!("/api/v1/principals/{carol}");
    for _ in 0..2 {
        let r = app
            .call(
                Method::PATCH,
                &path,
                Some(&admin),
                Some(json!({"scopes": ["reports:read", "admin"]})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let after = grants(app.call(Method::GET, audit, Some(&admin), None).await.body);
    assert_eq!(
        after[..2],
        [
            (carol.clone(), "human".to_string()),
            (provisioner, "service".to_string())
        ],
        "newest first, and the second PATCH granted nothing new"
    );
    assert_eq!(after.len(), 3);
}

async fn admin_routes_need_an_admin_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    app.create_human("bob", "bob-password-123", &["reports:read"]).await;
    let (bob, _) = app.login("bob", "bob-password-123").await;

    let r = app.call(Method::GET, "/api/v1/principals", None, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), r#"Bearer realm="roster""#);
    let r = app.call(Method::GET, "/api/v1/principals", Some(&bob), None).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["error"], "forbidden");
    assert!(r.header("www-authenticate").contains("insufficient_scope"));
    let r = app
        .call(Method::GET, "/api/v1/principals", Some("not-a-token"), None)
        .await;
    assert_eq!(r.status, 401);
    let r = app.call(Method::GET, "/api/v1/principals", Some(&admin), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    for (m, p) in [
        (Method::POST, "/api/v1/principals"),
        (Method::GET, "/api/v1/audit"),
        (Method::DELETE, "/api/v1/principals/x"),
        (Method::POST, "/api/v1/principals/x/secrets"),
    ] {
        assert_eq!(app.call(m, p, Some(&bob), Some(json!({}))).await.status, 403, "{p}");
    }
}

async fn create_principals_and_reject_bad_input(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let post = |body: Value| {
        let (app, admin) = (&app, admin.clone());
        async move {
            app.call(Method::POST, "/api/v1/principals", Some(&admin), Some(body))
                .await
        }
    };

    let r = post(json!({
        "kind": "service", "name": "mailer", "display_name": "Mail sender",
        "scopes": ["mail:send"], "categories": [{"name": "notification", "priority": 10}]
    }))
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["kind"], "service");
    assert_eq!(r.body["client_id"], "mailer");
    assert_eq!(r.body["categories"], json!([{"name": "notification", "priority": 10}]));
    assert_eq!(
        r.header("location"),
        format!("/api/v1/principals/{}", r.body["id"].as_str().unwrap())
    );
    let secret = r.body["client_secret"].as_str().unwrap().to_string();
    assert_eq!(app.client_login_status("mailer", &secret).await, 200);

    let r = post(json!({"kind": "human", "name": "carol", "email": "carol@example.org", "password": "carol-password-1", "scopes": ["reports:read"]})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.body.get("client_secret").is_none());
    assert!(r.body.get("password").is_none());
    app.login("carol", "carol-password-1").await;

    // Duplicates are 409; invalid fields are 422 naming the field; bad JSON is 400.
    let r = post(json!({"kind": "service", "name": "mailer"})).await;
    assert_eq!((r.status, r.body["error"].as_str()), (409, Some("conflict")));
    let cases = [
        (json!({"kind": "service", "name": "Bad Name"}), "name"),
        (json!({"kind": "robot", "name": "x"}), "kind"),
        (json!({"kind": "service"}), "name"),
        (
            json!({"kind": "service", "name": "x", "scopes": ["Bad Scope"]}),
            "scopes",
        ),
        (json!({"kind": "service", "name": "x", "scopes": "admin"}), "scopes"),
        (
            json!({"kind": "service", "name": "x", "password": "pw-pw-pw-pw"}),
            "password",
        ),
        (json!({"kind": "human", "name": "x"}), "password"),
        (json!({"kind": "human", "name": "x", "password": "short"}), "password"),
        (
            json!({"kind": "human", "name": "x", "password": "long-enough", "categories": [{"name": "a"}]}),
            "categories",
        ),
        (
            json!({"kind": "service", "name": "x", "categories": [{"name": "a"}, {"name": "a"}]}),
            "categories",
        ),
        (
            json!({"kind": "service", "name": "x", "categories": [{"name": "a", "priority": "high"}]}),
            "categories[0].priority",
        ),
        (
            json!({"kind": "human", "name": "x", "password": "long-enough", "email": "nope"}),
            "email",
        ),
        (json!({"kind": "service", "name": "x", "unknown": 1}), "unknown"),
    ];
    for (body, field) in cases {
        let r = post(body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        assert_eq!(r.body["error"], "invalid_field");
        assert!(
            r.body["field"]
                .as_str()
                .unwrap()
                .starts_with(field.split('[').next().unwrap()),
            "{body}: {}",
            r.body
        );
        assert!(r.body["error_description"].as_str().unwrap().len() > 3);
    }
    let r = app
        .client
        .post(app.url("/api/v1/principals"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");

    // Nothing was created by the failed requests.
    let r = app
        .call(Method::GET, "/api/v1/principals?q=x", Some(&admin), None)
        .await;
    assert_eq!(r.body["items"], json!([]));
}

async fn list_filters_and_stable_pagination(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    for n in ["svc-a", "svc-c", "svc-e", "svc-g", "svc-i"] {
        let r = app
            .call(
                Method::POST,
                "/api/v1/principals",
                Some(&admin),
                Some(json!({"kind": "service", "name": n, "categories": [{"name": "application", "priority": 1}]})),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    app.create_human("dora", "dora-password-1", &[]).await;

    let names = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    let get = |path: String| {
        let (app, admin) = (&app, admin.clone());
        async move {
            let r = app.call(Method::GET, &path, Some(&admin), None).await;
            assert_eq!(r.status, 200, "{path}: {}", r.body);
            r.body
        }
    };
    assert_eq!(
        names(&get("/api/v1/principals?kind=human".into()).await),
        ["dora", "root-admin"]
    );
    assert_eq!(
        names(&get("/api/v1/principals?category=application".into()).await).len(),
        5
    );
    assert_eq!(names(&get("/api/v1/principals?q=svc-".into()).await).len(), 5);
    assert_eq!(
        names(&get("/api/v1/principals?q=svc_".into()).await).len(),
        0,
        "_ is not a wildcard"
    );
    assert_eq!(names(&get("/api/v1/principals?status=disabled".into()).await).len(), 0);

    // Page through services two at a time while others are inserted.
    let mut seen = Vec::new();
    let mut path = "/api/v1/principals?kind=service&limit=2".to_string();
    let mut round = 0;
    loop {
        let page = get(path.clone()).await;
        seen.extend(names(&page));
        if round == 0 {
            // One before the cursor and one after it.
            for n in ["svc-b", "svc-z"] {
                app.call(
                    Method::POST,
                    "/api/v1/principals",
                    Some(&admin),
                    Some(json!({"kind": "service", "name": n})),
                )
                .await;
            }
        }
        round += 1;
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/principals?kind=service&limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["svc-a", "svc-c", "svc-e", "svc-g", "svc-i", "svc-z"],
        "no item twice, none skipped"
    );

    let mut refused = Vec::new();
    for bad in ["limit=0", "limit=201", "cursor=!!", "kind=robot"] {
        let r = app
            .call(Method::GET, &format!("/api/v1/principals?{bad}"), Some(&admin), None)
            .await;
        refused.push((bad, r.status, r.body));
    }
    let field = |name: &str, why: &str| json!({"error": "invalid_field", "error_description": why, "field": name});
    assert_eq!(
        refused,
        vec![
            ("limit=0", 422, field("limit", "must be between 1 and 200")),
            ("limit=201", 422, field("limit", "must be between 1 and 200")),
            ("cursor=!!", 422, field("cursor", "not a cursor returned by this API")),
            (
                "kind=robot",
                422,
                field(
                    "kind",
                    "invalid query parameter `kind`: unknown variant `robot`, expected `human` or `service`"
                )
            ),
        ]
    );
}

async fn patch_disable_and_enable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let svc = app.create_service("billing", &["invoices:read"]).await;
    let rs = app.create_service("rs", &[]).await;
    let path = format!("/api/v1/principals/{}", svc.id);

    let r = app
        .call(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({
                "display_name": "Billing", "email": "billing@example.org",
                "scopes": ["invoices:read", "invoices:write"], "categories": [{"name": "application", "priority": 5}]
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["display_name"], "Billing");
    assert_eq!(r.body["scopes"], json!(["invoices:read", "invoices:write"]));
    assert_eq!(r.body["categories"], json!([{"name": "application", "priority": 5}]));
    let r = app.client_grant("billing", &svc.secret).await;
    assert_eq!(
        r.body["scope"], "invoices:read invoices:write",
        "new scopes apply to new tokens"
    );
    let token = r.body["access_token"].as_str().unwrap().to_string();

    // null clears; absent leaves alone.
    let r = app
        .call(Method::PATCH, &path, Some(&admin), Some(json!({"email": null})))
        .await;
    assert_eq!(r.body["email"], Value::Null);
    assert_eq!(r.body["display_name"], "Billing");

    // A rejected PATCH changes nothing.
    let r = app
        .call(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"scopes": ["x"], "categories": [{"name": "Bad!"}]})),
        )
        .await;
    assert_eq!(r.status, 422);
    let r = app.call(Method::GET, &path, Some(&admin), None).await;
    assert_eq!(r.body["scopes"], json!(["invoices:read", "invoices:write"]));

    // Disable: no new tokens, live ones introspect inactive. Enable: tokens again.
    let r = app
        .call(Method::PATCH, &path, Some(&admin), Some(json!({"status": "disabled"})))
        .await;
    assert_eq!(r.body["status"], "disabled");
    assert_eq!(app.client_login_status("billing", &svc.secret).await, 401);
    let i = app
        .post_form("/oauth/introspect", Some(("rs", &rs.secret)), &[("token", &token)])
        .await;
    assert_eq!(i.body, json!({"active": false}));
    let r = app
        .call(Method::PATCH, &path, Some(&admin), Some(json!({"status": "active"})))
        .await;
    assert_eq!(r.body["status"], "active");
    assert_eq!(app.client_login_status("billing", &svc.secret).await, 200);

    for (body, field) in [
        (json!({"status": "gone"}), "status"),
        (json!({"scopes": "x"}), "scopes"),
        (json!({"name": "x"}), "name"),
    ] {
        let r = app.call(Method::PATCH, &path, Some(&admin), Some(body)).await;
        assert_eq!(r.status, 422);
        assert_eq!(r.body["field"], field);
    }
    let human = app.create_human("erin", "erin-password-1", &[]).await;
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/principals/{human}"),
            Some(&admin),
            Some(json!({"categories": [{"name": "a"}]})),
        )
        .await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("categories")));
    let r = app
        .call(
            Method::PATCH,
            "/api/v1/principals/nope",
            Some(&admin),
            Some(json!({"display_name": "x"})),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        app.call(Method::GET, "/api/v1/principals/nope", Some(&admin), None)
            .await
            .status,
        404
    );
}

async fn delete_disables_and_revokes_refresh_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let id = app.create_human("frank", "frank-password-1", &[]).await;
    let (_, refresh) = app.login("frank", "frank-password-1").await;
    let r = app
        .call(Method::DELETE, &format!("/api/v1/principals/{id}"), Some(&admin), None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "disabled");
    let r = app
        .post_form(
            "/oauth/token",
            None,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(r.error(), "invalid_grant");
    // Still a principal, just disabled.
    let r = app
        .call(Method::GET, &format!("/api/v1/principals/{id}"), Some(&admin), None)
        .await;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("disabled")));
    assert_eq!(
        app.call(Method::DELETE, "/api/v1/principals/nope", Some(&admin), None)
            .await
            .status,
        404
    );
}

async fn password_changes_by_admin_and_by_self(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let gina = app.create_human("gina", "gina-password-1", &[]).await;
    app.create_human("hal", "hal-password-12", &[]).await;
    let svc = app.create_service("billing", &[]).await;
    let path = format!("/api/v1/principals/{gina}/password");
    let (gina_token, gina_refresh) = app.login("gina", "gina-password-1").await;
    let (hal_token, _) = app.login("hal", "hal-password-12").await;

    // Another non-admin may not.
    let r = app
        .call(
            Method::PUT,
            &path,
            Some(&hal_token),
            Some(json!({"password": "hacked-password"})),
        )
        .await;
    assert_eq!(r.status, 403);
    // Herself: only with the right current password.
    let r = app
        .call(
            Method::PUT,
            &path,
            Some(&gina_token),
            Some(json!({"password": "gina-password-2"})),
        )
        .await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("current_password")));
    let r = app
        .call(
            Method::PUT,
            &path,
            Some(&gina_token),
            Some(json!({"password": "gina-password-2", "current_password": "wrong-one"})),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = app
        .call(
            Method::PUT,
            &path,
            Some(&gina_token),
            Some(json!({"password": "gina-password-2", "current_password": "gina-password-1"})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    // Her refresh tokens are gone; the new password works, the old does not.
    let r = app
        .post_form(
            "/oauth/token",
            None,
            &[("grant_type", "refresh_token"), ("refresh_token", &gina_refresh)],
        )
        .await;
    assert_eq!(r.error(), "invalid_grant");
    let r = app.password_grant("gina", "gina-password-1").await;
    assert_eq!(r.error(), "invalid_grant");
    app.login("gina", "gina-password-2").await;

    // An admin needs no current password.
    let r = app
        .call(
            Method::PUT,
            &path,
            Some(&admin),
            Some(json!({"password": "gina-password-3"})),
        )
        .await;
    assert_eq!(r.status, 204);
    app.login("gina", "gina-password-3").await;
    let r = app
        .call(Method::PUT, &path, Some(&admin), Some(json!({"password": "short"})))
        .await;
    assert_eq!((r.status, r.body["field"].as_str()), (422, Some("password")));
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/principals/{}/password", svc.id),
            Some(&admin),
            Some(json!({"password": "a-service-password"})),
        )
        .await;
    assert_eq!(r.status, 422);
    let r = app
        .call(
            Method::PUT,
            "/api/v1/principals/nope/password",
            Some(&admin),
            Some(json!({"password": "whatever-123"})),
        )
        .await;
    assert_eq!(r.status, 404);
}

async fn secret_rotation_overlaps_and_deleted_secrets_stop(backend: Backend) {
    let app = TestApp::builder(backend)
        .clock(roster::clock::Clock::manual(chrono::Utc::now()))
        .spawn()
        .await;
    let admin = app.admin_token().await;
    let svc = app.create_service("billing", &[]).await;
    let base = format!("/api/v1/principals/{}/secrets", svc.id);

    // A new secret without a body; the old one keeps working.
    let r = app.call(Method::POST, &base, Some(&admin), None).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let new_secret = r.body["client_secret"].as_str().unwrap().to_string();
    let new_id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["expires_at"], Value::Null);
    assert_eq!(app.client_login_status("billing", &svc.secret).await, 200);
    assert_eq!(app.client_login_status("billing", &new_secret).await, 200);

    // Listing shows metadata only.
    let r = app.call(Method::GET, &base, Some(&admin), None).await;
    assert_eq!(r.status, 200);
    let items = r.body["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    let text = r.body.to_string();
    assert!(
        !text.contains(&svc.secret) && !text.contains(&new_secret),
        "secrets listed"
    );
    for item in &items {
        for f in ["id", "created_at", "expires_at", "last_used_at"] {
            assert!(item.get(f).is_some(), "{f}");
        }
        assert!(item.get("client_secret").is_none() && item.get("secret_hash").is_none());
    }

    // Delete the old one: it stops at once; the new one goes on.
    let old_id = items.iter().find(|i| i["id"] != new_id.as_str()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .call(Method::DELETE, &format!("{base}/{old_id}"), Some(&admin), None)
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(app.client_login_status("billing", &svc.secret).await, 401);
    assert_eq!(app.client_login_status("billing", &new_secret).await, 200);
    assert_eq!(
        app.call(Method::DELETE, &format!("{base}/{old_id}"), Some(&admin), None)
            .await
            .status,
        404
    );

    // An expiring secret is refused once expired.
    let r = app
        .call(Method::POST, &base, Some(&admin), Some(json!({"expires_in": 60})))
        .await;
    assert_eq!(r.status, 201);
    assert!(r.body["expires_at"].is_string());
    let short = r.body["client_secret"].as_str().unwrap().to_string();
    assert_eq!(app.client_login_status("billing", &short).await, 200);
    app.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(app.client_login_status("billing", &short).await, 401);

    for body in [
        json!({"expires_in": 0}),
        json!({"expires_in": "soon"}),
        json!({"other": 1}),
    ] {
        let r = app.call(Method::POST, &base, Some(&admin), Some(body.clone())).await;
        assert_eq!(r.status, 422, "{body}");
    }
    let human = app.create_human("ivy", "ivy-password-1", &[]).await;
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/principals/{human}/secrets"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        app.call(Method::GET, "/api/v1/principals/nope/secrets", Some(&admin), None)
            .await
            .status,
        404
    );
}

async fn audit_log_records_actions_without_secrets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let admin_id = app.call(Method::GET, "/api/v1/me", Some(&admin), None).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .call(
            Method::POST,
            "/api/v1/principals",
            Some(&admin),
            Some(json!({"kind": "service", "name": "svc"})),
        )
        .await;
    let svc_id = r.body["id"].as_str().unwrap().to_string();
    let first_secret = r.body["client_secret"].as_str().unwrap().to_string();
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/principals/{svc_id}/secrets"),
            Some(&admin),
            None,
        )
        .await;
    let second_secret = r.body["client_secret"].as_str().unwrap().to_string();
    let second_id = r.body["id"].as_str().unwrap().to_string();
    app.call(
        Method::DELETE,
        &format!("/api/v1/principals/{svc_id}/secrets/{second_id}"),
        Some(&admin),
        None,
    )
    .await;
    app.call(
        Method::PATCH,
        &format!("/api/v1/principals/{svc_id}"),
        Some(&admin),
        Some(json!({"scopes": ["a"]})),
    )
    .await;
    let r = app
        .call(
            Method::POST,
            "/api/v1/principals",
            Some(&admin),
            Some(json!({"kind": "human", "name": "jo", "password": "jo-password-123"})),
        )
        .await;
    let jo = r.body["id"].as_str().unwrap().to_string();
    app.call(
        Method::PUT,
        &format!("/api/v1/principals/{jo}/password"),
        Some(&admin),
        Some(json!({"password": "jo-password-456"})),
    )
    .await;
    app.password_grant("jo", "jo-password-123").await;
    app.call(Method::DELETE, &format!("/api/v1/principals/{jo}"), Some(&admin), None)
        .await;

    let get = |q: String| {
        let (app, admin) = (&app, admin.clone());
        async move {
            let r = app
                .call(Method::GET, &format!("/api/v1/audit{q}"), Some(&admin), None)
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
            r.body
        }
    };
    let all = get("?limit=200".into()).await;
    let events = all["items"].as_array().unwrap();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    for t in [
        "principal.created",
        "secret.created",
        "secret.deleted",
        "principal.updated",
        "password.changed",
        "principal.disabled",
        "login.password",
    ] {
        assert!(types.contains(&t), "{t} missing from {types:?}");
    }
    // Admin changes say who did them.
    for e in events
        .iter()
        .filter(|e| e["type"] == "secret.deleted" || e["type"] == "principal.updated")
    {
        assert_eq!(e["actor_id"], admin_id.as_str());
        assert_eq!(e["principal_id"], svc_id.as_str());
    }
    // Newest first.
    let times: Vec<&str> = events.iter().map(|e| e["created_at"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted);

    // Filters and pagination.
    // Each filter keeps exactly the matching events of the full list.
    let expect = |keep: &dyn Fn(&serde_json::Value) -> bool| -> Vec<serde_json::Value> {
        events.iter().filter(|e| keep(e)).cloned().collect()
    };
    let failed = get("?type=login.password".into()).await;
    let want = expect(&|e| e["type"] == "login.password");
    assert!(!want.is_empty());
    assert_eq!(failed["items"], json!(want));
    let mine = get(format!("?principal={svc_id}")).await;
    let want = expect(&|e| e["principal_id"] == svc_id.as_str());
    assert!(
        want.len() >= 3,
        "created, secret created, secret deleted, updated: {want:?}"
    );
    assert_eq!(mine["items"], json!(want));
    assert_eq!(get("?since=2999-01-01T00:00:00Z".into()).await["items"], json!([]));
    let mut paged = Vec::new();
    let mut q = "?limit=3".to_string();
    loop {
        let page = get(q).await;
        paged.extend(page["items"].as_array().unwrap().iter().map(|e| e["id"].clone()));
        match page["next_cursor"].as_str() {
            Some(c) => q = format!("?limit=3&cursor={c}"),
            None => break,
        }
    }
    let ids: Vec<Value> = events.iter().map(|e| e["id"].clone()).collect();
    assert_eq!(paged, ids);

    // No secret or password anywhere in the audit table.
    let dump = app.audit_dump().await;
    for s in [
        first_secret.as_str(),
        second_secret.as_str(),
        "jo-password-123",
        "jo-password-456",
        "admin-password-123",
    ] {
        assert!(!dump.contains(s), "audit holds a secret");
    }
}
