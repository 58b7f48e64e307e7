//! The balance-cells builder: adds the postings the writer queued (`ledger_cells_pending`,
//! migration `20261123000100`) to their balance cells, beside the writer instead of inside its
//! transaction. Every ledger instance runs one; the database lets one build at a time (the
//! others' calls return 0). It computes each build's cells itself ([`derive`](mod@derive)); PostgreSQL
//! upserts them. As-of balances are exact whether or not it has caught up
//! ([`crate::balances`] adds what is still queued); it only keeps the queue short, so that a
//! query's pass over the queue stays cheap.

pub mod derive;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgExecutor, PgPool, Row as _};
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::store::postgres::AdvisoryLocks;

/// Queued statements (≈ one writer batch each) added to their cells per builder transaction:
/// more per transaction share the recording-day and -month cells' upserts.
pub const BUILD_ROWS: i32 = 16;

/// How often the builder looks at the queue when it has nothing to do.
const IDLE: Duration = Duration::from_millis(50);

/// The builder lets the queue gather this many statements (or wait [`MAX_WAIT`]) before it
/// builds: at a low rate every writer batch is small and touches its own keys, so building
/// each alone costs up to twice the upserts per line (the recording-day and -month cells are
/// shared by the statements of one build) and competes with the writer for the same cores.
const BUILD_AT: u64 = 4;
const MAX_WAIT: Duration = Duration::from_millis(250);

/// Adds up to `max_rows` queued statements to their cells (oldest first) and removes them from
/// the queue, in one transaction (a savepoint if `conn` is already in one); returns how many it
/// took (0: the queue is empty or another builder is at work).
///
/// The same as the SQL function `ledger_cells_build` (migration `20261123000100`), with the
/// cells computed here ([`derive`](mod@derive)) and only upserted by PostgreSQL.
pub async fn build_once<'a, A>(conn: A, max_rows: i32) -> Result<i32, Error>
where
    A: sqlx::Acquire<'a, Database = sqlx::Postgres>,
{
    build_once_under(conn, max_rows, AdvisoryLocks::LEDGER.builder).await
}

/// [`build_once`] taking turns with other builders on advisory lock `lock` (the builders of
/// one ledger: one at a time, the others take nothing instead of waiting or racing its
/// upserts).
async fn build_once_under<'a, A>(conn: A, max_rows: i32, lock: i64) -> Result<i32, Error>
where
    A: sqlx::Acquire<'a, Database = sqlx::Postgres>,
{
    let mut tx = conn.begin().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(lock)
        .fetch_one(&mut *tx)
        .await?;
    if !locked {
        return Ok(0);
    }
    let taken = sqlx::query(
        "DELETE FROM ledger_cells_pending \
          WHERE pending_seq IN (SELECT q.pending_seq FROM ledger_cells_pending q \
                                 ORDER BY q.pending_seq LIMIT $1) \
         RETURNING account, currency, ledger, effective, recorded, amount",
    )
    .bind(max_rows)
    .fetch_all(&mut *tx)
    .await?;
    if taken.is_empty() {
        return Ok(0);
    }
    let statements = i32::try_from(taken.len()).unwrap_or(i32::MAX);
    let queued = taken
        .iter()
        .map(QueuedStatement::from_row)
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let (keys, postings) = key_indexes(&queued);
    let ids = key_ids(&mut tx, &keys).await?;
    let cells = derive::derive(
        postings
            .into_iter()
            .map(|(k, eff, rec, amount)| (ids[k], eff, rec, amount)),
    );
    // Tier `r` cells belong to one recording, whose postings one lines statement queued, so
    // they are new: a plain INSERT (~45 % cheaper than an upsert that finds nothing). Only a
    // recording queued by several statements and split across builds finds its cells made
    // already; then they go by upsert too.
    let (month_new, month_add): (Vec<_>, Vec<_>) = cells.month.into_iter().partition(one_recording);
    let (other_new, other_add): (Vec<_>, Vec<_>) = cells.other.into_iter().partition(one_recording);
    if !insert_new(&mut tx, &month_new, &other_new).await? {
        write_cells(&mut tx, &month_new, MONTH_UPSERT).await?;
        write_cells(&mut tx, &other_new, OTHER_UPSERT).await?;
    }
    write_cells(&mut tx, &month_add, MONTH_UPSERT).await?;
    write_cells(&mut tx, &other_add, OTHER_UPSERT).await?;
    tx.commit().await?;
    Ok(statements)
}

/// One row of `ledger_cells_pending`: a lines statement's postings, as parallel arrays.
struct QueuedStatement {
    account: Vec<String>,
    currency: Vec<String>,
    ledger: Vec<String>,
    effective: Vec<DateTime<Utc>>,
    recorded: Vec<DateTime<Utc>>,
    amount: Vec<Decimal>,
}

