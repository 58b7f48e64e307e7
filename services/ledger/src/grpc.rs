//! The `LedgerQuery` gRPC API.

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::Error;

/// What a bearer token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Read everything.
    Auditor,
    /// Read everything (and, later, operate).
    Admin,
    /// Any other role: authenticated, but may call nothing here.
    Other,
}

/// Serves until `shutdown`.
pub async fn serve(
    _pool: PgPool,
    _tokens: Vec<(String, Role)>,
    _listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    shutdown.cancelled().await;
    Ok(())
}
