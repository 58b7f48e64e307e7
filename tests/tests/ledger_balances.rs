//! As-of balances from the balance cells equal a plain sum over the journal, on both time
//! axes, at and around every bucket boundary (month, day, hour, minute) and every recording,
//! with the postings queued for the cells, partly built and fully built,
//! also when the journal was written before the minute cells existed (their migration fills
//! them in); the statement-level checks that replaced per-row foreign keys still refuse orphans.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use ledgerline_ledger::balances::{BalanceQuery, balances};
use ledgerline_ledger::cells;
use ledgerline_tests::{MIGRATOR, fresh_database};
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

const LEDGERS: [&str; 2] = ["acct_a", "acct_b"];
const ACCOUNTS: [&str; 3] = ["assets:stripe:pending", "income:revenue", "assets:bank"];
const CURRENCIES: [&str; 2] = ["usd", "eur"];

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 30, 22, 0, 0).unwrap()
}

/// Effective times that sit on, just before and just after month, day, hour and minute
/// boundaries (01:07 is a minute inside the hour after 01:00).
fn interesting_times() -> Vec<DateTime<Utc>> {
    let mut v = Vec::new();
    for b in [
        Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 2, 1, 1, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 2, 1, 1, 7, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 2, 2, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
    ] {
        v.extend([b - Duration::seconds(1), b, b + Duration::seconds(1)]);
    }
    v
}

async fn post_recordings(pool: &PgPool) -> Vec<DateTime<Utc>> {
    let mut r = Rng(11);
    let boundaries = interesting_times();
    let mut recorded = Vec::new();
    for rec in 0..6 {
        // Recordings on both sides of a month boundary (Feb 27 … Mar 4), a day apart.
        let recorded_at = t0() + Duration::days(28 + rec) + Duration::milliseconds(123);
        recorded.push(recorded_at);
        let mut tx = pool.begin().await.unwrap();
        let (mut ids, mut ledgers, mut effs) = (Vec::new(), Vec::new(), Vec::new());
        let (mut l_entry, mut l_no, mut l_acc, mut l_cur, mut l_amt) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for i in 0..60 {
            let id = Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("{rec}/{i}").as_bytes());
            let eff = if i % 4 == 0 {
                boundaries[usize::try_from(r.below(boundaries.len() as u64)).unwrap()]
            } else {
                t0() + Duration::seconds(i64::try_from(r.below(40 * 86_400)).unwrap())
            };
            ids.push(id);
            ledgers.push(LEDGERS[usize::try_from(r.below(2)).unwrap()]);
            effs.push(eff);
            let cur = CURRENCIES[usize::try_from(r.below(2)).unwrap()];
            let a = usize::try_from(r.below(3)).unwrap();
            let b = (a + 1 + usize::try_from(r.below(2)).unwrap()) % 3;
            let x = Decimal::new(i64::try_from(r.below(100_000)).unwrap() + 1, 2);
            for (no, (acc, amt)) in [(ACCOUNTS[a], x), (ACCOUNTS[b], -x)]
                .into_iter()
                .enumerate()
            {
                l_entry.push(id);
                l_no.push(i32::try_from(no).unwrap());
                l_acc.push(acc);
                l_cur.push(cur);
                l_amt.push(amt);
            }
        }
        sqlx::query(
            "INSERT INTO journal_entries (entry_id, ledger, rule, source_kind, source_id, effective_at, recorded_at) \
             SELECT i, l, 'test.rule', 'event', 'evt_x', e, $4 \
             FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[]) AS x(i, l, e)",
        )
        .bind(&ids)
        .bind(&ledgers)
        .bind(&effs)
        .bind(recorded_at)
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO journal_lines (entry_id, line_no, account, currency, amount) \
             SELECT * FROM UNNEST($1::uuid[], $2::int[], $3::text[], $4::text[], $5::numeric[])",
        )
        .bind(&l_entry)
        .bind(&l_no)
        .bind(&l_acc)
        .bind(&l_cur)
        .bind(&l_amt)
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    recorded
}

