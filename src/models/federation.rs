//! Trusted issuers of workload identities (Kubernetes, SPIFFE, CI platforms)
//! and the external subjects that stand for a service. Rows and queries only.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::db::schema::{federated_issuers, federated_subjects};
use crate::db::time::UtcTimestamp;
use crate::db::{DbConnection, Fault};
use crate::error::{Error, Result};

/// A `federated_issuers` row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = federated_issuers, treat_none_as_null = true)]
pub struct IssuerRow {
    pub id: String,
    /// The `iss` its tokens carry, exactly.
    pub issuer: String,
    /// The `aud` its tokens must carry to be accepted by Roster.
    pub audience: String,
    /// A public JWK Set, as JSON.
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    /// The longest `exp - iat` accepted.
    pub max_lifetime_secs: i32,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub created_at: DateTime<Utc>,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub updated_at: DateTime<Utc>,
}

/// A `federated_subjects` row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = federated_subjects)]
pub struct SubjectRow {
    pub issuer_id: String,
    pub subject: String,
    pub principal_id: String,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub created_at: DateTime<Utc>,
}

/// A write refused because another issuer has the identifier: a conflict.
fn taken(e: diesel::result::Error, row: &IssuerRow) -> Error {
    match crate::db::classify(&e) {
        Fault::UniqueViolation => Error::Conflict(format!("the issuer '{}' is already trusted", row.issuer)),
        _ => e.into(),
    }
}

/// Insert an issuer; an issuer identifier already registered is a conflict.
pub fn insert(conn: &mut DbConnection, row: &IssuerRow) -> Result<()> {
    diesel::insert_into(federated_issuers::table)
        .values(row.clone())
        .execute(conn)
        .map_err(|e| taken(e, row))?;
    Ok(())
}

/// Write every column of an issuer; an identifier taken by another is a conflict.
pub fn save(conn: &mut DbConnection, row: &IssuerRow) -> Result<()> {
    diesel::update(federated_issuers::table.find(&row.id))
        .set(row.clone())
        .execute(conn)
        .map_err(|e| taken(e, row))?;
    Ok(())
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<IssuerRow>> {
    Ok(federated_issuers::table
        .find(id)
        .select(IssuerRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_by_issuer(conn: &mut DbConnection, issuer: &str) -> Result<Option<IssuerRow>> {
    Ok(federated_issuers::table
        .filter(federated_issuers::issuer.eq(issuer))
        .select(IssuerRow::as_select())
        .first(conn)
        .optional()?)
}

/// Every issuer, by identifier.
pub fn list(conn: &mut DbConnection) -> Result<Vec<IssuerRow>> {
    Ok(federated_issuers::table
        .select(IssuerRow::as_select())
        .order(federated_issuers::issuer.asc())
        .load(conn)?)
}

/// Delete an issuer that no subject names; false when there is none.
pub fn delete(conn: &mut DbConnection, id: &str) -> Result<bool> {
    Ok(diesel::delete(federated_issuers::table.find(id)).execute(conn)? == 1)
}

/// How many subjects of an issuer map to a service.
pub fn subject_count(conn: &mut DbConnection, issuer_id: &str) -> Result<i64> {
    Ok(federated_subjects::table
        .filter(federated_subjects::issuer_id.eq(issuer_id))
        .count()
        .get_result(conn)?)
}

/// The principal a subject of an issuer stands for.
pub fn principal_for(conn: &mut DbConnection, issuer_id: &str, subject: &str) -> Result<Option<String>> {
    Ok(federated_subjects::table
        .find((issuer_id, subject))
        .select(federated_subjects::principal_id)
        .first(conn)
        .optional()?)
}

/// The `(issuer, subject)` pairs of principals, as (principal id, issuer identifier, subject).
pub fn subjects_of(conn: &mut DbConnection, principal_ids: &[String]) -> Result<Vec<(String, String, String)>> {
    Ok(federated_subjects::table
        .inner_join(federated_issuers::table)
        .filter(federated_subjects::principal_id.eq_any(principal_ids))
        .select((
            federated_subjects::principal_id,
            federated_issuers::issuer,
            federated_subjects::subject,
        ))
        .order((federated_issuers::issuer.asc(), federated_subjects::subject.asc()))
        .load(conn)?)
}

/// Replace a principal's subjects (inside the caller's transaction). A
/// subject that already stands for another principal is a conflict.
pub fn replace_subjects(conn: &mut DbConnection, principal_id: &str, rows: &[SubjectRow]) -> Result<()> {
    diesel::delete(federated_subjects::table.filter(federated_subjects::principal_id.eq(principal_id)))
        .execute(conn)?;
    for row in rows {
        diesel::insert_into(federated_subjects::table)
            .values(row.clone())
            .execute(conn)
            .map_err(|e| match crate::db::classify(&e) {
                Fault::UniqueViolation => Error::Conflict(format!(
                    "the subject '{}' already stands for another principal",
                    row.subject
                )),
                _ => e.into(),
            })?;
    }
    Ok(())
}
