//! The embedded log: Kafka's model (topics of partitions, per-partition offsets from 0,
//! keyed partitioning, consumer groups, `.dlq` topics) in one process, optionally persisted to
//! files in a data directory.
//!
//! - Publishing appends under one lock; with a data directory, every record is appended to
//!   `{dir}/{topic}/{partition}.log` as a CRC-checked frame and the files are `fdatasync`ed
//!   before [`LogPublisher::publish`] resolves (durable, like `acks=all`). On open, each file
//!   is read back up to its first torn or corrupt frame, which is cut off.
//! - A consumer of a group gets every partition of its topics (one member per group: the
//!   embedded mode runs one ledger); it starts at the group's committed offset, else at 0
//!   (`auto.offset.reset=earliest`). Group commits are kept in memory only: they are hints,
//!   services store their own offsets and seek.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::BusError;
use crate::log::{
    BoxFuture, LogConsumer, LogPublisher, LogRecord, OutRecord, crc32, partition_for_key,
};

#[derive(Debug, Clone)]
struct Stored {
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    headers: Vec<(String, Vec<u8>)>,
}

#[derive(Debug, Default)]
struct Partition {
    records: Vec<Stored>,
    file: Option<File>,
}

#[derive(Debug, Default)]
struct State {
    topics: BTreeMap<String, Vec<Partition>>,
    groups: HashMap<String, HashMap<(String, i32), i64>>,
    round_robin: u64,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    dir: Option<PathBuf>,
    default_partitions: i32,
    appended: watch::Sender<u64>,
}

/// An in-process log; clones share it.
#[derive(Debug, Clone)]
pub struct EmbeddedLog {
    inner: Arc<Inner>,
}

fn io(what: &str, path: &Path, e: &std::io::Error) -> BusError {
    BusError::Log(format!(
        "{what} {}: {e} (check the data directory's permissions and free space)",
        path.display()
    ))
}

impl EmbeddedLog {
    /// A log in memory only; topics created on first use get `default_partitions`.
    pub fn in_memory(default_partitions: i32) -> Self {
        Self::build(None, default_partitions, State::default())
    }

