//! The command line, run as the real binary.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::process::{Served, roster_command};
use crate::support::{Backend, TEST_PEPPER, TestDb, roster_bin};

fn roster(db: &TestDb) -> Command {
    roster_command(db)
}

/// A connection to the test's database, as the CLI opens it.
fn open(db: &TestDb) -> roster::db::DbConnection {
    roster::startup::connect(
        Some(&db.url),
        Some(&db.key_file()),
        Some(TEST_PEPPER),
        chrono::Utc::now(),
    )
    .unwrap()
    .conn
}

/// `roster migrate`: the database exists, as after the server's first start.
fn migrated(db: &TestDb) {
    let out = run(roster(db).arg("migrate"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

fn run_with_stdin(cmd: &mut Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn stdout_json(out: &Output) -> Value {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A failure is a non-zero exit, one line on stderr, and no panic.
fn assert_clean_failure(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, got success: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line expected: {stderr}");
    assert!(stderr.contains(needle), "'{needle}' not in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{stderr}");
}

on_both_backends!(
    create_service_prints_credentials_once,
    create_human_reads_password_from_stdin,
    people_are_invited_from_the_command_line,
    bad_input_is_rejected
);

async fn create_service_prints_credentials_once(backend: Backend) {
    let db = TestDb::new(backend);
    migrated(&db);
    let out = run(roster(&db).args([
        "principal",
        "create-service",
        "billing",
        "--scope",
        "invoices:read",
        "--scope",
        "invoices:write",
        "--category",
        "notification:10",
        "--category",
        "application",
    ]));
    let v = stdout_json(&out);
    assert_eq!(v["name"], "billing");
    assert_eq!(v["kind"], "service");
    assert_eq!(v["client_id"], "billing");
    assert!(uuid::Uuid::parse_str(v["id"].as_str().unwrap()).is_ok());
    let secret = v["client_secret"].as_str().unwrap();
    assert!(secret.len() >= 43, "256 bits need at least 43 base64 characters");
    assert!(
        secret
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "{secret}"
    );
    assert_eq!(v["scopes"], serde_json::json!(["invoices:read", "invoices:write"]));
    assert_eq!(
        v["categories"],
        serde_json::json!([{"name": "application", "priority": 0}, {"name": "notification", "priority": 10}])
    );

    // The listing shows the service but never its secret.
    let out = run(roster(&db).args(["principal", "list"]));
    let list = stdout_json(&out);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["name"], "billing");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(secret));

    // The same name again is a conflict.
    let out = run(roster(&db).args(["principal", "create-service", "billing"]));
    assert_clean_failure(&out, "already exists");
}

/// `create-human --invite` and `invite` print a link on the issuer given,
/// or the one the last `roster serve` used; without either they say so.
async fn people_are_invited_from_the_command_line(backend: Backend) {
    let db = TestDb::new(backend);
    migrated(&db);
    let out = run(roster(&db).args(["principal", "create-human", "carol", "--invite", "--password-stdin"]));
    assert_clean_failure(&out, "cannot be used with");
    let out = run(roster(&db).args(["principal", "create-human", "carol", "--invite"]));
    assert_clean_failure(
        &out,
        "no roster serve has run on this database yet: give the issuer with --issuer (ROSTER_ISSUER)",
    );
    let out = run(roster(&db).args([
        "principal",
        "create-human",
        "carol",
        "--invite",
        "--issuer",
        "https://id.example.org/",
    ]));
    let v = stdout_json(&out);
    assert_eq!(
        (&v["name"], &v["invitation"]["principal_id"]),
        (&json!("carol"), &v["id"])
    );
    let first = v["invitation"]["url"].as_str().unwrap().to_string();
    assert!(first.starts_with("https://id.example.org/oauth/invitation#"), "{first}");
    let mut conn = open(&db);
    assert_eq!(
        roster::models::password::find(&mut conn, v["id"].as_str().unwrap()).unwrap(),
        None
    );

    // The issuer the last serve used, when none is given.
    roster::startup::record_issuer(&mut conn, "https://roster.example.org", chrono::Utc::now()).unwrap();
    let out = run(roster(&db)
        .args(["principal", "invite", "carol", "--expires-in", "3600"])
        .env_remove("ROSTER_ISSUER"));
    let v = stdout_json(&out);
    let second = v["url"].as_str().unwrap();
    assert!(
        second.starts_with("https://roster.example.org/oauth/invitation#"),
        "{second}"
    );
    assert_ne!(first.split_once('#').unwrap().1, second.split_once('#').unwrap().1);
    let out = run(roster(&db).args(["principal", "invite", "carol", "--expires-in", "10"]));
    assert_clean_failure(&out, "expires_in: must be between 300 and 2592000 seconds");
    let out = run(roster(&db).args(["principal", "invite", "nobody"]));
    assert_clean_failure(&out, "principal nobody not found");
}

async fn create_human_reads_password_from_stdin(backend: Backend) {
    let db = TestDb::new(backend);
    migrated(&db);
    let out = run_with_stdin(
        roster(&db).args([
            "principal",
            "create-human",
            "alice",
            "--email",
            "alice@example.org",
            "--scope",
            "reports:read",
            "--password-stdin",
        ]),
        "correct horse battery\n",
    );
    let v = stdout_json(&out);
    assert_eq!(v["name"], "alice");
    assert_eq!(v["kind"], "human");
    assert_eq!(v["email"], "alice@example.org");
    assert!(v.get("client_secret").is_none());
    let id = v["id"].as_str().unwrap().to_string();

    // The stored hash is argon2id and verifies the password without its newline.
    let mut conn = open(&db);
    let phc = roster::models::password::find(&mut conn, &id).unwrap().unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    use roster::auth::password::verify_password;
    use roster::auth::secrets::SecretString;
    assert!(verify_password(&SecretString::new("correct horse battery"), &phc));
    assert!(!verify_password(&SecretString::new("correct horse battery\n"), &phc));
    assert!(!verify_password(&SecretString::new("wrong"), &phc));
    // The database holds no plaintext password: search every text column of
    // the tables that could hold one.
    let dump = {
        use diesel::prelude::*;
        use roster::db::schema::{audit_events, password_credentials, principals};
        let mut all: Vec<String> = password_credentials::table
            .select(password_credentials::phc)
            .load(&mut conn)
            .unwrap();
        let rows: Vec<(String, Option<String>)> = audit_events::table
            .select((audit_events::event_type, audit_events::details))
            .load(&mut conn)
            .unwrap();
        all.extend(rows.into_iter().map(|(t, d)| format!("{t} {}", d.unwrap_or_default())));
        let names: Vec<(String, Option<String>)> = principals::table
            .select((principals::name, principals::display_name))
            .load(&mut conn)
            .unwrap();
        all.extend(names.into_iter().map(|(n, d)| format!("{n} {}", d.unwrap_or_default())));
        all.join("\n")
    };
    assert!(dump.contains("$argon2id$"), "the search sees the stored hash: {dump}");
    assert!(!dump.contains("correct horse"), "{dump}");
}

async fn bad_input_is_rejected(backend: Backend) {
    let db = TestDb::new(backend);
    migrated(&db);
    for name in ["Billing", "-billing", "bill ing", "b/ad"] {
        let out = run(roster(&db).args(["principal", "create-service", "--", name]));
        assert_clean_failure(&out, "not a valid name");
    }
    let out = run(roster(&db).args(["principal", "create-service", "ok-name", "--scope", "Bad Scope"]));
    assert_clean_failure(&out, "not a valid scope");
    let out = run(roster(&db).args(["principal", "create-service", "ok-name", "--category", "mail:high"]));
    assert_clean_failure(&out, "not an integer");
    let out = run_with_stdin(
        roster(&db).args(["principal", "create-human", "bob", "--password-stdin"]),
        "short\n",
    );
    assert_clean_failure(&out, "at least 8 characters");
    // Nothing was written by the failed commands.
    let list = stdout_json(&run(roster(&db).args(["principal", "list"])));
    assert_eq!(list, serde_json::json!([]));
}

#[test]
fn unknown_database_scheme_is_a_clean_error() {
    let out = run(Command::new(roster_bin())
        .env("DATABASE_URL", "mysql://root@localhost/roster")
        .arg("migrate"));
    assert_clean_failure(&out, "unsupported database URL scheme 'mysql'");
}

#[test]
fn unreachable_database_is_a_clean_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(Command::new(roster_bin())
        .current_dir(dir.path())
        .env("DATABASE_URL", "postgres://roster:pw@127.0.0.1:1/roster")
        .args(["principal", "list"]));
    assert_clean_failure(&out, "cannot connect to the database");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(":pw@"),
        "password leaked"
    );
}

#[test]
fn bad_arguments_are_a_clean_error() {
    let out = run(Command::new(roster_bin()).args(["principal", "create-service"]));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: the following required arguments were not provided: <NAME> \
         (usage: roster principal create-service <NAME>; see --help)\n"
    );
    // --listen is checked before the database is touched.
    let dir = tempfile::tempdir().unwrap();
    let out = run(Command::new(roster_bin())
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .args(["serve", "--listen", "8081"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expected HOST:PORT, for example 127.0.0.1:8080"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    // The environment variables are in --help.
    let out = run(Command::new(roster_bin()).arg("--help"));
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "DATABASE_URL",
        "ROSTER_SECRET_PEPPER",
        "ROSTER_ADMIN_PASSWORD",
        "recover-admin",
    ] {
        assert!(help.contains(var), "{var} not in --help");
    }
    let out = run(Command::new(roster_bin()).args(["serve", "--help"]));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--listen"));
}

/// A command other than serve and migrate never makes a new SQLite file: it
/// names the file it would have created and the two ways out.
#[test]
fn commands_refuse_to_create_a_new_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = || {
        let mut c = Command::new(roster_bin());
        c.current_dir(dir.path())
            .env_remove("DATABASE_URL")
            .env("ROSTER_SECRET_PEPPER", TEST_PEPPER)
            .env("RUST_LOG", "warn");
        c
    };
    for args in [
        &["principal", "list"][..],
        &["principal", "create-service", "billing"],
        &["keys", "list"],
        &["recover-admin"],
    ] {
        let out = run(cmd().args(args));
        assert_clean_failure(&out, "this command would create a new, empty one");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let file = dir.path().join("roster.db");
        assert!(
            stderr.contains(&format!("no database at {}:", file.display())),
            "{stderr}"
        );
        assert!(
            stderr.contains("DATABASE_URL") && stderr.contains("--create"),
            "{stderr}"
        );
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "{args:?} wrote a file"
        );
    }
    let out = run(cmd().args(["principal", "list", "--create"]));
    assert_eq!(stdout_json(&out), serde_json::json!([]));
    assert!(dir.path().join("roster.db").exists());
}

