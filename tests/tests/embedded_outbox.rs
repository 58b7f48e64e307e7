//! The embedded mode's transactional outbox (`ledgerline_ledger::embedded_outbox`), on a real
//! SQLite file and a persisted embedded log: a ledger started with `start_embedded` folds a
//! stripe-sim world (facts on the log before it starts and while it runs) and publishes every
//! stored entry exactly once on the log's `ledger.entries.v1` (the Kafka publisher's key and
//! payload, the key's partition, each chain in recording order within a partition), durable
//! across reopening the log, and leaves the outbox empty; restarted over the same files, it
//! publishes nothing again. A publisher whose append fails deletes nothing and stops with the
//! error.
#![allow(clippy::unwrap_used)]

mod ledger_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use ledger_support::*;
use ledgerline_bus::log::{BoxFuture, partition_for_key};
use ledgerline_bus::{BusError, EmbeddedLog, LogPublisher, OutRecord, Topics};
use ledgerline_ledger::consumer::fold_and_commit;
use ledgerline_ledger::engine::{Engine, InRecord, TopicKind};
use ledgerline_ledger::store::{SqliteStore, Store as _};
use ledgerline_ledger::{EmbeddedConfig, embedded_outbox, start_embedded};
use ledgerline_proto::ledger::v1::JournalEntry;
use prost::Message as _;
use tokio_util::sync::CancellationToken;

const GROUP: &str = "ledger-embedded-outbox";

/// Appends `facts` to the log's fact topics, keyed as the ingester keys them.
async fn append_facts(log: &EmbeddedLog, topics: &Topics, facts: &[&WireFact]) {
    let (events, bts) = (topics.stripe_events(), topics.stripe_balance_transactions());
    let records: Vec<OutRecord<'_>> = facts
        .iter()
        .map(|f| {
            let topic = if f.topic_is_events { &events } else { &bts };
            OutRecord::new(topic, f.key.as_bytes(), &f.payload)
        })
        .collect();
    log.publish(&records).await.unwrap();
}

/// Waits until the ledger folded every record of the fact topics and its outbox is empty.
async fn wait_folded_and_published(log: &EmbeddedLog, topics: &Topics, store: &SqliteStore) {
    let fact_topics = [topics.stripe_events(), topics.stripe_balance_transactions()];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let on_log: i64 = fact_topics.iter().flat_map(|t| log.end_offsets(t)).sum();
        let folded: i64 = store
            .load_offsets(GROUP)
            .await
            .unwrap()
            .iter()
            .filter(|((t, _), _)| fact_topics.contains(t))
            .map(|(_, o)| *o)
            .sum();
        let waiting = store.outbox_len().await.unwrap();
        if folded >= on_log && waiting == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "after 60 s: {folded} of {on_log} records folded, {waiting} outbox rows unpublished"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn start(
    store: &SqliteStore,
    log: &EmbeddedLog,
    topics: &Topics,
) -> (ledgerline_ledger::EmbeddedRunning, CancellationToken) {
    let stop = CancellationToken::new();
    let running = start_embedded(
        store.clone(),
        log.clone(),
        EmbeddedConfig {
            topics: topics.clone(),
            group_id: GROUP.into(),
            partitions: PARTITIONS,
            ..EmbeddedConfig::default()
        },
        stop.clone(),
    )
    .await
    .unwrap();
    (running, stop)
}

async fn stop(running: ledgerline_ledger::EmbeddedRunning, stop: CancellationToken) {
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(30), running.task)
        .await
        .expect("the ledger stops at shutdown")
        .unwrap()
        .unwrap();
}

