//! The service registry: service principals register the instances they run
//! and the categories they belong to; instances stay `up` by heartbeats (a
//! TTL lease) and damped health checks; services publish the frontend pages
//! they contribute; watchers block on exactly the view they show.

/// The instance of the single-instance routes of the first registry round.
pub const DEFAULT_INSTANCE: &str = "default";

pub mod damping;
pub mod docker;
pub mod instance;
pub mod listing;
pub mod manifest;
pub mod menu;
pub mod service;
pub mod watch;
pub mod worker;

use chrono::Duration;

use crate::db::Pool;
use crate::feed::ChangeFeed;
use crate::outbound::fetch::{self, Fetcher};
use crate::outbound::policy;

/// What the registry needs at run time, and nothing else of the process.
pub struct RegistryContext {
    pub db: Pool,
    pub config: RegistryConfig,
    pub fetcher: Fetcher,
    pub feed: ChangeFeed,
    /// The module lists last rendered.
    pub menus: menu::MenuCache,
}

impl RegistryContext {
    pub fn new(db: Pool, config: RegistryConfig) -> Result<Self, String> {
        let timeout = config
            .fetch_timeout
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(2));
        Ok(Self {
            db,
            fetcher: Fetcher::new(timeout, std::sync::Arc::new(config.fetch.clone()))?,
            config,
            feed: ChangeFeed::new(),
            menus: menu::MenuCache::default(),
        })
    }
}

/// What a committed write changed: the new change index, and the views
/// (`crate::models::registration::service_key` and friends) it touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub index: i64,
    pub keys: Vec<String>,
}

impl RegistryContext {
    /// Tell this instance's waiters about a committed change at once; other
    /// Roster instances see it on their next tick.
    pub fn publish(&self, change: Option<&Change>) {
        if let Some(c) = change {
            self.feed.observe(c.index);
            self.feed.observe_views(c.keys.iter().map(|k| (k.clone(), c.index)));
        }
    }
}

/// Timing of the registry.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Lease length when a registration names none.
    pub default_ttl: Duration,
    /// How often a service's `health_url` is polled.
    pub health_interval: Duration,
    /// Timeout of one health check or manifest pull.
    pub fetch_timeout: Duration,
    /// How often a `modules_url` is pulled.
    pub manifest_interval: Duration,
    /// A service down this long drops out of listings (it stays a principal).
    pub deregister_after: Duration,
    /// What health checks and manifest pulls may reach.
    pub fetch: policy::FetchPolicy,
    /// Container label discovery; off when `None`.
    pub docker: Option<docker::DockerConfig>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            default_ttl: Duration::seconds(30),
            health_interval: Duration::seconds(10),
            fetch_timeout: Duration::seconds(2),
            manifest_interval: Duration::seconds(60),
            deregister_after: Duration::hours(72),
            fetch: policy::FetchPolicy::default(),
            docker: None,
        }
    }
}

/// Most instances one service may register.
pub const MAX_INSTANCES: i64 = 256;

/// Bounds of `ttl_seconds`.
pub const MIN_TTL_SECS: i64 = 1;
pub const MAX_TTL_SECS: i64 = 24 * 3600;
