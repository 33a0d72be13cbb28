//! Database faults under load, on a private PostgreSQL cluster of the test's
//! own (`initdb` and `pg_ctl` on a temporary directory and a free port): a
//! restart and killed backends in the middle of admin writes and token
//! requests. Every acknowledged write must be there afterwards, no failure
//! may be a 500, a failed write is never half-applied, and Roster recovers by
//! itself.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use diesel::{Connection, RunQueryDsl};
use reqwest::Method;
use serde_json::json;

use crate::support::{TestApp, TestDb};

/// A PostgreSQL cluster in a temporary directory, stopped when dropped.
struct PrivateCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

fn pg_bin() -> Option<PathBuf> {
    let from_path = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())
                .parent()
                .unwrap()
                .to_path_buf()
        });
    from_path.or_else(|| {
        let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .collect();
        found.sort();
        found.pop()
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PrivateCluster {
    fn start() -> Option<Self> {
        let bin = pg_bin()?;
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if is_root() {
            // PostgreSQL refuses to run as root: the cluster belongs to `postgres`.
            Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
        }
        let cluster = Self { dir, bin, port };
        let data = cluster.data();
        assert!(
            cluster
                .pg(&format!("initdb -D {} -U postgres --auth=trust", data.display()))
                .success(),
            "initdb failed"
        );
        assert!(cluster.pg_ctl("start -w").success(), "pg_ctl start failed");
        Some(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg(&self, cmd: &str) -> std::process::ExitStatus {
        let line = format!("{}/{cmd} >/dev/null 2>&1", self.bin.display());
        if is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--", "sh", "-c", &line])
                .status()
                .unwrap()
        } else {
            Command::new("sh").args(["-c", &line]).status().unwrap()
        }
    }

    fn pg_ctl(&self, action: &str) -> std::process::ExitStatus {
        let socket_dir: &Path = self.dir.path();
        self.pg(&format!(
            "pg_ctl -D {} -l {}/log -o '-p {} -k {} -c listen_addresses=127.0.0.1' {action}",
            self.data().display(),
            socket_dir.display(),
            self.port,
            socket_dir.display()
        ))
    }

    fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl("stop -m immediate");
    }
}

/// Admin writes and token requests while the database restarts and its
/// backends are killed: every acknowledged create is found afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_restart_and_killed_backends() {
    const CREATES: usize = 300;
    let Some(cluster) = PrivateCluster::start() else {
        eprintln!("*** no initdb found: the database fault test is SKIPPED ***");
        return;
    };
    let db = Arc::new(TestDb::postgres_at(&cluster.admin_url()));
    let app = Arc::new(
        TestApp::builder(crate::support::Backend::Postgres)
            .database(db.clone())
            .spawn()
            .await,
    );
    let admin = app.admin_token().await;
    let svc = app.create_service("billing", &[]).await;
    let feed_token = app.client_token("billing", &svc.secret).await;
    // Token exchanges alongside: billing acts for frontend towards ledger.
    app.create_service("ledger", &[]).await;
    let frontend = app.create_service("frontend", &[]).await;
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/principals/{}", svc.id),
            Some(&admin),
            Some(json!({"token_exchange": {"audiences": ["ledger"]}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let subject = app
        .post_form(
            "/oauth/token",
            Some(("frontend", &frontend.secret)),
            &[("grant_type", "client_credentials"), ("resource", "billing")],
        )
        .await
        .body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let exchanged = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));

    let next = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let instances = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::<String>::new()));
    let unavailable = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for _ in 0..4 {
        let (instances, exchanged, subject) = (instances.clone(), exchanged.clone(), subject.clone());
        let (app, admin, next, acked, unavailable, secret, feed_token) = (
            app.clone(),
            admin.clone(),
            next.clone(),
            acked.clone(),
            unavailable.clone(),
            svc.secret.clone(),
            feed_token.clone(),
        );
        writers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= CREATES {
                    return;
                }
                let name = format!("svc-{i}");
                // As a client honouring 503s would: try again until the
                // answer is final (a 409 means an earlier try did commit).
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    assert!(attempts < 100_000, "create {name} never got a final answer");
                    let r = app
                        .call(
                            Method::POST,
                            "/api/v1/principals",
                            Some(&admin),
                            Some(json!({"kind": "service", "name": name})),
                        )
                        .await;
                    match r.status {
                        201 => {
                            acked.lock().unwrap().push(name.clone());
                            break;
                        }
                        409 => break,
                        503 => {
                            assert_eq!(r.header("retry-after"), "1");
                            unavailable.fetch_add(1, Ordering::SeqCst);
                            tokio::task::yield_now().await;
                        }
                        other => panic!("create {name}: {other} {}", r.body),
                    }
                }
                // Token requests alongside: 200 or 503, never a 500.
                let t = app.client_grant("billing", &secret).await;
                assert!(matches!(t.status, 200 | 503), "token: {} {}", t.status, t.body);
                // An exchange: acknowledged (and then stored), or 503 with Retry-After.
                let x = app
                    .post_form(
                        "/oauth/token",
                        Some(("billing", &secret)),
                        &[
                            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                            ("subject_token", &subject),
                            ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
                            ("audience", "ledger"),
                        ],
                    )
                    .await;
                match x.status {
                    200 => {
                        let jti = crate::support::claims_of(x.body["access_token"].as_str().unwrap())["jti"].clone();
                        exchanged.lock().unwrap().push(jti.as_str().unwrap().to_string());
                    }
                    503 => assert_eq!(x.header("retry-after"), "1"),
                    other => panic!("exchange: {other} {}", x.body),
                }
                // And the revocation feed: 200, or 503 with Retry-After.
                let f = app
                    .call(Method::GET, "/api/v1/revocations", Some(&feed_token), None)
                    .await;
                match f.status {
                    200 => assert!(f.body["index"].is_i64(), "{}", f.body),
                    503 => assert_eq!(f.header("retry-after"), "1"),
                    other => panic!("revocation feed: {other} {}", f.body),
                }
                // An instance of billing registers (and is acknowledged, or
                // told to retry), and a blocking read of the service answers.
                let id = format!("i-{}", i % 50);
                let r = app
                    .call(
                        Method::PUT,
                        &format!("/api/v1/services/billing/instances/{id}"),
                        Some(&feed_token),
                        Some(json!({"base_url": "http://10.0.0.1/", "ttl_seconds": 3600})),
                    )
                    .await;
                match r.status {
                    200 => {
                        instances.lock().unwrap().insert(id);
                    }
                    503 => assert_eq!(r.header("retry-after"), "1"),
                    other => panic!("instance registration: {other} {}", r.body),
                }
                let v = app
                    .call(
                        Method::GET,
                        "/api/v1/services/billing?index=0&wait=1s",
                        Some(&feed_token),
                        None,
                    )
                    .await;
                match v.status {
                    200 => assert_eq!(v.body["name"], "billing"),
                    503 => assert_eq!(v.header("retry-after"), "1"),
                    other => panic!("service view: {other} {}", v.body),
                }
            }
        }));
    }
    let wait_for = |n: usize| {
        let acked = acked.clone();
        async move {
            while acked.lock().unwrap().len() < n {
                tokio::task::yield_now().await;
            }
        }
    };
    let guard = Duration::from_secs(120);
    tokio::time::timeout(guard, wait_for(60)).await.expect("writes started");
    // A restart: the server goes away and comes back.
    let cluster_ref = &cluster;
    tokio::task::block_in_place(|| assert!(cluster_ref.pg_ctl("restart -m fast -w").success()));
    let restarted = Instant::now();
    tokio::time::timeout(guard, wait_for(120))
        .await
        .expect("writes resumed after the restart");
    let recovery = restarted.elapsed();
    // Killed backends.
    let dbname = url::Url::parse(&db.url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_string();
    let mut conn = diesel::PgConnection::establish(&cluster.admin_url()).unwrap();
    diesel::sql_query(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{dbname}' AND pid <> pg_backend_pid()"
    ))
    .execute(&mut conn)
    .unwrap();
    for w in writers {
        tokio::time::timeout(guard, w).await.expect("the load ended").unwrap();
    }

    // Every acknowledged create is there, and nothing is half-applied: each
    // service has its secret and its audit row.
    let acked = acked.lock().unwrap().clone();
    // Read back on a connection of our own (the app's were just killed).
    let found: Vec<(String, i64, i64)> = {
        let c = &mut diesel::PgConnection::establish(&db.url).unwrap();
        let mut read = || -> diesel::QueryResult<Vec<(String, i64, i64)>> {
            use diesel::prelude::*;
            use roster::db::schema::{audit_events, client_secrets, principals};
            let rows: Vec<(String, String)> = principals::table
                .filter(principals::kind.eq("service"))
                .select((principals::id, principals::name))
                .load(c)?;
            let mut out = Vec::new();
            for (id, name) in rows {
                let secrets: i64 = client_secrets::table
                    .filter(client_secrets::principal_id.eq(&id))
                    .count()
                    .get_result(c)?;
                let audited: i64 = audit_events::table
                    .filter(audit_events::principal_id.eq(&id))
                    .filter(audit_events::event_type.eq("principal.created"))
                    .count()
                    .get_result(c)?;
                out.push((name, secrets, audited));
            }
            Ok(out)
        };
        read().unwrap()
    };
    for name in &acked {
        assert!(found.iter().any(|(n, ..)| n == name), "acknowledged {name} is lost");
    }
    for (name, secrets, audited) in &found {
        assert_eq!((*secrets, *audited), (1, 1), "{name} is half-applied");
    }
    // Every acknowledged instance registration is there, and the service's
    // derived status agrees with its instances.
    let registered: Vec<(String, String)> = {
        use diesel::prelude::*;
        use roster::db::schema::{principals, registry_instances, registry_services};
        let c = &mut diesel::PgConnection::establish(&db.url).unwrap();
        let ids: Vec<String> = registry_instances::table
            .inner_join(principals::table.on(principals::id.eq(registry_instances::principal_id)))
            .filter(principals::name.eq("billing"))
            .select(registry_instances::instance_id)
            .load(c)
            .unwrap();
        let status: Vec<String> = registry_services::table
            .select(registry_services::status)
            .load(c)
            .unwrap();
        ids.into_iter().map(|i| (i, status.join(","))).collect()
    };
    for id in instances.lock().unwrap().iter() {
        assert!(
            registered.iter().any(|(i, _)| i == id),
            "acknowledged instance {id} is lost"
        );
    }
    assert!(
        !registered.is_empty() && registered.iter().all(|(_, s)| s == "up"),
        "{registered:?}"
    );
    // Every acknowledged exchange was stored (so revoking its subject reaches it).
    let stored: Vec<String> = {
        use diesel::prelude::*;
        use roster::db::schema::exchanged_tokens;
        let c = &mut diesel::PgConnection::establish(&db.url).unwrap();
        exchanged_tokens::table.select(exchanged_tokens::jti).load(c).unwrap()
    };
    let exchanged = exchanged.lock().unwrap().clone();
    assert!(!exchanged.is_empty());
    for jti in &exchanged {
        assert!(stored.contains(jti), "acknowledged exchange {jti} is lost");
    }
    eprintln!(
        "faults: {} creates acknowledged with 201, {} found, {} exchanges acknowledged and stored, {} answers were 503, recovery after restart {:?}",
        acked.len(),
        found.iter().filter(|(n, ..)| n.starts_with("svc-")).count(),
        exchanged.len(),
        unavailable.load(Ordering::SeqCst),
        recovery
    );
    let created = found.iter().filter(|(n, ..)| n.starts_with("svc-")).count();
    assert_eq!(created, CREATES, "every create got a final answer and exists once");
}