    /// A log persisted under `dir` (created if missing), with what it already holds.
    pub fn open(dir: impl Into<PathBuf>, default_partitions: i32) -> Result<Self, BusError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| io("cannot create", &dir, &e))?;
        let mut state = State::default();
        let entries = std::fs::read_dir(&dir).map_err(|e| io("cannot read", &dir, &e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io("cannot read", &dir, &e))?;
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let Some(topic) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            let mut parts = Vec::new();
            loop {
                let file = path.join(format!("{}.log", parts.len()));
                if !file.exists() {
                    break;
                }
                parts.push(load_partition(&file)?);
            }
            if !parts.is_empty() {
                state.topics.insert(topic, parts);
            }
        }
        Ok(Self::build(Some(dir), default_partitions, state))
    }

    fn build(dir: Option<PathBuf>, default_partitions: i32, state: State) -> Self {
        let (appended, _) = watch::channel(0);
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                dir,
                default_partitions: default_partitions.max(1),
                appended,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Creates `topic` with `partitions` partitions if it does not exist (an existing topic
    /// keeps its partitions, as in Kafka).
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), BusError> {
        let mut state = self.lock();
        self.ensure(&mut state, topic, partitions)?;
        Ok(())
    }

    fn ensure<'s>(
        &self,
        state: &'s mut State,
        topic: &str,
        partitions: i32,
    ) -> Result<&'s mut Vec<Partition>, BusError> {
        if !state.topics.contains_key(topic) {
            if topic.is_empty() || topic.contains(['/', '\\']) || topic.starts_with('.') {
                return Err(BusError::Log(format!(
                    "invalid topic name {topic:?} (no slashes, not empty, not starting with a dot)"
                )));
            }
            let n = usize::try_from(partitions.max(1)).unwrap_or(1);
            let mut parts = Vec::with_capacity(n);
            for p in 0..n {
                let file = match &self.inner.dir {
                    Some(dir) => {
                        let tdir = dir.join(topic);
                        std::fs::create_dir_all(&tdir)
                            .map_err(|e| io("cannot create", &tdir, &e))?;
                        let path = tdir.join(format!("{p}.log"));
                        Some(
                            OpenOptions::new()
                                .create(true)
                                .append(true)
                                .open(&path)
                                .map_err(|e| io("cannot open", &path, &e))?,
                        )
                    }
                    None => None,
                };
                parts.push(Partition {
                    records: Vec::new(),
                    file,
                });
            }
            state.topics.insert(topic.to_owned(), parts);
        }
        state
            .topics
            .get_mut(topic)
            .ok_or_else(|| BusError::Log(format!("topic {topic} vanished")))
    }

    /// The partition count of `topic` (0 if it does not exist).
    pub fn partitions(&self, topic: &str) -> i32 {
        self.lock()
            .topics
            .get(topic)
            .map_or(0, |p| i32::try_from(p.len()).unwrap_or(i32::MAX))
    }

    /// The next offset of every partition of `topic`.
    pub fn end_offsets(&self, topic: &str) -> Vec<i64> {
        self.lock()
            .topics
            .get(topic)
            .map_or_else(Vec::new, |parts| {
                parts
                    .iter()
                    .map(|p| i64::try_from(p.records.len()).unwrap_or(i64::MAX))
                    .collect()
            })
    }

    /// Records of one partition from `from` on.
    pub fn read(&self, topic: &str, partition: i32, from: i64) -> Vec<LogRecord> {
        let state = self.lock();
        let Some(p) = usize::try_from(partition)
            .ok()
            .and_then(|i| state.topics.get(topic)?.get(i))
        else {
            return Vec::new();
        };
        let start = usize::try_from(from.max(0)).unwrap_or(usize::MAX);
        p.records
            .iter()
            .enumerate()
            .skip(start)
            .map(|(o, s)| to_record(topic, partition, o, s))
            .collect()
    }

    /// A member of consumer group `group` reading every partition of `topics` (created with
    /// the default partition count if missing).
    pub fn consumer(&self, group: &str, topics: &[&str]) -> Result<EmbeddedConsumer, BusError> {
        let mut state = self.lock();
        let mut positions = Vec::new();
        for t in topics {
            let n = self
                .ensure(&mut state, t, self.inner.default_partitions)?
                .len();
            for p in 0..n {
                let p = i32::try_from(p).unwrap_or(i32::MAX);
                let start = state
                    .groups
                    .get(group)
                    .and_then(|g| g.get(&((*t).to_owned(), p)))
                    .copied()
                    .unwrap_or(0);
                positions.push(((*t).to_owned(), p, start));
            }
        }
        drop(state);
        Ok(EmbeddedConsumer {
            log: self.clone(),
            group: group.to_owned(),
            positions: Mutex::new((positions, 0)),
            appended: tokio::sync::Mutex::new(self.inner.appended.subscribe()),
        })
    }

    /// The offsets group `group` committed.
    pub fn committed(&self, group: &str) -> HashMap<(String, i32), i64> {
        self.lock().groups.get(group).cloned().unwrap_or_default()
    }

    fn append(&self, records: &[OutRecord<'_>]) -> Result<(), BusError> {
        let mut state = self.lock();
        let mut touched: Vec<(String, usize)> = Vec::new();
        for r in records {
            let partitions = self.inner.default_partitions;
            let rr = state.round_robin;
            state.round_robin = rr.wrapping_add(1);
            let parts = self.ensure(&mut state, r.topic, partitions)?;
            let n = i32::try_from(parts.len()).unwrap_or(i32::MAX);
            let p = match r.key {
                Some(k) => partition_for_key(k, n),
                None => i32::try_from(rr % u64::try_from(n).unwrap_or(1)).unwrap_or(0),
            };
            let idx = usize::try_from(p).unwrap_or(0);
            let stored = Stored {
                key: r.key.map(<[u8]>::to_vec),
                payload: r.payload.map(<[u8]>::to_vec),
                headers: r
                    .headers
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
                    .collect(),
            };
            let part = &mut parts[idx];
            if let Some(f) = part.file.as_mut() {
                let frame = encode(&stored);
                f.write_all(&frame).map_err(|e| {
                    BusError::Log(format!(
                        "cannot append to topic {}: {e} (check free space)",
                        r.topic
                    ))
                })?;
                if !touched.iter().any(|(t, i)| t == r.topic && *i == idx) {
                    touched.push((r.topic.to_owned(), idx));
                }
            }
            part.records.push(stored);
        }
        for (t, i) in &touched {
            if let Some(f) = state
                .topics
                .get(t)
                .and_then(|p| p.get(*i))
                .and_then(|p| p.file.as_ref())
            {
                f.sync_data().map_err(|e| {
                    BusError::Log(format!("cannot sync topic {t}: {e} (check the disk)"))
                })?;
            }
        }
        drop(state);
        self.inner.appended.send_modify(|v| *v = v.wrapping_add(1));
        Ok(())
    }
}

fn to_record(topic: &str, partition: i32, offset: usize, s: &Stored) -> LogRecord {
    LogRecord {
        topic: topic.to_owned(),
        partition,
        offset: i64::try_from(offset).unwrap_or(i64::MAX),
        key: s.key.clone(),
        payload: s.payload.clone(),
        headers: s.headers.clone(),
    }
}

impl LogPublisher for EmbeddedLog {
    fn publish<'a>(&'a self, records: &'a [OutRecord<'a>]) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move { self.append(records) })
    }
}

