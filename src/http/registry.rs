//! Registry endpoints: thin handlers, each calling the methods of the
//! registry handle. A write first asks `may_write`, and reads the body only
//! while it holds the answer, so a bad body never hides a 403.

use actix_web::http::header::{ETAG, IF_NONE_MATCH, VARY};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use super::extract::{Bearer, MaybeBearer};
use super::json;
use crate::error::{Error, Result};
use crate::page::Page;
use crate::registry::instance;
use crate::registry::listing::{ModulesQuery, ServicesQuery, WatchQuery};
use crate::registry::manifest::MAX_MANIFEST_BYTES;
use crate::state::AppState;

/// Carries the registry's change index (Consul's `X-Consul-Index`).
fn with_index(mut resp: HttpResponse, index: i64) -> HttpResponse {
    if let Ok(v) = HeaderValue::from_str(&index.to_string()) {
        resp.headers_mut().insert(HeaderName::from_static("x-roster-index"), v);
    }
    resp
}

/// `PUT /api/v1/services/{name}/registration`: the instance `default`.
pub async fn register(
    state: web::Data<AppState>,
    bearer: Bearer,
    name: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    put(
        state,
        bearer,
        name.into_inner(),
        instance::DEFAULT.to_string(),
        req,
        payload,
    )
    .await
}

/// `PUT /api/v1/services/{name}/instances/{id}`
pub async fn put_instance(
    state: web::Data<AppState>,
    bearer: Bearer,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let (name, id) = path.into_inner();
    put(state, bearer, name, id, req, payload).await
}

async fn put(
    state: web::Data<AppState>,
    Bearer(caller): Bearer,
    name: String,
    id: String,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let grant = state.registry().may_write_instance(&caller, name, id).await?;
    let body = json::parse(&req, payload).await?;
    let (view, index) = state.registry().register(&grant, body, state.now()).await?;
    Ok(with_index(HttpResponse::Ok().json(view), index))
}

/// `DELETE /api/v1/services/{name}/registration`: the instance `default` is leaving.
pub async fn deregister(
    state: web::Data<AppState>,
    Bearer(caller): Bearer,
    name: web::Path<String>,
) -> Result<HttpResponse> {
    let id = instance::DEFAULT.to_string();
    let grant = state
        .registry()
        .may_write_instance(&caller, name.into_inner(), id)
        .await?;
    let (view, index) = state.registry().deregister(&grant, state.now()).await?;
    Ok(with_index(HttpResponse::Ok().json(view), index))
}

/// `DELETE /api/v1/services/{name}/instances/{id}`: the instance is leaving.
pub async fn delete_instance(
    state: web::Data<AppState>,
    Bearer(caller): Bearer,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    let (name, id) = path.into_inner();
    let grant = state.registry().may_write_instance(&caller, name, id).await?;
    let (view, index) = state.registry().deregister(&grant, state.now()).await?;
    Ok(with_index(HttpResponse::Ok().json(view), index))
}

