//! One service in the registry: its registration, heartbeats, manifest and
//! health results, and what clients see of it. Synchronous functions take a
//! connection and `now`; the async ones are the API's operations.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::manifest::{self, Manifest};
use super::{MAX_TTL_SECS, MIN_TTL_SECS, RegistryConfig, RegistryContext};
use crate::auth::access::Caller;
use crate::db::DbConnection;
use crate::error::{Error, Result};
use crate::models::audit::{self, NewAuditEvent, Outcome};
use crate::models::principal::{self, CategoryAssignment, Principal, PrincipalKind};
use crate::models::registration::{self, RegistrationRow, UP, update};
use crate::models::{from_db_time, to_db_time};
use crate::names::validate_categories;

/// `PUT /api/v1/services/{name}/registration`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub base_url: String,
    pub health_url: Option<String>,
    pub modules_url: Option<String>,
    /// Replaces the service's categories; omitted, they stay as they are.
    pub categories: Option<Vec<CategoryAssignment>>,
    pub ttl_seconds: Option<i64>,
}

/// A registration with its URLs checked and resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub base_url: String,
    pub health_url: Option<String>,
    pub modules_url: Option<String>,
    pub categories: Option<Vec<CategoryAssignment>>,
    pub ttl_seconds: i32,
}

/// The coarse reason recorded before a manifest's validation error.
const BAD_MANIFEST: &str = "bad_manifest";