/// Frame: `len u32 | crc32 u32 | body`, body = optional key, optional payload, headers.
fn encode(s: &Stored) -> Vec<u8> {
    fn bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
        match b {
            None => out.push(0),
            Some(b) => {
                out.push(1);
                out.extend_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_le_bytes());
                out.extend_from_slice(b);
            }
        }
    }
    let mut body = Vec::new();
    bytes(&mut body, s.key.as_deref());
    bytes(&mut body, s.payload.as_deref());
    body.extend_from_slice(
        &u32::try_from(s.headers.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    for (k, v) in &s.headers {
        bytes(&mut body, Some(k.as_bytes()));
        bytes(&mut body, Some(v));
    }
    let mut frame = Vec::with_capacity(body.len() + 8);
    frame.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes());
    frame.extend_from_slice(&crc32(&body).to_le_bytes());
    frame.extend_from_slice(&body);
    frame
}

fn decode(body: &[u8]) -> Option<Stored> {
    struct Cur<'a>(&'a [u8]);
    impl Cur<'_> {
        fn take(&mut self, n: usize) -> Option<&[u8]> {
            if self.0.len() < n {
                return None;
            }
            let (a, b) = self.0.split_at(n);
            self.0 = b;
            Some(a)
        }
        fn u32(&mut self) -> Option<u32> {
            Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
        }
        fn bytes(&mut self) -> Option<Option<Vec<u8>>> {
            match self.take(1)?[0] {
                0 => Some(None),
                _ => {
                    let n = usize::try_from(self.u32()?).ok()?;
                    Some(Some(self.take(n)?.to_vec()))
                }
            }
        }
    }
    let mut c = Cur(body);
    let key = c.bytes()?;
    let payload = c.bytes()?;
    let n = c.u32()?;
    let mut headers = Vec::new();
    for _ in 0..n {
        let k = String::from_utf8(c.bytes()??).ok()?;
        let v = c.bytes()??;
        headers.push((k, v));
    }
    Some(Stored {
        key,
        payload,
        headers,
    })
}

fn load_partition(path: &Path) -> Result<Partition, BusError> {
    let mut buf = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut buf))
        .map_err(|e| io("cannot read", path, &e))?;
    let mut records = Vec::new();
    let mut at = 0usize;
    while buf.len() >= at + 8 {
        let len = u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
        let crc = u32::from_le_bytes([buf[at + 4], buf[at + 5], buf[at + 6], buf[at + 7]]);
        let Some(end) = usize::try_from(len).ok().map(|l| at + 8 + l) else {
            break;
        };
        if end > buf.len() || crc32(&buf[at + 8..end]) != crc {
            break;
        }
        let Some(s) = decode(&buf[at + 8..end]) else {
            break;
        };
        records.push(s);
        at = end;
    }
    let file = OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| io("cannot open", path, &e))?;
    if at < buf.len() {
        tracing::warn!(path = %path.display(), kept = at, size = buf.len(), "cutting a torn write off the end of the log");
        file.set_len(u64::try_from(at).unwrap_or(u64::MAX))
            .map_err(|e| io("cannot truncate", path, &e))?;
    }
    Ok(Partition {
        records,
        file: Some(file),
    })
}

/// (topic, partition, next offset) of each assigned partition, and where the round-robin
/// scan starts.
type Positions = (Vec<(String, i32, i64)>, usize);

/// One member of a consumer group of an [`EmbeddedLog`].
#[derive(Debug)]
pub struct EmbeddedConsumer {
    log: EmbeddedLog,
    group: String,
    positions: Mutex<Positions>,
    appended: tokio::sync::Mutex<watch::Receiver<u64>>,
}

impl EmbeddedConsumer {
    fn positions(&self) -> MutexGuard<'_, Positions> {
        self.positions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next record if one is ready, without waiting.
    pub fn poll(&self) -> Option<LogRecord> {
        let state = self.log.lock();
        let mut pos = self.positions();
        let (list, start) = &mut *pos;
        let n = list.len();
        for i in 0..n {
            let idx = (*start + i) % n;
            let (topic, partition, next) = &mut list[idx];
            let Some(stored) = usize::try_from(*partition)
                .ok()
                .and_then(|p| state.topics.get(topic.as_str())?.get(p))
                .and_then(|p| p.records.get(usize::try_from(*next).ok()?))
            else {
                continue;
            };
            let rec = to_record(
                topic,
                *partition,
                usize::try_from(*next).unwrap_or(0),
                stored,
            );
            *next += 1;
            *start = (idx + 1) % n;
            return Some(rec);
        }
        None
    }
}

