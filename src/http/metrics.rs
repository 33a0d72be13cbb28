//! Prometheus metrics over HTTP: the middleware that counts and times every
//! answer by route template, and the `/metrics` server on `--metrics-listen`
//! (its own address, so that it is never public by accident).

use std::net::TcpListener;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{App, HttpResponse, HttpServer, web};

/// Count and time one request. The route is the template it matched
/// (`/api/v1/services/{name}`), so that names and ids never become labels;
/// anything unmatched is `unmatched`.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let method = req.method().as_str().to_string();
    let res = next.call(req).await?;
    let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_string());
    crate::telemetry::http_request(&route, &method, res.status().as_u16(), started.elapsed().as_secs_f64());
    Ok(res)
}

async fn metrics() -> HttpResponse {
    match crate::telemetry::render() {
        Some(text) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(text),
        None => HttpResponse::ServiceUnavailable().finish(),
    }
}

/// The metrics server: `GET /metrics` and nothing else, on one worker.
pub fn server(listener: TcpListener) -> std::io::Result<Server> {
    Ok(HttpServer::new(|| {
        App::new()
            .route("/metrics", web::get().to(metrics))
            .default_service(web::to(HttpResponse::NotFound))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run())
}
