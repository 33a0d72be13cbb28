//! Registry endpoints: thin handlers over `crate::registry`.

use std::time::Duration as StdDuration;

use actix_web::http::header::{AUTHORIZATION, ETAG, IF_NONE_MATCH, VARY};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::json;
use crate::auth::bearer::{self, Bearer, BearerError};
use crate::error::{Error, Result};
use crate::models::page::Page;
use crate::models::principal::Principal;
use crate::models::registration;
use crate::registry::manifest;
use crate::registry::service::{self, Registration};
use crate::state::AppState;

/// Header carrying the registry's change index (Consul's `X-Consul-Index`).
pub const INDEX_HEADER: &str = "X-Roster-Index";
/// Longest long-poll wait.
pub const MAX_WAIT: StdDuration = StdDuration::from_secs(300);
pub const DEFAULT_WAIT: StdDuration = StdDuration::from_secs(30);

/// The service `name`, if the caller is that service or an admin.
async fn writable_service(state: &AppState, caller: &Bearer, name: String) -> Result<Principal> {
    let p = state.db(move |c| service::service_principal(c, &name)).await?;
    if caller.principal.id == p.id || caller.has_scope(crate::principals::ADMIN_SCOPE) {
        Ok(p)
    } else {
        Err(Error::Forbidden(format!(
            "only the service {} or an admin may change it",
            p.name
        )))
    }
}

fn with_index(mut resp: HttpResponse, index: i64) -> HttpResponse {
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&index.to_string()) {
        resp.headers_mut()
            .insert(actix_web::http::header::HeaderName::from_static("x-roster-index"), v);
    }
    resp
}

/// `PUT /api/v1/services/{name}/registration`
pub async fn register(
    state: web::Data<AppState>,
    caller: Bearer,
    name: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let p = writable_service(&state, &caller, name.into_inner()).await?;
    let body: Registration = json::parse(&req, payload).await?;
    let resolved = service::resolve(body, &state.registry().config)?;
    let (actor, now) = (caller.principal.id.clone(), state.now());
    let (view, index) = state
        .db(move |c| service::register(c, &p, &resolved, &actor, now))
        .await?;
    state.registry().feed.observe(index);
    Ok(with_index(HttpResponse::Ok().json(view), index))
}

/// `POST /api/v1/services/{name}/heartbeat`
pub async fn heartbeat(state: web::Data<AppState>, caller: Bearer, name: web::Path<String>) -> Result<HttpResponse> {
    let p = writable_service(&state, &caller, name.into_inner()).await?;
    let now = state.now();
    let (view, index) = state.db(move |c| service::heartbeat(c, &p, now)).await?;
    if let Some(i) = index {
        state.registry().feed.observe(i);
    }
    Ok(HttpResponse::Ok().json(view))
}