impl LogConsumer for EmbeddedConsumer {
    fn recv(&self) -> BoxFuture<'_, Result<LogRecord, BusError>> {
        Box::pin(async move {
            let mut appended = self.appended.lock().await;
            loop {
                appended.borrow_and_update();
                if let Some(r) = self.poll() {
                    return Ok(r);
                }
                if appended.changed().await.is_err() {
                    return Err(BusError::Log("the embedded log was closed".into()));
                }
            }
        })
    }

    fn assignment(&self) -> Vec<(String, i32)> {
        self.positions()
            .0
            .iter()
            .map(|(t, p, _)| (t.clone(), *p))
            .collect()
    }

    /// The embedded log never deletes a record: it starts at 0.
    fn log_bounds(&self, topic: &str, partition: i32) -> Result<(i64, i64), BusError> {
        let end = usize::try_from(partition)
            .ok()
            .and_then(|p| self.log.end_offsets(topic).get(p).copied())
            .unwrap_or(0);
        Ok((0, end))
    }

    fn seek(&self, topic: &str, partition: i32, offset: i64) -> Result<(), BusError> {
        let mut pos = self.positions();
        let slot = pos
            .0
            .iter_mut()
            .find(|(t, p, _)| t == topic && *p == partition)
            .ok_or_else(|| {
                BusError::Log(format!(
                    "{topic}/{partition} is not assigned to this consumer"
                ))
            })?;
        slot.2 = offset.max(0);
        Ok(())
    }

    fn commit_hint(&self, offsets: &[(String, i32, i64)]) -> Result<(), BusError> {
        let mut state = self.log.lock();
        let group = state.groups.entry(self.group.clone()).or_default();
        for (t, p, o) in offsets {
            let e = group.entry((t.clone(), *p)).or_insert(0);
            *e = (*e).max(*o);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn out<'a>(topic: &'a str, key: &'a str, payload: &'a str) -> OutRecord<'a> {
        OutRecord::new(topic, key.as_bytes(), payload.as_bytes())
    }

    #[tokio::test]
    async fn keyed_records_keep_their_partition_and_offsets_count_from_zero() {
        let log = EmbeddedLog::in_memory(4);
        log.create_topic("t", 4).unwrap();
        let recs: Vec<_> = (0..20).map(|i| format!("v{i}")).collect();
        let outs: Vec<_> = recs.iter().map(|v| out("t", "acct/in_1", v)).collect();
        log.publish(&outs).await.unwrap();
        let p = partition_for_key(b"acct/in_1", 4);
        assert_eq!(log.end_offsets("t")[usize::try_from(p).unwrap()], 20);
        let got = log.read("t", p, 5);
        assert_eq!(got.len(), 15);
        assert_eq!(got[0].offset, 5);
        assert_eq!(got[0].payload.as_deref(), Some(&b"v5"[..]));
    }

    #[tokio::test]
    async fn consumer_waits_seeks_and_resumes_from_group_commit() {
        let log = EmbeddedLog::in_memory(2);
        let c = log.consumer("g", &["t"]).unwrap();
        assert!(c.poll().is_none());
        let l2 = log.clone();
        let h = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            l2.publish(&[out("t", "k", "a"), out("t", "k", "b")])
                .await
                .unwrap();
        });
        let first = c.recv().await.unwrap();
        h.await.unwrap();
        assert_eq!(
            (first.offset, first.payload.as_deref()),
            (0, Some(&b"a"[..]))
        );
        c.seek(&first.topic, first.partition, 0).unwrap();
        assert_eq!(c.recv().await.unwrap().offset, 0);
        c.commit_hint(&[(first.topic.clone(), first.partition, 1)])
            .unwrap();
        let c2 = log.consumer("g", &["t"]).unwrap();
        assert_eq!(c2.recv().await.unwrap().payload.as_deref(), Some(&b"b"[..]));
        assert!(log.consumer("other", &["t"]).unwrap().poll().is_some());
    }

    #[tokio::test]
    async fn persisted_log_reopens_and_cuts_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = EmbeddedLog::open(dir.path(), 1).unwrap();
            let headers = [("why", &b"bad"[..])];
            let rec = OutRecord {
                topic: "t.dlq",
                key: None,
                payload: Some(b"x"),
                headers: &headers,
            };
            log.publish(&[out("t", "k", "1"), out("t", "k", "2"), rec])
                .await
                .unwrap();
        }
        // A torn write: half a frame at the end.
        let path = dir.path().join("t").join("0.log");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[9, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let log = EmbeddedLog::open(dir.path(), 1).unwrap();
        assert_eq!(log.end_offsets("t"), vec![2]);
        let dlq = log.read("t.dlq", 0, 0);
        assert_eq!(dlq[0].header("why"), Some(&b"bad"[..]));
        log.publish(&[out("t", "k", "3")]).await.unwrap();
        let log = EmbeddedLog::open(dir.path(), 1).unwrap();
        let all = log.read("t", 0, 0);
        assert_eq!(all.len(), 3);
        assert_eq!(all[2].payload.as_deref(), Some(&b"3"[..]));
    }
}
