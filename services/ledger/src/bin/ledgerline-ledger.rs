//! The ledger service binary: configuration from flags and `LEDGERLINE_*` environment.

use std::net::SocketAddr;

// mimalloc: see the workspace Cargo.toml (less CPU than glibc's malloc in the ledger).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use ledgerline_bus::{KafkaConfig, Topics};
use ledgerline_ledger::{Config, Role};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(about = "Ledgerline ledger: Stripe facts from Kafka into PostgreSQL, exactly once")]
struct Args {
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    #[arg(long, env = "KAFKA_BOOTSTRAP_SERVERS")]
    kafka: String,
    #[arg(long, env = "LEDGERLINE_TOPIC_PREFIX", default_value = "")]
    topic_prefix: String,
    #[arg(long, env = "LEDGERLINE_GROUP", default_value = "ledgerline-ledger")]
    group: String,
    #[arg(long, env = "LEDGERLINE_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    grpc_addr: SocketAddr,
    /// Where `GET /metrics` (Prometheus text) is served; `off` serves none.
    #[arg(
        long,
        env = "LEDGERLINE_METRICS_ADDR",
        default_value = "127.0.0.1:9466"
    )]
    metrics_addr: String,
    /// `token=role` pairs (roles: auditor, admin), comma separated.
    #[arg(
        long,
        env = "LEDGERLINE_TOKENS",
        default_value = "",
        value_delimiter = ','
    )]
    tokens: Vec<String>,
    /// Extra librdkafka settings, `key=value`, comma separated (e.g. `session.timeout.ms=6000`).
    #[arg(
        long,
        env = "LEDGERLINE_KAFKA_OPTIONS",
        default_value = "",
        value_delimiter = ','
    )]
    kafka_options: Vec<String>,
    /// Partitions of the topics created at start when missing.
    #[arg(long, env = "LEDGERLINE_PARTITIONS", default_value_t = 6)]
    partitions: i32,
    /// Facts to train the raw-fact zstd dictionary on when the database has none (0: never;
    /// stored facts are then compressed without one, ~3.5× larger).
    #[arg(long, env = "LEDGERLINE_RAW_DICTIONARY_SAMPLES", default_value_t = ledgerline_ledger::raw::DICTIONARY_SAMPLES)]
    raw_dictionary_samples: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let kafka = args
        .kafka_options
        .iter()
        .filter_map(|o| o.split_once('='))
        .fold(
            KafkaConfig::new(args.kafka, "ledgerline-ledger"),
            |k, (key, value)| k.with(key, value),
        );
    let mut config = Config::new(args.database_url, kafka);
    config.partitions = args.partitions;
    config.raw_dictionary_samples = args.raw_dictionary_samples;
    config.topics = Topics::with_prefix(args.topic_prefix);
    config.group_id = args.group;
    config.grpc_addr = args.grpc_addr;
    config.metrics_addr = match args.metrics_addr.as_str() {
        "off" => None,
        addr => Some(addr.parse().map_err(|e| {
            anyhow::anyhow!("--metrics-addr {addr:?} is not an address (host:port) or `off`: {e}")
        })?),
    };
    config.tokens = args
        .tokens
        .iter()
        .filter(|t| !t.is_empty())
        .filter_map(|t| t.split_once('='))
        .map(|(t, r)| {
            let role = match r {
                "auditor" => Role::Auditor,
                "admin" => Role::Admin,
                _ => Role::Other,
            };
            (t.to_owned(), role)
        })
        .collect();
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    ledgerline_ledger::run(config, shutdown).await?;
    Ok(())
}
