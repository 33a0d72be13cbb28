//! Test harness: a fresh database per test on either backend, and a `TestApp`
//! that runs the real HTTP server on a loopback port.

pub mod process;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use diesel::{Connection, PgConnection, RunQueryDsl};
use roster::clock::Clock;
use roster::config::Settings;
use roster::db::PoolOptions;
use roster::state::AppState;

pub const TEST_PEPPER: &str = "test-pepper-test-pepper-test-pepper-0001";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generate `mod NAME { sqlite, postgres }` tests that call `async fn NAME(Backend)`.
/// The PostgreSQL half runs when `TEST_DATABASE_URL` is set (`.ci/run` always sets it).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::support::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(not(roster_test_postgres), ignore = "PostgreSQL half: set TEST_DATABASE_URL (see README)")]
            async fn postgres() {
                super::$name($crate::support::Backend::Postgres).await
            }
        }
    )*};
}

/// The PostgreSQL server the tests use. The PostgreSQL halves are compiled
/// as ignored unless `TEST_DATABASE_URL` was set when the tests were built
/// (`build.rs`); one that runs without it fails, naming the variable.
pub fn require_postgres() -> String {
    postgres_admin_url().unwrap_or_else(|| {
        panic!(
            "TEST_DATABASE_URL is not set, but this test binary was built with it: \
             set it (see README), or rebuild without it to have the PostgreSQL halves ignored"
        )
    })
}

pub fn postgres_admin_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL").ok().filter(|s| !s.is_empty())
}

/// A fresh, empty database: a SQLite file in a temp dir, or a new PostgreSQL
/// database that is dropped when this value is dropped.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

impl TestDb {
    pub fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("roster.db").display());
                Self {
                    backend,
                    url,
                    dir,
                    pg: None,
                }
            }
            Backend::Postgres => Self::postgres_at(&require_postgres()),
        }
    }

    /// A fresh database with every migration applied, copied from a template
    /// migrated once per set of migrations: most tests start here, and no
    /// test pays for the migrations again. (Start-up still checks them: none
    /// is pending.)
    pub fn migrated(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let db = Self::new(Backend::Sqlite);
                std::fs::copy(template::sqlite(), db.sqlite_path().unwrap()).unwrap();
                db
            }
            Backend::Postgres => {
                let admin = require_postgres();
                let template = template::postgres(&admin);
                Self::postgres_from(&admin, Some(template))
            }
        }
    }

    /// A fresh database on the PostgreSQL server of `admin` (a URL it may
    /// create databases with).
    pub fn postgres_at(admin: &str) -> Self {
        Self::postgres_from(admin, None)
    }

    fn postgres_from(admin: &str, template: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let admin = admin.to_string();
        let name = format!("roster_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::establish(&admin).expect("connect to the PostgreSQL admin URL");
        let from = template.map(|t| format!(" TEMPLATE {t}")).unwrap_or_default();
        diesel::sql_query(format!("CREATE DATABASE {name}{from}"))
            .execute(&mut conn)
            .unwrap();
        let mut url = url::Url::parse(&admin).unwrap();
        url.set_path(&format!("/{name}"));
        Self {
            backend: Backend::Postgres,
            url: url.to_string(),
            dir,
            pg: Some((admin, name)),
        }
    }

    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("roster.key")
    }

    pub fn sqlite_path(&self) -> Option<PathBuf> {
        (self.backend == Backend::Sqlite).then(|| self.dir.path().join("roster.db"))
    }

    /// Make the database disappear under a running server.
    pub fn destroy(&self) {
        match &self.pg {
            Some((admin, name)) => drop_pg(admin, name),
            None => {
                for f in ["roster.db", "roster.db-wal", "roster.db-shm"] {
                    let _ = std::fs::remove_file(self.dir.path().join(f));
                }
            }
        }
    }
}

/// Migrated templates, one per content of `migrations/`, made once and kept
/// (a SQLite file in cargo's test tmpdir, a PostgreSQL database named by the
/// hash). Each is built under a temporary name and renamed into place, so a
/// template that exists is complete.
mod template {
    use std::hash::{Hash, Hasher};
    use std::path::PathBuf;
    use std::sync::OnceLock;

