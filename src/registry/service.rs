//! One service in the registry: what it registers, what clients see of it,
//! and its manifest. Its instances' lifecycle is in `super::instance`.
//! Synchronous functions take a connection and `now`; the async ones are the
//! API's operations.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::damping::{self, MAX_THRESHOLD, MIN_THRESHOLD, Thresholds};
use super::manifest::{self, Manifest};
use super::{Change, MAX_TTL_SECS, MIN_TTL_SECS, RegistryConfig, RegistryContext};
use crate::auth::access::Caller;
use crate::db::DbConnection;
use crate::error::{Error, Result};
use crate::models::instance::{self, InstanceRow};
use crate::models::principal::{self, CategoryAssignment, Principal, PrincipalKind};
use crate::models::registration::{self, Health, MODULES_KEY, ServiceRow, update};
use crate::models::transition::{self, TransitionRow};
use crate::names::{validate_categories, validate_name};

/// Longest `description`, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// Most `meta` entries, and the longest value in characters.
pub const MAX_META_ENTRIES: usize = 32;
pub const MAX_META_VALUE_CHARS: usize = 256;
/// Transitions shown on a service.
pub const SHOWN_TRANSITIONS: i64 = 10;

/// The body of `PUT /api/v1/services/{name}/instances/{id}` and of the
/// single-instance `PUT /api/v1/services/{name}/registration` (the instance
/// `default`): the wire contract shared with `roster-client`.
pub use roster_proto::registration::Registration;

/// A registration with its URLs checked and resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub base_url: String,
    pub health_url: Option<String>,
    pub modules_url: Option<String>,
    pub categories: Option<Vec<CategoryAssignment>>,
    pub ttl_seconds: i32,
    pub draining: bool,
    pub thresholds: Thresholds,
    pub description: Option<String>,
    /// `meta` as stored: a JSON object.
    pub meta: Option<String>,
}

/// The coarse reason recorded before a manifest's validation error.
const BAD_MANIFEST: &str = "bad_manifest";

fn threshold(field: &str, v: Option<i64>, default: i32) -> Result<i32> {
    let v = v.unwrap_or(i64::from(default));
    if !(i64::from(MIN_THRESHOLD)..=i64::from(MAX_THRESHOLD)).contains(&v) {
        return Err(Error::invalid(
            field,
            format!("must be {MIN_THRESHOLD} to {MAX_THRESHOLD}"),
        ));
    }
    Ok(v as i32)
}

