//! Container label discovery, on both backends with a manual clock: against
//! a stand-in Docker Engine API on loopback that serves Engine API answers
//! from `tests/fixtures/docker`, and against a real engine, Podman's
//! Docker-compatible API, with real containers.

use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use reqwest::Method;
use roster::clock::Clock;
use roster::registry::docker::{Discovery, DockerConfig, SyncReport};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp};

on_both_backends!(
    labelled_containers_become_instances_and_go_when_they_stop,
    a_container_event_makes_roster_list_again,
);

/// Needs Podman (and busybox for the image): run where the build saw
/// `ROSTER_TEST_PODMAN` set, as `.ci/run` does; ignored elsewhere.
mod real_podman_containers_come_and_go {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(roster_test_podman),
        ignore = "needs Podman: set ROSTER_TEST_PODMAN=1 with podman and busybox-static installed"
    )]
    async fn sqlite() {
        super::real_podman_containers_come_and_go(crate::support::Backend::Sqlite).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(all(roster_test_podman, roster_test_postgres)),
        ignore = "needs Podman and PostgreSQL: set ROSTER_TEST_PODMAN=1 and TEST_DATABASE_URL"
    )]
    async fn postgres() {
        super::real_podman_containers_come_and_go(crate::support::Backend::Postgres).await
    }
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/docker");

fn fixture(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap()).unwrap()
}

/// A stand-in Engine API: `GET …/containers/json` answers the current list,
/// `GET …/events` streams what the test emits; every request is recorded.
struct FakeEngine {
    addr: std::net::SocketAddr,
    containers: Arc<Mutex<Value>>,
    requests: Arc<Mutex<Vec<(String, String)>>>,
    subscribers: Arc<Mutex<Vec<tokio::sync::mpsc::UnboundedSender<String>>>>,
    subscribed: tokio::sync::watch::Receiver<usize>,
    handle: actix_web::dev::ServerHandle,
}

impl FakeEngine {
    fn start(containers: Value) -> Self {
        use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
        let containers = Arc::new(Mutex::new(containers));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let subscribers: Arc<Mutex<Vec<tokio::sync::mpsc::UnboundedSender<String>>>> = Arc::default();
        let (count, subscribed) = tokio::sync::watch::channel(0usize);
        let count = Arc::new(count);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (c, r, s) = (containers.clone(), requests.clone(), subscribers.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    let (c, r, s, count) = (c.clone(), r.clone(), s.clone(), count.clone());
                    App::new().default_service(web::to(move |req: HttpRequest| {
                        let (c, r, s, count) = (c.clone(), r.clone(), s.clone(), count.clone());
                        async move {
                            r.lock()
                                .unwrap()
                                .push((req.method().to_string(), req.uri().to_string()));
                            let path = req.path().to_string();
                            if path.ends_with("/containers/json") {
                                return HttpResponse::Ok().json(c.lock().unwrap().clone());
                            }
                            if path.ends_with("/events") {
                                let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
                                s.lock().unwrap().push(tx);
                                count.send_modify(|n| *n += 1);
                                let body = futures_util::stream::unfold(rx, |mut rx| async move {
                                    let line = rx.recv().await?;
                                    Some((Ok::<_, actix_web::Error>(web::Bytes::from(line)), rx))
                                });
                                return HttpResponse::Ok().content_type("application/json").streaming(body);
                            }
                            HttpResponse::NotFound().json(json!({"message": "page not found"}))
                        }
                    }))
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
        Self {
            addr,
            containers,
            requests,
            subscribers,
            subscribed,
            handle: rx.recv().unwrap(),
        }
    }

    fn host(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    fn set(&self, containers: Value) {
        *self.containers.lock().unwrap() = containers;
    }

    fn emit(&self, event: &Value) {
        for s in self.subscribers.lock().unwrap().iter() {
            let _ = s.send(format!("{event}\n"));
        }
    }

    async fn until_subscribed(&mut self, n: usize) {
        tokio::time::timeout(StdDuration::from_secs(20), self.subscribed.wait_for(|c| *c >= n))
            .await
            .expect("the discovery subscribed to events")
            .unwrap();
    }
}

impl Drop for FakeEngine {
    fn drop(&mut self) {
        let h = self.handle.clone();
        let _ = std::thread::spawn(move || actix_web::rt::System::new().block_on(h.stop(false))).join();
    }
}

fn discovery(engine: &FakeEngine) -> Discovery {
    Discovery::connect(&DockerConfig {
        host: engine.host(),
        interval: Duration::seconds(30),
    })
    .unwrap()
}

/// Ids of the fixture's containers, by their position.
fn id(containers: &Value, i: usize) -> String {
    containers[i]["Id"].as_str().unwrap().to_string()
}

/// (id, base_url, health_url, source) of each instance a service view shows.
fn instances(view: &Value) -> Vec<(String, String, Value, String)> {
    view["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().into(),
                i["base_url"].as_str().unwrap().into(),
                i["health_url"].clone(),
                i["source"].as_str().unwrap().into(),
            )
        })
        .collect()
}

