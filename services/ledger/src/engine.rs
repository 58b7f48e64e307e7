//! The fold of facts into a [`Store`], exactly once.
//!
//! The join state (an invoice's customer, a charge's cash, claims waiting for it, payout and
//! availability observations) is the in-memory [`ledgerline_core::Ledger`] itself: the
//! PostgreSQL ledger produces exactly the entries of the core fold because it *is* the core
//! fold. It is a [`ledgerline_core::Ledger::lean`] journal: the entries live in the
//! database, so it keeps of each only its id and content digest (to tell a duplicate from a
//! conflict), and whole only those a later fact may reverse. That state is a cache of
//! `ledger_facts`, the distinct facts in recording order:
//!
//! - every batch runs in one write transaction of the store, which serialises writers
//!   (PostgreSQL: a global advisory lock, so several instances of one consumer group take
//!   turns) and keeps `fact_seq` gap-free in commit order;
//! - under the lock, the engine replays the facts other instances recorded since it last
//!   looked (`fact_seq > last`), so its join state equals the database's;
//! - under the lock, records below the stored `consumer_offsets` are dropped (a partition
//!   that moved between instances is never folded twice); then the batch is folded, and its
//!   facts, entries, lines, chain links, conflicts, outbox rows and the new offsets are
//!   written by the store ([`crate::store::postgres`]: bulk `UNNEST` and `COPY`) and
//!   committed together.
//!
//! If anything fails between folding and commit, the in-memory state is ahead of the
//! database: the engine takes the batch back ([`Engine::roll_back`], the core journal's
//! [`ledgerline_core::Ledger::rollback_batch`]) and the next attempt's catch-up reads what the
//! database did commit; only a journal lost with a panicked thread is rebuilt from
//! `ledger_facts`.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use ledgerline_core::digest_key::{Digest128, DigestSet};
use ledgerline_core::{EntryId, JournalEntry, Ledger, MAX_ID_CHARS, Posting};
use prost::Message as _;
use sha2::{Digest, Sha256};

use crate::Error;
use crate::chain::{self, DERIVED_CHAIN, Head};
use crate::raw::{RawEncoder, RawEncoding};
use crate::rules::{PostingRules, StripeMode, Unpostable};
use crate::store::{Offsets, ReadFacts, Rows, Store, StoredFact, WriteTx};

pub use crate::store::postgres::WRITER_LOCK;

/// What a record carries, once its envelope is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKind {
    /// `stripe.events.v1`: `StripeEventRecord`.
    Events,
    /// `stripe.balance_transactions.v1`: `BalanceTransactionRecord`.
    BalanceTransactions,
}

impl TopicKind {
    /// The topics the ledger folds, and what each carries.
    pub fn inputs(topics: &ledgerline_bus::Topics) -> [(String, TopicKind); 2] {
        [
            (topics.stripe_events(), TopicKind::Events),
            (
                topics.stripe_balance_transactions(),
                TopicKind::BalanceTransactions,
            ),
        ]
    }
}

/// One consumed Kafka record.
#[derive(Debug, Clone)]
pub struct InRecord {
    pub topic: String,
    pub kind: TopicKind,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
}

/// A record that goes to the dead-letter topic, with why.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub record: InRecord,
    pub reason: String,
}

/// What one batch did (for logs, tests and the bench).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Records at or above the stored offsets (the rest were already folded).
    pub records: usize,
    /// Distinct facts stored.
    pub facts: usize,
    pub entries: usize,
    pub conflicts: usize,
    pub dead_letters: usize,
    /// Partitions whose records did not come at the offset that should come next, the first
    /// time per partition (the caller checks them against the log's bounds before it commits):
    /// - above it (the first record at or above the stored offset, or the record after
    ///   another, is not the next offset): the log deleted records the ledger never folded,
    ///   or the offsets between hold nothing to read (transaction markers);
    /// - below the stored offset: read again (a commit hint behind the store, a rebalance), or
    ///   the log ends below what the ledger folded (the topic created anew, records lost).
    pub gaps: Vec<OffsetGap>,
}

impl BatchReport {
    /// Adds what a later part of the same batch did.
    pub fn add(&mut self, later: BatchReport) {
        self.records += later.records;
        self.facts += later.facts;
        self.entries += later.entries;
        self.conflicts += later.conflicts;
        self.dead_letters += later.dead_letters;
        self.gaps.extend(later.gaps);
    }
}

