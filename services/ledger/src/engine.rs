//! The fold of facts into PostgreSQL, exactly once.
//!
//! The join state (an invoice's customer, a charge's cash, claims waiting for it, payout and
//! availability observations) is the in-memory [`ledgerline_core::Ledger`] itself: the
//! PostgreSQL ledger produces exactly the entries of the core fold because it *is* the core
//! fold. That state is a cache of `ledger_facts`, the distinct facts in recording order:
//!
//! - every batch runs in one transaction that first takes a global advisory lock, so writers
//!   (several instances of one consumer group) are serialised and `fact_seq` is gap-free in
//!   commit order;
//! - under the lock, the engine replays the facts other instances recorded since it last
//!   looked (`fact_seq > last`), so its join state equals the database's;
//! - under the lock, records below the stored `consumer_offsets` are dropped (a partition
//!   that moved between instances is never folded twice); then the batch is folded, and its
//!   facts, entries, lines, chain links, conflicts, outbox rows and the new offsets are
//!   written by bulk `UNNEST` statements and committed together.
//!
//! If anything fails between folding and commit, the in-memory state is ahead of the
//! database: the engine is rebuilt from `ledger_facts` before the next attempt.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use ledgerline_core::rules::post_raw;
use ledgerline_core::{EntryId, JournalEntry, Ledger};
use prost::Message as _;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::Error;
use crate::chain::{self, DERIVED_CHAIN, Head};

/// Advisory lock key of the single-writer section (`ledgerline` in ASCII).
pub const WRITER_LOCK: i64 = 0x6c65_6467_6572_6c6e;

/// What a record carries, once its envelope is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKind {
    /// `stripe.events.v1`: `StripeEventRecord`.
    Events,
    /// `stripe.balance_transactions.v1`: `BalanceTransactionRecord`.
    BalanceTransactions,
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
}

/// The ledger's fold state: the core journal plus what it mirrors of the database.
pub struct Engine {
    ledger: Ledger,
    fact_digests: HashSet<[u8; 32]>,
    last_fact_seq: i64,
    last_recorded_seq: i64,
    /// Set while the in-memory state may be ahead of the database.
    dirty: bool,
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

/// The envelope's account and raw JSON, or why it cannot be read.
pub fn decode(kind: TopicKind, payload: Option<&[u8]>) -> Result<(String, Vec<u8>), String> {
    let payload = payload.ok_or_else(|| "record has no value".to_owned())?;
    let (account, raw) = match kind {
        TopicKind::Events => {
            let r = ledgerline_proto::stripe::v1::StripeEventRecord::decode(payload)
                .map_err(|e| format!("not a StripeEventRecord: {e}"))?;
            (r.account, r.raw_json)
        }
        TopicKind::BalanceTransactions => {
            let r = ledgerline_proto::stripe::v1::BalanceTransactionRecord::decode(payload)
                .map_err(|e| format!("not a BalanceTransactionRecord: {e}"))?;
            (r.account, r.raw_json)
        }
    };
    if account.is_empty() {
        return Err("envelope has no account".into());
    }
    if raw.is_empty() {
        return Err("envelope has no raw_json".into());
    }
    Ok((account, raw))
}

/// A Stripe unix time as the database's `timestamptz`.
pub fn timestamp_of(unix: i64) -> DateTime<Utc> {
    timestamp(unix)
}

pub(crate) fn timestamp(unix: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(unix, 0).unwrap_or(DateTime::UNIX_EPOCH)
}

#[derive(Default)]
struct Rows {
    // facts
    f_seq: Vec<i64>,
    f_topic: Vec<String>,
    f_partition: Vec<i32>,
    f_offset: Vec<i64>,
    f_ledger: Vec<String>,
    f_fact_id: Vec<String>,
    f_digest: Vec<Vec<u8>>,
    f_raw: Vec<Vec<u8>>,
    // entries
    e_id: Vec<Uuid>,
    e_ledger: Vec<String>,
    e_rule: Vec<String>,
    e_kind: Vec<String>,
    e_source: Vec<String>,
    e_effective: Vec<DateTime<Utc>>,
    e_description: Vec<String>,
    e_reverses: Vec<Option<Uuid>>,
    // lines
    l_entry: Vec<Uuid>,
    l_no: Vec<i32>,
    l_account: Vec<String>,
    l_currency: Vec<String>,
    l_amount: Vec<Decimal>,
    // meta
    m_recorded: Vec<i64>,
    m_fact: Vec<i64>,
    m_chain: Vec<String>,
    m_chain_seq: Vec<i64>,
    m_digest: Vec<Vec<u8>>,
    m_hash: Vec<Option<Vec<u8>>>,
    // conflicts
    c_entry: Vec<Uuid>,
    c_fact: Vec<i64>,
    c_fact_id: Vec<String>,
    c_digest: Vec<Vec<u8>>,
    c_incoming: Vec<serde_json::Value>,
    // outbox
    o_key: Vec<String>,
    o_payload: Vec<Vec<u8>>,
}

impl Engine {
    /// An empty engine (for an empty database; use [`Engine::catch_up`] otherwise).
    pub fn new() -> Self {
        Self {
            ledger: Ledger::new(),
            fact_digests: HashSet::new(),
            last_fact_seq: 0,
            last_recorded_seq: 0,
            dirty: false,
        }
    }

