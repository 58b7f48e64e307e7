//! PostgreSQL's own execution time by statement kind, from `pg_stat_statements` (loaded by
//! `scripts/test-services`): the time the server spent on each table's writes, which moves
//! much less than the rate on a busy machine, so an A/B of a schema or statement change reads
//! it here. Absent (the report says so) when the server was started without the module.

use sqlx::PgPool;

/// What the statements of one run are counted under, by the first table their text names.
const KINDS: [(&str, &str); 7] = [
    ("lines", "INTO journal_lines"),
    ("facts", "ledger_facts ("),
    ("entries", "INTO journal_entries"),
    ("entry meta", "INTO ledger_entry_meta"),
    ("outbox", "INTO ledger_outbox"),
    ("cells", "ledger_balance_cells"),
    ("cells queue", "ledger_cells_pending"),
];

/// Empties the statistics (of every database: the bench's own server) so that what `report`
/// reads is this run's; false if the module is not loaded.
pub(super) async fn reset(pool: &PgPool) -> bool {
    if sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .execute(pool)
        .await
        .is_err()
    {
        return false;
    }
    sqlx::query("SELECT pg_stat_statements_reset()")
        .execute(pool)
        .await
        .is_ok()
}

/// One line: µs of PostgreSQL execution a fact, by statement kind, largest first; `tracked`
/// is what [`reset`] answered (without it the statistics would not be this run's alone).
pub(super) async fn report(pool: &PgPool, tracked: bool, facts: usize) -> String {
    const ABSENT: &str = "PostgreSQL time by statement: pg_stat_statements is not loaded \
                          (scripts/test-services loads it when the server has it)";
    if !tracked {
        return ABSENT.to_owned();
    }
    let rows: Result<Vec<(String, f64)>, sqlx::Error> = sqlx::query_as(
        "SELECT query, total_exec_time FROM pg_stat_statements \
          WHERE toplevel AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_all(pool)
    .await;
    let Ok(rows) = rows else {
        return ABSENT.to_owned();
    };
    let mut ms: Vec<(&str, f64)> = KINDS.iter().map(|(name, _)| (*name, 0.0)).collect();
    let mut other = 0.0;
    for (query, took) in &rows {
        match KINDS.iter().position(|(_, text)| query.contains(text)) {
            Some(i) => ms[i].1 += took,
            None => other += took,
        }
    }
    ms.push(("other", other));
    ms.retain(|(_, t)| *t > 0.0);
    ms.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total: f64 = ms.iter().map(|(_, t)| t).sum();
    let per_fact = |t: f64| t * 1000.0 / facts as f64;
    format!(
        "PostgreSQL time a fact by statement (pg_stat_statements, the fold): {:.1} µs ({})",
        per_fact(total),
        ms.iter()
            .map(|(name, t)| format!("{name} {:.1}", per_fact(*t)))
            .collect::<Vec<_>>()
            .join(", ")
    )
}
