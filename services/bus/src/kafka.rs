//! Kafka clients configured the way every Ledgerline service needs them.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
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
        self.finish(self.idempotent())
            .create()
            .map_err(BusError::Client)
    }

    /// [`Self::idempotent_producer`] for records that carry another record whole, with headers
    /// added (dead letters, their replays). It takes messages up to the broker's default topic
    /// limit ([`BROKER_MAX_MESSAGE_BYTES`]) instead of librdkafka's 1,000,000 bytes, which the
    /// record's own producer had: a record within a few hundred bytes of that would otherwise
    /// never fit on its dead-letter topic, and the ledger would stop on it at every restart.
    pub fn forwarding_producer(&self) -> Result<FutureProducer, BusError> {
        let mut config = self.idempotent();
        config.set("message.max.bytes", BROKER_MAX_MESSAGE_BYTES.to_string());
        self.finish(config).create().map_err(BusError::Client)
    }

    fn idempotent(&self) -> ClientConfig {
        let mut config = self.base();
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("compression.type", "none");
        config
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
///
/// Every topic Ledgerline creates is a record, not a buffer: the facts are what the ledger is
/// rebuilt from, the dead letters are evidence, `ledger.entries.v1` is what reconciliation jobs
/// replay. So a new topic keeps its records forever (`retention.ms` and `retention.bytes` -1; a
/// broker's default is 7 days, after which a rebuild from the log would be impossible) and takes
/// the cluster's `default.replication.factor` rather than a number fixed here.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    /// -1: the broker's `default.replication.factor`.
    pub replication: i32,
    /// Topic-level settings, e.g. `("cleanup.policy", "compact")`.
    pub config: Vec<(String, String)>,
}

/// The broker's default `max.message.bytes` for a topic (Kafka's `message.max.bytes`,
/// 1 MiB + 12): a producer with librdkafka's default cap (1,000,000 bytes) leaves 48 KiB of it
/// for what a forwarding producer adds ([`KafkaConfig::forwarding_producer`]).
pub const BROKER_MAX_MESSAGE_BYTES: usize = 1_048_588;

/// librdkafka's default `message.max.bytes`, which [`KafkaConfig::idempotent_producer`] keeps:
/// the most a record published by it may hold (its key and value), and so the most a fact's
/// record may be.
pub const PRODUCER_MAX_MESSAGE_BYTES: usize = 1_000_000;

/// The topic settings that keep every record (see [`TopicSpec`]).
pub const KEEP_FOREVER: [(&str, &str); 2] = [("retention.ms", "-1"), ("retention.bytes", "-1")];

impl TopicSpec {
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        Self {
            name: name.into(),
            partitions,
            replication: -1,
            config: KEEP_FOREVER
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }
}

/// For each of `topics` that exists and deletes records (by age or size), a warning that says
/// what that costs and how to change it. A topic created by [`ensure_topics`] keeps everything;
/// one created before, by hand or by auto-creation, may not, and [`ensure_topics`] leaves
/// existing topics as they are.
pub async fn retention_warnings(
    admin: &AdminClient<DefaultClientContext>,
    topics: &[&str],
) -> Result<Vec<String>, BusError> {
    let described = describe_retention(admin, topics).await?;
    let mut warnings = Vec::new();
    for (topic, retention) in topics.iter().zip(described) {
        let (ms, bytes) = match retention {
            Retention::Absent => continue,
            Retention::NotReported => {
                warnings.push(format!(
                    "the broker did not report the retention of topic {topic}: check that it \
                     keeps its records (retention.ms=-1, retention.bytes=-1)"
                ));
                continue;
            }
            Retention::Limits { ms, bytes } => (ms, bytes),
        };
        let limit = match (ms >= 0, bytes >= 0) {
            (false, false) => continue,
            (true, false) => format!("after {}", age(ms)),
            (false, true) => format!("beyond {bytes} bytes a partition"),
            (true, true) => format!("after {} or beyond {bytes} bytes a partition", age(ms)),
        };
        warnings.push(format!(
            "topic {topic} deletes records {limit}: past that the ledger can no longer be rebuilt \
             from the log, nor a consumer replay it; keep them with `kafka-configs.sh \
             --bootstrap-server … --alter --entity-type topics --entity-name {topic} \
             --add-config retention.ms=-1,retention.bytes=-1`"
        ));
    }
    Ok(warnings)
}

