//! What clients see of a principal: the row with its scopes and, for a
//! service, its categories.

use super::credentials::CredentialsView;
use crate::models::client_key::AuthMethod;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::DbConnection;
use crate::error::{Error, Result};
use crate::models::client_settings::{self, ClientSettings};
use crate::models::principal::{self, CategoryAssignment, Principal, PrincipalKind};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PrincipalView {
    pub id: String,
    pub name: String,
    pub kind: PrincipalKind,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub status: crate::models::principal::PrincipalStatus,
    pub scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<CategoryAssignment>>,
    /// A service's browser-login settings, when it has any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_client: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_uris: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// A service's way of authenticating (`token_endpoint_auth_method`,
    /// `jwks`, `jwks_uri`, `federated_subjects`).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<CredentialsView>,
    /// A service's token exchange policy (RFC 8693), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_exchange: Option<crate::models::token_exchange::ExchangePolicy>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The view of one principal row.
pub fn one(conn: &mut DbConnection, p: Principal) -> Result<PrincipalView> {
    let id = p.id.clone();
    many(conn, vec![p])?
        .pop()
        .ok_or_else(|| Error::NotFound(format!("principal {id}")))
}

/// Views of many principals with two extra queries, not two per principal.
pub fn many(conn: &mut DbConnection, rows: Vec<Principal>) -> Result<Vec<PrincipalView>> {
    let ids: Vec<String> = rows.iter().map(|p| p.id.clone()).collect();
    let mut scopes = principal::scopes_by_principal(conn, &ids)?;
    let mut cats = principal::categories_by_principal(conn, &ids)?;
    let mut clients: std::collections::HashMap<String, ClientSettings> =
        client_settings::find_many(conn, &ids)?.into_iter().collect();
    let mut credentials = super::credentials::views(conn, &ids)?;
    let mut policies: std::collections::HashMap<String, _> = crate::models::token_exchange::find_many(conn, &ids)?
        .into_iter()
        .collect();
    rows.into_iter()
        .map(|p| {
            let kind = p.kind;
            let client = clients.remove(&p.id);
            let credentials = match kind {
                PrincipalKind::Service => Some(credentials.remove(&p.id).unwrap_or(CredentialsView {
                    token_endpoint_auth_method: if client.as_ref().is_some_and(|c| c.public_client) {
                        AuthMethod::None
                    } else {
                        AuthMethod::ClientSecretPost
                    },
                    jwks: None,
                    jwks_uri: None,
                    federated_subjects: Vec::new(),
                })),
                PrincipalKind::Human => None,
            };
            Ok(PrincipalView {
                credentials,
                token_exchange: policies.remove(&p.id),
                public_client: client.as_ref().map(|c| c.public_client),
                post_logout_redirect_uris: client.as_ref().map(|c| c.post_logout_redirect_uris.clone()),
                redirect_uris: client.map(|c| c.redirect_uris),
                scopes: scopes.remove(&p.id).unwrap_or_default(),
                categories: match kind {
                    PrincipalKind::Service => Some(cats.remove(&p.id).unwrap_or_default()),
                    PrincipalKind::Human => None,
                },
                id: p.id,
                name: p.name,
                kind,
                display_name: p.display_name,
                email: p.email,
                status: p.status,
                created_at: p.created_at,
                updated_at: p.updated_at,
            })
        })
        .collect()
}
