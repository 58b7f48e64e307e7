//! The log seen by services: a publisher and a consumer that Kafka and the embedded log
//! ([`crate::embedded`]) both implement, so a service runs unchanged over either.
//!
//! Semantics shared by both: records go to `topic`/partition chosen from the key the way
//! librdkafka's default partitioner does (CRC32 of the key modulo the partition count), offsets
//! count from 0 per partition, a publish resolves only once every record is durable (Kafka:
//! acknowledged with `acks=all`), a consumer's commit is a hint (services store their own
//! offsets), dead letters go to `{topic}.dlq` with [`crate::topics::DLQ_REASON_HEADER`].

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use rdkafka::Message as _;
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::message::{Header, Headers as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::BusError;

/// A boxed `Send` future (the traits here are object safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A record to publish.
#[derive(Debug, Clone, Copy)]
pub struct OutRecord<'a> {
    pub topic: &'a str,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
    pub headers: &'a [(&'a str, &'a [u8])],
}

impl<'a> OutRecord<'a> {
    /// A keyed record without headers.
    pub fn new(topic: &'a str, key: &'a [u8], payload: &'a [u8]) -> Self {
        Self {
            topic,
            key: Some(key),
            payload: Some(payload),
            headers: &[],
        }
    }
}

/// A consumed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl LogRecord {
    /// The value of header `name`, if present.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// Appends records to the log.
pub trait LogPublisher: Send + Sync {
    /// Appends every record; resolves once all of them are durable, or fails (then some may
    /// have been appended: publishing is at least once, consumers deduplicate).
    fn publish<'a>(&'a self, records: &'a [OutRecord<'a>]) -> BoxFuture<'a, Result<(), BusError>>;
}

/// Reads the partitions assigned to one member of a consumer group.
pub trait LogConsumer: Send + Sync {
    /// The next record of an assigned partition (waits for one).
    fn recv(&self) -> BoxFuture<'_, Result<LogRecord, BusError>>;
    /// The partitions assigned now.
    fn assignment(&self) -> Vec<(String, i32)>;
    /// Moves the read position of an assigned partition.
    fn seek(&self, topic: &str, partition: i32, offset: i64) -> Result<(), BusError>;
    /// Records the group's progress (`next offset` per partition) as a hint.
    fn commit_hint(&self, offsets: &[(String, i32, i64)]) -> Result<(), BusError>;
    /// A partition's log as (start, end): the offset of its oldest record still in the log
    /// (above 0 once the log deleted records: retention, `DeleteRecords`) and the offset its
    /// next record will take.
    fn log_bounds(&self, topic: &str, partition: i32) -> Result<(i64, i64), BusError>;
}

impl LogPublisher for FutureProducer {
    fn publish<'a>(&'a self, records: &'a [OutRecord<'a>]) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            let sends = records.iter().map(|r| async move {
                let mut rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(r.topic);
                if let Some(k) = r.key {
                    rec = rec.key(k);
                }
                if let Some(p) = r.payload {
                    rec = rec.payload(p);
                }
                if !r.headers.is_empty() {
                    let headers = r.headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
                        h.insert(Header {
                            key: k,
                            value: Some(*v),
                        })
                    });
                    rec = rec.headers(headers);
                }
                self.send(rec, Duration::from_secs(60))
                    .await
                    .map(|_| ())
                    .map_err(|(e, _)| BusError::Kafka(e))
            });
            futures::future::try_join_all(sends).await?;
            Ok(())
        })
    }
}

