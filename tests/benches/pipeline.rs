//! End-to-end latency (issue 6: "p99 from webhook receipt to committed entry ≤ 100 ms at
//! 2k facts/s"): signed webhook deliveries of a stripe-sim world's events at a fixed
//! open-loop rate → the ingester (in-process, 2xx only after Kafka acknowledged) → the real
//! Kafka broker → the ledger (in-process) → committed PostgreSQL rows.
//!
//! ```sh
//! eval "$(scripts/test-services env)"
//! cargo bench -p ledgerline-tests --bench pipeline
//! ```
//!
//! Knobs (environment): `BENCH_RATE` deliveries/s (2000), `BENCH_SECS` measured seconds (30),
//! `BENCH_WARMUP_SECS` seconds sent first and left out of the statistics (5),
//! `BENCH_LINGER_MS` / `BENCH_MAX_RECORDS` the ledger's batch limits (its defaults),
//! `BENCH_PUBLISH=0` the ledger without its outbox publisher, `BENCH_NO_CELLS=1` (an experiment)
//! the ledger's database without the lines' statement trigger (orphan check, balance keys, the
//! balance-cells queue),
//! `BENCH_COMMIT_TIMEOUT_SECS` how long after the last send every fact must be committed (60),
//! `BENCH_CONSUMER_OPTIONS` extra librdkafka properties for the ledger's consumer
//! (`key=value,key=value`), `BENCH_SEED` the world's seed (7), `BENCH_LOG` a tracing filter
//! (e.g. `ledgerline_ledger=debug`: the ledger's per-batch fold and write times), `BENCH_TAP=1`
//! a second consumer with the ledger's Kafka settings (own group) on the events topic, to split
//! the latency into send → delivered by Kafka to a consumer, and the rest (the ledger).
//!
//! - Sent: the instant a delivery's task starts sending (≤ the ingester's receipt, so the
//!   measure is conservative).
//! - Committed: a watcher on its own PostgreSQL connection (its own thread) probes
//!   `max(fact_seq)` of `ledger_facts` every millisecond and reads the new rows when it moved;
//!   only committed rows are visible to it, and a fact
//!   counts as committed at the instant the watcher's query that first returned it came back
//!   (so the resolution is one poll: ~1 ms plus the query). `ledger_facts` is written in the
//!   same transaction as the fact's entries and the consumed offsets.
//! - Reported: p50/p90/p99/max send → committed for every delivered fact and for the facts
//!   that posted at least one entry, send → 2xx (the ingester's share), and how the ledger's
//!   commits were spaced. Exits non-zero if a delivery was refused or a sent fact was not
//!   committed within the timeout: nothing may be lost.
#![allow(
    clippy::unwrap_used,
    clippy::print_stderr,
    clippy::float_arithmetic,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ledgerline_bus::{KafkaConfig, TopicSpec, Topics, ensure_topics};
use ledgerline_ingester::{AccountConfig, IngesterConfig};
use ledgerline_proto::stripe::v1::StripeEventRecord;
use ledgerline_stripe::{ApiKey, ClientConfig, WebhookSecret, signature_header};
use ledgerline_stripe_sim::http::{DEFAULT_LIVE_KEY, SimConfig, SimServer};
use ledgerline_stripe_sim::object::ObjectKind;
use ledgerline_stripe_sim::world::{World, WorldConfig};
use ledgerline_tests::{database_url, fresh_database, kafka_bootstrap_servers, unique_name};
use prost::Message as _;
use rdkafka::Message as _;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use sqlx::{ConnectOptions, Connection};
use tokio_util::sync::CancellationToken;

