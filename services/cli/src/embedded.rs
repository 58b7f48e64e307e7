//! The embedded pipeline shared by `demo` and `run`: the ingester publishing to the embedded
//! log, the ledger folding that log into SQLite, all in this process, with their data under
//! one directory (`log/`, `ledger.sqlite`, `ingester.sqlite`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ledgerline_bus::{EmbeddedLog, Topics};
use ledgerline_core::Account;
use ledgerline_ingester::{AccountConfig, IngesterConfig};
use ledgerline_ledger::store::{BalanceQuery, BalanceRow, SqliteStore, Store as _};
use ledgerline_ledger::{EmbeddedConfig, EmbeddedRunning, StripeMode};
use ledgerline_stripe::{ClientConfig, WebhookSecret};
use rust_decimal::Decimal;
use tokio_util::sync::CancellationToken;

use crate::Error;

/// Partitions of the embedded topics.
pub const PARTITIONS: i32 = 3;
/// The ledger's consumer group on the embedded log.
pub const GROUP: &str = "ledgerline-ledger";

/// Where the embedded ledger serves `LedgerQuery`, and its bearer tokens with their roles.
pub type GrpcServing = (std::net::SocketAddr, Vec<(String, ledgerline_ledger::Role)>);

/// What to run.
#[derive(Debug)]
pub struct PipelineConfig {
    pub data_dir: PathBuf,
    pub client: ClientConfig,
    /// The platform account (`acct_…`): the ledger of its facts.
    pub platform_account: String,
    pub webhook_secrets: Vec<WebhookSecret>,
    /// Where the ingester listens for webhooks (port 0 picks one).
    pub listen: std::net::SocketAddr,
    pub poll_interval: Duration,
    /// Serve the `LedgerQuery` gRPC API here, with these bearer tokens.
    pub grpc: Option<GrpcServing>,
}

/// A running pipeline.
#[derive(Debug)]
pub struct Pipeline {
    pub log: EmbeddedLog,
    pub store: SqliteStore,
    pub topics: Topics,
    pub shutdown: CancellationToken,
    ledger: EmbeddedRunning,
    ingester: ledgerline_ingester::Running,
}

fn failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Usage(format!("{what}: {e}"))
}

/// The gRPC serving of a `--grpc-addr`: the `LedgerQuery` API at `addr`, with the bearer token
/// in `LEDGERLINE_TOKEN` as the one auditor (the token the query subcommands send). `None`
/// when no address is given; an error naming the variable when the token is missing.
pub fn auditor_grpc(addr: Option<std::net::SocketAddr>) -> Result<Option<GrpcServing>, Error> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let token = std::env::var(crate::remote::TOKEN_ENV)
        .ok()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Error::Usage(format!(
                "--grpc-addr needs a bearer token in {}",
                crate::remote::TOKEN_ENV
            ))
        })?;
    // Validated like the query subcommands' token.
    let _ = crate::Token::from_env()?;
    Ok(Some((
        addr,
        vec![(token, ledgerline_ledger::Role::Auditor)],
    )))
}

