//! The HTTP layer: thin handlers that extract the request, call one domain
//! function and map the result to a view.

pub mod admin;
pub mod conn;
pub mod console;
pub mod cors;
pub mod extract;
pub mod factors;
pub mod federation;
pub mod health;
pub mod invitation;
pub mod json;
pub mod login;
pub mod me;
pub mod metrics;
pub mod oauth;
pub mod pages;
pub mod query;
pub mod registry;
mod request_log;
pub mod respond;
pub mod revocations;

use std::net::{SocketAddr, TcpListener};

use actix_web::dev::Server;
use actix_web::http::header::X_CONTENT_TYPE_OPTIONS;
use actix_web::middleware::DefaultHeaders;
use actix_web::{App, HttpRequest, HttpResponse, web};
use tracing_actix_web::TracingLogger;

use crate::error::Error;
use crate::state::AppState;

/// Largest JSON or form body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Declares every route once: `ROUTES` lists them (a test checks the list
/// against `openapi/openapi.yaml`) and `register` adds them to the app.
macro_rules! route_table {
    ($( $method:ident $path:literal => $handler:path; )*) => {
        /// Every route Roster serves, as (method, path).
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        fn register(cfg: &mut web::ServiceConfig) {
            $( cfg.route($path, web::$method().to($handler)); )*
        }
    };
}

route_table! {
    get "/healthz" => health::healthz;
    get "/readyz" => health::readyz;
    get "/openapi.yaml" => openapi;
    get "/.well-known/oauth-authorization-server" => oauth::server_metadata;
    get "/.well-known/openid-configuration" => oauth::server_metadata;
    get "/.well-known/jwks.json" => oauth::jwks;
    post "/oauth/token" => oauth::token;
    post "/oauth/introspect" => oauth::introspect;
    post "/oauth/revoke" => oauth::revoke;
    post "/oauth/device_authorization" => oauth::device_authorization;
    get "/oauth/device" => login::device_get;
    post "/oauth/device" => login::device_post;
    get "/oauth/authorize" => login::authorize;
    post "/oauth/login" => login::login;
    post "/oauth/login/second" => login::second_step;
    post "/oauth/passkey/start" => login::passkey_start;
    post "/oauth/passkey/finish" => login::passkey_finish;
    get "/oauth/invitation" => invitation::page;
    post "/oauth/invitation/start" => invitation::start;
    post "/oauth/invitation/finish" => invitation::finish;
    get "/oauth/logout" => login::logout_get;
    post "/oauth/logout" => login::logout_post;
    get "/oauth/userinfo" => login::userinfo;
    post "/oauth/userinfo" => login::userinfo;
    get "/api/v1/me" => me::me;
    get "/api/v1/me/factors" => factors::mine;
    post "/api/v1/me/factors/totp" => factors::start_totp;
    post "/api/v1/me/factors/totp/confirm" => factors::confirm_totp;
    post "/api/v1/me/factors/recovery-codes" => factors::recovery_codes;
    post "/api/v1/me/factors/passkeys/start" => factors::start_passkey;
    post "/api/v1/me/factors/passkeys/finish" => factors::finish_passkey;
    post "/api/v1/me/factors/passkeys/challenge" => factors::passkey_challenge;
    delete "/api/v1/me/factors/{id}" => factors::delete_mine;
    // Static paths before the ones with parameters: a request is matched
    // against the routes in this order, and the menu is the hottest.
    get "/api/v1/modules" => registry::modules;
    post "/api/v1/principals" => admin::create_principal;
    get "/api/v1/principals" => admin::list_principals;
    get "/api/v1/principals/{id}" => admin::get_principal;
    patch "/api/v1/principals/{id}" => admin::patch_principal;
    delete "/api/v1/principals/{id}" => admin::delete_principal;
    put "/api/v1/principals/{id}/password" => admin::set_password;
    post "/api/v1/principals/{id}/secrets" => admin::create_secret;
    get "/api/v1/principals/{id}/secrets" => admin::list_secrets;
    delete "/api/v1/principals/{id}/secrets/{secret_id}" => admin::delete_secret;
    get "/api/v1/principals/{id}/factors" => factors::of_principal;
    delete "/api/v1/principals/{id}/factors" => factors::reset;
    put "/api/v1/principals/{id}/mfa" => factors::set_mfa;
    post "/api/v1/principals/{id}/invitation" => admin::invite;
    post "/api/v1/federation/issuers" => federation::create_issuer;
    get "/api/v1/federation/issuers" => federation::list_issuers;
    get "/api/v1/federation/issuers/{id}" => federation::get_issuer;
    patch "/api/v1/federation/issuers/{id}" => federation::patch_issuer;
    delete "/api/v1/federation/issuers/{id}" => federation::delete_issuer;
    get "/api/v1/audit" => admin::list_audit;
    get "/api/v1/throttles" => admin::list_throttles;
    delete "/api/v1/principals/{id}/throttle" => admin::clear_throttle;
    get "/api/v1/revocations" => revocations::feed;
    put "/api/v1/services/{name}/registration" => registry::register;
    delete "/api/v1/services/{name}/registration" => registry::deregister;
    post "/api/v1/services/{name}/heartbeat" => registry::heartbeat;
    put "/api/v1/services/{name}/instances/{id}" => registry::put_instance;
    delete "/api/v1/services/{name}/instances/{id}" => registry::delete_instance;
    post "/api/v1/services/{name}/instances/{id}/heartbeat" => registry::instance_heartbeat;
    put "/api/v1/services/{name}/modules" => registry::push_modules;
    get "/api/v1/services" => registry::list_services;
    get "/api/v1/services/{name}" => registry::get_service;
    get "/api/v1/categories" => registry::list_categories;
    get "/api/v1/categories/{name}" => registry::get_category;
}

