//! The command line: `roster serve | migrate | principal ...`.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::Utc;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::auth::keys::SigningAlg;
use crate::auth::password;
use crate::auth::secrets::SecretString;
use crate::clock::Clock;
use crate::config::{self, DEFAULT_LISTEN, Settings};
use crate::db::PoolOptions;
use crate::models::principal::PrincipalKind;
use crate::principals::input::parse_category;
use crate::principals::{self, CreatePrincipal, PrincipalsContext};
use crate::startup::{self, AdminPassword, Session};
use crate::state::AppState;

/// The environment variables every command reads, for `roster --help`.
const ENV_HELP: &str = "\
Environment:
  DATABASE_URL           the database, as --database-url. Export it once, for the server and every command
  ROSTER_SECRET_PEPPER   the secret pepper (32+ characters); without it, a key file is used (see --key-file)
  ROSTER_KEY_FILE        as --key-file
  ROSTER_DATA_DIR        where key files for PostgreSQL live (else $XDG_DATA_HOME/roster, ~/.local/share/roster)
  ROSTER_ADMIN_PASSWORD  serve, first start only: the password of the first administrator 'admin'
                         (without it one is generated and printed once to stderr)
  ROSTER_LOG_FORMAT      as --log-format
  DATABASE_URL_FILE, ROSTER_SECRET_PEPPER_FILE, ROSTER_ADMIN_PASSWORD_FILE
                         read that variable from a file instead (Docker secrets), when it is unset
  RUST_LOG               log filter (default: info)
Every serve flag has an environment twin too: see roster serve --help.
Lost the admin password? roster recover-admin (see roster recover-admin --help).";

/// The environment variables `serve` reads besides its flags' twins.
const SERVE_ENV_HELP: &str = "\
Also read from the environment:
  DATABASE_URL           the database (export it once, for the server and every roster command)
  ROSTER_SECRET_PEPPER   the secret pepper (32+ characters); without it, a key file is used (see --key-file)
  ROSTER_ADMIN_PASSWORD  first start only: the password of the first administrator 'admin'; without it one
                         is generated and printed once to stderr. Lost it? roster recover-admin";

#[derive(Debug, Parser)]
#[command(
    name = "roster",
    version,
    about = "Identity service and service registry",
    after_help = ENV_HELP
)]
pub struct Cli {
    /// Database: postgres://..., postgresql://..., sqlite://PATH or a file path.
    /// Default: roster.db in the working directory.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,

    /// Key file holding the secret pepper when ROSTER_SECRET_PEPPER is unset.
    /// Default: next to the SQLite file (roster.db -> roster.key); for PostgreSQL,
    /// postgres-<id>.key in $ROSTER_DATA_DIR, $XDG_DATA_HOME/roster or ~/.local/share/roster.
    #[arg(long, env = "ROSTER_KEY_FILE", global = true)]
    key_file: Option<PathBuf>,

    /// Log format.
    #[arg(long, env = "ROSTER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

// Parsed once at startup: the size of `Serve`'s many flags costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service (runs pending migrations first; creates the database and the first admin on first start).
    Serve(ServeArgs),
    /// Run pending database migrations and exit (creates a new SQLite file if there is none).
    Migrate,
    /// Manage principals: people and services.
    Principal(PrincipalArgs),
    /// Manage JWT signing keys.
    Keys(KeysArgs),
    /// Get back in after losing the admin password: give NAME (default admin) a new password,
    /// re-enable it, give it the `admin` scope and clear its login throttle. Creates it if missing.
    /// The new password is printed once on stdout unless --password-stdin gives one.
    RecoverAdmin(RecoverArgs),
    /// Log a person in through the device flow (RFC 8628) against a running Roster:
    /// approve the shown code in a browser (second step included); the tokens are kept
    /// in $ROSTER_TOKEN_FILE (default ~/.config/roster/token.json, mode 0600).
    Login(LoginArgs),
    /// Print the access token `roster login` kept, refreshed when it is about to expire.
    Token(TokenArgs),
}

#[derive(Debug, Args)]
struct LoginArgs {
    /// The Roster to log in to (its issuer URL).
    #[arg(long, env = "ROSTER_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The scopes to ask for.
    #[arg(long, default_value = "openid admin")]
    scope: String,
    /// The public client to log in as.
    #[arg(long, default_value = crate::names::FIRST_PARTY_CLIENT)]
    client_id: String,
}

#[derive(Debug, Args)]
struct TokenArgs {
    /// The public client `roster login` used.
    #[arg(long, default_value = crate::names::FIRST_PARTY_CLIENT)]
    client_id: String,
}

/// For commands that need an existing database.
#[derive(Debug, Args)]
struct Existing {
    /// Create a new, empty SQLite database when the file does not exist. Without it a
    /// command pointed at a missing file fails, so that a forgotten DATABASE_URL never
    /// writes into a database the server does not use.
    #[arg(long, global = true)]
    create: bool,
}

#[derive(Debug, Args)]
struct PrincipalArgs {
    #[command(flatten)]
    existing: Existing,
    /// The issuer URL invitation links start with (default: the one the last
    /// `roster serve` on this database used).
    #[arg(long, env = "ROSTER_ISSUER", global = true)]
    issuer: Option<String>,
    #[command(subcommand)]
    command: PrincipalCommand,
}