impl QueuedStatement {
    /// The row's arrays, which must be parallel: a posting missing from one of them would be
    /// left out of its cells, so a row whose arrays differ in length is an error.
    fn from_row(r: &sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
        let q = Self {
            account: r.try_get(0)?,
            currency: r.try_get(1)?,
            ledger: r.try_get(2)?,
            effective: r.try_get(3)?,
            recorded: r.try_get(4)?,
            amount: r.try_get(5)?,
        };
        let n = q.amount.len();
        if [
            q.account.len(),
            q.currency.len(),
            q.ledger.len(),
            q.effective.len(),
            q.recorded.len(),
        ]
        .iter()
        .any(|&len| len != n)
        {
            return Err(sqlx::Error::Protocol(
                "a ledger_cells_pending row's arrays differ in length (the lines trigger writes them \
                 parallel, so the row was changed by hand): restore it from its recording's \
                 journal lines; the builder retries until then"
                    .into(),
            ));
        }
        Ok(q)
    }
}

type Key<'q> = (&'q str, &'q str, &'q str);
type Posting = (usize, DateTime<Utc>, DateTime<Utc>, Decimal);

/// The distinct balance keys (account, currency, ledger) of the queued postings, and the
/// postings with their key as an index into them.
fn key_indexes(queued: &[QueuedStatement]) -> (Vec<Key<'_>>, Vec<Posting>) {
    let mut index: HashMap<Key<'_>, usize> = HashMap::new();
    let mut keys = Vec::new();
    let mut postings = Vec::new();
    for q in queued {
        let columns = q.account.iter().zip(&q.currency).zip(&q.ledger);
        let values = q.effective.iter().zip(&q.recorded).zip(&q.amount);
        for (((a, c), l), ((e, r), m)) in columns.zip(values) {
            let key = (a.as_str(), c.as_str(), l.as_str());
            let k = *index.entry(key).or_insert_with(|| {
                keys.push(key);
                keys.len() - 1
            });
            postings.push((k, *e, *r, *m));
        }
    }
    (keys, postings)
}