    use diesel::{Connection, PgConnection, RunQueryDsl};

    fn migrations_hash() -> String {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        files.sort();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for f in files {
            f.strip_prefix(&root).unwrap().hash(&mut h);
            std::fs::read(&f).unwrap().hash(&mut h);
        }
        format!("{:016x}", h.finish())
    }

    fn migrate(url: &str) {
        let target = roster::db::DatabaseTarget::parse(Some(url)).unwrap();
        drop(roster::db::connect_migrated(&target).unwrap());
    }

    pub fn sqlite() -> &'static PathBuf {
        static PATH: OnceLock<PathBuf> = OnceLock::new();
        PATH.get_or_init(|| {
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
            let path = dir.join(format!("roster-template-{}.db", migrations_hash()));
            if !path.exists() {
                let building = dir.join(format!("roster-template-{}.db", uuid::Uuid::new_v4().simple()));
                migrate(&format!("sqlite://{}", building.display()));
                std::fs::rename(&building, &path).unwrap();
            }
            path
        })
    }

    pub fn postgres(admin: &str) -> &'static str {
        static NAME: OnceLock<String> = OnceLock::new();
        NAME.get_or_init(|| {
            let name = format!("roster_template_{}", migrations_hash());
            let mut conn = PgConnection::establish(admin).unwrap();
            let exists: i64 = diesel::dsl::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
                "(SELECT count(*) FROM pg_database WHERE datname = '{name}')"
            )))
            .get_result(&mut conn)
            .unwrap();
            if exists == 0 {
                let building = format!("roster_building_{}", uuid::Uuid::new_v4().simple());
                diesel::sql_query(format!("CREATE DATABASE {building}"))
                    .execute(&mut conn)
                    .unwrap();
                let mut url = url::Url::parse(admin).unwrap();
                url.set_path(&format!("/{building}"));
                migrate(url.as_str());
                if diesel::sql_query(format!("ALTER DATABASE {building} RENAME TO {name}"))
                    .execute(&mut conn)
                    .is_err()
                {
                    // Another test process made it first.
                    super::drop_pg(admin, &building);
                }
            }
            name
        })
    }
}

fn drop_pg(admin: &str, name: &str) {
    if let Ok(mut conn) = PgConnection::establish(admin) {
        let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn);
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.pg {
            drop_pg(admin, name);
        }
    }
}

/// A fixed start for manual clocks, so that tests see the same times each run.
/// The claims of a token, unverified (the test issued it).
pub fn claims_of(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
}

pub struct TestAppBuilder {
    backend: Backend,
    db: Option<std::sync::Arc<TestDb>>,
    clock: Clock,
    settings: Box<dyn FnOnce(Settings) -> Settings>,
}

impl TestAppBuilder {
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// A second instance on the same database (as several Roster instances
    /// share one PostgreSQL), with the same pepper.
    pub fn same_database_as(mut self, other: &TestApp) -> Self {
        self.db = Some(other.db.clone());
        self
    }

    /// Run on this database.
    pub fn database(mut self, db: std::sync::Arc<TestDb>) -> Self {
        self.db = Some(db);
        self
    }

    /// Adjust the server settings (token lifetimes, key policy) before start.
    pub fn settings(mut self, f: impl FnOnce(Settings) -> Settings + 'static) -> Self {
        self.settings = Box::new(f);
        self
    }

