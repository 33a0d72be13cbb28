//! Build-time settings: embedded migrations, and which outside services the
//! test suite may use.
fn main() {
    // Rebuild when a migration is added or changed, so `embed_migrations!` picks it up.
    println!("cargo:rerun-if-changed=migrations");
    // Tests that need an outside service are compiled as ignored unless the
    // build was told where to find it, so that a test that did not run shows
    // as ignored in the runner's summary, never as ok:
    // - `roster_test_postgres`: TEST_DATABASE_URL names a PostgreSQL server;
    // - `roster_test_podman`: ROSTER_TEST_PODMAN is set (Podman and busybox installed).
    println!("cargo::rustc-check-cfg=cfg(roster_test_postgres)");
    println!("cargo::rustc-check-cfg=cfg(roster_test_podman)");
    for (var, cfg) in [
        ("TEST_DATABASE_URL", "roster_test_postgres"),
        ("ROSTER_TEST_PODMAN", "roster_test_podman"),
    ] {
        println!("cargo:rerun-if-env-changed={var}");
        if std::env::var_os(var).is_some_and(|v| !v.is_empty()) {
            println!("cargo:rustc-cfg={cfg}");
        }
    }
}
