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