fn printable(field: &str, s: &str, max: usize) -> Result<()> {
    if s.chars().count() > max {
        return Err(Error::invalid(field, format!("longer than {max} characters")));
    }
    if s.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// `description` is short text; `meta` is a bounded map from names (the
/// principal-name rule) to short text.
fn check_meta(meta: &BTreeMap<String, String>) -> Result<String> {
    if meta.len() > MAX_META_ENTRIES {
        return Err(Error::invalid("meta", format!("more than {MAX_META_ENTRIES} entries")));
    }
    for (k, v) in meta {
        validate_name("meta", k)?;
        printable("meta", v, MAX_META_VALUE_CHARS)?;
    }
    serde_json::to_string(meta).map_err(Error::internal)
}

/// Every service that reads the registry sees these URLs, so none may carry
/// a query or a fragment: that is where tokens get pasted (`?token=…`).
fn nothing_hidden(field: &str, url: &url::Url) -> Result<()> {
    if url.query().is_some_and(|q| !q.is_empty()) || url.fragment().is_some_and(|f| !f.is_empty()) {
        return Err(Error::invalid(
            field,
            "must not carry a query or fragment: every service reading the registry sees it",
        ));
    }
    Ok(())
}

/// Check a registration: `base_url` is an absolute http(s) URL; `health_url`
/// and `modules_url` may be relative to it (as the old `registry.modules=/getModules.json`
/// label was) and must stay on its host (any port, so a management port
/// works); every URL passes the fetch policy and carries no query or
/// fragment; the TTL, thresholds,
/// description and meta are bounded.
pub fn resolve(reg: Registration, cfg: &RegistryConfig) -> Result<Resolved> {
    let base = url::Url::parse(&reg.base_url).map_err(|e| Error::invalid("base_url", e.to_string()))?;
    cfg.fetch
        .check_url(&base)
        .map_err(|e| Error::invalid("base_url", e.0))?;
    nothing_hidden("base_url", &base)?;
    let join = |field: &str, u: Option<String>| -> Result<Option<String>> {
        match u {
            None => Ok(None),
            Some(u) => {
                let url = base.join(&u).map_err(|e| Error::invalid(field, e.to_string()))?;
                cfg.fetch.check_url(&url).map_err(|e| Error::invalid(field, e.0))?;
                nothing_hidden(field, &url)?;
                if url.host() != base.host() {
                    return Err(Error::invalid(field, "must be on the host of base_url"));
                }
                Ok(Some(url.to_string()))
            }
        }
    };
    let health_url = join("health_url", reg.health_url)?;
    let modules_url = join("modules_url", reg.modules_url)?;
    let ttl = reg.ttl_seconds.unwrap_or(cfg.default_ttl.num_seconds());
    if !(MIN_TTL_SECS..=MAX_TTL_SECS).contains(&ttl) {
        return Err(Error::invalid(
            "ttl_seconds",
            format!("must be {MIN_TTL_SECS} to {MAX_TTL_SECS}"),
        ));
    }
    if let Some(cats) = &reg.categories {
        validate_categories(cats)?;
    }
    let thresholds = Thresholds {
        failures_before_down: threshold(
            "failures_before_down",
            reg.failures_before_down,
            damping::DEFAULT_FAILURES_BEFORE_DOWN,
        )?,
        passes_before_up: threshold(
            "passes_before_up",
            reg.passes_before_up,
            damping::DEFAULT_PASSES_BEFORE_UP,
        )?,
    };
    if let Some(d) = &reg.description {
        printable("description", d, MAX_DESCRIPTION_CHARS)?;
    }
    let meta = reg.meta.as_ref().map(check_meta).transpose()?;
    Ok(Resolved {
        base_url: base.to_string(),
        health_url,
        modules_url,
        categories: reg.categories,
        ttl_seconds: ttl as i32,
        draining: reg.draining,
        thresholds,
        description: reg.description,
        meta,
    })
}

/// What clients see of a service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceView {
    pub name: String,
    /// `up` when at least one instance is up, `down` when none is, and
    /// `unknown` when it has no instances.
    pub status: &'static str,
    pub description: Option<String>,
    pub meta: BTreeMap<String, String>,
    pub categories: Vec<CategoryAssignment>,
    pub status_changed_at: Option<DateTime<Utc>>,
    pub registered_at: Option<DateTime<Utc>>,
    pub instances: Vec<InstanceView>,
    /// The single-instance fields of the first registry round: those of the
    /// instance `default`, or else of the first instance by id.
    pub base_url: Option<String>,
    pub health_url: Option<String>,
    pub modules_url: Option<String>,
    pub ttl_seconds: Option<i32>,
    pub last_seen: Option<DateTime<Utc>>,
    pub health: Option<HealthView>,
    pub manifest: Option<Value>,
    /// `pushed` or `pulled`: which writer set the manifest last.
    pub manifest_source: Option<String>,
    pub manifest_error: Option<String>,
    pub manifest_fetched_at: Option<DateTime<Utc>>,
    /// The latest status changes of the service and its instances, newest
    /// first; shown on the service itself, not in listings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transitions: Option<Vec<TransitionView>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceView {
    pub id: String,
    /// `up` or `down`.
    pub status: &'static str,
    pub draining: bool,
    pub base_url: String,
    pub health_url: Option<String>,
    pub modules_url: Option<String>,
    pub ttl_seconds: i32,
    pub last_seen: DateTime<Utc>,
    pub status_changed_at: DateTime<Utc>,
    pub health: Option<HealthView>,
    pub failures_before_down: i32,
    pub passes_before_up: i32,
    pub source: crate::models::instance::Source,
    pub registered_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthView {
    pub checked_at: DateTime<Utc>,
    pub ok: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransitionView {
    pub at: DateTime<Utc>,
    /// The instance, or `null` for the service's own status.
    pub instance: Option<String>,
    pub from: String,
    pub to: String,
    pub reason: String,
}

/// The part of a recorded fetch error that anyone may read: its coarse
/// reason (`unreachable`, `timeout`, `bad_status`, `bad_manifest`).
pub fn public_error(recorded: &str) -> String {
    let reason = recorded.split(':').next().unwrap_or("");
    match reason {
        "timeout" | "bad_status" | "bad_manifest" | "unreachable" => reason.to_string(),
        _ => "unreachable".to_string(),
    }
}

impl ServiceView {
    /// What `caller` may read: the raw fetch errors go to admins and the
    /// service itself; everyone else sees the coarse reason only.
    pub fn for_reader(mut self, caller: &Caller) -> Self {
        if caller.is_admin() || caller.principal.name == self.name {
            return self;
        }
        let coarse = |h: &mut Option<HealthView>| {
            if let Some(h) = h {
                h.error = h.error.as_deref().map(public_error);
            }
        };
        coarse(&mut self.health);
        for i in &mut self.instances {
            coarse(&mut i.health);
        }
        self.manifest_error = self.manifest_error.as_deref().map(public_error);
        self
    }
}

pub(super) fn status_str(s: Health) -> &'static str {
    s.as_str()
}

fn health_view(r: &InstanceRow) -> Option<HealthView> {
    r.health_checked_at.map(|t| HealthView {
        checked_at: t,
        ok: r.health_ok == Some(1),
        error: r.health_error.clone(),
    })
}

pub(super) fn instance_view(r: &InstanceRow) -> InstanceView {
    InstanceView {
        id: r.instance_id.clone(),
        status: status_str(r.status),
        draining: r.draining != 0,
        base_url: r.base_url.clone(),
        health_url: r.health_url.clone(),
        modules_url: r.modules_url.clone(),
        ttl_seconds: r.ttl_seconds,
        last_seen: r.last_seen,
        status_changed_at: r.status_changed_at,
        health: health_view(r),
        failures_before_down: r.failures_before_down,
        passes_before_up: r.passes_before_up,
        source: r.source,
        registered_at: r.registered_at,
    }
}

fn transition_view(t: TransitionRow) -> TransitionView {
    TransitionView {
        at: t.at,
        instance: t.instance_id,
        from: t.from_status,
        to: t.to_status,
        reason: t.reason,
    }
}

/// The instance whose fields fill the single-instance fields.
fn representative(instances: &[InstanceRow]) -> Option<&InstanceRow> {
    instances
        .iter()
        .find(|i| i.instance_id == super::DEFAULT_INSTANCE)
        .or_else(|| instances.first())
}

pub(super) fn view(
    name: String,
    categories: Vec<CategoryAssignment>,
    row: Option<ServiceRow>,
    instances: Vec<InstanceRow>,
    transitions: Option<Vec<TransitionRow>>,
) -> ServiceView {
    let rep = representative(&instances).cloned();
    let meta = row
        .as_ref()
        .and_then(|r| r.meta.as_deref())
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or_default();
    let transitions = transitions.map(|t| t.into_iter().map(transition_view).collect());
    let instances = instances.iter().map(instance_view).collect();
    match row {
        None => ServiceView {
            name,
            status: "unknown",
            description: None,
            meta,
            categories,
            status_changed_at: None,
            registered_at: None,
            instances,
            base_url: None,
            health_url: None,
            modules_url: None,
            ttl_seconds: None,
            last_seen: None,
            health: None,
            manifest: None,
            manifest_source: None,
            manifest_error: None,
            manifest_fetched_at: None,
            transitions,
        },
        Some(r) => ServiceView {
            name,
            status: status_str(r.status),
            description: r.description,
            meta,
            categories,
            status_changed_at: Some(r.status_changed_at),
            registered_at: Some(r.registered_at),
            instances,
            base_url: rep.as_ref().map(|i| i.base_url.clone()),
            health_url: rep.as_ref().and_then(|i| i.health_url.clone()),
            modules_url: rep.as_ref().and_then(|i| i.modules_url.clone()),
            ttl_seconds: rep.as_ref().map(|i| i.ttl_seconds),
            last_seen: rep.as_ref().map(|i| i.last_seen),
            health: rep.as_ref().and_then(health_view),
            manifest: r.manifest.and_then(|m| serde_json::from_str(&m).ok()),
            manifest_source: r.manifest_source,
            manifest_error: r.manifest_error,
            manifest_fetched_at: r.manifest_fetched_at,
            transitions,
        },
    }
}

/// The service principal named `name`, or 404.
pub fn service_principal(conn: &mut DbConnection, name: &str) -> Result<Principal> {
    match principal::find_by_name(conn, name)? {
        Some(p) if p.kind == PrincipalKind::Service => Ok(p),
        _ => Err(Error::NotFound(format!("service {name}"))),
    }
}

/// Who may change a service's registration: the service itself or an admin.
pub fn may_write(caller: &Caller, service: &Principal) -> Result<()> {
    if caller.principal.id == service.id || caller.is_admin() {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "only the service {} or an admin may change it",
            service.name
        )))
    }
}

