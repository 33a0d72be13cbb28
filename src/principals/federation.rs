//! Trusted issuers of workload identities, as admins manage them: an
//! issuer's tokens (a Kubernetes projected service-account token, a SPIFFE
//! JWT-SVID, a CI platform's OIDC token) stand for the services whose
//! `federated_subjects` name them. Every change is audited and moves the
//! authentication generation, so every instance forgets the old keys.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::PrincipalsContext;
use super::input::validate_redirect_uri;
use crate::db::DbConnection;
use crate::error::{Error, Result};
use crate::models::audit::{self, NewAuditEvent, Outcome};
use crate::models::auth_state;
use crate::models::federation::{self, IssuerRow};
use crate::models::new_id;

/// The longest token lifetime accepted by default: one hour, Kubernetes'
/// default for projected service-account tokens.
pub const DEFAULT_MAX_LIFETIME_SECS: i32 = 3600;
/// The longest token lifetime an admin may accept: one day.
pub const MAX_MAX_LIFETIME_SECS: i32 = 24 * 3600;
/// Longest issuer identifier or audience, in bytes.
pub const MAX_IDENTIFIER_LEN: usize = 500;

/// `POST /api/v1/federation/issuers`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateIssuer {
    pub issuer: String,
    pub audience: String,
    pub jwks: Option<serde_json::Value>,
    pub jwks_uri: Option<String>,
    pub max_lifetime_secs: Option<i32>,
}

/// `PATCH /api/v1/federation/issuers/{id}`: a missing field stays as it
/// is; give `jwks` or `jwks_uri` to replace the keys.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchIssuer {
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub jwks: Option<serde_json::Value>,
    pub jwks_uri: Option<String>,
    pub max_lifetime_secs: Option<i32>,
}

