//! The PostgreSQL store (`migrations/`): the advisory writer lock, the queries of the
//! gRPC API, and (`postgres/write.rs`) the batch write: bulk `UNNEST` inserts and a binary
//! `COPY` of the raw facts.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::TryStreamExt as _;
use rust_decimal::Decimal;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{PgConnection, Postgres, Row, Transaction};
use uuid::Uuid;

use super::{
    BalanceQuery, BalanceRow, EntryQuery, Offsets, ReadFacts, Rows, StatementQuery, StatementRow,
    Store, StoredEntry, StoredFact, WriteTx,
};
use crate::Error;
use crate::chain::{Canonical, CanonicalLine, Head, Verification, Verifier};
use crate::raw::{Dictionaries, Dictionary, RawEncoder, RawEncoding};
use crate::rules::StripeMode;

mod write;
use write::{write_entries, write_facts, write_heads, write_offsets};

/// Advisory lock key of the single-writer section (`ledgerline` in ASCII).
pub const WRITER_LOCK: i64 = 0x6c65_6467_6572_6c6e;

/// The advisory locks a ledger's writers and its balance-cells builders take turns on.
/// PostgreSQL's advisory locks are database-wide, not per schema: a second ledger in another
/// schema of the same database (a rebuild's target) takes its own, so that it neither waits
/// for the live ledger's writer nor holds it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdvisoryLocks {
    /// Held by a write transaction for its whole length.
    pub writer: i64,
    /// Tried by a cells build; a builder that does not get it builds nothing that round.
    pub builder: i64,
}

impl AdvisoryLocks {
    /// The locks of a ledger and of the migrations (which take [`WRITER_LOCK`] themselves):
    /// every ledger instance of a database takes these unless told otherwise.
    pub const LEDGER: Self = Self {
        writer: WRITER_LOCK,
        // `ledgercb` in ASCII: the one the SQL function `ledger_cells_build` takes.
        builder: 7_810_759_523_990_397_794,
    };

    /// Locks of their own for a rebuild into schema `schema`, derived from its name: never
    /// [`AdvisoryLocks::LEDGER`], the same for every run into that schema (a `--continue`
    /// takes turns with an earlier run still writing there).
    pub fn for_rebuild_schema(schema: &str) -> Self {
        use sha2::Digest as _;
        let key = |what: &str| {
            let digest = sha2::Sha256::new()
                .chain_update(b"ledgerline rebuild lock\0")
                .chain_update(what.as_bytes())
                .chain_update(b"\0")
                .chain_update(schema.as_bytes())
                .finalize();
            let mut first = [0; 8];
            first.copy_from_slice(&digest[..8]);
            i64::from_be_bytes(first)
        };
        let (writer, builder) = (key("writer"), key("builder"));
        Self {
            writer: if writer == Self::LEDGER.writer {
                !writer
            } else {
                writer
            },
            builder: if builder == Self::LEDGER.builder {
                !builder
            } else {
                builder
            },
        }
    }
}

/// The migrations of `migrations/`, run at start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// The journal in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    raw_encoding: RawEncoding,
    /// Shared by the clones: the consumer's reader stage trains one, every reader decodes.
    dictionaries: Arc<Dictionaries>,
    /// Facts to train a dictionary on when there is none (0: never train).
    dictionary_samples: usize,
    locks: AdvisoryLocks,
}

impl PgStore {
    /// A store over an existing pool (migrated by the caller).
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            raw_encoding: RawEncoding::Zstd,
            dictionaries: Arc::default(),
            dictionary_samples: crate::raw::DICTIONARY_SAMPLES,
            locks: AdvisoryLocks::LEDGER,
        }
    }

    /// Connects and runs the migrations.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Self::connect_with(url.parse()?).await
    }

    /// [`PgStore::connect`] with options built in code (a schema as `search_path`, say).
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self, Error> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self::new(pool))
    }

    /// This store writing new raw facts in `encoding` (default zstd: compressed rows stay
    /// inline, see [`crate::raw`]); it reads every encoding whatever this says.
    pub fn with_raw_encoding(self, encoding: RawEncoding) -> Self {
        Self {
            raw_encoding: encoding,
            ..self
        }
    }

    /// This store asking for a raw-fact dictionary trained on `samples` facts when it has
    /// none (default [`crate::raw::DICTIONARY_SAMPLES`]; 0: never, though it still uses and
    /// reads stored ones), see [`Store::load_raw_dictionaries`].
    pub fn with_dictionary_samples(self, samples: usize) -> Self {
        Self {
            dictionary_samples: samples,
            ..self
        }
    }

    /// This store's writers taking turns on `locks` instead of [`AdvisoryLocks::LEDGER`].
    pub fn with_locks(self, locks: AdvisoryLocks) -> Self {
        Self { locks, ..self }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The advisory locks its writers and cells builds take.
    pub fn locks(&self) -> AdvisoryLocks {
        self.locks
    }
}

