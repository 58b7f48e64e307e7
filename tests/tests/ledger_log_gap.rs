//! Records the broker deleted before the ledger folded them (retention, `kafka-delete-records`)
//! must stop the ledger, naming what is missing: never a fold that silently resumes at the
//! log's new start, which would leave those facts out of the books for good. Offsets that hold
//! nothing to read (a transactional producer's commit markers) are no such gap.
#![allow(clippy::unwrap_used)]

mod ledger_support;

use std::collections::BTreeMap;
use std::time::Duration;

use ledger_support::*;
use ledgerline_bus::Topics;
use ledgerline_tests::unique_name;
use rdkafka::TopicPartitionList;
use rdkafka::admin::AdminOptions;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use sqlx::PgPool;

async fn stored_offsets(pool: &PgPool, group: &str) -> BTreeMap<(String, i32), i64> {
    sqlx::query_as::<_, (String, i32, i64)>(
        "SELECT topic, partition, next_offset FROM consumer_offsets WHERE consumer_group = $1",
    )
    .bind(group)
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(t, p, o)| ((t, p), o))
    .collect()
}

/// A ledger that folded `facts` (on topics of their own) and stopped.
struct Stopped {
    topics: Topics,
    pool: PgPool,
    url: String,
    group: String,
    /// Its stored offsets.
    before: BTreeMap<(String, i32), i64>,
}

async fn folded_then_stopped(prefix: &str, facts: &[WireFact]) -> Stopped {
    let topics = Topics::with_prefix(format!("{}.", unique_name(prefix)));
    create_topics(&topics).await;
    let records = produce(&topics, facts, 0).await;
    let (pool, url) = fresh_db(prefix).await;
    let group = unique_name("ledger");
    let (running, stop) = start(config(&url, &topics, &group)).await;
    wait_for_offsets(&pool, &group, records, Duration::from_secs(120)).await;
    stop.cancel();
    running.task.await.unwrap().unwrap();
    let before = stored_offsets(&pool, &group).await;
    Stopped {
        topics,
        pool,
        url,
        group,
        before,
    }
}

/// Right after a topic is created its leader may not be known yet: an error, not a number.
fn high_watermark(topic: &str, partition: i32) -> Result<i64, rdkafka::error::KafkaError> {
    let c: StreamConsumer = kafka("ledger-gap-wm").consumer(&unique_name("wm")).unwrap();
    c.fetch_watermarks(topic, partition, Duration::from_secs(10))
        .map(|(_, high)| high)
}

