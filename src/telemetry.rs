//! Prometheus metrics: one recorder per process (the `metrics` facade with
//! `metrics-exporter-prometheus`), the names Roster records, and the text
//! served at `/metrics` on `--metrics-listen`. Without a recorder, every
//! recording is a no-op.

use std::sync::OnceLock;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Seconds: the buckets of the request latency histogram.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Install the process's recorder (once; later calls return the same handle).
pub fn install() -> Result<&'static PrometheusHandle, String> {
    if let Some(h) = HANDLE.get() {
        return Ok(h);
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(HTTP_SECONDS.to_string()),
            LATENCY_BUCKETS,
        )
        .map_err(|e| format!("metrics: {e}"))?
        .install_recorder()
        .map_err(|e| format!("metrics: {e}"))?;
    describe();
    Ok(HANDLE.get_or_init(|| handle))
}

/// Is a recorder installed? Gauges that cost a query are read only then.
pub fn enabled() -> bool {
    HANDLE.get().is_some()
}

/// The Prometheus text format, or `None` without a recorder.
pub fn render() -> Option<String> {
    HANDLE.get().map(PrometheusHandle::render)
}

/// Histogram upkeep, on the background tick.
pub fn upkeep() {
    if let Some(h) = HANDLE.get() {
        h.run_upkeep();
    }
}

pub const HTTP_REQUESTS: &str = "roster_http_requests_total";
pub const HTTP_SECONDS: &str = "roster_http_request_duration_seconds";
pub const TOKENS_ISSUED: &str = "roster_tokens_issued_total";
pub const TOKEN_FAILURES: &str = "roster_token_failures_total";
pub const THROTTLED: &str = "roster_throttle_decisions_total";
pub const KEY_AGE: &str = "roster_signing_key_age_seconds";
pub const KEY_NEXT_ROTATION: &str = "roster_signing_key_next_rotation_seconds";
pub const KEYS: &str = "roster_signing_keys";
pub const INSTANCES: &str = "roster_registry_instances";
pub const TRANSITIONS: &str = "roster_registry_transitions_total";
pub const HEALTH_ERRORS: &str = "roster_registry_health_check_errors_total";
pub const MANIFEST_ERRORS: &str = "roster_registry_manifest_errors_total";
pub const LONG_POLLS: &str = "roster_long_polls_waiting";
pub const CHANGE_INDEX: &str = "roster_registry_change_index";
pub const CHANGE_INDEX_LAG: &str = "roster_registry_change_index_lag";
pub const DB_IN_USE: &str = "roster_db_connections_in_use";
pub const DB_WAITING: &str = "roster_db_tasks_waiting";
pub const ARGON_WAITING: &str = "roster_argon2_queue_depth";
pub const CONNECTIONS_OPEN: &str = "roster_connections_open";
pub const CONNECTIONS_REFUSED: &str = "roster_connections_refused_total";
pub const CONNECTIONS_TIMED_OUT: &str = "roster_connections_timed_out_total";
pub const INTROSPECTIONS: &str = "roster_introspections_total";
pub const LIVE_VIEW: &str = "roster_live_view_entries";

fn describe() {
    describe_counter!(
        INTROSPECTIONS,
        "Access tokens introspected, by where their liveness came from (memory: the live view; database)."
    );
    describe_gauge!(
        LIVE_VIEW,
        "What the live view holds, by kind (principals, revoked_tokens)."
    );
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route template, method and status."
    );
    describe_histogram!(
        HTTP_SECONDS,
        metrics::Unit::Seconds,
        "HTTP request latency, by route template and method."
    );
    describe_counter!(
        TOKENS_ISSUED,
        "Access tokens issued by the token endpoint, by grant type."
    );
    describe_counter!(
        TOKEN_FAILURES,
        "Refused token requests (failed logins), by grant type and OAuth error code."
    );
    describe_counter!(
        THROTTLED,
        "Logins refused by the throttle (429 slow_down), by grant type."
    );
    describe_gauge!(KEY_AGE, metrics::Unit::Seconds, "Age of the signing key that signs.");
    describe_gauge!(
        KEY_NEXT_ROTATION,
        metrics::Unit::Seconds,
        "Seconds until the next key rotation is due."
    );
    describe_gauge!(KEYS, "Signing keys by phase (active, next, retired).");
    describe_gauge!(INSTANCES, "Registry instances by state (up, down, draining).");
    describe_counter!(
        TRANSITIONS,
        "Registry status transitions, of instances and services, by the state entered."
    );
    describe_counter!(HEALTH_ERRORS, "Failed health checks, by coarse reason.");
    describe_counter!(MANIFEST_ERRORS, "Failed or invalid manifest pulls, by coarse reason.");
    describe_gauge!(
        LONG_POLLS,
        "Blocking queries waiting now, by feed (registry, revocations)."
    );
    describe_gauge!(CHANGE_INDEX, "The registry change index this instance has seen.");
    describe_gauge!(
        CHANGE_INDEX_LAG,
        "How far this instance's change index was behind the database at the tick."
    );
    describe_gauge!(DB_IN_USE, "Database connections in use now.");
    describe_gauge!(DB_WAITING, "Database tasks waiting for a connection now.");
    describe_gauge!(ARGON_WAITING, "Password checks waiting for an argon2 thread now.");
    describe_gauge!(CONNECTIONS_OPEN, "Client connections open now.");
    describe_counter!(
        CONNECTIONS_REFUSED,
        "Client connections turned away (per_peer, capacity) or shed to make room (shed_stalled)."
    );
    describe_counter!(
        CONNECTIONS_TIMED_OUT,
        "Client connections closed because their request, drain or keep-alive deadline passed."
    );
}

