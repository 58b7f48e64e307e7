//! Durable ingester state in PostgreSQL (migration `20261122000100_ingester_cursors.sql`),
//! or in SQLite for the embedded mode (the same tables, `migrations/sqlite/`; the statements
//! in `store/sqlite.rs`).

mod sqlite;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::{PgPool, SqlitePool};

use crate::IngesterError;

#[derive(Debug, Clone)]
enum Db {
    Pg(PgPool),
    Sqlite(SqlitePool),
}

#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
}

impl Store {
    pub fn new(pool: PgPool) -> Store {
        Store { db: Db::Pg(pool) }
    }

    /// A store in SQLite (migrated by the caller with `migrations/sqlite/`).
    pub fn sqlite(pool: SqlitePool) -> Store {
        Store {
            db: Db::Sqlite(pool),
        }
    }

    /// The PostgreSQL pool (`None` in SQLite).
    pub fn pool(&self) -> Option<&PgPool> {
        match &self.db {
            Db::Pg(p) => Some(p),
            Db::Sqlite(_) => None,
        }
    }

    pub async fn cursor<T: DeserializeOwned>(
        &self,
        scope: &str,
        stream: &str,
    ) -> Result<Option<T>, IngesterError> {
        let pool = match &self.db {
            Db::Pg(p) => p,
            Db::Sqlite(p) => return sqlite::cursor(p, scope, stream).await,
        };
        let row: Option<(serde_json::Value,)> = sqlx::query_as(
            "SELECT position FROM ingester_cursors WHERE scope = $1 AND stream = $2",
        )
        .bind(scope)
        .bind(stream)
        .fetch_optional(pool)
        .await?;
        match row {
            None => Ok(None),
            Some((v,)) => Ok(serde_json::from_value(v).ok()),
        }
    }

    /// Call only after Kafka acknowledged everything `position` covers.
    pub async fn save_cursor<T: Serialize>(
        &self,
        scope: &str,
        stream: &str,
        position: &T,
    ) -> Result<(), IngesterError> {
        let pool = match &self.db {
            Db::Pg(p) => p,
            Db::Sqlite(p) => return sqlite::save_cursor(p, scope, stream, position).await,
        };
        let v =
            serde_json::to_value(position).map_err(|e| IngesterError::Internal(e.to_string()))?;
        sqlx::query(
            "INSERT INTO ingester_cursors (scope, stream, position, updated_at) VALUES ($1, $2, $3, now()) \
             ON CONFLICT (scope, stream) DO UPDATE SET position = EXCLUDED.position, updated_at = now()",
        )
        .bind(scope)
        .bind(stream)
        .bind(v)
        .execute(pool)
        .await?;
        Ok(())
    }

    pub async fn upsert_pending_bts(
        &self,
        scope: &str,
        rows: &[(String, i64, i64)],
    ) -> Result<(), IngesterError> {
        let pool = match &self.db {
            Db::Pg(p) => p,
            Db::Sqlite(p) => return sqlite::upsert_pending_bts(p, scope, rows).await,
        };
        if rows.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        let created: Vec<i64> = rows.iter().map(|r| r.1).collect();
        let avail: Vec<i64> = rows.iter().map(|r| r.2).collect();
        sqlx::query(
            "INSERT INTO ingester_pending_balance_transactions (scope, id, created, available_on) \
             SELECT $1, * FROM UNNEST($2::text[], $3::bigint[], $4::bigint[]) \
             ON CONFLICT (scope, id) DO UPDATE SET available_on = EXCLUDED.available_on",
        )
        .bind(scope)
        .bind(&ids)
        .bind(&created)
        .bind(&avail)
        .execute(pool)
        .await?;
        Ok(())
    }

