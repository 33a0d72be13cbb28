//! What watchers read: the service list with Consul-style blocking queries,
//! and the categories with their members by priority.

use serde::{Deserialize, Serialize};

use super::RegistryContext;
use super::service::{self, ServiceView, status_str};
use crate::auth::access::Caller;
use crate::error::{Error, Result};
use crate::models::registration::{self, MemberRow};

use crate::feed::parse_wait;

/// `GET /api/v1/services` query.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicesQuery {
    pub category: Option<String>,
    pub status: Option<ServiceStatus>,
    /// Long poll: answer once the change index passes this.
    pub index: Option<i64>,
    /// How long to wait, e.g. `30s` or `2m` (at most 5 minutes).
    pub wait: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceStatus {
    Up,
    Down,
}

/// `GET /api/v1/services`: registered services, optionally by category and
/// status. With `index=N` it answers once the registry's change index has
/// passed N, or when `wait` has elapsed, whichever comes first. Returns the
/// services and the index they reflect.
pub async fn services(ctx: &RegistryContext, caller: &Caller, query: ServicesQuery) -> Result<(Vec<ServiceView>, i64)> {
    let wait = parse_wait(query.wait.as_deref())?;
    let mut index = ctx.db.run(registration::current_index).await?;
    ctx.feed.observe(index);
    if let Some(after) = query.index
        && index <= after
    {
        ctx.feed.wait_past(after, wait).await;
        index = ctx.db.run(registration::current_index).await?;
    }
    let status = query.status.map(|s| match s {
        ServiceStatus::Up => registration::UP,
        ServiceStatus::Down => registration::DOWN,
    });
    let category = query.category;
    let items = ctx
        .db
        .run(move |c| service::list(c, category.as_deref(), status))
        .await?
        .into_iter()
        .map(|v| v.for_reader(caller))
        .collect();
    Ok((items, index))
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CategoryView {
    pub name: String,
    /// Service principals in the category.
    pub service_count: i64,
    /// Of those, the ones up now.
    pub up_count: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CategoryMember {
    pub name: String,
    pub priority: i32,
    pub status: &'static str,
    pub base_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CategoryDetail {
    pub name: String,
    /// Highest priority first, then by name.
    pub services: Vec<CategoryMember>,
}

fn member(row: MemberRow) -> (String, CategoryMember) {
    let status = row.status.as_deref().map(status_str).unwrap_or("unknown");
    (
        row.category,
        CategoryMember {
            name: row.service,
            priority: row.priority,
            status,
            base_url: row.base_url,
        },
    )
}

/// Count each category's members and the ones up.
pub fn summarize(names: Vec<String>, members: Vec<MemberRow>) -> Vec<CategoryView> {
    let members: Vec<(String, CategoryMember)> = members.into_iter().map(member).collect();
    names
        .into_iter()
        .map(|name| {
            let of: Vec<&CategoryMember> = members.iter().filter(|(c, _)| *c == name).map(|(_, m)| m).collect();
            CategoryView {
                service_count: of.len() as i64,
                up_count: of.iter().filter(|m| m.status == "up").count() as i64,
                name,
            }
        })
        .collect()
}

/// `GET /api/v1/categories`.
pub async fn categories(ctx: &RegistryContext) -> Result<Vec<CategoryView>> {
    ctx.db
        .run(|c| {
            Ok(summarize(
                registration::category_names(c)?,
                registration::category_members(c)?,
            ))
        })
        .await
}

/// `GET /api/v1/categories/{name}`: its services, highest priority first.
pub async fn category(ctx: &RegistryContext, name: String) -> Result<CategoryDetail> {
    ctx.db
        .run(move |c| {
            if !registration::category_exists(c, &name)? {
                return Err(Error::NotFound(format!("category {name}")));
            }
            let services = registration::category_members(c)?
                .into_iter()
                .map(member)
                .filter(|(cat, _)| *cat == name)
                .map(|(_, m)| m)
                .collect();
            Ok(CategoryDetail { name, services })
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(category: &str, service: &str, status: Option<&str>) -> MemberRow {
        MemberRow {
            category: category.into(),
            service: service.into(),
            priority: 0,
            status: status.map(str::to_string),
            base_url: None,
        }
    }

    #[test]
    fn categories_count_members_and_those_up() {
        let views = summarize(
            vec!["empty".into(), "mail".into()],
            vec![
                row("mail", "a", Some("up")),
                row("mail", "b", Some("down")),
                row("mail", "c", None),
            ],
        );
        assert_eq!(
            views,
            vec![
                CategoryView {
                    name: "empty".into(),
                    service_count: 0,
                    up_count: 0
                },
                CategoryView {
                    name: "mail".into(),
                    service_count: 3,
                    up_count: 1
                },
            ]
        );
    }
}
