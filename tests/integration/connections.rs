//! Connections an attacker cannot hold, tried on a real `roster serve` from
//! several loopback addresses: bodies that never finish and bodies nobody
//! reads are cut off at their deadline, the server's descriptors come back,
//! one peer cannot take every connection, and near the cap the oldest
//! stalled connections make room instead of the server ceasing to accept.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::metrics::{scrape, value};
use crate::on_both_backends;
use crate::support::Backend;
use crate::support::process::{Roster, free_port};

on_both_backends!(
    held_bodies_are_cut_off_and_their_sockets_closed,
    one_peer_cannot_take_every_connection_and_stalled_ones_make_room,
    clients_behind_a_trusted_proxy_are_counted_by_forwarded_address,
    a_long_poll_keeps_its_own_wait,
);

/// A chunked token request whose next chunk never comes.
const UNFINISHED: &[u8] = b"POST /oauth/token HTTP/1.1\r\nHost: roster\r\n\
Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n5\r\ngrant";
/// One chunk to a route that reads no body, then silence.
const UNREAD: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: roster\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n";

/// A connection to `to` from the loopback address `127.0.0.{from}`.
async fn connect_from(from: u8, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(IpAddr::from([127, 0, 0, from]), 0))
        .unwrap();
    socket.connect(to).await.unwrap()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

