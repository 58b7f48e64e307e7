//! Helpers for the ledger's end-to-end tests: stripe-sim worlds produced straight into Kafka,
//! the in-memory core fold of the same facts, ledger instances, and reading the books back.
#![allow(dead_code, clippy::unwrap_used, unreachable_pub)]

use std::collections::BTreeMap;
use std::time::Duration;

use ledgerline_bus::topics::stripe_object_key;
use ledgerline_bus::{KafkaConfig, TopicSpec, Topics, ensure_topics};
use ledgerline_core::{Account, Currency, Ledger};
use ledgerline_ledger::chain::Canonical;
use ledgerline_ledger::engine::{InRecord, TopicKind};
use ledgerline_ledger::{Config, Running};
use ledgerline_proto::stripe::v1::{BalanceTransactionRecord, IngestSource, StripeEventRecord};
use ledgerline_stripe_sim::object::ObjectKind;
use ledgerline_stripe_sim::world::{World, WorldConfig};
use ledgerline_tests::{database_url, kafka_bootstrap_servers, unique_name};
use prost::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rust_decimal::Decimal;
use sqlx::{PgPool, Row};
use tokio_util::sync::CancellationToken;

pub const PLATFORM: &str = "acct_platform";
pub const PARTITIONS: i32 = 3;

/// One fact as it goes on the wire.
#[derive(Clone)]
pub struct WireFact {
    pub topic_is_events: bool,
    pub account: String,
    pub key: String,
    pub payload: Vec<u8>,
    pub raw: Vec<u8>,
}

pub fn world_facts(seed: u64, n: u64) -> (World, Vec<WireFact>) {
    let world = World::generate(&WorldConfig::with_facts(seed, n));
    let mut out = Vec::new();
    for o in &world.objects {
        let account = o.account.clone().unwrap_or_else(|| PLATFORM.to_owned());
        match o.kind {
            ObjectKind::Event => {
                let v: serde_json::Value = serde_json::from_str(&o.json).unwrap();
                let object_id = v["data"]["object"]["id"].as_str().unwrap_or("").to_owned();
                let record = StripeEventRecord {
                    event_id: o.id.clone(),
                    event_type: v["type"].as_str().unwrap_or("").to_owned(),
                    account: account.clone(),
                    livemode: o.livemode,
                    created: o.created,
                    source: IngestSource::Webhook as i32,
                    object_id: object_id.clone(),
                    raw_json: o.json.clone().into_bytes(),
                    ..Default::default()
                };
                out.push(WireFact {
                    topic_is_events: true,
                    key: stripe_object_key(&account, &object_id),
                    account,
                    payload: record.encode_to_vec(),
                    raw: o.json.clone().into_bytes(),
                });
            }
            ObjectKind::BalanceTransaction => {
                let record = BalanceTransactionRecord {
                    balance_transaction_id: o.id.clone(),
                    account: account.clone(),
                    livemode: o.livemode,
                    created: o.created,
                    available_on: o.available_on.unwrap_or_default(),
                    source: IngestSource::BalanceTransactionsApi as i32,
                    raw_json: o.json.clone().into_bytes(),
                    ..Default::default()
                };
                out.push(WireFact {
                    topic_is_events: false,
                    key: stripe_object_key(&account, &o.id),
                    account,
                    payload: record.encode_to_vec(),
                    raw: o.json.clone().into_bytes(),
                });
            }
            _ => {}
        }
    }
    (world, out)
}

/// The dead letters an embedded log holds on `topic` (an events topic's `.dlq`): each one's
/// event id and reason, in order.
pub fn dead_events(dlq: &ledgerline_bus::EmbeddedLog, topic: &str) -> Vec<(String, String)> {
    dlq.read(topic, 0, 0)
        .into_iter()
        .map(|r| {
            let event = StripeEventRecord::decode(r.payload.as_deref().unwrap()).unwrap();
            let reason = r.header(ledgerline_bus::topics::DLQ_REASON_HEADER).unwrap();
            (event.event_id, String::from_utf8(reason.to_vec()).unwrap())
        })
        .collect()
}