/// A write transaction holding [`WRITER_LOCK`].
#[derive(Debug)]
pub struct PgWrite {
    tx: Transaction<'static, Postgres>,
    dictionaries: Arc<Dictionaries>,
}

/// A read-only `REPEATABLE READ` transaction: one view of the store as committed when it
/// began, without the writer lock ([`Store::begin_snapshot`]).
#[derive(Debug)]
pub struct PgSnapshot {
    tx: Transaction<'static, Postgres>,
    dictionaries: Arc<Dictionaries>,
}

/// Loads into `into` the dictionaries that stored rows (`raw_encoding`, `raw`) name and it
/// lacks (another instance may have trained one since, see [`crate::raw`]); no query when
/// none is missing. One that is not stored stays missing: decoding its facts then fails naming
/// it.
async fn load_missing_dictionaries<'a>(
    conn: impl sqlx::PgExecutor<'_>,
    into: &Dictionaries,
    rows: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<(), Error> {
    let missing = into.missing(rows);
    if missing.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = missing.iter().map(|&id| i64::from(id)).collect();
    let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT dict_id, dictionary FROM ledger_raw_dictionaries WHERE dict_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    add_stored_dictionaries(into, rows, false);
    Ok(())
}

/// Adds `ledger_raw_dictionaries` rows (id, bytes) to `into`, each activated if `activate`
/// (so the last one is the active one); a damaged row is left out, and its facts then fail
/// to decode, naming it.
fn add_stored_dictionaries(into: &Dictionaries, rows: Vec<(i64, Vec<u8>)>, activate: bool) {
    for (id, bytes) in rows {
        match Dictionary::from_bytes(bytes) {
            Some(d) if i64::from(d.id()) == id => into.insert(d, activate),
            _ => tracing::warn!(dict_id = id, "stored raw-fact dictionary is damaged"),
        }
    }
}

impl Store for PgStore {
    type Write = PgWrite;
    type Snapshot = PgSnapshot;

    fn raw_encoder(&self) -> RawEncoder {
        match self.raw_encoding {
            RawEncoding::Zstd => RawEncoder::zstd(self.dictionaries.active()),
            other => RawEncoder::plain(other),
        }
    }

