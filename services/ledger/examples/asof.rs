//! As-of balance latency on a large journal.
//!
//! Bulk-loads `LINES` journal lines (default 10M) through the real schema (the migrations,
//! the balance and cell triggers, the cells builder) by `COPY`, one transaction per recording
//! batch, then times
//! single-key as-of balances (ledger, account, currency; effective and/or recorded time) with
//! the ledger's own query code (`ledgerline_ledger::balances`), and checks a sample of them
//! against a plain sum over the journal.
//!
//!     eval "$(scripts/test-services env)"
//!     cargo run --release -p ledgerline-ledger --example asof -- 10000000
//!
//! `ASOF_DB=name` keeps (or reuses, if already loaded) the database `name` instead of a
//! throw-away one; `ASOF_SEED=n` draws another set of queries (default 7).
//!
//! The data: 4 ledgers (one platform with 85% of the entries, three connected accounts),
//! charge / invoice / payment / availability / payout / refund / dispute shaped entries of 2–3
//! lines (≈2.45 lines an entry) over the rule set's accounts plus 20,000 customer receivable
//! accounts; usd 80%, eur 15%, gbp 5%; effective times spread over two years in recording
//! order with ±1 h jitter, 1% back-dated by up to 60 days; recorded in batches of 1,300
//! entries (one ledger batch of ~5,000 facts), each batch recorded 2 minutes after its latest
//! effective time.
#![allow(
    clippy::print_stderr,
    clippy::float_arithmetic,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, TimeZone as _, Utc};
use ledgerline_ledger::balances::{BalanceQuery, balances};
use rust_decimal::Decimal;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{ConnectOptions as _, Connection as _};

const LEDGERS: [&str; 4] = [
    "acct_bench_platform",
    "acct_bench_conn_a",
    "acct_bench_conn_b",
    "acct_bench_conn_c",
];
const CUSTOMERS: u64 = 20_000;
const BATCH_ENTRIES: u64 = 1_300;
const SPAN_SECS: i64 = 730 * 86_400;

/// splitmix64: deterministic and dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 11, 22, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

fn ledger_of(r: &mut Rng) -> &'static str {
    match r.below(100) {
        0..85 => LEDGERS[0],
        85..90 => LEDGERS[1],
        90..95 => LEDGERS[2],
        _ => LEDGERS[3],
    }
}

fn currency_of(r: &mut Rng) -> &'static str {
    match r.below(100) {
        0..80 => "usd",
        80..95 => "eur",
        _ => "gbp",
    }
}

fn cents(c: i64) -> String {
    Decimal::new(c, 2).to_string()
}

/// The lines of one entry: (rule, [(account, cents)]).
fn entry_lines(r: &mut Rng) -> (&'static str, Vec<(String, i64)>) {
    let x = 100 + i64::try_from(r.below(100_000)).unwrap_or(0);
    let cus = format!("assets:receivable:cus_{:05}", r.below(CUSTOMERS));
    match r.below(100) {
        0..30 => {
            let fee = x * 3 / 100 + 30;
            (
                "balance_transaction.charge",
                vec![
                    ("assets:stripe:pending".into(), x - fee),
                    ("expenses:stripe_fees:processing".into(), fee),
                    ("income:uninvoiced_sales".into(), -x),
                ],
            )
        }
        30..45 => {
            let tax = x / 10;
            (
                "invoice.finalized",
                vec![
                    (cus, x),
                    ("income:revenue".into(), -(x - tax)),
                    ("liabilities:tax".into(), -tax),
                ],
            )
        }
        45..60 => (
            "invoice.paid",
            vec![("assets:clearing:stripe_payments".into(), x), (cus, -x)],
        ),
        60..85 => (
            "balance_transaction.available",
            vec![
                ("assets:stripe:available".into(), x),
                ("assets:stripe:pending".into(), -x),
            ],
        ),
        85..90 => (
            "balance_transaction.payout",
            vec![
                ("assets:bank:in_transit".into(), x),
                ("assets:stripe:available".into(), -x),
            ],
        ),
        90..95 => (
            "balance_transaction.refund",
            vec![
                ("income:refunds".into(), x),
                ("assets:stripe:pending".into(), -x),
            ],
        ),
        _ => (
            "balance_transaction.dispute",
            vec![
                ("expenses:disputes".into(), x),
                ("assets:stripe:pending".into(), -x),
            ],
        ),
    }
}

