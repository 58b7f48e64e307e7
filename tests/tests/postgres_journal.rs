//! Proof that the migrations run with sqlx against the real PostgreSQL, and that the journal
//! tables enforce their invariants themselves: balanced per currency, at least two lines,
//! no zero lines, append-only, exact decimals.
#![allow(clippy::unwrap_used)]

use chrono::{TimeZone, Utc};
use ledgerline_tests::{MIGRATOR, fresh_database};
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

async fn post(pool: &PgPool, lines: &[(&str, &str, &str)]) -> Result<Uuid, sqlx::Error> {
    let entry_id = Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("{lines:?}").as_bytes());
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO journal_entries (entry_id, ledger, rule, source_kind, source_id, effective_at)
         VALUES ($1, 'acct_test', 'test.rule', 'event', 'evt_1', $2)",
    )
    .bind(entry_id)
    .bind(Utc.with_ymd_and_hms(2026, 3, 3, 12, 0, 0).unwrap())
    .execute(&mut *tx)
    .await?;
    let line_no: Vec<i32> = (0..i32::try_from(lines.len()).unwrap()).collect();
    let accounts: Vec<&str> = lines.iter().map(|l| l.0).collect();
    let currencies: Vec<&str> = lines.iter().map(|l| l.1).collect();
    let amounts: Vec<Decimal> = lines.iter().map(|l| l.2.parse().unwrap()).collect();
    sqlx::query(
        "INSERT INTO journal_lines (entry_id, line_no, account, currency, amount)
         SELECT $1, * FROM UNNEST($2::int[], $3::text[], $4::text[], $5::numeric[])",
    )
    .bind(entry_id)
    .bind(&line_no)
    .bind(&accounts)
    .bind(&currencies)
    .bind(&amounts)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(entry_id)
}

fn db_message(err: sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => db.message().to_string(),
        other => panic!("expected a database error, got {other}"),
    }
}

#[tokio::test]
async fn migrations_run_and_the_journal_enforces_its_invariants() {
    let (pool, _name) = fresh_database("journal").await.unwrap();
    MIGRATOR.run(&pool).await.unwrap();
    // Running them again (every service does at start) changes nothing.
    MIGRATOR.run(&pool).await.unwrap();

    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
          WHERE table_schema = 'public' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for table in ["consumer_offsets", "journal_entries", "journal_lines"] {
        assert!(
            tables.iter().any(|t| t == table),
            "{table} missing: {tables:?}"
        );
    }

    // A balanced two-currency entry (an EUR payment settled in USD through the conversion pair).
    let ok = post(
        &pool,
        &[
            ("assets:stripe:pending", "usd", "10.86"),
            ("equity:conversion", "usd", "-10.86"),
            ("equity:conversion", "eur", "10.00"),
            ("assets:clearing:stripe_payments", "eur", "-10.00"),
        ],
    )
    .await
    .unwrap();

    // Exact decimals: 0.1 + 0.2 is 0.3, not 0.30000000000000004.
    let tiny = post(
        &pool,
        &[
            ("a", "usd", "0.1"),
            ("b", "usd", "0.2"),
            ("c", "usd", "-0.3"),
        ],
    )
    .await
    .unwrap();
    let sum: Decimal = sqlx::query_scalar(
        "SELECT sum(amount) FROM journal_lines WHERE entry_id = $1 AND amount > 0",
    )
    .bind(tiny)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(sum, "0.3".parse::<Decimal>().unwrap());

    // Unbalanced in one currency, although the grand total is zero: refused, nothing kept.
    let err = post(&pool, &[("a", "usd", "10.00"), ("b", "eur", "-10.00")])
        .await
        .unwrap_err();
    assert!(db_message(err).contains("does not balance"));

    let err = post(&pool, &[("a", "usd", "5.00"), ("b", "usd", "-4.99")])
        .await
        .unwrap_err();
    assert!(db_message(err).contains("does not balance in usd"));

    let err = post(&pool, &[("a", "usd", "0")]).await.unwrap_err();
    assert!(db_message(err).contains("journal_lines_amount_check"));

    let err = post(&pool, &[("a", "USD", "1"), ("b", "USD", "-1")])
        .await
        .unwrap_err();
    assert!(db_message(err).contains("journal_lines_currency_check"));

    // Refused entries left nothing behind.
    let entries: i64 = sqlx::query_scalar("SELECT count(*) FROM journal_entries")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(entries, 2);

    // Append-only: no update, delete or truncate, even of a balanced entry.
    let err = sqlx::query("UPDATE journal_lines SET amount = amount * 2 WHERE entry_id = $1")
        .bind(ok)
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(db_message(err).contains("append-only"));
    let err = sqlx::query("DELETE FROM journal_entries WHERE entry_id = $1")
        .bind(ok)
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(db_message(err).contains("append-only"));
    let err = sqlx::query("TRUNCATE journal_lines, journal_entries")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(db_message(err).contains("append-only"));
}

