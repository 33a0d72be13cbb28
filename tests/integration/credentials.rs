//! Client secrets verify in the store on both backends; wrong, expired and
//! deleted ones fail.

use chrono::Duration;
use roster::auth::client::{self, ClientAuthFailure};
use roster::auth::secrets::SecretString;
use roster::models::principal::PrincipalKind;
use roster::models::secret;
use roster::principals::NewPrincipal;

use crate::on_both_backends;
use crate::support::{Backend, TestApp, t0};

fn service(name: &str) -> NewPrincipal {
    NewPrincipal {
        kind: PrincipalKind::Service,
        name: name.into(),
        display_name: None,
        email: None,
        scopes: vec!["mail:send".into()],
        categories: vec![],
    }
}

on_both_backends!(client_secrets_verify_and_wrong_or_deleted_ones_fail);

async fn client_secrets_verify_and_wrong_or_deleted_ones_fail(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let pepper = app.state.oauth().pepper.clone();
    let now = t0();
    app.query(move |conn| {
        let created = roster::principals::create_service(conn, &pepper, &service("mailer"), None, now)?;
        let good = created.client_secret.clone();
        let ok = client::authenticate(conn, &pepper, "mailer", &good, now)?.unwrap();
        assert_eq!(ok.principal.name, "mailer");
        assert_eq!(ok.secret_id, created.secret_id);
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
        assert!(secret::delete(conn, &ok.principal.id, &created.secret_id)?);
        assert_eq!(
            fail(client::authenticate(conn, &pepper, "mailer", &good, now)?),
            Some(ClientAuthFailure::WrongSecret)
        );
        Ok(())
    })
    .await;
}