/// A record of a partition at `found` where `expected` should have come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetGap {
    pub topic: String,
    pub partition: i32,
    /// The offset that should have come next.
    pub expected: i64,
    /// The offset that came.
    pub found: i64,
}

/// The ledger's fold state: the core journal plus what it mirrors of the database.
pub struct Engine {
    ledger: Ledger,
    /// The first 16 bytes of every stored fact's digest: a fact's bytes seen again are a no-op.
    fact_digests: DigestSet,
    last_fact_seq: i64,
    last_recorded_seq: i64,
    /// Set while the in-memory state may be ahead of the database.
    dirty: bool,
    /// While a batch is being folded: what to restore if it does not commit.
    before_batch: BeforeBatch,
    /// Batches taken back by [`Engine::roll_back`].
    taken_back: u64,
    catch_up_page: i64,
    rules: PostingRules,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("facts", &self.fact_digests.len())
            .field("last_fact_seq", &self.last_fact_seq)
            .field("last_recorded_seq", &self.last_recorded_seq)
            .finish_non_exhaustive()
    }
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

/// sha256(ledger, 0x00, raw): the identity of a fact's bytes.
pub fn fact_digest(ledger: &str, raw: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(ledger.as_bytes());
    h.update([0]);
    h.update(raw);
    h.finalize().into()
}

/// The `source_kind` column of an entry: decided by its rule, so that derived entries get the
/// same value whichever side completed them.
pub fn source_kind(rule: &str) -> &'static str {
    if rule.starts_with("balance_transaction") {
        "balance_transaction"
    } else {
        "event"
    }
}

/// What the ledger reads of a record's envelope.
#[derive(Debug)]
pub struct Envelope {
    pub account: String,
    pub raw: Vec<u8>,
    pub mode: StripeMode,
}

/// The envelope's account, raw JSON and mode, or why it cannot be read.
pub fn decode(kind: TopicKind, payload: Option<&[u8]>) -> Result<Envelope, String> {
    let payload = payload.ok_or_else(|| "record has no value".to_owned())?;
    let (account, raw, livemode) = match kind {
        TopicKind::Events => {
            let r = ledgerline_proto::stripe::v1::StripeEventRecord::decode(payload)
                .map_err(|e| format!("not a StripeEventRecord: {e}"))?;
            (r.account, r.raw_json, r.livemode)
        }
        TopicKind::BalanceTransactions => {
            let r = ledgerline_proto::stripe::v1::BalanceTransactionRecord::decode(payload)
                .map_err(|e| format!("not a BalanceTransactionRecord: {e}"))?;
            (r.account, r.raw_json, r.livemode)
        }
    };
    if account.is_empty() {
        return Err("envelope has no account".into());
    }
    if account.contains('\0') {
        return Err(
            "envelope's account holds a NUL character (\\u0000), which no store can keep".into(),
        );
    }
    let chars = account.chars().count();
    if chars > MAX_ID_CHARS {
        return Err(format!(
            "envelope's account is {chars} characters long: Stripe's ids are at most {MAX_ID_CHARS}"
        ));
    }
    if raw.is_empty() {
        return Err("envelope has no raw_json".into());
    }
    Ok(Envelope {
        account,
        raw,
        mode: StripeMode::of_livemode(livemode),
    })
}

/// The envelope of a fact `rules` book, or why the record goes to the dead-letter topic.
fn bookable(
    kind: TopicKind,
    payload: Option<&[u8]>,
    rules: PostingRules,
) -> Result<Envelope, String> {
    let envelope = decode(kind, payload)?;
    if envelope.mode != rules.mode {
        return Err(format!(
            "a {}-mode fact, and this ledger books {}-mode facts (LEDGERLINE_STRIPE_MODE): the \
             log mixes both modes (a {} ingester publishes to these topics). Publish each mode \
             under its own topic prefix, to its own ledger",
            envelope.mode.name(),
            rules.mode.name(),
            envelope.mode.name(),
        ));
    }
    Ok(envelope)
}

/// A Stripe unix time as the database's `timestamptz`.
pub fn timestamp_of(unix: i64) -> DateTime<Utc> {
    timestamp(unix)
}

pub(crate) fn timestamp(unix: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(unix, 0).unwrap_or(DateTime::UNIX_EPOCH)
}

/// Stored facts read per query when the engine catches up (a restart reads them all).
const CATCH_UP_PAGE: i64 = 10_000;

