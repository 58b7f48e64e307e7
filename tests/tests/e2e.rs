//! Issue 6 end to end, everything real: stripe-sim (its world unfolding in sim time, webhooks
//! duplicated and reordered) → the ingester (in-process: signed webhooks, Events API,
//! balance-transaction polling) → Kafka → two ledgers on PostgreSQL:
//!
//! - one uninterrupted (in-process), whose books must equal stripe-sim's ground truth per
//!   account and currency (pending and available Stripe balances, open receivables), with
//!   every clearing account (and suspense) at zero, and whose entries must be exactly the core's
//!   fold of the world's facts;
//! - one in a child process SIGKILLed at 10 random moments — while the world unfolds, and at
//!   random points of its remaining work once everything is published (so at least one kill
//!   provably lands mid-fold, however fast the machine) — which must end with exactly the
//!   entries and chain heads of the uninterrupted one, and a verifying chain.
//!
//! Size: `LEDGERLINE_E2E_FACTS` (default 5,000, ~30 s; the run:
//! `LEDGERLINE_E2E_FACTS=100000 cargo test -p ledgerline-tests --test e2e -- --nocapture`).
//! The world unfolds over `LEDGERLINE_E2E_WALL_SECS` (default facts/400, at least 15 s).
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod ledger_support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ledger_support::{
    chain_heads, create_topics, fresh_db, kafka, model_digests, stored_digests, wait_for_offsets,
};
use ledgerline_bus::Topics;
use ledgerline_core::{Account, Currency, Ledger};
use ledgerline_ingester::{AccountConfig, IngesterConfig};
use ledgerline_ledger::Role;
use ledgerline_proto::ledger::v1 as pb;
use ledgerline_stripe::{ApiKey, ClientConfig, WebhookSecret};
use ledgerline_stripe_sim::http::{
    ClockConfig, DEFAULT_TEST_KEY, RateLimits, SimConfig, SimServer, WebhookConfig,
};
use ledgerline_stripe_sim::object::ObjectKind;
use ledgerline_stripe_sim::world::{World, WorldConfig};
use ledgerline_tests::{kafka_bootstrap_servers, unique_name};
use pb::ledger_query_client::LedgerQueryClient;
use rdkafka::consumer::Consumer as _;
use rust_decimal::Decimal;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// The platform account stripe-sim plays (records of platform objects are keyed by it).
const PLATFORM: &str = "acct_1LedgerlineSimPlat";
const TOKEN: &str = "e2e-auditor";
const KILLS: usize = 10;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

/// A SIGKILLed child: killed and reaped on drop too, so a failing assertion leaks nothing.
struct LedgerProcess(Child);

