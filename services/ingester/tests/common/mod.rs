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

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

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
    consume_all_at(&ledgerline_tests::kafka_bootstrap_servers(), topic, idle).await
}

/// [`consume_all`] from the broker at `bootstrap` (a test's own).
pub async fn consume_all_at(
    bootstrap: &str,
    topic: &str,
    idle: Duration,
) -> Vec<(String, Vec<u8>)> {
    let kafka = KafkaConfig::new(bootstrap, "ingester-test-reader");
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

/// A fresh database's URL.
pub async fn fresh_database_url() -> String {
    let (_pool, db) = ledgerline_tests::fresh_database("ingester").await.unwrap();
    let mut url: String = ledgerline_tests::database_url();
    let slash = url.rfind('/').unwrap();
    url.truncate(slash + 1);
    url.push_str(&db);
    url
}

/// Records on `topic` so far (sum of its partitions' high watermarks), read with an
/// unsubscribed consumer. Right after a topic is created the broker may still answer
/// `NotLeaderForPartition` or `UnknownTopicOrPartition` for a moment: those are retried.
pub fn topic_records(topic: &str) -> i64 {
    topic_records_at(&ledgerline_tests::kafka_bootstrap_servers(), topic)
}

/// [`topic_records`] on the broker at `bootstrap` (a test's own).
pub fn topic_records_at(bootstrap: &str, topic: &str) -> i64 {
    let kafka = KafkaConfig::new(bootstrap, "ingester-test-watermarks");
    let consumer: StreamConsumer = kafka
        .consumer(&ledgerline_tests::unique_name("wm"))
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match watermark_total(&consumer, topic) {
            Ok(total) => return total,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("reading the watermarks of {topic}: {e}"),
        }
    }
}

fn watermark_total(
    consumer: &StreamConsumer,
    topic: &str,
) -> Result<i64, rdkafka::error::KafkaError> {
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut total = 0;
    for t in md.topics() {
        if let Some(e) = t.error() {
            return Err(rdkafka::error::KafkaError::MetadataFetch(e.into()));
        }
        for p in t.partitions() {
            let (_, high) = consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10))?;
            total += high;
        }
    }
    Ok(total)
}

/// The real `ledgerline-ingester` binary as a child process, killed (SIGKILL) and reaped when
/// dropped. Its log (stdout and stderr) goes to `log`.
pub struct Bin {
    child: Option<std::process::Child>,
    pub log: std::path::PathBuf,
    pub addr: std::net::SocketAddr,
}

impl Bin {
    /// Starts the binary with `--config config` and `env`, and waits until `/readyz` answers.
    pub async fn start(
        config: &std::path::Path,
        env: &[(&str, String)],
        addr: std::net::SocketAddr,
        log: std::path::PathBuf,
    ) -> Bin {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ledgerline-ingester"));
        cmd.arg("--config")
            .arg(config)
            .env("RUST_LOG", "warn")
            // The binary logs to stdout.
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        // Owned by the guard at once: whatever happens next, drop kills and reaps it.
        let mut bin = Bin {
            child: Some(cmd.spawn().unwrap()),
            log,
            addr,
        };
        let http = http();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(format!("http://{addr}/readyz")).send().await
                && r.status().is_success()
            {
                return bin;
            }
            if let Some(status) = bin.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "ingester exited ({status}) before ready: {}",
                    bin.log_tail()
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "ingester not ready after 60 s: {}",
                bin.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `/metrics` as text (empty when it does not answer).
    pub async fn metrics(&self) -> String {
        match http()
            .get(format!("http://{}/metrics", self.addr))
            .send()
            .await
        {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Whether the process is still running (not exited on its own).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// SIGKILL, then reap.
    pub fn kill(mut self) {
        self.reap();
    }

    fn reap(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL on Unix
            let _ = c.wait();
        }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Bin {
    fn drop(&mut self) {
        self.reap();
    }
}

pub fn http() -> reqwest::Client {
    ledgerline_stripe::tls::http_client_builder(&Default::default())
        .unwrap()
        .build()
        .unwrap()
}

/// Sum of a counter's samples whose labels contain `labels` (e.g. `status="500"`).
pub fn counter(metrics: &str, name: &str, labels: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}