/// A record made ready for the fold outside the writer lock: its envelope decoded, its digest
/// and its posting computed, its raw bytes encoded for the store ([`crate::raw`]: zstd for
/// PostgreSQL, so the writer only copies ~1 KB a fact). All of that is pure, so the consumer
/// prepares batch N+1 on another thread while batch N is written ([`prepare`]); only what
/// depends on the join state is left for [`Engine::fold_batch`].
#[derive(Debug)]
pub struct Prepared {
    pub record: InRecord,
    /// The fact, or why the record goes to the dead-letter topic.
    content: Result<PreparedFact, String>,
}

#[derive(Debug)]
struct PreparedFact {
    account: String,
    /// As sent: the digest's and the posting's input (kept for a retry).
    raw: Vec<u8>,
    digest: [u8; 32],
    /// How the store wants it (see [`crate::store::Store::raw_encoder`]).
    wanted: RawEncoder,
    /// `raw` encoded, taken by the fold into its rows; a retry encodes again.
    stored: Option<(RawEncoding, Vec<u8>)>,
    /// Taken by the fold; a retry posts the fact again.
    posting: Option<Result<Posting, Unpostable>>,
}

/// Prepares one record (see [`Prepared`]).
fn prepare_one(record: InRecord, encoding: &RawEncoder, rules: PostingRules) -> Prepared {
    let content = bookable(record.kind, record.payload.as_deref(), rules).map(|envelope| {
        let Envelope { account, raw, .. } = envelope;
        let digest = fact_digest(&account, &raw);
        let posting = Some(rules.try_post(&account, &raw));
        let stored = Some(encoding.encode(&raw));
        PreparedFact {
            account,
            raw,
            digest,
            wanted: encoding.clone(),
            stored,
            posting,
        }
    });
    Prepared { record, content }
}

/// Prepares a batch (see [`Prepared`]) for a store that wants raw facts in `encoding`, posting
/// its facts with `rules` (those of the engine that folds it); CPU-bound, no IO.
pub fn prepare(batch: Vec<InRecord>, encoding: &RawEncoder, rules: PostingRules) -> Vec<Prepared> {
    batch
        .into_iter()
        .map(|r| prepare_one(r, encoding, rules))
        .collect()
}

impl Prepared {
    /// The fact's raw bytes as sent (`None` for a record bound for the dead-letter topic).
    pub fn raw_fact(&self) -> Option<&[u8]> {
        self.content.as_ref().ok().map(|f| f.raw.as_slice())
    }

    /// Sends the record to the dead-letter topic when its batch is folded again, and says so
    /// in the log (a record found to stop its batch: a bug met, or a value the store refuses).
    pub fn send_to_dead_letters(&mut self, reason: String) {
        tracing::error!(
            topic = self.record.topic,
            partition = self.record.partition,
            offset = self.record.offset,
            reason,
            "this record goes to the dead-letter topic, and its batch is folded again without it"
        );
        self.content = Err(reason);
    }
}

impl Engine {
    /// An empty engine (for an empty database; use [`Engine::catch_up`] otherwise).
    pub fn new() -> Self {
        Self {
            ledger: Ledger::lean(),
            fact_digests: DigestSet::default(),
            last_fact_seq: 0,
            last_recorded_seq: 0,
            dirty: false,
            before_batch: BeforeBatch::default(),
            taken_back: 0,
            catch_up_page: CATCH_UP_PAGE,
            rules: PostingRules::default(),
        }
    }

    /// An empty engine that folds with `rules` instead of the core's (tests).
    pub fn with_rules(rules: PostingRules) -> Self {
        Self {
            rules,
            ..Self::new()
        }
    }

    /// An empty engine like this one (its rules and catch-up page): what replaces an engine
    /// whose journal was lost.
    pub fn fresh(&self) -> Self {
        Self {
            rules: self.rules,
            catch_up_page: self.catch_up_page,
            ..Self::new()
        }
    }

    /// The rules this engine posts and folds facts with.
    pub fn rules(&self) -> PostingRules {
        self.rules
    }

    /// An empty engine that catches up `page` stored facts per query (tests use small pages).
    pub fn with_catch_up_page(page: i64) -> Self {
        Self {
            catch_up_page: page.max(1),
            ..Self::new()
        }
    }

