//! The walkthroughs of the docs, run as a user would paste them: each
//! `examples/*.sh` runs in a fresh directory, with `roster` on the PATH and
//! nothing else from this environment, against its own server on a free port.
//! docs/getting-started.md shows these very files, so the two cannot drift.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::roster_bin;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The example service of roster-client, as `cargo test` at the workspace
/// root builds it (it builds every example before running any test).
fn service_example() -> std::path::PathBuf {
    let bin = roster_bin().parent().unwrap().join("examples").join("service");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo test` at the workspace root, which builds roster-client's examples",
        bin.display()
    );
    bin
}

/// How a walkthrough is started.
struct Run<'a> {
    /// Options before the script's path: `-euo pipefail` as the tests run
    /// them, or none, as the README tells a user to.
    bash_args: &'a [&'a str],
    /// Is the built `roster` on the PATH?
    roster_on_path: bool,
    /// Where the server is to listen.
    listen: String,
}

/// Run `examples/<name>.sh` from a fresh directory holding a copy of
/// `examples/`, as from the root of a clone. Returns its exit status,
/// stdout and stderr; fails after two minutes.
fn start_example(name: &str, run: Run<'_>) -> (std::process::ExitStatus, String, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("examples")).unwrap();
    for entry in std::fs::read_dir(Path::new(ROOT).join("examples")).unwrap() {
        let entry = entry.unwrap();
        // The walkthrough scripts; examples/frontend is a web page, run by tests/browser.
        if !entry.path().is_file() {
            continue;
        }
        std::fs::copy(entry.path(), dir.path().join("examples").join(entry.file_name())).unwrap();
    }
    let bin_dir = roster_bin().parent().unwrap();
    let system_path = std::env::var("PATH").unwrap_or_default();
    let path = if run.roster_on_path {
        format!("{}:{system_path}", bin_dir.display())
    } else {
        // Whatever `roster` an earlier `cargo install` left stays out too.
        std::env::split_paths(&system_path)
            .filter(|p| !p.join("roster").exists())
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    };
    let script = format!("examples/{name}.sh");
    let mut child = Command::new("bash")
        .args(run.bash_args)
        .arg(&script)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir.path())
        .env("TMPDIR", dir.path())
        .env("ROSTER_LISTEN", run.listen)
        .env("STANDIN_PORT", free_port().to_string())
        .env("STANDIN_B_PORT", free_port().to_string())
        .env("ORDERS_PORT", free_port().to_string())
        .env("BILLING_PORT", free_port().to_string())
        .env("SERVICE_BIN", service_example())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = child.id();
    assert!(pgid > 1);
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let read = |mut r: Box<dyn std::io::Read + Send>| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = r.read_to_string(&mut s);
                s
            })
        };
        let (out, err) = (read(Box::new(stdout)), read(Box::new(stderr)));
        let status = child.wait().unwrap();
        let _ = tx.send((status, out.join().unwrap(), err.join().unwrap()));
    });
    let outcome = rx.recv_timeout(Duration::from_secs(120));
    // Whatever happened, nothing the example started outlives it.
    // SAFETY: killpg only sends a signal, to the example's own process group.
    unsafe {
        libc::killpg(pgid as libc::pid_t, libc::SIGKILL);
    }
    outcome.unwrap_or_else(|_| panic!("{script} did not finish within 2 minutes"))
}

/// Run `examples/<name>.sh` with `bash -euo pipefail` (any failing command
/// fails the run), with `roster` on the PATH, on a free port. Returns
/// stdout; fails on a non-zero exit.
fn run_example(name: &str) -> String {
    let run = Run {
        bash_args: &["-euo", "pipefail"],
        roster_on_path: true,
        listen: format!("127.0.0.1:{}", free_port()),
    };
    let (status, out, err) = start_example(name, run);
    assert!(
        status.success(),
        "examples/{name}.sh failed ({status}).\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert!(!err.contains("Traceback"), "examples/{name}.sh: {err}");
    out
}

/// Started with plain `bash`, as the README says, a walkthrough stops at its
/// first failure with a non-zero status: without `roster` on the PATH, and
/// when the port already serves (another Roster from the step before, say),
/// it says why in one line and runs nothing else.
#[test]
fn walkthroughs_stop_at_their_first_failure() {
    let plain = |roster_on_path: bool, listen: String| Run {
        bash_args: &[],
        roster_on_path,
        listen,
    };
    let port = free_port();
    let (status, out, err) = start_example("quickstart", plain(false, format!("127.0.0.1:{port}")));
    assert_eq!(
        (status.code(), out.as_str(), err.as_str()),
        (
            Some(1),
            "",
            "roster is not on the PATH: run cargo install --locked --path . first\n"
        )
    );

    // Something already serves HTTP on the port.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in taken.incoming() {
            let Ok(mut conn) = conn else { return };
            let _ = std::io::Read::read(&mut conn, &mut [0; 4096]);
            let _ = std::io::Write::write_all(
                &mut conn,
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
            );
        }
    });
    for name in ["quickstart", "registry"] {
        let (status, out, err) = start_example(name, plain(true, listen.clone()));
        assert_eq!(
            (status.code(), out.as_str(), err),
            (
                Some(1),
                "",
                format!("{listen} is already taken: stop what serves there, or set ROSTER_LISTEN=127.0.0.1:<port>\n")
            ),
            "{name}"
        );
    }
}

#[test]
fn quickstart_runs_as_written() {
    let out = run_example("quickstart");
    assert!(out.starts_with("{\"status\":\"ready\""), "{out}");
    assert!(out.contains("\"name\":\"billing\""), "{out}");
    assert!(out.contains("{\"active\":true,"), "{out}");
    assert!(out.contains("{\"active\":false}"), "{out}");
    assert!(out.contains("\"refresh_token\":"), "{out}");
}

#[test]
fn admin_walkthrough_runs_as_written() {
    let out = run_example("admin");
    assert!(out.contains("\"status\":\"disabled\""), "{out}");
    assert!(out.contains("\nBearer\n"), "the new secret works: {out}");
    assert_eq!(out.matches("\"type\":\"password.changed\"").count(), 2, "{out}");
}

#[test]
fn registry_walkthrough_runs_as_written() {
    let out = run_example("registry");
    // After examples/start.sh's readiness line.
    let lines: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(lines.len(), 10, "{out}");
    assert_eq!(lines[0], "up", "{out}");
    assert!(lines[1].contains("\"code\":\"stock\""), "{out}");
    assert_eq!(
        lines[2..],
        [
            "['inv-a', 'inv-b']",
            "['inv-a']",
            "['inv-a', 'inv-b']",
            "pushed",
            "['inv-b']",
            "up",
            "no instance is up (instance inv-b: health check failed: bad_status (2 consecutive failures))",
            "{\"items\":[],\"next_cursor\":null}",
        ],
        "{out}"
    );
}

#[test]
fn frontend_login_runs_as_written() {
    let out = run_example("frontend");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[1], "shop-ui", "{out}");
    assert!(lines[2].starts_with("http://localhost:5173/callback?code="), "{out}");
    assert!(lines[2].contains("&state=s1&iss=http%3A%2F%2F127.0.0.1%3A"), "{out}");
    assert_eq!(lines[3], "email openid profile", "{out}");
    assert!(
        lines[4].starts_with("{\"sub\":\"")
            && lines[4].ends_with("\"preferred_username\":\"erin\",\"name\":\"erin\",\"email\":\"erin@example.org\"}"),
        "{out}"
    );
}

#[test]
fn client_walkthrough_runs_as_written() {
    let out = run_example("client");
    // After examples/start.sh's readiness line.
    let lines: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(lines[0], "['billing-home', 'orders-home']", "{out}");
    let json = |l: &str| serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|_| panic!("not JSON: {out}"));
    assert_eq!(
        json(lines[1]),
        serde_json::json!({"orders": [], "for": "billing"}),
        "{out}"
    );
    assert_eq!(lines[2], "401", "{out}");
    assert_eq!(
        json(lines[3]),
        serde_json::json!({"peer": "orders", "status": 200,
                           "answer": {"hello": "billing", "kind": "service", "scopes": ["orders:read"]}}),
        "billing called orders with its own token: {out}"
    );
    assert_eq!(&lines[4..], ["{}", "401", "unknown"], "{out}");
}

#[test]
fn services_without_secrets_run_as_written() {
    let out = run_example("keys");
    let expected = "private_key_jwt\ninvoices:read\n\
        {\"error\":\"invalid_client\",\"error_description\":\"the client assertion was used before (its jti is spent)\"}\n\
        https://kubernetes.default.svc\n\
        [{'issuer': 'https://kubernetes.default.svc', 'subject': 'system:serviceaccount:payroll:api'}]\n\
        payroll\n";
    assert!(out.ends_with(expected), "{out}");
}

#[test]
fn token_exchange_runs_as_written() {
    let out = run_example("exchange");
    let expected = "urn:ietf:params:oauth:token-type:access_token\nalice\nbilling\norders\nalice\n\
        {\"error\":\"unauthorized_client\",\"error_description\":\"'orders' may not exchange tokens for 'ledger'\"}\n\
        {}\n{\"active\":false}\n";
    assert!(out.ends_with(expected), "{out}");
}

#[test]
fn recovery_runs_as_written() {
    let out = run_example("recover");
    assert!(out.ends_with("admin\ndave\n"), "{out}");
}

/// Each example is in the docs (README.md and docs/*.md), verbatim, in the
/// code block after its `<!-- example: examples/NAME.sh -->` marker; and
/// every marker names a file.
#[test]
fn the_docs_show_the_examples_verbatim() {
    let mut pages = vec![Path::new(ROOT).join("README.md")];
    pages.extend(
        std::fs::read_dir(Path::new(ROOT).join("docs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "md")),
    );
    let text: String = pages
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap() + "\n")
        .collect();
    let mut shown = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(file) = line.strip_prefix("<!-- example: ").and_then(|l| l.strip_suffix(" -->")) else {
            continue;
        };
        assert_eq!(lines.next(), Some("```sh"), "a sh block follows the marker of {file}");
        let block: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        let text = std::fs::read_to_string(Path::new(ROOT).join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            block.join("\n") + "\n",
            text,
            "the docs' copy of {file} differs from the file"
        );
        shown.push(file.to_string());
    }
    let mut files: Vec<String> = std::fs::read_dir(Path::new(ROOT).join("examples"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().extension().is_some_and(|x| x == "sh"))
        .map(|e| format!("examples/{}", e.file_name().to_string_lossy()))
        .collect();
    files.sort();
    shown.sort();
    assert_eq!(shown, files, "every example is in the docs once");
}
