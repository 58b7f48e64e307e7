//! A broker outage: the ledger's Kafka broker is SIGKILLed while a batch with a dead letter is
//! in the writer's hands, stays down for longer than the producer's delivery timeout, and
//! comes back on the same address with the same data. The ledger rides it out (it neither
//! exits nor commits the batch before its dead letter is on the DLQ), then folds everything
//! published after it, and ends with exactly the books of the core's uninterrupted fold;
//! every entry reaches `ledger.entries.v1`.
//!
//! The broker is the test's own (`scripts/test-services kafka DIR`): the shared one must stay
//! up for every other test.
#![allow(clippy::unwrap_used)]

mod ledger_support;

use std::time::Duration;

use ledger_support::*;
use ledgerline_bus::Topics;
use ledgerline_bus::topics::{DLQ_REASON_HEADER, dlq_of};
use ledgerline_ledger::store::postgres::WRITER_LOCK;
use ledgerline_tests::own_broker::OwnBroker;
use ledgerline_tests::unique_name;
use rdkafka::Message as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers as _;
use sqlx::PgPool;

/// How long the ledger's producer tries to deliver a record (librdkafka's default is 5 min):
/// the outage below outlasts it several times over.
const DELIVERY_TIMEOUT_MS: &str = "2000";
const OUTAGE: Duration = Duration::from_secs(20);

/// Backends of this database waiting for an advisory lock: the ledger's writer, blocked.
async fn writers_waiting(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_outage_during_a_dead_letter_loses_nothing_and_doubles_nothing() {
    let broker = OwnBroker::start();
    let bootstrap = broker.bootstrap.clone();
    let topics = Topics::with_prefix(format!("{}.", unique_name("lb")));
    create_topics_at(&bootstrap, &topics).await;
    let (world, facts) = world_facts(29, 4_000);
    let (before, after) = facts.split_at(facts.len() / 2);
    let mut records = produce_at(&bootstrap, &topics, before, 25).await;
    let (pool, url) = fresh_db("ledger_broker").await;
    let group = unique_name("ledger");
    let mut config = config(&url, &topics, &group);
    config.kafka = kafka_at(&bootstrap, &unique_name("ledger"))
        .with("message.timeout.ms", DELIVERY_TIMEOUT_MS);
    config.metrics_addr = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let (running, stop) = start(config).await;
    wait_for_offsets(&pool, &group, records, Duration::from_secs(120)).await;
    let healthz = format!("http://{}/healthz", running.metrics_addr.unwrap());

    // Hold the writer back, publish one undecodable record, and wait until the writer asks for
    // the lock: the batch in its hands is that record, a dead letter.
    let mut blocker = pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(WRITER_LOCK)
        .execute(&mut *blocker)
        .await
        .unwrap();
    produce_raw_at(
        &bootstrap,
        &topics.stripe_events(),
        "acct_platform/evt_broken",
        b"\xff not protobuf",
    )
    .await;
    records += 1;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while writers_waiting(&pool).await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the writer never asked for the lock"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The broker dies; the writer goes on and cannot deliver the dead letter.
    broker.kill();
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(WRITER_LOCK)
        .execute(&mut *blocker)
        .await
        .unwrap();
    drop(blocker);
    let down = tokio::time::Instant::now();
    while down.elapsed() < OUTAGE {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !running.task.is_finished(),
            "the ledger stopped {:?} into the broker outage",
            down.elapsed()
        );
        // Not committed: its offset must not pass a record the DLQ does not have.
        assert_eq!(folded(&pool, &group).await, records - 1);
    }
    let (alive, said) = probe(healthz).await;
    assert!(alive, "/healthz during the outage: {said}");
    // A scrape answers in time and says the broker, not the database, is unreadable.
    let page = tokio::time::timeout(
        Duration::from_secs(15),
        scrape(running.metrics_addr.unwrap()),
    )
    .await
    .expect("/metrics answers during a broker outage");
    let errors = samples(&page, "ledgerline_ledger_scrape_error");
    assert_eq!(errors.get("source=\"kafka\""), Some(&1), "{page}");
    assert_eq!(errors.get("source=\"database\""), Some(&0), "{page}");

    // Back on the same address with the same data: the dead letter goes out, then the rest.
    broker.restart();
    records += produce_at(&bootstrap, &topics, after, 25).await;
    wait_for_offsets(&pool, &group, records, Duration::from_secs(180)).await;
    assert!(!running.task.is_finished());

    let model = model(&facts);
    let stored = stored_digests(&pool).await;
    assert_eq!(
        stored,
        model_digests(&model),
        "the books differ from the core's fold"
    );
    assert_ground_truth(&pool, &world).await;

    let dlq: StreamConsumer = kafka_at(&bootstrap, "ledger-test-dlq")
        .consumer(&unique_name("dlq"))
        .unwrap();
    dlq.subscribe(&[&dlq_of(&topics.stripe_events())]).unwrap();
    let m = tokio::time::timeout(Duration::from_secs(60), dlq.recv())
        .await
        .expect("the dead letter reached the DLQ")
        .unwrap();
    assert_eq!(m.payload().unwrap(), b"\xff not protobuf");
    assert!(
        m.headers()
            .unwrap()
            .iter()
            .any(|h| h.key == DLQ_REASON_HEADER)
    );

    // Every entry reaches ledger.entries.v1 (at least once), and the outbox empties.
    let seen = published_entries(
        &kafka_at(&bootstrap, "ledger-test-out"),
        &topics.ledger_entries(),
        stored.len(),
    )
    .await;
    assert!(seen.iter().all(|id| stored.contains_key(id)));
    wait_for_none(
        &pool,
        "SELECT count(*) FROM ledger_outbox",
        "outbox rows",
        Duration::from_secs(60),
    )
    .await;

    stop.cancel();
    running.task.await.unwrap().unwrap();
}
