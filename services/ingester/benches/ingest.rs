//! Ingester benchmarks against stripe-sim, the real Kafka broker and PostgreSQL
//! (`eval "$(scripts/test-services env)"` first).
//!
//! ```sh
//! cargo bench -p ledgerline-ingester --bench ingest -- backfill   # env BENCH_FACTS (1000000), BENCH_RATE (100)
//! cargo bench -p ledgerline-ingester --bench ingest -- webhooks   # env BENCH_WEBHOOKS_PER_SEC (1000), BENCH_SECS (10)
//! ```
//!
//! - backfill: a world of BENCH_FACTS facts (its objects: events, BTs, invoices, charges, …)
//!   backfilled at BENCH_RATE requests/s against a server limit of the same rate; reports
//!   the achieved request rate as a share of the configured one, and 429s.
//! - webhooks: signed deliveries at a fixed open-loop rate; latency from sending to the 2xx
//!   (which the receiver gives only after Kafka acknowledged): p50, p99, max.
#![allow(
    clippy::unwrap_used,
    clippy::print_stderr,
    clippy::float_arithmetic,
    clippy::cast_precision_loss
)]

use std::time::{Duration, Instant};

use ledgerline_bus::{KafkaConfig, Topics};
use ledgerline_ingester::{AccountConfig, IngesterConfig};
use ledgerline_stripe::{ApiKey, ClientConfig, WebhookSecret, signature_header};
use ledgerline_stripe_sim::http::{
    ClockConfig, DEFAULT_LIVE_KEY, RateLimits, SimConfig, SimServer,
};
use ledgerline_stripe_sim::world::{World, WorldConfig};
use tokio_util::sync::CancellationToken;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

async fn config(base: &str, rate: u32, secrets: Vec<WebhookSecret>) -> IngesterConfig {
    let (_pool, db) = ledgerline_tests::fresh_database("ingbench").await.unwrap();
    let mut url = ledgerline_tests::database_url();
    let slash = url.rfind('/').unwrap();
    url.truncate(slash + 1);
    url.push_str(&db);
    let mut client = ClientConfig::new(base, ApiKey::parse(DEFAULT_LIVE_KEY).unwrap());
    client.requests_per_sec = Some(rate);
    let account = AccountConfig {
        name: "default".into(),
        client,
        platform_account: "acct_1LedgerlineSimPlat".into(),
        connected_accounts: Vec::new(),
        discover_connected: false,
        webhook_secrets: secrets,
        register_webhook_url: None,
    };
    let mut cfg = IngesterConfig::new(
        KafkaConfig::new(
            ledgerline_tests::kafka_bootstrap_servers(),
            "ingester-bench",
        ),
        url,
        vec![account],
    );
    cfg.topics = Topics::with_prefix(ledgerline_tests::unique_name("bench").to_lowercase() + ".");
    cfg
}

