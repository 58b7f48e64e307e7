//! Facts the ingester cannot publish as they are go to the dead-letter topics with the reason,
//! and the facts around them are published, on the real broker: an event, a balance
//! transaction and a backfilled object that Stripe lists without the shape the ingester reads,
//! a signed webhook without an event's shape (answered 200: it is authentic), and a webhook
//! larger than a record may hold (its raw JSON left out). A body that is not JSON is still
//! refused.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use ledgerline_bus::log::{LogRecord, read_to_end};
use ledgerline_bus::topics::{DLQ_REASON_HEADER, dlq_of};
use ledgerline_ingester::publish::MAX_RECORD_BYTES;
use ledgerline_proto::stripe::v1::{BalanceTransactionRecord, IngestSource, StripeEventRecord};
use ledgerline_stripe::{WebhookSecret, signature_header};
use ledgerline_stripe_sim::http::{DEFAULT_TEST_KEY, SimConfig, SimServer};
use ledgerline_stripe_sim::object::{ObjectKind, SimObject};
use prost::Message as _;
use tokio_util::sync::CancellationToken;

fn object(kind: ObjectKind, id: &str, created: i64, json: String) -> SimObject {
    let filters = match kind {
        ObjectKind::Event => vec![("type", "invoice.paid".to_owned())],
        _ => Vec::new(),
    };
    SimObject {
        kind,
        id: id.to_owned(),
        created,
        account: None,
        livemode: false,
        filters,
        available_on: None,
        json,
    }
}

fn invoice_paid(id: &str, created: i64, invoice: &str) -> String {
    format!(
        r#"{{"id":"{id}","object":"event","type":"invoice.paid","livemode":false,"created":{created},"api_version":"2026-07-29.dahlia","data":{{"object":{{"id":"{invoice}","object":"invoice","customer":"cus_1","created":{created}}}}}}}"#
    )
}

fn reason(record: &LogRecord) -> String {
    String::from_utf8_lossy(record.header(DLQ_REASON_HEADER).unwrap_or_default()).into_owned()
}