    /// The core journal this engine folds into: a [`Ledger::lean`] one, whose join state and
    /// current balances equal the database's after a commit (the entries themselves are in
    /// the database; it keeps whole only those a later fact may reverse).
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The last `recorded_seq` this engine knows the store holds: the chain position its next
    /// entries follow.
    pub fn last_recorded_seq(&self) -> i64 {
        self.last_recorded_seq
    }

    /// Distinct facts this engine knows (by digest), and the room its digest set has for them
    /// before it grows: the restart example's memory breakdown.
    pub fn facts_known(&self) -> usize {
        self.fact_digests.len()
    }

    /// See [`Engine::facts_known`].
    pub fn facts_known_capacity(&self) -> usize {
        self.fact_digests.capacity()
    }

    /// Brings the in-memory state back to what it was before the batch that did not commit,
    /// so the next attempt's catch-up reads whatever the database did commit (a `COMMIT` whose
    /// answer was lost may have landed): the cost of a failed batch is the batch, not the
    /// history. True when the state is consistent again (or was); false when the journal
    /// was lost with its thread (a panic): then build a new engine.
    pub fn roll_back(&mut self) -> bool {
        if !self.dirty {
            return true;
        }
        if !self.ledger.rollback_batch() {
            return false;
        }
        let before = std::mem::take(&mut self.before_batch);
        for digest in &before.new_digests {
            self.fact_digests.remove(&Digest128::prefix_of(digest));
        }
        self.last_fact_seq = before.last_fact_seq;
        self.last_recorded_seq = before.last_recorded_seq;
        self.dirty = false;
        self.taken_back += 1;
        true
    }

    /// How many failed batches [`Engine::roll_back`] took back (for logs and tests).
    pub fn batches_taken_back(&self) -> u64 {
        self.taken_back
    }

    /// Replays the facts recorded since this engine last looked, a page at a time (memory is
    /// bounded by three pages, not by the books), in a pipeline: while page N is parsed (in
    /// halves, on two blocking threads: decoding and posting are most of a restart's CPU),
    /// page N−1 is applied to the journal and page N+1 is read. Pages are applied in order, so
    /// on an error the state holds a prefix of the facts.
    pub async fn catch_up<T: ReadFacts>(&mut self, tx: &mut T) -> Result<usize, Error> {
        let mut replayed = 0;
        let mut next = tx
            .facts_since(self.last_fact_seq, self.catch_up_page)
            .await?;
        if !next.is_empty() {
            // Read before any fact is applied, from the same view (under the writer lock, or in
            // the snapshot): a catch-up cut short by an error then never leaves the state with
            // the facts but an older last recording, which the next catch-up, finding nothing
            // new, would keep.
            self.last_recorded_seq = tx.max_recorded_seq().await?;
        }
        let mut parsing: Option<ParsingPage> = None;
        loop {
            let page = std::mem::take(&mut next);
            let full = i64::try_from(page.len()).unwrap_or(i64::MAX) >= self.catch_up_page;
            let last_seq = page.last().map(|f| f.seq);
            let this = (!page.is_empty()).then(|| ParsingPage::start(page, self.rules));
            if let Some(previous) = std::mem::replace(&mut parsing, this) {
                replayed += self.apply_stored(previous.finish().await?)?;
            }
            match last_seq {
                Some(last_seq) if full => {
                    next = tx.facts_since(last_seq, self.catch_up_page).await?;
                }
                _ => break,
            }
        }
        if let Some(last) = parsing {
            replayed += self.apply_stored(last.finish().await?)?;
        }
        Ok(replayed)
    }

    /// Folds parsed stored facts into the journal, in order; returns how many. A panic in the
    /// rules empties the engine (its journal may be half changed) and names the fact.
    fn apply_stored(&mut self, parsed: Vec<ParsedFact>) -> Result<usize, Error> {
        let n = parsed.len();
        for (seq, digest, posting) in parsed {
            // A stored fact posted once: it posts again (the rules are pure).
            let panicked = match posting {
                Ok(p) => self.rules.try_apply(&mut self.ledger, p).err(),
                Err(Unpostable::Panicked(message)) => Some(message),
                Err(e @ Unpostable::Rejected(_)) => {
                    tracing::warn!(fact_seq = seq, error = %e, "stored fact no longer posts");
                    None
                }
            };
            if let Some(message) = panicked {
                *self = self.fresh();
                return Err(Error::StoredFactPanicked {
                    fact_seq: seq,
                    message,
                });
            }
            if let Ok(d) = <[u8; 32]>::try_from(digest.as_slice()) {
                self.fact_digests.insert(Digest128::prefix_of(&d));
            }
            self.last_fact_seq = seq;
        }
        Ok(n)
    }