async fn backfill() {
    let facts = env("BENCH_FACTS", 1_000_000);
    let rate = u32::try_from(env("BENCH_RATE", 100)).unwrap();
    let t = Instant::now();
    let world = World::generate(&WorldConfig {
        livemode: true,
        connected_accounts: 0,
        balance_history: false,
        ..WorldConfig::with_facts(3, facts)
    });
    let objects = world
        .objects
        .iter()
        .filter(|o| o.kind != ledgerline_stripe_sim::object::ObjectKind::Event)
        .count();
    eprintln!(
        "world: {facts} facts, {} objects ({objects} non-event) in {:?}",
        world.objects.len(),
        t.elapsed()
    );
    let sim_cfg = SimConfig {
        rate_limits: RateLimits {
            live_per_sec: rate,
            test_per_sec: rate,
        },
        clock: ClockConfig {
            start: Some(world.truth.end + 86_400),
            speed: 0,
        },
        ..SimConfig::default()
    };
    let sim = SimServer::start(sim_cfg, world.objects).await.unwrap();
    let mut cfg = config(&sim.base_url(), rate, Vec::new()).await;
    cfg.backfill = true;
    cfg.events = false;
    cfg.balance_transactions = false;
    cfg.payouts = false;
    cfg.gap_fill = false;
    let shutdown = CancellationToken::new();
    let t = Instant::now();
    let running = ledgerline_ingester::start(cfg, shutdown.clone())
        .await
        .unwrap();
    let before = sim.handle().requests_served();
    let t0 = Instant::now();
    while !running.metrics.backfill_done() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let secs = t0.elapsed().as_secs_f64();
    let requests = sim.handle().requests_served() - before;
    let achieved = requests as f64 / secs;
    let m = running.metrics.render(0);
    let r429: u64 = m
        .lines()
        .filter(|l| {
            l.starts_with("ledgerline_stripe_api_calls_total") && l.contains("status=\"429\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    eprintln!(
        "backfill: {requests} requests in {secs:.1} s = {achieved:.1} r/s of {rate} configured ({:.1} %), 429s: {r429}, total wall {:?}",
        achieved * 100.0 / f64::from(rate),
        t.elapsed()
    );
    shutdown.cancel();
    running.wait().await.unwrap();
    sim.shutdown().await;
}

async fn webhooks() {
    let per_sec = env("BENCH_WEBHOOKS_PER_SEC", 1_000);
    let secs = env("BENCH_SECS", 10);
    let sim = SimServer::start(SimConfig::default(), Vec::new())
        .await
        .unwrap();
    let secret = WebhookSecret::new("whsec_benchsecret000000000001");
    let mut cfg = config(&sim.base_url(), 0, vec![secret.clone()]).await;
    cfg.events = false;
    cfg.balance_transactions = false;
    cfg.payouts = false;
    cfg.gap_fill = false;
    let shutdown = CancellationToken::new();
    let running = ledgerline_ingester::start(cfg, shutdown.clone())
        .await
        .unwrap();
    let url = format!("http://{}/webhooks/default", running.addr);
    let http = ledgerline_stripe::tls::http_client_builder(&Default::default())
        .unwrap()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let total = per_sec * secs;
    let interval = Duration::from_nanos(1_000_000_000 / per_sec);
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(usize::try_from(total).unwrap());
    for i in 0..total {
        tokio::time::sleep_until(start + interval * u32::try_from(i).unwrap()).await;
        let body = format!(
            r#"{{"id":"evt_bench{i}","object":"event","type":"charge.succeeded","livemode":true,"created":1767225600,"api_version":"2026-07-29.dahlia","data":{{"object":{{"id":"ch_bench{i}","object":"charge","amount":1000}}}}}}"#
        );
        let now = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap();
        let header = signature_header(std::slice::from_ref(&secret), now, body.as_bytes());
        let req = http
            .post(&url)
            .header("Stripe-Signature", header)
            .body(body);
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 200);
            t.elapsed()
        }));
    }
    let mut lat: Vec<Duration> = Vec::with_capacity(tasks.len());
    for t in tasks {
        lat.push(t.await.unwrap());
    }
    let elapsed = start.elapsed();
    lat.sort();
    let pct = |p: usize| lat[(lat.len() * p / 100).min(lat.len() - 1)];
    eprintln!(
        "webhooks: {total} at {per_sec}/s offered ({:.0}/s achieved): receipt → Kafka ack p50 {:?}, p99 {:?}, max {:?}",
        total as f64 / elapsed.as_secs_f64(),
        pct(50),
        pct(99),
        lat[lat.len() - 1]
    );
    shutdown.cancel();
    running.wait().await.unwrap();
    sim.shutdown().await;
}

fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let all = which.is_empty();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if all || which.iter().any(|w| w == "webhooks") {
        rt.block_on(webhooks());
    }
    if all || which.iter().any(|w| w == "backfill") {
        rt.block_on(backfill());
    }
}
