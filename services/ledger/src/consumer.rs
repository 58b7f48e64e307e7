//! The log side of the fold: bounded batches in, one store transaction per batch. Runs over
//! any [`LogConsumer`] (Kafka or the embedded log); dead letters go out through any
//! [`LogPublisher`].
//!
//! Two stages, so the CPU work that needs no lock overlaps the database's work: the reader
//! reads records and prepares them ([`crate::engine::prepare`]: envelopes, digests, postings,
//! raw facts compressed for the store) on a blocking thread while the writer folds and commits
//! the previous batch; when the writer is free, everything read so far is its next batch. At
//! most two batches are in memory (the one being written and the one being read, each ≤
//! `max_records`), and a slow database stops the reader (backpressure).

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use ledgerline_bus::log::{LogConsumer, LogPublisher, LogRecord, OutRecord};
use ledgerline_bus::topics::{
    DLQ_REASON_HEADER, DLQ_SOURCE_OFFSET_HEADER, DLQ_SOURCE_PARTITION_HEADER, dlq_of,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::engine::{BatchReport, DeadLetter, Engine, InRecord, Prepared, TopicKind, prepare};
use crate::health::Readiness;
use crate::raw::{DICTIONARY_SAMPLE_BYTES, DICTIONARY_SAMPLES, Dictionary, RawEncoder};
use crate::rules::{PostingRules, Unpostable};
use crate::store::{Store, WriteTx as _};
use ledgerline_bus::topics::reason_header;

/// Batch bounds: a batch holds what arrived while the previous one was written, at most
/// `max_records` (then the reader stops reading: backpressure), handed over no earlier than
/// `linger` after its first record.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub max_records: usize,
    pub linger: Duration,
    /// Backpressure from the derived balance cells: the writer starts no batch while more than
    /// this many lines statements wait for the cells builder ([`Store::derived_backlog`]), so
    /// the queue every as-of query reads stays short. `None`: no limit (when no instance runs
    /// the builder, e.g. a bulk load that builds the cells afterwards).
    pub max_cells_backlog: Option<u64>,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            max_records: 5000,
            linger: Duration::from_millis(2),
            max_cells_backlog: Some(8),
        }
    }
}