/// Folds `records` (events on `e`, balance transactions on `b`, as [`in_records`] names them)
/// into `store` with `engine`, 200 a batch, dead letters to an embedded log; checks that every
/// record was folded and the chain verifies, and returns the dead letters' reasons (the
/// events' first).
pub async fn fold_all_with<S: ledgerline_ledger::Store>(
    store: &S,
    engine: &mut ledgerline_ledger::Engine,
    records: &[InRecord],
) -> Vec<String> {
    let dlq = ledgerline_bus::EmbeddedLog::in_memory(1);
    let mut folded = 0;
    for chunk in records.chunks(200) {
        folded += ledgerline_ledger::consumer::fold_and_commit(store, engine, &dlq, "g", chunk)
            .await
            .unwrap()
            .records;
    }
    assert_eq!(folded, records.len());
    assert!(store.verify_chain().await.unwrap().ok());
    ["e.dlq", "b.dlq"]
        .into_iter()
        .flat_map(|topic| dlq.read(topic, 0, 0))
        .map(|r| {
            let reason = r.header(ledgerline_bus::topics::DLQ_REASON_HEADER).unwrap();
            String::from_utf8(reason.to_vec()).unwrap()
        })
        .collect()
}

/// The facts but those with one of `ids`.
pub fn facts_without(facts: &[WireFact], ids: &[&str]) -> Vec<WireFact> {
    facts
        .iter()
        .filter(|f| {
            let id = ledgerline_core::post_raw(&f.account, &f.raw).map(|p| p.fact_id.to_string());
            !id.is_ok_and(|id| ids.contains(&id.as_str()))
        })
        .cloned()
        .collect()
}

/// The core's in-memory fold of the same facts: the model the database must equal.
/// The facts as consumed records, handed to the fold directly (no broker): events on topic
/// `e`, balance transactions on `b`, one partition each, offsets counting from 0 per topic.
pub fn in_records<'a>(facts: impl IntoIterator<Item = &'a WireFact>) -> Vec<InRecord> {
    let mut offsets = [0i64; 2];
    facts
        .into_iter()
        .map(|f| {
            let i = usize::from(!f.topic_is_events);
            offsets[i] += 1;
            InRecord {
                topic: if f.topic_is_events { "e" } else { "b" }.into(),
                kind: if f.topic_is_events {
                    TopicKind::Events
                } else {
                    TopicKind::BalanceTransactions
                },
                partition: 0,
                offset: offsets[i] - 1,
                key: Some(f.key.clone().into_bytes()),
                payload: Some(f.payload.clone()),
            }
        })
        .collect()
}

pub fn model(facts: &[WireFact]) -> Ledger {
    let mut l = Ledger::new();
    for f in facts {
        let _ = l.apply(&f.account, &f.raw);
    }
    l
}

pub fn kafka(client: &str) -> KafkaConfig {
    kafka_at(&kafka_bootstrap_servers(), client)
}

/// [`kafka`] for the broker at `bootstrap` (a test's own broker).
pub fn kafka_at(bootstrap: &str, client: &str) -> KafkaConfig {
    KafkaConfig::new(bootstrap, client)
        // A killed instance's partitions move on quickly.
        .with("session.timeout.ms", "6000")
        .with("heartbeat.interval.ms", "500")
}

pub async fn create_topics(topics: &Topics) {
    create_topics_at(&kafka_bootstrap_servers(), topics).await;
}

pub async fn create_topics_at(bootstrap: &str, topics: &Topics) {
    let admin = kafka_at(bootstrap, "ledger-test-admin").admin().unwrap();
    let specs: Vec<TopicSpec> = [
        topics.stripe_events(),
        topics.stripe_balance_transactions(),
        topics.ledger_entries(),
    ]
    .into_iter()
    .map(|t| TopicSpec::new(t, PARTITIONS))
    .collect();
    ensure_topics(&admin, &specs).await.unwrap();
}

