//! The log cut where a live ledger stands: a consumer that hands out only the records below
//! given offsets, and a dead-letter sink that counts instead of publishing again.

use std::collections::HashMap;
use std::sync::Mutex;

use ledgerline_bus::BusError;
use ledgerline_bus::log::{BoxFuture, LogConsumer, LogPublisher, LogRecord, OutRecord};

use crate::store::Offsets;

/// Called once for a partition whose bound was reached (Kafka: pause it, so the rest of a long
/// log is not fetched only to be dropped).
pub type OnBound = Box<dyn Fn(&str, i32) + Send + Sync>;

/// Reads `inner` but hands out only records below `bounds` (topic, partition → first offset not
/// to fold); a partition without a bound yields nothing. Commits no hint: a rebuild must leave
/// no trace in the broker's group offsets.
pub struct UpTo<'a, C: ?Sized> {
    inner: &'a C,
    bounds: Offsets,
    on_bound: OnBound,
    reached: Mutex<HashMap<(String, i32), ()>>,
}

impl<'a, C: LogConsumer + ?Sized> UpTo<'a, C> {
    pub fn new(inner: &'a C, bounds: Offsets, on_bound: OnBound) -> Self {
        Self {
            inner,
            bounds,
            on_bound,
            reached: Mutex::new(HashMap::new()),
        }
    }

    fn bound(&self, topic: &str, partition: i32) -> i64 {
        self.bounds
            .get(&(topic.to_owned(), partition))
            .copied()
            .unwrap_or(0)
    }

    /// Notes that `topic`/`partition` has nothing more to hand out (once per partition).
    fn reached(&self, topic: &str, partition: i32) {
        let first = self
            .reached
            .lock()
            .map(|mut r| r.insert((topic.to_owned(), partition), ()).is_none())
            .unwrap_or(false);
        if first {
            (self.on_bound)(topic, partition);
        }
    }
}

impl<C: LogConsumer + ?Sized> LogConsumer for UpTo<'_, C> {
    fn recv(&self) -> BoxFuture<'_, Result<LogRecord, BusError>> {
        Box::pin(async move {
            loop {
                let r = self.inner.recv().await?;
                let bound = self.bound(&r.topic, r.partition);
                if r.offset < bound {
                    if r.offset + 1 == bound {
                        self.reached(&r.topic, r.partition);
                    }
                    return Ok(r);
                }
                self.reached(&r.topic, r.partition);
            }
        })
    }

    fn assignment(&self) -> Vec<(String, i32)> {
        self.inner.assignment()
    }

    fn seek(&self, topic: &str, partition: i32, offset: i64) -> Result<(), BusError> {
        self.inner.seek(topic, partition, offset)
    }

    fn commit_hint(&self, _offsets: &[(String, i32, i64)]) -> Result<(), BusError> {
        Ok(())
    }

    fn log_bounds(&self, topic: &str, partition: i32) -> Result<(i64, i64), BusError> {
        self.inner.log_bounds(topic, partition)
    }
}

/// Where a rebuild's dead letters go: nowhere new. The live ledger already put each of them on
/// its `.dlq` topic before it stored the offsets the rebuild stops at; sending them again would
/// double them there. They are counted, by reason, for the report (a batch retried after a
/// failed commit is tallied again, as a live ledger would publish it again: at least once).
#[derive(Debug, Default)]
pub struct DeadLetterTally {
    reasons: Mutex<Vec<(String, String)>>,
}

impl DeadLetterTally {
    /// (dead-letter topic, reason) of every dead letter, in the order they came.
    pub fn take(&self) -> Vec<(String, String)> {
        self.reasons
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }
}

impl LogPublisher for DeadLetterTally {
    fn publish<'a>(&'a self, records: &'a [OutRecord<'a>]) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            let mut noted = self
                .reasons
                .lock()
                .map_err(|_| BusError::Log("dead-letter tally poisoned".into()))?;
            for r in records {
                let reason = r
                    .headers
                    .iter()
                    .find(|(k, _)| *k == ledgerline_bus::topics::DLQ_REASON_HEADER)
                    .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default();
                noted.push((r.topic.to_owned(), reason));
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use ledgerline_bus::EmbeddedLog;

    use super::*;

    #[tokio::test]
    async fn hands_out_only_records_below_the_bounds_and_reports_each_bound_once() {
        let log = EmbeddedLog::in_memory(2);
        log.create_topic("t", 2).unwrap();
        // Keys chosen by their partition so both partitions get five records.
        let mut keys: [Vec<Vec<u8>>; 2] = [Vec::new(), Vec::new()];
        for i in 0.. {
            let k = format!("k{i}").into_bytes();
            let p = usize::try_from(ledgerline_bus::log::partition_for_key(&k, 2)).unwrap();
            if keys[p].len() < 5 {
                keys[p].push(k);
            }
            if keys.iter().all(|k| k.len() == 5) {
                break;
            }
        }
        for partition in &keys {
            for k in partition {
                log.publish(&[OutRecord::new("t", k, b"x")]).await.unwrap();
            }
        }
        let consumer = log.consumer("g", &["t"]).unwrap();
        let bounds = Offsets::from([(("t".to_owned(), 0), 3)]);
        let paused = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&paused);
        let up_to = UpTo::new(
            &consumer,
            bounds,
            Box::new(move |_, _| {
                seen.fetch_add(1, Ordering::SeqCst);
            }),
        );
        let mut got = Vec::new();
        while let Ok(Ok(r)) = tokio::time::timeout(Duration::from_millis(200), up_to.recv()).await {
            got.push((r.partition, r.offset));
        }
        assert_eq!(got, vec![(0, 0), (0, 1), (0, 2)]);
        // Partition 0 reached its bound; partition 1 (no bound) was reached at its first record.
        assert_eq!(paused.load(Ordering::SeqCst), 2);
        assert!(up_to.commit_hint(&[("t".into(), 0, 3)]).is_ok());
        assert!(log.committed("g").is_empty(), "a rebuild commits no hint");
    }

    #[tokio::test]
    async fn dead_letters_are_tallied_with_their_reason_not_published() {
        let tally = DeadLetterTally::default();
        let headers = [(ledgerline_bus::topics::DLQ_REASON_HEADER, &b"bad json"[..])];
        let r = OutRecord {
            topic: "t.dlq",
            key: None,
            payload: Some(b"{"),
            headers: &headers,
        };
        tally.publish(&[r]).await.unwrap();
        let taken = tally.take();
        assert_eq!(taken, vec![("t.dlq".to_owned(), "bad json".to_owned())]);
        assert!(tally.take().is_empty());
    }
}
