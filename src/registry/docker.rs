//! Container label discovery (`--discover docker`, off by default): Roster
//! lists the running containers of a Docker Engine API (Docker, or Podman's
//! compatible socket) and follows its events, and keeps one instance per
//! container labelled `roster.service=NAME` of an existing service principal.
//!
//! What labels may do is narrow: they name a service that already exists
//! (never create one, never grant a scope), give the instance its address
//! and checks, and may set that service's categories and description. The
//! URLs they yield pass the same checks and fetch policy as a registration.
//! Only GET requests go to the Engine API (`/containers/json`, `/events`).
//! The list is the truth: an event only says "list again now".

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures_util::StreamExt;

use super::instance::{self as lifecycle, Source};
use super::service::{self, Registration};
use super::{Change, RegistryConfig, RegistryContext};
use crate::db::DbConnection;
use crate::error::{Error, Result};
use crate::models::instance::{self, InstanceRow};
use crate::models::principal::{self, CategoryAssignment};
use crate::models::registration;

/// The label naming the service a container is an instance of.
pub const SERVICE_LABEL: &str = "roster.service";

/// `--discover docker`: where the Engine API is, and how often to list again
/// even without events (which also renews the instances' leases).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerConfig {
    /// `unix:///var/run/docker.sock` or `tcp://host:port`.
    pub host: String,
    pub interval: Duration,
}

/// What a labelled container asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Labelled {
    /// The container id: the instance's id.
    pub container: String,
    pub service: String,
    pub registration: Registration,
}

/// The first of `names` present among the labels.
fn label<'a>(labels: &'a HashMap<String, String>, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|n| labels.get(*n)).map(String::as_str)
}

/// `roster.categories` / `registry.categories`: `name[:priority]`, separated
/// by commas or spaces, as the CLI's `--category` takes them.
pub fn parse_categories(s: &str) -> std::result::Result<Vec<CategoryAssignment>, String> {
    s.split([',', ' '])
        .filter(|c| !c.is_empty())
        .map(|c| match c.split_once(':') {
            None => Ok(CategoryAssignment {
                name: c.to_string(),
                priority: 0,
            }),
            Some((name, p)) => p
                .parse::<i32>()
                .map(|priority| CategoryAssignment {
                    name: name.to_string(),
                    priority,
                })
                .map_err(|_| format!("the priority of category '{name}' is not a number")),
        })
        .collect()
}

/// Read one container: `None` when it has no `roster.service` label, an
/// error naming the label when its labels are unusable. Its address is its
/// IP on the network named by `roster.network`, or else on the first network
/// by name, with `roster.port` (default 80).
pub fn from_container(
    id: &str,
    labels: &HashMap<String, String>,
    networks: &BTreeMap<String, String>,
) -> Option<std::result::Result<Labelled, String>> {
    let service = labels.get(SERVICE_LABEL)?.clone();
    Some((|| {
        let port: u16 = match labels.get("roster.port") {
            None => 80,
            Some(p) => p.parse().map_err(|_| format!("roster.port '{p}' is not a port"))?,
        };
        let ip = match labels.get("roster.network") {
            Some(n) => networks
                .get(n)
                .ok_or_else(|| format!("the container is not on the network '{n}' (roster.network)"))?,
            None => networks
                .values()
                .find(|ip| !ip.is_empty())
                .ok_or("the container has no network address")?,
        };
        let host = match ip.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
            Ok(v4) => v4.to_string(),
            Err(_) => return Err(format!("the network address '{ip}' is not an IP address")),
        };
        let categories = label(labels, &["roster.categories", "registry.categories"])
            .map(parse_categories)
            .transpose()?;
        Ok(Labelled {
            container: id.to_string(),
            service,
            registration: Registration {
                base_url: format!("http://{host}:{port}/"),
                health_url: labels.get("roster.health").cloned(),
                modules_url: label(labels, &["roster.modules", "registry.modules"]).map(str::to_string),
                categories,
                ttl_seconds: None,
                draining: false,
                failures_before_down: None,
                passes_before_up: None,
                description: label(labels, &["roster.description", "registry.description"]).map(str::to_string),
                meta: None,
            },
        })
    })())
}

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// New or changed instances.
    pub registered: usize,
    /// Unchanged instances whose lease was renewed.
    pub renewed: usize,
    /// Instances whose container is gone.
    pub removed: usize,
    /// Labelled containers left out, with the reason.
    pub refused: Vec<(String, String)>,
}