#[derive(Debug, Args)]
struct KeysArgs {
    #[command(flatten)]
    existing: Existing,
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, Args)]
struct RecoverArgs {
    /// The administrator to recover.
    #[arg(default_value = crate::principals::BOOTSTRAP_ADMIN)]
    name: String,
    /// Read the new password from stdin (one trailing newline is stripped) instead of
    /// generating one.
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten)]
    existing: Existing,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Start a rotation: publish a new key now; running servers make it the
    /// signing key after the publish delay and keep the old one published
    /// until its last token has expired.
    Rotate {
        /// JWS algorithm of the new key.
        #[arg(long, env = "ROSTER_SIGNING_ALG", value_enum, default_value_t = SigningAlg::EdDsa)]
        signing_alg: SigningAlg,
    },
    /// List the signing keys and their state (public parts only).
    List,
}

#[derive(Debug, Args)]
#[command(after_help = SERVE_ENV_HELP)]
struct ServeArgs {
    /// Address to listen on, as HOST:PORT (0.0.0.0:8080 for every interface; port 0 picks a free one).
    #[arg(long, env = "ROSTER_LISTEN", default_value = DEFAULT_LISTEN, value_parser = parse_listen)]
    listen: String,
    /// JWS algorithm of new signing keys (the first one, and each rotation's).
    #[arg(long, env = "ROSTER_SIGNING_ALG", value_enum, default_value_t = SigningAlg::EdDsa)]
    signing_alg: SigningAlg,
    /// Issuer URL of this service. Default: http://<listen>.
    #[arg(long, env = "ROSTER_ISSUER")]
    issuer: Option<String>,
    /// Lifetime of access tokens (e.g. 300, 5m).
    /// At most 24h: the revocation feed remembers a principal's change that long.
    #[arg(long, env = "ROSTER_ACCESS_TOKEN_TTL", default_value = "5m", value_parser = parse_access_ttl)]
    access_token_ttl: chrono::Duration,
    /// Offer the password grant (scripts, the CLI): on or off. Browser apps log in
    /// through /oauth/authorize; the audit log shows which clients still use it.
    #[arg(long, env = "ROSTER_PASSWORD_GRANT", default_value = "on", value_parser = parse_on_off, action = clap::ArgAction::Set)]
    password_grant: bool,
    /// Require a second step (passkey, TOTP or recovery code) of everyone holding `admin`: on or
    /// off. Each person's own `mfa` setting applies either way.
    #[arg(long, env = "ROSTER_ADMIN_MFA", default_value = "on", value_parser = parse_on_off, action = clap::ArgAction::Set)]
    admin_mfa: bool,
    /// The longest life accepted for a client's private_key_jwt assertion
    /// (exp after iat or now; e.g. 300, 5m).
    #[arg(long, env = "ROSTER_CLIENT_ASSERTION_MAX_LIFETIME", default_value = "5m", value_parser = parse_some_duration)]
    client_assertion_max_lifetime: chrono::Duration,
    /// A browser login session unused this long ends (e.g. 30m, 1h).
    #[arg(long, env = "ROSTER_SESSION_IDLE_TIMEOUT", default_value = "1h", value_parser = parse_some_duration)]
    session_idle_timeout: chrono::Duration,
    /// A browser login session ends this long after the login, used or not (e.g. 12h).
    #[arg(long, env = "ROSTER_SESSION_LIFETIME", default_value = "12h", value_parser = parse_some_duration)]
    session_lifetime: chrono::Duration,
    /// Lifetime of refresh tokens (e.g. 30d).
    #[arg(long, env = "ROSTER_REFRESH_TOKEN_TTL", default_value = "30d", value_parser = parse_some_duration)]
    refresh_token_ttl: chrono::Duration,
    /// Automatic signing-key rotation interval, or "off".
    #[arg(long, env = "ROSTER_KEY_ROTATION_INTERVAL", default_value = "90d", value_parser = parse_optional_duration)]
    key_rotation_interval: OptionalDuration,
    /// How long a new key is published in the JWKS before it signs.
    #[arg(long, env = "ROSTER_KEY_PUBLISH_DELAY", default_value = "10m", value_parser = parse_some_duration)]
    key_publish_delay: chrono::Duration,
    /// How often registered services' health_url is polled.
    #[arg(long, env = "ROSTER_HEALTH_INTERVAL", default_value = "10s", value_parser = parse_some_duration)]
    health_interval: chrono::Duration,
    /// Timeout of one health check or manifest pull.
    #[arg(long, env = "ROSTER_FETCH_TIMEOUT", default_value = "2s", value_parser = parse_some_duration)]
    fetch_timeout: chrono::Duration,
    /// How often registered services' modules_url is pulled.
    #[arg(long, env = "ROSTER_MANIFEST_INTERVAL", default_value = "60s", value_parser = parse_some_duration)]
    manifest_interval: chrono::Duration,
    /// A service down this long drops out of the registry's listings.
    #[arg(long, env = "ROSTER_DEREGISTER_AFTER", default_value = "72h", value_parser = parse_some_duration)]
    deregister_after: chrono::Duration,
    /// Also refuse health checks and manifest pulls to this CIDR range (repeatable),
    /// besides the never-allowed ones (link-local, multicast, broadcast, unspecified).
    #[arg(long = "fetch-deny", env = "ROSTER_FETCH_DENY", value_delimiter = ',', value_parser = crate::outbound::policy::parse_net)]
    fetch_deny: Vec<ipnet::IpNet>,
    /// Believe X-Forwarded-For from proxies in this CIDR range (repeatable); the
    /// client address (audit, throttling) is then the right-most untrusted entry.
    #[arg(long = "trust-forwarded-for", env = "ROSTER_TRUST_FORWARDED_FOR", value_delimiter = ',', value_parser = crate::outbound::policy::parse_net)]
    trust_forwarded_for: Vec<ipnet::IpNet>,
    /// Delete audit events older than this (e.g. 90d, 1y), or "off" to keep them all.
    #[arg(long, env = "ROSTER_AUDIT_RETENTION", default_value = "90d", value_parser = parse_optional_duration)]
    audit_retention: OptionalDuration,
    /// Allow fetches to this CIDR range even inside a refused one (repeatable).
    #[arg(long = "fetch-allow", env = "ROSTER_FETCH_ALLOW", value_delimiter = ',', value_parser = crate::outbound::policy::parse_net)]
    fetch_allow: Vec<ipnet::IpNet>,
    /// This network's NAT64 prefix besides 64:ff9b::/96 (repeatable; RFC 6052
    /// lengths /32 /40 /48 /56 /64 /96): an address under it is judged as the
    /// IPv4 address it carries.
    #[arg(long = "fetch-nat64", env = "ROSTER_FETCH_NAT64", value_delimiter = ',', value_parser = crate::outbound::policy::parse_nat64)]
    fetch_nat64: Vec<ipnet::Ipv6Net>,
    /// Time for a request's head after a connection opens or the last request ends.
    #[arg(long, env = "ROSTER_HEAD_TIMEOUT", default_value = "5s", value_parser = parse_std_duration)]
    head_timeout: std::time::Duration,
    /// Time for a whole request, head and body, from its first byte (a long
    /// poll adds its own wait); a body still missing then is a 400.
    #[arg(long, env = "ROSTER_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_std_duration)]
    request_timeout: std::time::Duration,
    /// Time after an answer to send it and drain a body the handler did not read;
    /// then the connection is closed.
    #[arg(long, env = "ROSTER_DRAIN_TIMEOUT", default_value = "1s", value_parser = parse_std_duration)]
    drain_timeout: std::time::Duration,
    /// How long an idle keep-alive connection stays open.
    #[arg(long, env = "ROSTER_KEEP_ALIVE", default_value = "5s", value_parser = parse_std_duration)]
    keep_alive: std::time::Duration,
    /// Most connections open at once; near it, the oldest stalled connections
    /// are closed to make room (capped by the open-file limit).
    #[arg(long, env = "ROSTER_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(16..))]
    max_connections: u32,
    /// Most connections open at once from one IPv4 address or IPv6 /64
    /// (connections from --trust-forwarded-for proxies are not counted).
    #[arg(long, env = "ROSTER_MAX_CONNECTIONS_PER_PEER", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections_per_peer: u32,
    /// A connection that moved no byte for this long is stalled: near
    /// --max-connections, the oldest stalled ones are closed first.
    #[arg(long, env = "ROSTER_STALLED_AFTER", default_value = "2s", value_parser = parse_std_duration)]
    stalled_after: std::time::Duration,
    /// Serve Prometheus metrics at /metrics on this HOST:PORT (off by default;
    /// keep it off the public network).
    #[arg(long, env = "ROSTER_METRICS_LISTEN", value_parser = parse_listen)]
    metrics_listen: Option<String>,
    /// Offer the admin console at /console/: on or off. Its login client, Roster's
    /// first-party client (also the device login's), is registered either way.
    #[arg(long, env = "ROSTER_CONSOLE", default_value = "on", value_parser = parse_on_off, action = clap::ArgAction::Set)]
    console: bool,
    /// Discover service instances from container labels (off by default).
    #[arg(long, env = "ROSTER_DISCOVER", value_enum)]
    discover: Option<Discover>,
    /// The Docker Engine API for --discover docker (Podman's socket works the same way).
    #[arg(long, env = "ROSTER_DOCKER_HOST", default_value = "unix:///var/run/docker.sock")]
    docker_host: String,
    /// How often --discover lists the containers again even without events.
    #[arg(long, env = "ROSTER_DISCOVER_INTERVAL", default_value = "30s", value_parser = parse_some_duration)]
    discover_interval: chrono::Duration,
}

