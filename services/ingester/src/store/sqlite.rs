//! The ingester's state in SQLite: the statements of the parent module, one row at a time.

use std::collections::HashMap;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::SqlitePool;

use crate::IngesterError;

pub(super) async fn cursor<T: DeserializeOwned>(
    pool: &SqlitePool,
    scope: &str,
    stream: &str,
) -> Result<Option<T>, IngesterError> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT position FROM ingester_cursors WHERE scope = ? AND stream = ?")
            .bind(scope)
            .bind(stream)
            .fetch_optional(pool)
            .await?;
    Ok(row.and_then(|(v,)| serde_json::from_str(&v).ok()))
}

pub(super) async fn save_cursor<T: Serialize>(
    pool: &SqlitePool,
    scope: &str,
    stream: &str,
    position: &T,
) -> Result<(), IngesterError> {
    let v = serde_json::to_string(position).map_err(|e| IngesterError::Internal(e.to_string()))?;
    sqlx::query(
        "INSERT INTO ingester_cursors (scope, stream, position, updated_at) VALUES (?, ?, ?, unixepoch()) \
         ON CONFLICT (scope, stream) DO UPDATE SET position = excluded.position, updated_at = unixepoch()",
    )
    .bind(scope)
    .bind(stream)
    .bind(v)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn upsert_pending_bts(
    pool: &SqlitePool,
    scope: &str,
    rows: &[(String, i64, i64)],
) -> Result<(), IngesterError> {
    let mut tx = pool.begin().await?;
    for (id, created, available_on) in rows {
        sqlx::query(
            "INSERT INTO ingester_pending_balance_transactions (scope, id, created, available_on) \
             VALUES (?, ?, ?, ?) ON CONFLICT (scope, id) DO UPDATE SET available_on = excluded.available_on",
        )
        .bind(scope)
        .bind(id)
        .bind(created)
        .bind(available_on)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn delete_pending_bts(
    pool: &SqlitePool,
    scope: &str,
    ids: &[String],
) -> Result<(), IngesterError> {
    let mut tx = pool.begin().await?;
    for id in ids {
        sqlx::query("DELETE FROM ingester_pending_balance_transactions WHERE scope = ? AND id = ?")
            .bind(scope)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn pending_bt_window(
    pool: &SqlitePool,
    scope: &str,
) -> Result<Option<(i64, i64, i64)>, IngesterError> {
    let row: (Option<i64>, Option<i64>, i64) = sqlx::query_as(
        "SELECT min(created), min(available_on), count(*) FROM ingester_pending_balance_transactions WHERE scope = ?",
    )
    .bind(scope)
    .fetch_one(pool)
    .await?;
    Ok(match row {
        (Some(c), Some(a), n) => Some((c, a, n)),
        _ => None,
    })
}

pub(super) async fn pending_bts(
    pool: &SqlitePool,
    scope: &str,
) -> Result<HashMap<String, i64>, IngesterError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT id, available_on FROM ingester_pending_balance_transactions WHERE scope = ?",
    )
    .bind(scope)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

pub(super) async fn add_pending_payouts(
    pool: &SqlitePool,
    scope: &str,
    ids: &[String],
) -> Result<(), IngesterError> {
    let mut tx = pool.begin().await?;
    for id in ids {
        sqlx::query(
            "INSERT INTO ingester_pending_payouts (scope, payout_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(scope)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn pending_payouts(
    pool: &SqlitePool,
    scope: &str,
) -> Result<Vec<String>, IngesterError> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT payout_id FROM ingester_pending_payouts WHERE scope = ? ORDER BY payout_id LIMIT 500",
    )
    .bind(scope)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

pub(super) async fn done_payout(
    pool: &SqlitePool,
    scope: &str,
    id: &str,
) -> Result<(), IngesterError> {
    sqlx::query("DELETE FROM ingester_pending_payouts WHERE scope = ? AND payout_id = ?")
        .bind(scope)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn webhook_endpoint(
    pool: &SqlitePool,
    name: &str,
    mode: &str,
) -> Result<Option<(String, String, String)>, IngesterError> {
    Ok(sqlx::query_as(
        "SELECT endpoint_id, url, secret FROM ingester_webhook_endpoints WHERE name = ? AND mode = ?",
    )
    .bind(name)
    .bind(mode)
    .fetch_optional(pool)
    .await?)
}

pub(super) async fn save_webhook_endpoint(
    pool: &SqlitePool,
    name: &str,
    mode: &str,
    id: &str,
    url: &str,
    secret: &str,
) -> Result<(), IngesterError> {
    sqlx::query(
        "INSERT INTO ingester_webhook_endpoints (name, mode, endpoint_id, url, secret) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (name, mode) DO UPDATE SET endpoint_id = excluded.endpoint_id, url = excluded.url, secret = excluded.secret",
    )
    .bind(name)
    .bind(mode)
    .bind(id)
    .bind(url)
    .bind(secret)
    .execute(pool)
    .await?;
    Ok(())
}
