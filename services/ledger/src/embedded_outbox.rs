//! The embedded mode's outbox publisher: what [`crate::outbox`] does with PostgreSQL and Kafka,
//! over the SQLite store's `ledger_outbox` and the embedded log. Rows, oldest first, are
//! appended to `ledger.entries.v1` with the Kafka publisher's record key (`{ledger}/{entry id}`)
//! and payload (the `JournalEntry` protobuf), partitioned by the log as Kafka would (CRC32 of
//! the key), then deleted once the append resolved (with a data directory: fsynced).
//!
//! At least once: a crash between the append and the delete appends those rows again at the
//! next start, and consumers deduplicate by entry id; a row is never deleted before it is on
//! the log. Batches go in `outbox_seq` order and each batch is appended in that order, so
//! within a partition key records keep the order the ledger committed them. One publisher per
//! database: the embedded mode runs one ledger (a second publisher on the same file would
//! publish rows twice, never lose one).

use std::time::Duration;

use ledgerline_bus::{LogPublisher, OutRecord};
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::store::SqliteStore;

/// Rows per batch (one append, one delete).
pub const BATCH: i64 = 5000;
/// How long an idle publisher waits before it looks at the outbox again.
pub const IDLE_POLL: Duration = Duration::from_millis(50);

/// Publishes the `limit` oldest outbox rows to `topic` and deletes them; returns how many.
pub async fn publish_once<L: LogPublisher>(
    store: &SqliteStore,
    log: &L,
    topic: &str,
    limit: i64,
) -> Result<usize, Error> {
    let rows = store.outbox_batch(limit).await?;
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Ok(0);
    };
    let records: Vec<OutRecord<'_>> = rows
        .iter()
        .map(|r| OutRecord::new(topic, r.key.as_bytes(), &r.payload))
        .collect();
    log.publish(&records).await?;
    let deleted = store.delete_outbox(first.seq, last.seq).await?;
    if deleted != u64::try_from(rows.len()).unwrap_or(u64::MAX) {
        tracing::warn!(
            read = rows.len(),
            deleted,
            "the outbox changed under its publisher: is a second ledger running on this database?"
        );
    }
    Ok(rows.len())
}

/// Publishes until `shutdown` (a batch under way is finished first). An error ends it: the
/// embedded log fails only when its disk does, and SQLite has waited out its busy timeout
/// already, so retrying would hide the fault; `start_embedded`'s supervisor stops the ledger
/// and reports it. Rows left behind are published at the next start.
pub async fn run<L: LogPublisher + 'static>(
    store: SqliteStore,
    log: L,
    topic: String,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    while !shutdown.is_cancelled() {
        if publish_once(&store, &log, &topic, BATCH).await? == 0 {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(IDLE_POLL) => {}
            }
        }
    }
    Ok(())
}