/// A trusted issuer, as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssuerView {
    pub id: String,
    pub issuer: String,
    pub audience: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    pub max_lifetime_secs: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<IssuerRow> for IssuerView {
    type Error = Error;
    fn try_from(r: IssuerRow) -> Result<Self> {
        Ok(Self {
            jwks: r
                .jwks
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| Error::internal(format!("a stored JWK Set: {e}")))?,
            id: r.id,
            issuer: r.issuer,
            audience: r.audience,
            jwks_uri: r.jwks_uri,
            max_lifetime_secs: r.max_lifetime_secs,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

fn validate_identifier(field: &str, value: &str) -> Result<()> {
    if value.is_empty()
        || value.len() > MAX_IDENTIFIER_LEN
        || value.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(Error::invalid(
            field,
            format!("must be 1 to {MAX_IDENTIFIER_LEN} bytes without spaces or control characters"),
        ));
    }
    Ok(())
}

/// Check a row before it is stored: identifiers, exactly one of the key
/// sources, and a bounded lifetime.
fn validate(row: &IssuerRow) -> Result<()> {
    validate_identifier("issuer", &row.issuer)?;
    // A URL (https://…, spiffe://…): never the name of a client, whose
    // own assertions carry its name as iss.
    if url::Url::parse(&row.issuer).is_err() {
        return Err(Error::invalid(
            "issuer",
            "must be an absolute URL, as its tokens' iss is",
        ));
    }
    validate_identifier("audience", &row.audience)?;
    match (&row.jwks, &row.jwks_uri) {
        (Some(_), Some(_)) => return Err(Error::invalid("jwks", "give jwks or jwks_uri, not both")),
        (None, None) => return Err(Error::invalid("jwks", "give the issuer's jwks or jwks_uri")),
        (None, Some(uri)) => validate_redirect_uri("jwks_uri", uri)?,
        (Some(_), None) => {}
    }
    if !(1..=MAX_MAX_LIFETIME_SECS).contains(&row.max_lifetime_secs) {
        return Err(Error::invalid(
            "max_lifetime_secs",
            format!("must be 1 to {MAX_MAX_LIFETIME_SECS} seconds"),
        ));
    }
    Ok(())
}

/// A JWK Set sent by an admin, checked and kept as JSON text.
fn key_set(value: &serde_json::Value) -> Result<String> {
    crate::auth::assertion::check_key_set(value).map_err(|e| Error::invalid("jwks", e))?;
    serde_json::to_string(value).map_err(|e| Error::internal(format!("a JWK Set: {e}")))
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("trusted issuer {id}"))
}

fn audited(
    conn: &mut DbConnection,
    event: &'static str,
    row: &IssuerRow,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    audit::record(
        conn,
        NewAuditEvent::new(event, Outcome::Ok)
            .actor(actor)
            .details(serde_json::json!({
                "issuer_id": row.id,
                "issuer": row.issuer,
                "audience": row.audience,
                "jwks_uri": row.jwks_uri,
                "max_lifetime_secs": row.max_lifetime_secs,
            })),
        now,
    )
}

fn create_issuer(
    conn: &mut DbConnection,
    body: &CreateIssuer,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<IssuerView> {
    let row = IssuerRow {
        id: new_id(),
        issuer: body.issuer.clone(),
        audience: body.audience.clone(),
        jwks: body.jwks.as_ref().map(key_set).transpose()?,
        jwks_uri: body.jwks_uri.clone(),
        max_lifetime_secs: body.max_lifetime_secs.unwrap_or(DEFAULT_MAX_LIFETIME_SECS),
        created_at: now,
        updated_at: now,
    };
    validate(&row)?;
    crate::db::transaction(conn, |conn| {
        federation::insert(conn, &row)?;
        auth_state::bump(conn)?;
        audited(conn, "federation.issuer_created", &row, actor, now)
    })?;
    row.try_into()
}

fn update_issuer(
    conn: &mut DbConnection,
    id: &str,
    patch: &PatchIssuer,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<IssuerView> {
    let jwks = patch.jwks.as_ref().map(key_set).transpose()?;
    crate::db::transaction(conn, |conn| {
        let mut row = federation::find(conn, id)?.ok_or_else(|| not_found(id))?;
        if let Some(issuer) = &patch.issuer {
            row.issuer = issuer.clone();
        }
        if let Some(audience) = &patch.audience {
            row.audience = audience.clone();
        }
        if patch.jwks.is_some() || patch.jwks_uri.is_some() {
            row.jwks = jwks.clone();
            row.jwks_uri = patch.jwks_uri.clone();
        }
        if let Some(secs) = patch.max_lifetime_secs {
            row.max_lifetime_secs = secs;
        }
        row.updated_at = now;
        validate(&row)?;
        federation::save(conn, &row)?;
        auth_state::bump(conn)?;
        audited(conn, "federation.issuer_updated", &row, actor, now)?;
        Ok::<_, Error>(row.clone())
    })?
    .try_into()
}

/// Delete an issuer no service names any more: a 409 lists how many still do.
fn delete_issuer(conn: &mut DbConnection, id: &str, actor: Option<&str>, now: DateTime<Utc>) -> Result<()> {
    crate::db::transaction(conn, |conn| {
        let row = federation::find(conn, id)?.ok_or_else(|| not_found(id))?;
        let used = federation::subject_count(conn, id)?;
        if used > 0 {
            return Err(Error::Conflict(format!(
                "{used} federated subject(s) of services still name this issuer: remove them first"
            )));
        }
        federation::delete(conn, id)?;
        auth_state::bump(conn)?;
        audited(conn, "federation.issuer_deleted", &row, actor, now)
    })
}

impl PrincipalsContext {
    /// `POST /api/v1/federation/issuers`.
    pub async fn create_issuer(
        &self,
        actor: Option<&str>,
        body: CreateIssuer,
        now: DateTime<Utc>,
    ) -> Result<IssuerView> {
        let actor = actor.map(str::to_string);
        let made = self
            .db
            .run(move |c| create_issuer(c, &body, actor.as_deref(), now))
            .await;
        self.changed(now).await;
        made
    }

    /// `GET /api/v1/federation/issuers`.
    pub async fn issuers(&self) -> Result<Vec<IssuerView>> {
        self.db
            .run(|c| federation::list(c)?.into_iter().map(TryInto::try_into).collect())
            .await
    }

    /// `GET /api/v1/federation/issuers/{id}`.
    pub async fn issuer(&self, id: String) -> Result<IssuerView> {
        self.db
            .run(move |c| federation::find(c, &id)?.ok_or_else(|| not_found(&id))?.try_into())
            .await
    }

    /// `PATCH /api/v1/federation/issuers/{id}`.
    pub async fn update_issuer(
        &self,
        actor: Option<&str>,
        id: String,
        patch: PatchIssuer,
        now: DateTime<Utc>,
    ) -> Result<IssuerView> {
        let actor = actor.map(str::to_string);
        let changed = self
            .db
            .run(move |c| update_issuer(c, &id, &patch, actor.as_deref(), now))
            .await;
        self.changed(now).await;
        changed
    }

    /// `DELETE /api/v1/federation/issuers/{id}`.
    pub async fn delete_issuer(&self, actor: Option<&str>, id: String, now: DateTime<Utc>) -> Result<()> {
        let actor = actor.map(str::to_string);
        let deleted = self.db.run(move |c| delete_issuer(c, &id, actor.as_deref(), now)).await;
        self.changed(now).await;
        deleted
    }
}
