//! Shared by the ingester's end-to-end tests (real Kafka, real PostgreSQL, stripe-sim).
#![allow(clippy::unwrap_used, dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::time::Duration;

use ledgerline_bus::{KafkaConfig, Topics};
use ledgerline_ingester::{AccountConfig, IngesterConfig};
use ledgerline_stripe::{ApiKey, ClientConfig, WebhookSecret};
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};

pub const PLATFORM: &str = "acct_1LedgerlineSimPlat";

pub async fn config(
    base_url: &str,
    key: &str,
    secrets: Vec<WebhookSecret>,
) -> (IngesterConfig, String) {
    let (_pool, db) = ledgerline_tests::fresh_database("ingester").await.unwrap();
    let mut url: String = ledgerline_tests::database_url();
    let slash = url.rfind('/').unwrap();
    url.truncate(slash + 1);
    url.push_str(&db);
    let mut client = ClientConfig::new(base_url, ApiKey::parse(key).unwrap());
    client.backoff_base = Duration::from_millis(50);
    client.backoff_max = Duration::from_millis(1_000);
    let account = AccountConfig {
        name: "default".into(),
        client,
        platform_account: PLATFORM.into(),
        connected_accounts: Vec::new(),
        discover_connected: false,
        webhook_secrets: secrets,
        register_webhook_url: None,
    };
    let prefix = ledgerline_tests::unique_name("ing").to_lowercase() + ".";
    let mut cfg = IngesterConfig::new(
        KafkaConfig::new(ledgerline_tests::kafka_bootstrap_servers(), "ingester-test"),
        url.clone(),
        vec![account],
    );
    cfg.topics = Topics::with_prefix(prefix);
    cfg.partitions = 3;
    cfg.poll_interval = Duration::from_millis(300);
    cfg.bt_recheck_interval = Duration::from_secs(2);
    (cfg, url)
}

/// Every record of `topic` until it stays idle for `idle`: (key, value) in partition order.
pub async fn consume_all(topic: &str, idle: Duration) -> Vec<(String, Vec<u8>)> {
    let kafka = KafkaConfig::new(
        ledgerline_tests::kafka_bootstrap_servers(),
        "ingester-test-reader",
    );
    let consumer: StreamConsumer = kafka
        .consumer(&ledgerline_tests::unique_name("reader"))
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(idle, consumer.recv()).await {
            Ok(Ok(m)) => out.push((
                String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                m.payload().unwrap_or_default().to_vec(),
            )),
            Ok(Err(e)) => panic!("kafka: {e}"),
            Err(_) => break,
        }
    }
    out
}

pub fn by_key(records: &[(String, Vec<u8>)]) -> HashMap<String, Vec<Vec<u8>>> {
    let mut m: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
    for (k, v) in records {
        m.entry(k.clone()).or_default().push(v.clone());
    }
    m
}
