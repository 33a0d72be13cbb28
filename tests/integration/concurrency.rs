//! Many clients at once, counted: 32 concurrent clients revoke, log in,
//! create and demote principals, register instances and guess secrets, while
//! one follower long-polls the revocation feed as `roster-client` does (never
//! reading below its cursor) and one watcher long-polls a service view. At
//! the end nothing acknowledged is missing: no answer was a 5xx, every
//! revocation answered 200 was seen by the follower, the feed read from
//! scratch holds exactly the deny list, and every view the watcher was
//! handed at index `i` showed every registration acknowledged at or below `i`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::on_both_backends;
use crate::support::{Backend, TestApp, claims_of};

on_both_backends!(nothing_acknowledged_is_lost_under_concurrency);

/// Concurrent clients, and rounds each.
const CLIENTS: usize = 32;
const ROUNDS: usize = 12;

fn jti(token: &str) -> String {
    claims_of(token)["jti"].as_str().unwrap().to_string()
}

/// What the clients were told, and every status they got.
#[derive(Default)]
struct Tally {
    acknowledged: BTreeSet<String>,
    /// Instances whose registration was answered 200, with the index it got.
    registered: Vec<(String, i64)>,
    statuses: Vec<(&'static str, u16, String)>,
}

impl Tally {
    fn saw(&mut self, what: &'static str, status: u16, body: &Value) {
        self.statuses.push((what, status, body.to_string()));
    }
}

/// One page of the feed after `index`, as the follower reads it.
async fn read_feed(app: &TestApp, token: &str, index: i64, wait: &str) -> Value {
    crate::revocations::feed(app, token, &format!("?index={index}&wait={wait}")).await
}

async fn nothing_acknowledged_is_lost_under_concurrency(backend: Backend) {
    let app = Arc::new(TestApp::spawn(backend).await);
    let done_flag = Arc::new(AtomicBool::new(false));
    let billing = app.create_service("billing", &["invoices:read"]).await;
    let victim = app.create_service("victim", &[]).await;
    app.create_human("alice", "correct horse battery", &["r"]).await;
    let (_, follower_token) = app.service_with_token("follower", &[]).await;
    let admin = app.admin_token().await;
    let (_, fleet) = app.service_with_token("fleet", &[]).await;

    // The watcher: blocking queries on the fleet's view, each from the index
    // of the answer before; every answer is kept with its index.
    let watcher = {
        let (app, token, done) = (app.clone(), fleet.clone(), done_flag.clone());
        tokio::spawn(async move {
            let mut answers: Vec<(i64, BTreeSet<String>)> = Vec::new();
            let mut index = 0;
            loop {
                let finishing = done.load(Ordering::SeqCst);
                let wait = if finishing { "0s" } else { "2s" };
                let r = app
                    .call(
                        Method::GET,
                        &format!("/api/v1/services/fleet?index={index}&wait={wait}"),
                        Some(&token),
                        None,
                    )
                    .await;
                assert_eq!(r.status, 200, "{}", r.body);
                index = r.header("x-roster-index").parse().unwrap();
                let ids = r.body["instances"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["id"].as_str().unwrap().to_string())
                    .collect();
                answers.push((index, ids));
                if finishing {
                    return answers;
                }
            }
        })
    };

    // The follower: long polls from 0, moving its cursor to each answer's
    // index, as roster-client's Verifier does.
    let done = done_flag.clone();
    let follower = {
        let (app, token, done) = (app.clone(), follower_token.clone(), done.clone());
        tokio::spawn(async move {
            let mut seen = BTreeSet::new();
            let mut index = 0;
            loop {
                let finishing = done.load(Ordering::SeqCst);
                let page = read_feed(&app, &token, index, if finishing { "0s" } else { "2s" }).await;
                for t in page["tokens"].as_array().unwrap() {
                    seen.insert(t["jti"].as_str().unwrap().to_string());
                }
                index = page["index"].as_i64().unwrap();
                if finishing && !page["more"].as_bool().unwrap() {
                    return (seen, index);
                }
            }
        })
    };

    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut clients = Vec::new();
    for n in 0..CLIENTS {
        let (app, tally, admin, fleet) = (app.clone(), tally.clone(), admin.clone(), fleet.clone());
        let (billing, victim) = (billing.secret.clone(), victim.secret.clone());
        clients.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                match (n + round) % 4 {
                    // A service's token, revoked by its owner.
                    0 | 1 => {
                        let r = app.client_grant("billing", &billing).await;
                        tally.lock().await.saw("client_credentials", r.status, &r.body);
                        let Some(token) = r.body["access_token"].as_str() else {
                            continue;
                        };
                        let r = app
                            .post_form("/oauth/revoke", Some(("billing", &billing)), &[("token", token)])
                            .await;
                        let mut t = tally.lock().await;
                        t.saw("revoke", r.status, &r.body);
                        if r.status == 200 {
                            t.acknowledged.insert(jti(token));
                        }
                    }
                    // A person's token, revoked by presenting it; a refresh first.
                    2 if n % 8 == 2 => {
                        let r = app.password_grant("alice", "correct horse battery").await;
                        tally.lock().await.saw("password", r.status, &r.body);
                        let Some(refresh) = r.body["refresh_token"].as_str() else {
                            continue;
                        };
                        let r = app
                            .post_form(
                                "/oauth/token",
                                None,
                                &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
                            )
                            .await;
                        tally.lock().await.saw("refresh", r.status, &r.body);
                        let Some(token) = r.body["access_token"].as_str() else {
                            continue;
                        };
                        let r = app.post_form("/oauth/revoke", None, &[("token", token)]).await;
                        let mut t = tally.lock().await;
                        t.saw("revoke", r.status, &r.body);
                        if r.status == 200 {
                            t.acknowledged.insert(jti(token));
                        }
                    }
                    // An admin creates a service and demotes it (a principal change in the feed).
                    2 => {
                        let name = format!("svc-{n}-{round}");
                        let r = app
                            .call(
                                Method::POST,
                                "/api/v1/principals",
                                Some(&admin),
                                Some(json!({"kind": "service", "name": name, "scopes": ["a", "b"]})),
                            )
                            .await;
                        tally.lock().await.saw("create", r.status, &r.body);
                        let Some(id) = r.body["id"].as_str() else { continue };
                        let r = app
                            .call(
                                Method::PATCH,
                                &format!("/api/v1/principals/{id}"),
                                Some(&admin),
                                Some(json!({"scopes": ["a"]})),
                            )
                            .await;
                        tally.lock().await.saw("demote", r.status, &r.body);
                    }
                    // Guessing another service's secret, then its real one; an instance joins.
                    _ => {
                        let id = format!("i-{n}-{round}");
                        let r = app
                            .call(
                                Method::PUT,
                                &format!("/api/v1/services/fleet/instances/{id}"),
                                Some(&fleet),
                                Some(json!({"base_url": "http://127.0.0.1:1/", "ttl_seconds": 3600})),
                            )
                            .await;
                        let index = r
                            .headers
                            .get("x-roster-index")
                            .map(|v| v.to_str().unwrap().parse::<i64>().unwrap());
                        let mut t = tally.lock().await;
                        t.saw("register", r.status, &r.body);
                        if let (200, Some(index)) = (r.status, index) {
                            t.registered.push((id, index));
                        }
                        drop(t);
                        let r = app.client_grant("victim", "not-the-secret").await;
                        tally.lock().await.saw("wrong secret", r.status, &r.body);
                        let r = app.client_grant("victim", &victim).await;
                        tally.lock().await.saw("client_credentials", r.status, &r.body);
                    }
                }
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    done_flag.store(true, Ordering::SeqCst);
    let (seen, _) = follower.await.unwrap();
    let views = watcher.await.unwrap();

    let tally = tally.lock().await;
    let server_errors: Vec<_> = tally.statuses.iter().filter(|(_, s, _)| *s >= 500).collect();
    assert!(server_errors.is_empty(), "5xx answers: {server_errors:#?}");
    assert!(
        tally.acknowledged.len() >= CLIENTS * ROUNDS / 2,
        "{}",
        tally.acknowledged.len()
    );
    let missed: Vec<_> = tally.acknowledged.difference(&seen).collect();
    assert!(
        missed.is_empty(),
        "{} of {} acknowledged revocations never reached the follower: {missed:?}",
        missed.len(),
        tally.acknowledged.len()
    );

    // The feed read from scratch is the deny list.
    let mut from_scratch = BTreeSet::new();
    let mut index = 0;
    loop {
        let page = read_feed(&app, &follower_token, index, "0s").await;
        for t in page["tokens"].as_array().unwrap() {
            from_scratch.insert(t["jti"].as_str().unwrap().to_string());
        }
        index = page["index"].as_i64().unwrap();
        if !page["more"].as_bool().unwrap() {
            break;
        }
    }
    let deny_list: BTreeSet<String> = app
        .query(|c| {
            use diesel::prelude::*;
            use roster::db::schema::revoked_tokens::dsl::*;
            Ok(revoked_tokens.select(jti).load::<String>(c)?)
        })
        .await
        .into_iter()
        .collect();
    assert_eq!(from_scratch, deny_list);
    assert_eq!(deny_list, tally.acknowledged);

    // No view handed out at index i lacks a registration acknowledged at or below i.
    assert!(
        tally.registered.len() >= CLIENTS * ROUNDS / 8,
        "{}",
        tally.registered.len()
    );
    for (index, ids) in &views {
        let missing: Vec<_> = tally
            .registered
            .iter()
            .filter(|(id, at)| at <= index && !ids.contains(id))
            .collect();
        assert!(missing.is_empty(), "the view at index {index} lacks {missing:?}");
    }
    let last: &BTreeSet<String> = &views.last().unwrap().1;
    let all: BTreeSet<String> = tally.registered.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(last, &all, "the watcher's last view");
}
