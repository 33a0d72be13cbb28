//! The service registry: service principals register where they live and in
//! which categories, stay `up` by heartbeats (a TTL lease) and active health
//! checks, and publish the frontend pages they contribute.

pub mod fetch;
pub mod listing;
pub mod manifest;
pub mod menu;
pub mod policy;
pub mod service;
pub mod worker;

use chrono::Duration;

use crate::db::Pool;
use crate::feed::ChangeFeed;
use fetch::Fetcher;

/// What the registry needs at run time, and nothing else of the process.
pub struct RegistryContext {
    pub db: Pool,
    pub config: RegistryConfig,
    pub fetcher: Fetcher,
    pub feed: ChangeFeed,
    /// The module lists last rendered.
    pub menus: menu::MenuCache,
    /// Names this instance as the holder of polling leases.
    pub instance_id: String,
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
            instance_id: crate::models::new_id(),
        })
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
    /// How long one instance holds a service's polling lease at most.
    pub poll_lease: Duration,
    /// What health checks and manifest pulls may reach.
    pub fetch: policy::FetchPolicy,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            default_ttl: Duration::seconds(30),
            health_interval: Duration::seconds(10),
            fetch_timeout: Duration::seconds(2),
            manifest_interval: Duration::seconds(60),
            deregister_after: Duration::hours(72),
            poll_lease: Duration::seconds(30),
            fetch: policy::FetchPolicy::default(),
        }
    }
}

/// Bounds of `ttl_seconds`.
pub const MIN_TTL_SECS: i64 = 1;
pub const MAX_TTL_SECS: i64 = 24 * 3600;