    /// Rebuilds the core state from the facts stored so far, read from a snapshot without the
    /// writer lock ([`Store::begin_snapshot`]): what a ledger does at start, so that its first
    /// batch finds the state built instead of paying for the whole history, and the other
    /// instances' writers are not held up meanwhile. The first write's [`Engine::catch_up`]
    /// adds what was committed since. Returns the facts replayed; on an error the engine may
    /// hold part of the history (build a new one).
    pub async fn warm_up<S: Store>(&mut self, store: &S) -> Result<usize, Error> {
        let mut snapshot = store.begin_snapshot().await?;
        self.catch_up(&mut snapshot).await
    }

    /// Folds one prepared batch and writes it in the open write transaction `tx`, on which
    /// [`Engine::catch_up`] has run. Returns the dead letters, which the caller must have
    /// acknowledged by the broker before committing. A retry may pass the same batch again:
    /// what an earlier attempt took from it is derived anew.
    ///
    /// In two steps, so the fold's CPU work overlaps the facts' write: first what each record
    /// is (below the stored offsets, a dead letter, a duplicate, or a new fact with its
    /// `fact_seq`) and the new facts' rows; then, on a blocking thread while those rows are
    /// written, the postings applied to the core journal in order, which gives the entry rows.
    pub async fn fold_batch<T: WriteTx>(
        &mut self,
        tx: &mut T,
        group: &str,
        batch: &mut [Prepared],
    ) -> Result<(BatchReport, Vec<DeadLetter>), Error> {
        let recorded_at = tx.now().await?;
        // Offsets already folded, under the lock: the authority.
        let stored = tx.offsets(group).await?;
        let heads: HashMap<String, Head> = tx.heads().await?;

        let mut next_offsets: Offsets = HashMap::new();
        let mut behind: HashSet<(String, i32)> = HashSet::new();
        let mut facts = Rows::default();
        let mut new_facts = Vec::new();
        let mut report = BatchReport::default();
        let mut dead = Vec::new();
        self.dirty = true;
        self.ledger.begin_batch();
        self.before_batch = BeforeBatch {
            last_fact_seq: self.last_fact_seq,
            last_recorded_seq: self.last_recorded_seq,
            new_digests: Vec::new(),
        };
        let started = std::time::Instant::now();
        for (batch_index, prepared) in batch.iter_mut().enumerate() {
            let rec = &prepared.record;
            let tp = (rec.topic.clone(), rec.partition);
            let floor = stored.get(&tp).copied().unwrap_or(0);
            if rec.offset < floor {
                if behind.insert(tp) {
                    report.gaps.push(OffsetGap {
                        topic: rec.topic.clone(),
                        partition: rec.partition,
                        expected: floor,
                        found: rec.offset,
                    });
                }
                continue;
            }
            let next = next_offsets.entry(tp).or_insert(floor);
            if rec.offset > *next {
                report.gaps.push(OffsetGap {
                    topic: rec.topic.clone(),
                    partition: rec.partition,
                    expected: *next,
                    found: rec.offset,
                });
            }
            *next = (*next).max(rec.offset + 1);
            report.records += 1;
            let fact = match &mut prepared.content {
                Ok(fact) => fact,
                Err(reason) => {
                    dead.push(DeadLetter {
                        record: rec.clone(),
                        reason: reason.clone(),
                    });
                    continue;
                }
            };
            if self
                .fact_digests
                .contains(&Digest128::prefix_of(&fact.digest))
            {
                continue; // the same bytes again: a no-op by construction
            }
            let posting = match fact
                .posting
                .take()
                .unwrap_or_else(|| self.rules.try_post(&fact.account, &fact.raw))
            {
                Ok(p) => p,
                Err(e) => {
                    dead.push(DeadLetter {
                        record: rec.clone(),
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            let fact_id = posting.fact_id.to_string();
            self.last_fact_seq += 1;
            let fact_seq = self.last_fact_seq;
            self.fact_digests.insert(Digest128::prefix_of(&fact.digest));
            self.before_batch.new_digests.push(fact.digest);
            facts.f_seq.push(fact_seq);
            facts.f_topic.push(rec.topic.clone());
            facts.f_partition.push(rec.partition);
            facts.f_offset.push(rec.offset);
            facts.f_ledger.push(fact.account.clone());
            facts.f_fact_id.push(fact_id.clone());
            facts.f_digest.push(fact.digest.to_vec());
            // A retry: an earlier attempt moved the encoded bytes into its rows.
            let (encoding, stored) = fact
                .stored
                .take()
                .unwrap_or_else(|| fact.wanted.encode(&fact.raw));
            facts.f_raw.push(stored);
            facts.f_encoding.push(encoding);
            report.facts += 1;
            new_facts.push(NewFact {
                batch_index,
                chain: format!("{}/{}", rec.topic, rec.partition),
                fact_seq,
                fact_id,
                posting,
            });
        }
        report.dead_letters = dead.len();
        tracing::debug!(fold_ms = started.elapsed().as_millis(), "batch folded");
        let folded = std::time::Instant::now();

        // The core journal moves to the blocking thread and back; if anything fails meanwhile
        // the engine is dirty: the batch is taken back (or, the journal lost with a panicked
        // thread, the engine rebuilt), never used half-folded.
        let mut applying = Applying {
            ledger: std::mem::replace(&mut self.ledger, Ledger::lean()),
            rules: self.rules,
            heads,
            last_recorded_seq: self.last_recorded_seq,
            recorded_at,
        };
        let posting = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let applied = applying.apply(new_facts);
            (applying, applied, started.elapsed())
        });
        let written = tx.write_facts(&facts, recorded_at).await;
        let facts_done = std::time::Instant::now();
        let (applying, applied, apply_took) = posting.await?;
        tracing::debug!(
            wait_ms = facts_done.elapsed().as_millis(),
            apply_us = apply_took.as_micros(),
            "postings applied"
        );
        let (rows, entries, conflicts) = match applied {
            Ok(applied) => applied,
            // The journal may be half changed: it is dropped (the engine keeps an empty one,
            // which cannot take the batch back, so it is rebuilt from the stored facts).
            Err(Panicked {
                batch_index,
                message,
            }) => {
                return Err(Error::PostingPanicked {
                    batch_index,
                    message,
                });
            }
        };
        // The journal comes back before any error returns, so a failed batch can be taken back.
        self.ledger = applying.ledger;
        self.last_recorded_seq = applying.last_recorded_seq;
        written?;
        let mut heads = applying.heads;
        report.entries = entries;
        report.conflicts = conflicts;
        tx.write(&rows, &heads, group, &next_offsets, recorded_at)
            .await?;
        heads.clear();
        tracing::debug!(
            records = report.records,
            entries = report.entries,
            write_ms = folded.elapsed().as_millis(),
            "batch written"
        );
        Ok((report, dead))
    }

    /// Marks the last batch committed.
    pub fn committed(&mut self) {
        self.ledger.commit_batch();
        self.before_batch = BeforeBatch::default();
        self.dirty = false;
    }
}

/// A stored fact parsed again: its `fact_seq`, digest and posting.
type ParsedFact = (i64, Vec<u8>, Result<Posting, Unpostable>);

/// A catch-up page being parsed, in two halves on two blocking threads.
struct ParsingPage([tokio::task::JoinHandle<Result<Vec<ParsedFact>, Error>>; 2]);

impl ParsingPage {
    fn start(mut page: Vec<StoredFact>, rules: PostingRules) -> Self {
        let second = page.split_off(page.len() / 2);
        Self([page, second].map(|half| {
            tokio::task::spawn_blocking(move || {
                half.into_iter()
                    .map(|mut f| {
                        // A fact that cannot be decoded stops the catch-up: the join state
                        // would silently miss it.
                        let raw = f.take_raw()?;
                        Ok((f.seq, f.digest, rules.try_post(&f.ledger, &raw)))
                    })
                    .collect()
            })
        }))
    }

    /// The page's facts, in order.
    async fn finish(self) -> Result<Vec<ParsedFact>, Error> {
        let [first, second] = self.0;
        let mut parsed = first.await??;
        parsed.extend(second.await??);
        Ok(parsed)
    }
}

/// What a batch's fold changes outside the core journal, as it was before the batch.
#[derive(Debug, Default)]
struct BeforeBatch {
    last_fact_seq: i64,
    last_recorded_seq: i64,
    new_digests: Vec<[u8; 32]>,
}

/// A new fact of a batch, its row written, its posting still to apply.
struct NewFact {
    /// Where its record is in the batch.
    batch_index: usize,
    /// The chain of the entries it posts directly: its topic and partition.
    chain: String,
    fact_seq: i64,
    fact_id: String,
    posting: Posting,
}

/// The second step of [`Engine::fold_batch`]: what applying postings reads and changes,
/// moved to a blocking thread and back.
struct Applying {
    ledger: Ledger,
    rules: PostingRules,
    heads: HashMap<String, Head>,
    last_recorded_seq: i64,
    recorded_at: DateTime<Utc>,
}

impl Applying {
    /// Applies `facts`' postings in recording order: the entries' and conflicts' rows, and
    /// how many of each; or the first fact whose posting panicked the rules.
    fn apply(&mut self, facts: Vec<NewFact>) -> Result<(Rows, usize, usize), Panicked> {
        let mut rows = Rows::default();
        let (mut entries, mut conflicts) = (0, 0);
        for fact in facts {
            let direct: HashSet<EntryId> = fact.posting.entries.iter().map(|e| e.id()).collect();
            let outcome = self
                .rules
                .try_apply(&mut self.ledger, fact.posting)
                .map_err(|message| Panicked {
                    batch_index: fact.batch_index,
                    message,
                })?;
            for entry in self.ledger.take_posted() {
                let chain_name = if direct.contains(&entry.id()) {
                    fact.chain.as_str()
                } else {
                    DERIVED_CHAIN
                };
                self.last_recorded_seq += 1;
                push_entry(
                    &mut rows,
                    &entry,
                    chain_name,
                    self.heads.entry(chain_name.to_owned()).or_default(),
                    self.last_recorded_seq,
                    fact.fact_seq,
                    &fact.fact_id,
                    self.recorded_at,
                );
                entries += 1;
            }
            for c in &outcome.conflicts {
                let canon = chain::Canonical::from_entry(&c.incoming);
                rows.c_entry.push(c.id.as_uuid());
                rows.c_fact.push(fact.fact_seq);
                rows.c_fact_id.push(c.fact_id.to_string());
                rows.c_digest.push(canon.digest().to_vec());
                rows.c_incoming
                    .push(serde_json::to_value(&*c.incoming).unwrap_or_default());
                conflicts += 1;
            }
        }
        Ok((rows, entries, conflicts))
    }
}

/// A fact whose posting panicked the rules while its batch was applied.
struct Panicked {
    batch_index: usize,
    message: String,
}

#[allow(clippy::too_many_arguments)]
fn push_entry(
    rows: &mut Rows,
    entry: &JournalEntry,
    chain_name: &str,
    head: &mut Head,
    recorded_seq: i64,
    fact_seq: i64,
    fact_id: &str,
    recorded_at: DateTime<Utc>,
) {
    let canon = chain::Canonical::from_entry(entry);
    let digest = canon.digest();
    let link = head.append(chain_name, &canon.entry_id, &digest);
    let id = entry.id().as_uuid();
    rows.e_id.push(id);
    rows.e_ledger.push(canon.ledger.clone());
    rows.e_rule.push(canon.rule.clone());
    rows.e_kind.push(canon.source_kind.clone());
    rows.e_source.push(canon.source_id.clone());
    rows.e_effective.push(timestamp(canon.effective_at));
    rows.e_description.push(canon.description.clone());
    rows.e_reverses.push(canon.reverses);
    for (i, l) in canon.lines.iter().enumerate() {
        rows.l_entry.push(id);
        rows.l_no.push(i32::try_from(i).unwrap_or(i32::MAX));
        rows.l_account.push(l.account.clone());
        rows.l_currency.push(l.currency.clone());
        rows.l_amount.push(l.amount);
    }
    rows.m_recorded.push(recorded_seq);
    rows.m_fact.push(fact_seq);
    rows.m_chain.push(chain_name.to_owned());
    rows.m_chain_seq.push(head.length);
    rows.m_digest.push(digest.to_vec());
    rows.m_hash.push(link.map(|h| h.to_vec()));
    let wire = crate::wire::entry_to_proto(
        &canon,
        Some(recorded_at),
        chain_name,
        head.length,
        link.map(|h| h.to_vec()).unwrap_or_default(),
        fact_id,
    );
    rows.o_key
        .push(format!("{}/{}", canon.ledger, canon.entry_id.hyphenated()));
    rows.o_payload.push(wire.encode_to_vec());
}
