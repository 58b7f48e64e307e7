//! The transactional outbox: entries committed with their facts are published to
//! `ledger.entries.v1`, then deleted from the outbox once the broker acknowledged them.
//! At least once: a crash between the acknowledgement and the delete publishes a row again,
//! and consumers deduplicate by entry id. `FOR UPDATE SKIP LOCKED` lets several instances
//! publish side by side.

use std::time::Duration;

use futures::future::try_join_all;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::{PgPool, Row};
use tokio_util::sync::CancellationToken;

use crate::Error;

/// Publishes one batch of up to `limit` rows; returns how many.
pub async fn publish_once(
    pool: &PgPool,
    producer: &FutureProducer,
    topic: &str,
    limit: i64,
) -> Result<usize, Error> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query(
        "SELECT outbox_seq, record_key, payload FROM ledger_outbox \
         ORDER BY outbox_seq LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut seqs = Vec::with_capacity(rows.len());
    let mut records = Vec::with_capacity(rows.len());
    for r in &rows {
        seqs.push(r.try_get::<i64, _>(0)?);
        records.push((r.try_get::<String, _>(1)?, r.try_get::<Vec<u8>, _>(2)?));
    }
    try_join_all(records.iter().map(|(key, payload)| async move {
        producer
            .send(
                FutureRecord::to(topic).key(key).payload(payload),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| Error::Kafka(e))
    }))
    .await?;
    sqlx::query("DELETE FROM ledger_outbox WHERE outbox_seq = ANY($1)")
        .bind(&seqs)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(seqs.len())
}

/// Publishes until `shutdown`.
pub async fn run(
    pool: PgPool,
    producer: FutureProducer,
    topic: String,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    while !shutdown.is_cancelled() {
        match publish_once(&pool, &producer, &topic, 5000).await {
            Ok(0) => {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "outbox publishing failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    Ok(())
}