/// Starts the ledger again and returns the error it stops with (fails if it keeps running
/// for a minute, saying `kept_running`).
async fn restarted_error(url: &str, topics: &Topics, group: &str, kept_running: String) -> String {
    let (running, stop) = start(config(url, topics, group)).await;
    let ended = tokio::time::timeout(Duration::from_secs(60), running.task).await;
    stop.cancel();
    match ended {
        Ok(Ok(Err(e))) => e.to_string(),
        Ok(Ok(Ok(()))) => panic!("the ledger stopped without an error"),
        Ok(Err(e)) => panic!("the ledger's task failed: {e}"),
        Err(_) => panic!("{kept_running}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_deleted_before_they_were_folded_stop_the_ledger_naming_them() {
    let (facts, folded) = (world_facts(43, 1_600).1, 800);
    let Stopped {
        topics,
        pool,
        url,
        group,
        before,
    } = folded_then_stopped("lg", &facts[..folded]).await;
    let second = &facts[folded..];

    // While the ledger is down, more facts arrive and the broker deletes some of them from
    // one partition before the ledger has read them.
    produce(&topics, second, 0).await;
    let events = topics.stripe_events();
    let folded = before[&(events.clone(), 0)];
    let high = high_watermark(&events, 0).unwrap();
    assert!(
        high > folded + 2,
        "{high} records on {events}/0, {folded} folded"
    );
    let cut = folded + (high - folded) / 2;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&events, 0, rdkafka::Offset::Offset(cut))
        .unwrap();
    kafka("ledger-gap-admin")
        .admin()
        .unwrap()
        .delete_records(&tpl, &AdminOptions::new())
        .await
        .unwrap();

    let err = restarted_error(
        &url,
        &topics,
        &group,
        format!(
            "the ledger kept running over the gap: {folded} records of {events}/0 were folded, \
             and the log deleted those up to {cut}"
        ),
    )
    .await;
    let after = stored_offsets(&pool, &group).await;
    assert!(
        err.contains(&format!("{events}/0")) && err.contains(&folded.to_string()),
        "{err}"
    );
    assert!(err.contains(&cut.to_string()), "{err}");
    // Nothing past the gap was folded on that partition.
    assert_eq!(after[&(events.clone(), 0)], folded, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_taken_by_transaction_markers_are_no_gap() {
    let topics = Topics::with_prefix(format!("{}.", unique_name("lt")));
    create_topics(&topics).await;
    let (world, facts) = world_facts(47, 600);
    // Facts in transactions of 7: each commit leaves a marker at an offset of its own.
    let producer: FutureProducer = kafka("ledger-gap-txn")
        .with("transactional.id", unique_name("txn"))
        .with("transaction.timeout.ms", "10000")
        .idempotent_producer()
        .unwrap();
    producer.init_transactions(Duration::from_secs(30)).unwrap();
    for chunk in facts.chunks(7) {
        producer.begin_transaction().unwrap();
        for f in chunk {
            let topic = if f.topic_is_events {
                topics.stripe_events()
            } else {
                topics.stripe_balance_transactions()
            };
            producer
                .send(
                    FutureRecord::to(&topic).key(&f.key).payload(&f.payload),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(e, _)| e)
                .unwrap();
        }
        producer
            .commit_transaction(Duration::from_secs(30))
            .unwrap();
    }
    let events = topics.stripe_events();
    let on_log: i64 = (0..PARTITIONS)
        .map(|p| high_watermark(&events, p).unwrap())
        .sum();
    let event_facts = i64::try_from(facts.iter().filter(|f| f.topic_is_events).count()).unwrap();
    assert!(
        on_log > event_facts,
        "no markers: {on_log} offsets for {event_facts} facts"
    );

    let (pool, url) = fresh_db("ledger_txn").await;
    let group = unique_name("ledger");
    let (running, stop) = start(config(&url, &topics, &group)).await;
    // Every offset of both topics is covered but each partition's last: its last commit's
    // marker, after the last record the ledger reads.
    let all: i64 = on_log
        + (0..PARTITIONS)
            .map(|p| high_watermark(&topics.stripe_balance_transactions(), p).unwrap())
            .sum::<i64>();
    let markers_last = 2 * i64::from(PARTITIONS);
    let records = usize::try_from(all - markers_last).unwrap();
    wait_for_offsets(&pool, &group, records, Duration::from_secs(120)).await;
    assert!(!running.task.is_finished());
    assert_eq!(stored_digests(&pool).await, model_digests(&model(&facts)));
    assert_ground_truth(&pool, &world).await;
    stop.cancel();
    running.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_ends_below_the_folded_offsets_stops_the_ledger() {
    let (facts, folded) = (world_facts(53, 1_200).1, 900);
    let Stopped {
        topics,
        pool,
        url,
        group,
        before,
    } = folded_then_stopped("lr", &facts[..folded]).await;
    let second = &facts[folded..];

    // The topics are deleted and created again (a reset aimed at another environment, say),
    // and fewer records than the ledger folded arrive: their offsets are ones the ledger has
    // stored as folded.
    let admin = kafka("ledger-gap-admin").admin().unwrap();
    let names = [topics.stripe_events(), topics.stripe_balance_transactions()];
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    for r in admin
        .delete_topics(&refs, &AdminOptions::new())
        .await
        .unwrap()
    {
        r.unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let created = ledgerline_bus::ensure_topics(
            &admin,
            &names
                .iter()
                .map(|t| ledgerline_bus::TopicSpec::new(t.as_str(), PARTITIONS))
                .collect::<Vec<_>>(),
        )
        .await;
        let empty = names
            .iter()
            .all(|t| (0..PARTITIONS).all(|p| high_watermark(t, p).is_ok_and(|h| h == 0)));
        if created.is_ok() && empty {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "topics not recreated");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    produce(&topics, second, 0).await;

    let err = restarted_error(
        &url,
        &topics,
        &group,
        "the ledger kept running, skipping the new records as folded".to_owned(),
    )
    .await;
    assert!(err.contains("ends at offset"), "{err}");
    assert!(
        names.iter().any(|t| err.contains(&format!("{t}/"))),
        "{err}"
    );
    assert_eq!(stored_offsets(&pool, &group).await, before, "{err}");
}