impl Pipeline {
    /// Opens the data directory and starts the ledger, then the ingester.
    pub async fn start(config: PipelineConfig) -> Result<Pipeline, Error> {
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir).map_err(|e| {
            failed(
                &format!("cannot create the data directory {}", dir.display()),
                e,
            )
        })?;
        let log = EmbeddedLog::open(dir.join("log"), PARTITIONS)
            .map_err(|e| failed("cannot open the embedded log", e))?;
        let topics = Topics::default();
        for t in [
            topics.stripe_events(),
            topics.stripe_balance_transactions(),
            topics.stripe_payouts(),
        ] {
            log.create_topic(&t, PARTITIONS)
                .map_err(|e| failed("cannot create a topic", e))?;
        }
        let store = SqliteStore::open(&dir.join("ledger.sqlite"))
            .await
            .map_err(|e| failed("cannot open the ledger's SQLite database", e))?;
        let shutdown = CancellationToken::new();
        let ledger = ledgerline_ledger::start_embedded(
            store.clone(),
            log.clone(),
            EmbeddedConfig {
                topics: topics.clone(),
                group_id: GROUP.into(),
                partitions: PARTITIONS,
                grpc_addr: config.grpc.as_ref().map(|g| g.0),
                tokens: config.grpc.map(|g| g.1).unwrap_or_default(),
                // The key's mode: the ingester publishes that mode's facts only.
                stripe_mode: StripeMode::of_livemode(config.client.key.mode().is_live()),
                ..EmbeddedConfig::default()
            },
            shutdown.clone(),
        )
        .await
        .map_err(|e| match e {
            // The mode comes from the key here, not from LEDGERLINE_STRIPE_MODE.
            ledgerline_ledger::Error::StripeModeMismatch { bound, configured } => {
                Error::Usage(format!(
                    "the data directory {} holds the books of Stripe's {bound} mode, and this \
                     is a {configured}-mode key: use a {bound}-mode key with this directory, or \
                     another --data-dir for {configured} mode",
                    dir.display()
                ))
            }
            e => failed("the ledger did not start", e),
        })?;
        let account = AccountConfig {
            name: "default".into(),
            client: config.client,
            platform_account: config.platform_account,
            connected_accounts: Vec::new(),
            discover_connected: true,
            webhook_secrets: config.webhook_secrets,
            register_webhook_url: None,
        };
        let mut ic = IngesterConfig::new(
            ledgerline_bus::KafkaConfig::new("unused:9092", "ledgerline-embedded"),
            sqlite_url(&dir.join("ingester.sqlite")),
            vec![account],
        );
        ic.topics = topics.clone();
        ic.partitions = PARTITIONS;
        ic.listen = config.listen;
        ic.poll_interval = config.poll_interval;
        ic.bt_recheck_interval = Duration::from_secs(2);
        ic.log = Some(Arc::new(log.clone()));
        let ingester = ledgerline_ingester::start(ic, shutdown.clone())
            .await
            .map_err(|e| failed("the ingester did not start", e))?;
        Ok(Pipeline {
            log,
            store,
            topics,
            shutdown,
            ledger,
            ingester,
        })
    }

    /// The ingester's webhook address.
    pub fn webhook_addr(&self) -> std::net::SocketAddr {
        self.ingester.addr
    }

    /// Where the gRPC API listens, if it was asked for.
    pub fn grpc_addr(&self) -> Option<std::net::SocketAddr> {
        self.ledger.grpc_addr
    }

    /// Records in the fact topics, and how many of them the ledger has folded.
    pub async fn progress(&self) -> Result<(i64, i64), Error> {
        let topics = [
            self.topics.stripe_events(),
            self.topics.stripe_balance_transactions(),
        ];
        let published: i64 = topics.iter().flat_map(|t| self.log.end_offsets(t)).sum();
        let folded: i64 = self
            .store
            .load_offsets(GROUP)
            .await
            .map_err(|e| failed("reading the ledger's offsets", e))?
            .iter()
            .filter(|((t, _), _)| topics.contains(t))
            .map(|(_, o)| *o)
            .sum();
        Ok((published, folded))
    }

    /// Records on the log's `ledger.entries.v1` (published entries, at least once), and the
    /// committed entries still waiting in the ledger's outbox.
    pub async fn entries_published(&self) -> Result<(i64, i64), Error> {
        let published = self
            .log
            .end_offsets(&self.topics.ledger_entries())
            .iter()
            .sum();
        let waiting = self
            .store
            .outbox_len()
            .await
            .map_err(|e| failed("reading the ledger's outbox", e))?;
        Ok((published, waiting))
    }

    /// Stops everything and waits for it.
    pub async fn stop(self) -> Result<(), Error> {
        self.shutdown.cancel();
        let ingested = self.ingester.wait().await;
        let folded = self
            .ledger
            .task
            .await
            .map_err(|e| failed("the ledger task", e))?;
        ingested.map_err(|e| failed("the ingester stopped with an error", e))?;
        folded.map_err(|e| failed("the ledger stopped with an error", e))?;
        Ok(())
    }
}

/// `sqlite://…` for a path.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// Non-zero balances of every ledger, effective up to `as_of` (all when `None`).
pub async fn balances(store: &SqliteStore, as_of: Option<i64>) -> Result<Vec<BalanceRow>, Error> {
    store
        .balances(&BalanceQuery {
            effective_as_of: as_of.map(ledgerline_ledger::engine::timestamp_of),
            ..BalanceQuery::default()
        })
        .await
        .map_err(|e| failed("reading balances", e))
}

/// The books' Stripe balance (`pending + available`) per (ledger, currency).
pub fn stripe_balances(rows: &[BalanceRow]) -> BTreeMap<(String, String), Decimal> {
    let pending = Account::StripePending.to_string();
    let available = Account::StripeAvailable.to_string();
    let mut out: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for r in rows
        .iter()
        .filter(|r| r.account == pending || r.account == available)
    {
        *out.entry((r.ledger.clone(), r.currency.clone()))
            .or_default() += r.amount;
    }
    out
}

/// Clearing accounts (`assets:clearing:…`) that do not net to zero.
pub fn open_clearing(rows: &[BalanceRow]) -> Vec<&BalanceRow> {
    rows.iter()
        .filter(|r| r.account.starts_with("assets:clearing:") && !r.amount.is_zero())
        .collect()
}

/// Prints the trial balance of every ledger: each non-zero balance, then the per-currency
/// totals (zero when the books balance). Returns whether every ledger balances.
pub fn print_trial_balance(
    rows: &[BalanceRow],
    out: &mut dyn std::io::Write,
) -> Result<bool, Error> {
    let mut balanced = true;
    let mut by_ledger: BTreeMap<&str, Vec<&BalanceRow>> = BTreeMap::new();
    for r in rows {
        by_ledger.entry(&r.ledger).or_default().push(r);
    }
    for (ledger, rows) in by_ledger {
        writeln!(out, "\ntrial balance of {ledger}")?;
        let mut totals: BTreeMap<&str, Decimal> = BTreeMap::new();
        for r in &rows {
            writeln!(
                out,
                "  {:<44} {:>4} {:>18}",
                r.account,
                r.currency,
                r.amount.normalize()
            )?;
            *totals.entry(&r.currency).or_default() += r.amount;
        }
        for (cur, t) in totals {
            let ok = t.is_zero();
            balanced &= ok;
            writeln!(
                out,
                "  {:<44} {:>4} {:>18}  {}",
                "total",
                cur,
                t.normalize(),
                if ok { "balanced" } else { "UNBALANCED" }
            )?;
        }
    }
    Ok(balanced)
}