/// Every non-zero balance of `ledger` by (account, currency), summed over the journal itself.
async fn plain(
    pool: &PgPool,
    ledger: &str,
    eff: Option<DateTime<Utc>>,
    rec: Option<DateTime<Utc>>,
) -> Vec<(String, String, Decimal)> {
    sqlx::query_as(
        "SELECT l.account, l.currency, sum(l.amount) \
         FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id \
         WHERE e.ledger = $1 \
           AND ($2::timestamptz IS NULL OR e.effective_at <= $2) \
           AND ($3::timestamptz IS NULL OR e.recorded_at <= $3) \
         GROUP BY 1, 2 HAVING sum(l.amount) <> 0",
    )
    .bind(ledger)
    .bind(eff)
    .bind(rec)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn cell_balances_equal_plain_sums_on_both_axes() {
    let (pool, _name) = fresh_database("balances").await.unwrap();
    MIGRATOR.run(&pool).await.unwrap();
    let recorded = post_recordings(&pool).await;
    // The writer only queues the postings (one row per lines statement): nothing is in a cell
    // yet, the balances come from the queue and the journal.
    assert_eq!(queued(&pool).await, 6);
    assert_eq!(cell_count(&pool).await, 0);
    assert_cells_equal_plain_sums(&pool, &recorded).await;
    assert_standalone_function_agrees(&pool).await;
    // Part built: two recordings in their cells, four still queued.
    assert_eq!(cells::build_once(&pool, 2).await.unwrap(), 2);
    assert_eq!(queued(&pool).await, 4);
    assert!(cell_count(&pool).await > 0);
    assert_cells_equal_plain_sums(&pool, &recorded).await;
    assert_standalone_function_agrees(&pool).await;
    // All built: the same cells as the writer used to add in its own transaction.
    assert_eq!(cells::build_all(&pool).await.unwrap(), 4);
    assert_eq!(queued(&pool).await, 0);
    assert_cells_equal_plain_sums(&pool, &recorded).await;
    assert_standalone_function_agrees(&pool).await;
    assert_eq!(cells::build_once(&pool, 16).await.unwrap(), 0);
}

/// The builder computes the cells itself (`cells::derive`) and PostgreSQL only upserts them;
/// the SQL function `ledger_cells_build` is the reference: both give the same cells, to the
/// row, for the same recordings.
#[tokio::test]
async fn the_builder_and_the_sql_function_make_the_same_cells() {
    let (by_builder, _a) = fresh_database("balances_builder_twin").await.unwrap();
    let (by_sql, _b) = fresh_database("balances_sql_twin").await.unwrap();
    for pool in [&by_builder, &by_sql] {
        MIGRATOR.run(pool).await.unwrap();
        post_recordings(pool).await;
        post_recording_in_two_statements(pool).await;
    }
    // Three builds each, so later ones add to cells earlier ones made; the last takes the
    // second statement of a recording the one before took the first of: its one-recording
    // cells exist already (the builder's plain INSERT of them fails and it upserts instead).
    assert_eq!(cells::build_once(&by_builder, 2).await.unwrap(), 2);
    assert_eq!(cells::build_once(&by_builder, 5).await.unwrap(), 5);
    assert_eq!(cells::build_once(&by_builder, 16).await.unwrap(), 1);
    for n in [2, 5, 16] {
        sqlx::query("SELECT ledger_cells_build($1)")
            .bind(n)
            .execute(&by_sql)
            .await
            .unwrap();
    }
    let all_cells = "SELECT k.ledger, k.account, k.currency, c.grain::text, c.tier::text, \
                            c.bucket, c.recorded, c.amount \
                       FROM ledger_balance_cells c JOIN ledger_balance_keys k USING (key_id) \
                      ORDER BY 1, 2, 3, 4, 5, 6, 7";
    type CellRow = (
        String,
        String,
        String,
        String,
        String,
        DateTime<Utc>,
        DateTime<Utc>,
        Decimal,
    );
    let a: Vec<CellRow> = sqlx::query_as(all_cells)
        .fetch_all(&by_builder)
        .await
        .unwrap();
    let b: Vec<CellRow> = sqlx::query_as(all_cells).fetch_all(&by_sql).await.unwrap();
    assert!(a.len() > 1000, "{} cells", a.len());
    assert_eq!(a, b);
    assert_eq!(queued(&by_builder).await, 0);
    assert_eq!(queued(&by_sql).await, 0);
}

/// One recording (one transaction, one `recorded_at`) whose lines come in two statements,
/// both with lines of the same keys in the same minute: two queue rows, the same cells.
async fn post_recording_in_two_statements(pool: &PgPool) {
    let recorded_at = t0() + Duration::days(40);
    let effective = Utc.with_ymd_and_hms(2026, 2, 15, 10, 0, 30).unwrap();
    let mut tx = pool.begin().await.unwrap();
    for (part, amount) in [
        ("first", Decimal::new(500, 2)),
        ("second", Decimal::new(700, 2)),
    ] {
        let id = Uuid::new_v5(&Uuid::NAMESPACE_OID, part.as_bytes());
        insert_two_line_entry(&mut tx, id, "evt_split", effective, recorded_at, amount).await;
    }
    tx.commit().await.unwrap();
}

/// One entry of `acct_a` whose two lines move `amount` usd from `income:revenue` to
/// `assets:stripe:pending`, in its own two statements.
async fn insert_two_line_entry(
    conn: &mut sqlx::PgConnection,
    id: Uuid,
    source_id: &str,
    effective: DateTime<Utc>,
    recorded_at: DateTime<Utc>,
    amount: Decimal,
) {
    sqlx::query(
        "INSERT INTO journal_entries (entry_id, ledger, rule, source_kind, source_id, effective_at, recorded_at) \
         VALUES ($1, 'acct_a', 'test.rule', 'event', $2, $3, $4)",
    )
    .bind(id)
    .bind(source_id)
    .bind(effective)
    .bind(recorded_at)
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO journal_lines (entry_id, line_no, account, currency, amount) \
         VALUES ($1, 0, 'assets:stripe:pending', 'usd', $2), ($1, 1, 'income:revenue', 'usd', -$2)",
    )
    .bind(id)
    .bind(amount)
    .execute(&mut *conn)
    .await
    .unwrap();
}

