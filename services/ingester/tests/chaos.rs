//! The chaos test of issue 5: a world whose webhooks are duplicated, reordered or never
//! delivered, 5 % of API calls answered 5xx, a client running at the server's rate limit
//! (429s), and the ingester killed (its runtime dropped mid-flight, tasks cut at any await)
//! at 5 random moments. Afterwards the topics hold every event and every balance transaction
//! of the world at least once, and each transaction's last record has its final status.
//!
//! Size: `LEDGERLINE_CHAOS_FACTS` (default 10,000; the 100k runs with
//! `LEDGERLINE_CHAOS_FACTS=100000`).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use ledgerline_ingester::IngesterConfig;
use ledgerline_proto::stripe::v1::{
    BalanceTransactionRecord, BalanceTransactionStatus, StripeEventRecord,
};
use ledgerline_stripe_sim::http::{
    ClockConfig, DEFAULT_TEST_KEY, Faults, SimConfig, SimServer, WebhookConfig,
};
use ledgerline_stripe_sim::object::ObjectKind;
use ledgerline_stripe_sim::world::{World, WorldConfig};
use prost::Message as _;
use tokio_util::sync::CancellationToken;

type Metrics = std::sync::Arc<ledgerline_ingester::metrics::Metrics>;

/// One ingester instance in a runtime of its own; `kill` drops the runtime (no graceful
/// shutdown: every task stops at its next await, whatever it was doing).
struct Instance {
    metrics: std::sync::Arc<ledgerline_ingester::metrics::Metrics>,
    kill: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Instance {
    fn start(cfg: IngesterConfig) -> Instance {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = std::sync::mpsc::channel::<Result<Metrics, String>>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let started = rt.block_on(async {
                ledgerline_ingester::start(cfg, CancellationToken::new()).await
            });
            let _ = started_tx.send(
                started
                    .as_ref()
                    .map(|r| r.metrics.clone())
                    .map_err(|e| e.to_string()),
            );
            let _ = rx.recv();
            rt.shutdown_background();
        });
        let metrics = started_rx.recv().unwrap().unwrap();
        Instance {
            metrics,
            kill: Some(tx),
            thread: Some(thread),
        }
    }

    /// API answers with `status` this instance saw.
    fn calls(&self, status: &str) -> u64 {
        let needle = format!("status=\"{status}\"}} ");
        self.metrics
            .render(0)
            .lines()
            .filter(|l| l.starts_with("ledgerline_stripe_api_calls_total") && l.contains(&needle))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    fn kill(mut self) {
        if let Some(k) = self.kill.take() {
            let _ = k.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

fn env_facts() -> u64 {
    std::env::var("LEDGERLINE_CHAOS_FACTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_and_balance_transaction_survives_chaos() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "ledgerline_ingester::pollers=warn",
        ))
        .with_test_writer()
        .try_init();
    let world = World::generate(&WorldConfig::with_facts(42, env_facts()));
    let start = world.config.start;
    let end = world.truth.end;
    let mut expected_events: HashSet<(String, String)> = HashSet::new();
    let mut expected_bts: HashMap<(String, String), i64> = HashMap::new();
    let mut last_event: HashMap<String, String> = HashMap::new();
    for o in &world.objects {
        let acct = o
            .account
            .clone()
            .unwrap_or_else(|| common::PLATFORM.to_owned());
        match o.kind {
            ObjectKind::Event => {
                expected_events.insert((acct.clone(), o.id.clone()));
                last_event.insert(acct, o.id.clone());
            }
            ObjectKind::BalanceTransaction => {
                expected_bts.insert((acct, o.id.clone()), o.available_on.unwrap_or(0));
            }
            _ => {}
        }
    }
    // The world unfolds over ~40 s of wall time per 10k facts (at least 20 s): Stripe lists only 30 days of
    // events, so the clock must not outrun what the rate-limited client can read.
    let wall_secs: i64 = std::env::var("LEDGERLINE_CHAOS_WALL_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| i64::try_from(env_facts() / 250).unwrap().max(20));
    let speed = u32::try_from((end - start) / wall_secs).unwrap().max(1);
    let sim_config = SimConfig {
        clock: ClockConfig {
            start: Some(start),
            speed,
        },
        // The server's limit below the client's pace: 429s happen and must be absorbed.
        rate_limits: ledgerline_stripe_sim::http::RateLimits {
            live_per_sec: 100,
            test_per_sec: 20,
        },
        faults: Faults {
            error_5xx_ppm: 50_000,
            ..Faults::default()
        },
        webhooks: WebhookConfig {
            duplicate_ppm: 34_000,
            reorder_ppm: 33_000,
            drop_ppm: 33_000,
            retry_base_ms: 200,
            retry_max_ms: 2_000,
            timeout_ms: 2_000,
            ..WebhookConfig::default()
        },
        ..SimConfig::default()
    };
    let sim = SimServer::start(sim_config, world.objects).await.unwrap();
    let handle = sim.handle();
    // A fixed port, so the webhook endpoints outlive each instance.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/webhooks/default");
    let platform = handle.register_webhook(&url, &["*"], false, false).unwrap();
    let connect = handle.register_webhook(&url, &["*"], false, true).unwrap();
    let secrets = vec![
        ledgerline_stripe::WebhookSecret::new(platform.secret),
        ledgerline_stripe::WebhookSecret::new(connect.secret),
    ];
    let (mut cfg, db_url) = common::config(&sim.base_url(), DEFAULT_TEST_KEY, secrets).await;
    cfg.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    cfg.accounts[0].discover_connected = true;
    // Above the server's limit (20 r/s): 429s happen and must be absorbed.
    cfg.accounts[0].client.requests_per_sec = Some(25);
    let topics = cfg.topics.clone();

    // Kill at 5 pseudo-random moments while the world unfolds.
    let mut rng: u64 = 0x2545_F491_4F6C_DD1D;
    let mut instance = Instance::start(cfg.clone());
    let (mut seen_5xx, mut seen_429) = (0, 0);
    for _ in 0..5 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let wait = 1_000 + rng % 3_000;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        seen_5xx += instance.calls("500");
        seen_429 += instance.calls("429");
        tokio::task::spawn_blocking(move || instance.kill())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(rng % 700)).await;
        instance = Instance::start(cfg.clone());
    }
    // Let the world finish, then let two weeks pass (everything becomes available).
    while handle.now() < end {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    handle.set_speed(0);
    let final_now = handle.set_now(end + 14 * 86_400);

    // Wait until every scope's events cursor reached its last event and nothing is pending.
    let pool = sqlx::PgPool::connect(&db_url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let rows: Vec<(String, serde_json::Value)> =
            sqlx::query_as("SELECT scope, position FROM ingester_cursors WHERE stream = 'events'")
                .fetch_all(&pool)
                .await
                .unwrap();
        let at_end = last_event.iter().all(|(acct, id)| {
            rows.iter().any(|(scope, pos)| {
                scope.ends_with(&format!("/{acct}")) && pos["id"] == id.as_str()
            })
        });
        let (pending,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM ingester_pending_balance_transactions")
                .fetch_one(&pool)
                .await
                .unwrap();
        if at_end && pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ingester did not catch up: at_end={at_end} pending={pending} cursors={rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    seen_5xx += instance.calls("500");
    seen_429 += instance.calls("429");
    tokio::task::spawn_blocking(move || instance.kill())
        .await
        .unwrap();
    eprintln!("API answers seen: {seen_5xx} x 500, {seen_429} x 429");
    assert!(seen_5xx > 0, "the 5xx faults never hit the ingester");
    assert!(seen_429 > 0, "the rate limit was never hit");
    let stats = handle.webhook_stats();
    eprintln!(
        "webhooks (attempts, duplicates, reordered, dropped, gave up): {stats:?}",
        stats = (
            stats.attempts,
            stats.duplicates,
            stats.reordered,
            stats.dropped,
            stats.gave_up
        )
    );

    let events = common::consume_all(&topics.stripe_events(), Duration::from_secs(5)).await;
    let mut seen_events = HashSet::new();
    for (_, v) in &events {
        let r = StripeEventRecord::decode(v.as_slice()).unwrap();
        seen_events.insert((r.account, r.event_id));
    }
    let missing: Vec<_> = expected_events.difference(&seen_events).take(10).collect();
    assert!(
        missing.is_empty(),
        "{} events missing, e.g. {missing:?}",
        expected_events.difference(&seen_events).count()
    );

    let bts = common::consume_all(
        &topics.stripe_balance_transactions(),
        Duration::from_secs(5),
    )
    .await;
    let mut last: HashMap<(String, String), i32> = HashMap::new();
    for (_, v) in &bts {
        let r = BalanceTransactionRecord::decode(v.as_slice()).unwrap();
        last.insert((r.account, r.balance_transaction_id), r.observed_status);
    }
    let mut wrong = 0;
    for (key, available_on) in &expected_bts {
        let want = if *available_on <= final_now {
            BalanceTransactionStatus::Available
        } else {
            BalanceTransactionStatus::Pending
        };
        match last.get(key) {
            None => panic!("balance transaction {key:?} missing"),
            Some(s) if *s != want as i32 => wrong += 1,
            Some(_) => {}
        }
    }
    assert_eq!(
        wrong, 0,
        "{wrong} balance transactions with a stale final status"
    );
    eprintln!(
        "chaos: {} events expected, {} event records; {} BTs expected, {} BT records",
        expected_events.len(),
        events.len(),
        expected_bts.len(),
        bts.len()
    );
    sim.shutdown().await;
}
