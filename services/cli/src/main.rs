//! `ledgerline`: the thin binary over the `ledgerline_cli` library.
//!
//! To add a subcommand: a module with a clap `Args` struct and its `run`, a variant below and
//! its arm in `run`.

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ledgerline_cli::demo::DemoArgs;
use ledgerline_cli::export::ExportArgs;
use ledgerline_cli::health::HealthArgs;
use ledgerline_cli::query::{
    BalancesArgs, EntriesArgs, EntryArgs, StatementArgs, TrialBalanceArgs, VerifyArgs,
};
use ledgerline_cli::run::RunArgs;
use ledgerline_cli::{Error, Outcome, Remote};

/// Ledgerline: a ledger for companies that sell through Stripe.
///
/// The query subcommands talk to a running ledger's gRPC API (`--addr`, or LEDGERLINE_ADDR)
/// with the bearer token in LEDGERLINE_TOKEN.
#[derive(Debug, Parser)]
#[command(name = "ledgerline", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Balances of one account or of all, as of an effective and/or a recorded time.
    Balances(BalancesArgs),
    /// Every non-zero balance of one ledger with the per-currency totals (exit 2 if unbalanced).
    TrialBalance(TrialBalanceArgs),
    /// Entries by account, effective-time range or source, in recording order (all pages).
    Entries(EntriesArgs),
    /// One entry with its lines and the raw Stripe fact behind it.
    Entry(EntryArgs),
    /// An account's lines in one currency with the running balance (all pages).
    Statement(StatementArgs),
    /// Recompute every hash chain; names the first bad entry (exit 2 if one is bad).
    Verify(VerifyArgs),
    /// Entries as CSV, one row per line, to standard output or --output.
    Export(ExportArgs),
    /// Everything in one process over a simulated Stripe account: stripe-sim, the ingester,
    /// the embedded log and the ledger (SQLite); prints the trial balance and compares the
    /// books with the simulator's ground truth (exit 2 if they disagree).
    Demo(DemoArgs),
    /// The same embedded pipeline against a real Stripe account (key in STRIPE_API_KEY, test
    /// or live mode from the key); compares the books with Stripe's /v1/balance (exit 2 if
    /// they differ).
    Run(RunArgs),
    /// Probe a service: http://host:port/path (2xx) or grpc://host:port (gRPC health SERVING);
    /// exit 0 ready, 2 answering but not ready, 1 no answer. Compose's health checks run it.
    Health(HealthArgs),
}

async fn run(command: Command, out: &mut dyn std::io::Write) -> Result<Outcome, Error> {
    match command {
        Command::Balances(a) => a.run(&Remote::from_args(&a.remote).await?, out).await,
        Command::TrialBalance(a) => a.run(&Remote::from_args(&a.remote).await?, out).await,
        Command::Entries(a) => a.run(&Remote::from_args(&a.remote).await?, out).await,
        Command::Entry(a) => a.run(&Remote::from_args(&a.remote).await?, out).await,
        Command::Statement(a) => a.run(&Remote::from_args(&a.remote).await?, out).await,
        Command::Verify(a) => a.run(&Remote::from_args(&a.remote).await?, out).await,
        Command::Export(a) => a.run(&Remote::from_args(&a.remote).await?, out).await,
        Command::Demo(a) => a.run(out).await,
        Command::Run(a) => a.run(out).await,
        Command::Health(a) => a.run(out).await,
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Demo(_) | Command::Run(_)) {
        // Warnings of the embedded services (RUST_LOG=… for more) go to standard error.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_writer(std::io::stderr)
            .try_init();
    }
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let result = run(cli.command, &mut out).await;
    let flushed = out.flush();
    match (result, flushed) {
        (Ok(Outcome::Ok), Ok(())) => ExitCode::SUCCESS,
        (Ok(Outcome::Failed), Ok(())) => ExitCode::from(2),
        // `ledgerline export | head`: the reader is gone, nothing to report.
        (Err(Error::Io(e)), _) | (_, Err(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        (Err(e), _) => {
            let _ = writeln!(std::io::stderr(), "ledgerline: {e}");
            ExitCode::FAILURE
        }
        (_, Err(e)) => {
            let _ = writeln!(std::io::stderr(), "ledgerline: writing the output: {e}");
            ExitCode::FAILURE
        }
    }
}
