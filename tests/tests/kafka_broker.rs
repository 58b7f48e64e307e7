//! Proof that the project's own Kafka broker works end to end with the clients the services
//! use: topic creation, the idempotent producer, a consumer group that commits, and a second
//! consumer of the same group resuming exactly where the first committed.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use ledgerline_bus::topics::stripe_object_key;
use ledgerline_bus::{KafkaConfig, TopicSpec, ensure_topics};
use ledgerline_proto::stripe::v1::{IngestSource, StripeEventRecord};
use ledgerline_tests::{kafka_bootstrap_servers, unique_name};
use prost::Message as _;
use rdkafka::Message as _;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 3;

fn record(seq: u32) -> (String, StripeEventRecord) {
    let object_id = format!("in_{}", seq % 7);
    let record = StripeEventRecord {
        event_id: format!("evt_{seq:04}"),
        event_type: "invoice.updated".into(),
        account: "acct_proof".into(),
        source: IngestSource::EventsApi as i32,
        object_id: object_id.clone(),
        object_type: "invoice".into(),
        // Raw bytes with odd spacing: they must come back untouched.
        raw_json: format!(r#"{{"id": "evt_{seq:04}",  "seq":{seq}}}"#).into_bytes(),
        ..Default::default()
    };
    (stripe_object_key("acct_proof", &object_id), record)
}

async fn produce(producer: &FutureProducer, topic: &str, seqs: std::ops::Range<u32>) {
    for seq in seqs {
        let (key, value) = record(seq);
        let payload = value.encode_to_vec();
        producer
            .send(
                FutureRecord::to(topic).key(&key).payload(&payload),
                Duration::from_secs(15),
            )
            .await
            .map_err(|(err, _)| err)
            .unwrap();
    }
}

/// Receives `count` records, storing each offset after it is "processed".
async fn consume(consumer: &StreamConsumer, count: usize) -> Vec<(String, StripeEventRecord)> {
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .expect("no record from the broker within 60 s")
            .unwrap();
        let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
        let value = StripeEventRecord::decode(message.payload().unwrap()).unwrap();
        consumer.store_offset_from_message(&message).unwrap();
        out.push((key, value));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_consume_and_commit_through_the_real_broker() {
    let config = KafkaConfig::new(kafka_bootstrap_servers(), "proof-test");
    let topic = unique_name("proof.stripe.events");
    let admin = config.admin().unwrap();
    ensure_topics(&admin, &[TopicSpec::new(&topic, PARTITIONS)])
        .await
        .unwrap();
    // Creating again is a no-op, as every service does at start.
    ensure_topics(&admin, &[TopicSpec::new(&topic, PARTITIONS)])
        .await
        .unwrap();

    let producer = config.idempotent_producer().unwrap();
    produce(&producer, &topic, 0..60).await;

    let group = unique_name("proof-group");
    let first = config.consumer(&group).unwrap();
    first.subscribe(&[&topic]).unwrap();
    let received = consume(&first, 60).await;

    // Every record arrived once, its raw JSON byte for byte, and per key in produce order.
    let mut last_seq_per_key: HashMap<String, u32> = HashMap::new();
    let mut ids: Vec<String> = Vec::new();
    for (key, value) in &received {
        let seq: u32 = value.event_id.trim_start_matches("evt_").parse().unwrap();
        assert_eq!(value.raw_json, record(seq).1.raw_json);
        assert_eq!(key, &record(seq).0);
        if let Some(previous) = last_seq_per_key.insert(key.clone(), seq) {
            assert!(previous < seq, "key {key}: {seq} arrived after {previous}");
        }
        ids.push(value.event_id.clone());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 60);

    first.commit_consumer_state(CommitMode::Sync).unwrap();
    drop(first);

    // The group's committed offsets, read by a client outside the group (asking the member
    // itself for them leaves librdkafka unable to close it: rust-rdkafka#509-like hang).
    let inspector = config.consumer(&group).unwrap();
    let mut partitions = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        partitions.add_partition(&topic, partition);
    }
    let committed = inspector
        .committed_offsets(partitions, Duration::from_secs(15))
        .unwrap();
    for partition in 0..PARTITIONS {
        let (_, high) = inspector
            .fetch_watermarks(&topic, partition, Duration::from_secs(15))
            .unwrap();
        let offset = committed
            .find_partition(&topic, partition)
            .unwrap()
            .offset();
        if high == 0 {
            // No key hashed to this partition: nothing to commit there.
            assert!(matches!(offset, Offset::Invalid | Offset::Offset(0)));
        } else {
            assert_eq!(offset, Offset::Offset(high), "partition {partition}");
        }
    }
    drop(inspector);

    // A new member of the same group resumes after the commit: it sees only the new records.
    produce(&producer, &topic, 60..65).await;
    let second = config.consumer(&group).unwrap();
    second.subscribe(&[&topic]).unwrap();
    let resumed = consume(&second, 5).await;
    let mut resumed_ids: Vec<String> = resumed.into_iter().map(|(_, v)| v.event_id).collect();
    resumed_ids.sort();
    assert_eq!(
        resumed_ids,
        vec!["evt_0060", "evt_0061", "evt_0062", "evt_0063", "evt_0064"]
    );
    let extra = tokio::time::timeout(Duration::from_secs(3), second.recv()).await;
    assert!(extra.is_err(), "a committed record was delivered again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_topics_keep_every_record_and_older_ones_that_do_not_are_named() {
    let config = KafkaConfig::new(kafka_bootstrap_servers(), "retention-test");
    let admin = config.admin().unwrap();
    let kept = TopicSpec::new(unique_name("retention.kept"), 2);
    // Topics made the way a broker's defaults or a hand would: deleting records.
    let mut week = TopicSpec::new(unique_name("retention.week"), 1);
    week.config = vec![("retention.ms".into(), "604800000".into())];
    let mut small = TopicSpec::new(unique_name("retention.small"), 1);
    small.config = vec![
        ("retention.ms".into(), "-1".into()),
        ("retention.bytes".into(), "1048576".into()),
    ];
    ensure_topics(&admin, &[kept.clone(), week.clone(), small.clone()])
        .await
        .unwrap();

    // What the broker says of the created topic: kept forever, the cluster's replication. A
    // topic created a moment ago may be described before its settings are there: ask again.
    let mut settings = Vec::new();
    for _ in 0..50 {
        let described = admin
            .describe_configs(
                &[rdkafka::admin::ResourceSpecifier::Topic(&kept.name)],
                &rdkafka::admin::AdminOptions::new(),
            )
            .await
            .unwrap();
        let resource = described.into_iter().next().unwrap().unwrap();
        let value = |name: &str| resource.get(name).and_then(|e| e.value.clone());
        settings = vec![value("retention.ms"), value("retention.bytes")];
        if settings.iter().all(Option::is_some) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(settings, [Some("-1".to_owned()), Some("-1".to_owned())]);
    let producer: FutureProducer = config.idempotent_producer().unwrap();
    let metadata = rdkafka::producer::Producer::client(&producer)
        .fetch_metadata(Some(&kept.name), Duration::from_secs(10))
        .unwrap();
    let partitions = metadata.topics()[0].partitions();
    assert_eq!(partitions.len(), 2);
    // -1 asked for the broker's default.replication.factor: 1 on this single-node broker.
    assert_eq!(partitions[0].replicas().len(), 1);

    // Topics created a moment ago may still be described without settings (taken as not
    // there yet): ask until both limited ones are named, for a few seconds.
    let missing = unique_name("missing");
    let mut warnings = Vec::new();
    for _ in 0..50 {
        warnings = ledgerline_bus::retention_warnings(
            &admin,
            &[&kept.name, &week.name, &small.name, &missing],
        )
        .await
        .unwrap();
        if warnings.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(
        warnings[0].contains(&week.name) && warnings[0].contains("after 7 days"),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[1].contains(&small.name) && warnings[1].contains("beyond 1048576 bytes"),
        "{}",
        warnings[1]
    );
    assert!(
        warnings
            .iter()
            .all(|w| w.contains("retention.ms=-1,retention.bytes=-1"))
    );
}
