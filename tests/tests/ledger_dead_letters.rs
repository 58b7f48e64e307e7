//! `ledgerline-ledger dead-letters`, on a real broker and database: a record the ledger cannot
//! decode is dead-lettered with its reason and its place in the source topic; a fact that an
//! earlier version dead-lettered (written to the DLQ by hand here) is missing from the books.
//! `list` shows both; `replay --all` publishes the fact again, the ledger folds it and the books
//! equal the ground truth, while the undecodable record is kept; a second replay doubles
//! nothing.
#![allow(clippy::unwrap_used)]

mod ledger_support;

use std::time::Duration;

use ledger_support::*;
use ledgerline_bus::Topics;
use ledgerline_bus::log::{LogPublisher as _, OutRecord, partition_for_key, read_to_end};
use ledgerline_bus::topics::{DLQ_REASON_HEADER, REPLAYED_FROM_HEADER, dlq_of};
use ledgerline_core::{Ledger, post_raw};
use ledgerline_tests::{kafka_bootstrap_servers, unique_name};

/// `ledgerline-ledger dead-letters ARGS` on the topics of `prefix` (no database: it needs none):
/// success, standard output, standard error.
fn dead_letters(prefix: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(ledger_binary())
        .arg("dead-letters")
        .args(args)
        .env("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap_servers())
        .env("LEDGERLINE_TOPIC_PREFIX", prefix)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_and_a_fixed_one_replayed_into_the_books() {
    let prefix = format!("{}.", unique_name("dl"));
    let topics = Topics::with_prefix(&prefix);
    let (world, facts) = world_facts(17, 500);
    // The fact an earlier version dead-lettered: an event that posts entries.
    let mut probe = Ledger::new();
    let held = facts
        .iter()
        .position(|f| {
            let posting = post_raw(&f.account, &f.raw).unwrap();
            !probe.apply_posting(posting).posted.is_empty() && f.topic_is_events
        })
        .unwrap();
    let rest: Vec<WireFact> = facts
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != held)
        .map(|(_, f)| f.clone())
        .collect();
    let (pool, url) = fresh_db("dead_letters").await;
    let group = unique_name("ledger");
    // The ledger creates the topics and their dead-letter topics.
    let (running, stop) = start(config(&url, &topics, &group)).await;

    let events = topics.stripe_events();
    let producer = kafka("dead-letters-test").idempotent_producer().unwrap();
    let held_dlq = dlq_of(&events);
    let old_reason = "the core cannot post this fact: (an earlier version's rule)";
    producer
        .publish(&[OutRecord {
            topic: &held_dlq,
            key: Some(facts[held].key.as_bytes()),
            payload: Some(&facts[held].payload),
            headers: &[(DLQ_REASON_HEADER, old_reason.as_bytes())],
        }])
        .await
        .unwrap();
    let garbage_key = "acct_platform/evt_garbage";
    produce_raw(&events, garbage_key, b"not a protobuf").await;
    let records = produce(&topics, &rest, 7).await + 1;
    wait_for_offsets(&pool, &group, records, Duration::from_secs(120)).await;
    assert_eq!(
        stored_digests(&pool).await,
        model_digests(&model(&rest)),
        "without the held fact"
    );
    assert_ne!(model_digests(&model(&rest)), model_digests(&model(&facts)));

    let (ok, listed, err) = dead_letters(&prefix, &["list"]);
    assert!(ok, "{err}");
    let lines: Vec<Vec<&str>> = listed.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), 3, "{listed}");
    assert_eq!(lines[0], ["dead letter", "source", "fact", "reason"]);
    let held_id = format!("{held_dlq}/0/0");
    let garbage_id = format!("{held_dlq}/0/1");
    let held_event: ledgerline_proto::stripe::v1::StripeEventRecord =
        prost::Message::decode(facts[held].payload.as_slice()).unwrap();
    assert_eq!(
        lines[1],
        [
            held_id.as_str(),
            &format!("{events}/?/?"),
            &format!("{} {}", held_event.event_id, held_event.event_type),
            old_reason
        ],
        "{listed}"
    );
    assert_eq!(lines[2][0], garbage_id, "{listed}");
    assert!(
        lines[2][2].starts_with("(undecodable: not a StripeEventRecord"),
        "{listed}"
    );
    assert!(
        lines[2][3].starts_with("not a StripeEventRecord"),
        "{listed}"
    );
    // Its source position is where the garbage is in the events topic.
    let partition = partition_for_key(garbage_key.as_bytes(), PARTITIONS);
    let source = lines[2][1]
        .strip_prefix(&format!("{events}/{partition}/"))
        .unwrap_or_else(|| panic!("{listed}"));
    let reader = kafka(&unique_name("dl-reader"))
        .consumer("dl-reader")
        .unwrap();
    let in_events = read_to_end(&reader, &events, Duration::from_secs(30))
        .await
        .unwrap();
    let at_source = in_events
        .iter()
        .find(|r| r.partition == partition && r.offset.to_string() == source)
        .unwrap();
    assert_eq!(at_source.payload.as_deref(), Some(&b"not a protobuf"[..]));

    let (ok, replayed, err) = dead_letters(&prefix, &["replay", "--all"]);
    assert!(ok, "{err}");
    assert!(
        replayed.contains(&format!("published again\t{held_id}\n"))
            && replayed.contains(&format!("kept\t{garbage_id}\tits envelope does not decode"))
            && replayed.ends_with("1 published again to their topics, 1 kept\n"),
        "{replayed}"
    );
    wait_for_offsets(&pool, &group, records + 1, Duration::from_secs(60)).await;
    let books = stored_digests(&pool).await;
    assert_eq!(books, model_digests(&model(&facts)), "with the held fact");
    assert_ground_truth(&pool, &world).await;
    let reader = kafka(&unique_name("dl-reader"))
        .consumer("dl-reader")
        .unwrap();
    let republished: Vec<_> = read_to_end(&reader, &events, Duration::from_secs(30))
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.header(REPLAYED_FROM_HEADER) == Some(held_id.as_bytes()))
        .collect();
    assert_eq!(republished.len(), 1);
    assert_eq!(
        republished[0].payload.as_deref(),
        Some(facts[held].payload.as_slice()),
        "byte for byte"
    );

    // Again, by name: folded once however often it comes; a name that is not there is an error.
    let (ok, _, err) = dead_letters(&prefix, &["replay", "--record", &held_id]);
    assert!(ok, "{err}");
    wait_for_offsets(&pool, &group, records + 2, Duration::from_secs(60)).await;
    assert_eq!(stored_digests(&pool).await, books);
    let (ok, _, err) = dead_letters(&prefix, &["replay", "--record", "nope/0/0"]);
    assert!(!ok && err.contains("no dead letter nope/0/0"), "{err}");
    let (ok, _, err) = dead_letters(&prefix, &["replay"]);
    assert!(!ok && err.contains("--all"), "{err}");

    stop.cancel();
    running.task.await.unwrap().unwrap();
}