/// The key ids of `keys`, in their order; keys not yet known are added first (the writer's
/// trigger adds every key with its lines, so normally none is missing).
async fn key_ids(conn: &mut PgConnection, keys: &[Key<'_>]) -> Result<Vec<i64>, Error> {
    let accounts: Vec<&str> = keys.iter().map(|k| k.0).collect();
    let currencies: Vec<&str> = keys.iter().map(|k| k.1).collect();
    let ledgers: Vec<&str> = keys.iter().map(|k| k.2).collect();
    sqlx::query(
        "INSERT INTO ledger_balance_keys (account, currency, ledger) \
         SELECT u.a, u.c, u.l FROM UNNEST($1::text[], $2::text[], $3::text[]) AS u (a, c, l) \
          WHERE NOT EXISTS (SELECT 1 FROM ledger_balance_keys o \
                             WHERE o.account = u.a AND o.currency = u.c AND o.ledger = u.l) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&accounts)
    .bind(&currencies)
    .bind(&ledgers)
    .execute(&mut *conn)
    .await?;
    let found: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT u.i, k.key_id \
           FROM UNNEST($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS u (a, c, l, i) \
           JOIN ledger_balance_keys k ON k.account = u.a AND k.currency = u.c AND k.ledger = u.l",
    )
    .bind(&accounts)
    .bind(&currencies)
    .bind(&ledgers)
    .fetch_all(&mut *conn)
    .await?;
    let mut ids = vec![None; keys.len()];
    for (i, id) in found {
        if let Some(slot) = usize::try_from(i - 1).ok().and_then(|i| ids.get_mut(i)) {
            *slot = Some(id);
        }
    }
    ids.into_iter()
        .zip(keys)
        .map(|(id, (a, c, l))| {
            id.ok_or_else(|| {
                Error::Database(sqlx::Error::Protocol(format!(
                    "balance key ({l}, {a}, {c}) has no key_id after it was inserted; \
                     the build is retried"
                )))
            })
        })
        .collect()
}

const MONTH_UPSERT: &str = "ON CONFLICT (key_id, tier, recorded, bucket) WHERE grain = 'm' \
                            DO UPDATE SET amount = o.amount + EXCLUDED.amount";
const OTHER_UPSERT: &str = "ON CONFLICT (key_id, grain, tier, bucket, recorded) WHERE grain <> 'm' \
                            DO UPDATE SET amount = o.amount + EXCLUDED.amount";

fn one_recording((cell, _): &(derive::CellKey, Decimal)) -> bool {
    cell.tier == b'r'
}

/// Inserts cells expected to be new (a savepoint around both statements); false, with nothing
/// inserted, if one of them exists already.
async fn insert_new(
    conn: &mut PgConnection,
    month: &[(derive::CellKey, Decimal)],
    other: &[(derive::CellKey, Decimal)],
) -> Result<bool, Error> {
    let mut savepoint = sqlx::Connection::begin(&mut *conn).await?;
    for cells in [month, other] {
        match write_cells(&mut savepoint, cells, "").await {
            Ok(()) => {}
            Err(Error::Database(sqlx::Error::Database(e))) if e.is_unique_violation() => {
                savepoint.rollback().await?;
                return Ok(false);
            }
            Err(e) => return Err(e),
        }
    }
    savepoint.commit().await?;
    Ok(true)
}

/// Writes `cells` (in their index's order) to `ledger_balance_cells` in one statement: an
/// insert, or an upsert adding to existing cells with `on_conflict`.
async fn write_cells(
    conn: &mut PgConnection,
    cells: &[(derive::CellKey, Decimal)],
    on_conflict: &'static str,
) -> Result<(), Error> {
    if cells.is_empty() {
        return Ok(());
    }
    let key_ids: Vec<i64> = cells.iter().map(|(k, _)| k.key_id).collect();
    let grains: Vec<String> = cells
        .iter()
        .map(|(k, _)| char::from(k.grain).to_string())
        .collect();
    let tiers: Vec<String> = cells
        .iter()
        .map(|(k, _)| char::from(k.tier).to_string())
        .collect();
    let buckets: Vec<DateTime<Utc>> = cells.iter().map(|(k, _)| k.bucket).collect();
    let recorded: Vec<DateTime<Utc>> = cells.iter().map(|(k, _)| k.recorded).collect();
    let amounts: Vec<Decimal> = cells.iter().map(|(_, a)| *a).collect();
    let sql = format!(
        "INSERT INTO ledger_balance_cells AS o (key_id, grain, tier, bucket, recorded, amount) \
         SELECT k, g::\"char\", t::\"char\", b, r, a \
           FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], \
                       $5::timestamptz[], $6::numeric[]) AS x (k, g, t, b, r, a) \
         {on_conflict}"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&key_ids)
        .bind(&grains)
        .bind(&tiers)
        .bind(&buckets)
        .bind(&recorded)
        .bind(&amounts)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Builds until the queue is empty; returns how many queued statements it took. (For tools
/// and tests; the service runs [`run`].)
pub async fn build_all(pool: &PgPool) -> Result<i64, Error> {
    build_all_under(pool, AdvisoryLocks::LEDGER.builder).await
}

/// [`build_all`] taking turns with other builders on advisory lock `lock` (see
/// [`AdvisoryLocks`]).
pub async fn build_all_under(pool: &PgPool, lock: i64) -> Result<i64, Error> {
    let mut total = 0;
    loop {
        let n = build_once_under(pool, BUILD_ROWS, lock).await?;
        if n == 0 {
            if queued(pool).await? == 0 {
                return Ok(total);
            }
            // Another builder holds the lock: let it finish its transaction.
            tokio::time::sleep(IDLE).await;
        }
        total += i64::from(n);
    }
}

/// Builds until `shutdown`, when the queue holds `BUILD_AT` statements or its oldest has
/// waited `MAX_WAIT`. A failed build (the database restarting, say) rolled back as a whole,
/// so nothing is lost: the builder logs it and tries again.
pub async fn run(pool: PgPool, shutdown: CancellationToken) -> Result<(), Error> {
    let mut waiting_since: Option<std::time::Instant> = None;
    while !shutdown.is_cancelled() {
        let t = std::time::Instant::now();
        let step = async {
            let queued = queued(&pool).await?;
            if queued == 0 {
                waiting_since = None;
                return Ok(0);
            }
            let since = *waiting_since.get_or_insert(t);
            if queued < BUILD_AT && since.elapsed() < MAX_WAIT {
                return Ok(0);
            }
            let n = build_once(&pool, BUILD_ROWS).await?;
            if n > 0 {
                waiting_since = None;
            }
            Ok::<i32, Error>(n)
        };
        match step.await {
            Ok(0) => {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(IDLE) => {}
                }
            }
            Ok(n) => tracing::debug!(statements = n, ms = t.elapsed().as_millis(), "cells built"),
            Err(e) => {
                tracing::warn!(error = %e, "building balance cells failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }
    }
    Ok(())
}

/// How many lines statements wait for the builder.
pub async fn queued<'e, E: PgExecutor<'e>>(exec: E) -> Result<u64, Error> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger_cells_pending")
        .fetch_one(exec)
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}