/// Produces the facts (and the extra raw records) and returns how many records went out.
pub async fn produce(topics: &Topics, facts: &[WireFact], duplicate_every: usize) -> usize {
    produce_at(&kafka_bootstrap_servers(), topics, facts, duplicate_every).await
}

/// [`produce`] to the broker at `bootstrap`.
pub async fn produce_at(
    bootstrap: &str,
    topics: &Topics,
    facts: &[WireFact],
    duplicate_every: usize,
) -> usize {
    let producer: FutureProducer = kafka_at(bootstrap, "ledger-test-producer")
        .idempotent_producer()
        .unwrap();
    let events = topics.stripe_events();
    let bts = topics.stripe_balance_transactions();
    let mut sends = Vec::new();
    let mut count = 0;
    let dup = facts.iter().step_by(duplicate_every.max(1));
    for f in facts.iter().chain(dup) {
        let topic = if f.topic_is_events { &events } else { &bts };
        sends.push(producer.send(
            FutureRecord::to(topic).key(&f.key).payload(&f.payload),
            Duration::from_secs(60),
        ));
        count += 1;
        if sends.len() >= 2000 {
            for s in futures::future::join_all(sends.drain(..)).await {
                s.map_err(|(e, _)| e).unwrap();
            }
        }
    }
    for s in futures::future::join_all(sends).await {
        s.map_err(|(e, _)| e).unwrap();
    }
    count
}

pub async fn produce_raw(topic: &str, key: &str, payload: &[u8]) {
    produce_raw_at(&kafka_bootstrap_servers(), topic, key, payload).await;
}

pub async fn produce_raw_at(bootstrap: &str, topic: &str, key: &str, payload: &[u8]) {
    let producer: FutureProducer = kafka_at(bootstrap, "ledger-test-producer")
        .idempotent_producer()
        .unwrap();
    producer
        .send(
            FutureRecord::to(topic).key(key).payload(payload),
            Duration::from_secs(60),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
}

pub fn config(db_url: &str, topics: &Topics, group: &str) -> Config {
    let mut c = Config::new(db_url, kafka(&unique_name("ledger")));
    c.topics = topics.clone();
    c.group_id = group.to_owned();
    c.partitions = PARTITIONS;
    // Train the raw-fact dictionary early (the default waits for 4,000 facts): the tests'
    // worlds then store facts both without and with one.
    c.raw_dictionary_samples = 1_000;
    c
}

/// The database URL of a fresh database (the ledger migrates it itself).
pub async fn fresh_db(prefix: &str) -> (PgPool, String) {
    let (pool, name) = ledgerline_tests::fresh_database(prefix).await.unwrap();
    let mut url: url_like::Url = database_url().parse().unwrap();
    url.set_database(&name);
    (pool, url.to_string())
}

/// Minimal URL surgery: replaces the path (database name) of a `postgres://` URL.
pub mod url_like {
    pub struct Url {
        base: String,
        query: String,
        db: String,
    }
    impl std::str::FromStr for Url {
        type Err = String;
        fn from_str(s: &str) -> Result<Self, String> {
            let (head, query) = s.split_once('?').map_or((s, ""), |(h, q)| (h, q));
            let scheme_end = head.find("://").ok_or("no scheme")? + 3;
            let path_start = head[scheme_end..]
                .find('/')
                .map_or(head.len(), |i| i + scheme_end);
            Ok(Self {
                base: head[..path_start].to_owned(),
                query: query.to_owned(),
                db: head[path_start..].trim_start_matches('/').to_owned(),
            })
        }
    }
    impl Url {
        pub fn set_database(&mut self, db: &str) {
            db.clone_into(&mut self.db);
        }
    }
    impl std::fmt::Display for Url {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}/{}", self.base, self.db)?;
            if !self.query.is_empty() {
                write!(f, "?{}", self.query)?;
            }
            Ok(())
        }
    }
}

