//! How a service authenticates, as admins set it: its
//! `token_endpoint_auth_method` (RFC 7591 §2), its public keys for
//! `private_key_jwt` (a JWK Set or a `jwks_uri`), and the external
//! identities (issuer and subject) that stand for it. Validated, then stored
//! in the caller's transaction.

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use super::input::{CredentialChanges, FederatedSubject};
use crate::db::DbConnection;
use crate::error::{Error, Result};
use crate::models::client_key::{self, AuthMethod, ClientKeysRow};
use crate::models::client_settings;
use crate::models::federation::{self, SubjectRow};
use crate::models::{auth_state, secret};

/// How a service authenticates, as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialsView {
    pub token_endpoint_auth_method: AuthMethod,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub federated_subjects: Vec<FederatedSubject>,
}

/// What a change did, for the audit log of the change.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub method: Option<AuthMethod>,
    /// Secrets deleted because the service no longer authenticates with one.
    pub secrets_removed: usize,
}

/// Apply `changes` to service `id` (whose browser settings say
/// `public_client`), inside the caller's transaction: the method and keys
/// must agree (`private_key_jwt` needs keys or federated subjects; keys are
/// only for it; `none` is a public client), every issuer named must be
/// trusted, and a subject may stand for one service only. A service that no
/// longer authenticates with a secret loses its secrets.
pub fn apply(conn: &mut DbConnection, id: &str, changes: &CredentialChanges, now: DateTime<Utc>) -> Result<Applied> {
    if changes.is_empty() {
        return Ok(Applied::default());
    }
    changes.validate()?;
    let settings = client_settings::find(conn, id)?;
    let public_client = settings.as_ref().is_some_and(|s| s.public_client);
    let old = client_key::find(conn, id)?;
    let old_method = old.as_ref().map(|r| r.auth_method).unwrap_or(if public_client {
        AuthMethod::None
    } else {
        AuthMethod::ClientSecretPost
    });
    let method = changes.method.unwrap_or(old_method);
    let stored_jwks = old
        .as_ref()
        .and_then(|r| r.jwks.as_deref())
        .map(serde_json::from_str::<serde_json::Value>)
        .transpose()
        .map_err(|e| Error::internal(format!("a stored JWK Set: {e}")))?;
    let mut jwks = changes.jwks.clone().unwrap_or(stored_jwks);
    let mut jwks_uri = changes
        .jwks_uri
        .clone()
        .unwrap_or_else(|| old.as_ref().and_then(|r| r.jwks_uri.clone()));
    if method != AuthMethod::PrivateKeyJwt {
        if changes.jwks.as_ref().is_some_and(Option::is_some) || changes.jwks_uri.as_ref().is_some_and(Option::is_some)
        {
            return Err(Error::invalid(
                "token_endpoint_auth_method",
                "jwks and jwks_uri are for private_key_jwt",
            ));
        }
        // Switching away from keys drops them.
        jwks = None;
        jwks_uri = None;
    }
    if jwks.is_some() && jwks_uri.is_some() {
        return Err(Error::invalid("jwks", "give jwks or jwks_uri, not both"));
    }
    if let Some(subjects) = &changes.federated_subjects {
        let mut rows = Vec::with_capacity(subjects.len());
        for s in subjects {
            let issuer = federation::find_by_issuer(conn, &s.issuer)?.ok_or_else(|| {
                Error::invalid(
                    "federated_subjects",
                    format!("'{}' is not a trusted issuer: register it first", s.issuer),
                )
            })?;
            rows.push(SubjectRow {
                issuer_id: issuer.id,
                subject: s.subject.clone(),
                principal_id: id.to_string(),
                created_at: now,
            });
        }
        federation::replace_subjects(conn, id, &rows)?;
    }
    let has_subjects = !federation::subjects_of(conn, &[id.to_string()])?.is_empty();
    if method == AuthMethod::PrivateKeyJwt && jwks.is_none() && jwks_uri.is_none() && !has_subjects {
        return Err(Error::invalid(
            "jwks",
            "private_key_jwt needs jwks or jwks_uri (or federated_subjects)",
        ));
    }
    let jwks = jwks
        .map(|v| serde_json::to_string(&v))
        .transpose()
        .map_err(|e| Error::internal(format!("a JWK Set: {e}")))?;
    client_key::save(
        conn,
        &ClientKeysRow {
            principal_id: id.to_string(),
            auth_method: method,
            jwks,
            jwks_uri,
            updated_at: now,
        },
    )?;
    // `none` is the public client of the browser settings, and only it.
    if (method == AuthMethod::None) != public_client {
        let mut s = settings.unwrap_or_default();
        s.public_client = method == AuthMethod::None;
        client_settings::put(conn, id, &s, now)?;
    }
    let secrets_removed = if method.uses_secret() {
        0
    } else {
        secret::delete_all_for(conn, id)?
    };
    auth_state::bump(conn)?;
    Ok(Applied {
        method: changes.method,
        secrets_removed,
    })
}

/// How each of `ids` (services) authenticates.
pub fn views(conn: &mut DbConnection, ids: &[String]) -> Result<std::collections::HashMap<String, CredentialsView>> {
    let mut out = std::collections::HashMap::new();
    for row in client_key::find_many(conn, ids)? {
        let jwks = row
            .jwks
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| Error::internal(format!("a stored JWK Set: {e}")))?;
        out.insert(
            row.principal_id.clone(),
            CredentialsView {
                token_endpoint_auth_method: row.auth_method,
                jwks,
                jwks_uri: row.jwks_uri,
                federated_subjects: Vec::new(),
            },
        );
    }
    for (principal_id, issuer, subject) in federation::subjects_of(conn, ids)? {
        out.entry(principal_id)
            .or_insert_with(|| CredentialsView {
                token_endpoint_auth_method: AuthMethod::ClientSecretPost,
                jwks: None,
                jwks_uri: None,
                federated_subjects: Vec::new(),
            })
            .federated_subjects
            .push(FederatedSubject { issuer, subject });
    }
    Ok(out)
}