    pub async fn delete_pending_bts(
        &self,
        scope: &str,
        ids: &[String],
    ) -> Result<(), IngesterError> {
        let pool = match &self.db {
            Db::Pg(p) => p,
            Db::Sqlite(p) => return sqlite::delete_pending_bts(p, scope, ids).await,
        };
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "DELETE FROM ingester_pending_balance_transactions WHERE scope = $1 AND id = ANY($2)",
        )
        .bind(scope)
        .bind(ids)
        .execute(pool)
        .await?;
        Ok(())
    }

    /// `(min created, min available_on, count)` of the pending set.
    pub async fn pending_bt_window(
        &self,
        scope: &str,
    ) -> Result<Option<(i64, i64, i64)>, IngesterError> {
        let pool = match &self.db {
            Db::Pg(p) => p,
            Db::Sqlite(p) => return sqlite::pending_bt_window(p, scope).await,
        };
        let row: (Option<i64>, Option<i64>, i64) = sqlx::query_as(
            "SELECT min(created), min(available_on), count(*) FROM ingester_pending_balance_transactions WHERE scope = $1",
        )
        .bind(scope)
        .fetch_one(pool)
        .await?;
        Ok(match row {
            (Some(c), Some(a), n) => Some((c, a, n)),
            _ => None,
        })
    }

    /// The transactions published as `pending`, with the `available_on` they were published
    /// with.
    pub async fn pending_bts(
        &self,
        scope: &str,
    ) -> Result<std::collections::HashMap<String, i64>, IngesterError> {
        let pool = match &self.db {
            Db::Pg(p) => p,
            Db::Sqlite(p) => return sqlite::pending_bts(p, scope).await,
        };
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT id, available_on FROM ingester_pending_balance_transactions WHERE scope = $1",
        )
        .bind(scope)
        .fetch_all(pool)
        .await?;
        Ok(rows.into_iter().collect())
    }

    pub async fn add_pending_payouts(
        &self,
        scope: &str,
        ids: &[String],
    ) -> Result<(), IngesterError> {
        let pool = match &self.db {
            Db::Pg(p) => p,
            Db::Sqlite(p) => return sqlite::add_pending_payouts(p, scope, ids).await,
        };
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO ingester_pending_payouts (scope, payout_id) SELECT $1, * FROM UNNEST($2::text[]) ON CONFLICT DO NOTHING",
        )
        .bind(scope)
        .bind(ids)
        .execute(pool)
        .await?;
        Ok(())
    }

    pub async fn pending_payouts(&self, scope: &str) -> Result<Vec<String>, IngesterError> {
        let pool = match &self.db {
            Db::Pg(p) => p,
            Db::Sqlite(p) => return sqlite::pending_payouts(p, scope).await,
        };
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT payout_id FROM ingester_pending_payouts WHERE scope = $1 ORDER BY payout_id LIMIT 500",
        )
        .bind(scope)
        .fetch_all(pool)
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    pub async fn done_payout(&self, scope: &str, id: &str) -> Result<(), IngesterError> {
        let pool = match &self.db {
            Db::Pg(p) => p,
            Db::Sqlite(p) => return sqlite::done_payout(p, scope, id).await,
        };
        sqlx::query("DELETE FROM ingester_pending_payouts WHERE scope = $1 AND payout_id = $2")
            .bind(scope)
            .bind(id)
            .execute(pool)
            .await?;
        Ok(())
    }

    pub async fn webhook_endpoint(
        &self,
        name: &str,
        mode: &str,
    ) -> Result<Option<(String, String, String)>, IngesterError> {
        let pool = match &self.db {
            Db::Pg(p) => p,
            Db::Sqlite(p) => return sqlite::webhook_endpoint(p, name, mode).await,
        };
        Ok(sqlx::query_as(
            "SELECT endpoint_id, url, secret FROM ingester_webhook_endpoints WHERE name = $1 AND mode = $2",
        )
        .bind(name)
        .bind(mode)
        .fetch_optional(pool)
        .await?)
    }

    pub async fn save_webhook_endpoint(
        &self,
        name: &str,
        mode: &str,
        id: &str,
        url: &str,
        secret: &str,
    ) -> Result<(), IngesterError> {
        let pool = match &self.db {
            Db::Pg(p) => p,
            Db::Sqlite(p) => {
                return sqlite::save_webhook_endpoint(p, name, mode, id, url, secret).await;
            }
        };
        sqlx::query(
            "INSERT INTO ingester_webhook_endpoints (name, mode, endpoint_id, url, secret) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name, mode) DO UPDATE SET endpoint_id = EXCLUDED.endpoint_id, url = EXCLUDED.url, secret = EXCLUDED.secret",
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
}