/// One builder at a time: while a transaction holds the builder's lock, another call takes
/// nothing (instead of racing its upserts), and the queue waits for the next call.
#[tokio::test]
async fn a_second_builder_takes_nothing_while_the_first_builds() {
    let (pool, _name) = fresh_database("balances_builders").await.unwrap();
    MIGRATOR.run(&pool).await.unwrap();
    let recorded = post_recordings(&pool).await;
    let mut first = pool.begin().await.unwrap();
    assert_eq!(cells::build_once(&mut *first, 1).await.unwrap(), 1);
    assert_eq!(cells::build_once(&pool, 16).await.unwrap(), 0);
    first.commit().await.unwrap();
    assert_eq!(queued(&pool).await, 5);
    assert_eq!(cells::build_once(&pool, 16).await.unwrap(), 5);
    assert_cells_equal_plain_sums(&pool, &recorded).await;
}

async fn queued(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM ledger_cells_pending")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn cell_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM ledger_balance_cells")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The SQL function `ledger_balance` (one key, for ad-hoc SQL) adds the queue itself.
async fn assert_standalone_function_agrees(pool: &PgPool) {
    for ledger in LEDGERS {
        let truth = plain(pool, ledger, None, None).await;
        for (account, currency, want) in truth {
            let got: Decimal = sqlx::query_scalar(
                "SELECT ledger_balance($1, $2, $3, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
            )
            .bind(ledger)
            .bind(&account)
            .bind(&currency)
            .fetch_one(pool)
            .await
            .unwrap();
            assert_eq!(got, want, "ledger_balance({ledger}, {account}, {currency})");
        }
    }
}

/// A journal written before the minute cells (migration 20261122000900) existed: the migration
/// derives them from the journal, and every balance is still exact.
#[tokio::test]
async fn minute_cells_are_filled_in_for_an_existing_journal() {
    let (pool, _name) = fresh_database("balances_backfill").await.unwrap();
    // Every migration before the minute cells.
    MIGRATOR.run_to(20_261_122_000_899, &pool).await.unwrap();
    let recorded = post_recordings(&pool).await;
    let minute_cells = "SELECT count(*) FROM ledger_balance_cells WHERE grain = 'i'";
    let n: i64 = sqlx::query_scalar(minute_cells)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
    MIGRATOR.run(&pool).await.unwrap();
    let n: i64 = sqlx::query_scalar(minute_cells)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(n > 300, "{n} minute cells");
    assert_cells_equal_plain_sums(&pool, &recorded).await;
}

/// A ledger instance still running the old cell trigger while 20261122000900 ran (a rolling
/// upgrade) committed a recording without its minute cells: 20261122000902 recomputes them.
#[tokio::test]
async fn minute_cells_of_a_recording_racing_the_migration_are_recomputed() {
    let (pool, _name) = fresh_database("balances_race").await.unwrap();
    MIGRATOR.run_to(20_261_122_000_901, &pool).await.unwrap();
    let mut recorded = post_recordings(&pool).await;
    // The racing recording, written just now, two keys in the minute 01:03 of an hour the
    // interesting times query inside.
    let mut tx = pool.begin().await.unwrap();
    let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let id = Uuid::new_v5(&Uuid::NAMESPACE_OID, b"racing");
    let effective = Utc.with_ymd_and_hms(2026, 2, 1, 1, 3, 30).unwrap();
    insert_two_line_entry(
        &mut tx,
        id,
        "evt_race",
        effective,
        now,
        Decimal::new(555, 2),
    )
    .await;
    tx.commit().await.unwrap();
    recorded.push(now);
    // As the old trigger would have left it: no minute cell for one key (the other one kept,
    // as if a later statement of the same recording had seen the new trigger).
    let lost = sqlx::query(
        "DELETE FROM ledger_balance_cells \
         WHERE grain = 'i' AND recorded = $1 AND account = 'assets:stripe:pending'",
    )
    .bind(now)
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(lost.rows_affected(), 1);
    MIGRATOR.run(&pool).await.unwrap();
    let cells: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ledger_balance_cells WHERE grain = 'i' AND recorded = $1",
    )
    .bind(now)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(cells, 2);
    assert_cells_equal_plain_sums(&pool, &recorded).await;
}