/// Wait (bounded) until the server's descriptor count satisfies `done`.
async fn fds_reach(pid: u32, done: impl Fn(usize) -> bool) -> usize {
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        let now = open_fds(pid);
        if done(now) || Instant::now() > give_up {
            return now;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Has the server closed this connection (EOF or reset) by now?
fn closed_now(c: &TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match c.try_read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

/// How many of `conns` the server has closed, once `enough` of them are
/// (or 10 s have passed): each wait is for a socket to turn readable, which
/// a closed one does.
async fn closed_among(conns: &[TcpStream], enough: usize) -> usize {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let open: Vec<&TcpStream> = conns.iter().filter(|c| !closed_now(c)).collect();
        let closed = conns.len() - open.len();
        if closed >= enough || open.is_empty() {
            return closed;
        }
        let any_readable = futures_util::future::select_all(open.iter().map(|c| Box::pin(c.readable())));
        if tokio::time::timeout_at(give_up, any_readable).await.is_err() {
            return closed;
        }
    }
}

fn addr(roster: &Roster) -> SocketAddr {
    roster.issuer().trim_start_matches("http://").parse().unwrap()
}

/// 2,000 chunked token requests that never finish and 2,000 one-chunk
/// requests to a route that reads no body, from 16 addresses: a token
/// request from another address is answered at once meanwhile, each held
/// connection gets its answer and is closed by its deadline (plus a margin),
/// and the server's descriptors return to where they were.
async fn held_bodies_are_cut_off_and_their_sockets_closed(backend: Backend) {
    const EACH: usize = 2_000;
    const SOURCES: u8 = 16;
    let metrics = format!("127.0.0.1:{}", free_port());
    let roster = Roster::start(
        backend,
        &[
            "--request-timeout",
            "4s",
            "--drain-timeout",
            "1s",
            "--metrics-listen",
            &metrics,
        ],
    )
    .await;
    let (_, secret) = roster.service("billing", &[]).await;
    let to = addr(&roster);
    let pid = roster.pid();
    // Warm: the pools hold what one request needs.
    roster
        .token_for(Some(("billing", &secret)), &[("grant_type", "client_credentials")])
        .await;
    let baseline = open_fds(pid);

    let opening = Instant::now();
    let mut held = Vec::with_capacity(2 * EACH);
    for i in 0..2 * EACH {
        let from = 2 + (i % SOURCES as usize) as u8;
        let mut c = connect_from(from, to).await;
        let unread = i % 2 == 1;
        c.write_all(if unread { UNREAD } else { UNFINISHED }).await.unwrap();
        let sent = Instant::now();
        // Read at once, so that the time to the server's close is its own.
        held.push(tokio::spawn(async move {
            let mut buf = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(30), c.read_to_end(&mut buf)).await;
            (
                read.is_ok(),
                sent.elapsed(),
                unread,
                String::from_utf8_lossy(&buf).into_owned(),
            )
        }));
    }
    // (The unread ones are answered at once and closed a second later, so
    // the server holds most of them, not all, at any one time.)
    eprintln!(
        "opened {} in {:?}; the server holds {} descriptors",
        2 * EACH,
        opening.elapsed(),
        open_fds(pid)
    );

    // Meanwhile another client is served at once.
    let probe = Instant::now();
    let token = roster
        .token_for(Some(("billing", &secret)), &[("grant_type", "client_credentials")])
        .await;
    let probe = probe.elapsed();
    assert!(!token.is_empty());
    assert!(
        probe < Duration::from_secs(1),
        "a token took {probe:?} while connections were held"
    );

    // Every held connection is answered and closed by the server: an
    // unfinished body at the request timeout (4 s) from its first byte, plus
    // 1 s to drain; an unread one 1 s after its answer; each plus a margin
    // for 4,000 of them on two cores.
    let margin = Duration::from_secs(2);
    let (unfinished_by, unread_by) = (Duration::from_secs(4 + 1) + margin, Duration::from_secs(1) + margin);
    let (mut slowest_unfinished, mut slowest_unread) = (Duration::ZERO, Duration::ZERO);
    for r in held {
        let (closed, took, unread, text) = r.await.unwrap();
        assert!(closed, "the server kept a connection open for 30 s: {text}");
        if unread {
            slowest_unread = slowest_unread.max(took);
        } else {
            slowest_unfinished = slowest_unfinished.max(took);
        }
        if unread {
            assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
            assert!(
                text.to_ascii_lowercase().contains("\r\nconnection: close\r\n"),
                "{text}"
            );
            assert!(text.ends_with(r#"{"status":"ok"}"#), "{text}");
        } else {
            assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
            assert!(
                text.ends_with(
                    r#"{"error":"invalid_request","error_description":"the request body did not arrive within 4s"}"#
                ),
                "{text}"
            );
        }
    }
    eprintln!("closed: unfinished bodies by {slowest_unfinished:?}, unread ones by {slowest_unread:?}");
    assert!(
        slowest_unfinished <= unfinished_by,
        "an unfinished body was closed after {slowest_unfinished:?}"
    );
    assert!(
        slowest_unread <= unread_by,
        "an unread body was closed after {slowest_unread:?}"
    );

    let after = fds_reach(pid, |n| n <= baseline).await;
    assert!(
        after <= baseline,
        "the server holds {after} descriptors, {baseline} before"
    );

    let seen = scrape(&format!("http://{metrics}/metrics")).await;
    // The unfinished bodies were answered at their deadline and then cut
    // off; the unread ones were cut off after the drain time.
    let timed_out = value(&seen, "roster_connections_timed_out_total", &[]);
    assert!(timed_out >= (2 * EACH) as f64, "{timed_out}");
    let open = value(&seen, "roster_connections_open", &[]);
    assert!(open <= 2.0, "{open}");
}

/// Eight connections per peer, 32 in all: the ninth from one address is
/// turned away at once while other addresses get in, and once the server
/// nears its cap each new connection closes the oldest stalled one instead
/// of waiting in the kernel's backlog.
async fn one_peer_cannot_take_every_connection_and_stalled_ones_make_room(backend: Backend) {
    let metrics = format!("127.0.0.1:{}", free_port());
    let roster = Roster::start(
        backend,
        &[
            "--max-connections-per-peer",
            "8",
            "--max-connections",
            "32",
            "--stalled-after",
            "1ms",
            "--head-timeout",
            "60s",
            "--keep-alive",
            "60s",
            "--metrics-listen",
            &metrics,
        ],
    )
    .await;
    let (_, secret) = roster.service("billing", &[]).await;
    let to = addr(&roster);
    let mut first = Vec::new();
    for _ in 0..9 {
        first.push(connect_from(2, to).await);
    }
    // Workers admit in parallel, so which one of the nine is turned away
    // may vary; exactly one is.
    assert_eq!(closed_among(&first, 1).await, 1, "nine connections from one peer");
    let first: Vec<_> = first.into_iter().filter(|c| !closed_now(c)).collect();
    // The kernel completes a handshake before the server accepts it: under
    // load the first peer's connections could be accepted after later ones
    // and so not be the oldest. Wait until the server holds all eight.
    let give_up = Instant::now() + Duration::from_secs(10);
    while value(
        &scrape(&format!("http://{metrics}/metrics")).await,
        "roster_connections_open",
        &[],
    ) < 8.0
        && Instant::now() < give_up
    {
        tokio::task::yield_now().await;
    }
    let mut others = Vec::new();
    for from in 3..=5 {
        for _ in 0..8 {
            others.push(connect_from(from, to).await);
        }
    }
    // 8 + 24 connections: from the 29th on (90 % of 32), each one closes
    // the oldest stalled connection, and a token request still gets in.
    let token = roster
        .token_for(Some(("billing", &secret)), &[("grant_type", "client_credentials")])
        .await;
    assert!(!token.is_empty());
    // The oldest stalled ones are the first peer's (workers admit in
    // parallel, so which four of its eight may vary).
    assert!(
        closed_among(&first, 4).await >= 4,
        "the oldest peer's connections were not shed"
    );
    assert_eq!(
        others.iter().filter(|c| closed_now(c)).count(),
        0,
        "younger connections were shed"
    );
    let seen = scrape(&format!("http://{metrics}/metrics")).await;
    let refused = |reason: &str| value(&seen, "roster_connections_refused_total", &[("reason", reason)]);
    assert_eq!(refused("per_peer"), 1.0);
    assert!(refused("shed_stalled") >= 5.0, "{}", refused("shed_stalled"));
    assert_eq!(refused("capacity"), 0.0);
    drop(others);
}

/// Behind a trusted proxy every client shares the proxy's connections, so a
/// client's share is counted in requests in flight, by its forwarded
/// address: a third at once from one client is a 429, while other clients
/// and the proxy itself go on.
async fn clients_behind_a_trusted_proxy_are_counted_by_forwarded_address(backend: Backend) {
    use crate::support::TestApp;
    let app = TestApp::builder(backend)
        .settings(|mut s| {
            s.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
            s.http.max_connections_per_peer = 2;
            s
        })
        .spawn()
        .await;
    let (svc, token) = app.service_with_token("billing", &[]).await;
    let http = reqwest::Client::new();
    let health = |client: &'static str| {
        let req = http.get(app.url("/healthz"));
        async move {
            let r = req.header("x-forwarded-for", client).send().await.unwrap();
            let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
            (r.status().as_u16(), retry, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    // Two long polls of one client, each on its own connection of the proxy.
    let polls: Vec<_> = (0..2)
        .map(|_| {
            let req = reqwest::Client::new()
                .get(app.url("/api/v1/revocations?index=0&wait=60s"))
                .bearer_auth(&token)
                .header("x-forwarded-for", "203.0.113.9");
            tokio::spawn(async move { req.send().await })
        })
        .collect();
    // Once both are waiting in the feed, that client's third request is refused.
    tokio::time::timeout(Duration::from_secs(10), app.state.oauth().revocations.until_waiting(2))
        .await
        .expect("the two long polls never waited");
    assert_eq!(
        health("203.0.113.9").await,
        (
            429,
            Some("1".to_string()),
            serde_json::json!({"error": "too_many_requests",
                               "error_description": "more than 2 requests at once from this client"})
        )
    );
    // Others are served: another client, and the proxy itself.
    assert_eq!(health("198.51.100.7").await.0, 200);
    let own = http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(own.status(), 200);
    // When its requests end (a revocation answers both polls), the client
    // is served again. (Another token is revoked, so that the polls' own
    // stays good whatever the order.)
    let other = app.client_token("billing", &svc.secret).await;
    let revoked = app
        .post_form("/oauth/revoke", Some(("billing", &svc.secret)), &[("token", &other)])
        .await;
    assert_eq!(revoked.status, 200);
    for p in polls {
        let r = p.await.unwrap().expect("the long poll failed");
        let status = r.status();
        assert_eq!(status, 200, "{}", r.text().await.unwrap());
    }
    assert_eq!(health("203.0.113.9").await.0, 200);
}

/// A long poll's deadline is its own `wait`, not the request timeout: with
/// a 1 s request timeout, a 3 s wait is answered after 3 s, whole.
async fn a_long_poll_keeps_its_own_wait(backend: Backend) {
    use crate::support::TestApp;
    let app = TestApp::builder(backend)
        .settings(|mut s| {
            s.http.request_timeout = Duration::from_secs(1);
            s.http.drain_timeout = Duration::from_millis(200);
            s
        })
        .spawn()
        .await;
    let (_, token) = app.service_with_token("billing", &[]).await;
    let started = Instant::now();
    let r = reqwest::Client::new()
        .get(app.url("/api/v1/revocations?index=0&wait=3s"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("the long poll was cut off");
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["tokens"], serde_json::json!([]), "{body}");
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "answered after {:?}",
        started.elapsed()
    );
}