pub async fn start(config: Config) -> (Running, CancellationToken) {
    let stop = CancellationToken::new();
    let running = ledgerline_ledger::start(config, stop.clone())
        .await
        .unwrap();
    (running, stop)
}

/// How many records the group's stored offsets cover.
pub async fn folded(pool: &PgPool, group: &str) -> usize {
    let done: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets WHERE consumer_group = $1",
    )
    .bind(group)
    .fetch_one(pool)
    .await
    .unwrap_or(0);
    usize::try_from(done).unwrap()
}

/// Waits until the group's stored offsets reach a random point (from `seed`) in the first half
/// of the work left after `before`, so that a kill right after lands mid-fold however fast the
/// machine is (never in the last half, which a fast fold could finish before the kill).
pub async fn wait_for_random_point(
    pool: &PgPool,
    group: &str,
    before: usize,
    records: usize,
    seed: u32,
) {
    let remaining = records - before;
    let target = before + 1 + usize::try_from(seed).unwrap() % (remaining / 2).max(1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while folded(pool, group).await < target && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the group's stored offsets cover `records` records.
pub async fn wait_for_offsets(pool: &PgPool, group: &str, records: usize, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let done: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets WHERE consumer_group = $1",
        )
        .bind(group)
        .fetch_one(pool)
        .await
        .unwrap_or(0);
        if usize::try_from(done).unwrap() >= records {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the ledger folded {done} of {records} records in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The ids of the entries on `topic` (`ledger.entries.v1`) once `count` distinct ones came,
/// each decodable with at least two lines; fails after 60 s without a new record.
pub async fn published_entries(
    kafka: &KafkaConfig,
    topic: &str,
    count: usize,
) -> std::collections::HashSet<uuid::Uuid> {
    use rdkafka::Message as _;
    use rdkafka::consumer::{Consumer as _, StreamConsumer};
    let out: StreamConsumer = kafka.consumer(&unique_name("out")).unwrap();
    out.subscribe(&[topic]).unwrap();
    let mut seen = std::collections::HashSet::new();
    while seen.len() < count {
        let m = tokio::time::timeout(Duration::from_secs(60), out.recv())
            .await
            .unwrap_or_else(|_| panic!("{} of {count} entries published", seen.len()))
            .unwrap();
        let e = ledgerline_proto::ledger::v1::JournalEntry::decode(m.payload().unwrap()).unwrap();
        assert!(e.lines.len() >= 2, "{e:?}");
        seen.insert(uuid::Uuid::parse_str(&e.entry_id).unwrap());
    }
    seen
}

/// Waits until `count_query` (a `SELECT count(*) …`) answers 0; `what` names the rows.
pub async fn wait_for_none(pool: &PgPool, count_query: &'static str, what: &str, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left: i64 = sqlx::query_scalar(count_query)
            .fetch_one(pool)
            .await
            .unwrap();
        if left == 0 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{left} {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every stored entry, by id, with its canonical digest.
pub async fn stored_digests(pool: &PgPool) -> BTreeMap<uuid::Uuid, [u8; 32]> {
    let mut conn = pool.acquire().await.unwrap();
    ledgerline_ledger::chain::stored_entries(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.entry_id, c.digest()))
        .collect()
}

/// What a store holds of every entry: id → content digest recomputed from its stored rows
/// (either store; [`stored_digests`] reads PostgreSQL with SQL).
pub async fn store_digests<S: ledgerline_ledger::Store>(
    store: &S,
) -> BTreeMap<uuid::Uuid, [u8; 32]> {
    store
        .stored_entries()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.entry_id, c.digest()))
        .collect()
}

pub fn model_digests(l: &Ledger) -> BTreeMap<uuid::Uuid, [u8; 32]> {
    l.entries()
        .iter()
        .map(|e| {
            let c = Canonical::from_entry(e);
            (c.entry_id, c.digest())
        })
        .collect()
}

/// What a core journal knows of every entry it posted (id → content digest prefix), kept whole
/// or not: equal for the ledger's lean journal and a full fold of the same facts.
pub fn core_state(l: &Ledger) -> BTreeMap<uuid::Uuid, [u8; 16]> {
    l.entry_digests()
        .map(|(id, digest)| (id.as_uuid(), digest))
        .collect()
}

pub async fn chain_heads(pool: &PgPool) -> Vec<(String, i64, Vec<u8>)> {
    sqlx::query("SELECT chain, length, head FROM ledger_chain_heads ORDER BY chain")
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// Asserts the books' Stripe balances equal stripe-sim's ground truth at the world's end.
pub async fn assert_ground_truth(pool: &PgPool, world: &World) {
    let pending = Account::StripePending.to_string();
    let available = Account::StripeAvailable.to_string();
    let end = ledgerline_ledger::engine::timestamp_of(world.truth.end);
    for (ac, bal) in &world.truth.balances {
        let ledger = ac.account.clone().unwrap_or_else(|| PLATFORM.to_owned());
        let sum: Option<Decimal> = sqlx::query_scalar(
            "SELECT sum(l.amount) FROM journal_lines l JOIN journal_entries e USING (entry_id) \
             WHERE e.ledger = $1 AND l.currency = $2 AND l.account IN ($3, $4) AND e.effective_at <= $5",
        )
        .bind(&ledger)
        .bind(&ac.currency)
        .bind(&pending)
        .bind(&available)
        .bind(end)
        .fetch_one(pool)
        .await
        .unwrap();
        let currency = Currency::parse(&ac.currency).unwrap();
        let got = currency.decimal_to_minor(sum.unwrap_or_default()).unwrap();
        assert_eq!(
            got,
            bal.pending + bal.available,
            "Stripe balance of {ledger} in {}",
            ac.currency
        );
    }
}

/// `GET /metrics` from a ledger's metrics listener (plain HTTP/1.1, no client library needed).
pub async fn scrape(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: ledger\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain"), "{head}");
    body.to_owned()
}

/// The samples of metric `name` on a Prometheus text page: labels (as written) → value.
pub fn samples(page: &str, name: &str) -> BTreeMap<String, i64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let labels = match series.split_once('{') {
                Some((n, rest)) if n == name => rest.trim_end_matches('}').to_owned(),
                None if series == name => String::new(),
                _ => return None,
            };
            Some((labels, value.parse().unwrap()))
        })
        .collect()
}

