//! Principals: people and services in one table.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::DbConnection;
use crate::db::schema::{categories, principal_scopes, principals, service_categories};
use crate::error::{Error, Result};

use super::{from_db_time, new_id, to_db_time};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    Human,
    Service,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Human => "human",
            Self::Service => "service",
        }
    }
}

impl fmt::Display for PrincipalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PrincipalKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "human" => Ok(Self::Human),
            "service" => Ok(Self::Service),
            other => Err(Error::invalid(
                "kind",
                format!("unknown kind '{other}': use human or service"),
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalStatus {
    Active,
    Disabled,
}

impl PrincipalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }
}

impl FromStr for PrincipalStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "active" => Ok(Self::Active),
            "disabled" => Ok(Self::Disabled),
            other => Err(Error::invalid(
                "status",
                format!("unknown status '{other}': use active or disabled"),
            )),
        }
    }
}

/// A principal row as stored.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, Identifiable)]
#[diesel(table_name = principals)]
pub struct Principal {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl Principal {
    pub fn kind(&self) -> Result<PrincipalKind> {
        self.kind.parse()
    }
    pub fn is_active(&self) -> bool {
        self.status == PrincipalStatus::Active.as_str()
    }
}

/// A category membership of a service, with its priority (higher wins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryAssignment {
    pub name: String,
    #[serde(default)]
    pub priority: i32,
}

impl FromStr for CategoryAssignment {
    type Err = Error;
    /// `NAME` or `NAME:PRIORITY`.
    fn from_str(s: &str) -> Result<Self> {
        let (name, priority) = match s.rsplit_once(':') {
            Some((name, p)) => {
                let priority = p
                    .parse::<i32>()
                    .map_err(|_| Error::invalid("category", format!("priority '{p}' is not an integer")))?;
                (name, priority)
            }
            None => (s, 0),
        };
        validate_name("category", name)?;
        Ok(Self {
            name: name.to_string(),
            priority,
        })
    }
}

/// Input for a new principal, validated by [`NewPrincipal::validate`].
#[derive(Debug, Clone)]
pub struct NewPrincipal {
    pub kind: PrincipalKind,
    pub name: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub scopes: Vec<String>,
    pub categories: Vec<CategoryAssignment>,
}

impl NewPrincipal {
    pub fn validate(&self) -> Result<()> {
        validate_name("name", &self.name)?;
        if let Some(d) = &self.display_name
            && (d.is_empty() || d.chars().count() > 200)
        {
            return Err(Error::invalid("display_name", "must be 1 to 200 characters"));
        }
        if let Some(e) = &self.email {
            validate_email(e)?;
        }
        for s in &self.scopes {
            validate_scope(s)?;
        }
        if self.kind == PrincipalKind::Human && !self.categories.is_empty() {
            return Err(Error::invalid(
                "categories",
                "only service principals belong to categories",
            ));
        }
        validate_categories(&self.categories)
    }
}

/// Category names follow the name rule and appear once each.
pub fn validate_categories(cats: &[CategoryAssignment]) -> Result<()> {
    for c in cats {
        validate_name("categories", &c.name)?;
    }
    let mut names: Vec<&str> = cats.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::invalid("categories", "a category is listed twice"));
    }
    Ok(())
}

/// Names of principals and categories: `[a-z0-9][a-z0-9._-]{0,62}`.
pub fn validate_name(field: &str, name: &str) -> Result<()> {
    let bytes = name.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 63
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("'{name}' is not a valid name: use 1 to 63 of a-z 0-9 . _ -, starting with a letter or digit"),
        ))
    }
}

/// Scopes: `[a-z0-9:._-]+`, at most 128 characters.
pub fn validate_scope(scope: &str) -> Result<()> {
    let ok = !scope.is_empty()
        && scope.len() <= 128
        && scope
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b':' | b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "scopes",
            format!("'{scope}' is not a valid scope: use a-z 0-9 : . _ -"),
        ))
    }
}

pub fn validate_email(email: &str) -> Result<()> {
    let ok = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid("email", "not a valid email address"))
    }
}

/// What clients see of a principal.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PrincipalView {
    pub id: String,
    pub name: String,
    pub kind: PrincipalKind,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub status: String,
    pub scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<CategoryAssignment>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

// ---- queries --------------------------------------------------------------

