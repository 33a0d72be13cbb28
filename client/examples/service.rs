//! A small service built on roster-client: it checks its callers with the
//! `Caller` extractor and `RequireScope`, registers itself with a module
//! page, and calls another service with a cached token.
//!
//! ```sh
//! ROSTER_CLIENT_SECRET=... cargo run -p roster-client --example service -- \
//!     --roster http://127.0.0.1:8080 --name orders --listen 127.0.0.1:9001 \
//!     --calls billing=http://127.0.0.1:9002
//! ```

use actix_web::{App, HttpResponse, HttpServer, web};
use clap::Parser;
use roster_client::actix::{Caller, RequireScope};
use roster_client::{
    Category, RegistryAgent, RevocationPolicy, SecretString, ServiceRegistration, TokenRequest, TokenSource, Verifier,
    VerifierConfig,
};

#[derive(Parser)]
struct Args {
    /// Roster's issuer URL.
    #[arg(long, env = "ROSTER_URL", default_value = "http://127.0.0.1:8080")]
    roster: String,
    /// This service's name (its principal and client_id).
    #[arg(long, env = "SERVICE_NAME")]
    name: String,
    /// Its client secret (from the environment, so it never shows in `ps`).
    #[arg(long, env = "ROSTER_CLIENT_SECRET", hide_env_values = true)]
    secret: String,
    /// Where to listen.
    #[arg(long, env = "SERVICE_LISTEN", default_value = "127.0.0.1:9001")]
    listen: String,
    /// Another service to call from /relay, as NAME=BASE_URL.
    #[arg(long)]
    calls: Option<String>,
}

struct Peer {
    name: String,
    base_url: String,
}

/// Anyone with a valid token.
async fn hello(caller: Caller) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "hello": caller.name,
        "kind": caller.kind,
        "scopes": caller.scopes,
    }))
}

/// Only callers holding `orders:read` (checked by the RequireScope around it).
async fn orders(caller: Caller) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"orders": [], "for": caller.name}))
}

/// Call the peer's /hello with a token for it (RFC 8707 `resource`), cached.
async fn relay(
    _caller: Caller,
    tokens: web::Data<TokenSource>,
    peer: web::Data<Option<Peer>>,
    http: web::Data<reqwest::Client>,
) -> HttpResponse {
    let Some(peer) = peer.get_ref() else {
        return HttpResponse::NotFound()
            .json(serde_json::json!({"error": "not_found", "error_description": "no peer configured"}));
    };
    let url = format!("{}/hello", peer.base_url.trim_end_matches('/'));
    match tokens
        .send(&TokenRequest::new().resource(&peer.name), || http.get(&url))
        .await
    {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            HttpResponse::Ok().json(serde_json::json!({"peer": peer.name, "status": status, "answer": body}))
        }
        Err(e) => HttpResponse::BadGateway()
            .json(serde_json::json!({"error": "bad_gateway", "error_description": e.to_string()})),
    }
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let args = Args::parse();
    let tokens = TokenSource::discover(&args.roster, &args.name, SecretString::from(args.secret)).await?;
    let verifier = Verifier::discover(VerifierConfig::new(&args.roster, &args.name)).await?;
    verifier
        .follow_revocations(tokens.clone(), RevocationPolicy::default())
        .await?;
    let peer = args
        .calls
        .as_deref()
        .and_then(|c| c.split_once('='))
        .map(|(n, u)| Peer {
            name: n.to_string(),
            base_url: u.to_string(),
        });

    let listener = std::net::TcpListener::bind(&args.listen)?;
    let base_url = format!("http://{}/", listener.local_addr()?);
    let (t, v, p) = (
        web::Data::new(tokens.clone()),
        web::Data::new(verifier),
        web::Data::new(peer),
    );
    let http = web::Data::new(reqwest::Client::new());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(t.clone())
            .app_data(v.clone())
            .app_data(p.clone())
            .app_data(http.clone())
            .route(
                "/health",
                web::get().to(|| async { HttpResponse::Ok().json(serde_json::json!({"status": "ok"})) }),
            )
            .route("/hello", web::get().to(hello))
            .route("/relay", web::get().to(relay))
            .service(
                web::resource("/orders")
                    .wrap(RequireScope::new("orders:read"))
                    .route(web::get().to(orders)),
            )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    let handle = server.handle();

    let code = args.name.clone();
    let agent = RegistryAgent::new(
        &args.roster,
        &args.name,
        tokens,
        ServiceRegistration {
            instance: std::env::var("INSTANCE").ok(),
            description: Some(format!("the {code} example")),
            base_url: base_url.clone(),
            health_url: Some("/health".into()),
            modules_url: None,
            manifest: Some(serde_json::json!({
                "name": code.to_uppercase(), "code": code,
                "pages": [{"code": format!("{code}-home"), "name": "Home", "menu_position": 10, "module_link": format!("/{code}/"), "icon": "box"}],
            })),
            categories: vec![Category { name: "examples".into(), priority: 10 }],
            ttl: std::time::Duration::from_secs(30),
            ..Default::default()
        },
    )
    .start()
    .await?;
    eprintln!("{} listening on {base_url} and registered", args.name);

    let serving = tokio::spawn(server);
    let _ = tokio::signal::ctrl_c().await;
    agent.leave().await?;
    handle.stop(true).await;
    let _ = serving.await;
    eprintln!("{} left the registry and stopped", args.name);
    Ok(())
}
