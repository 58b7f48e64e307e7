//! `ledgerline-ingester`: the thin binary over [`ledgerline_ingester::run`].

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use ledgerline_bus::{KafkaConfig, Topics};
use ledgerline_ingester::{AccountConfig, IngesterConfig};
use ledgerline_stripe::{ApiKey, ClientConfig, WebhookSecret};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(about = "Streams every Stripe event and balance transaction into Kafka")]
struct Args {
    /// Stripe secret or restricted key.
    #[arg(long, env = "STRIPE_API_KEY", hide_env_values = true)]
    stripe_api_key: String,
    /// The platform account id records are keyed by (`acct_…`).
    #[arg(long, env = "LEDGERLINE_STRIPE_ACCOUNT")]
    stripe_account: String,
    #[arg(long, env = "LEDGERLINE_STRIPE_BASE_URL", default_value = ledgerline_stripe::client::DEFAULT_BASE_URL)]
    stripe_base_url: String,
    #[arg(long, env = "LEDGERLINE_STRIPE_VERSION", default_value = ledgerline_stripe::DEFAULT_STRIPE_VERSION)]
    stripe_version: String,
    /// Client-side requests per second (default: 80 live, 20 test).
    #[arg(long, env = "LEDGERLINE_STRIPE_RATE")]
    stripe_rate: Option<u32>,
    /// Webhook signing secrets (comma-separated; two during a rotation).
    #[arg(
        long,
        env = "LEDGERLINE_WEBHOOK_SECRETS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    webhook_secrets: Vec<String>,
    /// Register this URL as the webhook endpoint at start (the secret is kept in the database).
    #[arg(long, env = "LEDGERLINE_REGISTER_WEBHOOK_URL")]
    register_webhook_url: Option<String>,
    /// Read every connected account too.
    #[arg(long, env = "LEDGERLINE_CONNECT")]
    connect: bool,
    #[arg(long, env = "LEDGERLINE_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    #[arg(long, env = "KAFKA_BOOTSTRAP_SERVERS")]
    kafka: String,
    #[arg(long, env = "LEDGERLINE_TOPIC_PREFIX", default_value = "")]
    topic_prefix: String,
    #[arg(long, env = "LEDGERLINE_PARTITIONS", default_value_t = 6)]
    partitions: i32,
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    #[arg(long, env = "LEDGERLINE_POLL_SECS", default_value_t = 5)]
    poll_secs: u64,
    /// Backfill history (resumable) before polling.
    #[arg(long, env = "LEDGERLINE_BACKFILL")]
    backfill: bool,
    /// Event types to keep (`invoice.*`), comma-separated.
    #[arg(long, env = "LEDGERLINE_INCLUDE_TYPES", value_delimiter = ',')]
    include_types: Vec<String>,
    #[arg(long, env = "LEDGERLINE_EXCLUDE_TYPES", value_delimiter = ',')]
    exclude_types: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let key = ApiKey::parse(args.stripe_api_key).context("STRIPE_API_KEY")?;
    let mut client = ClientConfig::new(args.stripe_base_url, key);
    client.stripe_version = args.stripe_version;
    client.requests_per_sec = args.stripe_rate;
    let account = AccountConfig {
        name: "default".into(),
        client,
        platform_account: args.stripe_account,
        connected_accounts: Vec::new(),
        discover_connected: args.connect,
        webhook_secrets: args
            .webhook_secrets
            .into_iter()
            .map(WebhookSecret::new)
            .collect(),
        register_webhook_url: args.register_webhook_url,
    };
    let mut config = IngesterConfig::new(
        KafkaConfig::new(args.kafka, "ledgerline-ingester"),
        args.database_url,
        vec![account],
    );
    config.listen = args.listen;
    config.topics = Topics::with_prefix(args.topic_prefix);
    config.partitions = args.partitions;
    config.poll_interval = Duration::from_secs(args.poll_secs);
    config.backfill = args.backfill;
    config.filters.include_event_types = args.include_types;
    config.filters.exclude_event_types = args.exclude_types;
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        signal.cancel();
    });
    ledgerline_ingester::run(config, shutdown).await?;
    Ok(())
}
