//! `stripe-sim`: serve a generated Stripe world over Stripe's HTTP API.
//!
//! ```text
//! cargo run -p ledgerline-stripe-sim --bin stripe-sim -- --facts 100000 --port 12111
//! curl -H 'Authorization: Bearer sk_test_ledgerlinesim0000000000000000' \
//!      'http://127.0.0.1:12111/v1/events?limit=3'
//! ```
//!
//! Flags are listed by `--help`; every knob of `SimConfig` has one.

use std::net::{IpAddr, SocketAddr};

use clap::Parser;
use ledgerline_stripe_sim::http::{
    ApiKey, ClockConfig, DEFAULT_LIVE_KEY, DEFAULT_TEST_KEY, Faults, Permission, RateLimits,
    SimConfig, SimServer, WebhookConfig,
};
use ledgerline_stripe_sim::world::{World, WorldConfig};
use tokio_util::sync::CancellationToken;

/// A deterministic, stateful Stripe account on loopback.
#[derive(Debug, Parser)]
#[command(name = "stripe-sim", version)]
struct Args {
    /// Seed of the world and of every random choice of the server.
    #[arg(long, default_value_t = 7, env = "STRIPE_SIM_SEED")]
    seed: u64,
    /// Size of the world: events + balance transactions to generate.
    #[arg(long, default_value_t = 10_000, env = "STRIPE_SIM_FACTS")]
    facts: u64,
    /// Connected accounts (Connect).
    #[arg(long, default_value_t = 2)]
    connected_accounts: u32,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port (0 picks a free one; the chosen address is printed).
    #[arg(long, default_value_t = 12111, env = "STRIPE_SIM_PORT")]
    port: u16,
    /// Sim-now at start: `end` (the whole history visible), `begin`, or unix seconds.
    #[arg(long, default_value = "end")]
    now: String,
    /// Simulated seconds per wall second (0: time moves only by `POST /_sim/advance`).
    #[arg(long, default_value_t = 0)]
    speed: u32,
    /// Requests per second per live key (0 = unlimited).
    #[arg(long, default_value_t = 100)]
    rate_live: u32,
    /// Requests per second per test key (0 = unlimited).
    #[arg(long, default_value_t = 25)]
    rate_test: u32,
    /// Extra secret key (`sk_test_…`/`sk_live_…`); repeatable. The two default keys stay.
    #[arg(long = "key")]
    keys: Vec<String>,
    /// Restricted key with its permissions: `rk_test_…=rak_event_read,rak_invoice_read`;
    /// repeatable.
    #[arg(long = "restricted-key")]
    restricted_keys: Vec<String>,
    /// Share of /v1 requests answered 500, in parts per million.
    #[arg(long, default_value_t = 0)]
    fault_5xx_ppm: u32,
    /// Share of /v1 requests whose connection is dropped (ppm).
    #[arg(long, default_value_t = 0)]
    fault_drop_ppm: u32,
    /// Share of /v1 requests answered slowly (ppm).
    #[arg(long, default_value_t = 0)]
    fault_slow_ppm: u32,
    /// Delay of a slow answer (ms).
    #[arg(long, default_value_t = 2_000)]
    fault_slow_ms: u32,
    /// Share of POSTs answered 429 lock_timeout (ppm).
    #[arg(long, default_value_t = 0)]
    fault_lock_timeout_ppm: u32,
    /// Share of webhook deliveries sent twice (ppm).
    #[arg(long, default_value_t = 0)]
    webhook_duplicate_ppm: u32,
    /// Share of webhook deliveries never attempted (ppm).
    #[arg(long, default_value_t = 0)]
    webhook_drop_ppm: u32,
    /// Share of webhook deliveries held back so later ones overtake them (ppm).
    #[arg(long, default_value_t = 0)]
    webhook_reorder_ppm: u32,
    /// Random extra delay of each webhook delivery, up to this (ms).
    #[arg(long, default_value_t = 0)]
    webhook_jitter_ms: u32,
    /// Attempts per webhook delivery.
    #[arg(long, default_value_t = 4)]
    webhook_max_attempts: u32,
    /// First retry backoff of a webhook delivery (ms), doubling.
    #[arg(long, default_value_t = 500)]
    webhook_retry_base_ms: u32,
}

fn keys(args: &Args) -> Result<Vec<ApiKey>, String> {
    let mut keys = vec![
        ApiKey::secret(DEFAULT_TEST_KEY),
        ApiKey::secret(DEFAULT_LIVE_KEY),
    ];
    keys.extend(args.keys.iter().map(|k| ApiKey::secret(k)));
    for spec in &args.restricted_keys {
        let (key, perms) = spec
            .split_once('=')
            .ok_or_else(|| format!("--restricted-key wants KEY=PERM,PERM: {spec}"))?;
        let perms = perms
            .split(',')
            .filter(|p| !p.is_empty())
            .map(str::parse::<Permission>)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        keys.push(ApiKey::restricted(key, perms));
    }
    Ok(keys)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let world = World::generate(&WorldConfig {
        connected_accounts: args.connected_accounts,
        ..WorldConfig::with_facts(args.seed, args.facts)
    });
    let objects = world.objects;
    let first = objects.iter().map(|o| o.created).min().unwrap_or(0);
    let last = objects.iter().map(|o| o.created).max().unwrap_or(0);
    let now = match args.now.as_str() {
        "end" => last + 1,
        "begin" => first,
        t => t.parse()?,
    };
    let config = SimConfig {
        addr: SocketAddr::new(args.host, args.port),
        seed: args.seed,
        keys: keys(&args)?,
        rate_limits: RateLimits {
            live_per_sec: args.rate_live,
            test_per_sec: args.rate_test,
        },
        clock: ClockConfig {
            start: Some(now),
            speed: args.speed,
        },
        faults: Faults {
            error_5xx_ppm: args.fault_5xx_ppm,
            slow_ppm: args.fault_slow_ppm,
            slow_ms: args.fault_slow_ms,
            drop_ppm: args.fault_drop_ppm,
            lock_timeout_ppm: args.fault_lock_timeout_ppm,
        },
        webhooks: WebhookConfig {
            duplicate_ppm: args.webhook_duplicate_ppm,
            drop_ppm: args.webhook_drop_ppm,
            reorder_ppm: args.webhook_reorder_ppm,
            jitter_ms: args.webhook_jitter_ms,
            max_attempts: args.webhook_max_attempts,
            retry_base_ms: args.webhook_retry_base_ms,
            ..WebhookConfig::default()
        },
        ..SimConfig::default()
    };
    let n = objects.len();
    let shutdown = CancellationToken::new();
    let server = SimServer::start_with(config, objects, shutdown.clone()).await?;
    println!(
        "stripe-sim: {n} objects ({first}..{last}), sim-now {now}, listening on {} (test key {DEFAULT_TEST_KEY})",
        server.base_url()
    );
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = shutdown.cancelled() => {}
    }
    server.shutdown().await;
    Ok(())
}