/// `--discover`: where instances come from besides registrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Discover {
    /// Containers labelled `roster.service=NAME`, through the Docker Engine API.
    Docker,
}

/// `--listen`: HOST:PORT, checked before anything touches the database.
fn parse_listen(s: &str) -> Result<String, String> {
    let hint = "expected HOST:PORT, for example 127.0.0.1:8080 or 0.0.0.0:8080";
    let Some((host, port)) = s.rsplit_once(':') else {
        if s.parse::<u16>().is_ok() {
            return Err(format!("'{s}' has no host: {hint} (did you mean 127.0.0.1:{s}?)"));
        }
        return Err(format!("'{s}' has no port: {hint}"));
    };
    if host.is_empty() {
        return Err(format!("'{s}' has no host: {hint}"));
    }
    port.parse::<u16>()
        .map_err(|_| format!("'{port}' is not a port number: {hint}"))?;
    Ok(s.to_string())
}

fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(format!("'{other}' is neither on nor off")),
    }
}

/// A duration that may be "off".
#[derive(Debug, Clone, Copy)]
struct OptionalDuration(Option<chrono::Duration>);

fn parse_optional_duration(s: &str) -> Result<OptionalDuration, String> {
    config::parse_duration(s).map(OptionalDuration)
}

fn parse_some_duration(s: &str) -> Result<chrono::Duration, String> {
    config::parse_duration(s)?
        .filter(|d| *d > chrono::Duration::zero())
        .ok_or_else(|| "must be a positive duration".to_string())
}

fn parse_std_duration(s: &str) -> Result<std::time::Duration, String> {
    parse_some_duration(s)?
        .to_std()
        .map_err(|_| "must be a positive duration".to_string())
}

