//! Principal rows: people and services in one table, with their scopes and
//! category memberships. Rows and queries only; the rules live in `crate::principals`.

use std::collections::HashMap;
use std::str::FromStr;

use crate::db::time::{NullableUtcTimestamp, UtcTimestamp};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::schema::{categories, principal_scopes, principals, service_categories};
use crate::db::{DbConnection, Fault};
use crate::error::{Error, Result};

use super::{new_id, to_db_time};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    Human,
    Service,
}

stored_as_name!(PrincipalKind { Human => "human", Service => "service" });

impl FromStr for PrincipalKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::from_name(s).ok_or_else(|| Error::invalid("kind", format!("unknown kind '{s}': use human or service")))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalStatus {
    Active,
    Disabled,
}

stored_as_name!(PrincipalStatus { Active => "active", Disabled => "disabled" });

impl FromStr for PrincipalStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::from_name(s)
            .ok_or_else(|| Error::invalid("status", format!("unknown status '{s}': use active or disabled")))
    }
}

/// A principal row as stored.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, Identifiable)]
#[diesel(table_name = principals)]
pub struct Principal {
    pub id: String,
    #[diesel(serialize_as = String, deserialize_as = String)]
    pub kind: PrincipalKind,
    pub name: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    #[diesel(serialize_as = String, deserialize_as = String)]
    pub status: PrincipalStatus,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub created_at: DateTime<Utc>,
    #[diesel(serialize_as = UtcTimestamp, deserialize_as = UtcTimestamp)]
    pub updated_at: DateTime<Utc>,
    /// Access tokens issued at or before this second are dead for good: set
    /// when the principal is disabled, so re-enabling revives none of them.
    #[diesel(serialize_as = NullableUtcTimestamp, deserialize_as = NullableUtcTimestamp)]
    pub tokens_not_before: Option<DateTime<Utc>>,
}

impl Principal {
    /// Was an access token issued at `iat` (seconds) killed by a disable?
    pub fn killed_token(&self, iat: i64) -> bool {
        self.tokens_not_before.is_some_and(|t| iat <= t.timestamp())
    }

    pub fn is_active(&self) -> bool {
        self.status == PrincipalStatus::Active
    }
}

pub use roster_proto::registration::CategoryAssignment;

// ---- queries --------------------------------------------------------------

/// Insert a principal row. A taken name is [`Error::Conflict`].
pub fn insert(conn: &mut DbConnection, row: &Principal) -> Result<()> {
    diesel::insert_into(principals::table)
        .values(row.clone())
        .execute(conn)
        .map_err(|e| match crate::db::classify(&e) {
            Fault::UniqueViolation => Error::Conflict(format!("a principal named '{}' already exists", row.name)),
            _ => e.into(),
        })?;
    Ok(())
}