/// A method as a label: the standard ones, else `other`, so that a client
/// inventing methods cannot grow the label set.
fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN.into_iter().find(|m| *m == method).unwrap_or("other")
}

/// One HTTP answer.
pub fn http_request(route: &str, method: &str, status: u16, seconds: f64) {
    let (route, method) = (route.to_string(), method_label(method));
    counter!(HTTP_REQUESTS, "route" => route.clone(), "method" => method, "status" => status.to_string()).increment(1);
    histogram!(HTTP_SECONDS, "route" => route, "method" => method).record(seconds);
}

/// The outcome of one token request.
pub fn token(grant: &'static str, outcome: Result<(), &'static str>) {
    match outcome {
        Ok(()) => counter!(TOKENS_ISSUED, "grant_type" => grant).increment(1),
        Err("slow_down") => counter!(THROTTLED, "grant_type" => grant, "decision" => "refused").increment(1),
        Err(code) => counter!(TOKEN_FAILURES, "grant_type" => grant, "reason" => code).increment(1),
    }
}

/// One access token introspected; `from` is `memory` or `database`.
pub fn introspection(from: &'static str) {
    counter!(INTROSPECTIONS, "answered_from" => from).increment(1);
}

/// The live view's size, at the tick.
pub fn live_view(principals: usize, revoked_tokens: usize) {
    gauge!(LIVE_VIEW, "kind" => "principals").set(principals as f64);
    gauge!(LIVE_VIEW, "kind" => "revoked_tokens").set(revoked_tokens as f64);
}

/// A status transition in the registry.
pub fn transition(to: &str) {
    counter!(TRANSITIONS, "to" => to.to_string()).increment(1);
}

pub fn health_error(reason: &str) {
    counter!(HEALTH_ERRORS, "reason" => reason.to_string()).increment(1);
}

pub fn manifest_error(reason: &str) {
    counter!(MANIFEST_ERRORS, "reason" => reason.to_string()).increment(1);
}

/// The signing keys at the tick.
pub fn keys(age_seconds: f64, next_rotation_seconds: f64, by_phase: &[(&'static str, usize)]) {
    gauge!(KEY_AGE).set(age_seconds);
    gauge!(KEY_NEXT_ROTATION).set(next_rotation_seconds);
    for (phase, n) in by_phase {
        gauge!(KEYS, "phase" => *phase).set(*n as f64);
    }
}

/// The registry at the tick: instances by state (up and serving, down,
/// up but draining), the change index and how far behind it was.
pub fn registry_index(instances: &[(&'static str, i64)], index: i64, lag: i64, waiting: usize) {
    for (state, n) in instances {
        gauge!(INSTANCES, "state" => *state).set(*n as f64);
    }
    gauge!(CHANGE_INDEX).set(index as f64);
    gauge!(CHANGE_INDEX_LAG).set(lag as f64);
    gauge!(LONG_POLLS, "feed" => "registry").set(waiting as f64);
}

/// Revocation-feed long polls waiting now.
pub fn revocation_waiters(waiting: usize) {
    gauge!(LONG_POLLS, "feed" => "revocations").set(waiting as f64);
}

/// The pools at the tick.
pub fn pools(db_in_use: usize, db_waiting: usize, argon_waiting: usize) {
    gauge!(DB_IN_USE).set(db_in_use as f64);
    gauge!(DB_WAITING).set(db_waiting as f64);
    gauge!(ARGON_WAITING).set(argon_waiting as f64);
}

/// Client connections open now.
pub fn connections_open(n: usize) {
    gauge!(CONNECTIONS_OPEN).set(n as f64);
}

/// A connection turned away (`per_peer`, `capacity`) or shed (`shed_stalled`).
pub fn connection_refused(reason: &'static str) {
    counter!(CONNECTIONS_REFUSED, "reason" => reason).increment(1);
}

/// A connection closed because its deadline passed.
pub fn connection_timed_out() {
    counter!(CONNECTIONS_TIMED_OUT).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_methods_share_one_label() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("PATCH"), "PATCH");
        assert_eq!(method_label("BREW"), "other");
        assert_eq!(method_label("get"), "other");
    }
}
