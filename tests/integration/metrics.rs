//! Prometheus metrics on `--metrics-listen`, scraped from a real `roster
//! serve` with a Prometheus text-format parser: the counters move as tokens
//! are issued and logins fail, and nothing is served on the public address.

use prometheus_parse::{Sample, Scrape, Value};
use serde_json::json;

use crate::on_both_backends;
use crate::support::Backend;
use crate::support::process::{Roster, free_port};

on_both_backends!(metrics_count_tokens_failed_logins_and_requests);

pub(crate) async fn scrape(url: &str) -> Scrape {
    let text = text(url).await;
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
}

async fn text(url: &str) -> String {
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{:?}",
        r.headers()
    );
    r.text().await.unwrap()
}

/// The value of the sample `name` with exactly these labels (0 when absent).
pub(crate) fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let matches = |s: &&Sample| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v));
    match scrape.samples.iter().find(matches).map(|s| &s.value) {
        None => 0.0,
        Some(Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) => *v,
        Some(Value::Histogram(buckets)) => buckets
            .iter()
            .find(|b| b.less_than.is_infinite())
            .map(|b| b.count)
            .unwrap_or(0.0),
        Some(other) => panic!("{name}: {other:?}"),
    }
}

async fn metrics_count_tokens_failed_logins_and_requests(backend: Backend) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let roster = Roster::start(backend, &["--metrics-listen", &listen]).await;
    let url = format!("http://{listen}/metrics");
    let (_, secret) = roster.service("billing", &[]).await;
    let before = scrape(&url).await;

    for _ in 0..3 {
        roster
            .token_for(Some(("billing", &secret)), &[("grant_type", "client_credentials")])
            .await;
    }
    roster.admin_token().await;
    let http = reqwest::Client::new();
    let token = format!("{}/oauth/token", roster.issuer());
    let r = http
        .post(&token)
        .form(&[("grant_type", "password"), ("username", "admin"), ("password", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .post(&token)
        .basic_auth("billing", Some("not-the-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let after = scrape(&url).await;

    let delta = |name: &str, labels: &[(&str, &str)]| value(&after, name, labels) - value(&before, name, labels);
    assert_eq!(
        (
            delta("roster_tokens_issued_total", &[("grant_type", "client_credentials")]),
            delta("roster_tokens_issued_total", &[("grant_type", "password")]),
            delta(
                "roster_token_failures_total",
                &[("grant_type", "password"), ("reason", "invalid_grant")]
            ),
            delta(
                "roster_token_failures_total",
                &[("grant_type", "client_credentials"), ("reason", "invalid_client")]
            ),
        ),
        (3.0, 1.0, 1.0, 1.0)
    );
    let requests = |status: &str| {
        delta(
            "roster_http_requests_total",
            &[("route", "/oauth/token"), ("method", "POST"), ("status", status)],
        )
    };
    assert_eq!((requests("200"), requests("400"), requests("401")), (4.0, 1.0, 1.0));
    assert_eq!(
        delta(
            "roster_http_request_duration_seconds",
            &[("route", "/oauth/token"), ("method", "POST")]
        ),
        6.0,
        "each answer is timed once"
    );
    // Route templates, never names or ids, label the requests.
    let service = http
        .get(format!("{}/api/v1/services/billing", roster.issuer()))
        .bearer_auth(roster.admin_token().await)
        .send()
        .await
        .unwrap();
    assert_eq!(service.status(), 200);
    // A method a client invents is `other`, so it cannot grow the label set.
    let brew = reqwest::Method::from_bytes(b"BREW").unwrap();
    let r = http
        .request(brew, format!("{}/api/v1/services", roster.issuer()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let later = scrape(&url).await;
    // (This parser stops a label value at a `}`, which the format allows
    // inside quotes: the line is checked as text.)
    let raw = text(&url).await;
    assert!(
        raw.lines()
            .any(|l| l == r#"roster_http_requests_total{route="/api/v1/services/{name}",method="GET",status="200"} 1"#),
        "{raw}"
    );
    assert!(raw.contains(r#"method="other""#) && !raw.contains("BREW"), "{raw}");
    assert!(
        !later
            .samples
            .iter()
            .any(|s| s.labels.get("route").is_some_and(|r| r.contains("billing"))),
        "no name in a label"
    );
    // What the tick records: keys, registry, pools.
    assert_eq!(value(&later, "roster_signing_keys", &[("phase", "active")]), 1.0);
    for gauge in [
        "roster_signing_key_age_seconds",
        "roster_db_connections_in_use",
        "roster_argon2_queue_depth",
        "roster_registry_change_index",
    ] {
        assert!(later.samples.iter().any(|s| s.metric == gauge), "{gauge} is missing");
    }
    assert!(
        later.docs.contains_key("roster_tokens_issued_total"),
        "described: {:?}",
        later.docs.keys()
    );

    // Not on the public address; nothing else on the metrics one.
    let public = http.get(format!("{}/metrics", roster.issuer())).send().await.unwrap();
    assert_eq!(public.status(), 404);
    assert_eq!(
        public.json::<serde_json::Value>().await.unwrap()["error"],
        json!("not_found")
    );
    let other = http
        .get(format!("http://{listen}/api/v1/services"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
}
