// Rebuild when a migration is added or changed, so `embed_migrations!` picks it up.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