/// Every record of `topic`, read again until `done` holds of them (within 60 s).
async fn records_until(topic: &str, done: impl Fn(&[LogRecord]) -> bool) -> Vec<LogRecord> {
    let kafka =
        ledgerline_bus::KafkaConfig::new(ledgerline_tests::kafka_bootstrap_servers(), "dlq-test");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reader = kafka
            .consumer(&ledgerline_tests::unique_name("dlq-reader"))
            .unwrap();
        let records = read_to_end(&reader, topic, Duration::from_secs(10))
            .await
            .unwrap();
        if done(&records) || Instant::now() > deadline {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn events(records: &[LogRecord]) -> Vec<(StripeEventRecord, String)> {
    records
        .iter()
        .map(|r| {
            let rec = StripeEventRecord::decode(r.payload.as_deref().unwrap_or_default()).unwrap();
            (rec, reason(r))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facts_that_cannot_be_published_as_they_are_are_dead_lettered_with_the_reason() {
    let t = common::now() - 3_600;
    let unreadable_event = format!(
        r#"{{"id":"evt_unreadable","object":"event","type":"invoice.paid","livemode":false,"created":{t},"data":{{"object":{{"id":"in_unreadable","object":"invoice","created":"yesterday"}}}}}}"#
    );
    let unreadable_bt = format!(
        r#"{{"id":"txn_unreadable","object":"balance_transaction","created":{t},"status":7}}"#
    );
    let unreadable_customer =
        format!(r#"{{"id":"cus_unreadable","object":"customer","created":{t},"metadata":"none"}}"#);
    let objects = vec![
        object(
            ObjectKind::Event,
            "evt_unreadable",
            t,
            unreadable_event.clone(),
        ),
        object(
            ObjectKind::Event,
            "evt_after",
            t + 1,
            invoice_paid("evt_after", t + 1, "in_after"),
        ),
        object(
            ObjectKind::BalanceTransaction,
            "txn_unreadable",
            t,
            unreadable_bt.clone(),
        ),
        object(
            ObjectKind::Customer,
            "cus_unreadable",
            t,
            unreadable_customer.clone(),
        ),
    ];
    let sim = SimServer::start(SimConfig::default(), objects)
        .await
        .unwrap();
    let secret = WebhookSecret::new("whsec_deadletters0001");
    let (mut cfg, _) =
        common::config(&sim.base_url(), DEFAULT_TEST_KEY, vec![secret.clone()]).await;
    cfg.backfill = true;
    cfg.payouts = false;
    cfg.gap_fill = false;
    cfg.body_limit = 2 << 20;
    let events_topic = cfg.topics.stripe_events();
    let bts_topic = cfg.topics.stripe_balance_transactions();
    let shutdown = CancellationToken::new();
    let running = ledgerline_ingester::start(cfg, shutdown.clone())
        .await
        .unwrap();

    let http = ledgerline_stripe::tls::http_client_builder(&Default::default())
        .unwrap()
        .build()
        .unwrap();
    let url = format!("http://{}/webhooks/default", running.addr);
    let post = |body: Vec<u8>| {
        let header = signature_header(std::slice::from_ref(&secret), common::now(), &body);
        http.post(&url)
            .header("Stripe-Signature", header)
            .body(body)
            .send()
    };
    let not_json = post(b"not json".to_vec()).await.unwrap();
    assert_eq!(not_json.status().as_u16(), 400);
    let shapeless =
        br#"{"id":"evt_shapeless","object":"event","type":["invoice.paid"],"created":1,"data":{}}"#
            .to_vec();
    let answer = post(shapeless.clone()).await.unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert!(answer.text().await.unwrap().contains("dead-lettered"));
    // Just over what a record may hold with its envelope, and just under.
    let sized = |id: &str, len: usize| {
        let event = invoice_paid(id, t, &format!("in_{id}"));
        let pad = len.saturating_sub(event.len() + 24);
        event
            .replacen(
                r#""livemode""#,
                &format!(r#""padding":"{}","livemode""#, "x".repeat(pad)),
                1,
            )
            .into_bytes()
    };
    let big = sized("evt_big", MAX_RECORD_BYTES);
    let fits = sized("evt_fits", MAX_RECORD_BYTES - 400);
    for body in [&big, &fits] {
        assert_eq!(post(body.clone()).await.unwrap().status().as_u16(), 200);
    }

    let dead = events(&records_until(&dlq_of(&events_topic), |r| r.len() >= 4).await);
    let find = |id: &str| {
        dead.iter()
            .find(|(rec, _)| rec.event_id == id || rec.object_id == id)
            .unwrap_or_else(|| panic!("{id} is not dead-lettered: {dead:?}"))
    };
    let (rec, why) = find("evt_unreadable");
    assert_eq!(rec.raw_json, unreadable_event.as_bytes());
    assert_eq!(rec.source, IngestSource::EventsApi as i32);
    assert!(
        why.contains("shape of a Stripe event") && why.contains("invalid type"),
        "{why}"
    );
    let (rec, why) = find("cus_unreadable");
    assert_eq!(rec.raw_json, unreadable_customer.as_bytes());
    assert_eq!(rec.source, IngestSource::Backfill as i32);
    assert_eq!(rec.event_type, "backfill.customer");
    assert!(why.contains("customers list"), "{why}");
    let (rec, why) = find("evt_shapeless");
    assert_eq!(rec.raw_json, shapeless);
    assert_eq!(rec.source, IngestSource::Webhook as i32);
    assert!(why.contains("signed webhook"), "{why}");
    let (rec, why) = find("evt_big");
    assert!(rec.raw_json.is_empty());
    assert_eq!(rec.object_id, "in_evt_big");
    assert!(
        why.contains("GET /v1/events/evt_big") && why.contains(&MAX_RECORD_BYTES.to_string()),
        "{why}"
    );
    assert_eq!(dead.len(), 4, "{dead:?}");

    let dead_bts = records_until(&dlq_of(&bts_topic), |r| !r.is_empty()).await;
    assert!(!dead_bts.is_empty(), "no balance transaction dead-lettered");
    for record in &dead_bts {
        let rec = BalanceTransactionRecord::decode(record.payload.as_deref().unwrap_or_default())
            .unwrap();
        assert_eq!(rec.balance_transaction_id, "txn_unreadable");
        assert_eq!(rec.raw_json, unreadable_bt.as_bytes());
        let why = reason(record);
        assert!(
            why.contains("balance transaction") && why.contains("invalid type"),
            "{why}"
        );
    }

    // What could be published was, behind the unreadable event and beside the dead letters.
    let published = events(
        &records_until(&events_topic, |r| {
            events(r).iter().any(|(rec, _)| rec.event_id == "evt_after")
                && events(r).iter().any(|(rec, _)| rec.event_id == "evt_fits")
        })
        .await,
    );
    let ids: std::collections::BTreeSet<&str> = published
        .iter()
        .map(|(rec, _)| rec.event_id.as_str())
        .collect();
    assert!(
        ids.contains("evt_after") && ids.contains("evt_fits"),
        "{ids:?}"
    );
    for id in ["evt_unreadable", "evt_shapeless", "evt_big"] {
        assert!(!ids.contains(id), "{id} published as a fact");
    }
    let fitted = published
        .iter()
        .find(|(rec, _)| rec.event_id == "evt_fits")
        .unwrap();
    assert_eq!(fitted.0.raw_json, fits);

    shutdown.cancel();
    running.wait().await.unwrap();
    sim.shutdown().await;
}
