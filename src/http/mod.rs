//! The HTTP layer: thin handlers that extract the request, call one domain
//! function and map the result to a view.

pub mod health;
pub mod me;
pub mod oauth;

use std::net::{SocketAddr, TcpListener};

use actix_web::dev::Server;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use tracing_actix_web::TracingLogger;

use crate::error::Error;
use crate::state::AppState;

/// Largest JSON or form body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Register every route. Unknown routes answer a JSON 404.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(json_config())
        .app_data(query_config())
        .app_data(path_config())
        .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route(
            "/.well-known/oauth-authorization-server",
            web::get().to(oauth::server_metadata),
        )
        .route(
            "/.well-known/openid-configuration",
            web::get().to(oauth::server_metadata),
        )
        .route("/.well-known/jwks.json", web::get().to(oauth::jwks))
        .route("/oauth/token", web::post().to(oauth::token))
        .route("/oauth/introspect", web::post().to(oauth::introspect))
        .route("/oauth/revoke", web::post().to(oauth::revoke))
        .route("/api/v1/me", web::get().to(me::me));
}

fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_BODY_BYTES)
        .error_handler(|err, _req| Error::BadRequest(format!("invalid JSON body: {err}")).into())
}

fn query_config() -> web::QueryConfig {
    web::QueryConfig::default()
        .error_handler(|err, _req| Error::BadRequest(format!("invalid query string: {err}")).into())
}

fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _req| Error::BadRequest(format!("invalid path: {err}")).into())
}

async fn not_found(req: HttpRequest) -> actix_web::Result<HttpResponse> {
    Err(Error::NotFound(format!("route {} {}", req.method(), req.path())).into())
}

/// Build the server on an already bound listener. Signals are handled by the
/// caller (see [`shutdown_signal`]) which stops the server gracefully: it stops
/// accepting and lets requests in flight finish, up to the shutdown timeout.
/// `workers` of `None` means one per core.
pub fn server(state: AppState, listener: TcpListener, workers: Option<usize>) -> std::io::Result<Server> {
    let server = HttpServer::new(move || {
        App::new()
            .wrap(TracingLogger::default())
            .app_data(web::Data::new(state.clone()))
            .configure(routes)
            .default_service(web::to(not_found))
    })
    .shutdown_timeout(10)
    .disable_signals();
    let server = match workers {
        Some(n) => server.workers(n),
        None => server,
    };
    let server = server.listen(listener)?.run();
    Ok(server)
}

/// Bind the listen address, so that the issuer can be derived from the real port.
pub fn bind(listen: &str) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(listen)?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// Resolves on SIGTERM or Ctrl-C. The handlers are registered when this is
/// called, not when the future is first polled.
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async move {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