fn parse_access_ttl(s: &str) -> Result<chrono::Duration, String> {
    let ttl = parse_some_duration(s)?;
    if ttl > crate::models::revocation::MAX_ACCESS_TOKEN_TTL {
        return Err("must be at most 24h".into());
    }
    Ok(ttl)
}

#[derive(Debug, Subcommand)]
enum PrincipalCommand {
    /// Create a service principal and print its first client secret (shown once).
    CreateService {
        /// Name, also the OAuth client_id: [a-z0-9][a-z0-9._-]{0,62}.
        name: String,
        /// Scope to grant; repeat for several. `admin` makes it an administrator (audited).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Category membership as NAME or NAME:PRIORITY (higher comes first); repeat for several.
        #[arg(long = "category")]
        categories: Vec<String>,
        /// Human-readable name, shown in listings.
        #[arg(long)]
        display_name: Option<String>,
        /// Where it may send people back after a browser login (exact URL); repeat for several.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Where it may send people back after a logout (exact URL); repeat for several.
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// A frontend without a secret (a public client): no secret is created.
        #[arg(long)]
        public: bool,
        /// private_key_jwt with the public JWK Set in this file: no secret is created.
        #[arg(long, conflicts_with_all = ["public", "jwks_uri"])]
        jwks_file: Option<std::path::PathBuf>,
        /// private_key_jwt with the JWK Set fetched from this URL: no secret is created.
        #[arg(long, conflicts_with = "public")]
        jwks_uri: Option<String>,
        /// Token exchange (RFC 8693): an audience it may exchange its callers'
        /// tokens for (a service, or urn:roster:category:NAME); repeat for several.
        #[arg(long = "exchange-audience")]
        exchange_audiences: Vec<String>,
        /// The longest delegation chain its exchanged tokens may carry.
        #[arg(long, requires = "exchange_audiences")]
        exchange_max_depth: Option<i32>,
    },
    /// Create a person; the password is read from stdin, or with --invite they
    /// get a single-use link to register a passkey instead (printed once).
    CreateHuman {
        /// Login name: [a-z0-9][a-z0-9._-]{0,62}.
        name: String,
        /// Contact address.
        #[arg(long)]
        email: Option<String>,
        /// Scope to grant; repeat for several. `admin` makes them an administrator.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Human-readable name, shown in listings.
        #[arg(long)]
        display_name: Option<String>,
        /// Read the password from stdin (one trailing newline is stripped).
        #[arg(long, required_unless_present = "invite", conflicts_with = "invite")]
        password_stdin: bool,
        /// No password: a single-use link (three days) with which they register a passkey.
        #[arg(long)]
        invite: bool,
    },
    /// A new single-use link with which a person who has no password and no
    /// second factor registers their first passkey; their unused links stop working.
    Invite {
        /// The person's login name.
        name: String,
        /// Seconds the link works (300 to 2592000; default 259200, three days).
        #[arg(long)]
        expires_in: Option<i64>,
    },
    /// Set a person's password (their refresh tokens are revoked); read from stdin.
    SetPassword {
        /// The person's login name.
        name: String,
        /// Read the password from stdin (one trailing newline is stripped).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List all principals as JSON.
    List,
}

/// Entry point of the binary: a non-zero exit and one line on stderr on failure.
/// Secrets that may come from a file named by `NAME_FILE` (Docker and compose
/// secrets, mounted at `/run/secrets/...`) when `NAME` itself is unset.
const FILE_TWINS: [&str; 3] = ["DATABASE_URL", "ROSTER_SECRET_PEPPER", "ROSTER_ADMIN_PASSWORD"];

/// A secret file's content: the whole file but one trailing line end.
fn secret_file(path: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let value = text.strip_suffix('\n').unwrap_or(&text);
    let value = value.strip_suffix('\r').unwrap_or(value);
    if value.is_empty() {
        return Err(format!("{path} is empty"));
    }
    Ok(value.to_string())
}

/// Set each `NAME` of [`FILE_TWINS`] from `NAME_FILE` where only that is set.
fn secrets_from_files() -> Result<(), String> {
    for name in FILE_TWINS {
        let file_var = format!("{name}_FILE");
        if env(name).is_some() {
            continue;
        }
        if let Some(path) = env(&file_var) {
            let value = secret_file(&path).map_err(|e| format!("{file_var}: {e}"))?;
            // SAFETY: called first thing in main, before any other thread exists.
            unsafe { std::env::set_var(name, value) };
        }
    }
    Ok(())
}

pub fn main() -> ExitCode {
    if let Err(e) = secrets_from_files() {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            eprintln!("{}", one_line(&e.to_string()));
            return ExitCode::from(2);
        }
    };
    init_tracing(cli.log_format);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.lines().next().unwrap_or("failed"));
            ExitCode::FAILURE
        }
    }
}

/// clap's error on one line: what is wrong, including the names of missing
/// arguments that clap puts on the lines after it, and the usage.
fn one_line(text: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut usage = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(u) = line.strip_prefix("Usage:") {
            usage = Some(u.trim().to_string());
        } else if !line.starts_with("For more information") {
            parts.push(line.to_string());
        }
    }
    let mut out = parts.join(" ");
    if out.is_empty() {
        out = "error: invalid arguments".into();
    }
    match usage {
        Some(u) => format!("{out} (usage: {u}; see --help)"),
        None => format!("{out} (see roster --help)"),
    }
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        // Escaped, and without colour codes, so a log line is one line.
        LogFormat::Text => builder.with_ansi(false).with_writer(crate::logging::stderr).try_init(),
        LogFormat::Json => builder.json().with_writer(std::io::stderr).try_init(),
    };
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The database, migrated, with its verified pepper, on one connection.
/// Without `create`, a SQLite file that does not exist is an error.
fn connect(cli: &Cli, create: bool) -> Result<Session, String> {
    if !create {
        startup::require_existing(cli.database_url.as_deref())?;
    }
    startup::connect(
        cli.database_url.as_deref(),
        cli.key_file.as_deref(),
        env("ROSTER_SECRET_PEPPER").as_deref(),
        Utc::now(),
    )
}

