//! Both migration folders hold the same versions.

use std::collections::BTreeSet;
use std::path::Path;

fn versions(dir: &str) -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(dir);
    std::fs::read_dir(&root)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            assert!(e.path().join("up.sql").exists(), "{:?} lacks up.sql", e.path());
            assert!(e.path().join("down.sql").exists(), "{:?} lacks down.sql", e.path());
            e.file_name().to_string_lossy().into_owned()
        })
        .collect()
}

#[test]
fn both_backends_have_the_same_migration_versions() {
    let sqlite = versions("sqlite");
    let postgres = versions("postgres");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, postgres);
    let (embedded_sqlite, embedded_postgres) = roster::db::embedded_versions();
    assert_eq!(embedded_sqlite.len(), sqlite.len());
    assert_eq!(embedded_sqlite, embedded_postgres);
}

/// A registration made before the registry's second round (migration
/// 000011) becomes the service's instance `default`, with its manifest kept
/// on the service.
mod registrations_become_the_instance_default {
    use diesel::prelude::*;
    use diesel::sql_types::{Integer, Nullable, Text};
    use diesel_migrations::{FileBasedMigrations, MigrationHarness};

    /// The last version of the first round (dashes dropped, as diesel may).
    const BEFORE: &str = "20261125000010";

    #[derive(QueryableByName, Debug, PartialEq)]
    struct Row {
        #[diesel(sql_type = Text)]
        instance_id: String,
        #[diesel(sql_type = Text)]
        base_url: String,
        #[diesel(sql_type = Nullable<Text>)]
        health_url: Option<String>,
        #[diesel(sql_type = Text)]
        status: String,
        #[diesel(sql_type = Integer)]
        ttl_seconds: i32,
        #[diesel(sql_type = Text)]
        service_status: String,
        #[diesel(sql_type = Nullable<Text>)]
        manifest: Option<String>,
    }

    macro_rules! upgrade {
        ($conn:expr, $dir:expr) => {{
            let conn = $conn;
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join($dir);
            let source = FileBasedMigrations::from_path(&root).unwrap();
            loop {
                let applied = conn.run_next_migration(source.clone()).unwrap();
                if applied.to_string().replace('-', "").as_str() >= BEFORE {
                    break;
                }
            }
            for q in [
                "INSERT INTO principals (id, kind, name, status, created_at, updated_at) \
                 VALUES ('p1', 'service', 'billing', 'active', '2026-11-20 10:00:00', '2026-11-20 10:00:00')",
                "INSERT INTO service_registrations (principal_id, base_url, health_url, modules_url, ttl_seconds, \
                 status, status_changed_at, last_seen, lease_expires_at, manifest, registered_at, updated_at) \
                 VALUES ('p1', 'http://10.0.0.5:8080/', 'http://10.0.0.5:8080/health', NULL, 60, 'up', \
                 '2026-11-20 10:00:00', '2026-11-20 10:05:00', '2026-11-20 10:06:00', '{\"code\":\"billing\"}', \
                 '2026-11-20 10:00:00', '2026-11-20 10:05:00')",
            ] {
                diesel::sql_query(q).execute(conn).unwrap();
            }
            let new = conn.run_pending_migrations(source.clone()).unwrap().len();
            assert!(new > 0);
            let rows: Vec<Row> = diesel::sql_query(
                "SELECT i.instance_id, i.base_url, i.health_url, i.status, i.ttl_seconds, \
                 s.status AS service_status, s.manifest \
                 FROM registry_instances i JOIN registry_services s ON s.principal_id = i.principal_id",
            )
            .load(conn)
            .unwrap();
            assert_eq!(
                rows,
                [Row {
                    instance_id: "default".into(),
                    base_url: "http://10.0.0.5:8080/".into(),
                    health_url: Some("http://10.0.0.5:8080/health".into()),
                    status: "up".into(),
                    ttl_seconds: 60,
                    service_status: "up".into(),
                    manifest: Some("{\"code\":\"billing\"}".into()),
                }]
            );
            // And the way back down keeps it.
            for _ in 0..new {
                conn.revert_last_migration(source.clone()).unwrap();
            }
            #[derive(QueryableByName)]
            struct Back {
                #[diesel(sql_type = Text)]
                base_url: String,
            }
            let back: Vec<Back> = diesel::sql_query("SELECT base_url FROM service_registrations")
                .load(conn)
                .unwrap();
            assert_eq!(back.len(), 1);
            assert_eq!(back[0].base_url, "http://10.0.0.5:8080/");
        }};
    }

    #[test]
    fn sqlite() {
        let db = crate::support::TestDb::new(crate::support::Backend::Sqlite);
        let mut conn = SqliteConnection::establish(db.url.trim_start_matches("sqlite://")).unwrap();
        upgrade!(&mut conn, "sqlite");
    }

    #[test]
    #[cfg_attr(
        not(roster_test_postgres),
        ignore = "PostgreSQL half: set TEST_DATABASE_URL (see README)"
    )]
    fn postgres() {
        let db = crate::support::TestDb::new(crate::support::Backend::Postgres);
        let mut conn = PgConnection::establish(&db.url).unwrap();
        upgrade!(&mut conn, "postgres");
    }
}

/// No migration needs a dialect of its own yet: the two folders hold the
/// same files, byte for byte, so that they cannot drift apart unnoticed.
/// (A migration that does need one makes this test name it.)
#[test]
fn both_backends_run_the_same_sql() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut differ = Vec::new();
    for version in versions("postgres") {
        for file in ["up.sql", "down.sql"] {
            let pg = std::fs::read(root.join("postgres").join(&version).join(file)).unwrap();
            let lite = std::fs::read(root.join("sqlite").join(&version).join(file)).unwrap();
            if pg != lite {
                differ.push(format!("{version}/{file}"));
            }
        }
    }
    assert!(differ.is_empty(), "the backends' migrations differ: {differ:?}");
}