impl LogConsumer for StreamConsumer {
    fn recv(&self) -> BoxFuture<'_, Result<LogRecord, BusError>> {
        Box::pin(async move {
            let m = StreamConsumer::recv(self).await.map_err(BusError::Kafka)?;
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|x| {
                            (
                                x.key.to_owned(),
                                x.value.map(<[u8]>::to_vec).unwrap_or_default(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            Ok(LogRecord {
                topic: m.topic().to_owned(),
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                payload: m.payload().map(<[u8]>::to_vec),
                headers,
            })
        })
    }

    fn assignment(&self) -> Vec<(String, i32)> {
        rdkafka::consumer::Consumer::assignment(self)
            .map(|tpl| {
                tpl.elements()
                    .iter()
                    .map(|e| (e.topic().to_owned(), e.partition()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn seek(&self, topic: &str, partition: i32, offset: i64) -> Result<(), BusError> {
        rdkafka::consumer::Consumer::seek(
            self,
            topic,
            partition,
            Offset::Offset(offset),
            Duration::from_secs(1),
        )
        .map_err(BusError::Kafka)
    }

    fn commit_hint(&self, offsets: &[(String, i32, i64)]) -> Result<(), BusError> {
        let mut tpl = TopicPartitionList::new();
        for (t, p, o) in offsets {
            tpl.add_partition_offset(t, *p, Offset::Offset(*o))
                .map_err(BusError::Kafka)?;
        }
        self.commit(&tpl, CommitMode::Async)
            .map_err(BusError::Kafka)
    }

    /// Asks the partition leader (blocking, for up to 10 s).
    fn log_bounds(&self, topic: &str, partition: i32) -> Result<(i64, i64), BusError> {
        self.fetch_watermarks(topic, partition, Duration::from_secs(10))
            .map_err(BusError::Kafka)
    }
}

/// Every record of `topic` from the start of its log to its end as of the call, partition by
/// partition in offset order, read by `consumer` (assigned the partitions; it joins no group
/// and commits nothing). A topic that does not exist has no records. Fails if the end is not
/// reached `within` (a broker out of reach).
pub async fn read_to_end(
    consumer: &StreamConsumer,
    topic: &str,
    within: Duration,
) -> Result<Vec<LogRecord>, BusError> {
    let deadline = tokio::time::Instant::now() + within;
    let metadata = consumer
        .fetch_metadata(Some(topic), within)
        .map_err(BusError::Kafka)?;
    let Some(described) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Ok(Vec::new());
    };
    if described.error().is_some() {
        return Ok(Vec::new()); // unknown topic: nothing was ever dead-lettered there
    }
    let mut tpl = TopicPartitionList::new();
    let mut ends = std::collections::HashMap::new();
    for p in described.partitions() {
        let (start, end) = consumer
            .fetch_watermarks(topic, p.id(), within)
            .map_err(BusError::Kafka)?;
        if end > start {
            tpl.add_partition_offset(topic, p.id(), Offset::Offset(start))
                .map_err(BusError::Kafka)?;
            ends.insert(p.id(), end);
        }
    }
    let mut records = Vec::new();
    if ends.is_empty() {
        return Ok(records);
    }
    consumer.assign(&tpl).map_err(BusError::Kafka)?;
    while !ends.is_empty() {
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(BusError::Log(format!(
                "{topic} was not read to its end within {within:?}: is the broker reachable?"
            )));
        }
        let wait = (deadline - now).min(Duration::from_millis(500));
        match tokio::time::timeout(wait, LogConsumer::recv(consumer)).await {
            Ok(record) => {
                let record = record?;
                let end = ends.get(&record.partition).copied();
                if end.is_some_and(|end| record.offset + 1 >= end) {
                    ends.remove(&record.partition);
                }
                if end.is_some_and(|end| record.offset < end) {
                    records.push(record);
                }
            }
            // Idle: the offsets left may hold nothing to read (transaction markers).
            Err(_) => {
                let position = consumer.position().map_err(BusError::Kafka)?;
                for e in position.elements() {
                    if let Offset::Offset(next) = e.offset()
                        && ends.get(&e.partition()).is_some_and(|end| next >= *end)
                    {
                        ends.remove(&e.partition());
                    }
                }
            }
        }
    }
    records.sort_by_key(|r| (r.partition, r.offset));
    Ok(records)
}

/// A Kafka consumer with a second, never subscribed client that answers where a partition's
/// log starts and ends: asked through the consumer itself, that request waits behind its
/// fetches (~0.5 s, `fetch.wait.max.ms`) each time.
pub struct KafkaLog {
    records: StreamConsumer,
    offsets: StreamConsumer,
}

impl KafkaLog {
    /// `records` reads; `offsets` (never subscribed) only answers offset queries.
    pub fn new(records: StreamConsumer, offsets: StreamConsumer) -> Self {
        Self { records, offsets }
    }

    /// The consumer that reads (to subscribe it).
    pub fn records(&self) -> &StreamConsumer {
        &self.records
    }
}

impl LogConsumer for KafkaLog {
    fn recv(&self) -> BoxFuture<'_, Result<LogRecord, BusError>> {
        LogConsumer::recv(&self.records)
    }

    fn assignment(&self) -> Vec<(String, i32)> {
        LogConsumer::assignment(&self.records)
    }

    fn seek(&self, topic: &str, partition: i32, offset: i64) -> Result<(), BusError> {
        LogConsumer::seek(&self.records, topic, partition, offset)
    }

    fn commit_hint(&self, offsets: &[(String, i32, i64)]) -> Result<(), BusError> {
        self.records.commit_hint(offsets)
    }

    fn log_bounds(&self, topic: &str, partition: i32) -> Result<(i64, i64), BusError> {
        self.offsets.log_bounds(topic, partition)
    }
}

/// The partition of a keyed record: librdkafka's default `consistent_random` partitioner
/// (CRC32 of the key modulo the partition count), so a key lands in the same partition in
/// Kafka and in the embedded log.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    let n = u32::try_from(partitions.max(1)).unwrap_or(1);
    i32::try_from(crc32(key) % n).unwrap_or(0)
}

/// CRC-32 (IEEE 802.3, as zlib computes it).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_zlib() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn partition_is_stable_and_in_range() {
        for k in ["acct_1/in_1", "acct_1/ch_2", "x"] {
            let p = partition_for_key(k.as_bytes(), 6);
            assert!((0..6).contains(&p));
            assert_eq!(p, partition_for_key(k.as_bytes(), 6));
        }
    }
}