fn run(cli: Cli) -> Result<(), String> {
    match &cli.command {
        Command::Serve(args) => serve(&cli, args),
        Command::Migrate => {
            let session = connect(&cli, true)?;
            eprintln!("migrations are up to date on {}", session.target.describe());
            Ok(())
        }
        Command::Principal(args) => principal(&cli, args),
        Command::Keys(args) => keys(&cli, args),
        Command::RecoverAdmin(args) => recover_admin(&cli, args),
        Command::Login(args) => block_on(crate::cli_login::login(&args.url, &args.client_id, &args.scope)),
        Command::Token(args) => block_on(crate::cli_login::token(&args.client_id)).map(|t| println!("{t}")),
    }
}

fn serve(cli: &Cli, args: &ServeArgs) -> Result<(), String> {
    // Every instance must have loaded a new key before any instance signs
    // with it: the publish delay spans at least two reloads. Checked before
    // the database is touched.
    let two_reloads = chrono::Duration::seconds(config::DEFAULT_KEY_REFRESH_SECS * 2);
    if args.key_publish_delay <= two_reloads {
        return Err(format!(
            "--key-publish-delay must be longer than {} s (two key reloads), so that every instance can verify a key before one signs with it",
            two_reloads.num_seconds()
        ));
    }
    // The address is taken before the database is touched: a port in use
    // fails at once, and nothing is migrated for a server that cannot run.
    let (listener, addr) =
        crate::http::bind(&args.listen).map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let metrics = match &args.metrics_listen {
        Some(listen) => {
            let (l, a) =
                crate::http::bind(listen).map_err(|e| format!("cannot listen on {listen} for metrics: {e}"))?;
            crate::telemetry::install()?;
            Some((l, a))
        }
        None => None,
    };
    let mut session = connect(cli, true)?;
    tracing::info!(database = %session.target.describe(), pepper = %session.pepper_source, "database ready");
    match startup::bootstrap_admin(&mut session.conn, env("ROSTER_ADMIN_PASSWORD").as_deref(), Utc::now())? {
        Some(AdminPassword::Generated(pw)) => {
            eprintln!(
                "Created the first administrator 'admin' with a generated password, shown only this once:\n{}",
                pw.expose()
            );
        }
        Some(AdminPassword::FromEnv) => {
            eprintln!("Created the first administrator 'admin' with the password from ROSTER_ADMIN_PASSWORD.");
        }
        None => {}
    }
    let mut settings =
        Settings::new(config::issuer_for(args.issuer.as_deref(), addr)).with_access_ttl(args.access_token_ttl);
    settings.token.refresh_ttl = args.refresh_token_ttl;
    settings.token.password_grant = args.password_grant;
    settings.mfa.admins_required = args.admin_mfa;
    settings.token.assertion_max_lifetime = args.client_assertion_max_lifetime;
    settings.sessions = crate::oauth::session::SessionPolicy {
        idle: args.session_idle_timeout,
        lifetime: args.session_lifetime,
    };
    settings.keys.alg = args.signing_alg;
    settings.keys.rotation_interval = args.key_rotation_interval.0;
    settings.keys.publish_delay = args.key_publish_delay;

    if let Some(previous) = startup::record_issuer(&mut session.conn, settings.issuer(), Utc::now())? {
        eprintln!(
            "note: the last roster serve on this database used the issuer {previous}, this one {}: \
             each accepts only tokens of its own issuer, so give every instance sharing a database \
             the same --issuer (ROSTER_ISSUER), or their tokens are refused with 401",
            settings.issuer()
        );
    }
    // The first-party client serves the device login too: registered
    // whether or not the console is offered.
    let first_party = console_client(&mut session, settings.issuer())?;
    settings.console = args.console && first_party;

    settings.registry.health_interval = args.health_interval;
    settings.registry.fetch_timeout = args.fetch_timeout;
    settings.registry.manifest_interval = args.manifest_interval;
    settings.registry.deregister_after = args.deregister_after;
    settings.audit_retention = args.audit_retention.0;
    settings.trusted_proxies = args.trust_forwarded_for.clone();
    settings.http = crate::config::HttpLimits {
        head_timeout: args.head_timeout,
        request_timeout: args.request_timeout,
        drain_timeout: args.drain_timeout,
        keep_alive: args.keep_alive,
        max_connections: {
            let room = crate::http::conn::open_file_room();
            let wanted = args.max_connections as usize;
            if wanted > room {
                eprintln!(
                    "note: --max-connections lowered from {wanted} to {room}: the open-file limit allows no more"
                );
            }
            wanted.min(room)
        },
        max_connections_per_peer: args.max_connections_per_peer as usize,
        stalled_after: args.stalled_after,
    };
    settings.registry.fetch = crate::outbound::policy::FetchPolicy {
        nat64: args.fetch_nat64.clone(),
        ..crate::outbound::policy::FetchPolicy::new(args.fetch_allow.clone(), args.fetch_deny.clone())
    };
    settings.registry.docker = args
        .discover
        .map(|Discover::Docker| crate::registry::docker::DockerConfig {
            host: args.docker_host.clone(),
            interval: args.discover_interval,
        });
    let database = session.target.describe();
    let state = AppState::new(session, &PoolOptions::default(), Clock::system(), settings.clone())?;
    let db = state.db().clone();
    let served = run_server(state, listener, metrics, &settings, addr, &database);
    // The runtime above has been dropped, which joined its blocking threads;
    // close the pool too, so that no thread is inside the database driver
    // while the process exits.
    if !db.close(SHUTDOWN_GRACE) {
        tracing::warn!("database work was still running at exit");
    }
    served?;
    eprintln!("roster stopped");
    Ok(())
}

