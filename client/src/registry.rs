//! [`RegistryAgent`]: keeps one instance (replica) of a service in Roster's
//! registry. It registers, pushes its manifest, heartbeats at a third of the
//! TTL, registers again when Roster has forgotten it, and leaves on shutdown.

use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;

use roster_proto::registration::{CategoryAssignment, Registration};
use tokio::sync::watch;

use crate::backoff::Backoff;
use crate::token::{TokenError, TokenRequest, TokenSource};

/// A category membership; higher priority comes first (the wire type,
/// [`roster_proto::registration::CategoryAssignment`]).
pub type Category = CategoryAssignment;

/// What the service tells Roster about itself.
#[derive(Debug, Clone)]
pub struct ServiceRegistration {
    /// This replica's id, unique within the service (a hostname, a pod or
    /// container name). `None` is the instance `default`, for a service that
    /// runs once.
    pub instance: Option<String>,
    /// A short description of the service, shown in listings.
    pub description: Option<String>,
    /// Where the service answers, e.g. `http://10.0.0.5:8080/`.
    pub base_url: String,
    /// Polled by Roster; relative to `base_url` (e.g. `/health`).
    pub health_url: Option<String>,
    /// A getModules.json Roster pulls; relative to `base_url`.
    pub modules_url: Option<String>,
    /// A getModules.json to push instead (or as well).
    pub manifest: Option<serde_json::Value>,
    /// The categories the service belongs to (replacing those it had).
    pub categories: Vec<Category>,
    /// The lease: without a heartbeat for this long the service is down.
    pub ttl: Duration,
    /// Registered and checked, but left out of category answers (a replica
    /// on its way out).
    pub draining: bool,
    /// Failed health checks in a row before this instance is down (Roster's
    /// default when `None`).
    pub failures_before_down: Option<u32>,
    /// Passed health checks in a row before it is up again.
    pub passes_before_up: Option<u32>,
    /// The service's free-form labels (replacing those it had); `None`
    /// keeps them.
    pub meta: Option<BTreeMap<String, String>>,
}

impl Default for ServiceRegistration {
    /// No URL yet, one instance, a 30-second lease, Roster's thresholds.
    fn default() -> Self {
        Self {
            instance: None,
            description: None,
            base_url: String::new(),
            health_url: None,
            modules_url: None,
            manifest: None,
            categories: Vec::new(),
            ttl: Duration::from_secs(30),
            draining: false,
            failures_before_down: None,
            passes_before_up: None,
            meta: None,
        }
    }
}

impl ServiceRegistration {
    /// The body Roster reads (the wire contract).
    pub fn body(&self) -> Registration {
        Registration {
            base_url: self.base_url.clone(),
            health_url: self.health_url.clone(),
            modules_url: self.modules_url.clone(),
            categories: Some(self.categories.clone()),
            ttl_seconds: Some(i64::try_from(self.ttl.as_secs().max(1)).unwrap_or(i64::MAX)),
            draining: self.draining,
            failures_before_down: self.failures_before_down.map(i64::from),
            passes_before_up: self.passes_before_up.map(i64::from),
            description: self.description.clone(),
            meta: self.meta.clone(),
        }
    }
}

/// Why a registry call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    /// No token could be had.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Roster refused the call.
    #[error("Roster answered {status}: {body}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// Roster's JSON error body.
        body: String,
    },
}

/// Keeps one service registered.
#[derive(Debug, Clone)]
pub struct RegistryAgent {
    roster: String,
    name: String,
    tokens: TokenSource,
    registration: Arc<ServiceRegistration>,
    http: reqwest::Client,
    backoff: Backoff,
}

/// What the agent has done, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentCounts {
    /// Registrations made (the first, and each after Roster forgot the service).
    pub registrations: u64,
    /// Heartbeats Roster answered.
    pub heartbeats: u64,
    /// Heartbeats that failed (Roster unreachable, or refusing).
    pub failures: u64,
}

/// A running agent. [`AgentHandle::leave`] on shutdown.
#[derive(Debug)]
pub struct AgentHandle {
    agent: RegistryAgent,
    stop: watch::Sender<bool>,
    counts: watch::Receiver<AgentCounts>,
    task: tokio::task::JoinHandle<()>,
}

impl RegistryAgent {
    /// An agent for the service `name` on the Roster at `roster` (its issuer
    /// URL), acting with `tokens` (the service's own credentials).
    pub fn new(roster: &str, name: &str, tokens: TokenSource, registration: ServiceRegistration) -> Self {
        Self {
            roster: roster.trim_end_matches('/').to_string(),
            name: name.to_string(),
            tokens,
            registration: Arc::new(registration),
            http: crate::http_client(Duration::from_secs(10)),
            backoff: Backoff::default(),
        }
    }