/// A record as large as a producer with librdkafka's defaults (the ingester's) can publish is
/// dead-lettered whole, headers and all, and the ledger folds on. Before, its dead letter (the
/// record plus ~150 bytes of headers) passed that same 1,000,000-byte cap, the publish failed
/// at every retry and restart, and the ledger stopped on it for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_at_the_producers_size_limit_is_dead_lettered_whole() {
    let prefix = format!("{}.", unique_name("dlbig"));
    let topics = Topics::with_prefix(&prefix);
    let (pool, url) = fresh_db("dead_letters_big").await;
    let group = unique_name("ledger");
    let (running, stop) = start(config(&url, &topics, &group)).await;
    let events = topics.stripe_events();
    let producer = kafka("dead-letters-big").idempotent_producer().unwrap();
    let key = b"acct_platform/evt_big";
    // The largest record this producer takes, to 16 bytes: not JSON, so a dead letter.
    let mut size = 1_000_000;
    let payload = loop {
        let record = ledgerline_proto::stripe::v1::StripeEventRecord {
            event_id: "evt_big".into(),
            event_type: "charge.succeeded".into(),
            account: PLATFORM.into(),
            raw_json: vec![b'x'; size],
            ..Default::default()
        };
        let payload = prost::Message::encode_to_vec(&record);
        let sent = producer
            .publish(&[OutRecord {
                topic: &events,
                key: Some(key),
                payload: Some(&payload),
                headers: &[],
            }])
            .await;
        if sent.is_ok() {
            break payload;
        }
        size -= 16;
        assert!(size > 990_000, "{sent:?}");
    };
    let (_, facts) = world_facts(3, 20);
    let records = produce(&topics, &facts, 0).await + 1;
    wait_for_offsets(&pool, &group, records, Duration::from_secs(60)).await;
    assert_eq!(
        stored_digests(&pool).await,
        model_digests(&model(&facts)),
        "the facts behind it are folded"
    );
    let reader = kafka(&unique_name("dl-reader"))
        .consumer("dl-reader")
        .unwrap();
    let dead = read_to_end(&reader, &dlq_of(&events), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].payload.as_deref(),
        Some(payload.as_slice()),
        "whole"
    );
    let reason = dead[0].header(DLQ_REASON_HEADER).unwrap();
    assert!(
        reason.starts_with(b"the core cannot post this fact: malformed Stripe JSON"),
        "{}",
        String::from_utf8_lossy(reason)
    );
    stop.cancel();
    running.task.await.unwrap().unwrap();
}
