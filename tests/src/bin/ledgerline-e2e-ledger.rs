//! A ledger process for the end-to-end test (`tests/tests/e2e.rs`), which SIGKILLs it: the
//! ledger library's `run` with the ledger binary's environment (`DATABASE_URL`,
//! `KAFKA_BOOTSTRAP_SERVERS`, `LEDGERLINE_TOPIC_PREFIX`, `LEDGERLINE_GROUP`,
//! `LEDGERLINE_PARTITIONS`, `LEDGERLINE_KAFKA_OPTIONS`) plus `LEDGERLINE_BATCH_MAX_RECORDS`,
//! so that a small world still takes many batches and a kill can land between them.
//! Built by cargo with the tests (`CARGO_BIN_EXE_ledgerline-e2e-ledger`).

use ledgerline_bus::{KafkaConfig, Topics};
use ledgerline_ledger::Config;
use tokio_util::sync::CancellationToken;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn env(name: &str) -> Result<String, Error> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let kafka = env_or("LEDGERLINE_KAFKA_OPTIONS", "")
        .split(',')
        .filter_map(|o| o.split_once('='))
        .fold(
            KafkaConfig::new(env("KAFKA_BOOTSTRAP_SERVERS")?, "ledgerline-e2e-ledger"),
            |k, (key, value)| k.with(key, value),
        );
    let mut config = Config::new(env("DATABASE_URL")?, kafka);
    config.topics = Topics::with_prefix(env_or("LEDGERLINE_TOPIC_PREFIX", ""));
    config.group_id = env("LEDGERLINE_GROUP")?;
    config.partitions = env_or("LEDGERLINE_PARTITIONS", "6").parse()?;
    config.batch.max_records = env_or("LEDGERLINE_BATCH_MAX_RECORDS", "5000").parse()?;
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    ledgerline_ledger::run(config, shutdown).await?;
    Ok(())
}