#[test]
fn migrate_runs_on_a_fresh_database() {
    let db = TestDb::new(Backend::Sqlite);
    let out = run(roster(&db).arg("migrate"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(db.sqlite_path().unwrap().exists());
}

fn listen_addr(line: &str) -> String {
    let start = line.find("http://").unwrap() + "http://".len();
    line[start..].split_whitespace().next().unwrap().to_string()
}

#[tokio::test]
async fn serve_bootstraps_admin_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // No DATABASE_URL: the default roster.db in the working directory.
    let mut served = Served::start(
        Command::new(roster_bin())
            .current_dir(dir.path())
            .env_remove("DATABASE_URL")
            .env_remove("ROSTER_SECRET_PEPPER")
            .env_remove("ROSTER_KEY_FILE")
            .env_remove("ROSTER_ADMIN_PASSWORD"),
    );
    served.wait_for("Created the first administrator 'admin' with a generated password");
    let password = served.lines.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(password.trim().len() >= 20, "generated password too short: {password}");
    let line = served.wait_for("roster listening on");
    assert!(line.contains("roster.db"), "where the SQLite file lives: {line}");
    let addr = listen_addr(&line);
    let first_issuer = format!("http://{addr}");
    let health = reqwest::get(format!("http://{addr}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let ready: serde_json::Value = reqwest::get(format!("http://{addr}/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    assert!(dir.path().join("roster.db").exists());
    // The key file is created next to the database, private.
    let key = dir.path().join("roster.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let status = served.terminate();
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");

    // The generated password is real: the stored hash verifies it.
    let mut conn = roster::startup::connect(
        Some(dir.path().join("roster.db").to_str().unwrap()),
        Some(&key),
        None,
        chrono::Utc::now(),
    )
    .unwrap()
    .conn;
    let admin = roster::models::principal::find_by_name(&mut conn, "admin")
        .unwrap()
        .unwrap();
    let phc = roster::models::password::find(&mut conn, &admin.id).unwrap().unwrap();
    assert!(roster::auth::password::verify_password(
        &roster::auth::secrets::SecretString::new(password.trim()),
        &phc
    ));
    assert_eq!(
        roster::models::principal::scopes_of(&mut conn, &admin.id).unwrap(),
        vec!["admin"]
    );

    // A second start finds the admin and does not print a password again.
    let mut served = Served::start(
        Command::new(roster_bin())
            .current_dir(dir.path())
            .env_remove("DATABASE_URL"),
    );
    // Another port, so another default issuer: the start says that the two
    // would refuse each other's tokens.
    let note = served.wait_for("note: the last roster serve on this database used the issuer");
    let addr = listen_addr(&served.wait_for("roster listening on"));
    assert_eq!(
        note.trim(),
        format!(
            "note: the last roster serve on this database used the issuer {first_issuer}, this one http://{addr}: \
             each accepts only tokens of its own issuer, so give every instance sharing a database \
             the same --issuer (ROSTER_ISSUER), or their tokens are refused with 401"
        )
    );
    // Every start says where the console is, not only the first.
    assert_eq!(
        served.wait_for("the admin console:").trim(),
        format!("the admin console: http://{addr}/console/")
    );
    let status = served.terminate();
    assert!(status.success());
    assert!(
        !served
            .seen
            .iter()
            .any(|l| l.contains("Created the first administrator"))
    );
}

on_both_backends!(serve_takes_admin_password_from_env_and_refuses_a_wrong_pepper);

/// A password grant against a served instance: the status and the JSON body.
async fn password_login(addr: &str, user: &str, password: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(format!("http://{addr}/oauth/token"))
        .form(&[("grant_type", "password"), ("username", user), ("password", password)])
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// A client's mistake is not the server's trouble: at the default level a
/// 404, a 401, a bad grant and a 422 log nothing; at debug, one short line each.
#[tokio::test]
async fn client_errors_log_one_short_debug_line_not_a_warning() {
    let db = TestDb::new(Backend::Sqlite);
    for (level, expected) in [("info", 0), ("debug", 4)] {
        let mut served = Served::start(roster(&db).env("RUST_LOG", level));
        let addr = listen_addr(&served.wait_for("roster listening on"));
        let http = reqwest::Client::new();
        let base = format!("http://{addr}");
        assert_eq!(http.get(format!("{base}/nowhere")).send().await.unwrap().status(), 404);
        assert_eq!(
            http.get(format!("{base}/api/v1/principals"))
                .send()
                .await
                .unwrap()
                .status(),
            401
        );
        assert_eq!(password_login(&addr, "admin", "wrong").await.0, 400);
        let r = http
            .get(format!("{base}/api/v1/services?index=x"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "authentication comes first");
        assert!(served.terminate().success());
        let client_errors: Vec<&String> = served.seen.iter().filter(|l| l.contains("client error")).collect();
        assert_eq!(client_errors.len(), expected, "{level}: {:#?}", served.seen);
        for line in &client_errors {
            assert!(line.contains(" DEBUG "), "{line}");
        }
        assert!(
            !served
                .seen
                .iter()
                .any(|l| l.contains(" WARN ") || l.contains(" ERROR ")),
            "{level}: {:#?}",
            served.seen
        );
    }
}

on_both_backends!(recover_admin_gets_a_locked_out_operator_back_in);

/// The admin password is lost, the admin was demoted and disabled, and
/// guessing has throttled the name: one command brings it all back, and the
/// operator logs in and administers again. `set-password` sets a person's.
async fn recover_admin_gets_a_locked_out_operator_back_in(backend: Backend) {
    let db = TestDb::new(backend);
    let mut served = Served::start(&mut roster(&db));
    let addr = listen_addr(&served.wait_for("roster listening on"));
    // Guessing locks the name out from here.
    for _ in 0..5 {
        assert_eq!(password_login(&addr, "admin", "a-wrong-guess").await.0, 400);
    }
    let (status, body) = password_login(&addr, "admin", "a-wrong-guess").await;
    assert_eq!((status, body["error"].as_str()), (429, Some("slow_down")));
    // Someone demoted and disabled it.
    {
        let mut conn = open(&db);
        let admin = roster::models::principal::find_by_name(&mut conn, "admin")
            .unwrap()
            .unwrap();
        roster::models::principal::set_scopes(&mut conn, &admin.id, &[]).unwrap();
        roster::models::principal::set_status(
            &mut conn,
            &admin.id,
            roster::models::principal::PrincipalStatus::Disabled,
            chrono::Utc::now(),
        )
        .unwrap();
    }

    let out = run(roster(&db).arg("recover-admin"));
    let got = stdout_json(&out);
    let password = got["password"].as_str().unwrap().to_string();
    assert!(password.len() >= 20);
    assert_eq!(
        (
            &got["created"],
            &got["enabled"],
            &got["scope_added"],
            &got["principal"]["name"]
        ),
        (
            &Value::Bool(false),
            &Value::Bool(true),
            &Value::Bool(true),
            &Value::from("admin")
        )
    );
    assert_eq!(got["principal"]["scopes"], serde_json::json!(["admin"]));
    assert_eq!(got["principal"]["status"], "active");
    assert!(got["throttle_counters_cleared"].as_u64().unwrap() >= 2, "{got}");

    let (status, token) = password_login(&addr, "admin", &password).await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(token["scope"], "admin");
    let bearer = token["access_token"].as_str().unwrap();
    let audit: Value = reqwest::Client::new()
        .get(format!("http://{addr}/api/v1/audit?type=admin.recovered"))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit["items"][0]["details"]["via"], "cli", "{audit}");
    assert_eq!(audit["items"][0]["details"]["enabled"], true, "{audit}");

    // A missing administrator is created, with the password from stdin.
    let got = stdout_json(&run_with_stdin(
        roster(&db).args(["recover-admin", "ops", "--password-stdin"]),
        "ops-password-123\n",
    ));
    assert_eq!((&got["created"], got.get("password")), (&Value::Bool(true), None));
    assert_eq!(password_login(&addr, "ops", "ops-password-123").await.0, 200);

    // set-password: the new one works, the old one no longer does.
    let out = run_with_stdin(
        roster(&db).args(["principal", "set-password", "ops", "--password-stdin"]),
        "ops-password-456\n",
    );
    assert_eq!(stdout_json(&out)["name"], "ops");
    assert_eq!(password_login(&addr, "ops", "ops-password-456").await.0, 200);
    assert_eq!(password_login(&addr, "ops", "ops-password-123").await.0, 400);

    // Services have no password; unknown names are named.
    let out = run(roster(&db).args(["principal", "create-service", "billing"]));
    assert!(out.status.success());
    assert_clean_failure(
        &run(roster(&db).arg("recover-admin").arg("billing")),
        "'billing' is a service",
    );
    assert_clean_failure(
        &run_with_stdin(
            roster(&db).args(["principal", "set-password", "nobody", "--password-stdin"]),
            "pw-pw-pw-pw\n",
        ),
        "principal 'nobody'",
    );
    assert!(served.terminate().success());
}

async fn serve_takes_admin_password_from_env_and_refuses_a_wrong_pepper(backend: Backend) {
    let db = TestDb::new(backend);
    let mut served = Served::start(
        roster(&db)
            .env("ROSTER_ADMIN_PASSWORD", "admin-password-from-env")
            .env("ROSTER_LOG_FORMAT", "json")
            .env("RUST_LOG", "info"),
    );
    served.wait_for("with the password from ROSTER_ADMIN_PASSWORD");
    served.wait_for("roster listening on");
    assert!(served.terminate().success());
    // --log-format json: the log lines are JSON objects.
    let ready = served
        .seen
        .iter()
        .find(|l| l.contains("database ready"))
        .expect("a log line");
    let ready: Value = serde_json::from_str(ready).unwrap_or_else(|e| panic!("{e}: {ready}"));
    assert_eq!(ready["level"], "INFO");
    assert_eq!(ready["fields"]["message"], "database ready");
    assert!(
        !served.seen.iter().any(|l| l.contains("admin-password-from-env")),
        "password echoed"
    );

    // Another pepper on the same database must not start.
    let out = run(roster(&db)
        .env("ROSTER_SECRET_PEPPER", "a-different-pepper-a-different-pepper")
        .args(["serve", "--listen", "127.0.0.1:0"]));
    assert_clean_failure(&out, "pepper does not match");
}

/// Secrets and passwords never reach the logs, even at trace level, through
/// the OAuth and admin flows; and no request can forge a log line.
#[tokio::test]
async fn secrets_never_appear_in_logs() {
    let db = TestDb::new(Backend::Sqlite);
    let admin_pw = "admin-password-in-env";
    let mut served = Served::start(
        roster(&db)
            .env("ROSTER_ADMIN_PASSWORD", admin_pw)
            .env("RUST_LOG", "trace"),
    );
    let addr = listen_addr(&served.wait_for("roster listening on"));
    let http = reqwest::Client::new();
    let url = |p: &str| format!("http://{addr}{p}");
    let form = |pairs: &[(&str, &str)]| {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    };
    let post_form = |path: &str, body: String| {
        http.post(url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    };

    let login: Value = post_form(
        "/oauth/token",
        form(&[
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", admin_pw),
        ]),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let admin = login["access_token"].as_str().unwrap().to_string();
    let refresh = login["refresh_token"].as_str().unwrap().to_string();
    let created: Value = http
        .post(url("/api/v1/principals"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"kind": "service", "name": "svc"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = created["client_secret"].as_str().unwrap().to_string();
    let token: Value = post_form("/oauth/token", form(&[("grant_type", "client_credentials")]))
        .basic_auth("svc", Some(&secret))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(token["access_token"].is_string());
    // Failures are logged too, still without the secrets tried.
    let r = post_form("/oauth/token", form(&[("grant_type", "client_credentials")]))
        .basic_auth("svc", Some("wrong-secret-value"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = post_form(
        "/oauth/token",
        form(&[
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", "wrong-password-value"),
        ]),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let refreshed: Value = post_form(
        "/oauth/token",
        form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let refresh2 = refreshed["refresh_token"].as_str().unwrap().to_string();
    // Admin flows that carry secrets: a second client secret, a new human
    // with a password, a password change, introspection and revocation.
    let svc_id = created["id"].as_str().unwrap();
    let second: Value = http
        .post(url(&format!("/api/v1/principals/{svc_id}/secrets")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret2 = second["client_secret"].as_str().unwrap().to_string();
    let human: Value = http
        .post(url("/api/v1/principals"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"kind": "human", "name": "carol", "password": "carol-first-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let carol = human["id"].as_str().unwrap();
    let r = http
        .put(url(&format!("/api/v1/principals/{carol}/password")))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"password": "carol-second-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let access = token["access_token"].as_str().unwrap().to_string();
    for path in ["/oauth/introspect", "/oauth/revoke"] {
        let r = post_form(path, form(&[("token", &access)]))
            .basic_auth("svc", Some(&secret2))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // A secret sent as the client_id (Basic swapped) is refused, and not logged.
    let r = post_form("/oauth/token", form(&[("grant_type", "client_credentials")]))
        .basic_auth(&secret2, Some("svc"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A newline in a parameter cannot start a line of its own.
    let r = post_form(
        "/oauth/token",
        form(&[("grant_type", "x\nFORGED-LINE level=INFO admin logged in")]),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 400);

    assert!(served.terminate().success());
    let logs = served.seen.join("\n");
    assert!(logs.contains("/oauth/token"), "request spans are logged: {logs}");
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "the run logged at trace level"
    );
    for s in [
        admin_pw,
        &secret,
        &secret2,
        "wrong-secret-value",
        "wrong-password-value",
        "carol-first-password",
        "carol-second-password",
        &refresh,
        &refresh2,
        &admin,
        &access,
    ] {
        assert!(!logs.contains(s), "a secret reached the logs");
    }
    assert!(
        !served.seen.iter().any(|l| l.starts_with("FORGED-LINE")),
        "a request forged a log line"
    );
}

/// The README walkthrough against the real binary: its background worker
/// checks health on its own, on a 1-second interval.
#[tokio::test]
async fn serve_watches_registered_services() {
    use crate::support::{FakeService, manifest_json};
    let db = TestDb::new(Backend::Sqlite);
    migrated(&db);
    let out = run(roster(&db).args(["principal", "create-service", "billing", "--category", "application:5"]));
    let secret = stdout_json(&out)["client_secret"].as_str().unwrap().to_string();
    let fake = FakeService::start(manifest_json("billing", &[("invoices", 1, None)]));
    let mut served = Served::start(
        roster(&db)
            .env("ROSTER_HEALTH_INTERVAL", "1s")
            .env("ROSTER_MANIFEST_INTERVAL", "1s"),
    );
    let addr = listen_addr(&served.wait_for("roster listening on"));
    let http = reqwest::Client::new();
    let url = |p: &str| format!("http://{addr}{p}");
    let token: Value = http
        .post(url("/oauth/token"))
        .basic_auth("billing", Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_string();
    let r = http
        .put(url("/api/v1/services/billing/registration"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"base_url": fake.base_url(), "health_url": "/health", "modules_url": "/getModules.json", "ttl_seconds": 3600}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Wait for a condition on the menu by long-polling the registry's change
    // feed (no sleeping), for at most 30 s of real time.
    let menu_has_pages = |want: bool| {
        let (http, token) = (http.clone(), token.clone());
        let (modules, services) = (url("/api/v1/modules"), url("/api/v1/services"));
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            let mut index = 0i64;
            while std::time::Instant::now() < deadline {
                let m: Value = http.get(&modules).send().await.unwrap().json().await.unwrap();
                if m["items"].as_array().is_some_and(|i| !i.is_empty()) == want {
                    return true;
                }
                let r = http
                    .get(format!("{services}?index={index}&wait=5s"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                index = r.headers()["x-roster-index"].to_str().unwrap().parse().unwrap();
            }
            false
        }
    };
    assert!(
        menu_has_pages(true).await,
        "pages appear once the worker pulled the manifest"
    );
    fake.set_healthy(false);
    assert!(
        menu_has_pages(false).await,
        "pages disappear when the health check fails"
    );
    let s: Value = http
        .get(url("/api/v1/services/billing"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["status"], "down");
    fake.set_healthy(true);
    assert!(menu_has_pages(true).await, "and come back");
    assert!(served.terminate().success());
}

/// `serve` started and stopped at once, again and again, always exits
/// cleanly: no thread may be inside the database driver while the process
/// exits (libpq's exit cleanup crashed while a pool thread was connecting).
#[test]
fn serve_exits_cleanly_when_stopped_right_after_start() {
    const RUNS: usize = 50;
    // libpq is where it crashed; without PostgreSQL, the same on SQLite.
    let backend = if cfg!(roster_test_postgres) {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    let db = TestDb::new(backend);
    for run in 0..RUNS {
        let mut served = Served::start(roster(&db).env("ROSTER_ADMIN_PASSWORD", "start-stop-password"));
        served.wait_for("roster listening on");
        let status = served.terminate();
        assert_eq!(
            (status.code(), std::os::unix::process::ExitStatusExt::signal(&status)),
            (Some(0), None),
            "run {run}: {status:?}; stderr: {:#?}",
            served.seen
        );
        assert!(
            served.seen.iter().any(|l| l.contains("roster stopped")),
            "run {run}: {:#?}",
            served.seen
        );
    }
}

/// The PostgreSQL pepper does not depend on the working directory: a key
/// file lives in the data directory under the database's name, every command
/// finds it from anywhere, and no command makes a new one for a database
/// that already has a pepper.
#[test]
#[cfg_attr(
    not(roster_test_postgres),
    ignore = "PostgreSQL only: set TEST_DATABASE_URL (see README)"
)]
fn the_key_file_does_not_depend_on_the_working_directory() {
    let db = TestDb::new(Backend::Postgres);
    let home = tempfile::tempdir().unwrap();
    let (here, there, elsewhere) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let cmd = |cwd: &Path, home: &Path| {
        let mut c = Command::new(roster_bin());
        c.current_dir(cwd)
            .env("DATABASE_URL", &db.url)
            .env("HOME", home)
            .env_remove("XDG_DATA_HOME")
            .env_remove("ROSTER_DATA_DIR")
            .env_remove("ROSTER_SECRET_PEPPER")
            .env_remove("ROSTER_KEY_FILE")
            .env("RUST_LOG", "warn");
        c
    };
    let out = run(cmd(here.path(), home.path()).args(["principal", "create-service", "billing"]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let keys: Vec<_> = std::fs::read_dir(home.path().join(".local/share/roster"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(
        std::fs::read_dir(here.path()).unwrap().next().is_none(),
        "nothing in the working directory"
    );
    // From another directory, the same key file is found.
    let out = run(cmd(there.path(), home.path()).args(["principal", "create-service", "ledger"]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // With another home, no key file: a clear failure, and nothing created.
    let other_home = tempfile::tempdir().unwrap();
    let out = run(cmd(elsewhere.path(), other_home.path()).args(["principal", "list"]));
    assert_clean_failure(&out, "already has a secret pepper");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&other_home.path().join(".local/share/roster").display().to_string()),
        "{stderr}"
    );
    assert!(
        stderr.contains("ROSTER_SECRET_PEPPER") && stderr.contains("--key-file"),
        "{stderr}"
    );
    assert!(!other_home.path().join(".local").exists(), "no key file was made");
    assert!(std::fs::read_dir(elsewhere.path()).unwrap().next().is_none());
}

/// SIGTERM under load: every request the server accepted is answered 200, a
/// long poll is answered instead of cut off, and every use of the client
/// secret that was answered is counted in the database after the exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_nothing() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let db = TestDb::new(Backend::Sqlite);
    migrated(&db);
    let out = run(roster(&db).args(["principal", "create-service", "billing"]));
    let secret = stdout_json(&out)["client_secret"].as_str().unwrap().to_string();
    let mut served = Served::start(&mut roster(&db));
    let addr = listen_addr(&served.wait_for("roster listening on"));
    let http = reqwest::Client::new();
    let token_url = format!("http://{addr}/oauth/token");
    let token: Value = http
        .post(&token_url)
        .basic_auth("billing", Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = token["access_token"].as_str().unwrap().to_string();
    let ok = std::sync::Arc::new(AtomicUsize::new(1));
    let stopped = std::sync::Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (http, url, secret, ok, stopped) = (
            http.clone(),
            token_url.clone(),
            secret.clone(),
            ok.clone(),
            stopped.clone(),
        );
        load.push(tokio::spawn(async move {
            loop {
                let sent = http
                    .post(&url)
                    .basic_auth("billing", Some(&secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await;
                match sent {
                    Ok(r) => {
                        assert_eq!(r.status(), 200, "an accepted request failed");
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    // Refused or reset once the server stopped accepting.
                    Err(e) => {
                        assert!(stopped.load(Ordering::SeqCst), "failed before the stop: {e}");
                        return;
                    }
                }
            }
        }));
    }
    let poll = {
        let (http, url) = (
            http.clone(),
            format!("http://{addr}/api/v1/services?index=999999&wait=60s"),
        );
        tokio::spawn(async move { http.get(url).bearer_auth(bearer).send().await })
    };
    // Let the load and the poll reach the server, then stop it.
    while ok.load(Ordering::SeqCst) < 50 {
        tokio::task::yield_now().await;
    }
    stopped.store(true, Ordering::SeqCst);
    let status = served.terminate();
    assert!(status.success(), "{status:?}: {:#?}", served.seen);
    for l in load {
        l.await.unwrap();
    }
    let answered = tokio::time::timeout(std::time::Duration::from_secs(5), poll)
        .await
        .expect("the long poll was held past the exit")
        .unwrap()
        .expect("the long poll was answered, not cut off");
    assert_eq!(answered.status(), 200);
    // Every answered use is counted.
    let mut conn = open(&db);
    let billing = roster::models::principal::find_by_name(&mut conn, "billing")
        .unwrap()
        .unwrap();
    let counted: i64 = roster::models::secret::list_for(&mut conn, &billing.id)
        .unwrap()
        .iter()
        .map(|s| s.use_count)
        .sum();
    assert_eq!(counted as usize, ok.load(Ordering::SeqCst));
}

/// Two `roster serve` processes on one SQLite file, under a concurrent
/// refresh-grant load: every refresh succeeds; no "database is locked" or
/// busy answer reaches a client (writes queue behind SQLite's one writer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_sqlite_file_under_write_load() {
    const FAMILIES: usize = 8;
    const ROUNDS: usize = 25;
    let db = TestDb::new(Backend::Sqlite);
    let mut a = Served::start(roster(&db).env("ROSTER_ADMIN_PASSWORD", "two-process-admin"));
    let addr_a = listen_addr(&a.wait_for("roster listening on"));
    let mut b = Served::start(&mut roster(&db));
    let addr_b = listen_addr(&b.wait_for("roster listening on"));
    let http = reqwest::Client::new();
    let mut families = Vec::new();
    for _ in 0..FAMILIES {
        let r: Value = http
            .post(format!("http://{addr_a}/oauth/token"))
            .form(&[
                ("grant_type", "password"),
                ("username", "admin"),
                ("password", "two-process-admin"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        families.push(r["refresh_token"].as_str().unwrap().to_string());
    }
    let runs: Vec<_> = families
        .into_iter()
        .enumerate()
        .map(|(f, mut token)| {
            let (http, addrs) = (http.clone(), [addr_a.clone(), addr_b.clone()]);
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for round in 0..ROUNDS {
                    let addr = &addrs[(f + round) % 2];
                    let resp = http
                        .post(format!("http://{addr}/oauth/token"))
                        .form(&[("grant_type", "refresh_token"), ("refresh_token", token.as_str())])
                        .send()
                        .await
                        .unwrap();
                    let status = resp.status().as_u16();
                    let body: Value = resp.json().await.unwrap();
                    statuses.push((status, body["error"].clone()));
                    if status != 200 {
                        break;
                    }
                    token = body["refresh_token"].as_str().unwrap().to_string();
                }
                statuses
            })
        })
        .collect();
    let mut ok = 0;
    for run in runs {
        for (status, error) in run.await.unwrap() {
            assert_eq!(status, 200, "a refresh failed: {error}");
            ok += 1;
        }
    }
    assert_eq!(ok, FAMILIES * ROUNDS);
    assert!(a.terminate().success());
    assert!(b.terminate().success());
}

/// Docker secrets: `DATABASE_URL_FILE` and `ROSTER_SECRET_PEPPER_FILE` stand
/// for their variables (one line end dropped); the variable itself wins; an
/// unreadable file is a clean error.
#[test]
fn secrets_can_come_from_files() {
    let db = TestDb::new(Backend::Sqlite);
    let dir = tempfile::tempdir().unwrap();
    let url_file = dir.path().join("database_url");
    let pepper_file = dir.path().join("pepper");
    std::fs::write(&url_file, format!("{}\n", db.url)).unwrap();
    std::fs::write(&pepper_file, format!("{TEST_PEPPER}\n")).unwrap();
    let from_files = || {
        let mut cmd = roster(&db);
        cmd.env_remove("DATABASE_URL")
            .env_remove("ROSTER_SECRET_PEPPER")
            .env("DATABASE_URL_FILE", &url_file)
            .env("ROSTER_SECRET_PEPPER_FILE", &pepper_file);
        cmd
    };
    let out = run(from_files().arg("migrate"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let created = stdout_json(&run(from_files().args(["principal", "create-service", "billing"])));
    assert_eq!(created["name"], "billing");
    // The same database and pepper, given directly: the service is there.
    let listed = stdout_json(&run(roster(&db).args(["principal", "list"])));
    assert!(
        listed.as_array().unwrap().iter().any(|p| p["name"] == "billing"),
        "{listed}"
    );
    // Another pepper from a file is refused, as it would be directly.
    std::fs::write(&pepper_file, "another-pepper-another-pepper-0123\n").unwrap();
    let out = run(from_files().args(["principal", "list"]));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pepper"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(from_files()
        .env("ROSTER_SECRET_PEPPER_FILE", dir.path().join("missing"))
        .arg("migrate"));
    assert_clean_failure(&out, "ROSTER_SECRET_PEPPER_FILE: cannot read");
}