/// `PUT /api/v1/services/{name}/modules`: push a getModules.json manifest.
/// An invalid one is refused with 422 and the previous one stays.
pub async fn push_modules(
    state: web::Data<AppState>,
    caller: Bearer,
    name: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let p = writable_service(&state, &caller, name.into_inner()).await?;
    let body = payload
        .to_bytes_limited(manifest::MAX_MANIFEST_BYTES)
        .await
        .map_err(|_| {
            Error::invalid(
                "manifest",
                format!("larger than {} bytes", manifest::MAX_MANIFEST_BYTES),
            )
        })?
        .map_err(|e| Error::BadRequest(format!("cannot read the request body: {e}")))?;
    let m = manifest::parse(&body)?;
    let now = state.now();
    let (view, index) = state.db(move |c| service::push_manifest(c, &p, &m, now)).await?;
    if let Some(i) = index {
        state.registry().feed.observe(i);
    }
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicesQuery {
    category: Option<String>,
    status: Option<ServiceStatus>,
    /// Long poll: answer once the change index passes this.
    index: Option<i64>,
    /// How long to wait, e.g. `30s` or `2m` (at most 5 minutes).
    wait: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceStatus {
    Up,
    Down,
}

fn parse_wait(wait: Option<&str>) -> Result<StdDuration> {
    match wait {
        None => Ok(DEFAULT_WAIT),
        Some(w) => crate::config::parse_duration(w)
            .ok()
            .flatten()
            .and_then(|d| d.to_std().ok())
            .map(|d| d.min(MAX_WAIT))
            .ok_or_else(|| Error::invalid("wait", "a duration such as 30s or 2m")),
    }
}

/// `GET /api/v1/services`, with Consul-style blocking queries: with `index=N`
/// it answers when the registry changed past N, or when `wait` elapsed.
pub async fn list_services(
    state: web::Data<AppState>,
    _caller: Bearer,
    query: web::Query<ServicesQuery>,
) -> Result<HttpResponse> {
    let q = query.into_inner();
    let wait = parse_wait(q.wait.as_deref())?;
    let feed = &state.registry().feed;
    let mut index = state.db(registration::current_index).await?;
    feed.observe(index);
    if let Some(after) = q.index
        && index <= after
    {
        feed.wait_past(after, wait).await;
        index = state.db(registration::current_index).await?;
    }
    let status = q.status.map(|s| match s {
        ServiceStatus::Up => registration::UP,
        ServiceStatus::Down => registration::DOWN,
    });
    let category = q.category;
    let items = state.db(move |c| service::list(c, category.as_deref(), status)).await?;
    Ok(with_index(
        HttpResponse::Ok().json(Page {
            items,
            next_cursor: None,
        }),
        index,
    ))
}

/// `GET /api/v1/services/{name}`
pub async fn get_service(state: web::Data<AppState>, _caller: Bearer, name: web::Path<String>) -> Result<HttpResponse> {
    let name = name.into_inner();
    let view = state.db(move |c| service::get(c, &name)).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `GET /api/v1/categories`
pub async fn list_categories(state: web::Data<AppState>, _caller: Bearer) -> Result<HttpResponse> {
    let items = state.db(service::categories).await?;
    Ok(HttpResponse::Ok().json(Page {
        items,
        next_cursor: None,
    }))
}

/// `GET /api/v1/categories/{name}`: its services, highest priority first.
pub async fn get_category(
    state: web::Data<AppState>,
    _caller: Bearer,
    name: web::Path<String>,
) -> Result<HttpResponse> {
    let name = name.into_inner();
    let detail = state.db(move |c| service::category(c, &name)).await?;
    Ok(HttpResponse::Ok().json(detail))
}

/// `GET /api/v1/modules`: the menu of the services that are up, filtered by
/// the caller's scopes (anonymous callers see pages without `required_scope`).
pub async fn modules(state: web::Data<AppState>, req: HttpRequest) -> std::result::Result<HttpResponse, ModulesError> {
    let scopes = if req.headers().contains_key(AUTHORIZATION) {
        Some(bearer::authenticate(&state, &req).await?.claims.scopes())
    } else {
        None
    };
    let manifests = state.db(service::up_manifests).await?;
    let items = manifest::menu(manifests, scopes.as_deref());
    let body = serde_json::to_vec(&Page {
        items,
        next_cursor: None,
    })
    .map_err(Error::internal)?;
    let etag = format!(
        "\"{}\"",
        &crate::auth::secrets::hex(ring::digest::digest(&ring::digest::SHA256, &body).as_ref())[..32]
    );
    let matches = req
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == etag || t.trim() == "*")
        });
    let mut resp = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    resp.insert_header((ETAG, etag.clone()))
        .insert_header((VARY, "Authorization"));
    Ok(if matches {
        resp.finish()
    } else {
        resp.content_type("application/json").body(body)
    })
}

/// `/api/v1/modules` answers an invalid token with 401, other failures as usual.
#[derive(Debug, thiserror::Error)]
pub enum ModulesError {
    #[error(transparent)]
    Bearer(#[from] BearerError),
    #[error(transparent)]
    Other(#[from] Error),
}

impl actix_web::ResponseError for ModulesError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        match self {
            Self::Bearer(e) => e.status_code(),
            Self::Other(e) => e.status_code(),
        }
    }
    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Bearer(e) => e.error_response(),
            Self::Other(e) => e.error_response(),
        }
    }
}