    /// The core journal this engine folds into (equal to the database's journal after a
    /// commit).
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// True if the in-memory state may be ahead of the database (a batch failed midway):
    /// throw the engine away and build a new one.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Replays the facts recorded since this engine last looked.
    pub async fn catch_up(&mut self, conn: &mut PgConnection) -> Result<usize, Error> {
        let rows = sqlx::query(
            "SELECT fact_seq, ledger, digest, raw FROM ledger_facts \
             WHERE fact_seq > $1 ORDER BY fact_seq",
        )
        .bind(self.last_fact_seq)
        .fetch_all(&mut *conn)
        .await?;
        let n = rows.len();
        for row in rows {
            let seq: i64 = row.try_get(0)?;
            let ledger: String = row.try_get(1)?;
            let digest: Vec<u8> = row.try_get(2)?;
            let raw: Vec<u8> = row.try_get(3)?;
            // A stored fact posted once: it posts again (the rules are pure).
            if let Err(e) = self.ledger.apply(&ledger, &raw) {
                tracing::warn!(fact_seq = seq, error = %e, "stored fact no longer posts");
            }
            if let Ok(d) = <[u8; 32]>::try_from(digest.as_slice()) {
                self.fact_digests.insert(d);
            }
            self.last_fact_seq = seq;
        }
        if n > 0 {
            let max: Option<i64> =
                sqlx::query_scalar("SELECT max(recorded_seq) FROM ledger_entry_meta")
                    .fetch_one(&mut *conn)
                    .await?;
            self.last_recorded_seq = max.unwrap_or(0);
        }
        Ok(n)
    }

    /// Folds one batch and writes it in `conn`'s open transaction, which must hold
    /// [`WRITER_LOCK`] and have run [`Engine::catch_up`]. Returns the dead letters, which the
    /// caller must have acknowledged by the broker before committing.
    pub async fn fold_batch(
        &mut self,
        conn: &mut PgConnection,
        group: &str,
        batch: &[InRecord],
    ) -> Result<(BatchReport, Vec<DeadLetter>), Error> {
        let recorded_at: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
            .fetch_one(&mut *conn)
            .await?;
        // Offsets already folded, under the lock: the authority.
        let stored: HashMap<(String, i32), i64> = sqlx::query(
            "SELECT topic, partition, next_offset FROM consumer_offsets WHERE consumer_group = $1",
        )
        .bind(group)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|r| -> Result<_, sqlx::Error> { Ok(((r.try_get(0)?, r.try_get(1)?), r.try_get(2)?)) })
        .collect::<Result<_, _>>()?;
        let mut heads: HashMap<String, Head> = chain::load_heads(conn).await?;

