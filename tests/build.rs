//! `sqlx::migrate!` embeds `migrations/` at compile time (`ledgerline_tests::MIGRATOR`);
//! without this, a new migration file is not picked up by an incremental build.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