/// Register or update Roster's first-party login client (the console's and
/// the device login's); whether the console can be offered.
fn console_client(session: &mut Session, issuer: &str) -> Result<bool, String> {
    use crate::principals::console::{self, ConsoleClient};
    let outcome = console::ensure(&mut session.conn, &session.pepper, issuer, Utc::now()).map_err(|e| e.to_string())?;
    Ok(match outcome {
        ConsoleClient::Registered => {
            eprintln!(
                "Registered Roster's first-party login client '{}' (the console, the device login) for {}",
                console::CONSOLE_CLIENT,
                console::redirect_uri(issuer)
            );
            true
        }
        ConsoleClient::Updated => {
            eprintln!(
                "Roster's first-party login client now returns to {}",
                console::redirect_uri(issuer)
            );
            true
        }
        ConsoleClient::Unchanged => true,
        ConsoleClient::Disabled => {
            eprintln!(
                "The admin console is off: its client '{}' is disabled",
                console::CONSOLE_CLIENT
            );
            false
        }
        ConsoleClient::Unavailable(why) => {
            eprintln!("The admin console is off: {why}");
            false
        }
    })
}

/// How long shutdown waits for in-flight database work.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(15);

/// Serve until SIGTERM or Ctrl-C: requests in flight finish, then the
/// background tick stops and pending use counts are written.
fn run_server(
    state: AppState,
    listener: std::net::TcpListener,
    metrics: Option<(std::net::TcpListener, std::net::SocketAddr)>,
    settings: &Settings,
    addr: std::net::SocketAddr,
    database: &str,
) -> Result<(), String> {
    let upkeep = state.upkeep().clone();
    actix_web::rt::System::new().block_on(async move {
        // Signal handlers are in place before the "listening" line, so a
        // SIGTERM right after it still shuts down gracefully.
        let shutdown = crate::http::shutdown_signal().map_err(|e| format!("cannot install signal handlers: {e}"))?;
        let server = crate::http::server(state, listener, None).map_err(|e| format!("cannot start the server: {e}"))?;
        let handle = server.handle();
        let metrics = match metrics {
            Some((listener, at)) => {
                let server = crate::http::metrics::server(listener)
                    .map_err(|e| format!("cannot start the metrics server: {e}"))?;
                eprintln!("metrics on http://{at}/metrics");
                let handle = server.handle();
                actix_web::rt::spawn(server);
                Some(handle)
            }
            None => None,
        };
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let registry = upkeep.parts.registry.clone();
        let revocations = upkeep.parts.revocations.clone();
        if let Some(docker) = &settings.registry.docker {
            let discovery = crate::registry::docker::Discovery::connect(docker)?;
            let (registry, clock) = (registry.clone(), upkeep.parts.clock.clone());
            actix_web::rt::spawn(discovery.run(registry, clock, stop_rx.clone()));
            eprintln!("discovering instances from container labels at {}", docker.host);
        }
        let first = upkeep.clone();
        let (live, db, clock) = (
            upkeep.parts.live.clone(),
            upkeep.parts.db.clone(),
            upkeep.parts.clock.clone(),
        );
        actix_web::rt::spawn(crate::auth::live::follow(live, db, clock, stop_rx.clone()));
        let ticker = actix_web::rt::spawn(upkeep.run(crate::upkeep::TICK, stop_rx));
        actix_web::rt::spawn(async move {
            shutdown.await;
            tracing::info!("shutdown signal received: finishing requests in flight");
            // Long polls answer now with what they have, instead of being cut off.
            registry.feed.close();
            revocations.close();
            handle.stop(true).await;
            if let Some(m) = metrics {
                m.stop(true).await;
            }
        });
        // With metrics, one round of upkeep before announcing, so that the
        // gauges exist from the first scrape the announcement invites.
        if crate::telemetry::enabled()
            && let Err(e) = first.tick().await
        {
            tracing::warn!(error = %e, "the first background tick failed");
        }
        eprintln!(
            "roster listening on http://{addr} (issuer {}), database: {database}",
            settings.issuer(),
        );
        if settings.console {
            eprintln!(
                "the admin console: {}",
                crate::principals::console::redirect_uri(settings.issuer())
            );
        }
        let served = server.await.map_err(|e| format!("server error: {e}"));
        // The tick stops and writes the pending use counts.
        let _ = stop_tx.send(true);
        let _ = ticker.await;
        served
    })
}

/// The principals handle for one command, on a pool of its own: the CLI
/// runs the very operations the admin API runs, at the production argon2 cost.
fn principals_handle(cli: &Cli, create: bool) -> Result<PrincipalsContext, String> {
    let Session {
        target, conn, pepper, ..
    } = connect(cli, create)?;
    drop(conn);
    Ok(PrincipalsContext::standalone(target, pepper, password::Hashing::OWASP))
}

/// Run one operation of a one-shot command to its end.
fn block_on<F: std::future::Future>(operation: F) -> F::Output {
    actix_web::rt::System::new().block_on(operation)
}

