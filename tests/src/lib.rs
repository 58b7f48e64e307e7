//! Shared helpers for Ledgerline's end-to-end tests.
//!
//! The tests talk to the real Kafka broker and PostgreSQL server that
//! `scripts/test-services up` starts. Their addresses come from the environment; a missing
//! variable fails the test with instructions — it never skips it.

pub mod own_broker;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

/// The embedded migrations of `migrations/`, as every service runs them at start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

fn required_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "{name} is not set: these tests need the real services. Run `scripts/test` \
             (or `eval \"$(scripts/test-services up)\"` before `cargo test`)."
        ),
    }
}

/// grpcurl, which `scripts/install-deps` installs into the cache (`LEDGERLINE_CACHE_DIR`, or
/// `.cache` of the checkout).
pub fn grpcurl_binary() -> std::path::PathBuf {
    let cache = std::env::var("LEDGERLINE_CACHE_DIR").map_or_else(
        |_| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache"),
        std::path::PathBuf::from,
    );
    let bin = cache.join("bin/grpcurl");
    assert!(
        bin.exists(),
        "{} is missing: run scripts/install-deps",
        bin.display()
    );
    bin
}

/// `KAFKA_BOOTSTRAP_SERVERS` of the running test broker.
pub fn kafka_bootstrap_servers() -> String {
    required_env("KAFKA_BOOTSTRAP_SERVERS")
}

/// `DATABASE_URL` of the running test PostgreSQL (its `ledgerline` database).
pub fn database_url() -> String {
    required_env("DATABASE_URL")
}

/// A name no other test of this run uses: topics, groups and databases are never shared.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates an empty database of its own for one test and returns a pool on it.
pub async fn fresh_database(prefix: &str) -> Result<(PgPool, String), sqlx::Error> {
    let admin_options: PgConnectOptions = database_url().parse()?;
    let name = unique_name(prefix).to_lowercase();
    let mut admin = admin_options.connect().await?;
    // The name is ours (letters, digits, underscores): safe to splice into DDL.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(admin_options.database(&name))
        .await?;
    Ok((pool, name))
}
