//! Bounded memory: a backlog far larger than the catch-up buffer (events and balance
//! transactions, from no cursor and from an old cursor) is read in bounded chunks — never more
//! than the buffer plus one page in memory — and published completely, once, oldest first.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use ledgerline_proto::stripe::v1::{BalanceTransactionRecord, StripeEventRecord};
use ledgerline_stripe_sim::http::{ClockConfig, DEFAULT_TEST_KEY, SimConfig, SimServer};
use ledgerline_stripe_sim::object::ObjectKind;
use ledgerline_stripe_sim::world::{World, WorldConfig};
use prost::Message as _;
use tokio_util::sync::CancellationToken;

const BUFFER: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_backlog_is_processed_in_bounded_chunks_without_losing_anything() {
    let world = World::generate(&WorldConfig {
        connected_accounts: 0,
        days: Some(12),
        ..WorldConfig::with_facts(31, 3_000)
    });
    let start = world.config.start;
    let end = world.truth.end;
    let middle = start + (end - start) / 3;
    let events: Vec<(i64, String)> = world
        .objects
        .iter()
        .filter(|o| o.kind == ObjectKind::Event)
        .map(|o| (o.created, o.id.clone()))
        .collect();
    let bts: HashSet<String> = world
        .objects
        .iter()
        .filter(|o| o.kind == ObjectKind::BalanceTransaction)
        .map(|o| o.id.clone())
        .collect();
    let before_middle = events.iter().filter(|(c, _)| *c <= middle).count();
    assert!(
        before_middle > 3 * BUFFER && events.len() - before_middle > 3 * BUFFER,
        "both backlogs must dwarf the buffer"
    );
    let last_created = |t: i64| {
        events
            .iter()
            .filter(|(c, _)| *c <= t)
            .map(|(c, _)| *c)
            .max()
    };
    let sim = SimServer::start(
        SimConfig {
            clock: ClockConfig {
                start: Some(middle),
                speed: 0,
            },
            ..SimConfig::default()
        },
        world.objects,
    )
    .await
    .unwrap();
    let (mut cfg, db_url) = common::config(&sim.base_url(), DEFAULT_TEST_KEY, Vec::new()).await;
    cfg.partitions = 1; // one partition: the topic's order is the publishing order
    cfg.catch_up_buffer = BUFFER;
    cfg.gap_fill = false;
    cfg.accounts[0].client.requests_per_sec = Some(0);
    let topics = cfg.topics.clone();
    let pool = sqlx::PgPool::connect(&db_url).await.unwrap();

    // Phase 1: no cursor, a backlog up to `middle`; phase 2: from that cursor to the end.
    let mut max_buffered = 0;
    for (phase, now) in [(1, middle), (2, end + 1)] {
        sim.handle().set_now(now);
        let want = last_created(now).unwrap();
        let shutdown = CancellationToken::new();
        let running = ledgerline_ingester::start(cfg.clone(), shutdown.clone())
            .await
            .unwrap();
        let metrics = running.metrics.clone();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let at: Option<(serde_json::Value,)> =
                sqlx::query_as("SELECT position FROM ingester_cursors WHERE stream = 'events'")
                    .fetch_optional(&pool)
                    .await
                    .unwrap();
            let bt: Option<(serde_json::Value,)> = sqlx::query_as(
                "SELECT position FROM ingester_cursors WHERE stream = 'balance_transactions'",
            )
            .fetch_optional(&pool)
            .await
            .unwrap();
            if at.is_some_and(|(p,)| p["created"] == want) && bt.is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "phase {phase}: no catch-up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The balance-transaction walk of this round finishes too.
        tokio::time::sleep(Duration::from_secs(1)).await;
        shutdown.cancel();
        running.wait().await.unwrap();
        let m = usize::try_from(metrics.buffered_max()).unwrap();
        assert!(
            m > 0 && m <= BUFFER + 100,
            "phase {phase}: {m} objects held at once"
        );
        max_buffered = max_buffered.max(m);
    }

    let records = common::consume_all(&topics.stripe_events(), Duration::from_secs(3)).await;
    let mut seen = HashSet::new();
    let mut previous = i64::MIN;
    for (_, v) in &records {
        let r = StripeEventRecord::decode(v.as_slice()).unwrap();
        assert!(
            r.created >= previous,
            "not oldest first: {} after {previous}",
            r.created
        );
        previous = r.created;
        assert!(
            seen.insert(r.event_id.clone()),
            "{} published twice",
            r.event_id
        );
    }
    let want: HashSet<String> = events.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(seen.len(), want.len());
    assert_eq!(seen, want);
    let records = common::consume_all(
        &topics.stripe_balance_transactions(),
        Duration::from_secs(3),
    )
    .await;
    let seen_bts: HashSet<String> = records
        .iter()
        .map(|(_, v)| {
            BalanceTransactionRecord::decode(v.as_slice())
                .unwrap()
                .balance_transaction_id
        })
        .collect();
    assert_eq!(seen_bts, bts);
    println!(
        "{} events and {} balance transactions with at most {max_buffered} objects in memory (buffer {BUFFER})",
        want.len(),
        bts.len()
    );
    sim.shutdown().await;
}