fn principal(cli: &Cli, args: &PrincipalArgs) -> Result<(), String> {
    let ctx = principals_handle(cli, args.existing.create)?;
    let now = Utc::now();
    let out = match &args.command {
        PrincipalCommand::CreateService {
            name,
            scopes,
            categories,
            display_name,
            redirect_uris,
            post_logout_redirect_uris,
            public,
            jwks_file,
            jwks_uri,
            exchange_audiences,
            exchange_max_depth,
        } => {
            let jwks = jwks_file
                .as_ref()
                .map(|path| {
                    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
                    serde_json::from_str::<serde_json::Value>(&text)
                        .map_err(|e| format!("{}: not JSON: {e}", path.display()))
                })
                .transpose()?;
            let keyed = jwks.is_some() || jwks_uri.is_some();
            let categories = categories
                .iter()
                .map(|c| parse_category(c))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            let body = CreatePrincipal {
                kind: PrincipalKind::Service,
                name: name.clone(),
                display_name: display_name.clone(),
                email: None,
                scopes: scopes.clone(),
                password: None,
                invite: false,
                categories,
                public_client: *public,
                redirect_uris: redirect_uris.clone(),
                post_logout_redirect_uris: post_logout_redirect_uris.clone(),
                token_endpoint_auth_method: keyed.then_some(crate::models::client_key::AuthMethod::PrivateKeyJwt),
                jwks,
                jwks_uri: jwks_uri.clone(),
                federated_subjects: None,
                token_exchange: (!exchange_audiences.is_empty()).then(|| crate::principals::input::ExchangePolicy {
                    audiences: exchange_audiences.clone(),
                    max_depth: exchange_max_depth.unwrap_or(crate::models::token_exchange::DEFAULT_MAX_DEPTH),
                }),
            };
            let created = block_on(ctx.create(None, body, now)).map_err(|e| e.to_string())?;
            warn_if_admin(scopes);
            serde_json::to_string_pretty(&created)
        }
        PrincipalCommand::CreateHuman {
            name,
            email,
            scopes,
            display_name,
            password_stdin: _,
            invite,
        } => {
            let mut body = CreatePrincipal {
                kind: PrincipalKind::Human,
                name: name.clone(),
                display_name: display_name.clone(),
                email: email.clone(),
                scopes: scopes.clone(),
                password: None,
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
            // Refused before the password is asked for.
            body.principal().validate().map_err(|e| e.to_string())?;
            let ctx = if *invite {
                body.invite = true;
                inviting(ctx, args.issuer.as_deref())?
            } else {
                body.password = Some(read_password_stdin()?);
                ctx
            };
            let created = block_on(ctx.create(None, body, now)).map_err(|e| e.to_string())?;
            serde_json::to_string_pretty(&created)
        }
        PrincipalCommand::Invite { name, expires_in } => {
            let ctx = inviting(ctx, args.issuer.as_deref())?;
            let body = crate::principals::invitations::NewInvitation {
                expires_in: *expires_in,
            };
            let made = block_on(ctx.invite(None, name.clone(), body, now)).map_err(|e| e.to_string())?;
            serde_json::to_string_pretty(&made)
        }
        PrincipalCommand::SetPassword { name, .. } => {
            let password = read_password_stdin()?;
            let view = block_on(ctx.reset_password(name.clone(), password, now)).map_err(|e| e.to_string())?;
            eprintln!("password of '{name}' set; their refresh tokens are revoked");
            serde_json::to_string_pretty(&view)
        }
        PrincipalCommand::List => serde_json::to_string_pretty(&block_on(ctx.all()).map_err(|e| e.to_string())?),
    }
    .map_err(|e| e.to_string())?;
    println!("{out}");
    Ok(())
}

/// The handle at the issuer invitation links start with: the one given, or
/// the one the last `roster serve` on this database used.
fn inviting(ctx: PrincipalsContext, issuer: Option<&str>) -> Result<PrincipalsContext, String> {
    let issuer = match issuer.filter(|i| !i.is_empty()) {
        Some(i) => i.trim_end_matches('/').to_string(),
        None => block_on(
            ctx.db
                .run(|c| startup::last_issuer(c).map_err(crate::error::Error::internal)),
        )
        .map_err(|e| e.to_string())?
        .ok_or("no roster serve has run on this database yet: give the issuer with --issuer (ROSTER_ISSUER)")?,
    };
    Ok(ctx.at_issuer(&issuer))
}

/// A service given `admin` may manage every principal: allowed (provisioning
/// jobs need it), audited with the creation, and said out loud here.
fn warn_if_admin(scopes: &[String]) {
    if scopes.iter().any(|s| s == principals::ADMIN_SCOPE) {
        eprintln!("note: this service holds 'admin': its client secret can manage every principal");
    }
}

fn recover_admin(cli: &Cli, args: &RecoverArgs) -> Result<(), String> {
    let ctx = principals_handle(cli, args.existing.create)?;
    let (password, generated) = if args.password_stdin {
        (read_password_stdin()?, false)
    } else {
        let token = crate::auth::secrets::random_token(18).map_err(|_| "random generator failed".to_string())?;
        (SecretString::new(token), true)
    };
    let shown = generated.then(|| password.clone());
    let done = block_on(ctx.recover_admin(args.name.clone(), password, Utc::now())).map_err(|e| e.to_string())?;
    let mut out = serde_json::to_value(&done).map_err(|e| e.to_string())?;
    if let Some(shown) = &shown {
        // Shown once, on stdout only; never logged.
        out["password"] = serde_json::Value::String(shown.expose().to_string());
    }
    println!("{}", serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?);
    eprintln!(
        "'{}' can log in with {} and holds 'admin'; its old refresh tokens are revoked",
        args.name,
        if generated {
            "the password above"
        } else {
            "the password from stdin"
        }
    );
    Ok(())
}

fn keys(cli: &Cli, args: &KeysArgs) -> Result<(), String> {
    let Session { mut conn, pepper, .. } = connect(cli, args.existing.create)?;
    let out = match &args.command {
        KeysCommand::Rotate { signing_alg } => {
            let kid =
                crate::auth::keys::rotate(&mut conn, &pepper, *signing_alg, Utc::now()).map_err(|e| e.to_string())?;
            serde_json::json!({"kid": kid, "alg": signing_alg.as_str(), "state": "next"})
        }
        KeysCommand::List => serde_json::to_value(crate::auth::keys::list(&mut conn).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?,
    };
    println!("{}", serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?);
    Ok(())
}

/// Read the password from stdin, stripping one trailing newline (`\n` or `\r\n`).
fn read_password_stdin() -> Result<SecretString, String> {
    let mut buf = String::new();
    std::io::stdin()
        .take(password::MAX_PASSWORD_BYTES as u64 + 2)
        .read_to_string(&mut buf)
        .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    Ok(SecretString::new(strip_one_newline(buf)))
}

fn strip_one_newline(mut s: String) -> String {
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    s
}

#[cfg(test)]
mod tests {

    #[test]
    fn secret_files_lose_one_line_end_and_must_not_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p.display().to_string()
        };
        assert_eq!(secret_file(&write("a", "s3cret\n")).unwrap(), "s3cret");
        assert_eq!(secret_file(&write("b", "s3cret\r\n")).unwrap(), "s3cret");
        assert_eq!(secret_file(&write("c", " two words \n\n")).unwrap(), " two words \n");
        assert!(secret_file(&write("d", "\n")).unwrap_err().ends_with("is empty"));
        assert!(
            secret_file("/nonexistent/secret")
                .unwrap_err()
                .starts_with("cannot read /nonexistent/secret")
        );
    }

    use super::*;

    #[test]
    fn strips_exactly_one_trailing_newline() {
        assert_eq!(strip_one_newline("pw\n".into()), "pw");
        assert_eq!(strip_one_newline("pw\r\n".into()), "pw");
        assert_eq!(strip_one_newline("pw\n\n".into()), "pw\n");
        assert_eq!(strip_one_newline("pw".into()), "pw");
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_flags_parse_with_defaults_and_overrides() {
        let cli = Cli::try_parse_from(["roster", "serve"]).unwrap();
        let Command::Serve(args) = &cli.command else {
            panic!("serve")
        };
        assert_eq!(args.access_token_ttl, chrono::Duration::minutes(5));
        assert_eq!(args.key_rotation_interval.0, Some(chrono::Duration::days(90)));
        assert!(args.password_grant && args.console && args.admin_mfa);
        // The on/off switches take their value (not bare flags that would swallow it).
        let cli = Cli::try_parse_from([
            "roster",
            "serve",
            "--password-grant",
            "off",
            "--console",
            "off",
            "--admin-mfa",
            "off",
        ])
        .unwrap();
        let Command::Serve(args) = &cli.command else {
            panic!("serve")
        };
        assert!(!args.password_grant && !args.console && !args.admin_mfa);
        assert!(Cli::try_parse_from(["roster", "serve", "--console", "maybe"]).is_err());
        let cli = Cli::try_parse_from([
            "roster",
            "serve",
            "--signing-alg",
            "ES256",
            "--key-rotation-interval",
            "off",
            "--access-token-ttl",
            "60",
        ])
        .unwrap();
        let Command::Serve(args) = &cli.command else {
            panic!("serve")
        };
        assert_eq!(args.key_rotation_interval.0, None);
        assert_eq!(args.access_token_ttl, chrono::Duration::seconds(60));
        assert_eq!(args.signing_alg, SigningAlg::Es256);
        assert!(Cli::try_parse_from(["roster", "serve", "--access-token-ttl", "0"]).is_err());
        assert!(Cli::try_parse_from(["roster", "serve", "--access-token-ttl", "25h"]).is_err());
        assert!(Cli::try_parse_from(["roster", "serve", "--access-token-ttl", "24h"]).is_ok());
        // Global flags appear only where they apply.
        assert!(Cli::try_parse_from(["roster", "--signing-alg", "ES256", "principal", "list"]).is_err());
        assert!(Cli::try_parse_from(["roster", "principal", "list", "--create"]).is_ok());
        assert!(Cli::try_parse_from(["roster", "serve", "--create"]).is_err());
    }

    /// Every argument of every command says what it is for.
    #[test]
    fn every_flag_and_argument_has_help() {
        use clap::CommandFactory;
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "roster", &mut missing);
        assert_eq!(missing, Vec::<String>::new());
    }

    #[test]
    fn listen_must_be_host_and_port() {
        assert_eq!(parse_listen("127.0.0.1:8080").unwrap(), "127.0.0.1:8080");
        assert_eq!(parse_listen("[::1]:0").unwrap(), "[::1]:0");
        assert_eq!(parse_listen("localhost:80").unwrap(), "localhost:80");
        for bad in ["8081", ":8081", "127.0.0.1:http", "127.0.0.1:70000"] {
            assert!(parse_listen(bad).unwrap_err().contains("HOST:PORT"), "{bad}");
        }
    }

    #[test]
    fn clap_errors_fit_one_line_and_name_what_is_missing() {
        let e = Cli::try_parse_from(["roster", "principal", "create-service"]).unwrap_err();
        assert_eq!(
            one_line(&e.to_string()),
            "error: the following required arguments were not provided: <NAME> \
             (usage: roster principal create-service <NAME>; see --help)"
        );
    }
}
