//! What watchers read: the service list, one service, and the categories
//! with their members by priority, each with blocking queries.

use serde::{Deserialize, Serialize};

use super::RegistryContext;
use super::service::{self, ServiceView, status_str};
use super::watch::{Block, read_view};
use crate::auth::access::Caller;
use crate::error::{Error, Result};
use crate::models::instance::{self, InstanceRow};
use crate::models::registration::{self, Health, MemberRow};

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

/// The query of a single view: `index` and `wait` only.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchQuery {
    /// Long poll: answer once this view changed after this index.
    pub index: Option<i64>,
    /// How long to wait, e.g. `30s` or `2m` (at most 5 minutes).
    pub wait: Option<String>,
}

/// The query of the menu: `index` and `wait`, and `as` for admins.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModulesQuery {
    pub index: Option<i64>,
    pub wait: Option<String>,
    /// Admins only: the menu as the principal of this name would see it.
    #[serde(rename = "as")]
    pub as_principal: Option<String>,
}

impl ModulesQuery {
    pub fn block(&self) -> Result<Option<Block>> {
        Block::from_query(self.index, self.wait.as_deref())
    }
}

impl WatchQuery {
    pub fn block(&self) -> Result<Option<Block>> {
        Block::from_query(self.index, self.wait.as_deref())
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceStatus {
    Up,
    Down,
}

impl RegistryContext {
    /// `GET /api/v1/services`: registered services, optionally by category and
    /// status. With `index=N` it answers once the registry's change index has
    /// passed N, or when `wait` has elapsed, whichever comes first. Returns the
    /// services and the index they reflect.
    pub async fn services(&self, caller: &Caller, query: ServicesQuery) -> Result<(Vec<ServiceView>, i64)> {
        let wait = parse_wait(query.wait.as_deref())?;
        let mut index = self.db.run(registration::current_index).await?;
        self.feed.observe(index);
        if let Some(after) = query.index
            && index <= after
        {
            self.feed.wait_past(after, wait).await;
            index = self.db.run(registration::current_index).await?;
        }
        let status = query.status.map(|s| match s {
            ServiceStatus::Up => Health::Up,
            ServiceStatus::Down => Health::Down,
        });
        let category = query.category;
        let items = self
            .db
            .run(move |c| service::list(c, category.as_deref(), status))
            .await?
            .into_iter()
            .map(|v| v.for_reader(caller))
            .collect();
        Ok((items, index))
    }
}

impl RegistryContext {
    /// `GET /api/v1/services/{name}`, as `caller` may read it, blocking on this
    /// service alone when asked.
    pub async fn service(&self, caller: &Caller, name: String, query: WatchQuery) -> Result<(ServiceView, i64)> {
        let block = query.block()?;
        let key = registration::service_key(&name);
        read_view(self, vec![key], block, || {
            let name = name.clone();
            async move { Ok(self.db.run(move |c| service::get(c, &name)).await?.for_reader(caller)) }
        })
        .await
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CategoryView {
    pub name: String,
    /// Service principals in the category.
    pub service_count: i64,
    /// Of those, the ones up now.
    pub up_count: i64,
}

/// An instance a caller may pick: up and not draining.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LiveInstance {
    pub id: String,
    pub base_url: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CategoryMember {
    pub name: String,
    pub priority: i32,
    pub status: &'static str,
    pub description: Option<String>,
    /// The base URL of the first live instance.
    pub base_url: Option<String>,
    /// Its live instances, by id: the ones to call.
    pub instances: Vec<LiveInstance>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CategoryDetail {
    pub name: String,
    /// Highest priority first, then by name.
    pub services: Vec<CategoryMember>,
}

fn live(instances: &[InstanceRow]) -> Vec<LiveInstance> {
    instances
        .iter()
        .filter(|i| i.status == Health::Up && i.draining == 0)
        .map(|i| LiveInstance {
            id: i.instance_id.clone(),
            base_url: i.base_url.clone(),
        })
        .collect()
}

fn member(row: MemberRow, instances: &[InstanceRow]) -> (String, CategoryMember) {
    let status = row.status.map(status_str).unwrap_or("unknown");
    let of: Vec<InstanceRow> = instances
        .iter()
        .filter(|i| i.principal_id == row.principal_id)
        .cloned()
        .collect();
    let instances = live(&of);
    (
        row.category,
        CategoryMember {
            name: row.service,
            priority: row.priority,
            status,
            description: row.description,
            base_url: instances.first().map(|i| i.base_url.clone()),
            instances,
        },
    )
}

/// Count each category's members and the ones up.
pub fn summarize(names: Vec<String>, members: Vec<MemberRow>) -> Vec<CategoryView> {
    names
        .into_iter()
        .map(|name| {
            let of: Vec<&MemberRow> = members.iter().filter(|m| m.category == name).collect();
            CategoryView {
                service_count: of.len() as i64,
                up_count: of.iter().filter(|m| m.status == Some(Health::Up)).count() as i64,
                name,
            }
        })
        .collect()
}

impl RegistryContext {
    /// `GET /api/v1/categories`.
    pub async fn categories(&self) -> Result<Vec<CategoryView>> {
        self.db
            .run(|c| {
                Ok(summarize(
                    registration::category_names(c)?,
                    registration::category_members(c, None)?,
                ))
            })
            .await
    }
}

/// One category's services, highest priority first, each with the
/// instances to call.
pub fn category_detail(conn: &mut crate::db::DbConnection, name: &str) -> Result<CategoryDetail> {
    if !registration::category_exists(conn, name)? {
        return Err(Error::NotFound(format!("category {name}")));
    }
    let members = registration::category_members(conn, Some(name))?;
    let ids: Vec<String> = members.iter().map(|m| m.principal_id.clone()).collect();
    let instances = instance::of_services(conn, &ids)?;
    let services = members.into_iter().map(|m| member(m, &instances).1).collect();
    Ok(CategoryDetail {
        name: name.to_string(),
        services,
    })
}

impl RegistryContext {
    /// `GET /api/v1/categories/{name}`, blocking on this category alone when asked.
    pub async fn category(&self, name: String, query: WatchQuery) -> Result<(CategoryDetail, i64)> {
        let block = query.block()?;
        let key = registration::category_key(&name);
        read_view(self, vec![key], block, || {
            let name = name.clone();
            async move { self.db.run(move |c| category_detail(c, &name)).await }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(category: &str, service: &str, status: Option<&str>) -> MemberRow {
        MemberRow {
            category: category.into(),
            principal_id: service.into(),
            service: service.into(),
            priority: 0,
            status: status.map(|s| Health::try_from(s.to_string()).unwrap()),
            description: None,
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