/// An entry's lines come in one statement, numbered 0..n-1: a stored entry cannot gain lines
/// later (not even balanced ones), and the checks hold for a statement of many entries.
#[tokio::test]
async fn an_entry_gets_all_its_lines_in_one_statement() {
    let (pool, _name) = fresh_database("journal_lines_once").await.unwrap();
    MIGRATOR.run(&pool).await.unwrap();
    let ok = post(&pool, &[("a", "usd", "1.00"), ("b", "usd", "-1.00")])
        .await
        .unwrap();

    // Two more lines that balance among themselves, added by a later statement: refused.
    let err = sqlx::query(
        "INSERT INTO journal_lines (entry_id, line_no, account, currency, amount) \
         VALUES ($1, 2, 'c', 'usd', 5), ($1, 3, 'd', 'usd', -5)",
    )
    .bind(ok)
    .execute(&pool)
    .await
    .unwrap_err();
    let message = db_message(err);
    assert!(message.contains("in one statement"), "{message}");
    assert!(message.contains(&ok.to_string()), "{message}");

    // A gap in the numbering is refused too; a single line never balances (no line is zero).
    let err = post_numbered(&pool, "gap", &[(0, "a", "2"), (2, "b", "-2")])
        .await
        .unwrap_err();
    assert!(db_message(err).contains("numbered 0 to n-1"));
    let err = post_numbered(&pool, "single", &[(0, "a", "2")])
        .await
        .unwrap_err();
    assert!(db_message(err).contains("does not balance in usd"));

    // Many entries in one statement: the unbalanced one among good ones is named.
    let mut tx = pool.begin().await.unwrap();
    let ids: Vec<Uuid> = (0..50)
        .map(|i| Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("bulk{i}").as_bytes()))
        .collect();
    sqlx::query(
        "INSERT INTO journal_entries (entry_id, ledger, rule, source_kind, source_id, effective_at) \
         SELECT i, 'acct_test', 'test.rule', 'event', 'evt_bulk', '2026-03-03 12:00:00+00' \
           FROM unnest($1::uuid[]) AS i",
    )
    .bind(&ids)
    .execute(&mut *tx)
    .await
    .unwrap();
    let err = sqlx::query(
        "INSERT INTO journal_lines (entry_id, line_no, account, currency, amount) \
         SELECT i, n, CASE n WHEN 0 THEN 'a' ELSE 'b' END, 'usd', \
                CASE WHEN n = 0 THEN 3 WHEN i = $2 THEN -2 ELSE -3 END \
           FROM unnest($1::uuid[]) AS i CROSS JOIN generate_series(0, 1) AS n",
    )
    .bind(&ids)
    .bind(ids[37])
    .execute(&mut *tx)
    .await
    .unwrap_err();
    let message = db_message(err);
    assert!(
        message.contains(&format!(
            "journal entry {} does not balance in usd",
            ids[37]
        )),
        "{message}"
    );
    tx.rollback().await.unwrap();

    // Nothing of the refused statements was kept.
    let lines: i64 = sqlx::query_scalar("SELECT count(*) FROM journal_lines")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(lines, 2);
}

/// One entry with lines numbered as given (`post` numbers them 0..n-1).
async fn post_numbered(
    pool: &PgPool,
    name: &str,
    lines: &[(i32, &str, &str)],
) -> Result<Uuid, sqlx::Error> {
    let entry_id = Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes());
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO journal_entries (entry_id, ledger, rule, source_kind, source_id, effective_at)
         VALUES ($1, 'acct_test', 'test.rule', 'event', 'evt_1', '2026-03-03 12:00:00+00')",
    )
    .bind(entry_id)
    .execute(&mut *tx)
    .await?;
    let numbers: Vec<i32> = lines.iter().map(|l| l.0).collect();
    let accounts: Vec<&str> = lines.iter().map(|l| l.1).collect();
    let amounts: Vec<Decimal> = lines.iter().map(|l| l.2.parse().unwrap()).collect();
    sqlx::query(
        "INSERT INTO journal_lines (entry_id, line_no, account, currency, amount) \
         SELECT $1, n, a, 'usd', m FROM UNNEST($2::int[], $3::text[], $4::numeric[]) AS x(n, a, m)",
    )
    .bind(entry_id)
    .bind(&numbers)
    .bind(&accounts)
    .bind(&amounts)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(entry_id)
}