impl LedgerProcess {
    fn spawn(url: &str, prefix: &str, group: &str, instance: &str, batch: usize) -> Self {
        LedgerProcess(
            Command::new(env!("CARGO_BIN_EXE_ledgerline-e2e-ledger"))
                .env("DATABASE_URL", url)
                .env("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap_servers())
                .env("LEDGERLINE_TOPIC_PREFIX", prefix)
                .env("LEDGERLINE_GROUP", group)
                .env("LEDGERLINE_PARTITIONS", ledger_support::PARTITIONS.to_string())
                .env("LEDGERLINE_BATCH_MAX_RECORDS", batch.to_string())
                // Static membership: a restarted instance takes its partitions over at once
                // instead of waiting out the dead one's session.
                .env(
                    "LEDGERLINE_KAFKA_OPTIONS",
                    format!(
                        "group.instance.id={instance},session.timeout.ms=6000,heartbeat.interval.ms=500"
                    ),
                )
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    fn sigkill(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for LedgerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Records on the topics the ledger folds (sum of high watermarks).
fn published(topics: &Topics) -> usize {
    let consumer: rdkafka::consumer::StreamConsumer = kafka("e2e-watermarks")
        .consumer(&unique_name("wm"))
        .unwrap();
    let mut total = 0;
    for topic in [topics.stripe_events(), topics.stripe_balance_transactions()] {
        for p in 0..ledger_support::PARTITIONS {
            // A partition's leader may still be moving right after creation: retry.
            let mut tries = 0;
            let high = loop {
                match consumer.fetch_watermarks(&topic, p, Duration::from_secs(10)) {
                    Ok((_, high)) => break high,
                    Err(e) if tries < 50 => {
                        tries += 1;
                        eprintln!("e2e: watermarks of {topic}/{p}: {e}; retrying");
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    Err(e) => panic!("watermarks of {topic}/{p}: {e}"),
                }
            };
            total += usize::try_from(high).unwrap();
        }
    }
    total
}

async fn folded(pool: &PgPool, group: &str) -> usize {
    ledger_support::folded(pool, group).await
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn req<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stripe_sim_to_ingester_to_kafka_to_ledger_survives_sigkill() {
    let t0 = Instant::now();
    let facts = env_u64("LEDGERLINE_E2E_FACTS").unwrap_or(5_000);
    let world = World::generate(&WorldConfig::with_facts(61, facts));
    let (start_at, end) = (world.config.start, world.truth.end);
    let objects = world.objects.clone();
    // The model: the core's fold of every fact of the world, in order.
    let mut model = Ledger::new();
    let mut last_event: HashMap<String, String> = HashMap::new();
    for o in &objects {
        let account = o.account.clone().unwrap_or_else(|| PLATFORM.to_owned());
        if matches!(o.kind, ObjectKind::Event | ObjectKind::BalanceTransaction) {
            let _ = model.apply(&account, o.json.as_bytes());
        }
        if o.kind == ObjectKind::Event {
            last_event.insert(account, o.id.clone());
        }
    }
    eprintln!(
        "e2e: world of {} facts ({} events, {} balance transactions), {} model entries",
        world.truth.facts,
        world.truth.events,
        world.truth.balance_transactions,
        model.entries().len()
    );

    // stripe-sim, its world unfolding over `wall_secs`.
    let wall_secs = env_u64("LEDGERLINE_E2E_WALL_SECS").unwrap_or((facts / 400).max(15));
    let speed = u32::try_from((end - start_at) / i64::try_from(wall_secs).unwrap())
        .unwrap()
        .max(1);
    let sim = SimServer::start(
        SimConfig {
            clock: ClockConfig {
                start: Some(start_at),
                speed,
            },
            rate_limits: RateLimits::unlimited(),
            webhooks: WebhookConfig {
                duplicate_ppm: 50_000,
                reorder_ppm: 100_000,
                reorder_delay_ms: 300,
                ..WebhookConfig::default()
            },
            ..SimConfig::default()
        },
        objects,
    )
    .await
    .unwrap();
    let handle = sim.handle();

    // Topics, databases, the uninterrupted ledger.
    let prefix = format!("{}.", unique_name("e2e"));
    let topics = Topics::with_prefix(prefix.clone());
    create_topics(&topics).await;
    let (pool_u, url_u) = fresh_db("e2e_uninterrupted").await;
    let (pool_k, url_k) = fresh_db("e2e_killed").await;
    let (_pool_i, url_i) = fresh_db("e2e_ingester").await;
    let group_u = unique_name("e2e_u");
    let group_k = unique_name("e2e_k");
    let instance = unique_name("e2e_instance");
    let mut ledger_config = ledger_support::config(&url_u, &topics, &group_u);
    ledger_config.tokens = vec![(TOKEN.into(), Role::Auditor)];
    let (uninterrupted, stop_u) = ledger_support::start(ledger_config).await;

    // The ingester, in-process, behind the webhook endpoints stripe-sim delivers to.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/webhooks/default");
    let platform_ep = handle.register_webhook(&url, &["*"], false, false).unwrap();
    let connect_ep = handle.register_webhook(&url, &["*"], false, true).unwrap();
    let mut client = ClientConfig::new(sim.base_url(), ApiKey::parse(DEFAULT_TEST_KEY).unwrap());
    client.requests_per_sec = Some(200);
    client.backoff_base = Duration::from_millis(50);
    client.backoff_max = Duration::from_secs(1);
    let mut ingester = IngesterConfig::new(
        ledgerline_bus::KafkaConfig::new(kafka_bootstrap_servers(), "e2e-ingester"),
        url_i.clone(),
        vec![AccountConfig {
            name: "default".into(),
            client,
            platform_account: PLATFORM.into(),
            connected_accounts: Vec::new(),
            discover_connected: true,
            webhook_secrets: vec![
                WebhookSecret::new(platform_ep.secret),
                WebhookSecret::new(connect_ep.secret),
            ],
            register_webhook_url: None,
        }],
    );
    ingester.listen = SocketAddr::from(([127, 0, 0, 1], port));
    ingester.topics = topics.clone();
    ingester.partitions = ledger_support::PARTITIONS;
    ingester.poll_interval = Duration::from_millis(300);
    ingester.bt_recheck_interval = Duration::from_secs(2);
    let stop_i = CancellationToken::new();
    let running_i = ledgerline_ingester::start(ingester, stop_i.clone())
        .await
        .unwrap();

    // The ingestion: the world unfolds; then two weeks pass (everything becomes available);
    // done when every scope's events cursor is at its last event and nothing is pending.
    let ingestion = tokio::spawn({
        let handle = handle.clone();
        let url_i = url_i.clone();
        async move {
            while handle.now() < end {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            handle.set_speed(0);
            handle.set_now(end + 14 * 86_400);
            let pool = PgPool::connect(&url_i).await.unwrap();
            let deadline = Instant::now() + Duration::from_secs(600);
            loop {
                let rows: Vec<(String, serde_json::Value)> = sqlx::query_as(
                    "SELECT scope, position FROM ingester_cursors WHERE stream = 'events'",
                )
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
                    "the ingester did not catch up: at_end={at_end} pending={pending}"
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            stop_i.cancel();
            running_i.wait().await.unwrap();
        }
    });

    // The killed ledger: small batches so that a small world still takes many transactions.
    let batch = usize::try_from((facts / 60).clamp(50, 2_000)).unwrap();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let mut rng = Rng(u64::from(seed) | 1);
    eprintln!("e2e: kill seed {seed}, batch {batch}");
    // (folded after the kill, records published before it)
    let mut kills: Vec<(usize, usize)> = Vec::new();
    // While the first 80 % of the world unfolds: kills at random moments (at most KILLS - 3).
    // The child then stays down: the rest of the world and the two weeks' status updates
    // make a backlog for the kills below.
    let phase_a_end = end - (end - start_at) / 5;
    while kills.len() < KILLS - 3 && handle.now() < phase_a_end {
        let child = LedgerProcess::spawn(&url_k, &prefix, &group_k, &instance, batch);
        tokio::time::sleep(Duration::from_millis(300 + rng.below(2_200))).await;
        let available = published(&topics);
        child.sigkill();
        kills.push((folded(&pool_k, &group_k).await, available));
        // Down for a while: the kills spread over the whole unfolding.
        let spread = wall_secs * 1000 / u64::try_from(KILLS).unwrap();
        tokio::time::sleep(Duration::from_millis(rng.below(spread.max(800)))).await;
    }
    // Once everything is published: kills at random points of the remaining work, never in
    // its last half, with batches of a sixteenth of it: each lands mid-fold.
    ingestion.await.unwrap();
    let records = published(&topics);
    eprintln!(
        "e2e: ingestion done after {:.1} s: {records} records; webhooks {:?}",
        t0.elapsed().as_secs_f64(),
        {
            let s = handle.webhook_stats();
            (s.attempts, s.duplicates, s.reordered, s.dropped, s.gave_up)
        }
    );
    while kills.len() < KILLS {
        let before = folded(&pool_k, &group_k).await;
        let remaining = records - before;
        if remaining < 32 {
            break;
        }
        let batch = (remaining / 16).clamp(1, batch);
        let target =
            before + 1 + usize::try_from(rng.below(u64::try_from(remaining / 2).unwrap())).unwrap();
        let child = LedgerProcess::spawn(&url_k, &prefix, &group_k, &instance, batch);
        let deadline = Instant::now() + Duration::from_secs(180);
        while folded(&pool_k, &group_k).await < target && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        child.sigkill();
        kills.push((folded(&pool_k, &group_k).await, records));
    }
    eprintln!("e2e: kills (folded after, published) {kills:?}");
    let child = LedgerProcess::spawn(&url_k, &prefix, &group_k, &instance, batch);
    wait_for_offsets(&pool_k, &group_k, records, Duration::from_secs(600)).await;
    child.sigkill();
    wait_for_offsets(&pool_u, &group_u, records, Duration::from_secs(600)).await;
    eprintln!(
        "e2e: both ledgers folded {records} records after {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(kills.len(), KILLS, "only {} kills: {kills:?}", kills.len());
    assert!(
        kills.iter().any(|(f, avail)| *f > 0 && f < avail),
        "no kill landed mid-fold: {kills:?}"
    );

    // The uninterrupted ledger holds exactly the core's fold of the world.
    let digests_u = stored_digests(&pool_u).await;
    assert_eq!(digests_u.len(), model.entries().len());
    assert!(
        digests_u == model_digests(&model),
        "the ledger's entries differ from the core's fold"
    );
    // The killed one holds exactly the uninterrupted one's entries and chain heads.
    let digests_k = stored_digests(&pool_k).await;
    assert!(digests_k == digests_u, "the killed ledger's entries differ");
    assert_eq!(chain_heads(&pool_k).await, chain_heads(&pool_u).await);
    let mut conn = pool_k.acquire().await.unwrap();
    let v = ledgerline_ledger::chain::verify(&mut conn).await.unwrap();
    assert!(v.ok(), "{:?}", v.first_bad);

    // The books, over the uninterrupted ledger's gRPC API, equal stripe-sim's ground truth.
    let channel =
        tonic::transport::Channel::from_shared(format!("http://{}", uninterrupted.grpc_addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
    let mut c = LedgerQueryClient::new(channel);
    let as_of_end = Some(pb::AsOf {
        effective_as_of: Some(prost_types::Timestamp {
            seconds: end,
            nanos: 0,
        }),
        recorded_as_of: None,
    });
    let mut balance = async |ledger: &str, account: &str, currency: &str| -> i64 {
        let r = c
            .get_balances(req(pb::GetBalancesRequest {
                ledger: ledger.to_owned(),
                account: account.to_owned(),
                currency: currency.to_owned(),
                as_of: as_of_end,
            }))
            .await
            .unwrap()
            .into_inner();
        let sum: Decimal = r
            .balances
            .iter()
            .map(|b| b.amount.parse::<Decimal>().unwrap())
            .sum();
        Currency::parse(currency)
            .unwrap()
            .decimal_to_minor(sum)
            .unwrap()
    };
    let (pending, available) = (
        Account::StripePending.to_string(),
        Account::StripeAvailable.to_string(),
    );
    for (ac, bal) in &world.truth.balances {
        let ledger = ac.account.clone().unwrap_or_else(|| PLATFORM.to_owned());
        assert_eq!(
            (
                balance(&ledger, &pending, &ac.currency).await,
                balance(&ledger, &available, &ac.currency).await
            ),
            (bal.pending, bal.available),
            "Stripe balance (pending, available) of {ledger} in {}",
            ac.currency
        );
    }
    for ((acct, customer, currency), amount) in &world.truth.open_receivables {
        let ledger = acct.clone().unwrap_or_else(|| PLATFORM.to_owned());
        let account = Account::Receivable(customer.as_str().into()).to_string();
        assert_eq!(
            balance(&ledger, &account, currency).await,
            *amount,
            "open receivable of {customer} on {ledger} in {currency}"
        );
    }
    // Clearing accounts (and suspense) net to zero everywhere, in every currency.
    let all = c
        .get_balances(req(pb::GetBalancesRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .balances;
    assert!(!all.is_empty());
    let not_zero: Vec<_> = all
        .iter()
        .filter(|b| {
            b.account.starts_with("assets:clearing:") || b.account == Account::Suspense.to_string()
        })
        .collect();
    assert!(
        not_zero.is_empty(),
        "clearing accounts not at zero: {not_zero:?}"
    );
    let v = c
        .verify_chain(req(pb::VerifyChainRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(v.ok, "{}: {}", v.first_bad_entry_id, v.reason);
    assert_eq!(
        usize::try_from(v.entries_checked).unwrap(),
        model.entries().len()
    );

    stop_u.cancel();
    uninterrupted.task.await.unwrap().unwrap();
    sim.shutdown().await;
    eprintln!(
        "e2e: {} facts, {records} records, {} entries, {} kills, {:.1} s in all",
        world.truth.facts,
        model.entries().len(),
        kills.len(),
        t0.elapsed().as_secs_f64()
    );
}
