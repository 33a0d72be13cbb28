//! CORS (the Fetch standard's CORS protocol) for the endpoints a browser
//! frontend calls: the token, userinfo and revocation endpoints, discovery
//! and the module list. Only origins of registered redirect URIs are
//! allowed, and never with credentials (no cookies cross-origin).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, HeaderValue, ORIGIN, VARY,
};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};

use crate::state::AppState;

/// The paths a frontend may call cross-origin, and their methods.
fn methods_of(path: &str) -> Option<&'static str> {
    match path {
        "/oauth/token" | "/oauth/revoke" => Some("POST"),
        "/oauth/userinfo" => Some("GET, POST"),
        "/api/v1/modules" | "/api/v1/me" => Some("GET"),
        p if p.starts_with("/.well-known/") => Some("GET"),
        _ => None,
    }
}

/// The middleware: answer preflights, and mark allowed responses.
pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let origin = req
        .headers()
        .get(ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (Some(origin), Some(methods)) = (origin, methods_of(req.path())) else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    let allowed = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| s.origins().allows(&origin));
    let preflight = req.method() == Method::OPTIONS && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let mut resp = HttpResponse::NoContent();
        resp.insert_header((VARY, "Origin"));
        if allowed {
            resp.insert_header((ACCESS_CONTROL_ALLOW_ORIGIN, origin))
                .insert_header((ACCESS_CONTROL_ALLOW_METHODS, methods))
                .insert_header((
                    ACCESS_CONTROL_ALLOW_HEADERS,
                    "authorization, content-type, if-none-match",
                ))
                .insert_header((ACCESS_CONTROL_MAX_AGE, "600"));
        }
        return Ok(req.into_response(resp.finish()));
    }
    let mut resp = next.call(req).await?.map_into_boxed_body();
    let headers = resp.headers_mut();
    headers.append(VARY, HeaderValue::from_static("Origin"));
    if allowed && let Ok(v) = HeaderValue::from_str(&origin) {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, v);
        headers.insert(
            ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("etag, www-authenticate, retry-after"),
        );
    }
    Ok(resp)
}
