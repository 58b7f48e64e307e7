//! The SQLite store (`migrations/sqlite/`): the embedded ledger's journal in one file.
//!
//! Same behaviour as [`super::postgres`]: one `BEGIN IMMEDIATE` transaction per batch (the
//! writer lock) with the consumed offsets, append-only tables (triggers), the same chain
//! links and verification. Differences: amounts are decimal text summed in Rust (SQLite's
//! `sum` is floating point), and an entry's balance per currency is checked here before it is
//! written rather than by a database trigger; raw facts are stored as sent (no TOAST here to
//! avoid, and the file stays readable with the `sqlite3` shell), so this store asks for the
//! `identity` encoding ([`crate::raw`]).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use uuid::Uuid;

use super::{
    BalanceQuery, BalanceRow, EntryQuery, Offsets, StatementQuery, StatementRow, Store, StoredEntry,
};
use crate::Error;
use crate::chain::{Canonical, CanonicalLine, Head, Verification, Verifier};
use crate::raw::{Dictionary, RawEncoder, RawEncoding};
use crate::rules::StripeMode;

mod write;
pub use write::{SqliteSnapshot, SqliteWrite};

/// The migrations of `migrations/sqlite/`, run at start.
pub static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// The journal in a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(m: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(m).unwrap_or(DateTime::UNIX_EPOCH)
}

fn corrupt(what: impl std::fmt::Display) -> Error {
    Error::Database(sqlx::Error::Decode(
        format!("the SQLite journal holds an unreadable {what}").into(),
    ))
}

fn uuid(s: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(s).map_err(|_| corrupt(format_args!("entry id {s:?}")))
}