/// Proof that a caller may change service `name`'s registration: what
/// [`RegistryContext::may_write`] hands the handler, which holds it while it
/// reads the body, so a bad body never hides a 403.
#[derive(Debug)]
pub struct MayWrite {
    pub(super) service: Principal,
    pub(super) actor: String,
}

impl RegistryContext {
    /// May `caller` change the service `name`? 404 for no such service,
    /// 403 for someone else's.
    pub async fn may_write(&self, caller: &Caller, name: String) -> Result<MayWrite> {
        let service = self.db.run(move |c| service_principal(c, &name)).await?;
        may_write(caller, &service)?;
        Ok(MayWrite {
            service,
            actor: caller.principal.id.clone(),
        })
    }

    /// `PUT /api/v1/services/{name}/modules`: a pushed manifest. An invalid
    /// one is refused with 422 naming the field, and the previous one stays.
    pub async fn push_manifest(&self, grant: &MayWrite, body: &[u8], now: DateTime<Utc>) -> Result<ServiceView> {
        let m = manifest::parse(body)?;
        let p = grant.service.clone();
        let (view, change) = self.db.run(move |c| push_manifest(c, &p, &m, now)).await?;
        self.publish(change.as_ref());
        Ok(view)
    }
}

/// The views a change to service `p` touches: its own, its categories'
/// (and `also`, the ones it just left), and the menu's when `menu`.
pub(super) fn keys_of(
    conn: &mut DbConnection,
    p: &Principal,
    also: &[CategoryAssignment],
    menu: bool,
) -> Result<Vec<String>> {
    let mut keys = vec![registration::service_key(&p.name)];
    for c in principal::categories_of(conn, &p.id)?.iter().chain(also) {
        let k = registration::category_key(&c.name);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    if menu {
        keys.push(MODULES_KEY.to_string());
    }
    Ok(keys)
}

/// Record a change to `p` in the caller's transaction.
pub(super) fn changed(
    conn: &mut crate::db::Tx<'_>,
    p: &Principal,
    also: &[CategoryAssignment],
    menu: bool,
) -> Result<Change> {
    let keys = keys_of(conn, p, also, menu)?;
    let index = registration::changed(conn, &keys)?;
    Ok(Change { index, keys })
}

/// One service with its instances and latest transitions.
pub(super) fn get(conn: &mut DbConnection, name: &str) -> Result<ServiceView> {
    let p = service_principal(conn, name)?;
    let cats = principal::categories_of(conn, &p.id)?;
    let row = registration::find(conn, &p.id)?;
    let instances = instance::of_service(conn, &p.id)?;
    let transitions = transition::recent(conn, &p.id, SHOWN_TRANSITIONS)?;
    Ok(view(p.name, cats, row, instances, Some(transitions)))
}

/// Store a pushed manifest. An invalid one is refused before this is called,
/// so the previous manifest stays.
///
/// Precedence: the last writer wins. A push replaces whatever was pulled; a
/// later pull replaces the push only when the manifest at `modules_url`
/// changed since the previous pull (a 304, or the same content, leaves the
/// push in place), so a service may push a manifest and keep serving an
/// older one without the two fighting.
fn push_manifest(
    conn: &mut DbConnection,
    p: &Principal,
    manifest: &Manifest,
    now: DateTime<Utc>,
) -> Result<(ServiceView, Option<Change>)> {
    let json = serde_json::to_string(manifest).map_err(Error::internal)?;
    crate::db::transaction(conn, |conn| {
        let row = registration::find(conn, &p.id)?
            .ok_or_else(|| Error::NotFound(format!("registration of service {}", p.name)))?;
        update::manifest_pushed(conn, &p.id, &json, now)?;
        let change = if row.manifest.as_deref() != Some(json.as_str()) {
            Some(changed(conn, p, &[], true)?)
        } else {
            None
        };
        Ok((get(conn, &p.name)?, change))
    })
}

/// Listed services: registered ones with their instances, optionally by
/// category and status.
pub fn list(conn: &mut DbConnection, category: Option<&str>, status: Option<Health>) -> Result<Vec<ServiceView>> {
    let rows = registration::list(conn, category, status)?;
    let ids: Vec<String> = rows.iter().map(|(_, r)| r.principal_id.clone()).collect();
    let mut cats = principal::categories_by_principal(conn, &ids)?;
    let mut instances: BTreeMap<String, Vec<InstanceRow>> = BTreeMap::new();
    for i in instance::of_services(conn, &ids)? {
        instances.entry(i.principal_id.clone()).or_default().push(i);
    }
    Ok(rows
        .into_iter()
        .map(|(name, row)| {
            let c = cats.remove(&row.principal_id).unwrap_or_default();
            let i = instances.remove(&row.principal_id).unwrap_or_default();
            view(name, c, Some(row), i, None)
        })
        .collect())
}

/// The manifests of services that are up, for the menu.
pub fn up_manifests(conn: &mut DbConnection) -> Result<Vec<(String, Manifest)>> {
    Ok(registration::list(conn, None, Some(Health::Up))?
        .into_iter()
        .filter_map(|(name, row)| {
            // Stored manifests were validated on the way in.
            let m: Manifest = serde_json::from_str(&row.manifest?).ok()?;
            Some((name, m))
        })
        .collect())
}

/// The outcome of a manifest pull: `Ok(None)` is 304 Not Modified,
/// `Ok(Some((body, etag)))` a fresh body, `Err` a failed pull.
pub type ManifestPull = std::result::Result<Option<(Vec<u8>, Option<String>)>, String>;

/// Record a manifest pull: a valid new manifest replaces the old one; an
/// invalid one or a failed pull keeps the last good one and records the error.
pub fn record_manifest(
    conn: &mut DbConnection,
    p: &Principal,
    result: ManifestPull,
    now: DateTime<Utc>,
) -> Result<Option<Change>> {
    let id = p.id.as_str();
    crate::db::transaction(conn, |conn| {
        let Some(row) = registration::find(conn, id)? else {
            return Ok(None);
        };
        match &result {
            Ok(None) => Ok(None), // 304: unchanged
            Ok(Some((bytes, etag))) => match manifest::parse(bytes) {
                Ok(m) => {
                    let json = serde_json::to_string(&m).map_err(Error::internal)?;
                    let digest = manifest::digest(&json);
                    if row.manifest_pulled_digest.as_deref() == Some(digest.as_str()) {
                        // What the service serves has not changed since the
                        // last pull: a manifest pushed since then stays.
                        update::manifest_unchanged(conn, id, etag.as_deref(), now)?;
                        return Ok(None);
                    }
                    update::manifest_pulled(conn, id, &json, etag.as_deref(), &digest, now)?;
                    if row.manifest.as_deref() != Some(json.as_str()) {
                        Ok(Some(changed(conn, p, &[], true)?))
                    } else {
                        Ok(None)
                    }
                }
                Err(e) => {
                    update::manifest_error(conn, id, &format!("{BAD_MANIFEST}: invalid manifest: {e}"), now)?;
                    crate::telemetry::manifest_error(BAD_MANIFEST);
                    Ok(None)
                }
            },
            Err(e) => {
                update::manifest_error(conn, id, e, now)?;
                crate::telemetry::manifest_error(&public_error(e));
                Ok(None)
            }
        }
    })
}

/// A new service row for a first registration at `t`.
pub(super) fn new_service_row(principal_id: &str, t: DateTime<Utc>) -> ServiceRow {
    ServiceRow {
        principal_id: principal_id.to_string(),
        status: Health::Down,
        status_changed_at: t,
        description: None,
        meta: None,
        manifest: None,
        manifest_etag: None,
        manifest_fetched_at: None,
        manifest_error: None,
        manifest_source: None,
        manifest_pulled_digest: None,
        next_manifest_at: None,
        registered_at: t,
        updated_at: t,
    }
}

/// Derive the service's status from its instances after a change to one of
/// them, and record a transition when it moved. With no instance left, the
/// service's registration goes (it is `unknown` again). `before` is the
/// status before the transaction (`None`: it had no registration).
/// Returns whether the status changed.
pub(super) fn settle(
    conn: &mut DbConnection,
    p: &Principal,
    before: Option<Health>,
    cause: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let instances = instance::of_service(conn, &p.id)?;
    let from = before.map_or("unknown", Health::as_str);
    if instances.is_empty() {
        registration::delete(conn, &p.id)?;
        if before.is_some() {
            transition::record(conn, &p.id, None, from, "unknown", "no instance is left", now)?;
        }
        return Ok(before.is_some());
    }
    let up = instances.iter().find(|i| i.status == Health::Up);
    let to = if up.is_some() { Health::Up } else { Health::Down };
    if before == Some(to) {
        return Ok(false);
    }
    registration::set_status(conn, &p.id, to, now)?;
    let reason = match up {
        Some(i) if before.is_none() => format!("instance {} registered", i.instance_id),
        Some(i) => format!("instance {} is up", i.instance_id),
        None => format!("no instance is up ({cause})"),
    };
    transition::record(conn, &p.id, None, from, to.as_str(), &reason, now)?;
    crate::telemetry::transition(to.as_str());
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(base: &str, health: Option<&str>, modules: Option<&str>) -> Registration {
        Registration {
            base_url: base.into(),
            health_url: health.map(str::to_string),
            modules_url: modules.map(str::to_string),
            categories: None,
            ttl_seconds: None,
            draining: false,
            failures_before_down: None,
            passes_before_up: None,
            description: None,
            meta: None,
        }
    }

    #[test]
    fn relative_urls_resolve_against_base_url() {
        let cfg = RegistryConfig::default();
        let r = resolve(
            reg("http://10.0.0.5:8080/app/", Some("health"), Some("/getModules.json")),
            &cfg,
        )
        .unwrap();
        assert_eq!(r.base_url, "http://10.0.0.5:8080/app/");
        assert_eq!(r.health_url.as_deref(), Some("http://10.0.0.5:8080/app/health"));
        assert_eq!(r.modules_url.as_deref(), Some("http://10.0.0.5:8080/getModules.json"));
        assert_eq!(r.ttl_seconds, 30);
        // Another port of the same host is fine (a management port).
        let r = resolve(
            reg("https://billing.internal", Some("http://billing.internal:9090/h"), None),
            &cfg,
        )
        .unwrap();
        assert_eq!(r.health_url.as_deref(), Some("http://billing.internal:9090/h"));
    }

    fn refused_field(r: Registration) -> (String, String) {
        match resolve(r, &RegistryConfig::default()) {
            Err(Error::Invalid { field, message }) => (field, message),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fetch_urls_stay_on_the_service_host_and_inside_the_policy() {
        let on = |field: &str, msg: &str| (field.to_string(), msg.to_string());
        assert_eq!(
            refused_field(reg("http://billing.internal/", Some("http://other.internal/h"), None)),
            on("health_url", "must be on the host of base_url")
        );
        assert_eq!(
            refused_field(reg("http://billing.internal/", None, Some("//other.internal/m.json"))),
            on("modules_url", "must be on the host of base_url")
        );
        assert_eq!(
            refused_field(reg(
                "http://10.0.0.5/",
                Some("http://169.254.169.254/latest/meta-data"),
                None
            )),
            on("health_url", "the address 169.254.169.254 is not allowed")
        );
        assert_eq!(
            refused_field(reg("http://169.254.169.254/", Some("health"), None)),
            on("base_url", "the address 169.254.169.254 is not allowed")
        );
        assert_eq!(
            refused_field(reg("http://0xa9fea9fe/", None, None)),
            on("base_url", "the address 169.254.169.254 is not allowed")
        );
        assert_eq!(
            refused_field(reg("http://[fe80::1]/", None, None)),
            on("base_url", "the address fe80::1 is not allowed")
        );
        assert_eq!(
            refused_field(reg("http://admin:pw@billing.internal/", None, None)),
            on("base_url", "must not carry a user name or password")
        );
        assert_eq!(
            refused_field(reg(
                "http://billing.internal/",
                Some("http://u:p@billing.internal/h"),
                None
            )),
            on("health_url", "must not carry a user name or password")
        );
    }

    #[test]
    fn only_http_urls_and_bounded_ttls() {
        let cfg = RegistryConfig::default();
        for (r, field) in [
            (reg("ftp://x", None, None), "base_url"),
            (reg("/relative", None, None), "base_url"),
            (reg("http://x", Some("file:///etc/passwd"), None), "health_url"),
            (reg("http://x", None, Some("javascript:alert(1)")), "modules_url"),
        ] {
            match resolve(r, &cfg) {
                Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{other:?}"),
            }
        }
        let mut r = reg("http://x", None, None);
        r.ttl_seconds = Some(0);
        assert!(resolve(r.clone(), &cfg).is_err());
        r.ttl_seconds = Some(MAX_TTL_SECS + 1);
        assert!(resolve(r, &cfg).is_err());
    }
}