    fn url(&self, what: &str) -> String {
        format!("{}/api/v1/services/{}/{what}", self.roster, self.name)
    }

    /// This instance's path under the service, with `what` after it.
    fn instance(&self, what: &str) -> String {
        let id = self.registration.instance.as_deref().unwrap_or("default");
        let id = percent_encode(id);
        if what.is_empty() {
            format!("instances/{id}")
        } else {
            format!("instances/{id}/{what}")
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        what: &str,
        body: Option<serde_json::Value>,
    ) -> Result<u16, RegistryError> {
        let url = self.url(what);
        let resp = self
            .tokens
            .send(&TokenRequest::new(), || {
                let req = self.http.request(method.clone(), &url);
                match &body {
                    Some(b) => req.json(b),
                    None => req,
                }
            })
            .await?;
        let status = resp.status().as_u16();
        if resp.status().is_success() || status == 404 {
            return Ok(status);
        }
        let body = resp.text().await.unwrap_or_default();
        Err(RegistryError::Status { status, body })
    }

    /// Register once (and push the manifest, if any).
    pub async fn register(&self) -> Result<(), RegistryError> {
        let r = &self.registration;
        let body = serde_json::to_value(r.body()).unwrap_or_default();
        if self.call(reqwest::Method::PUT, &self.instance(""), Some(body)).await? == 404 {
            return Err(RegistryError::Status {
                status: 404,
                body: format!("no service principal named {}", self.name),
            });
        }
        if let Some(m) = &r.manifest {
            self.call(reqwest::Method::PUT, "modules", Some(m.clone())).await?;
        }
        Ok(())
    }

    /// Register now, then keep the registration alive in a background task.
    pub async fn start(self) -> Result<AgentHandle, RegistryError> {
        self.register().await?;
        let (stop, stopped) = watch::channel(false);
        let (counts_tx, counts) = watch::channel(AgentCounts {
            registrations: 1,
            ..AgentCounts::default()
        });
        let task = tokio::spawn(self.clone().run(stopped, counts_tx));
        Ok(AgentHandle {
            agent: self,
            stop,
            counts,
            task,
        })
    }

    async fn run(self, mut stopped: watch::Receiver<bool>, counts: watch::Sender<AgentCounts>) {
        let interval = (self.registration.ttl / 3).max(Duration::from_millis(300));
        let mut failures = 0u32;
        let mut pause = interval;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stopped.wait_for(|s| *s) => return,
            }
            let beat = match self
                .call(reqwest::Method::POST, &self.instance("heartbeat"), None)
                .await
            {
                // Roster forgot us (a new database, or we were removed): register again.
                Ok(404) => self.register().await.map(|_| true),
                Ok(_) => Ok(false),
                Err(e) => Err(e),
            };
            match beat {
                Ok(registered) => {
                    failures = 0;
                    pause = interval;
                    counts.send_modify(|c| {
                        c.heartbeats += 1;
                        c.registrations += u64::from(registered);
                    });
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    pause = self.backoff.after(failures).min(interval);
                    tracing::warn!(error = %e, "registry heartbeat failed");
                    counts.send_modify(|c| c.failures += 1);
                }
            }
        }
    }
}

impl AgentHandle {
    /// What the agent has done so far.
    pub fn counts(&self) -> AgentCounts {
        *self.counts.borrow()
    }

    #[cfg(feature = "testing")]
    /// Resolve once `pred` holds for the counts.
    pub async fn until(&self, pred: impl Fn(&AgentCounts) -> bool) -> AgentCounts {
        let mut rx = self.counts.clone();
        match rx.wait_for(|c| pred(c)).await {
            Ok(c) => *c,
            Err(_) => self.counts(),
        }
    }

    /// Stop heartbeating and tell Roster the service is leaving
    /// (`DELETE /api/v1/services/{name}/instances/{id}`).
    pub async fn leave(self) -> Result<(), RegistryError> {
        self.stop.send_replace(true);
        let _ = self.task.await;
        self.agent
            .call(reqwest::Method::DELETE, &self.agent.instance(""), None)
            .await
            .map(|_| ())
    }
}

/// An instance id as one path segment: the characters Roster allows in ids
/// pass; anything else is percent-encoded (and refused by Roster with 422).
fn percent_encode(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_are_one_path_segment() {
        assert_eq!(percent_encode("web-1.eu:8080"), "web-1.eu:8080");
        assert_eq!(percent_encode("a/b c"), "a%2Fb%20c");
    }
}
