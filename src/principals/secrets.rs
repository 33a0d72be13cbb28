//! Client secrets of services: created (shown once), listed as metadata,
//! deleted. Several may be live at once: the overlap is the rotation.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::PrincipalsContext;
use super::row;
use super::view::PrincipalView;
use crate::auth::secrets::{
    GeneratedSecret, Pepper, SecretString, generate_client_secret, serialize_exposed, serialize_exposed_opt,
};
use crate::db::DbConnection;
use crate::error::{Error, Result};
use crate::models::audit::{self, NewAuditEvent, Outcome};
use crate::models::client_settings;
use crate::models::principal::PrincipalKind;
use crate::models::secret::{self, ClientSecretRow};

/// Longest lifetime of a client secret: ten years.
const MAX_SECRET_LIFETIME_SECS: i64 = 10 * 365 * 24 * 3600;

pub(super) fn generate(pepper: &Pepper) -> Result<GeneratedSecret> {
    generate_client_secret(pepper).map_err(Error::internal)
}

/// A new service principal with its first client secret (its id and the
/// secret, shown once); a public client has none.
#[derive(Debug)]
pub struct CreatedService {
    pub principal: PrincipalView,
    pub secret: Option<(String, SecretString)>,
}

/// The creation response of a service: the one place its first secret is
/// serialised. `Debug` never shows it.
#[derive(Debug, Serialize)]
pub struct CreatedServiceView {
    #[serde(flatten)]
    pub principal: PrincipalView,
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "serialize_exposed_opt")]
    pub client_secret: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_id: Option<String>,
}

impl From<CreatedService> for CreatedServiceView {
    fn from(c: CreatedService) -> Self {
        let (secret_id, client_secret) = c.secret.unzip();
        Self {
            client_id: c.principal.name.clone(),
            client_secret,
            secret_id,
            principal: c.principal,
        }
    }
}

/// Metadata of a secret, never the secret.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ClientSecretView {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub use_count: i64,
}

impl From<ClientSecretRow> for ClientSecretView {
    fn from(r: ClientSecretRow) -> Self {
        Self {
            id: r.id,
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
            use_count: r.use_count,
        }
    }
}

/// A secret just created: its metadata and the secret, shown once.
#[derive(Debug, Serialize)]
pub struct NewSecretView {
    pub id: String,
    #[serde(serialize_with = "serialize_exposed")]
    pub client_secret: SecretString,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// `POST /api/v1/principals/{id}/secrets`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSecret {
    /// Seconds until the secret expires; none means it does not expire.
    pub expires_in: Option<i64>,
}

fn service_row(conn: &mut DbConnection, id: &str) -> Result<()> {
    if row(conn, id)?.kind != PrincipalKind::Service {
        return Err(Error::invalid("id", "only service principals have client secrets"));
    }
    Ok(())
}

