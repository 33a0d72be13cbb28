//! The domain handles called directly, below HTTP, on a test database of
//! either backend: principal management, the refresh grant's rotation and
//! replay detection, the authorization code's single use, and introspection
//! after a revocation. The same methods the HTTP handlers and the CLI call.

use roster::auth::secrets::SecretString;
use roster::models::principal::{PrincipalKind, PrincipalStatus};
use roster::oauth::request::{ClientCredentials, TokenRequest};
use roster::principals::{CreatePrincipal, Created, ListQuery, PatchPrincipal};
use serde_json::json;

use crate::on_both_backends;
use crate::support::{Backend, TestApp};

on_both_backends!(
    principals_are_created_changed_listed_and_disabled,
    a_refresh_token_rotates_and_a_replay_ends_its_family,
    introspection_follows_revocation,
);

fn service(name: &str, scopes: &[&str]) -> CreatePrincipal {
    CreatePrincipal {
        kind: PrincipalKind::Service,
        name: name.into(),
        display_name: None,
        email: None,
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        password: None,
        invite: false,
        categories: Vec::new(),
        public_client: false,
        redirect_uris: Vec::new(),
        post_logout_redirect_uris: Vec::new(),
        token_endpoint_auth_method: None,
        jwks: None,
        jwks_uri: None,
        federated_subjects: None,
        token_exchange: None,
    }
}

async fn principals_are_created_changed_listed_and_disabled(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.create_human("ops", "correct horse battery", &["admin"]).await;
    let (ctx, now) = (app.state.principals(), app.clock.now());
    let tester = Some(admin.as_str());
    let Created::Service(billing) = ctx.create(tester, service("billing", &["a"]), now).await.unwrap() else {
        panic!("a service")
    };
    assert!(billing.client_secret.is_some());
    let refused = ctx.create(None, service("billing", &[]), now).await.unwrap_err();
    assert_eq!(refused.to_string(), "a principal named 'billing' already exists");
    let mut human = service("alice", &[]);
    human.kind = PrincipalKind::Human;
    let refused = ctx.create(None, human.clone(), now).await.unwrap_err();
    assert_eq!(
        refused.to_string(),
        "password: a human principal needs a password, or \"invite\": true for a link to register a passkey"
    );
    human.password = Some(SecretString::new("correct horse battery"));
    let alice = ctx.create(None, human, now).await.unwrap();

    let id = billing.principal.id.clone();
    let patch: PatchPrincipal =
        serde_json::from_value(json!({"scopes": ["a", "b"], "display_name": "Billing"})).unwrap();
    let changed = ctx.update(tester, id.clone(), patch, now).await.unwrap();
    assert_eq!(
        (changed.scopes, changed.display_name.as_deref()),
        (vec!["a".to_string(), "b".to_string()], Some("Billing"))
    );
    let page = ctx
        .list(ListQuery {
            kind: Some(PrincipalKind::Service),
            ..Default::default()
        })
        .await
        .unwrap();
    let names: Vec<&str> = page.items.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["billing"], "ops and alice are people");

    let disabled = ctx
        .set_status(tester, id.clone(), PrincipalStatus::Disabled, now)
        .await
        .unwrap();
    assert_eq!(disabled.status, PrincipalStatus::Disabled);
    assert_eq!(ctx.get(id.clone()).await.unwrap().status, PrincipalStatus::Disabled);
    let missing = ctx.get("nobody".into()).await.unwrap_err();
    assert_eq!(missing.to_string(), "principal nobody not found");
    // Every change is audited, with its actor.
    let audit = app.query(|c| roster::models::audit::recent(c, 1000)).await;
    let of_billing: Vec<(&str, Option<&str>)> = audit
        .iter()
        .rev()
        .filter(|e| e.principal_id.as_deref() == Some(id.as_str()))
        .map(|e| (e.event_type.as_str(), e.actor_id.as_deref()))
        .collect();
    assert_eq!(
        of_billing,
        [
            ("principal.created", tester),
            ("secret.created", tester),
            ("principal.updated", tester),
            ("principal.disabled", tester),
        ]
    );
    assert_eq!(alice.id().len(), 36);
}

async fn a_refresh_token_rotates_and_a_replay_ends_its_family(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_human("alice", "correct horse battery", &["notes"]).await;
    let (oauth, now) = (app.state.oauth(), app.clock.now());
    let login = TokenRequest::Password {
        username: "alice".into(),
        password: SecretString::new("correct horse battery"),
        scope: None,
        resource: None,
    };
    let first = oauth.token(login, ClientCredentials::None, None, now).await.unwrap();
    let refresh = |token: &SecretString| TokenRequest::RefreshToken {
        refresh_token: token.clone(),
        scope: None,
    };
    let spent = first.refresh_token.clone().unwrap();
    let second = oauth
        .token(refresh(&spent), ClientCredentials::None, None, now)
        .await
        .unwrap();
    assert_eq!(second.scope, "notes");
    let rotated = second.refresh_token.clone().unwrap();
    assert_ne!(rotated.expose(), spent.expose());

    // The spent token comes back: refused, and the family it began ends.
    let replay = oauth
        .token(refresh(&spent), ClientCredentials::None, None, now)
        .await
        .unwrap_err();
    assert_eq!(
        (replay.code().as_str(), replay.description()),
        ("invalid_grant", "the refresh token is invalid, expired or revoked")
    );
    let after = oauth
        .token(refresh(&rotated), ClientCredentials::None, None, now)
        .await
        .unwrap_err();
    assert_eq!(after.code().as_str(), "invalid_grant");
}

async fn introspection_follows_revocation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let svc = app.create_service("billing", &["invoices:read"]).await;
    let (oauth, now) = (app.state.oauth(), app.clock.now());
    let creds = || ClientCredentials::Basic {
        client_id: "billing".into(),
        secret: SecretString::new(svc.secret.clone()),
    };
    let issued = oauth
        .token(
            TokenRequest::ClientCredentials {
                scope: None,
                resource: None,
            },
            creds(),
            None,
            now,
        )
        .await
        .unwrap();
    let token = issued.access_token.expose().to_string();
    let active = oauth.introspect(creds(), Some(token.clone()), None, now).await.unwrap();
    assert!(active.active);
    assert_eq!(active.token.as_ref().map(|t| t.scope.as_str()), Some("invoices:read"));

    oauth.revoke(creds(), Some(token.clone()), None, now).await.unwrap();
    let inactive = oauth.introspect(creds(), Some(token), None, now).await.unwrap();
    assert_eq!(serde_json::to_value(&inactive).unwrap(), json!({"active": false}));

    // A client that cannot authenticate learns nothing.
    let wrong = ClientCredentials::Basic {
        client_id: "billing".into(),
        secret: SecretString::new("wrong"),
    };
    let refused = oauth.introspect(wrong, Some("x".into()), None, now).await.unwrap_err();
    assert_eq!(refused.code().as_str(), "invalid_client");
}