/// The ledger's service binary (`ledgerline-ledger`), built by cargo with the tests as
/// `ledgerline-ledger-under-test` (tests/Cargo.toml).
pub fn ledger_binary() -> std::path::PathBuf {
    env!("CARGO_BIN_EXE_ledgerline-ledger-under-test").into()
}

/// Adds 1 to line 0 of `entry` the way only someone outside the ledger could: as superuser, with
/// the append-only and balance triggers off for that one statement.
pub async fn change_line_by_hand(conn: &mut sqlx::PgConnection, entry: uuid::Uuid) {
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("UPDATE journal_lines SET amount = amount + 1 WHERE entry_id = $1 AND line_no = 0")
        .bind(entry)
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("SET session_replication_role = origin")
        .execute(&mut *conn)
        .await
        .unwrap();
}

/// `ledgerline health URL`, in process: (ready, what it printed).
pub async fn probe(url: String) -> (bool, String) {
    let mut out = Vec::new();
    let outcome = ledgerline_cli::health::HealthArgs {
        url,
        service: String::new(),
        timeout_secs: 5,
    }
    .run(&mut out)
    .await;
    let text = String::from_utf8_lossy(&out).into_owned();
    match outcome {
        Ok(ledgerline_cli::Outcome::Ok) => (true, text),
        Ok(ledgerline_cli::Outcome::Failed) => (false, text),
        Err(e) => (false, format!("{text}{e}")),
    }
}