    pub async fn spawn(self) -> TestApp {
        let db = self
            .db
            .unwrap_or_else(|| std::sync::Arc::new(TestDb::migrated(self.backend)));
        let session =
            roster::startup::connect(Some(&db.url), Some(&db.key_file()), Some(TEST_PEPPER), self.clock.now()).unwrap();
        let (listener, addr) = roster::http::bind("127.0.0.1:0").unwrap();
        // Tests hash at argon2's cheapest cost unless one asks for more
        // (`oauth::password_logins_run_at_the_production_cost` does).
        let mut settings = Settings::new(roster::config::issuer_for(None, addr));
        settings.password_hashing = roster::auth::password::Hashing::CHEAPEST_FOR_TESTS;
        let settings = (self.settings)(settings);
        let state = AppState::new(session, &PoolOptions::default(), self.clock.clone(), settings).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let server_state = state.clone();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = roster::http::server(server_state, listener, Some(1)).unwrap();
                tx.send(server.handle()).unwrap();
                let _ = server.await;
            })
        });
        let handle = rx.recv().unwrap();
        TestApp {
            addr,
            state,
            clock: self.clock,
            client: reqwest::Client::new(),
            handle: Some(handle),
            thread: Some(thread),
            db,
        }
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub state: AppState,
    pub clock: Clock,
    pub client: reqwest::Client,
    handle: Option<actix_web::dev::ServerHandle>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub db: std::sync::Arc<TestDb>,
}

impl TestApp {
    pub fn builder(backend: Backend) -> TestAppBuilder {
        TestAppBuilder {
            backend,
            db: None,
            clock: Clock::system(),
            settings: Box::new(|s| s),
        }
    }

    pub async fn spawn(backend: Backend) -> Self {
        Self::builder(backend).spawn().await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn issuer(&self) -> String {
        self.state.settings().issuer().to_string()
    }

    /// Run `f` on the app's database pool.
    pub async fn query<T, F>(&self, f: F) -> T
    where
        F: FnOnce(&mut roster::db::DbConnection) -> roster::error::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.state.db().run(f).await.unwrap()
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let resp = self.client.get(self.url(path)).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            let stopper = std::thread::spawn(move || actix_web::rt::System::new().block_on(handle.stop(false)));
            let _ = stopper.join();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The roster binary built by cargo for these tests.
pub fn roster_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_roster"))
}

// ---- principals and OAuth helpers ------------------------------------------

use roster::models::principal::PrincipalKind;
use roster::principals::{CreatePrincipal, Created, PrincipalsContext};

/// A service created through the domain, with its one-time secret.
pub struct TestService {
    pub id: String,
    pub name: String,
    pub secret: String,
}

impl TestApp {
    pub async fn create_service(&self, name: &str, scopes: &[&str]) -> TestService {
        let created = self.create(PrincipalKind::Service, name, None, scopes).await;
        let Created::Service(created) = created else {
            panic!("a service was asked for: {created:?}")
        };
        TestService {
            id: created.principal.id.clone(),
            name: created.principal.name.clone(),
            secret: created
                .client_secret
                .as_ref()
                .map(|s| s.expose().to_string())
                .unwrap_or_default(),
        }
    }

    /// A human with a password; returns the principal id.
    pub async fn create_human(&self, name: &str, password: &str, scopes: &[&str]) -> String {
        self.create(PrincipalKind::Human, name, Some(password), scopes)
            .await
            .id()
            .to_string()
    }

    /// A principal created through the principals handle, as the admin API does.
    async fn create(&self, kind: PrincipalKind, name: &str, password: Option<&str>, scopes: &[&str]) -> Created {
        let body = CreatePrincipal {
            kind,
            name: name.into(),
            display_name: None,
            email: None,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            password: password.map(roster::auth::secrets::SecretString::new),
            invite: false,
            categories: Vec::new(),
            public_client: false,
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            token_endpoint_auth_method: None,
            jwks: None,
            jwks_uri: None,
            federated_subjects: None,
            token_exchange: None,
        };
        self.state
            .principals()
            .create(None, body, self.clock.now())
            .await
            .unwrap()
    }

