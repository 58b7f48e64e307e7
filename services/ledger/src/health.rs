//! Liveness and readiness (`GET /healthz`, `GET /readyz` beside `/metrics`): what an
//! orchestrator's probes and compose's health check ask (`ledgerline health URL`).
//!
//! Ready means the ledger can do its work now: its database answers, and its core state has
//! been rebuilt from the stored facts ([`crate::Engine::warm_up`], at start), so the next batch
//! is folded at once instead of after a replay of the whole history.

use std::sync::OnceLock;
use std::time::Duration;

/// How long `/readyz` waits for the database's answer.
pub const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the consumer reports of its start: once built, the stored facts replayed into the
/// core state.
#[derive(Debug, Default)]
pub struct Readiness(OnceLock<u64>);

impl Readiness {
    /// The core state is built: `facts` stored facts were replayed into it (the first report
    /// stands).
    pub fn core_state_built(&self, facts: u64) {
        let _ = self.0.set(facts);
    }

    /// `Some(facts replayed)` once the core state is built.
    pub fn built(&self) -> Option<u64> {
        self.0.get().copied()
    }
}

/// `/readyz`'s answer: `Ok(text)` when ready, `Err(reason)` otherwise.
pub async fn ready(readiness: &Readiness, pool: &sqlx::PgPool) -> Result<String, String> {
    let answered = tokio::time::timeout(
        DATABASE_TIMEOUT,
        sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(pool),
    )
    .await;
    match answered {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(format!("not ready: the database does not answer: {e}")),
        Err(_) => {
            return Err(format!(
                "not ready: the database did not answer within {} s",
                DATABASE_TIMEOUT.as_secs()
            ));
        }
    }
    match readiness.built() {
        Some(facts) => Ok(format!(
            "ready: the database answers; the core state was rebuilt from {facts} stored facts at start"
        )),
        None => Err("not ready: rebuilding the core state from the stored facts".to_owned()),
    }
}
