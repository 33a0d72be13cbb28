//! The command line: `roster serve | migrate | principal ...`.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::Utc;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::auth::password;
use crate::auth::secrets::SecretString;
use crate::clock::Clock;
use crate::config::{self, DEFAULT_LISTEN, Settings};
use crate::db::PoolOptions;
use crate::models::principal::{CategoryAssignment, NewPrincipal, PrincipalKind};
use crate::principals::{self, CreatedServiceView};
use crate::startup::{self, AdminPassword, Opened};
use crate::state::AppState;

#[derive(Debug, Parser)]
#[command(name = "roster", version, about = "Identity service and service registry")]
pub struct Cli {
    /// Database: postgres://..., postgresql://..., sqlite://PATH or a file path.
    /// Default: roster.db in the working directory.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,

    /// Key file holding the secret pepper when ROSTER_SECRET_PEPPER is unset.
    /// Default: next to the SQLite file (roster.db -> roster.key), or ./roster.key.
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

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service (runs pending migrations first).
    Serve(ServeArgs),
    /// Run pending database migrations and exit.
    Migrate,
    /// Manage principals.
    #[command(subcommand)]
    Principal(PrincipalCommand),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "ROSTER_LISTEN", default_value = DEFAULT_LISTEN)]
    listen: String,
    /// Issuer URL of this service. Default: http://<listen>.
    #[arg(long, env = "ROSTER_ISSUER")]
    issuer: Option<String>,
}

#[derive(Debug, Subcommand)]
enum PrincipalCommand {
    /// Create a service principal and print its first client secret (shown once).
    CreateService {
        /// Name, also the OAuth client_id: [a-z0-9][a-z0-9._-]{0,62}.
        name: String,
        /// Scope to grant; repeat for several.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Category membership as NAME or NAME:PRIORITY; repeat for several.
        #[arg(long = "category")]
        categories: Vec<String>,
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Create a human principal; the password is read from stdin.
    CreateHuman {
        name: String,
        #[arg(long)]
        email: Option<String>,
        /// Scope to grant; repeat for several.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[arg(long)]
        display_name: Option<String>,
        /// Read the password from stdin (one trailing newline is stripped).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List all principals as JSON.
    List,
}

/// Entry point of the binary: a non-zero exit and one line on stderr on failure.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("{first} (see roster --help)");
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

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn open(cli: &Cli, pool: PoolOptions) -> Result<Opened, String> {
    startup::open(
        cli.database_url.as_deref(),
        cli.key_file.as_deref(),
        env("ROSTER_SECRET_PEPPER").as_deref(),
        &pool,
        Utc::now(),
    )
}

fn run(cli: Cli) -> Result<(), String> {
    match &cli.command {
        Command::Serve(args) => serve(&cli, args),
        Command::Migrate => {
            let opened = open(&cli, PoolOptions::default())?;
            eprintln!("migrations are up to date on {}", opened.target.describe());
            Ok(())
        }
        Command::Principal(cmd) => principal(&cli, cmd),
    }
}

fn serve(cli: &Cli, args: &ServeArgs) -> Result<(), String> {
    let opened = open(cli, PoolOptions::default())?;
    tracing::info!(database = %opened.target.describe(), pepper = %opened.pepper_source, "database ready");
    match startup::bootstrap_admin(&opened.pool, env("ROSTER_ADMIN_PASSWORD").as_deref(), Utc::now())? {
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
    let (listener, addr) =
        crate::http::bind(&args.listen).map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let settings = Settings {
        issuer: config::issuer_for(args.issuer.as_deref(), addr),
    };
    let state = AppState::new(
        opened.pool,
        opened.target.clone(),
        opened.pepper,
        Clock::system(),
        settings.clone(),
    );
    actix_web::rt::System::new().block_on(async move {
        // Signal handlers are in place before the "listening" line, so a
        // SIGTERM right after it still shuts down gracefully.
        let shutdown = crate::http::shutdown_signal().map_err(|e| format!("cannot install signal handlers: {e}"))?;
        let server = crate::http::server(state, listener, None).map_err(|e| format!("cannot start the server: {e}"))?;
        let handle = server.handle();
        actix_web::rt::spawn(async move {
            shutdown.await;
            tracing::info!("shutdown signal received: finishing requests in flight");
            handle.stop(true).await;
        });
        eprintln!(
            "roster listening on http://{addr} (issuer {}), database: {}",
            settings.issuer,
            opened.target.describe()
        );
        server.await.map_err(|e| format!("server error: {e}"))
    })?;
    eprintln!("roster stopped");
    Ok(())
}

fn principal(cli: &Cli, cmd: &PrincipalCommand) -> Result<(), String> {
    let opened = open(
        cli,
        PoolOptions {
            max_size: 2,
            ..PoolOptions::default()
        },
    )?;
    let mut conn = opened.pool.get().map_err(|e| e.to_string())?;
    let now = Utc::now();
    let out = match cmd {
        PrincipalCommand::CreateService {
            name,
            scopes,
            categories,
            display_name,
        } => {
            let categories = categories
                .iter()
                .map(|c| c.parse::<CategoryAssignment>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            let input = NewPrincipal {
                kind: PrincipalKind::Service,
                name: name.clone(),
                display_name: display_name.clone(),
                email: None,
                scopes: scopes.clone(),
                categories,
            };
            let created =
                principals::create_service(&mut conn, &opened.pepper, &input, None, now).map_err(|e| e.to_string())?;
            serde_json::to_string_pretty(&CreatedServiceView::from(created))
        }
        PrincipalCommand::CreateHuman {
            name,
            email,
            scopes,
            display_name,
            password_stdin: _,
        } => {
            let input = NewPrincipal {
                kind: PrincipalKind::Human,
                name: name.clone(),
                display_name: display_name.clone(),
                email: email.clone(),
                scopes: scopes.clone(),
                categories: Vec::new(),
            };
            input.validate().map_err(|e| e.to_string())?;
            let password = read_password_stdin()?;
            let phc = password::hash_password(&password).map_err(|e| e.to_string())?;
            let view = principals::create_human(&mut conn, &input, &phc, None, now).map_err(|e| e.to_string())?;
            serde_json::to_string_pretty(&view)
        }
        PrincipalCommand::List => {
            serde_json::to_string_pretty(&principals::list(&mut conn).map_err(|e| e.to_string())?)
        }
    }
    .map_err(|e| e.to_string())?;
    println!("{out}");
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
}