fn decimal(s: &str) -> Result<Decimal, Error> {
    Decimal::from_str(s).map_err(|_| corrupt(format_args!("amount {s:?}")))
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path` and runs the migrations.
    pub async fn open(path: &Path) -> Result<Self, Error> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        Self::with_options(options).await
    }

    /// A private in-memory database (tests).
    pub async fn in_memory() -> Result<Self, Error> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        // One connection: every connection to `:memory:` is a database of its own.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        SQLITE_MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    async fn with_options(options: SqliteConnectOptions) -> Result<Self, Error> {
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        SQLITE_MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// How many distinct facts the journal holds.
    pub async fn fact_count(&self) -> Result<i64, Error> {
        let n: Option<i64> = sqlx::query_scalar("SELECT max(fact_seq) FROM ledger_facts")
            .fetch_one(&self.pool)
            .await?;
        Ok(n.unwrap_or(0))
    }
}

/// One row of the transactional outbox (`ledger_outbox`): a committed entry waiting to be
/// published on `ledger.entries.v1` ([`crate::embedded_outbox`]).
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub seq: i64,
    /// `{ledger}/{entry id}`.
    pub key: String,
    /// The entry as a `JournalEntry` protobuf.
    pub payload: Vec<u8>,
}

impl SqliteStore {
    /// The `limit` oldest outbox rows, by `outbox_seq`.
    pub async fn outbox_batch(&self, limit: i64) -> Result<Vec<OutboxRow>, Error> {
        let rows = sqlx::query(
            "SELECT outbox_seq, record_key, payload FROM ledger_outbox \
             ORDER BY outbox_seq LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OutboxRow {
                    seq: r.try_get(0)?,
                    key: r.try_get(1)?,
                    payload: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// Deletes the outbox rows with `first <= outbox_seq <= last` (one statement); returns
    /// how many. A batch of [`Self::outbox_batch`] is such a range whole: `outbox_seq` is
    /// assigned by the single writer (`AUTOINCREMENT`, never reused), so a row committed after
    /// the batch was read has a larger one.
    pub async fn delete_outbox(&self, first: i64, last: i64) -> Result<u64, Error> {
        Ok(
            sqlx::query("DELETE FROM ledger_outbox WHERE outbox_seq BETWEEN ? AND ?")
                .bind(first)
                .bind(last)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    /// How many outbox rows wait to be published.
    pub async fn outbox_len(&self) -> Result<i64, Error> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM ledger_outbox")
            .fetch_one(&self.pool)
            .await?)
    }
}

async fn load_offsets(conn: &mut SqliteConnection, group: &str) -> Result<Offsets, Error> {
    Ok(sqlx::query(
        "SELECT topic, partition, next_offset FROM consumer_offsets WHERE consumer_group = ?",
    )
    .bind(group)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| -> Result<_, sqlx::Error> { Ok(((r.try_get(0)?, r.try_get(1)?), r.try_get(2)?)) })
    .collect::<Result<_, _>>()?)
}

async fn load_heads(conn: &mut SqliteConnection) -> Result<HashMap<String, Head>, Error> {
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

/// Lines of the entries `ids` (all entries when `None`), by entry, in line order.
async fn lines_of(
    conn: &mut SqliteConnection,
    ids: Option<&[String]>,
) -> Result<HashMap<String, Vec<CanonicalLine>>, Error> {
    let rows = match ids {
        None => {
            sqlx::query(
                "SELECT entry_id, account, currency, amount FROM journal_lines \
                 ORDER BY entry_id, line_no",
            )
            .fetch_all(&mut *conn)
            .await?
        }
        Some(ids) => {
            let mut out = Vec::new();
            for chunk in ids.chunks(500) {
                let marks = vec!["?"; chunk.len()].join(", ");
                let sql = format!(
                    "SELECT entry_id, account, currency, amount FROM journal_lines \
                     WHERE entry_id IN ({marks}) ORDER BY entry_id, line_no"
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for id in chunk {
                    q = q.bind(id);
                }
                out.extend(q.fetch_all(&mut *conn).await?);
            }
            out
        }
    };
    let mut map: HashMap<String, Vec<CanonicalLine>> = HashMap::new();
    for r in rows {
        let amount: String = r.try_get(3)?;
        map.entry(r.try_get(0)?).or_default().push(CanonicalLine {
            account: r.try_get(1)?,
            currency: r.try_get(2)?,
            amount: decimal(&amount)?,
        });
    }
    Ok(map)
}

/// `e.*` columns 0..=8 of an entry: id, ledger, rule, source_kind, source_id, effective_at,
/// reverses, description, recorded_at.
const ENTRY_COLUMNS: &str = "e.entry_id, e.ledger, e.rule, e.source_kind, e.source_id, \
    e.effective_at, e.reverses, e.description, e.recorded_at";

fn canonical_head(r: &SqliteRow) -> Result<Canonical, Error> {
    let id: String = r.try_get(0)?;
    let reverses: Option<String> = r.try_get(6)?;
    Ok(Canonical {
        entry_id: uuid(&id)?,
        ledger: r.try_get(1)?,
        rule: r.try_get(2)?,
        source_kind: r.try_get(3)?,
        source_id: r.try_get(4)?,
        effective_at: r.try_get(5)?,
        reverses: reverses.as_deref().map(uuid).transpose()?,
        description: r.try_get(7)?,
        lines: Vec::new(),
    })
}

/// Meta columns 9..=15 after [`ENTRY_COLUMNS`]: chain, chain_seq, chain_hash, fact_id,
/// recorded_seq, raw, digest.
const ENTRY_META: &str =
    "m.chain, m.chain_seq, m.chain_hash, f.fact_id, m.recorded_seq, f.raw, m.digest";
const ENTRY_FROM: &str = "FROM journal_entries e \
    JOIN ledger_entry_meta m ON m.entry_id = e.entry_id \
    JOIN ledger_facts f ON f.fact_seq = m.fact_seq";

fn stored_entry(
    r: &SqliteRow,
    lines: &mut HashMap<String, Vec<CanonicalLine>>,
) -> Result<StoredEntry, Error> {
    let mut canonical = canonical_head(r)?;
    let id: String = r.try_get(0)?;
    canonical.lines = lines.remove(&id).unwrap_or_default();
    Ok(StoredEntry {
        canonical,
        recorded_at: from_micros(r.try_get(8)?),
        chain: r.try_get(9)?,
        chain_seq: r.try_get(10)?,
        chain_hash: r.try_get(11)?,
        fact_id: r.try_get(12)?,
        recorded_seq: r.try_get(13)?,
    })
}

/// One line of an account, with its entry.
struct LineRow {
    amount: Decimal,
    effective_at: i64,
    entry_id: String,
    rule: String,
    source_id: String,
}

impl Store for SqliteStore {
    type Write = SqliteWrite;
    type Snapshot = SqliteSnapshot;

    fn raw_encoder(&self) -> RawEncoder {
        RawEncoder::plain(RawEncoding::Identity)
    }

    async fn load_raw_dictionaries(&self) -> Result<Option<usize>, Error> {
        // Facts are kept as sent: nothing to train.
        Ok(None)
    }

    async fn add_raw_dictionary(&self, d: Dictionary) -> Result<(), Error> {
        tracing::debug!(
            dictionary = d.id(),
            "SQLite keeps raw facts as sent; dictionary unused"
        );
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

    async fn begin_snapshot(&self) -> Result<SqliteSnapshot, Error> {
        let tx = self.pool.begin().await?;
        Ok(SqliteSnapshot { tx })
    }

    async fn begin_write(&self) -> Result<SqliteWrite, Error> {
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(SqliteWrite { tx })
    }

    async fn derived_backlog(&self) -> Result<u64, Error> {
        Ok(0) // SQLite sums balances from the journal: nothing is derived behind the writer
    }

    async fn load_offsets(&self, group: &str) -> Result<Offsets, Error> {
        let mut conn = self.pool.acquire().await?;
        load_offsets(&mut conn, group).await
    }

    async fn currency_seen(&self, currency: &str) -> Result<bool, Error> {
        let seen: i64 =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM journal_lines WHERE currency = ?)")
                .bind(currency)
                .fetch_one(&self.pool)
                .await?;
        Ok(seen != 0)
    }

    async fn balances(&self, q: &BalanceQuery) -> Result<Vec<BalanceRow>, Error> {
        let rows = sqlx::query(
            "SELECT e.ledger, l.account, l.currency, l.amount \
             FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id \
             WHERE (?1 = '' OR e.ledger = ?1) AND (?2 = '' OR l.account = ?2) \
               AND (?3 = '' OR l.currency = ?3) AND (?4 IS NULL OR e.effective_at * 1000000 <= ?4) \
               AND (?5 IS NULL OR e.recorded_at <= ?5)",
        )
        .bind(&q.ledger)
        .bind(&q.account)
        .bind(&q.currency)
        .bind(q.effective_as_of.map(micros))
        .bind(q.recorded_as_of.map(micros))
        .fetch_all(&self.pool)
        .await?;
        let mut sums: BTreeMap<(String, String, String), Decimal> = BTreeMap::new();
        for r in rows {
            let amount: String = r.try_get(3)?;
            *sums
                .entry((r.try_get(0)?, r.try_get(2)?, r.try_get(1)?))
                .or_default() += decimal(&amount)?;
        }
        Ok(sums
            .into_iter()
            .filter(|(_, v)| !v.is_zero())
            .map(|((ledger, currency, account), amount)| BalanceRow {
                ledger,
                account,
                currency,
                amount,
            })
            .collect())
    }

    async fn entries(&self, q: &EntryQuery) -> Result<Vec<StoredEntry>, Error> {
        let mut conn = self.pool.acquire().await?;
        let sql = format!(
            "SELECT {ENTRY_COLUMNS}, {ENTRY_META} {ENTRY_FROM} \
             WHERE m.recorded_seq > ?1 AND (?2 = '' OR e.ledger = ?2) \
               AND (?3 = '' OR e.source_id = ?3) \
               AND (?4 = '' OR EXISTS (SELECT 1 FROM journal_lines a \
                                       WHERE a.entry_id = e.entry_id AND a.account = ?4)) \
               AND (?5 IS NULL OR e.effective_at * 1000000 >= ?5) \
               AND (?6 IS NULL OR e.effective_at * 1000000 < ?6) \
             ORDER BY m.recorded_seq LIMIT ?7"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(q.after_recorded_seq)
            .bind(&q.ledger)
            .bind(&q.source_id)
            .bind(&q.account)
            .bind(q.effective_from.map(micros))
            .bind(q.effective_to.map(micros))
            .bind(q.limit)
            .fetch_all(&mut *conn)
            .await?;
        let ids: Vec<String> = rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        let mut lines = lines_of(&mut conn, Some(&ids)).await?;
        rows.iter().map(|r| stored_entry(r, &mut lines)).collect()
    }

    async fn entry(&self, id: Uuid) -> Result<Option<(StoredEntry, Vec<u8>)>, Error> {
        let mut conn = self.pool.acquire().await?;
        let sql = format!("SELECT {ENTRY_COLUMNS}, {ENTRY_META} {ENTRY_FROM} WHERE e.entry_id = ?");
        let key = id.hyphenated().to_string();
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&key)
            .fetch_optional(&mut *conn)
            .await?
        else {
            return Ok(None);
        };
        let mut lines = lines_of(&mut conn, Some(std::slice::from_ref(&key))).await?;
        let entry = stored_entry(&row, &mut lines)?;
        let raw: Vec<u8> = row.try_get(14)?;
        Ok(Some((entry, raw)))
    }

    async fn statement(&self, q: &StatementQuery) -> Result<Vec<StatementRow>, Error> {
        let rows = self
            .lines(&q.ledger, &q.account, &q.currency, q.effective_to, true)
            .await?;
        let from = q.effective_from.map(micros);
        let mut running = Decimal::ZERO;
        let mut out = Vec::new();
        let skip = usize::try_from(q.skip).unwrap_or(usize::MAX);
        let limit = usize::try_from(q.limit).unwrap_or(0);
        let mut seen = 0usize;
        for l in rows {
            running += l.amount;
            if from.is_some_and(|f| l.effective_at.saturating_mul(1_000_000) < f) {
                continue;
            }
            seen += 1;
            if seen <= skip {
                continue;
            }
            if out.len() >= limit {
                break;
            }
            out.push(StatementRow {
                entry_id: uuid(&l.entry_id)?,
                effective_at: crate::engine::timestamp_of(l.effective_at),
                rule: l.rule,
                source_id: l.source_id,
                amount: l.amount,
                running,
            });
        }
        Ok(out)
    }

    async fn balance_before(
        &self,
        ledger: &str,
        account: &str,
        currency: &str,
        before: DateTime<Utc>,
    ) -> Result<Decimal, Error> {
        Ok(self
            .lines(ledger, account, currency, Some(before), false)
            .await?
            .iter()
            .map(|l| l.amount)
            .sum())
    }

    async fn verify_chain(&self) -> Result<Verification, Error> {
        let mut conn = self.pool.acquire().await?;
        let stored = load_heads(&mut conn).await?;
        let mut lines = lines_of(&mut conn, None).await?;
        let sql = format!(
            "SELECT {ENTRY_COLUMNS}, m.chain, m.chain_seq, m.digest, m.chain_hash, m.recorded_seq \
             FROM ledger_entry_meta m JOIN journal_entries e ON e.entry_id = m.entry_id \
             ORDER BY m.chain, m.chain_seq"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut *conn)
            .await?;
        let mut verifier = Verifier::new();
        for r in &rows {
            let mut canon = canonical_head(r)?;
            let id: String = r.try_get(0)?;
            canon.lines = lines.remove(&id).unwrap_or_default();
            let chain: String = r.try_get(9)?;
            let seq: i64 = r.try_get(10)?;
            let digest: Vec<u8> = r.try_get(11)?;
            let link: Option<Vec<u8>> = r.try_get(12)?;
            let recorded: i64 = r.try_get(13)?;
            verifier.push(&canon, &chain, seq, &digest, link.as_deref(), recorded);
        }
        if !verifier.found_bad() {
            let orphan: Option<String> = sqlx::query_scalar(
                "SELECT e.entry_id FROM journal_entries e \
                 WHERE NOT EXISTS (SELECT 1 FROM ledger_entry_meta m WHERE m.entry_id = e.entry_id) \
                 ORDER BY e.recorded_at, e.entry_id LIMIT 1",
            )
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(id) = orphan {
                verifier.orphan(uuid(&id)?);
            }
        }
        Ok(verifier.finish(&stored))
    }

    async fn stored_entries(&self) -> Result<Vec<Canonical>, Error> {
        let mut conn = self.pool.acquire().await?;
        let mut lines = lines_of(&mut conn, None).await?;
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM journal_entries e");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut *conn)
            .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                let mut c = canonical_head(r)?;
                let id: String = r.try_get(0)?;
                c.lines = lines.remove(&id).unwrap_or_default();
                Ok(c)
            })
            .collect::<Result<Vec<_>, Error>>()?;
        out.sort_by_key(|c| c.entry_id);
        Ok(out)
    }
}

impl SqliteStore {
    /// An account's lines in (effective time, recording order, line) order, effective before
    /// `before` when given (statement order when `ordered`).
    async fn lines(
        &self,
        ledger: &str,
        account: &str,
        currency: &str,
        before: Option<DateTime<Utc>>,
        ordered: bool,
    ) -> Result<Vec<LineRow>, Error> {
        let order = if ordered {
            "ORDER BY e.effective_at, m.recorded_seq, l.line_no"
        } else {
            ""
        };
        let sql = format!(
            "SELECT l.amount, e.effective_at, e.entry_id, e.rule, e.source_id \
             FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id \
             JOIN ledger_entry_meta m ON m.entry_id = e.entry_id \
             WHERE e.ledger = ?1 AND l.account = ?2 AND l.currency = ?3 \
               AND (?4 IS NULL OR e.effective_at * 1000000 < ?4) {order}"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ledger)
            .bind(account)
            .bind(currency)
            .bind(before.map(micros))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let amount: String = r.try_get(0)?;
                Ok(LineRow {
                    amount: decimal(&amount)?,
                    effective_at: r.try_get(1)?,
                    entry_id: r.try_get(2)?,
                    rule: r.try_get(3)?,
                    source_id: r.try_get(4)?,
                })
            })
            .collect()
    }
}