    async fn load_raw_dictionaries(&self) -> Result<Option<usize>, Error> {
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT dict_id, dictionary FROM ledger_raw_dictionaries ORDER BY installed_seq",
        )
        .fetch_all(&self.pool)
        .await?;
        // In installation order: the newest is the one new facts use.
        add_stored_dictionaries(&self.dictionaries, rows, true);
        let wanted = self.raw_encoding == RawEncoding::Zstd
            && self.dictionary_samples > 0
            && self.dictionaries.active().is_none();
        Ok(wanted.then_some(self.dictionary_samples))
    }

    async fn add_raw_dictionary(&self, d: Dictionary) -> Result<(), Error> {
        // Committed before any fact compressed with it: a reader always finds it.
        sqlx::query(
            "INSERT INTO ledger_raw_dictionaries (dict_id, dictionary) VALUES ($1, $2) \
             ON CONFLICT (dict_id) DO NOTHING",
        )
        .bind(i64::from(d.id()))
        .bind(d.bytes())
        .execute(&self.pool)
        .await?;
        let stored: Vec<u8> =
            sqlx::query_scalar("SELECT dictionary FROM ledger_raw_dictionaries WHERE dict_id = $1")
                .bind(i64::from(d.id()))
                .fetch_one(&self.pool)
                .await?;
        if stored == d.bytes() {
            tracing::info!(
                dictionary = d.id(),
                bytes = stored.len(),
                "raw facts now compressed with a dictionary"
            );
            self.dictionaries.insert(d, true);
        } else {
            // Ids are random 32-bit numbers: another instance's dictionary got this one first.
            tracing::warn!(
                dictionary = d.id(),
                "a different stored dictionary has this id; not used"
            );
        }
        Ok(())
    }

    async fn bind_stripe_mode(&self, mode: StripeMode) -> Result<(), Error> {
        sqlx::query(super::BIND_STRIPE_MODE)
            .bind(mode.name())
            .execute(&self.pool)
            .await?;
        let bound = sqlx::query_scalar(super::BOUND_STRIPE_MODE)
            .fetch_one(&self.pool)
            .await?;
        super::check_bound_mode(bound, mode)
    }

    async fn begin_snapshot(&self) -> Result<PgSnapshot, Error> {
        let tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        Ok(PgSnapshot {
            tx,
            dictionaries: Arc::clone(&self.dictionaries),
        })
    }

    async fn begin_write(&self) -> Result<PgWrite, Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(self.locks.writer)
            .execute(&mut *tx)
            .await?;
        Ok(PgWrite {
            tx,
            dictionaries: Arc::clone(&self.dictionaries),
        })
    }

    async fn derived_backlog(&self) -> Result<u64, Error> {
        crate::cells::queued(&self.pool).await
    }

    async fn load_offsets(&self, group: &str) -> Result<Offsets, Error> {
        let mut conn = self.pool.acquire().await?;
        load_offsets(&mut conn, group).await
    }

    async fn currency_seen(&self, currency: &str) -> Result<bool, Error> {
        Ok(crate::balances::currency_seen(&self.pool, currency).await?)
    }

    async fn balances(&self, q: &BalanceQuery) -> Result<Vec<BalanceRow>, Error> {
        Ok(crate::balances::balances(&self.pool, q).await?)
    }

    async fn entries(&self, q: &EntryQuery) -> Result<Vec<StoredEntry>, Error> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS}, {ENTRY_META} {ENTRY_FROM} \
             WHERE m.recorded_seq > $1 AND ($2 = '' OR e.ledger = $2) \
               AND ($3 = '' OR e.source_id = $3) \
               AND ($4 = '' OR EXISTS (SELECT 1 FROM journal_lines a \
                                       WHERE a.entry_id = e.entry_id AND a.account = $4)) \
               AND ($5::timestamptz IS NULL OR e.effective_at >= $5) \
               AND ($6::timestamptz IS NULL OR e.effective_at < $6) \
             ORDER BY m.recorded_seq LIMIT $7"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(q.after_recorded_seq)
            .bind(&q.ledger)
            .bind(&q.source_id)
            .bind(&q.account)
            .bind(q.effective_from)
            .bind(q.effective_to)
            .bind(q.limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(stored_entry_from_row)
            .collect::<Result<_, _>>()?)
    }

    async fn entry(&self, id: Uuid) -> Result<Option<(StoredEntry, Vec<u8>)>, Error> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS}, {ENTRY_META}, {ENTRY_RAW} {ENTRY_FROM} WHERE e.entry_id = $1"
        );
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let entry = stored_entry_from_row(&row)?;
        let (seq, encoding, stored): (i64, String, Vec<u8>) =
            (row.try_get(18)?, row.try_get(19)?, row.try_get(20)?);
        load_missing_dictionaries(
            &self.pool,
            &self.dictionaries,
            [(encoding.as_str(), stored.as_slice())],
        )
        .await?;
        let raw = crate::raw::decode(seq, &encoding, stored, &self.dictionaries)?;
        Ok(Some((entry, raw)))
    }

    async fn statement(&self, q: &StatementQuery) -> Result<Vec<StatementRow>, Error> {
        let rows = sqlx::query(
            "WITH s AS ( \
               SELECT e.entry_id, e.effective_at, e.rule, e.source_id, l.amount, m.recorded_seq, l.line_no, \
                      sum(l.amount) OVER (ORDER BY e.effective_at, m.recorded_seq, l.line_no) AS running \
               FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id \
               JOIN ledger_entry_meta m ON m.entry_id = e.entry_id \
               WHERE e.ledger = $1 AND l.account = $2 AND l.currency = $3 \
                 AND ($5::timestamptz IS NULL OR e.effective_at < $5)) \
             SELECT entry_id, effective_at, rule, source_id, amount, running FROM s \
             WHERE ($4::timestamptz IS NULL OR effective_at >= $4) ORDER BY effective_at, recorded_seq, line_no OFFSET $6 LIMIT $7",
        )
        .bind(&q.ledger)
        .bind(&q.account)
        .bind(&q.currency)
        .bind(q.effective_from)
        .bind(q.effective_to)
        .bind(q.skip)
        .bind(q.limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                Ok(StatementRow {
                    entry_id: row.try_get(0)?,
                    effective_at: row.try_get(1)?,
                    rule: row.try_get(2)?,
                    source_id: row.try_get(3)?,
                    amount: row.try_get(4)?,
                    running: row.try_get(5)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }

    async fn balance_before(
        &self,
        ledger: &str,
        account: &str,
        currency: &str,
        before: DateTime<Utc>,
    ) -> Result<Decimal, Error> {
        Ok(sqlx::query_scalar::<_, Option<Decimal>>(
            "SELECT sum(l.amount) FROM journal_lines l \
             JOIN journal_entries e ON e.entry_id = l.entry_id \
             WHERE e.ledger = $1 AND l.account = $2 AND l.currency = $3 \
               AND e.effective_at < $4",
        )
        .bind(ledger)
        .bind(account)
        .bind(currency)
        .bind(before)
        .fetch_one(&self.pool)
        .await?
        .unwrap_or_default())
    }

    async fn verify_chain(&self) -> Result<Verification, Error> {
        let mut conn = self.pool.acquire().await?;
        verify(&mut conn).await
    }

    async fn stored_entries(&self) -> Result<Vec<Canonical>, Error> {
        let mut conn = self.pool.acquire().await?;
        stored_entries(&mut conn).await
    }
}

/// [`ReadFacts::facts_since`] on `conn`, loading any dictionary the facts name into `dictionaries`.
async fn facts_since(
    conn: &mut PgConnection,
    dictionaries: &Arc<Dictionaries>,
    after: i64,
    limit: i64,
) -> Result<Vec<StoredFact>, Error> {
    let rows = sqlx::query(
        "SELECT fact_seq, ledger, digest, raw_encoding, raw FROM ledger_facts \
         WHERE fact_seq > $1 ORDER BY fact_seq LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let facts = rows
        .into_iter()
        .map(|row| {
            Ok(StoredFact {
                seq: row.try_get(0)?,
                ledger: row.try_get(1)?,
                digest: row.try_get(2)?,
                encoding: row.try_get(3)?,
                stored: row.try_get(4)?,
                dictionaries: Arc::clone(dictionaries),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    load_missing_dictionaries(
        &mut *conn,
        dictionaries,
        facts
            .iter()
            .map(|f| (f.encoding.as_str(), f.stored.as_slice())),
    )
    .await?;
    Ok(facts)
}

/// [`ReadFacts::max_recorded_seq`] on `conn`.
async fn max_recorded_seq(conn: &mut PgConnection) -> Result<i64, Error> {
    let max: Option<i64> = sqlx::query_scalar("SELECT max(recorded_seq) FROM ledger_entry_meta")
        .fetch_one(conn)
        .await?;
    Ok(max.unwrap_or(0))
}

impl ReadFacts for PgWrite {
    async fn facts_since(&mut self, after: i64, limit: i64) -> Result<Vec<StoredFact>, Error> {
        facts_since(&mut self.tx, &self.dictionaries, after, limit).await
    }

    async fn max_recorded_seq(&mut self) -> Result<i64, Error> {
        max_recorded_seq(&mut self.tx).await
    }
}

impl ReadFacts for PgSnapshot {
    async fn facts_since(&mut self, after: i64, limit: i64) -> Result<Vec<StoredFact>, Error> {
        facts_since(&mut self.tx, &self.dictionaries, after, limit).await
    }

    async fn max_recorded_seq(&mut self) -> Result<i64, Error> {
        max_recorded_seq(&mut self.tx).await
    }
}

impl WriteTx for PgWrite {
    async fn now(&mut self) -> Result<DateTime<Utc>, Error> {
        // Not now(): that is when the transaction began, before it waited for the lock.
        Ok(sqlx::query_scalar(
            "SELECT greatest(clock_timestamp(), \
               (SELECT e.recorded_at + interval '1 microsecond' FROM ledger_entry_meta m \
                  JOIN journal_entries e ON e.entry_id = m.entry_id \
                 ORDER BY m.recorded_seq DESC LIMIT 1))",
        )
        .fetch_one(&mut *self.tx)
        .await?)
    }

    async fn offsets(&mut self, group: &str) -> Result<Offsets, Error> {
        load_offsets(&mut self.tx, group).await
    }

    async fn heads(&mut self) -> Result<HashMap<String, Head>, Error> {
        load_heads(&mut self.tx).await
    }

    async fn write_facts(&mut self, rows: &Rows, recorded_at: DateTime<Utc>) -> Result<(), Error> {
        write_facts(&mut self.tx, rows, recorded_at).await
    }

    async fn write(
        &mut self,
        rows: &Rows,
        heads: &HashMap<String, Head>,
        group: &str,
        offsets: &Offsets,
        recorded_at: DateTime<Utc>,
    ) -> Result<(), Error> {
        write_entries(&mut self.tx, rows, recorded_at).await?;
        write_heads(&mut self.tx, heads).await?;
        write_offsets(&mut self.tx, group, offsets).await?;
        Ok(())
    }

    async fn commit(self) -> Result<(), Error> {
        self.tx.commit().await?;
        Ok(())
    }
}

pub(crate) async fn load_offsets(conn: &mut PgConnection, group: &str) -> Result<Offsets, Error> {
    Ok(sqlx::query(
        "SELECT topic, partition, next_offset FROM consumer_offsets WHERE consumer_group = $1",
    )
    .bind(group)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| -> Result<_, sqlx::Error> { Ok(((r.try_get(0)?, r.try_get(1)?), r.try_get(2)?)) })
    .collect::<Result<_, _>>()?)
}

/// The stored heads.
pub async fn load_heads(conn: &mut PgConnection) -> Result<HashMap<String, Head>, Error> {
    let rows = sqlx::query("SELECT chain, length, head FROM ledger_chain_heads")
        .fetch_all(&mut *conn)
        .await?;
    let mut out = HashMap::new();
    for r in rows {
        let head: Vec<u8> = r.try_get(2)?;
        out.insert(
            r.try_get(0)?,
            Head {
                length: r.try_get(1)?,
                head: <[u8; 32]>::try_from(head.as_slice()).unwrap_or_default(),
                changed: false,
            },
        );
    }
    Ok(out)
}

/// The SELECT that reads an entry with its lines in canonical form (columns 0..=12).
pub(crate) const ENTRY_COLUMNS: &str = "e.entry_id, e.ledger, e.rule, e.source_kind, \
    e.source_id, extract(epoch from e.effective_at)::bigint, e.reverses, e.description, \
    (SELECT array_agg(l.account ORDER BY l.line_no) FROM journal_lines l WHERE l.entry_id = e.entry_id), \
    (SELECT array_agg(l.currency ORDER BY l.line_no) FROM journal_lines l WHERE l.entry_id = e.entry_id), \
    (SELECT array_agg(l.amount ORDER BY l.line_no) FROM journal_lines l WHERE l.entry_id = e.entry_id), \
    e.recorded_at, \
    (SELECT array_agg(l.line_no ORDER BY l.line_no) FROM journal_lines l WHERE l.entry_id = e.entry_id)";

/// Columns 13..=17 after [`ENTRY_COLUMNS`].
const ENTRY_META: &str = "m.chain, m.chain_seq, m.chain_hash, f.fact_id, m.recorded_seq";
/// Columns 18..=20 after [`ENTRY_META`]: the raw fact in its stored form (see [`crate::raw`]).
const ENTRY_RAW: &str = "f.fact_seq, f.raw_encoding, f.raw";
const ENTRY_FROM: &str = "FROM journal_entries e \
    JOIN ledger_entry_meta m ON m.entry_id = e.entry_id \
    JOIN ledger_facts f ON f.fact_seq = m.fact_seq";

/// Reads the canonical entry from a row selected with [`ENTRY_COLUMNS`].
pub(crate) fn canonical_from_row(r: &sqlx::postgres::PgRow) -> Result<Canonical, sqlx::Error> {
    let accounts: Vec<String> = r.try_get::<Option<Vec<String>>, _>(8)?.unwrap_or_default();
    let currencies: Vec<String> = r.try_get::<Option<Vec<String>>, _>(9)?.unwrap_or_default();
    let amounts: Vec<Decimal> = r
        .try_get::<Option<Vec<Decimal>>, _>(10)?
        .unwrap_or_default();
    Ok(Canonical {
        entry_id: r.try_get(0)?,
        ledger: r.try_get(1)?,
        rule: r.try_get(2)?,
        source_kind: r.try_get(3)?,
        source_id: r.try_get(4)?,
        effective_at: r.try_get(5)?,
        reverses: r.try_get(6)?,
        description: r.try_get(7)?,
        lines: accounts
            .into_iter()
            .zip(currencies)
            .zip(amounts)
            .map(|((account, currency), amount)| CanonicalLine {
                account,
                currency,
                amount,
            })
            .collect(),
    })
}

fn stored_entry_from_row(r: &sqlx::postgres::PgRow) -> Result<StoredEntry, sqlx::Error> {
    Ok(StoredEntry {
        canonical: canonical_from_row(r)?,
        recorded_at: r.try_get(11)?,
        chain: r.try_get(13)?,
        chain_seq: r.try_get(14)?,
        chain_hash: r.try_get(15)?,
        fact_id: r.try_get(16)?,
        recorded_seq: r.try_get(17)?,
    })
}

/// Every stored entry in canonical form, by id.
pub async fn stored_entries(conn: &mut PgConnection) -> Result<Vec<Canonical>, Error> {
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM journal_entries e ORDER BY e.entry_id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows
        .iter()
        .map(canonical_from_row)
        .collect::<Result<_, _>>()?)
}

/// Recomputes every chain from the stored rows.
pub async fn verify(conn: &mut PgConnection) -> Result<Verification, Error> {
    let stored = load_heads(conn).await?;
    let sql = format!(
        "SELECT {ENTRY_COLUMNS}, m.chain, m.chain_seq, m.digest, m.chain_hash, m.recorded_seq \
         FROM ledger_entry_meta m JOIN journal_entries e ON e.entry_id = m.entry_id \
         ORDER BY m.chain, m.chain_seq"
    );
    let mut verifier = Verifier::new();
    {
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(&mut *conn);
        while let Some(r) = rows.try_next().await? {
            let canon = canonical_from_row(&r)?;
            let chain: String = r.try_get(13)?;
            let seq: i64 = r.try_get(14)?;
            let digest: Vec<u8> = r.try_get(15)?;
            let link: Option<Vec<u8>> = r.try_get(16)?;
            let recorded: i64 = r.try_get(17)?;
            verifier.push(&canon, &chain, seq, &digest, link.as_deref(), recorded);
        }
    }
    if !verifier.found_bad() {
        let orphan: Option<Uuid> = sqlx::query_scalar(
            "SELECT e.entry_id FROM journal_entries e \
             WHERE NOT EXISTS (SELECT 1 FROM ledger_entry_meta m WHERE m.entry_id = e.entry_id) \
             ORDER BY e.recorded_at, e.entry_id LIMIT 1",
        )
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(id) = orphan {
            verifier.orphan(id);
        }
    }
    Ok(verifier.finish(&stored))
}

#[cfg(test)]
mod tests {
    use super::AdvisoryLocks;

    #[test]
    fn a_rebuild_schema_has_locks_of_its_own_the_same_each_run() {
        let a = AdvisoryLocks::for_rebuild_schema("audit_20261205");
        assert_eq!(a, AdvisoryLocks::for_rebuild_schema("audit_20261205"));
        assert_ne!(a, AdvisoryLocks::for_rebuild_schema("audit_20261206"));
        let live = AdvisoryLocks::LEDGER;
        for key in [a.writer, a.builder] {
            assert!(key != live.writer && key != live.builder);
        }
        assert_ne!(a.writer, a.builder);
    }
}