    /// The principals handle of another instance on the same database (as
    /// the CLI or a second server has): its changes reach this instance
    /// only through the database, never through this instance's caches.
    pub fn elsewhere(&self) -> PrincipalsContext {
        let here = self.state.principals();
        PrincipalsContext {
            db: here.db.clone(),
            argon: here.argon.clone(),
            hashing: here.hashing,
            pepper: here.pepper.clone(),
            verified: std::sync::Arc::new(roster::auth::verified::VerifiedClients::new()),
            revocations: std::sync::Arc::new(roster::feed::ChangeFeed::new()),
            live: std::sync::Arc::new(roster::auth::live::LiveView::new()),
            mfa: here.mfa,
            throttle: here.throttle.clone(),
            passkeys: here.passkeys.clone(),
            issuer: here.issuer.clone(),
            failures: here.failures.clone(),
        }
    }

    /// POST a form to `path`, optionally with HTTP Basic credentials (sent as given).
    pub async fn post_form(&self, path: &str, basic: Option<(&str, &str)>, form: &[(&str, &str)]) -> FormReply {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut req = self
            .client
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        FormReply::from(req.send().await.unwrap()).await
    }

    /// The JWKS as served.
    pub async fn jwks(&self) -> jsonwebtoken::jwk::JwkSet {
        self.client
            .get(self.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn audit_types(&self) -> Vec<(String, String, Option<String>, Option<String>, Option<String>)> {
        self.query(|conn| roster::models::audit::recent(conn, 1000))
            .await
            .into_iter()
            .map(|e| (e.event_type, e.outcome, e.principal_id, e.reason, e.remote_addr))
            .collect()
    }

    /// Every column of every audit row, as one string, to search for leaks.
    pub async fn audit_dump(&self) -> String {
        format!(
            "{:?}",
            self.query(|conn| roster::models::audit::recent(conn, 10_000)).await
        )
    }
}

/// Status, headers and JSON body of a reply.
pub struct FormReply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: serde_json::Value,
}

impl FormReply {
    async fn from(resp: reqwest::Response) -> Self {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
        Self { status, headers, body }
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
    }

    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
}

/// Verify an access token the way a resource server would: against the JWKS,
/// with jsonwebtoken checking the signature, iss, aud and exp, and `typ`.
pub fn verify_with_jwks(
    jwks: &jsonwebtoken::jwk::JwkSet,
    token: &str,
    issuer: &str,
    audience: &str,
) -> serde_json::Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let kid = header.kid.expect("kid");
    let jwk = jwks.find(&kid).unwrap_or_else(|| panic!("kid {kid} not in JWKS"));
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .unwrap()
        .claims
}

/// An `oauth2` crate client for Roster's token endpoint.
pub fn oauth_client(
    app: &TestApp,
    client_id: &str,
    secret: Option<&str>,
    auth: oauth2::AuthType,
) -> oauth2::basic::BasicClient<
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
    oauth2::EndpointSet,
    oauth2::EndpointSet,
> {
    let client = oauth2::basic::BasicClient::new(oauth2::ClientId::new(client_id.to_string()))
        .set_token_uri(oauth2::TokenUrl::new(app.url("/oauth/token")).unwrap())
        .set_introspection_url(oauth2::IntrospectionUrl::new(app.url("/oauth/introspect")).unwrap())
        .set_revocation_url(oauth2::RevocationUrl::new(app.url("/oauth/revoke")).unwrap())
        .set_auth_type(auth);
    match secret {
        Some(s) => client.set_client_secret(oauth2::ClientSecret::new(s.to_string())),
        None => client,
    }
}

pub fn oauth_http() -> oauth2::reqwest::Client {
    oauth2::reqwest::ClientBuilder::new()
        .redirect(oauth2::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl TestApp {
    /// A human with the `admin` scope, logged in: returns an access token.
    pub async fn admin_token(&self) -> String {
        self.create_human("root-admin", "admin-password-123", &["admin"]).await;
        self.login("root-admin", "admin-password-123").await.0
    }

    /// The password grant without a client, as sent: the whole reply.
    pub async fn password_grant(&self, user: &str, password: &str) -> FormReply {
        self.post_form(
            "/oauth/token",
            None,
            &[("grant_type", "password"), ("username", user), ("password", password)],
        )
        .await
    }

    /// client_credentials with Basic authentication: the whole reply.
    pub async fn client_grant(&self, name: &str, secret: &str) -> FormReply {
        self.post_form(
            "/oauth/token",
            Some((name, secret)),
            &[("grant_type", "client_credentials")],
        )
        .await
    }

    /// client_credentials that must succeed: the access token.
    pub async fn client_token(&self, name: &str, secret: &str) -> String {
        let r = self.client_grant(name, secret).await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["access_token"].as_str().unwrap().to_string()
    }

    /// Password grant without a client: (access token, refresh token).
    pub async fn login(&self, user: &str, password: &str) -> (String, String) {
        let r = self.password_grant(user, password).await;
        assert_eq!(r.status, 200, "login {user}: {}", r.body);
        (
            r.body["access_token"].as_str().unwrap().to_string(),
            r.body["refresh_token"].as_str().unwrap().to_string(),
        )
    }

    /// A JSON request with a Bearer token; returns status and JSON body (Null when empty).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> FormReply {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
        };
        FormReply { status, headers, body }
    }

    /// client_credentials with Basic: the HTTP status.
    pub async fn client_login_status(&self, name: &str, secret: &str) -> u16 {
        self.client_grant(name, secret).await.status
    }
}

// ---- a little service for the registry to watch ----------------------------

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A real HTTP service on loopback: `/health` answers 200 or 503 as the test
/// flips it, and `/getModules.json` serves a manifest with an ETag.
pub struct FakeService {
    pub addr: SocketAddr,
    pub healthy: std::sync::Arc<AtomicBool>,
    pub manifest: std::sync::Arc<Mutex<String>>,
    pub health_hits: std::sync::Arc<AtomicUsize>,
    /// Manifest requests answered 200 / 304.
    pub manifest_hits: std::sync::Arc<AtomicUsize>,
    pub not_modified: std::sync::Arc<AtomicUsize>,
    /// `/document.json` requests answered.
    pub document_hits: std::sync::Arc<AtomicUsize>,
    /// Where `/elsewhere` redirects to.
    pub redirect_to: std::sync::Arc<Mutex<String>>,
    handle: actix_web::dev::ServerHandle,
    /// The server's thread: joined on drop, so that once a FakeService is
    /// gone nothing of it answers (not even a kept-alive connection).
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeService {
    pub fn start(manifest: serde_json::Value) -> Self {
        use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
        let healthy = std::sync::Arc::new(AtomicBool::new(true));
        let manifest = std::sync::Arc::new(Mutex::new(manifest.to_string()));
        let health_hits = std::sync::Arc::new(AtomicUsize::new(0));
        let manifest_hits = std::sync::Arc::new(AtomicUsize::new(0));
        let not_modified = std::sync::Arc::new(AtomicUsize::new(0));
        let document_hits = std::sync::Arc::new(AtomicUsize::new(0));
        let dh = document_hits.clone();
        let redirect_to = std::sync::Arc::new(Mutex::new(String::from("/health")));
        let rt = redirect_to.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (h, m, hh, mh, nm) = (
            healthy.clone(),
            manifest.clone(),
            health_hits.clone(),
            manifest_hits.clone(),
            not_modified.clone(),
        );
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    let (h, m, hh, mh, nm) = (h.clone(), m.clone(), hh.clone(), mh.clone(), nm.clone());
                    let rt = rt.clone();
                    App::new()
                        .route(
                            "/elsewhere",
                            web::get().to(move || {
                                let to = rt.lock().unwrap().clone();
                                async move { HttpResponse::Found().insert_header(("Location", to)).finish() }
                            }),
                        )
                        .route(
                            "/health",
                            web::get().to(move || {
                                let (h, hh) = (h.clone(), hh.clone());
                                async move {
                                    hh.fetch_add(1, Ordering::SeqCst);
                                    if h.load(Ordering::SeqCst) {
                                        HttpResponse::Ok().body("ok")
                                    } else {
                                        HttpResponse::ServiceUnavailable().body("down")
                                    }
                                }
                            }),
                        )
                        // Any JSON document (a JWK Set, say): the manifest's body.
                        .route(
                            "/document.json",
                            web::get().to({
                                let (m, dh) = (m.clone(), dh.clone());
                                move || {
                                    let (m, dh) = (m.clone(), dh.clone());
                                    async move {
                                        dh.fetch_add(1, Ordering::SeqCst);
                                        let body = m.lock().unwrap().clone();
                                        HttpResponse::Ok().content_type("application/json").body(body)
                                    }
                                }
                            }),
                        )
                        .route(
                            "/getModules.json",
                            web::get().to(move |req: HttpRequest| {
                                let (m, mh, nm) = (m.clone(), mh.clone(), nm.clone());
                                async move {
                                    let body = m.lock().unwrap().clone();
                                    let etag = format!(
                                        "\"{}\"",
                                        body.len() ^ 0x5a5a ^ body.bytes().map(usize::from).sum::<usize>()
                                    );
                                    let inm = req.headers().get("if-none-match").and_then(|v| v.to_str().ok());
                                    if inm == Some(etag.as_str()) {
                                        nm.fetch_add(1, Ordering::SeqCst);
                                        return HttpResponse::NotModified().finish();
                                    }
                                    mh.fetch_add(1, Ordering::SeqCst);
                                    HttpResponse::Ok()
                                        .insert_header(("ETag", etag))
                                        .content_type("application/json")
                                        .body(body)
                                }
                            }),
                        )
                        // Redirects: to the same scheme (followed) and to https (refused).
                        .route(
                            "/moved",
                            web::get()
                                .to(|| async { HttpResponse::Found().insert_header(("Location", "/health")).finish() }),
                        )
                        .route(
                            "/to-https",
                            web::get().to(|req: HttpRequest| async move {
                                let host = req.connection_info().host().to_string();
                                HttpResponse::Found()
                                    .insert_header(("Location", format!("https://{host}/health")))
                                    .finish()
                            }),
                        )
                        // Never answers.
                        .route(
                            "/hang",
                            web::get().to(|| async {
                                std::future::pending::<()>().await;
                                HttpResponse::Ok().finish()
                            }),
                        )
                })
                .workers(1)
                .disable_signals()
                .listen(listener)
                .unwrap()
                .run();
                tx.send(server.handle()).unwrap();
                let _ = server.await;
            })
        });
        let handle = rx.recv().unwrap();
        Self {
            addr,
            healthy,
            manifest,
            health_hits,
            manifest_hits,
            not_modified,
            document_hits,
            redirect_to,
            handle,
            thread: Some(thread),
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn set_healthy(&self, up: bool) {
        self.healthy.store(up, Ordering::SeqCst);
    }

    pub fn set_manifest(&self, m: &str) {
        *self.manifest.lock().unwrap() = m.to_string();
    }
}