const PLATFORM: &str = "acct_1LedgerlineSimPlat";
const PARTITIONS: i32 = 6;
const POLL: Duration = Duration::from_millis(1);

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn url_of(db: &str) -> String {
    let url = database_url();
    let (head, query) = url
        .split_once('?')
        .map_or((url.as_str(), ""), |(h, q)| (h, q));
    let slash = head.rfind('/').unwrap();
    let mut out = format!("{}{db}", &head[..=slash]);
    if !query.is_empty() {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// `fact_id` → the instant the watcher first saw it committed, plus the commits it saw.
#[derive(Default)]
struct Seen {
    at: HashMap<String, Instant>,
    /// (instant, facts that became visible) per poll that found new rows.
    commits: Vec<(Instant, usize)>,
    polls: u64,
    /// How long the watcher ran (for its mean poll interval).
    ran: Duration,
}

/// Reads new committed `ledger_facts` rows every `POLL` on its own connection and thread.
fn watch(
    url: String,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
            let mut conn = options.connect().await.unwrap();
            // Every fact_seq up to `frontier` was seen; rows above a gap are read again
            // until the gap fills (a commit order other than fact_seq order stays correct).
            let mut frontier: i64 = 0;
            let mut above: HashSet<i64> = HashSet::new();
            let started = Instant::now();
            // The cheap probe (one index entry) runs every poll; the rows are read only when
            // it shows something new (or a gap is open), so the watcher loads the database
            // little even at one poll per millisecond.
            let mut highest: i64 = 0;
            while !stop.load(Ordering::Relaxed) {
                let max: Option<i64> = sqlx::query_scalar("SELECT max(fact_seq) FROM ledger_facts")
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
                let max = max.unwrap_or(0);
                if max <= highest && above.is_empty() {
                    seen.lock().unwrap().polls += 1;
                    tokio::time::sleep(POLL).await;
                    continue;
                }
                highest = highest.max(max);
                let rows: Vec<(i64, String)> = sqlx::query_as(
                    "SELECT fact_seq, fact_id FROM ledger_facts WHERE fact_seq > $1 \
                     ORDER BY fact_seq",
                )
                .bind(frontier)
                .fetch_all(&mut conn)
                .await
                .unwrap();
                // After the rows came back: a row counts as committed no earlier than this.
                let now = Instant::now();
                {
                    let mut fresh = 0;
                    let mut s = seen.lock().unwrap();
                    s.polls += 1;
                    for (seq, id) in rows {
                        if above.insert(seq) {
                            fresh += 1;
                            s.at.entry(id).or_insert(now);
                        }
                    }
                    if fresh > 0 {
                        s.commits.push((now, fresh));
                    }
                }
                while above.remove(&(frontier + 1)) {
                    frontier += 1;
                }
                tokio::time::sleep(POLL).await;
            }
            seen.lock().unwrap().ran = started.elapsed();
            conn.close().await.unwrap();
        });
    })
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn summary(label: &str, mut lat: Vec<Duration>) {
    if lat.is_empty() {
        eprintln!("{label}: no samples");
        return;
    }
    lat.sort();
    let pct = |p: usize| lat[(lat.len() * p / 100).min(lat.len() - 1)];
    eprintln!(
        "{label}: n {}, p50 {}, p90 {}, p99 {}, max {}",
        lat.len(),
        ms(pct(50)),
        ms(pct(90)),
        ms(pct(99)),
        ms(lat[lat.len() - 1]),
    );
}

struct Sent {
    id: String,
    at: Instant,
    acked: Duration,
    status: u16,
}