/// Insert the principal row with its scopes and categories. Run inside a transaction.
pub fn insert(conn: &mut DbConnection, input: &NewPrincipal, now: DateTime<Utc>) -> Result<Principal> {
    let now = to_db_time(now);
    let row = Principal {
        id: new_id(),
        kind: input.kind.as_str().to_string(),
        name: input.name.clone(),
        display_name: input.display_name.clone(),
        email: input.email.clone(),
        status: PrincipalStatus::Active.as_str().to_string(),
        created_at: now,
        updated_at: now,
    };
    diesel::insert_into(principals::table)
        .values(&row)
        .execute(conn)
        .map_err(|e| match e {
            ref e if crate::db::is_unique_violation(e) => {
                Error::Conflict(format!("a principal named '{}' already exists", input.name))
            }
            other => other.into(),
        })?;
    set_scopes(conn, &row.id, &input.scopes)?;
    set_categories(conn, &row.id, &input.categories, now)?;
    Ok(row)
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
    now: NaiveDateTime,
) -> Result<()> {
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
        Err(ref e) if crate::db::is_unique_violation(e) => Ok(categories::table
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

/// Build the view of a principal row.
pub fn view(conn: &mut DbConnection, p: Principal) -> Result<PrincipalView> {
    let id = p.id.clone();
    views(conn, vec![p])?
        .pop()
        .ok_or_else(|| Error::NotFound(format!("principal {id}")))
}

/// All principals, ordered by name.
pub fn list_all(conn: &mut DbConnection) -> Result<Vec<PrincipalView>> {
    let rows: Vec<Principal> = principals::table
        .select(Principal::as_select())
        .order(principals::name.asc())
        .load(conn)?;
    views(conn, rows)
}

/// Views of many principals with two extra queries, not two per principal.
pub fn views(conn: &mut DbConnection, rows: Vec<Principal>) -> Result<Vec<PrincipalView>> {
    use std::collections::HashMap;
    let ids: Vec<String> = rows.iter().map(|p| p.id.clone()).collect();
    let mut scopes: HashMap<String, Vec<String>> = HashMap::new();
    for (pid, scope) in principal_scopes::table
        .filter(principal_scopes::principal_id.eq_any(&ids))
        .select((principal_scopes::principal_id, principal_scopes::scope))
        .order((principal_scopes::principal_id.asc(), principal_scopes::scope.asc()))
        .load::<(String, String)>(conn)?
    {
        scopes.entry(pid).or_default().push(scope);
    }
    let mut cats = categories_by_principal(conn, &ids)?;
    rows.into_iter()
        .map(|p| {
            let kind = p.kind()?;
            Ok(PrincipalView {
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
                created_at: from_db_time(p.created_at),
                updated_at: from_db_time(p.updated_at),
            })
        })
        .collect()
}

/// The category memberships of many principals, by principal id, by name.
pub fn categories_by_principal(
    conn: &mut DbConnection,
    ids: &[String],
) -> Result<std::collections::HashMap<String, Vec<CategoryAssignment>>> {
    let mut cats: std::collections::HashMap<String, Vec<CategoryAssignment>> = std::collections::HashMap::new();
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

/// Changes to a principal; `None` leaves a field as it is. For the nullable
/// fields, `Some(None)` clears them.
#[derive(Debug, Clone, Default)]
pub struct PrincipalChanges {
    pub display_name: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub scopes: Option<Vec<String>>,
    pub categories: Option<Vec<CategoryAssignment>>,
}

impl PrincipalChanges {
    pub fn validate(&self, kind: PrincipalKind) -> Result<()> {
        if let Some(Some(d)) = &self.display_name
            && (d.is_empty() || d.chars().count() > 200)
        {
            return Err(Error::invalid("display_name", "must be 1 to 200 characters"));
        }
        if let Some(Some(e)) = &self.email {
            validate_email(e)?;
        }
        for s in self.scopes.iter().flatten() {
            validate_scope(s)?;
        }
        if let Some(cats) = &self.categories {
            if kind == PrincipalKind::Human && !cats.is_empty() {
                return Err(Error::invalid(
                    "categories",
                    "only service principals belong to categories",
                ));
            }
            validate_categories(cats)?;
        }
        Ok(())
    }

    /// The names of the fields this change touches, for the audit log.
    pub fn fields(&self) -> Vec<&'static str> {
        let mut f = Vec::new();
        if self.display_name.is_some() {
            f.push("display_name");
        }
        if self.email.is_some() {
            f.push("email");
        }
        if self.scopes.is_some() {
            f.push("scopes");
        }
        if self.categories.is_some() {
            f.push("categories");
        }
        f
    }
}

/// Apply changes to the row and its scopes and categories. Run in a transaction.
pub fn apply_changes(
    conn: &mut DbConnection,
    p: &Principal,
    changes: &PrincipalChanges,
    now: DateTime<Utc>,
) -> Result<()> {
    let now = to_db_time(now);
    let display_name = changes.display_name.clone().unwrap_or_else(|| p.display_name.clone());
    let email = changes.email.clone().unwrap_or_else(|| p.email.clone());
    diesel::update(principals::table.find(&p.id))
        .set((
            principals::display_name.eq(display_name),
            principals::email.eq(email),
            principals::updated_at.eq(now),
        ))
        .execute(conn)?;
    if let Some(scopes) = &changes.scopes {
        set_scopes(conn, &p.id, scopes)?;
    }
    if let Some(cats) = &changes.categories {
        set_categories(conn, &p.id, cats, now)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rule() {
        for ok in ["a", "billing", "mail-sender", "svc.v2", "a_b", "0day", &"a".repeat(63)] {
            assert!(validate_name("name", ok).is_ok(), "{ok}");
        }
        for bad in ["", "Billing", "-x", ".x", "_x", "a b", "é", "a/b", &"a".repeat(64)] {
            assert!(validate_name("name", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scopes_follow_the_rule() {
        assert!(validate_scope("admin").is_ok());
        assert!(validate_scope("registry:write").is_ok());
        assert!(validate_scope("Admin").is_err());
        assert!(validate_scope("a b").is_err());
        assert!(validate_scope("").is_err());
    }

    #[test]
    fn category_assignments_parse() {
        assert_eq!(
            "notification:10".parse::<CategoryAssignment>().unwrap(),
            CategoryAssignment {
                name: "notification".into(),
                priority: 10
            }
        );
        assert_eq!(
            "application".parse::<CategoryAssignment>().unwrap(),
            CategoryAssignment {
                name: "application".into(),
                priority: 0
            }
        );
        assert!("x:high".parse::<CategoryAssignment>().is_err());
        assert!("Bad:1".parse::<CategoryAssignment>().is_err());
    }
}
