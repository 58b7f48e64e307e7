//! `ledgerline run`: the embedded pipeline against a real Stripe account. The ingester reads
//! the account (and its connected accounts) with the key in `STRIPE_API_KEY` — test or live
//! mode comes from the key — into the embedded log; the ledger folds it into SQLite under
//! `--data-dir`, which persists across runs (cursors, log and books resume). Progress is
//! printed; with `--until-caught-up` it stops once no new fact arrived for `--idle-secs`,
//! everything is folded and the outbox is empty (every entry on the log's
//! `ledger.entries.v1`), otherwise at Ctrl-C. Then it prints the trial balance and
//! compares each ledger's books with Stripe's own `GET /v1/balance` (pending + available per
//! currency); exit 2 if they differ. The key never reaches an output, a log or an error.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use ledgerline_core::Currency;
use ledgerline_stripe::{ApiKey, Client, ClientConfig};
use rust_decimal::Decimal;

use crate::embedded::{self, Pipeline, PipelineConfig};
use crate::{Error, Outcome};

/// The environment variable holding the Stripe key.
pub const KEY_ENV: &str = "STRIPE_API_KEY";

/// `ledgerline run` options.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Stripe's API (another base URL only for a stand-in such as stripe-sim).
    #[arg(long, default_value = ledgerline_stripe::client::DEFAULT_BASE_URL)]
    pub api_base: String,
    /// The key's own account id (`acct_…`); default: asked from `GET /v1/account`.
    #[arg(long, env = "LEDGERLINE_STRIPE_ACCOUNT", hide_env_values = true)]
    pub account: Option<String>,
    /// Where the embedded log and the SQLite databases live (kept between runs).
    #[arg(long, default_value = "ledgerline-data")]
    pub data_dir: PathBuf,
    /// Stop once caught up (no new fact for --idle-secs, everything folded and published).
    #[arg(long)]
    pub until_caught_up: bool,
    /// Seconds without a new fact that count as caught up.
    #[arg(long, default_value_t = 10)]
    pub idle_secs: u64,
    /// Seconds between polls of Stripe.
    #[arg(long, default_value_t = 5)]
    pub poll_secs: u64,
    /// Also serve the LedgerQuery gRPC API here (token: LEDGERLINE_TOKEN, as auditor), for
    /// the query subcommands.
    #[arg(long)]
    pub grpc_addr: Option<std::net::SocketAddr>,
}

fn failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Usage(format!("{what}: {e}"))
}

impl RunArgs {
    pub async fn run(&self, out: &mut dyn std::io::Write) -> Result<Outcome, Error> {
        let started = Instant::now();
        let secret = std::env::var(KEY_ENV).map_err(|_| {
            Error::Usage(format!(
                "set {KEY_ENV} to a Stripe secret or restricted key (sk_… or rk_…; test or live)"
            ))
        })?;
        // The key's own error messages are redacted by the stripe crate.
        let key = ApiKey::parse(secret).map_err(|e| failed("the Stripe key", e))?;
        let mode = if key.mode().is_live() { "live" } else { "test" };
        let client_config = ClientConfig::new(self.api_base.clone(), key);
        let client =
            Client::new(client_config.clone()).map_err(|e| failed("the Stripe client", e))?;
        let account = match &self.account {
            Some(a) => a.clone(),
            None => own_account(&client).await?,
        };
        let grpc = embedded::auditor_grpc(self.grpc_addr)?;
        let pipeline = Pipeline::start(PipelineConfig {
            data_dir: self.data_dir.clone(),
            client: client_config,
            platform_account: account.clone(),
            webhook_secrets: Vec::new(),
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            poll_interval: Duration::from_secs(self.poll_secs.max(1)),
            grpc,
        })
        .await?;
        writeln!(
            out,
            "reading Stripe account {account} ({mode} mode) at {} into {}{}",
            self.api_base,
            self.data_dir.display(),
            pipeline
                .grpc_addr()
                .map(|a| format!("; LedgerQuery gRPC on {a}"))
                .unwrap_or_default()
        )?;
        out.flush()?;
        let followed = self.follow(&pipeline, started, out).await;
        let store = pipeline.store.clone();
        pipeline.stop().await?;
        followed?;

        let rows = embedded::balances(&store, None).await?;
        let balanced = embedded::print_trial_balance(&rows, out)?;
        let books = embedded::stripe_balances(&rows);
        let mut ledgers: BTreeSet<String> = books.keys().map(|(l, _)| l.clone()).collect();
        ledgers.insert(account.clone());
        writeln!(
            out,
            "\nStripe balance (pending + available): books vs Stripe's GET /v1/balance"
        )?;
        let mut agree = true;
        for ledger in &ledgers {
            let connected = (ledger != &account).then_some(ledger.as_str());
            let stripe = stripe_balance(&client, connected).await?;
            let currencies: BTreeSet<&String> = stripe
                .keys()
                .chain(books.keys().filter(|(l, _)| l == ledger).map(|(_, c)| c))
                .collect();
            for cur in currencies {
                let want = stripe.get(cur).copied().unwrap_or_default();
                let got = books
                    .get(&(ledger.clone(), cur.clone()))
                    .copied()
                    .unwrap_or_default();
                let ok = got == want;
                agree &= ok;
                writeln!(
                    out,
                    "  {:<26} {:>4} books {:>16} Stripe {:>16}  {}",
                    ledger,
                    cur,
                    got.normalize(),
                    want.normalize(),
                    if ok { "ok" } else { "DIFFERENT" }
                )?;
            }
        }
        let verdict = balanced && agree;
        writeln!(
            out,
            "\n{} after {:.1} s",
            if verdict {
                "the books agree with Stripe"
            } else {
                "the books DISAGREE with Stripe"
            },
            started.elapsed().as_secs_f32()
        )?;
        Ok(if verdict {
            Outcome::Ok
        } else {
            Outcome::Failed
        })
    }