impl Drop for FakeService {
    fn drop(&mut self) {
        let h = self.handle.clone();
        let _ = std::thread::spawn(move || actix_web::rt::System::new().block_on(h.stop(false))).join();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A getModules.json manifest with the given pages as (code, menu_position, required_scope).
pub fn manifest_json(code: &str, pages: &[(&str, i64, Option<&str>)]) -> serde_json::Value {
    let pages: Vec<serde_json::Value> = pages
        .iter()
        .map(|(c, pos, scope)| {
            let mut p = serde_json::json!({"name": c.to_uppercase(), "code": c, "module_link": format!("/{code}/{c}"), "icon": "box", "menu_position": pos});
            if let Some(s) = scope {
                p["required_scope"] = serde_json::json!(s);
            }
            p
        })
        .collect();
    serde_json::json!({"name": code.to_uppercase(), "code": code, "pages": pages, "deps": ["base"]})
}

impl TestApp {
    /// A service principal and an access token of its own.
    pub async fn service_with_token(&self, name: &str, scopes: &[&str]) -> (TestService, String) {
        let svc = self.create_service(name, scopes).await;
        let token = self.client_token(name, &svc.secret).await;
        (svc, token)
    }

    /// One round of the instance's background work at the app's clock.
    pub async fn tick(&self) {
        self.state.upkeep().tick().await.unwrap();
    }
}
