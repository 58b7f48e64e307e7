//! The balance-cells builder: adds the postings the writer queued (`ledger_cells_pending`,
//! migration `20261123000100`) to their balance cells, beside the writer instead of inside its
//! transaction. Every ledger instance runs one; the database lets one build at a time (the
//! others' calls return 0). As-of balances are exact whether or not it has caught up
//! ([`crate::balances`] adds what is still queued); it only keeps the queue short, so that a
//! query's pass over the queue stays cheap.

use std::time::Duration;

use sqlx::{PgExecutor, PgPool};
use tokio_util::sync::CancellationToken;

use crate::Error;

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
/// the queue, in one transaction; returns how many it took (0: the queue is empty or another
/// builder is at work).
pub async fn build_once<'e, E: PgExecutor<'e>>(exec: E, max_rows: i32) -> Result<i32, Error> {
    Ok(sqlx::query_scalar("SELECT ledger_cells_build($1)")
        .bind(max_rows)
        .fetch_one(exec)
        .await?)
}

/// Builds until the queue is empty; returns how many queued statements it took. (For tools
/// and tests; the service runs [`run`].)
pub async fn build_all(pool: &PgPool) -> Result<i64, Error> {
    let mut total = 0;
    loop {
        let n = build_once(pool, BUILD_ROWS).await?;
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

/// Builds until `shutdown`, when the queue holds [`BUILD_AT`] statements or its oldest has
/// waited [`MAX_WAIT`]. A failed build (the database restarting, say) rolled back as a whole,
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