    async fn follow(
        &self,
        pipeline: &Pipeline,
        started: Instant,
        out: &mut dyn std::io::Write,
    ) -> Result<(), Error> {
        // Quiet = no new distinct fact (the ingester re-reads pending balance transactions
        // every round; the same bytes again are not news).
        let mut last = (-1i64, Instant::now());
        let mut last_print = Instant::now();
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            let (published, folded) = pipeline.progress().await?;
            let facts = pipeline
                .store
                .fact_count()
                .await
                .map_err(|e| failed("reading the ledger", e))?;
            if facts != last.0 {
                last = (facts, Instant::now());
            }
            let quiet = last.1.elapsed() >= Duration::from_secs(self.idle_secs);
            if last_print.elapsed() >= Duration::from_secs(2) {
                last_print = Instant::now();
                let (_, unpublished) = pipeline.entries_published().await?;
                writeln!(
                    out,
                    "[{:>6.1} s] records on the log {published:>7} | folded by the ledger {folded:>7} | distinct facts {facts:>7} | entries waiting in the outbox {unpublished:>6}",
                    started.elapsed().as_secs_f32()
                )?;
                out.flush()?;
            }
            if self.until_caught_up
                && quiet
                && folded >= published
                && started.elapsed() >= Duration::from_secs(self.poll_secs.max(1) * 2)
            {
                // Caught up also means every committed entry is on the log's
                // `ledger.entries.v1`: the outbox publisher runs beside the writer, so its
                // last rows may still be waiting when the fold is done.
                let (entries, unpublished) = pipeline.entries_published().await?;
                if unpublished == 0 {
                    writeln!(
                        out,
                        "caught up: {folded} records folded, {entries} entries published on \
                         ledger.entries.v1, nothing new for {} s",
                        self.idle_secs
                    )?;
                    return Ok(());
                }
            }
            tokio::select! {
                _ = &mut ctrl_c => {
                    writeln!(out, "stopping (Ctrl-C): {folded} of {published} records folded")?;
                    return Ok(());
                }
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
    }
}

async fn own_account(client: &Client) -> Result<String, Error> {
    let resp = client.get("/v1/account", &[], None).await.map_err(|e| {
        failed(
            "cannot ask Stripe for the key's account (pass --account acct_…)",
            e,
        )
    })?;
    let v: serde_json::Value = serde_json::from_slice(&resp.body)
        .map_err(|e| failed("GET /v1/account answered something else than JSON", e))?;
    v["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::Usage("GET /v1/account has no id: pass --account acct_…".into()))
}

/// `GET /v1/balance`: pending + available per currency, in major units.
async fn stripe_balance(
    client: &Client,
    account: Option<&str>,
) -> Result<BTreeMap<String, Decimal>, Error> {
    let resp = client
        .get("/v1/balance", &[], account)
        .await
        .map_err(|e| failed("GET /v1/balance", e))?;
    let v: serde_json::Value = serde_json::from_slice(&resp.body)
        .map_err(|e| failed("GET /v1/balance answered something else than JSON", e))?;
    let mut out: BTreeMap<String, Decimal> = BTreeMap::new();
    for part in ["available", "pending"] {
        for b in v[part].as_array().into_iter().flatten() {
            let (Some(cur), Some(minor)) = (b["currency"].as_str(), b["amount"].as_i64()) else {
                continue;
            };
            let currency = Currency::parse(cur)
                .map_err(|e| failed("GET /v1/balance names an unknown currency", e))?;
            *out.entry(cur.to_owned()).or_default() += currency.minor_to_decimal(minor);
        }
    }
    Ok(out)
}
