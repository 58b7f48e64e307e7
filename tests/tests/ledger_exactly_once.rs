//! The ledger end to end on the real broker and database: a stripe-sim world produced into
//! Kafka (with duplicates and an undecodable record) folded by two instances of one consumer
//! group; the books equal the core's in-memory fold and stripe-sim's ground truth; the hash
//! chain verifies and names a line changed by hand; the outbox publishes every entry.
#![allow(clippy::unwrap_used)]

mod ledger_support;

use std::time::Duration;

use ledger_support::*;
use ledgerline_bus::Topics;
use ledgerline_bus::topics::{DLQ_REASON_HEADER, dlq_of};
use ledgerline_tests::unique_name;
use rdkafka::Message as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_fold_a_world_exactly_once_into_verifiable_books() {
    let topics = Topics::with_prefix(format!("{}.", unique_name("lx")));
    create_topics(&topics).await;
    let (world, facts) = world_facts(6, 6_000);
    let produced = produce(&topics, &facts, 20).await;
    produce_raw(
        &topics.stripe_events(),
        "acct_platform/garbage",
        b"\xff not protobuf",
    )
    .await;
    let records = produced + 1;

    let (pool, url) = fresh_db("ledger_eo").await;
    let group = unique_name("ledger");
    let mut with_metrics = config(&url, &topics, &group);
    with_metrics.metrics_addr = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let (a, stop_a) = start(with_metrics).await;
    let (b, stop_b) = start(config(&url, &topics, &group)).await;
    wait_for_offsets(&pool, &group, records, Duration::from_secs(240)).await;

    // The books equal the core's fold of the same facts, entry for entry.
    let model = model(&facts);
    let stored = stored_digests(&pool).await;
    assert_eq!(stored.len(), model.entries().len(), "entry count");
    assert_eq!(
        stored,
        model_digests(&model),
        "entries differ from the core fold"
    );
    let conflicts: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger_conflicts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(usize::try_from(conflicts).unwrap(), model.conflicts().len());
    assert_ground_truth(&pool, &world).await;

    // Each instance trained a raw-fact dictionary on its first 1,000 facts unless the other's
    // was stored first (see `config`); every stored fact, with or without one, decodes to the
    // bytes its stored digest covers.
    let dictionaries: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger_raw_dictionaries")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        (1..=2).contains(&dictionaries),
        "{dictionaries} dictionaries"
    );
    let reader = ledgerline_ledger::PgStore::new(pool.clone());
    let mut tx = ledgerline_ledger::Store::begin_write(&reader)
        .await
        .unwrap();
    let stored_facts = ledgerline_ledger::store::ReadFacts::facts_since(&mut tx, 0, i64::MAX)
        .await
        .unwrap();
    drop(tx);
    let mut with_dictionary = 0;
    for mut f in stored_facts {
        with_dictionary +=
            usize::from(ledgerline_ledger::raw::frame_dictionary(&f.stored).is_some());
        let raw = f.take_raw().unwrap();
        assert_eq!(
            ledgerline_ledger::engine::fact_digest(&f.ledger, &raw).to_vec(),
            f.digest,
            "fact_seq {}",
            f.seq
        );
    }
    assert!(
        with_dictionary > 1_000,
        "{with_dictionary} facts with a dictionary"
    );

    // The undecodable record went to the DLQ with its reason.
    let dlq: StreamConsumer = kafka("ledger-test-dlq")
        .consumer(&unique_name("dlq"))
        .unwrap();
    dlq.subscribe(&[&dlq_of(&topics.stripe_events())]).unwrap();
    let m = tokio::time::timeout(Duration::from_secs(60), dlq.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.payload().unwrap(), b"\xff not protobuf");
    let reason = m
        .headers()
        .unwrap()
        .iter()
        .find(|h| h.key == DLQ_REASON_HEADER)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap();
    assert!(reason.contains("StripeEventRecord"), "{reason}");

    // Every entry reaches ledger.entries.v1 (at least once), decodable.
    let seen = published_entries(
        &kafka("ledger-test-out"),
        &topics.ledger_entries(),
        stored.len(),
    )
    .await;
    assert!(seen.iter().all(|id| stored.contains_key(id)));

    // The instances' builders (one at a time) added every queued posting to the balance cells.
    wait_for_none(
        &pool,
        "SELECT count(*) FROM ledger_cells_pending",
        "statements still queued for the cells",
        Duration::from_secs(60),
    )
    .await;
    // Every posting is in its cells exactly once: per key, the month cells of all recording
    // months (tier M) sum to the key's journal total.
    let differing: i64 = sqlx::query_scalar(
        "WITH c AS (SELECT k.account, k.currency, k.ledger, sum(c.amount) \
                       FROM ledger_balance_cells c JOIN ledger_balance_keys k USING (key_id) \
                     WHERE c.grain = 'm' AND c.tier = 'M' GROUP BY 1, 2, 3), \
              j AS (SELECT l.account, l.currency, e.ledger, sum(l.amount) FROM journal_lines l \
                     JOIN journal_entries e ON e.entry_id = l.entry_id GROUP BY 1, 2, 3) \
         SELECT count(*) FROM ((TABLE c EXCEPT TABLE j) UNION ALL (TABLE j EXCEPT TABLE c)) d",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let keys: i64 = sqlx::query_scalar("SELECT count(DISTINCT key_id) FROM ledger_balance_cells")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(differing, 0, "cells differ from the journal");
    assert!(keys > 10, "{keys} keys in the cells");

    // `/metrics` reports the group's progress as the books and the broker have it.
    let page = scrape(a.metrics_addr.unwrap()).await;
    let one = |name: &str| samples(&page, name).get("").copied();
    let facts: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger_facts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(one("ledgerline_ledger_facts"), Some(facts), "{page}");
    // The process's own memory, in bytes (more than the megabytes a bare process has).
    let resident = one("process_resident_memory_bytes").unwrap_or(0);
    assert!(resident > 10_000_000, "{resident} bytes resident");
    assert_eq!(
        one("ledgerline_ledger_entries"),
        Some(i64::try_from(stored.len()).unwrap())
    );
    assert_eq!(one("ledgerline_ledger_conflicts"), Some(conflicts));
    assert_eq!(one("ledgerline_ledger_cells_queued_statements"), Some(0));
    assert!(one("ledgerline_ledger_last_commit_timestamp_seconds").unwrap() > 1_700_000_000);
    let lag = samples(&page, "ledgerline_ledger_lag_records");
    assert_eq!(
        lag.len(),
        2 * usize::try_from(PARTITIONS).unwrap(),
        "a lag per consumed partition: {lag:?}"
    );
    assert!(lag.values().all(|n| *n == 0), "{lag:?}");
    let start = samples(&page, "ledgerline_ledger_log_start_offset");
    assert_eq!(start.len(), lag.len(), "{start:?}");
    assert!(
        start.values().all(|n| *n == 0),
        "the whole log is kept: {start:?}"
    );
    let committed: i64 = samples(&page, "ledgerline_ledger_committed_offset")
        .values()
        .sum();
    assert_eq!(committed, i64::try_from(records).unwrap());
    let dead = samples(&page, "ledgerline_ledger_dead_letters");
    assert_eq!(
        dead.get(&format!("topic=\"{}\"", topics.stripe_events())),
        Some(&1),
        "{dead:?}"
    );
    assert_eq!(
        dead.get(&format!(
            "topic=\"{}\"",
            topics.stripe_balance_transactions()
        )),
        Some(&0),
        "{dead:?}"
    );
    let errors = samples(&page, "ledgerline_ledger_scrape_error");
    assert!(
        errors.len() == 2 && errors.values().all(|e| *e == 0),
        "{errors:?}"
    );

    stop_a.cancel();
    stop_b.cancel();
    a.task.await.unwrap().unwrap();
    b.task.await.unwrap().unwrap();

    // The chains verify; a line changed by hand is named.
    let mut conn = pool.acquire().await.unwrap();
    let v = ledgerline_ledger::chain::verify(&mut conn).await.unwrap();
    assert!(v.ok(), "{:?}", v.first_bad);
    assert_eq!(usize::try_from(v.entries_checked).unwrap(), stored.len());
    let victim: uuid::Uuid = sqlx::query_scalar(
        "SELECT entry_id FROM ledger_entry_meta WHERE chain <> 'derived' \
         ORDER BY recorded_seq OFFSET 100 LIMIT 1",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    change_line_by_hand(&mut conn, victim).await;
    let v = ledgerline_ledger::chain::verify(&mut conn).await.unwrap();
    let (bad, why) = v.first_bad.expect("verification fails after tampering");
    assert_eq!(bad, victim, "{why}");
    drop(conn);

    // With no instance running, records produced since are the group's lag; a database that
    // cannot be read is reported as a scrape error, its figures left out.
    for i in 0..3 {
        produce_raw(
            &topics.stripe_events(),
            &format!("acct_platform/late{i}"),
            b"late",
        )
        .await;
    }
    let scraper =
        ledgerline_ledger::metrics::Scraper::new(pool.clone(), &kafka("m"), &group, &topics)
            .unwrap();
    let (offsets, _) = scraper.log_figures().await.unwrap();
    assert_eq!(
        offsets
            .iter()
            .map(ledgerline_ledger::metrics::PartitionOffsets::lag)
            .sum::<i64>(),
        3,
        "{offsets:?}"
    );
    pool.close().await;
    let page = scraper.render().await;
    assert_eq!(
        samples(&page, "ledgerline_ledger_scrape_error").get("source=\"database\""),
        Some(&1),
        "{page}"
    );
    assert!(
        samples(&page, "ledgerline_ledger_facts").is_empty(),
        "{page}"
    );
}

/// Backpressure from the balance cells: with no builder running, the writer stops once more
/// than `max_cells_backlog` lines statements wait for their cells (the queue every as-of query
/// reads stays bounded), and goes on as soon as a builder catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_writer_waits_while_the_cells_builder_is_behind() {
    let topics = Topics::with_prefix(format!("{}.", unique_name("lbp")));
    create_topics(&topics).await;
    let (_world, facts) = world_facts(8, 2_000);
    let records = produce(&topics, &facts, usize::MAX).await;
    let (pool, url) = fresh_db("ledger_backpressure").await;
    let group = unique_name("ledger");
    let mut c = config(&url, &topics, &group);
    c.build_cells = false;
    c.batch.max_records = 100;
    c.batch.max_cells_backlog = Some(1);
    let (ledger, stop) = start(c).await;

    let queued = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM ledger_cells_pending")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    // Two batches pass (the queue at 0, then at 1 = the limit); the third waits.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while queued().await < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer never wrote"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stalled_at = folded(&pool, &group).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(queued().await, 2, "the writer went past the backlog limit");
    assert_eq!(folded(&pool, &group).await, stalled_at);
    assert!(
        stalled_at < records,
        "{stalled_at} of {records}: nothing left to hold back"
    );

    // A builder catching up releases the writer, batch after batch.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while folded(&pool, &group).await < records {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer did not resume"
        );
        ledgerline_ledger::cells::build_all(&pool).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    ledgerline_ledger::cells::build_all(&pool).await.unwrap();
    stop.cancel();
    ledger.task.await.unwrap().unwrap();
    assert_eq!(queued().await, 0);
}