/// Check a registration: `base_url` is an absolute http(s) URL; `health_url`
/// and `modules_url` may be relative to it (as the old `registry.modules=/getModules.json`
/// label was) and must stay on its host (any port, so a management port
/// works); every URL passes the fetch policy; the TTL is bounded.
pub fn resolve(reg: Registration, cfg: &RegistryConfig) -> Result<Resolved> {
    let base = url::Url::parse(&reg.base_url).map_err(|e| Error::invalid("base_url", e.to_string()))?;
    cfg.fetch
        .check_url(&base)
        .map_err(|e| Error::invalid("base_url", e.0))?;
    let join = |field: &str, u: Option<String>| -> Result<Option<String>> {
        match u {
            None => Ok(None),
            Some(u) => {
                let url = base.join(&u).map_err(|e| Error::invalid(field, e.to_string()))?;
                cfg.fetch.check_url(&url).map_err(|e| Error::invalid(field, e.0))?;
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
    Ok(Resolved {
        base_url: base.to_string(),
        health_url,
        modules_url,
        categories: reg.categories,
        ttl_seconds: ttl as i32,
    })
}

/// What clients see of a service.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceView {
    pub name: String,
    /// `up`, `down`, or `unknown` for a service that has not registered.
    pub status: &'static str,
    pub base_url: Option<String>,
    pub health_url: Option<String>,
    pub modules_url: Option<String>,
    pub categories: Vec<CategoryAssignment>,
    pub ttl_seconds: Option<i32>,
    pub last_seen: Option<DateTime<Utc>>,
    pub status_changed_at: Option<DateTime<Utc>>,
    pub health: Option<HealthView>,
    pub manifest: Option<Value>,
    /// `pushed` or `pulled`: which writer set the manifest last.
    pub manifest_source: Option<String>,
    pub manifest_error: Option<String>,
    pub manifest_fetched_at: Option<DateTime<Utc>>,
    pub registered_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HealthView {
    pub checked_at: DateTime<Utc>,
    pub ok: bool,
    pub error: Option<String>,
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
        if let Some(h) = &mut self.health {
            h.error = h.error.as_deref().map(public_error);
        }
        self.manifest_error = self.manifest_error.as_deref().map(public_error);
        self
    }
}

pub(super) fn status_str(s: &str) -> &'static str {
    if s == UP { "up" } else { "down" }
}

fn view(name: String, categories: Vec<CategoryAssignment>, row: Option<RegistrationRow>) -> ServiceView {
    match row {
        None => ServiceView {
            name,
            status: "unknown",
            base_url: None,
            health_url: None,
            modules_url: None,
            categories,
            ttl_seconds: None,
            last_seen: None,
            status_changed_at: None,
            health: None,
            manifest: None,
            manifest_source: None,
            manifest_error: None,
            manifest_fetched_at: None,
            registered_at: None,
        },
        Some(r) => ServiceView {
            name,
            status: status_str(&r.status),
            base_url: Some(r.base_url),
            health_url: r.health_url,
            modules_url: r.modules_url,
            categories,
            ttl_seconds: Some(r.ttl_seconds),
            last_seen: Some(from_db_time(r.last_seen)),
            status_changed_at: Some(from_db_time(r.status_changed_at)),
            health: r.health_checked_at.map(|t| HealthView {
                checked_at: from_db_time(t),
                ok: r.health_ok == Some(1),
                error: r.health_error,
            }),
            manifest: r.manifest.and_then(|m| serde_json::from_str(&m).ok()),
            manifest_source: r.manifest_source,
            manifest_error: r.manifest_error,
            manifest_fetched_at: r.manifest_fetched_at.map(from_db_time),
            registered_at: Some(from_db_time(r.registered_at)),
        },
    }
}

/// The service principal named `name`, or 404.
pub fn service_principal(conn: &mut DbConnection, name: &str) -> Result<Principal> {
    match principal::find_by_name(conn, name)? {
        Some(p) if p.kind == PrincipalKind::Service.as_str() => Ok(p),
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

/// The service `name`, if `caller` may change it.
async fn writable(ctx: &RegistryContext, caller: &Caller, name: String) -> Result<Principal> {
    let p = ctx.db.run(move |c| service_principal(c, &name)).await?;
    may_write(caller, &p)?;
    Ok(p)
}

/// `PUT /api/v1/services/{name}/registration`. Returns the view and the new
/// change index. The body is read only once the caller may write, so a bad
/// body never hides a 403.
pub async fn put_registration(
    ctx: &RegistryContext,
    caller: &Caller,
    name: String,
    body: impl Future<Output = Result<Registration>>,
    now: DateTime<Utc>,
) -> Result<(ServiceView, i64)> {
    let p = writable(ctx, caller, name).await?;
    let resolved = resolve(body.await?, &ctx.config)?;
    let actor = caller.principal.id.clone();
    let (view, index) = ctx.db.run(move |c| register(c, &p, &resolved, &actor, now)).await?;
    ctx.feed.observe(index);
    Ok((view, index))
}

/// `DELETE /api/v1/services/{name}/registration`: the service says it is
/// leaving (a clean shutdown). Its registration goes at once, so listings
/// and the menu drop it now rather than when its lease runs out; it stays a
/// principal and may register again. Leaving twice is not an error.
pub async fn leave(
    ctx: &RegistryContext,
    caller: &Caller,
    name: String,
    now: DateTime<Utc>,
) -> Result<(ServiceView, i64)> {
    let p = writable(ctx, caller, name).await?;
    let actor = caller.principal.id.clone();
    let (view, index) = ctx.db.run(move |c| deregister(c, &p, &actor, now)).await?;
    ctx.feed.observe(index);
    Ok((view, index))
}

/// Delete a service's registration; returns its view (now `unknown`) and
/// the change index, bumped only when there was a registration.
pub fn deregister(
    conn: &mut DbConnection,
    p: &Principal,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(ServiceView, i64)> {
    crate::db::transaction(conn, |conn| {
        let index = if registration::delete(conn, &p.id)? {
            audit::record(
                conn,
                NewAuditEvent::new("service.deregistered", Outcome::Ok)
                    .actor(Some(actor))
                    .principal(Some(&p.id)),
                now,
            )?;
            registration::bump_index(conn)?
        } else {
            registration::current_index(conn)?
        };
        Ok((get(conn, &p.name)?, index))
    })
}

/// `POST /api/v1/services/{name}/heartbeat`.
pub async fn beat(ctx: &RegistryContext, caller: &Caller, name: String, now: DateTime<Utc>) -> Result<ServiceView> {
    let p = writable(ctx, caller, name).await?;
    let (view, index) = ctx.db.run(move |c| heartbeat(c, &p, now)).await?;
    if let Some(i) = index {
        ctx.feed.observe(i);
    }
    Ok(view)
}

/// `PUT /api/v1/services/{name}/modules`: a pushed manifest. An invalid one
/// is refused with 422 naming the field, and the previous one stays.
pub async fn put_manifest(
    ctx: &RegistryContext,
    caller: &Caller,
    name: String,
    body: impl Future<Output = Result<Vec<u8>>>,
    now: DateTime<Utc>,
) -> Result<ServiceView> {
    let p = writable(ctx, caller, name).await?;
    let m = manifest::parse(&body.await?)?;
    let (view, index) = ctx.db.run(move |c| push_manifest(c, &p, &m, now)).await?;
    if let Some(i) = index {
        ctx.feed.observe(i);
    }
    Ok(view)
}

/// `GET /api/v1/services/{name}`, as `caller` may read it.
pub async fn fetch(ctx: &RegistryContext, caller: &Caller, name: String) -> Result<ServiceView> {
    Ok(ctx.db.run(move |c| get(c, &name)).await?.for_reader(caller))
}

pub fn get(conn: &mut DbConnection, name: &str) -> Result<ServiceView> {
    let p = service_principal(conn, name)?;
    let cats = principal::categories_of(conn, &p.id)?;
    let row = registration::find(conn, &p.id)?;
    Ok(view(p.name, cats, row))
}

/// Register (or re-register) a service. Registering starts the TTL lease as
/// if a heartbeat had arrived, and schedules a health check and manifest pull now.
pub fn register(
    conn: &mut DbConnection,
    p: &Principal,
    reg: &Resolved,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(ServiceView, i64)> {
    crate::db::transaction(conn, |conn| {
        let existing = registration::find(conn, &p.id)?;
        let t = to_db_time(now);
        let lease = to_db_time(now + Duration::seconds(i64::from(reg.ttl_seconds)));
        let same_modules = existing.as_ref().is_some_and(|e| e.modules_url == reg.modules_url);
        let row = RegistrationRow {
            principal_id: p.id.clone(),
            base_url: reg.base_url.clone(),
            health_url: reg.health_url.clone(),
            modules_url: reg.modules_url.clone(),
            ttl_seconds: reg.ttl_seconds,
            status: UP.to_string(),
            status_changed_at: match &existing {
                Some(e) if e.status == UP => e.status_changed_at,
                _ => t,
            },
            last_seen: t,
            lease_expires_at: lease,
            health_checked_at: None,
            health_ok: None,
            health_error: None,
            // A pushed or pulled manifest survives re-registration from the same source.
            manifest: existing.as_ref().and_then(|e| e.manifest.clone()),
            manifest_etag: existing
                .as_ref()
                .filter(|_| same_modules)
                .and_then(|e| e.manifest_etag.clone()),
            manifest_fetched_at: existing.as_ref().and_then(|e| e.manifest_fetched_at),
            manifest_error: None,
            manifest_source: existing.as_ref().and_then(|e| e.manifest_source.clone()),
            manifest_pulled_digest: existing
                .as_ref()
                .filter(|_| same_modules)
                .and_then(|e| e.manifest_pulled_digest.clone()),
            registered_at: existing.as_ref().map(|e| e.registered_at).unwrap_or(t),
            updated_at: t,
            next_health_at: reg.health_url.as_ref().map(|_| t),
            next_manifest_at: reg.modules_url.as_ref().map(|_| t),
            poll_owner: None,
            poll_lease_until: None,
        };
        match existing {
            Some(_) => registration::save(conn, &row)?,
            None => registration::insert(conn, &row)?,
        }
        if let Some(cats) = &reg.categories {
            principal::set_categories(conn, &p.id, cats, t)?;
        }
        let index = registration::bump_index(conn)?;
        audit::record(
            conn,
            NewAuditEvent::new("service.registered", Outcome::Ok)
                .actor(Some(actor))
                .principal(Some(&p.id))
                .details(serde_json::json!({"base_url": reg.base_url, "categories": reg.categories})),
            now,
        )?;
        let cats = principal::categories_of(conn, &p.id)?;
        Ok((view(p.name.clone(), cats, Some(row)), index))
    })
}

/// Renew the lease (Consul TTL check, Eureka renewal). Returns the new change
/// index when the service came back up.
pub fn heartbeat(conn: &mut DbConnection, p: &Principal, now: DateTime<Utc>) -> Result<(ServiceView, Option<i64>)> {
    crate::db::transaction(conn, |conn| {
        let row = registration::find(conn, &p.id)?
            .ok_or_else(|| Error::NotFound(format!("registration of service {}", p.name)))?;
        let lease = now + Duration::seconds(i64::from(row.ttl_seconds));
        update::renew_lease(conn, &p.id, now, lease)?;
        let index = if update::mark_up(conn, &p.id, now)? {
            Some(registration::bump_index(conn)?)
        } else {
            None
        };
        Ok((get(conn, &p.name)?, index))
    })
}

/// Store a pushed manifest. An invalid one is refused before this is called,
/// so the previous manifest stays.
///
/// Precedence: the last writer wins. A push replaces whatever was pulled; a
/// later pull replaces the push only when the manifest at `modules_url`
/// changed since the previous pull (a 304, or the same content, leaves the
/// push in place), so a service may push a manifest and keep serving an
/// older one without the two fighting.
pub fn push_manifest(
    conn: &mut DbConnection,
    p: &Principal,
    manifest: &Manifest,
    now: DateTime<Utc>,
) -> Result<(ServiceView, Option<i64>)> {
    let json = serde_json::to_string(manifest).map_err(Error::internal)?;
    crate::db::transaction(conn, |conn| {
        let row = registration::find(conn, &p.id)?
            .ok_or_else(|| Error::NotFound(format!("registration of service {}", p.name)))?;
        update::manifest_pushed(conn, &p.id, &json, now)?;
        let index = if row.manifest.as_deref() != Some(json.as_str()) {
            Some(registration::bump_index(conn)?)
        } else {
            None
        };
        Ok((get(conn, &p.name)?, index))
    })
}

/// Listed services: registered ones, optionally by category and status.
pub fn list(conn: &mut DbConnection, category: Option<&str>, status: Option<&str>) -> Result<Vec<ServiceView>> {
    let rows = registration::list(conn, category, status)?;
    let ids: Vec<String> = rows.iter().map(|(_, r)| r.principal_id.clone()).collect();
    let mut cats = principal::categories_by_principal(conn, &ids)?;
    Ok(rows
        .into_iter()
        .map(|(name, row)| {
            let c = cats.remove(&row.principal_id).unwrap_or_default();
            view(name, c, Some(row))
        })
        .collect())
}

/// The manifests of services that are up, for the menu.
pub fn up_manifests(conn: &mut DbConnection) -> Result<Vec<(String, Manifest)>> {
    Ok(registration::list(conn, None, Some(UP))?
        .into_iter()
        .filter_map(|(name, row)| {
            // Stored manifests were validated on the way in.
            let m: Manifest = serde_json::from_str(&row.manifest?).ok()?;
            Some((name, m))
        })
        .collect())
}

/// Mark down every service whose lease lapsed, and drop those down for longer
/// than the deregistration window. Returns the new index if anything changed.
pub fn sweep(conn: &mut DbConnection, cfg: &RegistryConfig, now: DateTime<Utc>) -> Result<Option<i64>> {
    crate::db::transaction(conn, |conn| {
        let lapsed = registration::lapse_leases(conn, now)?;
        let dropped = registration::deregister_down_since(conn, now - cfg.deregister_after)?;
        if lapsed + dropped > 0 {
            Ok(Some(registration::bump_index(conn)?))
        } else {
            Ok(None)
        }
    })
}

/// Record a health check: a pass renews the lease and may bring the service
/// up; a failure brings it down. Returns the new index if the status changed.
pub fn record_health(
    conn: &mut DbConnection,
    id: &str,
    result: std::result::Result<(), String>,
    cfg: &RegistryConfig,
    now: DateTime<Utc>,
) -> Result<Option<i64>> {
    crate::db::transaction(conn, |conn| {
        let Some(row) = registration::find(conn, id)? else {
            return Ok(None);
        };
        let next = now + cfg.health_interval;
        let changed = match &result {
            Ok(()) => {
                update::health_result(conn, id, true, None, now, next)?;
                update::renew_lease(conn, id, now, now + Duration::seconds(i64::from(row.ttl_seconds)))?;
                update::mark_up(conn, id, now)?
            }
            Err(e) => {
                update::health_result(conn, id, false, Some(e), now, next)?;
                update::mark_down(conn, id, now)?
            }
        };
        if changed {
            Ok(Some(registration::bump_index(conn)?))
        } else {
            Ok(None)
        }
    })
}

/// The outcome of a manifest pull: `Ok(None)` is 304 Not Modified,
/// `Ok(Some((body, etag)))` a fresh body, `Err` a failed pull.
pub type ManifestPull = std::result::Result<Option<(Vec<u8>, Option<String>)>, String>;

/// Record a manifest pull: a valid new manifest replaces the old one; an
/// invalid one or a failed pull keeps the last good one and records the error.
pub fn record_manifest(
    conn: &mut DbConnection,
    id: &str,
    result: ManifestPull,
    cfg: &RegistryConfig,
    now: DateTime<Utc>,
) -> Result<Option<i64>> {
    crate::db::transaction(conn, |conn| {
        let Some(row) = registration::find(conn, id)? else {
            return Ok(None);
        };
        update::next_manifest_at(conn, id, now + cfg.manifest_interval)?;
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
                        Ok(Some(registration::bump_index(conn)?))
                    } else {
                        Ok(None)
                    }
                }
                Err(e) => {
                    update::manifest_error(conn, id, &format!("{BAD_MANIFEST}: invalid manifest: {e}"), now)?;
                    Ok(None)
                }
            },
            Err(e) => {
                update::manifest_error(conn, id, e, now)?;
                Ok(None)
            }
        }
    })
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