/// The OpenAPI document, as committed.
pub const OPENAPI_YAML: &str = include_str!("../../openapi/openapi.yaml");

/// Why a request body could not be read.
#[derive(Debug)]
pub enum BodyError {
    TooLarge,
    /// It did not arrive within the request timeout.
    TimedOut(std::time::Duration),
    Broken(String),
}

/// Read a request body of at most `limit` bytes by the request's deadline
/// (its first byte plus the request timeout), so that a body trickling in
/// cannot hold a connection and a worker.
pub async fn read_body(req: &HttpRequest, payload: web::Payload, limit: usize) -> Result<web::Bytes, BodyError> {
    let timeout = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.settings().http.request_timeout)
        .unwrap_or_else(|| crate::config::HttpLimits::default().request_timeout);
    let due = req
        .conn_data::<std::sync::Arc<conn::Conn>>()
        .and_then(|c| c.body_deadline())
        .unwrap_or_else(|| std::time::Instant::now() + timeout);
    match tokio::time::timeout_at(due.into(), payload.to_bytes_limited(limit)).await {
        Err(_) => Err(BodyError::TimedOut(timeout)),
        Ok(Err(_)) => Err(BodyError::TooLarge),
        Ok(Ok(Err(e))) => Err(BodyError::Broken(e.to_string())),
        Ok(Ok(Ok(body))) => Ok(body),
    }
}

/// Headers of a response that carries a secret (RFC 6749 §5.1).
pub fn no_store(resp: &mut actix_web::HttpResponseBuilder) -> &mut actix_web::HttpResponseBuilder {
    resp.insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .insert_header((actix_web::http::header::PRAGMA, "no-cache"))
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().content_type("application/yaml").body(OPENAPI_YAML)
}

/// Register every route. Unknown routes answer a JSON 404.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(json_config())
        .app_data(query_config())
        .app_data(path_config())
        .app_data(web::PayloadConfig::new(MAX_BODY_BYTES));
    register(cfg);
    console::routes(cfg);
    cfg.route("/oauth/passkey.js", web::get().to(login::passkey_script));
    cfg.route("/oauth/webauthn.js", web::get().to(login::webauthn_script));
    cfg.route("/oauth/invitation.js", web::get().to(invitation::script));
}

fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_BODY_BYTES)
        .error_handler(|err, _req| Error::BadRequest(format!("invalid JSON body: {err}")).into())
}

/// For any `web::Query` left: Roster's own handlers use [`query::Query`].
fn query_config() -> web::QueryConfig {
    web::QueryConfig::default()
        .error_handler(|err, _req| Error::invalid("query", format!("invalid query string: {err}")).into())
}

fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _req| Error::BadRequest(format!("invalid path: {err}")).into())
}

/// The methods `ROUTES` serves on the path of `req`, if any.
fn allowed_methods(path: &str) -> Vec<&'static str> {
    static DEFS: std::sync::OnceLock<Vec<(&'static str, actix_web::dev::ResourceDef)>> = std::sync::OnceLock::new();
    let defs = DEFS.get_or_init(|| {
        ROUTES
            .iter()
            .map(|(method, pattern)| (*method, actix_web::dev::ResourceDef::new(*pattern)))
            .collect()
    });
    let mut methods: Vec<&'static str> = defs
        .iter()
        .filter(|(_, def)| def.is_match(path))
        .map(|(m, _)| *m)
        .collect();
    methods.sort_unstable();
    methods.dedup();
    methods
}