/// What the broker says of a topic's retention.
#[derive(Debug, PartialEq, Eq)]
enum Retention {
    /// No such topic, or one created a moment ago whose settings the broker does not have yet
    /// (described with no settings at all): nothing to warn about.
    Absent,
    /// Described with settings, but no `retention.ms`: never taken for "keeps forever".
    NotReported,
    /// `retention.ms` and `retention.bytes` (-1: no limit; `retention.bytes` unreported: -1).
    Limits { ms: i64, bytes: i64 },
}

async fn describe_retention(
    admin: &AdminClient<DefaultClientContext>,
    topics: &[&str],
) -> Result<Vec<Retention>, BusError> {
    let specs: Vec<ResourceSpecifier<'_>> =
        topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .describe_configs(&specs, &options)
        .await
        .map_err(BusError::Admin)?;
    Ok(results
        .into_iter()
        .map(|result| result.map_or(Retention::Absent, |r| retention_of(&r)))
        .collect())
}

fn retention_of(resource: &rdkafka::admin::ConfigResource) -> Retention {
    if resource.entries.is_empty() {
        return Retention::Absent;
    }
    let value = |name: &str| -> Option<i64> {
        resource
            .get(name)
            .and_then(|e| e.value.as_deref())
            .and_then(|v| v.parse().ok())
    };
    match value("retention.ms") {
        None => Retention::NotReported,
        Some(ms) => Retention::Limits {
            ms,
            bytes: value("retention.bytes").unwrap_or(-1),
        },
    }
}

/// Logs [`retention_warnings`] for `topics`. Not being allowed to read the settings
/// (DescribeConfigs denied) is a warning too, not a reason to stop: the service works either way.
pub async fn warn_about_retention(admin: &AdminClient<DefaultClientContext>, topics: &[&str]) {
    match retention_warnings(admin, topics).await {
        Ok(warnings) => {
            for w in warnings {
                tracing::warn!("{w}");
            }
        }
        Err(e) => tracing::warn!(
            error = %e,
            "could not read the topics' retention; check that they keep their records \
             (retention.ms=-1)"
        ),
    }
}

/// A retention time in words.
fn age(ms: i64) -> String {
    const DAY: i64 = 86_400_000;
    if ms >= DAY && ms % DAY == 0 {
        format!("{} days", ms / DAY)
    } else {
        format!("{ms} ms")
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

#[cfg(test)]
mod retention_tests {
    use rdkafka::admin::{ConfigEntry, ConfigResource, ConfigSource, OwnedResourceSpecifier};

    use super::{Retention, retention_of};

    fn described(settings: &[(&str, &str)]) -> ConfigResource {
        ConfigResource {
            specifier: OwnedResourceSpecifier::Topic("t".into()),
            entries: settings
                .iter()
                .map(|(name, value)| ConfigEntry {
                    name: (*name).to_owned(),
                    value: Some((*value).to_owned()),
                    source: ConfigSource::DynamicTopic,
                    is_read_only: false,
                    is_default: false,
                    is_sensitive: false,
                })
                .collect(),
        }
    }

    #[test]
    fn a_setting_missing_is_never_taken_for_keeping_forever() {
        assert_eq!(retention_of(&described(&[])), Retention::Absent);
        assert_eq!(
            retention_of(&described(&[("cleanup.policy", "delete")])),
            Retention::NotReported
        );
        assert_eq!(
            retention_of(&described(&[("retention.ms", "604800000")])),
            Retention::Limits {
                ms: 604_800_000,
                bytes: -1
            }
        );
        assert_eq!(
            retention_of(&described(&[
                ("retention.ms", "-1"),
                ("retention.bytes", "1048576")
            ])),
            Retention::Limits {
                ms: -1,
                bytes: 1_048_576
            }
        );
    }
}