async fn registered_events(app: &TestApp) -> usize {
    app.audit_types()
        .await
        .iter()
        .filter(|a| a.0 == "service.registered")
        .count()
}

async fn labelled_containers_become_instances_and_go_when_they_stop(backend: Backend) {
    let app = TestApp::builder(backend).clock(Clock::manual(Utc::now())).spawn().await;
    app.create_service("mail", &[]).await;
    app.create_service("shop", &[]).await;
    app.create_human("alice", "correct horse battery", &[]).await;
    let admin = app.admin_token().await;
    let all = fixture("containers.json");
    let engine = FakeEngine::start(all.clone());
    let discovery = discovery(&engine);
    let registry = app.state.registry();

    let report = discovery.sync(registry, app.clock.now()).await.unwrap();
    assert_eq!(
        report,
        SyncReport {
            registered: 3,
            renewed: 0,
            removed: 0,
            refused: vec![
                (
                    id(&all, 3),
                    "no service principal named 'ghost' (labels never create one)".into()
                ),
                (
                    id(&all, 4),
                    "no service principal named 'alice' (labels never create one)".into()
                ),
                (
                    id(&all, 5),
                    "base_url: the address 169.254.169.254 is not allowed".into()
                ),
            ],
        }
    );
    let mail = app.call(Method::GET, "/api/v1/services/mail", Some(&admin), None).await;
    assert_eq!(
        instances(&mail.body),
        [
            (
                id(&all, 0),
                "http://172.18.0.2:8080/".into(),
                json!("http://172.18.0.2:8080/health"),
                "docker".into()
            ),
            (
                id(&all, 1),
                "http://172.18.0.3:8080/".into(),
                json!("http://172.18.0.3:8080/health"),
                "docker".into()
            ),
        ]
    );
    assert_eq!(
        mail.body["categories"],
        json!([{"name": "notification", "priority": 5}])
    );
    // The old registry's labels, as aliases.
    let shop = app.call(Method::GET, "/api/v1/services/shop", Some(&admin), None).await;
    assert_eq!(shop.body["description"], "The shop");
    assert_eq!(shop.body["categories"], json!([{"name": "application", "priority": 3}]));
    assert_eq!(
        shop.body["instances"][0]["modules_url"],
        "http://172.18.0.4/getModules.json"
    );
    // Labels create no principal and leave a person alone.
    let ghost = app
        .call(Method::GET, "/api/v1/services/ghost", Some(&admin), None)
        .await;
    assert_eq!(ghost.status, 404);
    let alice = app
        .call(Method::GET, "/api/v1/services/alice", Some(&admin), None)
        .await;
    assert_eq!(alice.status, 404);
    // Only GETs went to the Engine API.
    let requests = engine.requests.lock().unwrap().clone();
    assert!(!requests.is_empty());
    for (method, uri) in &requests {
        assert_eq!(method, "GET", "{uri}");
        assert!(uri.contains("/containers/json?"), "{uri}");
    }
    assert!(
        requests[0].1.contains("roster.service"),
        "the engine filters by label: {}",
        requests[0].1
    );

    // Nothing changed: the leases are renewed, and nothing is registered (or audited) again.
    let before = registered_events(&app).await;
    app.clock.advance(Duration::seconds(30));
    let report = discovery.sync(registry, app.clock.now()).await.unwrap();
    assert_eq!((report.registered, report.renewed, report.removed), (0, 3, 0));
    assert_eq!(registered_events(&app).await, before);

    // A replica registered over the API is not the discovery's to remove.
    let r = app
        .call(
            Method::PUT,
            "/api/v1/services/mail/instances/api-1",
            Some(&admin),
            Some(json!({"base_url": "http://10.0.9.1/"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // mail-2 stops: its instance goes.
    let mut fewer = all.clone();
    fewer.as_array_mut().unwrap().remove(1);
    engine.set(fewer);
    let report = discovery.sync(registry, app.clock.now()).await.unwrap();
    assert_eq!((report.registered, report.renewed, report.removed), (0, 2, 1));
    let mail = app.call(Method::GET, "/api/v1/services/mail", Some(&admin), None).await;
    let ids: Vec<String> = instances(&mail.body).into_iter().map(|i| i.0).collect();
    assert_eq!(ids, [id(&all, 0), "api-1".to_string()]);

    // Every container stops.
    engine.set(json!([]));
    let report = discovery.sync(registry, app.clock.now()).await.unwrap();
    assert_eq!(report.removed, 2);
    let shop = app.call(Method::GET, "/api/v1/services/shop", Some(&admin), None).await;
    assert_eq!(shop.body["status"], "unknown");
    let mail = app.call(Method::GET, "/api/v1/services/mail", Some(&admin), None).await;
    assert_eq!(mail.body["instances"].as_array().unwrap().len(), 1);
}

/// The background loop lists at start, and again on each container event.
async fn a_container_event_makes_roster_list_again(backend: Backend) {
    let app = TestApp::builder(backend).clock(Clock::manual(Utc::now())).spawn().await;
    let (_, token) = app.service_with_token("mail", &[]).await;
    let all = fixture("containers.json");
    let mut engine = FakeEngine::start(all.clone());
    let discovery = Discovery::connect(&DockerConfig {
        host: engine.host(),
        interval: Duration::hours(1),
    })
    .unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let registry = app.state.upkeep().parts.registry.clone();
    let task = tokio::spawn(discovery.run(registry, app.clock.clone(), stopped));
    engine.until_subscribed(1).await;

    // Blocking queries on the service see the first sync, then the event's.
    let wait = |index: i64| {
        let (client, url, token) = (
            app.client.clone(),
            app.url(&format!("/api/v1/services/mail?index={index}&wait=20s")),
            token.clone(),
        );
        async move {
            let r = client.get(url).bearer_auth(token).send().await.unwrap();
            let index: i64 = r.headers()["x-roster-index"].to_str().unwrap().parse().unwrap();
            (index, r.json::<Value>().await.unwrap())
        }
    };
    let (mut index, mut view) = wait(0).await;
    while view["instances"].as_array().unwrap().len() < 2 {
        (index, view) = wait(index).await;
    }
    let mut more = all.clone();
    more.as_array_mut().unwrap().push(fixture("container-mail-3.json"));
    engine.set(more);
    engine.emit(&fixture("event-start.json"));
    let (_, view) = wait(index).await;
    let ids: Vec<String> = instances(&view).into_iter().map(|i| i.0).collect();
    assert_eq!(ids.len(), 3, "{view}");
    let third = fixture("container-mail-3.json")["Id"].as_str().unwrap().to_string();
    assert!(ids.contains(&third), "{ids:?}");
    assert!(
        engine
            .requests
            .lock()
            .unwrap()
            .iter()
            .all(|(m, u)| m == "GET" && (u.contains("/containers/json?") || u.contains("/events?"))),
        "only GETs of the list and the events"
    );
    stop.send(true).unwrap();
    tokio::time::timeout(StdDuration::from_secs(20), task)
        .await
        .expect("the loop stops")
        .unwrap();
}

// ---- a real engine: Podman's Docker-compatible API ---------------------------

/// Podman's global flags for this kind of machine (a container without
/// cgroup delegation or CAP_SYS_RESOURCE): runc, cgroupfs.
const PODMAN: &[&str] = &["--runtime", "runc", "--cgroup-manager", "cgroupfs"];
/// The image the test containers run: busybox, imported from the host's
/// static binary (the machine has no registry access).
const IMAGE: &str = "localhost/roster-test-busybox:1";

fn podman(args: &[&str]) -> std::process::Output {
    let out = std::process::Command::new("podman")
        .args(PODMAN)
        .args(args)
        .output()
        .expect("run podman");
    assert!(
        out.status.success(),
        "podman {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `podman system service` on a socket of its own, handed over by socket
/// activation (so it is listening before the process even starts), and the
/// containers a test runs, removed on drop.
struct Podman {
    dir: tempfile::TempDir,
    service: std::process::Child,
    containers: Vec<String>,
}

impl Podman {
    /// Podman's API service on a socket of this run's own; fails where
    /// Podman or busybox is missing (the test is ignored unless the build
    /// was told they are there).
    fn start() -> Self {
        use std::os::unix::io::AsRawFd;
        use std::os::unix::process::CommandExt;
        let installed = std::process::Command::new("podman").arg("--version").output().is_ok()
            && std::path::Path::new("/bin/busybox").exists();
        assert!(
            installed,
            "ROSTER_TEST_PODMAN is set but podman or /bin/busybox is missing"
        );
        let dir = tempfile::tempdir().unwrap();
        if std::process::Command::new("podman")
            .args(PODMAN)
            .args(["image", "exists", IMAGE])
            .status()
            .is_ok_and(|s| !s.success())
        {
            let root = dir.path().join("root/bin");
            std::fs::create_dir_all(&root).unwrap();
            std::fs::copy("/bin/busybox", root.join("busybox")).unwrap();
            let tar = dir.path().join("root.tar");
            let ok = std::process::Command::new("tar")
                .args(["-C", &dir.path().join("root").display().to_string(), "-cf"])
                .arg(&tar)
                .arg(".")
                .status()
                .unwrap();
            assert!(ok.success());
            podman(&["import", &tar.display().to_string(), IMAGE]);
        }
        std::fs::create_dir(dir.path().join("www")).unwrap();
        std::fs::write(dir.path().join("www/health"), "ok\n").unwrap();
        let listener = std::os::unix::net::UnixListener::bind(dir.path().join("podman.sock")).unwrap();
        let fd = listener.as_raw_fd();
        let mut cmd = std::process::Command::new("podman");
        cmd.args(PODMAN).args(["system", "service", "--time=0"]);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // dup2 clears close-on-exec on the copy; on fd 3 itself, clear it.
                let moved = if fd == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0)
                } else {
                    libc::dup2(fd, 3)
                };
                if moved < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let pid = format!("{}\0", libc::getpid());
                libc::setenv(c"LISTEN_FDS".as_ptr(), c"1".as_ptr(), 1);
                libc::setenv(c"LISTEN_PID".as_ptr(), pid.as_ptr().cast(), 1);
                Ok(())
            });
        }
        let service = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start podman system service");
        drop(listener);
        Self {
            dir,
            service,
            containers: Vec::new(),
        }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("podman.sock").display())
    }

    /// Run busybox's httpd on port 8080 with `labels`; returns the id and address.
    fn run(&mut self, labels: &[(&str, &str)]) -> (String, String) {
        let www = format!("{}:/www:ro", self.dir.path().join("www").display());
        let mut args = vec![
            "run",
            "-d",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            "-v",
            &www,
        ];
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for l in &labels {
            args.extend(["--label", l]);
        }
        args.extend([IMAGE, "/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]);
        let id = String::from_utf8(podman(&args).stdout).unwrap().trim().to_string();
        self.containers.push(id.clone());
        let ip = podman(&["inspect", &id, "--format", "{{.NetworkSettings.IPAddress}}"]).stdout;
        (id, String::from_utf8(ip).unwrap().trim().to_string())
    }

    fn remove(&self, id: &str) {
        podman(&["rm", "-f", "-t", "0", id]);
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        for id in &self.containers {
            let _ = std::process::Command::new("podman")
                .args(PODMAN)
                .args(["rm", "-f", "-t", "0", id])
                .output();
        }
        let _ = self.service.kill();
        let _ = self.service.wait();
    }
}

/// Real containers on a real engine: the first list, a health check that
/// reaches the container, and the event stream as containers start and stop.
async fn real_podman_containers_come_and_go(backend: Backend) {
    let mut engine = Podman::start();
    let app = TestApp::builder(backend).clock(Clock::manual(Utc::now())).spawn().await;
    // A name of this run's own: other tests' containers share the engine.
    let name = format!("pm-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let (_, token) = app.service_with_token(&name, &[]).await;
    let labels = [
        ("roster.service", name.as_str()),
        ("roster.port", "8080"),
        ("roster.health", "/health"),
        ("roster.categories", "podman:2"),
    ];
    let (first, ip) = engine.run(&labels);
    let discovery = Discovery::connect(&DockerConfig {
        host: engine.host(),
        interval: Duration::hours(1),
    })
    .unwrap();
    let report = discovery.sync(app.state.registry(), app.clock.now()).await.unwrap();
    assert_eq!(report.registered, 1, "{report:?}");
    let view = app
        .call(Method::GET, &format!("/api/v1/services/{name}"), Some(&token), None)
        .await;
    assert_eq!(
        instances(&view.body),
        [(
            first.clone(),
            format!("http://{ip}:8080/"),
            json!(format!("http://{ip}:8080/health")),
            "docker".to_string()
        )]
    );
    assert_eq!(view.body["categories"], json!([{"name": "podman", "priority": 2}]));
    // Roster's health check reaches the container's httpd.
    app.tick().await;
    let view = app
        .call(Method::GET, &format!("/api/v1/services/{name}"), Some(&token), None)
        .await;
    assert_eq!(view.body["instances"][0]["health"]["ok"], true, "{}", view.body);

    // The background loop follows the engine's events.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let registry = app.state.upkeep().parts.registry.clone();
    let task = tokio::spawn(discovery.run(registry, app.clock.clone(), stopped));
    let ids = |v: &Value| -> Vec<String> { instances(v).into_iter().map(|i| i.0).collect() };
    let until = |want: usize| {
        let (client, token, url) = (
            app.client.clone(),
            token.clone(),
            app.url(&format!("/api/v1/services/{name}")),
        );
        async move {
            let mut query = String::new();
            loop {
                let r = client
                    .get(format!("{url}{query}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                let index = r.headers()["x-roster-index"].to_str().unwrap().to_string();
                let body: Value = r.json().await.unwrap();
                if body["instances"].as_array().unwrap().len() == want {
                    return body;
                }
                query = format!("?index={index}&wait=20s");
            }
        }
    };
    let (second, _) = engine.run(&labels);
    let view = tokio::time::timeout(StdDuration::from_secs(60), until(2))
        .await
        .expect("the start event made Roster list again");
    let mut want = vec![first.clone(), second.clone()];
    want.sort();
    assert_eq!(ids(&view), want);
    engine.remove(&first);
    let view = tokio::time::timeout(StdDuration::from_secs(60), until(1))
        .await
        .expect("the stop event made Roster list again");
    assert_eq!(ids(&view), [second]);
    stop.send(true).unwrap();
    tokio::time::timeout(StdDuration::from_secs(20), task)
        .await
        .expect("the loop stops")
        .unwrap();
}
