//! The `ledgerline` command-line tool, as a library: every subcommand is a clap `Args` struct
//! with an async `run` that writes its output to any [`std::io::Write`], so tests drive the
//! same code the binary runs.
//!
//! - [`remote`]: the connection to a running ledger's `LedgerQuery` gRPC API (address, bearer
//!   token from `LEDGERLINE_TOKEN`, gRPC statuses mapped to messages that say what to do);
//! - [`query`]: `balances`, `trial-balance`, `entries`, `entry`, `statement`, `verify`;
//! - [`export`]: `export`, entries as CSV (one row per line, exact decimal amounts);
//! - [`health`]: `health URL`, the probe of compose's health checks (HTTP or gRPC health);
//! - [`demo`]: `demo`, stripe-sim + ingester + embedded log + SQLite ledger in one process,
//!   checked against the simulator's ground truth; [`run`]: `run`, the same against a real
//!   Stripe key, checked against Stripe's `/v1/balance`; [`embedded`]: that pipeline.
//!
//! Architecture invariant: the query subcommands are clients of the public gRPC contract
//! (`proto/`) only — they never read a ledger's database (`demo` and `run` embed their own
//! ledger and read it); a token or API key never reaches an output, a log or an error.

pub mod demo;
pub mod embedded;
pub mod export;
pub mod health;
pub mod query;
pub mod remote;
pub mod run;
pub mod time;

pub use remote::{Remote, RemoteArgs, Token};

/// Everything a subcommand can fail with; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The ledger could not be reached at all.
    #[error(
        "cannot connect to the ledger at {addr}: {reason}. Is it running? Check --addr (or LEDGERLINE_ADDR)."
    )]
    Connect { addr: String, reason: String },
    /// The ledger answered with a gRPC error status.
    #[error("{message}")]
    Rpc { code: tonic::Code, message: String },
    /// A command-line value is not usable.
    #[error("{0}")]
    Usage(String),
    /// The ledger's answer is not what its contract says.
    #[error("the ledger's answer is malformed: {0}")]
    Malformed(String),
    #[error("writing the output: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The gRPC status code, when the ledger answered with one.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            Error::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// What a finished subcommand found: `Failed` for checks that did not pass (a chain that
/// does not verify, an unbalanced trial balance); the binary exits 2 on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Failed,
}