/// Set the editable columns of a principal.
pub fn update_profile(
    conn: &mut DbConnection,
    id: &str,
    display_name: Option<&str>,
    email: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    diesel::update(principals::table.find(id))
        .set((
            principals::display_name.eq(display_name),
            principals::email.eq(email),
            principals::updated_at.eq(to_db_time(now)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Set a principal's status. Disabling also marks every access token issued
/// until `now` dead. Returns false when there is no such principal.
pub fn set_status(conn: &mut DbConnection, id: &str, status: PrincipalStatus, now: DateTime<Utc>) -> Result<bool> {
    let t = to_db_time(now);
    let n = match status {
        PrincipalStatus::Disabled => diesel::update(principals::table.find(id))
            .set((
                principals::status.eq(status.as_str()),
                principals::updated_at.eq(t),
                principals::tokens_not_before.eq(Some(t)),
            ))
            .execute(conn)?,
        PrincipalStatus::Active => diesel::update(principals::table.find(id))
            .set((principals::status.eq(status.as_str()), principals::updated_at.eq(t)))
            .execute(conn)?,
    };
    Ok(n == 1)
}

/// Replace the scopes of a principal.
pub fn set_scopes(conn: &mut DbConnection, principal_id: &str, scopes: &[String]) -> Result<()> {
    diesel::delete(principal_scopes::table.filter(principal_scopes::principal_id.eq(principal_id))).execute(conn)?;
    let mut scopes: Vec<&String> = scopes.iter().collect();
    scopes.sort();
    scopes.dedup();
    for scope in scopes {
        diesel::insert_into(principal_scopes::table)
            .values((
                principal_scopes::principal_id.eq(principal_id),
                principal_scopes::scope.eq(scope),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Replace the category memberships of a service, creating categories on first use.
pub fn set_categories(
    conn: &mut DbConnection,
    principal_id: &str,
    assignments: &[CategoryAssignment],
    now: DateTime<Utc>,
) -> Result<()> {
    let now = to_db_time(now);
    diesel::delete(service_categories::table.filter(service_categories::principal_id.eq(principal_id)))
        .execute(conn)?;
    for a in assignments {
        let category_id = ensure_category(conn, &a.name, now)?;
        diesel::insert_into(service_categories::table)
            .values((
                service_categories::principal_id.eq(principal_id),
                service_categories::category_id.eq(&category_id),
                service_categories::priority.eq(a.priority),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The id of the category `name`, inserting it when missing. The insert runs in
/// a savepoint so that a concurrent insert of the same name is not fatal.
fn ensure_category(conn: &mut DbConnection, name: &str, now: NaiveDateTime) -> Result<String> {
    let existing = categories::table
        .filter(categories::name.eq(name))
        .select(categories::id)
        .first::<String>(conn)
        .optional()?;
    if let Some(id) = existing {
        return Ok(id);
    }
    let id = new_id();
    let inserted = conn.transaction(|conn| {
        diesel::insert_into(categories::table)
            .values((
                categories::id.eq(&id),
                categories::name.eq(name),
                categories::created_at.eq(now),
            ))
            .execute(conn)
    });
    match inserted {
        Ok(_) => Ok(id),
        Err(ref e) if crate::db::classify(e) == Fault::UniqueViolation => Ok(categories::table
            .filter(categories::name.eq(name))
            .select(categories::id)
            .first::<String>(conn)?),
        Err(e) => Err(e.into()),
    }
}

pub fn find_by_name(conn: &mut DbConnection, name: &str) -> Result<Option<Principal>> {
    Ok(principals::table
        .filter(principals::name.eq(name))
        .select(Principal::as_select())
        .first(conn)
        .optional()?)
}

/// Lock a principal's row for the rest of the transaction (a write that
/// changes nothing: PostgreSQL's row lock; SQLite holds its one write lock
/// from the start), so that decisions about that principal made by
/// concurrent transactions run one at a time. False when there is no row.
pub fn lock(conn: &mut DbConnection, id: &str) -> Result<bool> {
    Ok(diesel::update(principals::table.find(id))
        .set(principals::status.eq(principals::status))
        .execute(conn)?
        == 1)
}

pub fn find_by_id(conn: &mut DbConnection, id: &str) -> Result<Option<Principal>> {
    Ok(principals::table
        .find(id)
        .select(Principal::as_select())
        .first(conn)
        .optional()?)
}

pub fn scopes_of(conn: &mut DbConnection, principal_id: &str) -> Result<Vec<String>> {
    Ok(principal_scopes::table
        .filter(principal_scopes::principal_id.eq(principal_id))
        .select(principal_scopes::scope)
        .order(principal_scopes::scope.asc())
        .load(conn)?)
}

pub fn categories_of(conn: &mut DbConnection, principal_id: &str) -> Result<Vec<CategoryAssignment>> {
    let rows: Vec<(String, i32)> = service_categories::table
        .inner_join(categories::table)
        .filter(service_categories::principal_id.eq(principal_id))
        .select((categories::name, service_categories::priority))
        .order(categories::name.asc())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(name, priority)| CategoryAssignment { name, priority })
        .collect())
}

/// Is there any principal holding `scope`?
pub fn any_with_scope(conn: &mut DbConnection, scope: &str) -> Result<bool> {
    let n: i64 = principal_scopes::table
        .filter(principal_scopes::scope.eq(scope))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// The scopes granted to any principal.
pub fn all_granted_scopes(conn: &mut DbConnection) -> Result<Vec<String>> {
    Ok(principal_scopes::table
        .select(principal_scopes::scope)
        .distinct()
        .order(principal_scopes::scope.asc())
        .load(conn)?)
}

/// All principals, ordered by name.
pub fn list_all(conn: &mut DbConnection) -> Result<Vec<Principal>> {
    Ok(principals::table
        .select(Principal::as_select())
        .order(principals::name.asc())
        .load(conn)?)
}

/// The scopes of many principals, by principal id, sorted.
pub fn scopes_by_principal(conn: &mut DbConnection, ids: &[String]) -> Result<HashMap<String, Vec<String>>> {
    let mut scopes: HashMap<String, Vec<String>> = HashMap::new();
    for (pid, scope) in principal_scopes::table
        .filter(principal_scopes::principal_id.eq_any(ids))
        .select((principal_scopes::principal_id, principal_scopes::scope))
        .order((principal_scopes::principal_id.asc(), principal_scopes::scope.asc()))
        .load::<(String, String)>(conn)?
    {
        scopes.entry(pid).or_default().push(scope);
    }
    Ok(scopes)
}

/// The category memberships of many principals, by principal id, by name.
pub fn categories_by_principal(
    conn: &mut DbConnection,
    ids: &[String],
) -> Result<HashMap<String, Vec<CategoryAssignment>>> {
    let mut cats: HashMap<String, Vec<CategoryAssignment>> = HashMap::new();
    for (pid, name, priority) in service_categories::table
        .inner_join(categories::table)
        .filter(service_categories::principal_id.eq_any(ids))
        .select((
            service_categories::principal_id,
            categories::name,
            service_categories::priority,
        ))
        .order((service_categories::principal_id.asc(), categories::name.asc()))
        .load::<(String, String, i32)>(conn)?
    {
        cats.entry(pid).or_default().push(CategoryAssignment { name, priority });
    }
    Ok(cats)
}

/// Filters of the principal list.
#[derive(Debug, Clone, Default)]
pub struct PrincipalFilter {
    pub kind: Option<PrincipalKind>,
    pub status: Option<PrincipalStatus>,
    pub category: Option<String>,
    /// Name prefix.
    pub q: Option<String>,
}

/// One page of principals by name, after the name `after`.
pub fn list_page(
    conn: &mut DbConnection,
    filter: &PrincipalFilter,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Principal>> {
    let mut query = principals::table.select(Principal::as_select()).into_boxed();
    if let Some(kind) = filter.kind {
        query = query.filter(principals::kind.eq(kind.as_str()));
    }
    if let Some(status) = filter.status {
        query = query.filter(principals::status.eq(status.as_str()));
    }
    if let Some(q) = &filter.q {
        let escaped = q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        query = query.filter(principals::name.like(format!("{escaped}%")).escape('\\'));
    }
    if let Some(category) = &filter.category {
        let members = service_categories::table
            .inner_join(categories::table)
            .filter(categories::name.eq(category.clone()))
            .select(service_categories::principal_id);
        query = query.filter(principals::id.eq_any(members));
    }
    if let Some(after) = after {
        query = query.filter(principals::name.gt(after.to_string()));
    }
    Ok(query.order(principals::name.asc()).limit(limit).load(conn)?)
}