/// Every record of `ledger.entries.v1` in the log under `dir`, reopened from its files:
/// (partition, key, decoded entry) in offset order per partition.
fn published(dir: &Path, topics: &Topics) -> Vec<(i32, String, JournalEntry)> {
    let log = EmbeddedLog::open(dir, PARTITIONS).unwrap();
    let topic = topics.ledger_entries();
    assert_eq!(log.partitions(&topic), PARTITIONS, "the ledger created it");
    let mut out = Vec::new();
    for p in 0..PARTITIONS {
        for r in log.read(&topic, p, 0) {
            let key = String::from_utf8(r.key.unwrap()).unwrap();
            let entry = JournalEntry::decode(r.payload.unwrap().as_slice()).unwrap();
            out.push((p, key, entry));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_ledger_publishes_every_entry_once_and_empties_its_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("log");
    let db = dir.path().join("ledger.sqlite");
    let topics = Topics::default();
    let (_, facts) = world_facts(23, 1_500);
    let (before, during) = facts.split_at(facts.len() / 2);

    let store = SqliteStore::open(&db).await.unwrap();
    let log = EmbeddedLog::open(&log_dir, PARTITIONS).unwrap();
    append_facts(&log, &topics, &before.iter().collect::<Vec<_>>()).await;
    let (running, cancel) = start(&store, &log, &topics).await;
    // The rest arrives while the ledger folds and publishes, in several appends.
    for chunk in during.chunks(100) {
        append_facts(&log, &topics, &chunk.iter().collect::<Vec<_>>()).await;
        tokio::task::yield_now().await;
    }
    wait_folded_and_published(&log, &topics, &store).await;
    stop(running, cancel).await;
    drop(log);

    let stored: BTreeMap<uuid::Uuid, String> = store
        .stored_entries()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.entry_id, c.ledger))
        .collect();
    assert!(stored.len() > 500, "a world's worth: {}", stored.len());
    let records = published(&log_dir, &topics);
    let mut ids = BTreeSet::new();
    let mut last_seq: BTreeMap<(i32, String), i64> = BTreeMap::new();
    for (partition, key, entry) in &records {
        let id = uuid::Uuid::parse_str(&entry.entry_id).unwrap();
        assert!(ids.insert(id), "{id} published twice in a clean run");
        assert_eq!(
            stored.get(&id),
            Some(&entry.ledger),
            "{id} is a stored entry"
        );
        assert_eq!(key, &format!("{}/{}", entry.ledger, entry.entry_id));
        assert!(entry.lines.len() >= 2, "{id}: a whole entry");
        assert_eq!(
            *partition,
            partition_for_key(key.as_bytes(), PARTITIONS),
            "{key}: the key's partition, as in Kafka"
        );
        // Within a partition, each chain's entries come in recording order.
        if let Some(prev) = last_seq.insert((*partition, entry.chain.clone()), entry.chain_seq) {
            assert!(
                entry.chain_seq > prev,
                "chain {} out of order in partition {partition}: {} after {prev}",
                entry.chain,
                entry.chain_seq
            );
        }
    }
    assert_eq!(
        ids.len(),
        stored.len(),
        "one record per stored entry, none missing"
    );
    assert_eq!(store.outbox_len().await.unwrap(), 0, "the outbox is empty");

    // Restarted over the same files with duplicates of facts already folded: nothing new is
    // stored, nothing is published again.
    let log = EmbeddedLog::open(&log_dir, PARTITIONS).unwrap();
    let (running, cancel) = start(&store, &log, &topics).await;
    append_facts(&log, &topics, &facts.iter().step_by(7).collect::<Vec<_>>()).await;
    wait_folded_and_published(&log, &topics, &store).await;
    stop(running, cancel).await;
    drop(log);
    assert_eq!(store.stored_entries().await.unwrap().len(), stored.len());
    assert_eq!(published(&log_dir, &topics).len(), records.len());
}

/// A log whose every append fails, as with a full disk.
struct FullDisk;

impl LogPublisher for FullDisk {
    fn publish<'a>(&'a self, _: &'a [OutRecord<'a>]) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async { Err(BusError::Log("injected: no space left on device".into())) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_append_deletes_nothing_and_stops_the_publisher() {
    let store = SqliteStore::in_memory().await.unwrap();
    let (_, facts) = world_facts(5, 300);
    let batch: Vec<InRecord> = facts
        .iter()
        .enumerate()
        .map(|(i, f)| InRecord {
            topic: "facts".into(),
            kind: if f.topic_is_events {
                TopicKind::Events
            } else {
                TopicKind::BalanceTransactions
            },
            partition: 0,
            offset: i64::try_from(i).unwrap(),
            key: Some(f.key.clone().into_bytes()),
            payload: Some(f.payload.clone()),
        })
        .collect();
    let dlq = EmbeddedLog::in_memory(1);
    let report = fold_and_commit(&store, &mut Engine::new(), &dlq, "g", &batch)
        .await
        .unwrap();
    let entries = i64::try_from(report.entries).unwrap();
    assert!(entries > 20, "{entries}");
    assert_eq!(store.outbox_len().await.unwrap(), entries);

    let topic = Topics::default().ledger_entries();
    let err = tokio::time::timeout(
        Duration::from_secs(30),
        embedded_outbox::run(
            store.clone(),
            FullDisk,
            topic.clone(),
            CancellationToken::new(),
        ),
    )
    .await
    .expect("the publisher stops on a failed append")
    .unwrap_err();
    assert!(err.to_string().contains("no space left"), "{err}");
    assert_eq!(
        store.outbox_len().await.unwrap(),
        entries,
        "nothing deleted that was not appended"
    );

    // A batch at a time, oldest first, until the outbox is empty.
    let log = EmbeddedLog::in_memory(PARTITIONS);
    let mut published = 0;
    loop {
        let n = embedded_outbox::publish_once(&store, &log, &topic, 7)
            .await
            .unwrap();
        if n == 0 {
            break;
        }
        assert!(n <= 7);
        published += n;
    }
    assert_eq!(i64::try_from(published).unwrap(), entries);
    assert_eq!(log.end_offsets(&topic).iter().sum::<i64>(), entries);
    assert_eq!(store.outbox_len().await.unwrap(), 0);
}