/// Waits while the cells builder is more than `limit` statements behind (see
/// [`BatchLimits::max_cells_backlog`]); returns early at `shutdown`.
async fn wait_for_cells_builder<S: Store>(
    store: &S,
    limit: u64,
    shutdown: &CancellationToken,
) -> Result<(), Error> {
    let since = std::time::Instant::now();
    let mut warned = since;
    loop {
        let backlog = store.derived_backlog().await?;
        if backlog <= limit {
            return Ok(());
        }
        if warned.elapsed() >= Duration::from_secs(10) {
            warned = std::time::Instant::now();
            tracing::warn!(
                backlog,
                limit,
                waited_s = since.elapsed().as_secs(),
                "the writer waits for the balance-cells builder (is one running?)"
            );
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
    }
}

/// An outage of the database or of the broker the writer waits out instead of stopping the
/// ledger (a restart would re-fold every stored fact, and a supervisor restarting into the same
/// outage gains nothing): the same batch is tried again with a growing pause, up to
/// [`Outage::MAX_PAUSE`], for as long as the failure says something is out of reach
/// ([`Error::out_of_reach`]: the database, or the broker while a dead letter waits for it) and
/// no shutdown comes.
#[derive(Debug, Default)]
struct Outage {
    since: Option<std::time::Instant>,
    tries: u32,
    /// What was out of reach, for the log line when it is back.
    what: &'static str,
}

impl Outage {
    const MAX_PAUSE: Duration = Duration::from_secs(5);

    /// Logs that `what` ([`Error::out_of_reach`]) failed with `e`, and pauses; false at
    /// shutdown.
    async fn wait(&mut self, what: &'static str, e: &Error, shutdown: &CancellationToken) -> bool {
        let since = *self.since.get_or_insert_with(std::time::Instant::now);
        self.tries += 1;
        let pause = Duration::from_millis(200)
            .saturating_mul(1 << self.tries.min(5))
            .min(Self::MAX_PAUSE);
        tracing::warn!(
            error = %e,
            tries = self.tries,
            down_s = since.elapsed().as_secs(),
            "{what} is out of reach; the writer waits and tries the same batch again"
        );
        self.what = what;
        tokio::select! {
            () = shutdown.cancelled() => false,
            () = tokio::time::sleep(pause) => true,
        }
    }

    fn ended(&self) {
        if let Some(since) = self.since {
            tracing::warn!(
                tries = self.tries,
                down_s = since.elapsed().as_secs(),
                "{} is back; the writer goes on",
                self.what
            );
        }
    }
}

/// Folds one batch in one transaction (retrying on failure with a rebuilt engine).
pub async fn fold_and_commit<S: Store, P: LogPublisher + ?Sized>(
    store: &S,
    engine: &mut Engine,
    producer: &P,
    group: &str,
    batch: &[InRecord],
) -> Result<BatchReport, Error> {
    let mut prepared = prepare(batch.to_vec(), &store.raw_encoder(), engine.rules());
    // Records handed in directly: offsets they skip or repeat are the caller's business.
    let any = |_: &str, _| Ok((0, i64::MAX));
    fold_prepared_and_commit(store, engine, producer, &any, group, &mut prepared).await
}

/// A partition's log as (start, end) now ([`LogConsumer::log_bounds`]).
pub type LogBounds<'a> =
    &'a (dyn Fn(&str, i32) -> Result<(i64, i64), ledgerline_bus::BusError> + Sync);

/// [`fold_and_commit`] for a batch already [`prepare`]d.
///
/// Offsets the batch skips or repeats ([`BatchReport::gaps`]) are checked against the log's
/// bounds before the commit: records the log deleted before the ledger folded them
/// ([`Error::LogGap`]), or a log that ends below the stored offsets ([`Error::LogBehind`]), stop
/// it with nothing of the batch committed.
///
/// A value the database refuses ([`Error::is_refused_value`]: one the core's checks did not
/// foresee) would fail the batch on every try and stop the ledger for good. The batch is split
/// instead, each part committed by itself, until the record that carries the value is alone;
/// it goes to the dead-letter topic with the database's reason. The parts are folded in the
/// batch's order, so each holds, of every partition, the records that follow the last part's:
/// the offsets each commits cover exactly its writes.
pub async fn fold_prepared_and_commit<S: Store, P: LogPublisher + ?Sized>(
    store: &S,
    engine: &mut Engine,
    producer: &P,
    log_bounds: LogBounds<'_>,
    group: &str,
    batch: &mut [Prepared],
) -> Result<BatchReport, Error> {
    // The parts still to fold, the next on top.
    let mut parts: Vec<Range<usize>> = Vec::new();
    parts.push(0..batch.len());
    let mut folded = BatchReport::default();
    while let Some(part) = parts.pop() {
        let batch_part = &mut batch[part.clone()];
        match fold_retrying(store, engine, producer, log_bounds, group, batch_part).await {
            Ok(report) => folded.add(report),
            Err(e) if e.is_refused_value() => match batch_part {
                // Already a dead letter (or nothing): the refusal is not a record's.
                [] => return Err(e),
                [refused] if refused.raw_fact().is_none() => return Err(e),
                [refused] => {
                    refused
                        .send_to_dead_letters(format!("the database refuses a value of it: {e}"));
                    parts.push(part);
                }
                _ => {
                    let middle = part.start + part.len() / 2;
                    parts.push(middle..part.end);
                    parts.push(part.start..middle);
                }
            },
            Err(e) => return Err(e),
        }
    }
    Ok(folded)
}

/// Folds one batch in one transaction, retrying what may pass (up to five tries, with a
/// rebuilt engine); a value the database refuses is returned at once, since it would only fail
/// again.
async fn fold_retrying<S: Store, P: LogPublisher + ?Sized>(
    store: &S,
    engine: &mut Engine,
    producer: &P,
    log_bounds: LogBounds<'_>,
    group: &str,
    batch: &mut [Prepared],
) -> Result<BatchReport, Error> {
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match try_fold(store, engine, producer, log_bounds, group, batch).await {
            Ok(r) => return Ok(r),
            Err(e @ (Error::LogGap { .. } | Error::LogBehind { .. })) => return Err(e),
            Err(e) if e.is_refused_value() => return Err(e),
            // A poison record: each one found is one fewer, so this is not a failed attempt.
            // The engine dropped its journal, so the next try rebuilds it (`try_fold`).
            Err(Error::PostingPanicked {
                batch_index,
                message,
            }) => {
                attempt -= 1;
                if let Some(poison) = batch.get_mut(batch_index) {
                    poison.send_to_dead_letters(Unpostable::Panicked(message).to_string());
                }
            }
            Err(e) if attempt < 5 => {
                tracing::warn!(error = %e, attempt, "batch failed; taking it back and retrying");
                if !engine.roll_back() {
                    *engine = engine.fresh();
                }
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn try_fold<S: Store, P: LogPublisher + ?Sized>(
    store: &S,
    engine: &mut Engine,
    producer: &P,
    log_bounds: LogBounds<'_>,
    group: &str,
    batch: &mut [Prepared],
) -> Result<BatchReport, Error> {
    if !engine.roll_back() {
        *engine = engine.fresh();
    }
    let mut tx = store.begin_write().await?;
    engine.catch_up(&mut tx).await?;
    let (report, dead) = engine.fold_batch(&mut tx, group, batch).await?;
    for gap in &report.gaps {
        // Rare (a partition's offsets follow each other and start at the stored one unless
        // something happened to the log), so asking the broker here, under the writer's lock,
        // costs nothing in the common case.
        let (log_start, log_end) = log_bounds(&gap.topic, gap.partition)?;
        if gap.found > gap.expected && log_start > gap.expected {
            return Err(Error::LogGap {
                topic: gap.topic.clone(),
                partition: gap.partition,
                expected: gap.expected,
                log_start,
            });
        }
        if gap.found < gap.expected && log_end < gap.expected {
            return Err(Error::LogBehind {
                topic: gap.topic.clone(),
                partition: gap.partition,
                expected: gap.expected,
                log_end,
            });
        }
    }
    // The offsets of dead letters advance only once the broker has them.
    send_dead_letters(producer, &dead).await?;
    tx.commit().await?;
    engine.committed();
    Ok(report)
}

async fn send_dead_letters<P: LogPublisher + ?Sized>(
    producer: &P,
    dead: &[DeadLetter],
) -> Result<(), Error> {
    if dead.is_empty() {
        return Ok(());
    }
    let topics: Vec<String> = dead.iter().map(|d| dlq_of(&d.record.topic)).collect();
    let sources: Vec<[String; 2]> = dead
        .iter()
        .map(|d| [d.record.partition.to_string(), d.record.offset.to_string()])
        .collect();
    let reasons: Vec<_> = dead.iter().map(|d| reason_header(&d.reason)).collect();
    let headers: Vec<[(&str, &[u8]); 3]> = reasons
        .iter()
        .zip(&sources)
        .map(|(reason, [partition, offset])| {
            [
                (DLQ_REASON_HEADER, reason.as_bytes()),
                (DLQ_SOURCE_PARTITION_HEADER, partition.as_bytes()),
                (DLQ_SOURCE_OFFSET_HEADER, offset.as_bytes()),
            ]
        })
        .collect();
    let records: Vec<OutRecord<'_>> = dead
        .iter()
        .zip(&topics)
        .zip(&headers)
        .map(|((d, topic), h)| OutRecord {
            topic,
            key: d.record.key.as_deref(),
            payload: d.record.payload.as_deref(),
            headers: h,
        })
        .collect();
    producer.publish(&records).await?;
    Ok(())
}

/// Consumes `topics` until `shutdown`, folding bounded batches with `rules`; rebuilds the core
/// state at start and tells `readiness` when it is built.
#[allow(clippy::too_many_arguments)] // each is a different collaborator of the fold
pub async fn run<S: Store, C: LogConsumer + ?Sized, P: LogPublisher + ?Sized>(
    store: S,
    consumer: &C,
    producer: &P,
    topics: Vec<(String, TopicKind)>,
    group: String,
    limits: BatchLimits,
    rules: PostingRules,
    readiness: &Readiness,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    // One batch in the writer's hands at a time: the reader hands over only when the writer
    // is free (the permit comes back when a batch is committed).
    let writer_free = Arc::new(Semaphore::new(1));
    let (ready, mut queued) =
        tokio::sync::mpsc::channel::<(Vec<Prepared>, OwnedSemaphorePermit)>(1);
    let reader = read_and_prepare(
        &store,
        consumer,
        &topics,
        &group,
        limits,
        &shutdown,
        rules,
        (writer_free, ready),
    );
    let writer = async {
        let mut engine = Engine::with_rules(rules);
        // The core state is rebuilt at start, not when the first record arrives (after a quiet
        // restart that record would wait for the whole replay).
        let warming = std::time::Instant::now();
        tokio::select! {
            warmed = engine.warm_up(&store) => match warmed {
                Ok(facts) => {
                    tracing::info!(
                        facts,
                        took_ms = warming.elapsed().as_millis(),
                        "core state rebuilt from the stored facts; ready"
                    );
                    readiness.core_state_built(u64::try_from(facts).unwrap_or(u64::MAX));
                }
                Err(e) => {
                    // The first batch's catch-up rebuilds it under the writer lock instead.
                    tracing::warn!(error = %e, "could not rebuild the core state at start; the first batch will");
                    engine = engine.fresh();
                }
            },
            // Cut short: the first batch (if any is drained) rebuilds it under the lock.
            () = shutdown.cancelled() => engine = engine.fresh(),
        }
        // Drains what the reader queued before it stopped: a read batch is written, not lost
        // (and not needed either: its offsets are not stored, so it would be read again).
        while let Some((mut batch, _free_when_committed)) = queued.recv().await {
            let t = std::time::Instant::now();
            let mut outage = Outage::default();
            let report = loop {
                let attempt = async {
                    if let Some(limit) = limits.max_cells_backlog {
                        wait_for_cells_builder(&store, limit, &shutdown).await?;
                    }
                    if shutdown.is_cancelled() {
                        return Ok(None);
                    }
                    let log_bounds = |topic: &str, partition| consumer.log_bounds(topic, partition);
                    fold_prepared_and_commit(
                        &store,
                        &mut engine,
                        producer,
                        &log_bounds,
                        &group,
                        &mut batch,
                    )
                    .await
                    .map(Some)
                };
                match attempt.await {
                    Ok(Some(report)) => break Some(report),
                    // Not written, offsets not stored: read again after a restart.
                    Ok(None) => break None,
                    Err(e) => match e.out_of_reach() {
                        Some(what) => {
                            if !outage.wait(what, &e, &shutdown).await {
                                break None;
                            }
                        }
                        None => return Err(e),
                    },
                }
            };
            let Some(report) = report else { break };
            outage.ended();
            if readiness.built().is_none() {
                readiness.core_state_built(u64::try_from(engine.facts_known()).unwrap_or(u64::MAX));
            }
            tracing::debug!(
                ?report,
                total_ms = t.elapsed().as_millis(),
                "batch committed"
            );
            commit_hint(consumer, &batch);
        }
        Ok::<(), Error>(())
    };
    // The first error ends both stages (the other is dropped mid-await: nothing it holds is
    // committed anywhere).
    tokio::try_join!(reader, writer)?;
    Ok(())
}

/// The reader stage of [`run`]. It keeps reading into the pending batch while the writer is
/// busy and hands the whole batch over as soon as the writer is free, so under load a batch is
/// what arrived during one write (up to `max_records`; then the reader stops reading:
/// backpressure), and a quiet stream is written at once instead of waiting behind a sealed,
/// queued batch. `linger` is the least age of a batch's first record before a hand-over. Records
/// are prepared on a blocking thread in chunks as they arrive, so the hand-over finds them
/// ready, posted with `rules` (the writer's engine's).
#[allow(clippy::too_many_arguments)] // each is a different collaborator of the reader
async fn read_and_prepare<S: Store, C: LogConsumer + ?Sized>(
    store: &S,
    consumer: &C,
    topics: &[(String, TopicKind)],
    group: &str,
    limits: BatchLimits,
    shutdown: &CancellationToken,
    rules: PostingRules,
    (writer_free, ready): (
        Arc<Semaphore>,
        tokio::sync::mpsc::Sender<(Vec<Prepared>, OwnedSemaphorePermit)>,
    ),
) -> Result<(), Error> {
    const PREPARE_CHUNK: usize = 500;
    let kinds: HashMap<String, TopicKind> = topics.iter().cloned().collect();
    let mut assigned: HashSet<(String, i32)> = HashSet::new();
    let mut prepared: Vec<Prepared> = Vec::new();
    let mut raw: Vec<InRecord> = Vec::new();
    let mut oldest = tokio::time::Instant::now();
    let mut samples = store
        .load_raw_dictionaries()
        .await?
        .map(DictionarySamples::new);
    loop {
        let pending = prepared.len() + raw.len();
        let full = pending >= limits.max_records.max(1);
        if raw.len() >= PREPARE_CHUNK || (full && !raw.is_empty()) {
            let before = prepared.len();
            prepare_pending(&mut raw, &mut prepared, store.raw_encoder(), rules).await?;
            train_when_sampled(store, &mut samples, &prepared[before..]).await;
            continue;
        }
        let lingered = tokio::time::sleep_until(oldest + limits.linger);
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            free = async {
                lingered.await;
                writer_free.clone().acquire_owned().await
            }, if pending > 0 => {
                let Ok(free) = free else {
                    break;
                };
                let before = prepared.len();
                prepare_pending(&mut raw, &mut prepared, store.raw_encoder(), rules).await?;
                train_when_sampled(store, &mut samples, &prepared[before..]).await;
                seek_new_assignments(store, consumer, group, &mut assigned).await?;
                tracing::debug!(records = prepared.len(), "batch read");
                if ready.send((std::mem::take(&mut prepared), free)).await.is_err() {
                    break; // the writer stopped (its error ends `run`)
                }
            }
            m = consumer.recv(), if !full => match m {
                Ok(m) => {
                    if pending == 0 {
                        oldest = tokio::time::Instant::now();
                    }
                    push(&mut raw, &kinds, m);
                }
                Err(e) => tracing::warn!(error = %e, "log receive error"),
            },
        }
    }
    Ok(())
}

/// Moves the records read but not yet prepared into `prepared`, preparing them on a blocking
/// thread (pure CPU work, raw facts encoded for the store included: the writer's future keeps
/// running meanwhile).
async fn prepare_pending(
    raw: &mut Vec<InRecord>,
    prepared: &mut Vec<Prepared>,
    encoding: RawEncoder,
    rules: PostingRules,
) -> Result<(), Error> {
    if raw.is_empty() {
        return Ok(());
    }
    let chunk = std::mem::take(raw);
    prepared.extend(tokio::task::spawn_blocking(move || prepare(chunk, &encoding, rules)).await?);
    Ok(())
}

/// Raw facts gathered to train the store's dictionary ([`Dictionary`]): the first ones this
/// instance reads, when the store has none.
#[derive(Debug)]
struct DictionarySamples {
    wanted: usize,
    facts: Vec<Vec<u8>>,
    bytes: usize,
}

impl DictionarySamples {
    fn new(wanted: usize) -> Self {
        Self {
            wanted,
            facts: Vec::with_capacity(wanted.min(DICTIONARY_SAMPLES)),
            bytes: 0,
        }
    }

    fn enough(&self) -> bool {
        self.facts.len() >= self.wanted || self.bytes >= DICTIONARY_SAMPLE_BYTES
    }
}

/// Adds `fresh`'s facts to `samples`; once there are enough, trains a dictionary on a blocking
/// thread and hands it to the store, which compresses new facts with it once it is stored. One
/// attempt per run: a failure leaves facts compressed without a dictionary, which is correct,
/// only larger.
async fn train_when_sampled<S: Store>(
    store: &S,
    samples: &mut Option<DictionarySamples>,
    fresh: &[Prepared],
) {
    let Some(s) = samples.as_mut() else {
        return;
    };
    for raw in fresh.iter().filter_map(Prepared::raw_fact) {
        if s.enough() {
            break;
        }
        s.bytes += raw.len();
        s.facts.push(raw.to_vec());
    }
    if !s.enough() {
        return;
    }
    let facts = std::mem::take(&mut s.facts);
    *samples = None;
    let started = std::time::Instant::now();
    let trained = tokio::task::spawn_blocking(move || Dictionary::train(&facts)).await;
    let outcome = match trained {
        Ok(Ok(d)) => {
            let id = d.id();
            store
                .add_raw_dictionary(d)
                .await
                .map(|()| id)
                .map_err(|e| e.to_string())
        }
        Ok(Err(e)) => Err(e),
        Err(e) => Err(e.to_string()),
    };
    match outcome {
        Ok(id) => tracing::debug!(
            dictionary = id,
            ms = started.elapsed().as_millis(),
            "raw-fact dictionary trained"
        ),
        Err(e) => tracing::warn!(
            error = %e,
            "no raw-fact dictionary this run; facts stay zstd-compressed without one"
        ),
    }
}

/// The log's own commit is only a hint for tools: the store holds the truth.
fn commit_hint<C: LogConsumer + ?Sized>(consumer: &C, batch: &[Prepared]) {
    let mut next: HashMap<(&str, i32), i64> = HashMap::new();
    for p in batch {
        let r = &p.record;
        let e = next.entry((&r.topic, r.partition)).or_insert(0);
        *e = (*e).max(r.offset + 1);
    }
    let hint: Vec<(String, i32, i64)> = next
        .into_iter()
        .map(|((t, p), o)| (t.to_owned(), p, o))
        .collect();
    if let Err(e) = consumer.commit_hint(&hint) {
        tracing::debug!(error = %e, "offset hint not committed to the log");
    }
}

fn push(batch: &mut Vec<InRecord>, kinds: &HashMap<String, TopicKind>, m: LogRecord) {
    let Some(kind) = kinds.get(&m.topic).copied() else {
        return;
    };
    batch.push(InRecord {
        topic: m.topic,
        kind,
        partition: m.partition,
        offset: m.offset,
        key: m.key,
        payload: m.payload,
    });
}

/// On a new assignment, seek each new partition to the offset in the store (records
/// below it are also dropped under the writer lock, so this only saves re-reading).
async fn seek_new_assignments<S: Store, C: LogConsumer + ?Sized>(
    store: &S,
    consumer: &C,
    group: &str,
    assigned: &mut HashSet<(String, i32)>,
) -> Result<(), Error> {
    let current: HashSet<(String, i32)> = consumer.assignment().into_iter().collect();
    let fresh: Vec<(String, i32)> = current.difference(assigned).cloned().collect();
    *assigned = current;
    if fresh.is_empty() {
        return Ok(());
    }
    // Only saves re-reading (records below the stored offsets are dropped under the writer
    // lock anyway), so a database out of reach here is no reason to stop.
    let stored = match store.load_offsets(group).await {
        Ok(stored) => stored,
        Err(e) => {
            tracing::warn!(error = %e, "stored offsets not read; new partitions read from the log's position");
            return Ok(());
        }
    };
    for (tp, off) in stored {
        if fresh.contains(&tp)
            && let Err(e) = consumer.seek(&tp.0, tp.1, off)
        {
            tracing::debug!(error = %e, topic = %tp.0, partition = tp.1, "seek deferred");
        }
    }
    Ok(())
}
