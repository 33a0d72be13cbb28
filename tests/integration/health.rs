//! Liveness, readiness and JSON errors over real HTTP.

use crate::on_both_backends;
use crate::support::{Backend, TestApp};

on_both_backends!(readyz_reports_the_database, unknown_routes_get_json_404);

async fn readyz_reports_the_database(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, body) = app.get_json("/healthz").await;
    assert_eq!((status, &body["status"]), (200, &serde_json::json!("ok")));
    let (status, body) = app.get_json("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");

    app.db.destroy();

    let (status, body) = app.get_json("/readyz").await;
    assert_eq!(status, 503, "{body}");
    // A short reason, never the driver's text (hosts, users, libpq's words).
    let (database, reason) = match backend {
        Backend::Sqlite => ("sqlite", "the SQLite file is gone"),
        Backend::Postgres => ("postgres", "the database does not answer"),
    };
    assert_eq!(
        body,
        serde_json::json!({"status": "unavailable", "database": database, "keys_age_seconds": body["keys_age_seconds"],
                           "error": "database_unavailable", "error_description": reason})
    );
    // Liveness does not depend on the database.
    assert_eq!(app.get_json("/healthz").await.0, 200);
}

async fn unknown_routes_get_json_404(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let resp = app.client.get(app.url("/no/such/route")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
}