/// `POST /api/v1/services/{name}/heartbeat`: the instance `default`.
pub async fn heartbeat(
    state: web::Data<AppState>,
    Bearer(caller): Bearer,
    name: web::Path<String>,
) -> Result<HttpResponse> {
    let id = instance::DEFAULT.to_string();
    let grant = state
        .registry()
        .may_write_instance(&caller, name.into_inner(), id)
        .await?;
    let view = state.registry().heartbeat(&grant, state.now()).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `POST /api/v1/services/{name}/instances/{id}/heartbeat`
pub async fn instance_heartbeat(
    state: web::Data<AppState>,
    Bearer(caller): Bearer,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    let (name, id) = path.into_inner();
    let grant = state.registry().may_write_instance(&caller, name, id).await?;
    let view = state.registry().heartbeat(&grant, state.now()).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// A pushed manifest's bytes, up to the manifest size limit.
async fn manifest_body(req: HttpRequest, payload: web::Payload) -> Result<Vec<u8>> {
    let body = super::read_body(&req, payload, MAX_MANIFEST_BYTES)
        .await
        .map_err(|e| match e {
            super::BodyError::TooLarge => Error::invalid("manifest", format!("larger than {MAX_MANIFEST_BYTES} bytes")),
            super::BodyError::TimedOut(t) => Error::TimedOut(format!("the request body did not arrive within {t:?}")),
            super::BodyError::Broken(e) => Error::BadRequest(format!("cannot read the request body: {e}")),
        })?;
    Ok(body.to_vec())
}

/// `PUT /api/v1/services/{name}/modules`: push a getModules.json manifest.
pub async fn push_modules(
    state: web::Data<AppState>,
    Bearer(caller): Bearer,
    name: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let grant = state.registry().may_write(&caller, name.into_inner()).await?;
    let body = manifest_body(req, payload).await?;
    let view = state.registry().push_manifest(&grant, &body, state.now()).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `GET /api/v1/services`, with blocking queries (`index`, `wait`).
pub async fn list_services(
    state: web::Data<AppState>,
    Bearer(caller): Bearer,
    query: super::query::Query<ServicesQuery>,
) -> Result<HttpResponse> {
    let (items, index) = state.registry().services(&caller, query.into_inner()).await?;
    Ok(with_index(
        HttpResponse::Ok().json(Page {
            items,
            next_cursor: None,
        }),
        index,
    ))
}

/// `GET /api/v1/services/{name}`, with blocking queries on this service.
pub async fn get_service(
    state: web::Data<AppState>,
    Bearer(caller): Bearer,
    name: web::Path<String>,
    query: super::query::Query<WatchQuery>,
) -> Result<HttpResponse> {
    let (view, index) = state
        .registry()
        .service(&caller, name.into_inner(), query.into_inner())
        .await?;
    Ok(with_index(HttpResponse::Ok().json(view), index))
}

/// `GET /api/v1/categories`
pub async fn list_categories(state: web::Data<AppState>, _caller: Bearer) -> Result<HttpResponse> {
    let items = state.registry().categories().await?;
    Ok(HttpResponse::Ok().json(Page {
        items,
        next_cursor: None,
    }))
}

/// `GET /api/v1/categories/{name}`: its services, highest priority first,
/// with blocking queries on this category.
pub async fn get_category(
    state: web::Data<AppState>,
    _caller: Bearer,
    name: web::Path<String>,
    query: super::query::Query<WatchQuery>,
) -> Result<HttpResponse> {
    let (detail, index) = state.registry().category(name.into_inner(), query.into_inner()).await?;
    Ok(with_index(HttpResponse::Ok().json(detail), index))
}

/// `GET /api/v1/modules`: the menu of the services that are up, filtered by
/// the caller's scopes (anonymous callers see pages without `required_scope`).
/// With `index` and `wait`, it answers once this caller's menu changed;
/// with `as`, an admin sees the menu of that principal.
pub async fn modules(
    state: web::Data<AppState>,
    caller: MaybeBearer,
    req: HttpRequest,
    query: super::query::Query<ModulesQuery>,
) -> Result<HttpResponse> {
    let query = query.into_inner();
    let block = query.block()?;
    let scopes = state
        .registry()
        .viewer_scopes(caller.0.as_ref(), query.as_principal)
        .await?;
    let if_none_match = req
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (rendered, index) = state
        .registry()
        .modules(scopes, if_none_match, state.now(), block)
        .await?;
    let mut resp = match &rendered.body {
        Some(_) => HttpResponse::Ok(),
        None => HttpResponse::NotModified(),
    };
    resp.insert_header((ETAG, rendered.etag))
        .insert_header((VARY, "Authorization"));
    let resp = match rendered.body {
        Some(body) => resp.content_type("application/json").body(body),
        None => resp.finish(),
    };
    Ok(with_index(resp, index))
}