/// Unknown routes: a JSON 404, or 405 with `Allow` (RFC 9110 §15.5.6) when
/// the path is known under other methods.
async fn not_found(req: HttpRequest) -> actix_web::Result<HttpResponse> {
    let allowed = allowed_methods(req.path());
    if allowed.is_empty() {
        return Err(Error::NotFound(format!("route {} {}", req.method(), req.path())).into());
    }
    let allow = allowed
        .iter()
        .map(|m| m.to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join(", ");
    Ok(HttpResponse::MethodNotAllowed()
        .insert_header((actix_web::http::header::ALLOW, allow.clone()))
        .json(crate::error::ErrorBody {
            error: "method_not_allowed",
            error_description: format!("{} is not allowed here; use {allow}", req.method()),
            field: None,
        }))
}

/// Build the server on an already bound listener. Signals are handled by the
/// caller (see [`shutdown_signal`]) which stops the server gracefully: it stops
/// accepting and lets requests in flight finish, up to the shutdown timeout.
/// `workers` of `None` means one per core.
///
/// This is what `HttpServer::listen` assembles, with one step between accept
/// and HTTP: the [`conn::Gate`] admits each socket (or drops it at once) and
/// wraps it in [`conn::Guarded`], so that no socket outlives its deadline.
pub fn server(state: AppState, listener: TcpListener, workers: Option<usize>) -> std::io::Result<Server> {
    use actix_service::{ServiceFactoryExt, fn_service};
    use tokio::net::TcpStream;

    let limits = state.settings().http.clone();
    let worker_count = workers.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2));
    let gate = conn::Gate::new(
        conn::ConnLimits {
            request_timeout: limits.request_timeout,
            drain_timeout: limits.drain_timeout,
            keep_alive: limits.keep_alive,
            max_connections: limits.max_connections,
            max_per_peer: limits.max_connections_per_peer,
            stalled_after: limits.stalled_after,
        },
        state.settings().trusted_proxies.clone(),
    );
    let builder = actix_server::Server::build();
    let shutdown = builder.graceful_shutdown_signal();
    let builder = builder.listen("roster", listener, move || {
        let (state, gate, shutdown) = (state.clone(), gate.clone(), shutdown.clone());
        let app = App::new()
            .wrap(TracingLogger::<request_log::RequestSpan>::new())
            // Every response: never sniffed as another type.
            .wrap(DefaultHeaders::new().add((X_CONTENT_TYPE_OPTIONS, "nosniff")))
            .wrap(actix_web::middleware::from_fn(cors::cors))
            .wrap(actix_web::middleware::from_fn(metrics::record))
            .wrap(actix_web::middleware::from_fn(conn::deadlines))
            .app_data(web::Data::new(state))
            .configure(routes)
            .default_service(web::to(not_found));
        let http = actix_http::HttpService::<conn::Guarded<TcpStream>, _, _>::build()
            .keep_alive(limits.keep_alive)
            .client_request_timeout(limits.head_timeout)
            .client_disconnect_timeout(std::time::Duration::from_secs(1))
            .graceful_shutdown_signal(move || {
                let signal = shutdown.clone();
                async move { signal.notified().await }
            })
            .on_connect_ext(|io: &conn::Guarded<TcpStream>, ext| {
                ext.insert(io.conn());
            })
            // Roster builds no URLs from the app's host, so the default config serves.
            .h1(actix_service::map_config(
                actix_service::IntoServiceFactory::into_factory(app).map_err(|e: actix_web::Error| e.error_response()),
                |_| actix_web::dev::AppConfig::default(),
            ));
        fn_service(move |io: TcpStream| {
            let peer = io.peer_addr().ok();
            let admitted = gate
                .admit(peer, std::time::Instant::now())
                .map(|conn| (conn::Guarded::new(io, conn, gate.clone()), peer))
                .map_err(|refused| actix_http::error::DispatchError::Io(std::io::Error::other(refused.label())));
            std::future::ready(admitted)
        })
        .and_then(http)
    })?;
    let server = builder
        .workers(worker_count)
        // The gate caps connections over all workers; actix counts per
        // worker and stops accepting at its own cap, so that one is set out of reach.
        .max_concurrent_connections(limits.max_connections + 1024)
        .shutdown_timeout(10)
        .disable_signals()
        .run();
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