        let mut next_offsets: HashMap<(String, i32), i64> = HashMap::new();
        let mut rows = Rows::default();
        let mut report = BatchReport::default();
        let mut dead = Vec::new();
        self.dirty = true;
        let started = std::time::Instant::now();
        for rec in batch {
            let tp = (rec.topic.clone(), rec.partition);
            let floor = stored.get(&tp).copied().unwrap_or(0);
            if rec.offset < floor {
                continue;
            }
            let next = next_offsets.entry(tp).or_insert(rec.offset + 1);
            *next = (*next).max(rec.offset + 1);
            report.records += 1;
            let (account, raw) = match decode(rec.kind, rec.payload.as_deref()) {
                Ok(v) => v,
                Err(reason) => {
                    dead.push(DeadLetter {
                        record: rec.clone(),
                        reason,
                    });
                    continue;
                }
            };
            let digest = fact_digest(&account, &raw);
            if self.fact_digests.contains(&digest) {
                continue; // the same bytes again: a no-op by construction
            }
            let posting = match post_raw(&account, &raw) {
                Ok(p) => p,
                Err(e) => {
                    dead.push(DeadLetter {
                        record: rec.clone(),
                        reason: format!("the core cannot post this fact: {e}"),
                    });
                    continue;
                }
            };
            let direct: HashSet<EntryId> = posting.entries.iter().map(|e| e.id()).collect();
            let fact_id = posting.fact_id.to_string();
            self.last_fact_seq += 1;
            let fact_seq = self.last_fact_seq;
            self.fact_digests.insert(digest);
            rows.f_seq.push(fact_seq);
            rows.f_topic.push(rec.topic.clone());
            rows.f_partition.push(rec.partition);
            rows.f_offset.push(rec.offset);
            rows.f_ledger.push(account.clone());
            rows.f_fact_id.push(fact_id.clone());
            rows.f_digest.push(digest.to_vec());
            rows.f_raw.push(raw);
            report.facts += 1;

            let outcome = self.ledger.apply_posting(posting);
            for id in &outcome.posted {
                let Some(entry) = self.ledger.entry(*id) else {
                    continue;
                };
                let chain_name = if direct.contains(id) {
                    format!("{}/{}", rec.topic, rec.partition)
                } else {
                    DERIVED_CHAIN.to_owned()
                };
                self.last_recorded_seq += 1;
                push_entry(
                    &mut rows,
                    entry,
                    &chain_name,
                    heads.entry(chain_name.clone()).or_default(),
                    self.last_recorded_seq,
                    fact_seq,
                    &fact_id,
                    recorded_at,
                );
                report.entries += 1;
            }
            for c in &outcome.conflicts {
                let canon = chain::Canonical::from_entry(&c.incoming);
                rows.c_entry.push(c.id.as_uuid());
                rows.c_fact.push(fact_seq);
                rows.c_fact_id.push(c.fact_id.to_string());
                rows.c_digest.push(canon.digest().to_vec());
                rows.c_incoming
                    .push(serde_json::to_value(&*c.incoming).unwrap_or_default());
                report.conflicts += 1;
            }
        }
        report.dead_letters = dead.len();
        tracing::debug!(fold_ms = started.elapsed().as_millis(), "batch folded");
        let folded = std::time::Instant::now();
        write_rows(conn, &rows, recorded_at).await?;
        write_heads(conn, &heads).await?;
        write_offsets(conn, group, &next_offsets).await?;
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
        self.dirty = false;
    }
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

async fn write_rows(
    conn: &mut PgConnection,
    r: &Rows,
    recorded_at: DateTime<Utc>,
) -> Result<(), Error> {
    let t = std::time::Instant::now();
    if !r.f_seq.is_empty() {
        copy_facts(conn, r, recorded_at).await?;
        tracing::debug!(ms = t.elapsed().as_millis(), "facts inserted");
    }
    if !r.e_id.is_empty() {
        sqlx::query(
            "INSERT INTO journal_entries \
               (entry_id, ledger, rule, source_kind, source_id, effective_at, recorded_at, description, reverses) \
             SELECT i, l, r, k, s, e, $9, d, v FROM UNNEST($1::uuid[], $2::text[], $3::text[], \
               $4::text[], $5::text[], $6::timestamptz[], $7::text[], $8::uuid[]) AS x(i, l, r, k, s, e, d, v)",
        )
        .bind(&r.e_id)
        .bind(&r.e_ledger)
        .bind(&r.e_rule)
        .bind(&r.e_kind)
        .bind(&r.e_source)
        .bind(&r.e_effective)
        .bind(&r.e_description)
        .bind(&r.e_reverses)
        .bind(recorded_at)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "INSERT INTO journal_lines (entry_id, line_no, account, currency, amount) \
             SELECT * FROM UNNEST($1::uuid[], $2::int[], $3::text[], $4::text[], $5::numeric[])",
        )
        .bind(&r.l_entry)
        .bind(&r.l_no)
        .bind(&r.l_account)
        .bind(&r.l_currency)
        .bind(&r.l_amount)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "INSERT INTO ledger_entry_meta \
               (entry_id, recorded_seq, fact_seq, chain, chain_seq, digest, chain_hash) \
             SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::bigint[], $4::text[], \
               $5::bigint[], $6::bytea[], $7::bytea[])",
        )
        .bind(&r.e_id)
        .bind(&r.m_recorded)
        .bind(&r.m_fact)
        .bind(&r.m_chain)
        .bind(&r.m_chain_seq)
        .bind(&r.m_digest)
        .bind(&r.m_hash)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "INSERT INTO ledger_outbox (record_key, payload) \
             SELECT * FROM UNNEST($1::text[], $2::bytea[])",
        )
        .bind(&r.o_key)
        .bind(&r.o_payload)
        .execute(&mut *conn)
        .await?;
    }
    tracing::debug!(ms = t.elapsed().as_millis(), "entries inserted");
    if !r.c_entry.is_empty() {
        sqlx::query(
            "INSERT INTO ledger_conflicts \
               (entry_id, fact_seq, fact_id, incoming_digest, incoming, recorded_at) \
             SELECT i, f, fi, d, j, $6 FROM UNNEST($1::uuid[], $2::bigint[], $3::text[], \
               $4::bytea[], $5::jsonb[]) AS x(i, f, fi, d, j) \
             ON CONFLICT (entry_id, incoming_digest) DO NOTHING",
        )
        .bind(&r.c_entry)
        .bind(&r.c_fact)
        .bind(&r.c_fact_id)
        .bind(&r.c_digest)
        .bind(&r.c_incoming)
        .bind(recorded_at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Binary `COPY` of the facts: their raw JSON is most of the bytes a batch writes, and COPY
/// carries it without the array encoding of an `UNNEST` parameter.
async fn copy_facts(
    conn: &mut PgConnection,
    r: &Rows,
    recorded_at: DateTime<Utc>,
) -> Result<(), Error> {
    // Microseconds since 2000-01-01, PostgreSQL's binary timestamptz.
    const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
    let at = recorded_at.timestamp_micros() - PG_EPOCH_MICROS;
    let size: usize = r.f_raw.iter().map(|x| x.len() + 160).sum();
    let mut buf = Vec::with_capacity(size + 32);
    buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buf.extend_from_slice(&0i32.to_be_bytes());
    buf.extend_from_slice(&0i32.to_be_bytes());
    fn field(buf: &mut Vec<u8>, bytes: &[u8]) {
        buf.extend_from_slice(&i32::try_from(bytes.len()).unwrap_or(i32::MAX).to_be_bytes());
        buf.extend_from_slice(bytes);
    }
    for i in 0..r.f_seq.len() {
        buf.extend_from_slice(&9i16.to_be_bytes());
        field(&mut buf, &r.f_seq[i].to_be_bytes());
        field(&mut buf, r.f_topic[i].as_bytes());
        field(&mut buf, &r.f_partition[i].to_be_bytes());
        field(&mut buf, &r.f_offset[i].to_be_bytes());
        field(&mut buf, r.f_ledger[i].as_bytes());
        field(&mut buf, r.f_fact_id[i].as_bytes());
        field(&mut buf, &r.f_digest[i]);
        field(&mut buf, &r.f_raw[i]);
        field(&mut buf, &at.to_be_bytes());
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    let mut copy = conn
        .copy_in_raw(
            "COPY ledger_facts (fact_seq, topic, kafka_partition, kafka_offset, ledger, fact_id, \
             digest, raw, recorded_at) FROM STDIN (FORMAT binary)",
        )
        .await?;
    copy.send(buf).await?;
    copy.finish().await?;
    Ok(())
}

async fn write_heads(conn: &mut PgConnection, heads: &HashMap<String, Head>) -> Result<(), Error> {
    let mut names = Vec::new();
    let mut lengths = Vec::new();
    let mut values = Vec::new();
    for (name, h) in heads.iter().filter(|(_, h)| h.changed) {
        names.push(name.clone());
        lengths.push(h.length);
        values.push(h.head.to_vec());
    }
    if names.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO ledger_chain_heads (chain, length, head) \
         SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bytea[]) \
         ON CONFLICT (chain) DO UPDATE SET length = EXCLUDED.length, head = EXCLUDED.head",
    )
    .bind(&names)
    .bind(&lengths)
    .bind(&values)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn write_offsets(
    conn: &mut PgConnection,
    group: &str,
    offsets: &HashMap<(String, i32), i64>,
) -> Result<(), Error> {
    if offsets.is_empty() {
        return Ok(());
    }
    let (topics, parts, next): (Vec<String>, Vec<i32>, Vec<i64>) = offsets.iter().fold(
        (Vec::new(), Vec::new(), Vec::new()),
        |(mut t, mut p, mut n), ((topic, part), off)| {
            t.push(topic.clone());
            p.push(*part);
            n.push(*off);
            (t, p, n)
        },
    );
    sqlx::query(
        "INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset, updated_at) \
         SELECT $1, t, p, n, now() FROM UNNEST($2::text[], $3::int[], $4::bigint[]) AS x(t, p, n) \
         ON CONFLICT (consumer_group, topic, partition) \
         DO UPDATE SET next_offset = GREATEST(consumer_offsets.next_offset, EXCLUDED.next_offset), \
                       updated_at = now()",
    )
    .bind(group)
    .bind(&topics)
    .bind(&parts)
    .bind(&next)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