#[allow(clippy::too_many_lines)]
async fn run() -> bool {
    let rate = env("BENCH_RATE", 2000).max(1);
    let secs = env("BENCH_SECS", 30);
    let warmup = env("BENCH_WARMUP_SECS", 5);
    let timeout = Duration::from_secs(env("BENCH_COMMIT_TIMEOUT_SECS", 60));
    let total = usize::try_from(rate * (secs + warmup)).unwrap();
    let skip = usize::try_from(rate * warmup).unwrap();

    // A world with enough events (charges, invoices, refunds, payouts, …) on the platform
    // account; its balance transactions are not sent (the events alone post entries).
    let t = Instant::now();
    let mut facts = u64::try_from(total).unwrap() * 2;
    let events = loop {
        let world = World::generate(&WorldConfig {
            livemode: true,
            connected_accounts: 0,
            balance_history: false,
            ..WorldConfig::with_facts(env("BENCH_SEED", 7), facts)
        });
        let events: Vec<(String, String)> = world
            .objects
            .into_iter()
            .filter(|o| o.kind == ObjectKind::Event)
            .map(|o| (o.id, o.json))
            .collect();
        if events.len() >= total {
            break events;
        }
        facts *= 2;
    };
    let events = &events[..total];
    eprintln!(
        "pipeline: world of {facts} facts generated in {:?}; sending {total} of its events \
         ({warmup} s warm-up, left out, then {secs} s) at {rate}/s",
        t.elapsed()
    );

    // Topics, databases, the ledger, the ingester.
    let topics = Topics::with_prefix(format!("{}.", unique_name("pipeline").to_lowercase()));
    let kafka = |client: &str| KafkaConfig::new(kafka_bootstrap_servers(), client);
    let admin = kafka("pipeline-bench-admin").admin().unwrap();
    let specs: Vec<TopicSpec> = [
        topics.stripe_events(),
        topics.stripe_balance_transactions(),
        topics.stripe_payouts(),
        topics.ledger_entries(),
    ]
    .into_iter()
    .map(|t| TopicSpec::new(t, PARTITIONS))
    .collect();
    ensure_topics(&admin, &specs).await.unwrap();
    let (_ledger_pool, ledger_db) = fresh_database("pipeline_ledger").await.unwrap();
    let (_ingester_pool, ingester_db) = fresh_database("pipeline_ingester").await.unwrap();

    let mut consumer_kafka = kafka("pipeline-bench-ledger");
    if let Ok(opts) = std::env::var("BENCH_CONSUMER_OPTIONS") {
        for kv in opts.split(',').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap();
            consumer_kafka = consumer_kafka.with(k.trim(), v.trim());
        }
    }
    let tap_kafka = consumer_kafka.clone();
    let mut ledger_cfg = ledgerline_ledger::Config::new(url_of(&ledger_db), consumer_kafka);
    // The world is a live one, read with a live key.
    ledger_cfg.stripe_mode = ledgerline_ledger::StripeMode::Live;
    ledger_cfg.topics = topics.clone();
    ledger_cfg.group_id = unique_name("pipeline");
    ledger_cfg.partitions = PARTITIONS;
    // `BENCH_PUBLISH=0`: without the outbox publisher (to see what it costs).
    ledger_cfg.publish = env("BENCH_PUBLISH", 1) == 1;
    if let Ok(v) = std::env::var("BENCH_LINGER_MS") {
        ledger_cfg.batch.linger = Duration::from_millis(v.parse().unwrap());
    }
    if let Ok(v) = std::env::var("BENCH_MAX_RECORDS") {
        ledger_cfg.batch.max_records = v.parse().unwrap();
    }
    eprintln!(
        "pipeline: ledger batch limits {:?}, consumer overrides {:?}, outbox publisher {}",
        ledger_cfg.batch,
        ledger_cfg.kafka.overrides,
        if ledger_cfg.publish { "on" } else { "off" }
    );
    let stop_ledger = CancellationToken::new();
    let ledger = ledgerline_ledger::start(ledger_cfg, stop_ledger.clone())
        .await
        .unwrap();

    // `BENCH_NO_CELLS=1`, an experiment only: the lines' statement trigger (balance and
    // orphan checks, balance keys, the cells queue) disabled in this run's database, to see
    // what it costs.
    if env("BENCH_NO_CELLS", 0) == 1 {
        sqlx::query("ALTER TABLE journal_lines DISABLE TRIGGER journal_lines_inserted")
            .execute(&ledger.pool)
            .await
            .unwrap();
        eprintln!("pipeline: BENCH_NO_CELLS=1: balance cells not maintained (experiment)");
    }

    let sim = SimServer::start(SimConfig::default(), Vec::new())
        .await
        .unwrap();
    let secret = WebhookSecret::new("whsec_pipelinebench00000000001");
    let mut client = ClientConfig::new(sim.base_url(), ApiKey::parse(DEFAULT_LIVE_KEY).unwrap());
    client.requests_per_sec = Some(100);
    let mut ing_cfg = IngesterConfig::new(
        kafka("pipeline-bench-ingester"),
        url_of(&ingester_db),
        vec![AccountConfig {
            name: "default".into(),
            client,
            platform_account: PLATFORM.into(),
            connected_accounts: Vec::new(),
            discover_connected: false,
            webhook_secrets: vec![secret.clone()],
            register_webhook_url: None,
        }],
    );
    ing_cfg.topics = topics.clone();
    ing_cfg.partitions = PARTITIONS;
    // Webhooks only: the pollers would add the same facts again from the API.
    ing_cfg.events = false;
    ing_cfg.balance_transactions = false;
    ing_cfg.payouts = false;
    ing_cfg.gap_fill = false;
    let stop_ingester = CancellationToken::new();
    let ingester = ledgerline_ingester::start(ing_cfg, stop_ingester.clone())
        .await
        .unwrap();

    // The optional tap: when Kafka hands each event to a consumer configured like the ledger's.
    let tapped: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let stop_tap = CancellationToken::new();
    let tap = (env("BENCH_TAP", 0) == 1).then(|| {
        let consumer: StreamConsumer = tap_kafka.consumer(&unique_name("tap")).unwrap();
        consumer.subscribe(&[&topics.stripe_events()]).unwrap();
        let (tapped, stop) = (tapped.clone(), stop_tap.clone());
        tokio::spawn(async move {
            loop {
                let m = tokio::select! {
                    () = stop.cancelled() => break,
                    m = consumer.recv() => m,
                };
                let now = Instant::now();
                if let Ok(m) = m
                    && let Some(p) = m.payload()
                    && let Ok(r) = StripeEventRecord::decode(p)
                {
                    tapped.lock().unwrap().entry(r.event_id).or_insert(now);
                }
            }
            consumer.unsubscribe();
        })
    });

    // The commit watcher.
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop_watch = Arc::new(AtomicBool::new(false));
    let watcher = watch(url_of(&ledger_db), seen.clone(), stop_watch.clone());

    // Signed deliveries, prepared before the clock starts.
    let url = format!("http://{}/webhooks/default", ingester.addr);
    let http = ledgerline_stripe::tls::http_client_builder(&Default::default())
        .unwrap()
        .pool_max_idle_per_host(512)
        .build()
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let deliveries: Vec<(String, String, String)> = events
        .iter()
        .map(|(id, json)| {
            let header = signature_header(std::slice::from_ref(&secret), now, json.as_bytes());
            (id.clone(), json.clone(), header)
        })
        .collect();

    // Open loop: delivery i starts at start + i/rate, whatever the earlier ones are doing.
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for (i, (id, body, header)) in deliveries.into_iter().enumerate() {
        tokio::time::sleep_until(start + interval * u32::try_from(i).unwrap()).await;
        let req = http
            .post(&url)
            .header("Stripe-Signature", header)
            .body(body);
        tasks.push(tokio::spawn(async move {
            let at = Instant::now();
            let status = match req.send().await {
                Ok(resp) => resp.status().as_u16(),
                Err(e) => {
                    eprintln!("pipeline: delivery of {id} failed: {e}");
                    0
                }
            };
            Sent {
                id,
                at,
                acked: at.elapsed(),
                status,
            }
        }));
    }
    let send_secs = start.elapsed().as_secs_f64();
    let mut sent = Vec::with_capacity(total);
    for t in tasks {
        sent.push(t.await.unwrap());
    }
    let refused = sent.iter().filter(|s| s.status != 200).count();

    // Wait until every sent fact is committed (or the timeout).
    let deadline = Instant::now() + timeout;
    let missing = loop {
        let missing: Vec<&str> = {
            let s = seen.lock().unwrap();
            sent.iter()
                .filter(|x| !s.at.contains_key(&x.id))
                .map(|x| x.id.as_str())
                .collect()
        };
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    stop_watch.store(true, Ordering::Relaxed);
    watcher.join().unwrap();

    // Facts that posted at least one entry.
    let posting: HashSet<String> = sqlx::query_scalar(
        "SELECT DISTINCT f.fact_id FROM ledger_entry_meta m \
         JOIN ledger_facts f ON f.fact_seq = m.fact_seq",
    )
    .fetch_all(&ledger.pool)
    .await
    .unwrap()
    .into_iter()
    .collect();

    stop_tap.cancel();
    if let Some(t) = tap {
        t.await.unwrap();
    }
    let tapped = std::mem::take(&mut *tapped.lock().unwrap());
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let measured = &sent[skip..];
    let mut all = Vec::new();
    let mut with_entries = Vec::new();
    let mut acks = Vec::new();
    let (mut to_tap, mut tap_to_commit) = (Vec::new(), Vec::new());
    for s in measured {
        acks.push(s.acked);
        if let Some(t) = tapped.get(&s.id) {
            to_tap.push(t.saturating_duration_since(s.at));
            if let Some(at) = seen.at.get(&s.id) {
                tap_to_commit.push(at.saturating_duration_since(*t));
            }
        }
        if let Some(at) = seen.at.get(&s.id) {
            let d = at.saturating_duration_since(s.at);
            all.push(d);
            if posting.contains(&s.id) {
                with_entries.push(d);
            }
        }
    }
    let window_start = measured.first().map(|s| s.at);
    let window: Vec<&(Instant, usize)> = seen
        .commits
        .iter()
        .filter(|(at, _)| window_start.is_some_and(|w| *at >= w))
        .collect();
    let gaps: Vec<Duration> = window
        .windows(2)
        .map(|w| w[1].0.saturating_duration_since(w[0].0))
        .collect();
    let per_commit =
        window.iter().map(|(_, n)| n).sum::<usize>() as f64 / window.len().max(1) as f64;

    eprintln!(
        "pipeline: {total} deliveries in {send_secs:.1} s ({:.0}/s achieved of {rate}/s), \
         {refused} refused, {} committed, {} facts posted entries; statistics over the last {} \
         (the first {skip}, {warmup} s, are warm-up)",
        total as f64 / send_secs,
        total - missing.len(),
        posting.len(),
        measured.len(),
    );
    eprintln!(
        "pipeline: committed = seen by a watcher polling ledger_facts every {} ms \
         ({} polls, one per {:.2} ms on average); the ledger's commits seen: {} \
         ({per_commit:.1} facts each)",
        POLL.as_millis(),
        seen.polls,
        seen.ran.as_secs_f64() * 1000.0 / seen.polls.max(1) as f64,
        window.len()
    );
    summary("  send → 2xx (Kafka acked)        ", acks);
    if !tapped.is_empty() {
        summary("  send → Kafka delivered (tap)    ", to_tap);
        summary("  tap → committed                 ", tap_to_commit);
    }
    summary("  send → committed, all facts     ", all);
    summary("  send → committed, posting facts ", with_entries);
    summary("  between observed commits        ", gaps);

    stop_ingester.cancel();
    ingester.wait().await.unwrap();
    stop_ledger.cancel();
    ledger.task.await.unwrap().unwrap();
    sim.shutdown().await;

    let mut ok = true;
    if refused > 0 {
        eprintln!("pipeline: FAILED: {refused} deliveries were not answered 200");
        ok = false;
    }
    if !missing.is_empty() {
        eprintln!(
            "pipeline: FAILED: {} sent facts not committed within {timeout:?} of the last \
             send, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        ok = false;
    }
    ok
}

fn main() {
    // `BENCH_LOG=ledgerline_ledger=debug` shows the ledger's per-batch timings.
    if let Ok(filter) = std::env::var("BENCH_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if !rt.block_on(run()) {
        std::process::exit(1);
    }
}