/// Bring the instances that came from containers in line with `found`, the
/// labelled containers running now: register new or changed ones, renew the
/// rest, and remove those whose container is gone. Each step is its own
/// transaction. Returns the changes to publish.
pub fn reconcile(
    conn: &mut DbConnection,
    cfg: &RegistryConfig,
    found: Vec<std::result::Result<Labelled, (String, String)>>,
    ttl: Duration,
    now: DateTime<Utc>,
) -> Result<(Vec<Change>, SyncReport)> {
    let mut report = SyncReport::default();
    let mut changes = Vec::new();
    let mut seen: Vec<(String, String)> = Vec::new();
    for item in found {
        let l = match item {
            Ok(l) => l,
            Err(refused) => {
                report.refused.push(refused);
                continue;
            }
        };
        let refuse = |why: String| (l.container.clone(), why);
        let p = match service::service_principal(conn, &l.service) {
            Ok(p) => p,
            Err(Error::NotFound(_)) => {
                report.refused.push(refuse(format!(
                    "no service principal named '{}' (labels never create one)",
                    l.service
                )));
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut reg = l.registration.clone();
        reg.ttl_seconds = Some(ttl.num_seconds());
        let existing = instance::find(conn, &p.id, &l.container)?;
        if let Some(e) = &existing
            && e.source != Source::Docker
        {
            report.refused.push(refuse(format!(
                "service '{}' already has an instance '{}' registered over the API",
                l.service, l.container
            )));
            continue;
        }
        let mut resolved = match service::resolve(reg, cfg) {
            Ok(r) => r,
            Err(e) => {
                report.refused.push(refuse(e.to_string()));
                continue;
            }
        };
        seen.push((p.id.clone(), l.container.clone()));
        // An admin's drain stays until the container goes.
        resolved.draining = existing.as_ref().is_some_and(|e| e.draining != 0);
        let same = match &existing {
            Some(e) => unchanged(conn, e, &resolved)?,
            None => false,
        };
        if same {
            let (_, change) = lifecycle::heartbeat(conn, &p, &l.container, now)?;
            changes.extend(change);
            report.renewed += 1;
        } else {
            let (_, change) = lifecycle::register(conn, &p, &l.container, &resolved, Source::Docker, None, now)?;
            changes.push(change);
            report.registered += 1;
        }
    }
    for row in instance::of_source(conn, Source::Docker)? {
        if seen.contains(&(row.principal_id.clone(), row.instance_id.clone())) {
            continue;
        }
        let Some(p) = principal::find_by_id(conn, &row.principal_id)? else {
            continue;
        };
        let (_, change) = lifecycle::deregister(conn, &p, &row.instance_id, None, now)?;
        changes.extend(change);
        report.removed += 1;
    }
    Ok((changes, report))
}

/// Does the stored instance (and its service) already say what the labels say?
fn unchanged(conn: &mut DbConnection, e: &InstanceRow, r: &service::Resolved) -> Result<bool> {
    if e.base_url != r.base_url
        || e.health_url != r.health_url
        || e.modules_url != r.modules_url
        || e.ttl_seconds != r.ttl_seconds
    {
        return Ok(false);
    }
    if let Some(cats) = &r.categories {
        let mut want = cats.clone();
        want.sort_by(|a, b| a.name.cmp(&b.name));
        if principal::categories_of(conn, &e.principal_id)? != want {
            return Ok(false);
        }
    }
    if let Some(d) = &r.description {
        let row = registration::find(conn, &e.principal_id)?;
        if row.and_then(|s| s.description).as_deref() != Some(d.as_str()) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Does a container event concern a labelled container? Docker and Podman
/// both carry the container's labels in the actor's attributes; an event
/// without attributes is taken to concern one.
fn labelled(e: &bollard::models::EventMessage) -> bool {
    e.actor
        .as_ref()
        .and_then(|a| a.attributes.as_ref())
        .is_none_or(|attrs| attrs.contains_key(SERVICE_LABEL))
}

/// A connection to a Docker Engine API.
pub struct Discovery {
    docker: bollard::Docker,
    interval: Duration,
}

/// Seconds one Engine API request may take (the event stream excepted).
const DOCKER_TIMEOUT_SECS: u64 = 10;

impl Discovery {
    /// Connect lazily to `unix://PATH` or `tcp://HOST:PORT`.
    pub fn connect(cfg: &DockerConfig) -> std::result::Result<Self, String> {
        let version = bollard::API_DEFAULT_VERSION;
        let docker = if let Some(path) = cfg.host.strip_prefix("unix://") {
            bollard::Docker::connect_with_unix(path, DOCKER_TIMEOUT_SECS, version)
        } else if cfg.host.starts_with("tcp://") || cfg.host.starts_with("http://") {
            bollard::Docker::connect_with_http(&cfg.host, DOCKER_TIMEOUT_SECS, version)
        } else {
            return Err(format!(
                "--docker-host '{}': use unix:///path/to/docker.sock or tcp://host:port",
                cfg.host
            ));
        }
        .map_err(|e| format!("--docker-host '{}': {e}", cfg.host))?;
        Ok(Self {
            docker,
            interval: cfg.interval,
        })
    }

    /// The labelled containers running now (`GET /containers/json`).
    pub async fn list(&self) -> std::result::Result<Vec<std::result::Result<Labelled, (String, String)>>, String> {
        // Running ones only, by the engine's own filter: a container on its
        // way out is not listed (and Podman's `stopped` state, which Docker's
        // schema lacks, never reaches the parser).
        let filters = HashMap::from([
            ("label".to_string(), vec![SERVICE_LABEL.to_string()]),
            ("status".to_string(), vec!["running".to_string()]),
        ]);
        let options = bollard::query_parameters::ListContainersOptions {
            filters: Some(filters),
            ..Default::default()
        };
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| format!("listing containers: {e}"))?;
        Ok(containers
            .into_iter()
            .filter_map(|c| {
                let id = c.id?;
                let labels = c.labels.unwrap_or_default();
                let networks: BTreeMap<String, String> = c
                    .network_settings
                    .and_then(|n| n.networks)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|(name, e)| Some((name, e.ip_address?)))
                    .collect();
                from_container(&id, &labels, &networks).map(|r| r.map_err(|why| (id, why)))
            })
            .collect())
    }

    /// List, then reconcile at `now`, and publish the changes.
    pub async fn sync(&self, ctx: &RegistryContext, now: DateTime<Utc>) -> Result<SyncReport> {
        let found = self.list().await.map_err(Error::Unavailable)?;
        let (cfg, ttl) = (ctx.config.clone(), self.interval * 3);
        let (changes, report) = ctx.db.run(move |c| reconcile(c, &cfg, found, ttl, now)).await?;
        for c in &changes {
            ctx.publish(Some(c));
        }
        for (container, why) in &report.refused {
            tracing::warn!(%container, reason = %why, "container labels refused");
        }
        Ok(report)
    }

    /// Follow the Engine API until `stop`: sync at start, on every container
    /// event, and every interval (which renews the leases); after a failure,
    /// start over after a pause that grows from a second to an interval.
    pub async fn run(
        self,
        ctx: Arc<RegistryContext>,
        clock: crate::clock::Clock,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let every = self.interval.to_std().unwrap_or(std::time::Duration::from_secs(30));
        let mut pause = None;
        loop {
            // Only by type: Podman's label filter on events needs a value
            // (`label=roster.service=NAME`), so the label is checked here.
            let filters = HashMap::from([("type".to_string(), vec!["container".to_string()])]);
            // Events from a second before the list on: the engine replays
            // any that happen while the list is read, so none falls between
            // the list and the stream (a repeat costs one more list).
            let since = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs().saturating_sub(1))
                .unwrap_or(0);
            let options = bollard::query_parameters::EventsOptions {
                since: Some(since.to_string()),
                filters: Some(filters),
                ..Default::default()
            };
            let mut events = self.docker.events(Some(options)).boxed();
            let mut healthy = match self.sync(&ctx, clock.now()).await {
                Ok(r) => {
                    tracing::debug!(?r, "docker discovery synced");
                    true
                }
                Err(e) => {
                    tracing::warn!(error = %e, "docker discovery: cannot sync");
                    false
                }
            };
            while healthy {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    _ = tokio::time::sleep(every) => {}
                    event = events.next() => match event {
                        Some(Ok(e)) if !labelled(&e) => continue,
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "docker discovery: the event stream failed");
                            healthy = false;
                            continue;
                        }
                        None => {
                            healthy = false;
                            continue;
                        }
                    },
                }
                match self.sync(&ctx, clock.now()).await {
                    // The stream and the list both work: a later failure starts from a short pause.
                    Ok(_) => pause = None,
                    Err(e) => {
                        tracing::warn!(error = %e, "docker discovery: cannot sync");
                        healthy = false;
                    }
                }
            }
            let wait = retry_pause(pause, every);
            pause = Some(wait);
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// How long to wait before trying again after a failure: a second at
/// first, then twice the last pause, never more than the interval.
fn retry_pause(last: Option<std::time::Duration>, every: std::time::Duration) -> std::time::Duration {
    let first = std::time::Duration::from_secs(1);
    last.map_or(first, |d| d.saturating_mul(2)).min(every)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_start_soon_and_back_off_to_the_interval() {
        let every = std::time::Duration::from_secs(30);
        let mut last = None;
        let mut pauses = Vec::new();
        for _ in 0..7 {
            let p = retry_pause(last, every);
            pauses.push(p.as_secs());
            last = Some(p);
        }
        assert_eq!(pauses, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(
            retry_pause(None, std::time::Duration::from_millis(200)).as_millis(),
            200
        );
    }

    fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn nets(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn labels_give_the_address_checks_and_categories() {
        let l = from_container(
            "abc",
            &labels(&[
                ("roster.service", "mail"),
                ("roster.port", "8080"),
                ("roster.health", "/health"),
                ("roster.modules", "/getModules.json"),
                ("roster.categories", "notification:5, mail"),
                ("roster.network", "back"),
            ]),
            &nets(&[("back", "172.18.0.2"), ("front", "172.19.0.2")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(l.service, "mail");
        assert_eq!(l.container, "abc");
        assert_eq!(l.registration.base_url, "http://172.18.0.2:8080/");
        assert_eq!(l.registration.health_url.as_deref(), Some("/health"));
        assert_eq!(l.registration.modules_url.as_deref(), Some("/getModules.json"));
        assert_eq!(
            l.registration.categories,
            Some(vec![
                CategoryAssignment {
                    name: "notification".into(),
                    priority: 5
                },
                CategoryAssignment {
                    name: "mail".into(),
                    priority: 0
                },
            ])
        );
    }

    #[test]
    fn the_old_registry_labels_are_aliases() {
        let l = from_container(
            "abc",
            &labels(&[
                ("roster.service", "shop"),
                ("registry.categories", "application:3"),
                ("registry.modules", "/getModules.json"),
                ("registry.description", "The shop"),
            ]),
            &nets(&[("bridge", "fd00::5")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(l.registration.base_url, "http://[fd00::5]:80/");
        assert_eq!(l.registration.modules_url.as_deref(), Some("/getModules.json"));
        assert_eq!(l.registration.description.as_deref(), Some("The shop"));
        assert_eq!(l.registration.categories.unwrap()[0].priority, 3);
        // The roster.* label wins over its alias.
        let l = from_container(
            "abc",
            &labels(&[
                ("roster.service", "shop"),
                ("roster.description", "new"),
                ("registry.description", "old"),
            ]),
            &nets(&[("bridge", "10.0.0.1")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(l.registration.description.as_deref(), Some("new"));
    }

    #[test]
    fn unusable_labels_are_refused_with_the_reason() {
        let refused =
            |l: &[(&str, &str)], n: &[(&str, &str)]| from_container("c", &labels(l), &nets(n)).unwrap().unwrap_err();
        assert!(from_container("c", &labels(&[("other", "x")]), &nets(&[])).is_none());
        assert_eq!(
            refused(
                &[("roster.service", "a"), ("roster.port", "http")],
                &[("b", "10.0.0.1")]
            ),
            "roster.port 'http' is not a port"
        );
        assert_eq!(
            refused(&[("roster.service", "a")], &[]),
            "the container has no network address"
        );
        assert_eq!(
            refused(
                &[("roster.service", "a"), ("roster.network", "x")],
                &[("b", "10.0.0.1")]
            ),
            "the container is not on the network 'x' (roster.network)"
        );
        assert_eq!(
            refused(
                &[("roster.service", "a"), ("roster.categories", "mail:high")],
                &[("b", "10.0.0.1")]
            ),
            "the priority of category 'mail' is not a number"
        );
    }
}