/// Text COPY rows of one recording batch (entries, lines) and its line count.
fn batch(seed: u64, first: u64, n: u64, total: u64) -> (String, String, u64) {
    let mut r = Rng(seed ^ first.wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut entries = String::with_capacity(n as usize * 160);
    let mut lines = String::with_capacity(n as usize * 200);
    let mut count = 0;
    let mut rows = Vec::with_capacity(n as usize);
    let mut latest = i64::MIN;
    for i in first..first + n {
        let nominal = (i128::from(SPAN_SECS) * i128::from(i) / i128::from(total)) as i64;
        let jitter = i64::try_from(r.below(7_200)).unwrap_or(0) - 3_600;
        let mut eff = nominal + jitter;
        if r.below(100) == 0 {
            eff -= 3_600 + i64::try_from(r.below(60 * 86_400)).unwrap_or(0);
        }
        latest = latest.max(nominal + jitter);
        let ledger = ledger_of(&mut r);
        let currency = currency_of(&mut r);
        let (rule, ls) = entry_lines(&mut r);
        let id = uuid::Uuid::from_u64_pair(r.next(), r.next());
        rows.push((id, ledger, rule, eff, currency, ls, i));
    }
    let recorded = start() + chrono::Duration::seconds(latest.max(0) + 120);
    let recorded = recorded.to_rfc3339();
    for (id, ledger, rule, eff, currency, ls, i) in rows {
        let eff = (start() + chrono::Duration::seconds(eff)).to_rfc3339();
        let kind = if rule.starts_with("balance_transaction") {
            "balance_transaction"
        } else {
            "event"
        };
        let _ = writeln!(
            entries,
            "{id}\t{ledger}\t{rule}\t{kind}\tsrc_{i}\t{eff}\t{recorded}\t"
        );
        for (no, (account, c)) in ls.iter().enumerate() {
            let _ = writeln!(lines, "{id}\t{no}\t{account}\t{currency}\t{}", cents(*c));
            count += 1;
        }
    }
    (entries, lines, count)
}

async fn load(pool: &PgPool, lines_wanted: u64) -> anyhow::Result<()> {
    let total_entries = lines_wanted * 100 / 245; // ≈2.45 lines an entry
    let batches = total_entries.div_ceil(BATCH_ENTRIES);
    let t = Instant::now();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..2 {
        let pool = pool.clone();
        let next = next.clone();
        tasks.spawn(async move {
            let mut lines = 0u64;
            loop {
                let b = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if b >= batches {
                    break;
                }
                let first = b * BATCH_ENTRIES;
                let n = BATCH_ENTRIES.min(total_entries - first);
                let (e, l, c) = batch(42, first, n, total_entries);
                let mut tx = pool.begin().await?;
                // One writer at a time, as in the ledger (the cells' upserts would deadlock).
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(ledgerline_ledger::store::postgres::WRITER_LOCK)
                    .execute(&mut *tx)
                    .await?;
                let mut copy = tx
                    .copy_in_raw(
                        "COPY journal_entries (entry_id, ledger, rule, source_kind, source_id, \
                         effective_at, recorded_at, description) FROM STDIN",
                    )
                    .await?;
                copy.send(e.into_bytes()).await?;
                copy.finish().await?;
                let mut copy = tx
                    .copy_in_raw(
                        "COPY journal_lines (entry_id, line_no, account, currency, amount) FROM STDIN",
                    )
                    .await?;
                copy.send(l.into_bytes()).await?;
                copy.finish().await?;
                tx.commit().await?;
                // The cells are built behind the writer, as in the service.
                ledgerline_ledger::cells::build_once(&pool, ledgerline_ledger::cells::BUILD_ROWS)
                    .await?;
                lines += c;
                if b.is_multiple_of(500) {
                    eprintln!("  batch {b}/{batches}");
                }
            }
            anyhow::Ok(lines)
        });
    }
    let mut lines = 0;
    while let Some(r) = tasks.join_next().await {
        lines += r??;
    }
    let late = ledgerline_ledger::cells::build_all(pool).await?;
    eprintln!(
        "loaded {lines} lines in {batches} recordings in {:.1?} ({late} queued statements built after the load)",
        t.elapsed()
    );
    sqlx::query("VACUUM ANALYZE journal_entries")
        .execute(pool)
        .await?;
    sqlx::query("VACUUM ANALYZE journal_lines")
        .execute(pool)
        .await?;
    sqlx::query("VACUUM ANALYZE ledger_balance_cells")
        .execute(pool)
        .await?;
    sqlx::query("VACUUM ANALYZE ledger_balance_keys")
        .execute(pool)
        .await?;
    eprintln!("vacuumed in {:.1?}", t.elapsed());
    Ok(())
}

const ACCOUNTS: [&str; 11] = [
    "assets:stripe:pending",
    "assets:stripe:available",
    "assets:clearing:stripe_payments",
    "assets:bank:in_transit",
    "income:uninvoiced_sales",
    "income:revenue",
    "income:refunds",
    "liabilities:tax",
    "expenses:stripe_fees:processing",
    "expenses:disputes",
    "assets:receivable:cus_",
];

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let lines: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000_000);
    let queries: usize = std::env::args()
        .nth(2)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(2_000);
    let db_url = std::env::var("DATABASE_URL").context("DATABASE_URL")?;
    let keep = std::env::var("ASOF_DB").ok();
    let name = keep
        .clone()
        .unwrap_or_else(|| format!("asof{}", std::process::id()));
    let admin_opts: sqlx::postgres::PgConnectOptions = db_url.parse()?;
    let mut admin = admin_opts.connect().await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await?;
    }
    let url = format!(
        "{}/{name}",
        db_url.rsplit_once('/').map_or(db_url.as_str(), |(b, _)| b)
    );
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await?;
    ledgerline_ledger::MIGRATOR.run(&pool).await?;
    let have: i64 = sqlx::query_scalar("SELECT count(*) FROM journal_lines")
        .fetch_one(&pool)
        .await?;
    if have == 0 {
        load(&pool, lines).await?;
    } else {
        eprintln!("reusing {name}: {have} lines");
    }
    let (n_lines, n_cells): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM journal_lines), (SELECT count(*) FROM ledger_balance_cells)",
    )
    .fetch_one(&pool)
    .await?;
    eprintln!("journal: {n_lines} lines, {n_cells} balance cells");

    let (first_rec, last_rec): (DateTime<Utc>, DateTime<Utc>) =
        sqlx::query_as("SELECT min(recorded_at), max(recorded_at) FROM journal_entries")
            .fetch_one(&pool)
            .await?;
    let span = (last_rec - first_rec).num_seconds().max(1);
    // `ASOF_SEED` picks another set of queries (a re-run with the same seed finds their pages
    // still cached).
    let seed: u64 = std::env::var("ASOF_SEED")
        .ok()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(7);
    let mut r = Rng(seed);
    let mut cases = Vec::with_capacity(queries);
    for _ in 0..queries {
        let ledger = LEDGERS[0];
        let mut account = ACCOUNTS[r.below(ACCOUNTS.len() as u64) as usize].to_owned();
        if account.ends_with("cus_") {
            let _ = write!(account, "{:05}", r.below(CUSTOMERS));
        }
        let currency = currency_of(&mut r);
        let e = start() + chrono::Duration::seconds(i64::try_from(r.below(SPAN_SECS as u64))?);
        let rec = first_rec + chrono::Duration::seconds(i64::try_from(r.below(span as u64))?);
        // A third effective only, a third recorded only, a third both ("what did the books say
        // on R about E", R after E).
        let (eff, recd) = match r.below(3) {
            0 => (Some(e), None),
            1 => (None, Some(rec)),
            _ => {
                let lag = i64::try_from(r.below(90 * 86_400))?;
                (Some(e), Some(e + chrono::Duration::seconds(lag)))
            }
        };
        cases.push((ledger, account, currency, eff, recd));
    }
    // Warm-up, then timed.
    for (l, a, c, e, rr) in cases.iter().take(100) {
        let q = BalanceQuery {
            ledger: (*l).to_owned(),
            account: a.clone(),
            currency: (*c).to_owned(),
            effective_as_of: *e,
            recorded_as_of: *rr,
        };
        balances(&pool, &q).await?;
    }
    let mut times = Vec::with_capacity(cases.len());
    let t = Instant::now();
    for (l, a, c, e, rr) in &cases {
        let q = BalanceQuery {
            ledger: (*l).to_owned(),
            account: a.clone(),
            currency: (*c).to_owned(),
            effective_as_of: *e,
            recorded_as_of: *rr,
        };
        let s = Instant::now();
        balances(&pool, &q).await?;
        times.push(s.elapsed());
    }
    let wall = t.elapsed();
    // Per query shape, and per age of the time asked about (the older or the more recent half
    // of the two years).
    let middle = start() + chrono::Duration::seconds(SPAN_SECS / 2);
    let mut by_kind: std::collections::BTreeMap<String, Vec<Duration>> = Default::default();
    for ((_, a, _, e, rr), d) in cases.iter().zip(&times) {
        let kind = match (
            e.is_some(),
            rr.is_some(),
            a.starts_with("assets:receivable:"),
        ) {
            (true, false, false) => "effective only",
            (false, true, false) => "recorded only",
            (true, true, false) => "both",
            (_, _, true) => "a customer's receivable",
            (false, false, false) => "current",
        };
        let age = if e.or(*rr).is_some_and(|t| t < middle) {
            "old"
        } else {
            "recent"
        };
        by_kind.entry(kind.to_owned()).or_default().push(*d);
        by_kind
            .entry(format!("  {kind}, {age}"))
            .or_default()
            .push(*d);
    }
    let order = |k: &String| (k.trim_start().to_owned(), k.starts_with(' '));
    let mut kinds: Vec<_> = by_kind.into_iter().collect();
    kinds.sort_by_key(|(k, _)| order(k));
    for (kind, mut v) in kinds {
        v.sort();
        eprintln!(
            "  {kind}: {} queries, p50 {:.2?}, p99 {:.2?}, max {:.2?}",
            v.len(),
            percentile(&v, 0.5),
            percentile(&v, 0.99),
            v.last().copied().unwrap_or_default()
        );
    }
    times.sort();
    eprintln!(
        "{} as-of balances (one key each) in {wall:.2?}: p50 {:.2?}, p90 {:.2?}, p99 {:.2?}, max {:.2?}",
        times.len(),
        percentile(&times, 0.5),
        percentile(&times, 0.9),
        percentile(&times, 0.99),
        times.last().copied().unwrap_or_default()
    );

    // Correctness: a sample against a plain sum over the journal (slow on purpose).
    let mut checked = 0;
    for (l, a, c, e, rr) in cases.iter().step_by((cases.len() / 20).max(1)) {
        let q = BalanceQuery {
            ledger: (*l).to_owned(),
            account: a.clone(),
            currency: (*c).to_owned(),
            effective_as_of: *e,
            recorded_as_of: *rr,
        };
        let fast = balances(&pool, &q)
            .await?
            .first()
            .map(|b| b.amount)
            .unwrap_or_default();
        let slow: Option<Decimal> = sqlx::query_scalar(
            "SELECT sum(l.amount) FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id \
             WHERE e.ledger = $1 AND l.account = $2 AND l.currency = $3 \
               AND ($4::timestamptz IS NULL OR e.effective_at <= $4) \
               AND ($5::timestamptz IS NULL OR e.recorded_at <= $5)",
        )
        .bind(l)
        .bind(a)
        .bind(c)
        .bind(e)
        .bind(rr)
        .fetch_one(&pool)
        .await?;
        let slow = slow.unwrap_or_default();
        anyhow::ensure!(
            fast == slow,
            "balance of {l} {a} {c} as of {e:?} / {rr:?}: cells say {fast}, the journal {slow}"
        );
        checked += 1;
    }
    eprintln!("{checked} sampled balances equal a plain sum over the journal");
    pool.close().await;
    if keep.is_none() {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {name} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await?;
    }
    admin.close().await?;
    Ok(())
}
