//! The one process harness: the real `roster` binary as a child process,
//! its stderr read line by line (`Served`), and a `roster serve` on a fixed
//! port that can be stopped and started again at the same issuer (`Roster`).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};

use super::{Backend, TEST_PEPPER, TestDb, roster_bin};

/// The password of the first admin of a [`Roster`].
pub const ADMIN_PASSWORD: &str = "client-test-admin-pw";

/// The `roster` binary on the test's database, key file and pepper, with no
/// first-admin password and warnings only.
pub fn roster_command(db: &TestDb) -> Command {
    let mut cmd = Command::new(roster_bin());
    cmd.env("DATABASE_URL", &db.url)
        .env("ROSTER_KEY_FILE", db.key_file())
        .env("ROSTER_SECRET_PEPPER", TEST_PEPPER)
        .env_remove("ROSTER_ADMIN_PASSWORD")
        .env("RUST_LOG", "warn");
    cmd
}

/// A running `roster serve` child that is stopped with SIGTERM.
pub struct Served {
    pub child: std::process::Child,
    pub lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Served {
    /// `roster serve` on a free port.
    pub fn start(cmd: &mut Command) -> Self {
        Self::start_on(cmd, "127.0.0.1:0", &[])
    }

    /// `roster serve --listen ADDR ARGS…`.
    pub fn start_on(cmd: &mut Command, listen: &str, args: &[String]) -> Self {
        let mut child = cmd
            .args(["serve", "--listen", listen])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Wait for a stderr line containing `needle`; fail after 60 s.
    pub fn wait_for(&mut self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(e) => panic!("no line with '{needle}' ({e}); seen: {:#?}", self.seen),
            }
        }
    }

    /// SIGTERM, wait for the exit, and keep every remaining stderr line in `seen`.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(10)) {
            self.seen.push(line);
        }
        status
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `roster serve` child on a fixed port, so that it can be restarted at
/// the same issuer on the same database.
pub struct Roster {
    served: Option<Served>,
    db: Arc<TestDb>,
    port: u16,
    args: Vec<String>,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Roster {
    pub async fn start(backend: Backend, args: &[&str]) -> Self {
        let mut r = Self {
            served: None,
            db: Arc::new(TestDb::new(backend)),
            port: free_port(),
            args: args.iter().map(|s| s.to_string()).collect(),
        };
        r.restart();
        r
    }

    /// The process id of the running `roster serve`.
    pub fn pid(&self) -> u32 {
        self.served.as_ref().unwrap().child.id()
    }

    /// A connection to its database, as the CLI opens one.
    pub fn connect(&self) -> roster::db::DbConnection {
        roster::startup::connect(
            Some(&self.db.url),
            Some(&self.db.key_file()),
            Some(TEST_PEPPER),
            Utc::now(),
        )
        .unwrap()
        .conn
    }

    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `roster` binary on its database, as its operator runs it.
    pub fn command(&self) -> Command {
        let mut cmd = roster_command(&self.db);
        cmd.env("ROSTER_ADMIN_PASSWORD", ADMIN_PASSWORD);
        cmd
    }

    /// Another `roster serve` on the same database and issuer, on a free
    /// port: a second instance, as a scaled-out deployment runs them.
    pub fn second_instance(&self, extra: &[&str]) -> Served {
        let mut args = self.args.clone();
        args.extend(["--issuer".to_string(), self.issuer()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        Served::start_on(&mut self.command(), &format!("127.0.0.1:{}", free_port()), &args)
    }

    /// Start (again): wait for the line saying it listens.
    pub fn restart(&mut self) {
        let mut cmd = self.command();
        let mut served = Served::start_on(&mut cmd, &format!("127.0.0.1:{}", self.port), &self.args);
        served.wait_for("roster listening on");
        self.served = Some(served);
    }

    /// SIGTERM and wait: a graceful stop (pending use counts are written).
    pub fn stop(&mut self) {
        if let Some(mut served) = self.served.take() {
            served.terminate();
        }
    }

    /// An access token from the token endpoint for `form`, with Basic credentials if given.
    pub async fn token_for(&self, basic: Option<(&str, &str)>, form: &[(&str, &str)]) -> String {
        let mut req = reqwest::Client::new().post(format!("{}/oauth/token", self.issuer()));
        if let Some((name, secret)) = basic {
            req = req.basic_auth(name, Some(secret));
        }
        let r = req.form(form).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn admin_token(&self) -> String {
        self.token_for(
            None,
            &[
                ("grant_type", "password"),
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
            ],
        )
        .await
    }

    /// A service with scopes, through the admin API: (id, secret).
    pub async fn service(&self, name: &str, scopes: &[&str]) -> (String, String) {
        let admin = self.admin_token().await;
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/principals", self.issuer()))
            .bearer_auth(admin)
            .json(&json!({"kind": "service", "name": name, "scopes": scopes}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let body: Value = r.json().await.unwrap();
        (
            body["id"].as_str().unwrap().to_string(),
            body["client_secret"].as_str().unwrap().to_string(),
        )
    }

    /// A raw client-credentials token (no cache), optionally for `resource`.
    pub async fn raw_token(&self, name: &str, secret: &str, resource: Option<&str>) -> String {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(r) = resource {
            form.push(("resource", r));
        }
        self.token_for(Some((name, secret)), &form).await
    }

    pub async fn revoke(&self, name: &str, secret: &str, token: &str) {
        let r = reqwest::Client::new()
            .post(format!("{}/oauth/revoke", self.issuer()))
            .basic_auth(name, Some(secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    /// The revocation feed's index now.
    pub async fn feed_index(&self, token: &str) -> i64 {
        let r = reqwest::Client::new()
            .get(format!("{}/api/v1/revocations", self.issuer()))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()["index"].as_i64().unwrap()
    }

    /// The use count of a service's secrets, read from the database.
    pub async fn secret_uses(&self, id: &str) -> i64 {
        let mut conn = self.connect();
        roster::models::secret::list_for(&mut conn, id)
            .unwrap()
            .iter()
            .map(|s| s.use_count)
            .sum()
    }
}
