//! Recorded times follow the recording order, whatever the clock does. A database clock that
//! was an hour ahead while half a world was folded, then stepped back (NTP, a VM moved), is
//! simulated by moving the stored entries' `recorded_at` an hour ahead by hand; the rest of the
//! world is then recorded after them, not before, so "the books as recorded by time T" is
//! always the books after some batch. Both stores.
#![allow(clippy::unwrap_used)]

mod ledger_support;

use ledger_support::*;
use ledgerline_bus::EmbeddedLog;
use ledgerline_ledger::consumer::fold_and_commit;
use ledgerline_ledger::engine::Engine;
use ledgerline_ledger::store::{PgStore, SqliteStore, Store};

/// Folds half a world, lets `clock_was_ahead` move what was recorded an hour ahead, folds the
/// rest, and returns each entry's (recorded_seq, recorded_at in µs, batch 1 or 2) as `read`
/// reads them.
async fn fold_around_a_clock_step<S: Store>(
    store: &S,
    clock_was_ahead: impl AsyncFnOnce(),
    read: impl AsyncFnOnce() -> Vec<(i64, i64)>,
) -> (Vec<(i64, i64)>, usize) {
    let (_world, facts) = world_facts(18, 400);
    let batch = in_records(&facts);
    let (first, second) = batch.split_at(batch.len() / 2);
    let dlq = EmbeddedLog::in_memory(1);
    let mut engine = Engine::new();
    let folded_first = fold_and_commit(store, &mut engine, &dlq, "g", first)
        .await
        .unwrap()
        .entries;
    assert!(folded_first > 0);
    clock_was_ahead().await;
    let folded_second = fold_and_commit(store, &mut engine, &dlq, "g", second)
        .await
        .unwrap()
        .entries;
    assert!(folded_second > 0);
    (read().await, folded_first)
}

fn assert_recorded_in_order(entries: &[(i64, i64)], first_batch: usize) {
    assert!(entries.len() > first_batch);
    assert!(
        entries.windows(2).all(|w| w[0].1 <= w[1].1),
        "recorded_at never goes back in recording order"
    );
    let last_of_first = entries[first_batch - 1].1;
    let first_of_second = entries[first_batch].1;
    assert!(
        first_of_second > last_of_first,
        "the second batch ({first_of_second} µs) is recorded after the first ({last_of_first} µs)"
    );
}

const HOUR_US: i64 = 3_600_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_times_follow_the_recording_order_in_postgresql() {
    let (pool, url) = fresh_db("recorded_time").await;
    let store = PgStore::connect(&url).await.unwrap();
    let (entries, first) = fold_around_a_clock_step(
        &store,
        async || {
            let mut conn = pool.acquire().await.unwrap();
            sqlx::query("SET session_replication_role = replica")
                .execute(&mut *conn)
                .await
                .unwrap();
            sqlx::query("UPDATE journal_entries SET recorded_at = recorded_at + interval '1 hour'")
                .execute(&mut *conn)
                .await
                .unwrap();
        },
        async || {
            sqlx::query_as(
                "SELECT m.recorded_seq, \
                        (extract(epoch FROM e.recorded_at) * 1000000)::bigint \
                   FROM ledger_entry_meta m JOIN journal_entries e USING (entry_id) \
                  ORDER BY m.recorded_seq",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
        },
    )
    .await;
    assert_recorded_in_order(&entries, first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_times_follow_the_recording_order_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("l.sqlite"))
        .await
        .unwrap();
    let pool = store.pool().clone();
    let (entries, first) = fold_around_a_clock_step(
        &store,
        async || {
            sqlx::query("DROP TRIGGER journal_entries_append_only_u")
                .execute(&pool)
                .await
                .unwrap();
            sqlx::query("UPDATE journal_entries SET recorded_at = recorded_at + ?")
                .bind(HOUR_US)
                .execute(&pool)
                .await
                .unwrap();
        },
        async || {
            sqlx::query_as(
                "SELECT m.recorded_seq, e.recorded_at \
                   FROM ledger_entry_meta m JOIN journal_entries e USING (entry_id) \
                  ORDER BY m.recorded_seq",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
        },
    )
    .await;
    assert_recorded_in_order(&entries, first);
}