/// A new client secret for a service. Existing secrets keep working.
fn create_secret(
    conn: &mut DbConnection,
    pepper: &Pepper,
    id: &str,
    expires_at: Option<DateTime<Utc>>,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<NewSecretView> {
    let generated = generate(pepper)?;
    crate::db::transaction(conn, |conn| {
        service_row(conn, id)?;
        if client_settings::find(conn, id)?.is_some_and(|c| c.public_client) {
            return Err(Error::Conflict(
                "a public client has no secrets: it authenticates with PKCE alone".into(),
            ));
        }
        if crate::models::client_key::find(conn, id)?.is_some_and(|k| !k.auth_method.uses_secret()) {
            return Err(Error::Conflict(
                "this service authenticates with private_key_jwt: it has no secrets".into(),
            ));
        }
        let s = secret::insert(conn, id, &generated.hash, now, expires_at)?;
        audit::record(
            conn,
            NewAuditEvent::new("secret.created", Outcome::Ok)
                .actor(actor)
                .principal(Some(id))
                .details(serde_json::json!({"secret_id": s.id, "expires_at": expires_at})),
            now,
        )?;
        Ok(NewSecretView {
            id: s.id,
            client_secret: generated.secret.clone(),
            created_at: s.created_at,
            expires_at: s.expires_at,
        })
    })
}

/// The secrets' metadata, never the secrets.
fn secrets(conn: &mut DbConnection, id: &str) -> Result<Vec<ClientSecretView>> {
    service_row(conn, id)?;
    Ok(secret::list_for(conn, id)?.into_iter().map(Into::into).collect())
}

/// Delete a secret: it stops working at once.
fn delete_secret(
    conn: &mut DbConnection,
    id: &str,
    secret_id: &str,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    crate::db::transaction(conn, |conn| {
        if !secret::delete(conn, id, secret_id)? {
            return Err(Error::NotFound(format!("secret {secret_id} of principal {id}")));
        }
        crate::models::auth_state::bump(conn)?;
        audit::record(
            conn,
            NewAuditEvent::new("secret.deleted", Outcome::Ok)
                .actor(actor)
                .principal(Some(id))
                .details(serde_json::json!({"secret_id": secret_id})),
            now,
        )
    })
}

impl PrincipalsContext {
    /// `POST /api/v1/principals/{id}/secrets`, with a bounded lifetime:
    /// rotation without downtime starts here.
    pub async fn create_secret(
        &self,
        actor: Option<&str>,
        id: String,
        body: CreateSecret,
        now: DateTime<Utc>,
    ) -> Result<NewSecretView> {
        let expires_at = match body.expires_in {
            None => None,
            Some(s) if (1..=MAX_SECRET_LIFETIME_SECS).contains(&s) => Some(now + Duration::seconds(s)),
            Some(_) => return Err(Error::invalid("expires_in", "must be 1 second to 10 years")),
        };
        let (actor, pepper) = (actor.map(str::to_string), self.pepper.clone());
        self.db
            .run(move |c| create_secret(c, &pepper, &id, expires_at, actor.as_deref(), now))
            .await
    }

    /// `GET /api/v1/principals/{id}/secrets`: metadata only.
    pub async fn secrets(&self, id: String) -> Result<Vec<ClientSecretView>> {
        self.db.run(move |c| secrets(c, &id)).await
    }

    /// `DELETE /api/v1/principals/{id}/secrets/{secret_id}`: the secret
    /// stops working at once, on this instance and (through the auth-state
    /// generation) on every other.
    pub async fn delete_secret(
        &self,
        actor: Option<&str>,
        id: String,
        secret_id: String,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let actor = actor.map(str::to_string);
        let deleted = self
            .db
            .run(move |c| delete_secret(c, &id, &secret_id, actor.as_deref(), now))
            .await;
        self.changed(now).await;
        deleted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_created_service_secret() {
        let t = Utc::now();
        let v = CreatedServiceView {
            principal: PrincipalView {
                id: "p1".into(),
                name: "billing".into(),
                kind: PrincipalKind::Service,
                display_name: None,
                email: None,
                status: crate::models::principal::PrincipalStatus::Active,
                scopes: vec![],
                categories: Some(vec![]),
                public_client: None,
                redirect_uris: None,
                post_logout_redirect_uris: None,
                credentials: None,
                token_exchange: None,
                created_at: t,
                updated_at: t,
            },
            client_id: "billing".into(),
            client_secret: Some(SecretString::new("first-secret-value")),
            secret_id: Some("s1".into()),
        };
        assert!(!format!("{v:?}").contains("first-secret-value"));
        assert_eq!(serde_json::to_value(&v).unwrap()["client_secret"], "first-secret-value");
    }

    #[test]
    fn debug_never_shows_a_new_secret() {
        let v = NewSecretView {
            id: "s1".into(),
            client_secret: SecretString::new("super-secret-value"),
            created_at: Utc::now(),
            expires_at: None,
        };
        assert!(!format!("{v:?}").contains("super-secret-value"));
        assert!(serde_json::to_string(&v).unwrap().contains("super-secret-value"));
    }
}