async fn assert_cells_equal_plain_sums(pool: &PgPool, recorded: &[DateTime<Utc>]) {
    let mut effs: Vec<Option<DateTime<Utc>>> = vec![None];
    effs.extend(interesting_times().into_iter().map(Some));
    effs.extend([
        Some(t0() - Duration::days(1)),
        Some(t0() + Duration::days(17) + Duration::minutes(37)),
        Some(t0() + Duration::days(60)),
    ]);
    let mut recs: Vec<Option<DateTime<Utc>>> =
        vec![None, Some(t0()), Some(t0() + Duration::days(80))];
    for r in recorded {
        recs.extend([Some(*r - Duration::microseconds(1)), Some(*r)]);
    }

    let mut nonzero = 0;
    let mut compared = 0;
    for eff in &effs {
        for rec in &recs {
            for ledger in LEDGERS {
                let truth = plain(pool, ledger, *eff, *rec).await;
                // All accounts of the ledger at once, and each key alone.
                let all = balances(
                    pool,
                    &BalanceQuery {
                        ledger: ledger.into(),
                        effective_as_of: *eff,
                        recorded_as_of: *rec,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
                for account in ACCOUNTS {
                    for currency in CURRENCIES {
                        let want = truth
                            .iter()
                            .find(|(a, c, _)| a == account && c == currency)
                            .map(|t| t.2)
                            .unwrap_or_default();
                        let one = balances(
                            pool,
                            &BalanceQuery {
                                ledger: ledger.into(),
                                account: account.into(),
                                currency: currency.into(),
                                effective_as_of: *eff,
                                recorded_as_of: *rec,
                            },
                        )
                        .await
                        .unwrap();
                        let got = one.first().map(|b| b.amount).unwrap_or_default();
                        assert_eq!(
                            got, want,
                            "{ledger} {account} {currency} as of {eff:?} recorded {rec:?}"
                        );
                        let in_all = all
                            .iter()
                            .find(|b| b.account == account && b.currency == currency)
                            .map(|b| b.amount)
                            .unwrap_or_default();
                        assert_eq!(
                            in_all, want,
                            "all-accounts query, {ledger} {account} {currency}"
                        );
                        assert!(one.len() <= 1 && one.iter().all(|b| !b.amount.is_zero()));
                        compared += 1;
                        if !want.is_zero() {
                            nonzero += 1;
                        }
                    }
                }
            }
        }
    }
    // The comparison is not vacuous: most balances are not zero.
    assert!(nonzero > compared / 2, "{nonzero} of {compared} non-zero");
}

/// The per-row foreign keys became statement-level checks: a line without its entry and entry
/// metadata without its fact are still refused by the database.
#[tokio::test]
async fn lines_need_their_entry_and_metadata_its_fact() {
    let (pool, _name) = fresh_database("orphans").await.unwrap();
    MIGRATOR.run(&pool).await.unwrap();
    let ghost = Uuid::new_v5(&Uuid::NAMESPACE_OID, b"no such entry");
    let err = sqlx::query(
        "INSERT INTO journal_lines (entry_id, line_no, account, currency, amount) \
         VALUES ($1, 0, 'assets:bank', 'usd', 1), ($1, 1, 'income:revenue', 'usd', -1)",
    )
    .bind(ghost)
    .execute(&pool)
    .await
    .unwrap_err();
    let msg = err.as_database_error().unwrap().message().to_owned();
    assert!(msg.contains("does not exist"), "{msg}");
    assert!(msg.contains(&ghost.to_string()), "{msg}");

    let err = sqlx::query(
        "INSERT INTO ledger_entry_meta (entry_id, recorded_seq, fact_seq, chain, chain_seq, digest) \
         VALUES ($1, 1, 42, 'derived', 1, '\\x00')",
    )
    .bind(ghost)
    .execute(&pool)
    .await
    .unwrap_err();
    let msg = err.as_database_error().unwrap().message().to_owned();
    assert!(msg.contains("fact 42, which is not stored"), "{msg}");
    // Nothing was written.
    let lines: i64 = sqlx::query_scalar("SELECT count(*) FROM journal_lines")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(lines, 0);
}
