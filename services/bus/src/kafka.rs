//! Kafka clients configured the way every Ledgerline service needs them.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::StreamConsumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureProducer;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("kafka client could not be created (check the bootstrap servers and settings): {0}")]
    Client(#[source] KafkaError),
    #[error("topic {topic} could not be created: {reason}")]
    TopicCreation { topic: String, reason: String },
    #[error("kafka admin request failed: {0}")]
    Admin(#[source] KafkaError),
    #[error("kafka: {0}")]
    Kafka(#[source] KafkaError),
    #[error("embedded log: {0}")]
    Log(String),
}

/// Connection settings shared by every client of one service.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `host:port[,host:port]`, e.g. from `KAFKA_BOOTSTRAP_SERVERS`.
    pub bootstrap_servers: String,
    /// Names the service in broker logs and quotas.
    pub client_id: String,
    /// Extra librdkafka properties, applied last (they override the defaults here).
    pub overrides: Vec<(String, String)>,
}

impl KafkaConfig {
    pub fn new(bootstrap_servers: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            client_id: client_id.into(),
            overrides: Vec::new(),
        }
    }

    /// Adds or replaces one librdkafka property.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.overrides.push((key.into(), value.into()));
        self
    }

    fn base(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", &self.client_id);
        config
    }

    fn finish(&self, mut config: ClientConfig) -> ClientConfig {
        for (key, value) in &self.overrides {
            config.set(key, value);
        }
        config
    }

    /// A producer that never writes a record twice or out of order on retry
    /// (`enable.idempotence`, `acks=all`), so "Kafka acknowledged" means durable.
    pub fn idempotent_producer(&self) -> Result<FutureProducer, BusError> {
        let mut config = self.base();
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("compression.type", "none");
        self.finish(config).create().map_err(BusError::Client)
    }

    /// A consumer that commits nothing by itself: the service decides when an offset is
    /// done (after the effects it covers are durable), and reads only committed records.
    pub fn consumer(&self, group_id: &str) -> Result<StreamConsumer, BusError> {
        let mut config = self.base();
        config
            .set("group.id", group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed");
        self.finish(config).create().map_err(BusError::Client)
    }

    pub fn admin(&self) -> Result<AdminClient<DefaultClientContext>, BusError> {
        self.finish(self.base()).create().map_err(BusError::Client)
    }
}

/// A topic a service needs at start-up.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication: i32,
    /// Topic-level settings, e.g. `("cleanup.policy", "compact")`.
    pub config: Vec<(String, String)>,
}

impl TopicSpec {
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        Self {
            name: name.into(),
            partitions,
            replication: 1,
            config: Vec::new(),
        }
    }
}

/// Creates the topics that do not exist yet; existing ones are left as they are.
pub async fn ensure_topics(
    admin: &AdminClient<DefaultClientContext>,
    specs: &[TopicSpec],
) -> Result<(), BusError> {
    let new_topics: Vec<NewTopic<'_>> = specs
        .iter()
        .map(|spec| {
            spec.config.iter().fold(
                NewTopic::new(
                    &spec.name,
                    spec.partitions,
                    TopicReplication::Fixed(spec.replication),
                ),
                |topic, (key, value)| topic.set(key, value),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(&new_topics, &options)
        .await
        .map_err(BusError::Admin)?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(BusError::TopicCreation {
                    topic,
                    reason: code.to_string(),
                });
            }
        }
    }
    Ok(())
}
