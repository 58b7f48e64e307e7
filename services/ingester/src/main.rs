//! `ledgerline-ingester`: the thin binary over [`ledgerline_ingester::run`]. Configuration:
//! `--config path` (TOML, see `ingester.example.toml`) with environment overrides, or the
//! single-account environment alone (`STRIPE_API_KEY`, `LEDGERLINE_STRIPE_ACCOUNT`, …).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use ledgerline_ingester::config::{self, FileConfig};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(about = "Streams every Stripe event and balance transaction into Kafka")]
struct Args {
    /// The TOML configuration (see ingester.example.toml); secrets are referenced, never inlined.
    #[arg(long, env = "LEDGERLINE_CONFIG", hide_env_values = true)]
    config: Option<PathBuf>,
    /// Backfill history (resumable) before polling (same as `backfill = true`).
    #[arg(long)]
    backfill: bool,
    /// Validate the configuration (secrets resolved, never printed) and exit.
    #[arg(long)]
    check_config: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let file = match &args.config {
        Some(path) => config::read_file(path)?,
        None => FileConfig::default(),
    };
    let env = |k: &str| std::env::var(k).ok();
    let mut cfg = config::resolve(file, &env).with_context(|| match &args.config {
        Some(p) => format!("configuration {}", p.display()),
        None => "configuration (environment)".to_owned(),
    })?;
    if args.backfill {
        cfg.backfill = true;
    }
    if args.check_config {
        for a in &cfg.accounts {
            println!(
                "account {}: {} ({} mode, {} webhook secret(s), {} connected account(s){})",
                a.name,
                a.platform_account,
                a.client.key.mode().as_str(),
                a.webhook_secrets.len(),
                a.connected_accounts.len(),
                if a.discover_connected {
                    " + discovered"
                } else {
                    ""
                }
            );
        }
        println!("configuration ok");
        return Ok(());
    }
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
    ledgerline_ingester::run(cfg, shutdown).await?;
    Ok(())
}
