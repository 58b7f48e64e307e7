//! `ledgerline demo`: stripe-sim, the ingester, the embedded log and the ledger over SQLite
//! in this one process. A seeded world unfolds on the simulator (signed webhooks, some
//! duplicated and reordered, plus Events API and balance-transaction polling); when every fact
//! is in the books, the demo prints the trial balance and compares the books with the
//! simulator's ground truth: per account and currency, the Stripe balance (pending +
//! available) at the world's end, and every clearing account nets to zero. Any difference
//! fails the demo (exit 2).

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use ledgerline_core::Currency;
use ledgerline_proto::stripe::v1::{BalanceTransactionRecord, StripeEventRecord};
use ledgerline_stripe::{ApiKey, ClientConfig, WebhookSecret};
use ledgerline_stripe_sim::http::{
    ClockConfig, DEFAULT_TEST_KEY, RateLimits, SimConfig, SimServer, WebhookConfig,
};
use ledgerline_stripe_sim::object::ObjectKind;
use ledgerline_stripe_sim::world::{World, WorldConfig};
use prost::Message as _;
use rust_decimal::Decimal;

use crate::embedded::{self, Pipeline, PipelineConfig};
use crate::{Error, Outcome};

/// `ledgerline demo` options.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Size of the simulated world (events + balance transactions).
    #[arg(long, default_value_t = 10_000)]
    pub facts: u64,
    /// Seed of the world (same seed, same world).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Wall-clock seconds over which the world's history unfolds on the simulator.
    #[arg(long, default_value_t = 10)]
    pub unfold_secs: u64,
    /// Keep the log and the databases here (default: a temporary directory, removed after).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Give up (exit 2) if the books are not complete after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout_secs: u64,
    /// After the comparison, keep serving the books over the LedgerQuery gRPC API here until
    /// Ctrl-C or SIGTERM (token: LEDGERLINE_TOKEN, as auditor), for the query subcommands,
    /// grpcurl or any gRPC client; port 0 picks one (printed).
    #[arg(long)]
    pub grpc_addr: Option<std::net::SocketAddr>,
    /// Self-test: hide one balance transaction from the simulator's API, so the books must
    /// disagree with the ground truth.
    #[arg(long, hide = true)]
    pub drop_fact: bool,
    /// Self-test: add one minor unit to one ground-truth balance.
    #[arg(long, hide = true)]
    pub tamper_truth: bool,
}

impl DemoArgs {
    pub async fn run(&self, out: &mut dyn std::io::Write) -> Result<Outcome, Error> {
        let started = Instant::now();
        let grpc = embedded::auditor_grpc(self.grpc_addr)?;
        let mut config = WorldConfig::with_facts(self.seed, self.facts);
        // Stripe lists 30 days of events: the whole history stays inside that window.
        config.days = Some(config.period_days().min(25));
        let mut world = World::generate(&config);
        let (start, end) = (config.start, world.truth.end);
        if self.drop_fact
            && let Some(i) = world
                .objects
                .iter()
                .position(|o| o.kind == ObjectKind::BalanceTransaction)
        {
            let gone = world.objects.remove(i);
            writeln!(out, "self-test: the simulator will never show {}", gone.id)?;
        }
        if self.tamper_truth
            && let Some(b) = world.truth.balances.values_mut().next()
        {
            b.available += 1;
            writeln!(
                out,
                "self-test: one ground-truth balance is off by one unit"
            )?;
        }
        let platform = SimConfig::default().platform_account;
        let mut expected: HashSet<(String, String)> = HashSet::new();
        for o in &world.objects {
            if matches!(o.kind, ObjectKind::Event | ObjectKind::BalanceTransaction) {
                let account = o.account.clone().unwrap_or_else(|| platform.clone());
                expected.insert((account, o.id.clone()));
            }
        }
        writeln!(
            out,
            "world: seed {}, {} facts ({} events and balance transactions to ingest) over {} days, {} connected accounts ({} ms)",
            self.seed,
            self.facts,
            expected.len(),
            config.period_days(),
            config.connected_accounts,
            started.elapsed().as_millis()
        )?;

        let span = u64::try_from(end - start).unwrap_or(1);
        let speed = u32::try_from(span / self.unfold_secs.max(1))
            .unwrap_or(u32::MAX)
            .max(1);
        let sim = SimServer::start(
            SimConfig {
                clock: ClockConfig {
                    start: Some(start),
                    speed,
                },
                rate_limits: RateLimits {
                    live_per_sec: 0,
                    test_per_sec: 0,
                },
                webhooks: WebhookConfig {
                    duplicate_ppm: 20_000,
                    reorder_ppm: 20_000,
                    ..WebhookConfig::default()
                },
                ..SimConfig::default()
            },
            world.objects,
        )
        .await
        .map_err(|e| Error::Usage(format!("stripe-sim did not start: {e}")))?;
        let handle = sim.handle();
        let port = free_port()?;
        let url = format!("http://127.0.0.1:{port}/webhooks/default");
        let secrets: Vec<WebhookSecret> = [false, true]
            .into_iter()
            .filter_map(|connect| handle.register_webhook(&url, &["*"], false, connect))
            .map(|ep| WebhookSecret::new(ep.secret))
            .collect();
        let key = ApiKey::parse(DEFAULT_TEST_KEY)
            .map_err(|e| Error::Usage(format!("the simulator's key: {e}")))?;
        let mut client = ClientConfig::new(sim.base_url(), key);
        client.requests_per_sec = Some(0);
        client.backoff_base = Duration::from_millis(50);
        client.backoff_max = Duration::from_millis(1_000);
        let temp;
        let data_dir = match &self.data_dir {
            Some(d) => d.clone(),
            None => {
                temp = tempfile::tempdir()?;
                temp.path().to_path_buf()
            }
        };
        let pipeline = Pipeline::start(PipelineConfig {
            data_dir: data_dir.clone(),
            client,
            platform_account: platform.clone(),
            webhook_secrets: secrets,
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            poll_interval: Duration::from_millis(300),
            grpc,
        })
        .await?;
        writeln!(
            out,
            "running stripe-sim at {}, the ingester (webhooks at {url}), the embedded log and the ledger (SQLite) in {}",
            sim.base_url(),
            data_dir.display()
        )?;
        out.flush()?;

        let result = self
            .follow(&pipeline, &handle, expected, start, end, started, out)
            .await;
        let store = pipeline.store.clone();
        // Books that are complete stay served (`--grpc-addr`) once compared; otherwise stop now.
        let serving = match pipeline.grpc_addr() {
            Some(addr) if matches!(result, Ok(true)) => Some((addr, pipeline, sim)),
            _ => {
                pipeline.stop().await?;
                sim.shutdown().await;
                None
            }
        };
        let complete = result?;

        let rows = embedded::balances(&store, None).await?;
        let balanced = embedded::print_trial_balance(&rows, out)?;
        let at_end = embedded::balances(&store, Some(end)).await?;
        let books = embedded::stripe_balances(&at_end);
        writeln!(
            out,
            "\nStripe balance (pending + available) at the world's end: books vs stripe-sim's ground truth"
        )?;
        let mut agree = true;
        for (ac, bal) in &world.truth.balances {
            let ledger = ac.account.clone().unwrap_or_else(|| platform.clone());
            let currency = Currency::parse(&ac.currency)
                .map_err(|e| Error::Malformed(format!("ground-truth currency: {e}")))?;
            let truth = currency.minor_to_decimal(bal.total());
            let got = books
                .get(&(ledger.clone(), ac.currency.clone()))
                .copied()
                .unwrap_or(Decimal::ZERO);
            let ok = got == truth;
            agree &= ok;
            writeln!(
                out,
                "  {:<26} {:>4} books {:>16} truth {:>16}  {}",
                ledger,
                ac.currency,
                got.normalize(),
                truth.normalize(),
                if ok { "ok" } else { "DIFFERENT" }
            )?;
        }
        let open = embedded::open_clearing(&rows);
        if open.is_empty() {
            writeln!(out, "  clearing accounts: all net to zero")?;
        } else {
            agree = false;
            for r in open {
                writeln!(
                    out,
                    "  clearing {} {} {} does not net to zero: {}",
                    r.ledger,
                    r.account,
                    r.currency,
                    r.amount.normalize()
                )?;
            }
        }
        let verdict = complete && balanced && agree;
        writeln!(
            out,
            "\n{} in {:.1} s",
            if verdict {
                "the books agree with stripe-sim's ground truth"
            } else {
                "the books DISAGREE with stripe-sim's ground truth"
            },
            started.elapsed().as_secs_f32()
        )?;
        if let Some((addr, pipeline, sim)) = serving {
            writeln!(
                out,
                "\nserving these books: LedgerQuery gRPC on {addr} (bearer token: the one in {}), e.g. \
                 `ledgerline trial-balance --addr {addr} --ledger {platform}`; Ctrl-C stops",
                crate::remote::TOKEN_ENV
            )?;
            out.flush()?;
            stop_signal().await?;
            pipeline.stop().await?;
            sim.shutdown().await;
            writeln!(out, "stopped serving")?;
        }
        Ok(if verdict {
            Outcome::Ok
        } else {
            Outcome::Failed
        })
    }

    /// Shows progress until every expected fact is folded (true) or the timeout (false).
    #[allow(clippy::too_many_arguments)]
    async fn follow(
        &self,
        pipeline: &Pipeline,
        handle: &ledgerline_stripe_sim::http::SimHandle,
        mut missing: HashSet<(String, String)>,
        start: i64,
        end: i64,
        started: Instant,
        out: &mut dyn std::io::Write,
    ) -> Result<bool, Error> {
        let total = missing.len();
        let reader = pipeline
            .log
            .consumer(
                "ledgerline-demo-progress",
                &[
                    pipeline.topics.stripe_events().as_str(),
                    pipeline.topics.stripe_balance_transactions().as_str(),
                ],
            )
            .map_err(|e| Error::Usage(format!("embedded log: {e}")))?;
        let deadline = Instant::now() + Duration::from_secs(self.timeout_secs);
        let mut last_print = Instant::now();
        let mut stopped_clock = false;
        let mut settled_since: Option<Instant> = None;
        loop {
            while let Some(r) = reader.poll() {
                let payload = r.payload.unwrap_or_default();
                if let Ok(e) = StripeEventRecord::decode(payload.as_slice())
                    && !e.event_id.is_empty()
                    && r.topic == pipeline.topics.stripe_events()
                {
                    missing.remove(&(e.account, e.event_id));
                } else if let Ok(b) = BalanceTransactionRecord::decode(payload.as_slice()) {
                    missing.remove(&(b.account, b.balance_transaction_id));
                }
            }
            let now = handle.now();
            if !stopped_clock && now >= end {
                handle.set_speed(0);
                handle.set_now(end);
                stopped_clock = true;
            }
            let (published, folded) = pipeline.progress().await?;
            let (entries, unpublished) = pipeline.entries_published().await?;
            let done = missing.is_empty() && folded >= published && unpublished == 0;
            if last_print.elapsed() >= Duration::from_secs(1) {
                last_print = Instant::now();
                let pct = (now.min(end) - start)
                    .saturating_mul(100)
                    .checked_div(end - start)
                    .unwrap_or(100);
                writeln!(
                    out,
                    "[{:>5.1} s] history {pct:>3}% | facts ingested {:>6}/{total} | records on the log {published:>6} | folded by the ledger {folded:>6}",
                    started.elapsed().as_secs_f32(),
                    total - missing.len(),
                )?;
                out.flush()?;
            }
            // Done once everything is in and the log stayed quiet for a moment (late
            // status updates of balance transactions).
            if done {
                let since = *settled_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= Duration::from_millis(1_500) {
                    writeln!(
                        out,
                        "[{:>5.1} s] every fact is in the books: {folded} records folded, {entries} entries published on ledger.entries.v1",
                        started.elapsed().as_secs_f32(),
                    )?;
                    return Ok(true);
                }
            } else {
                settled_since = None;
            }
            if Instant::now() >= deadline {
                writeln!(
                    out,
                    "timed out after {} s: {} facts never reached the books, e.g. {:?}",
                    self.timeout_secs,
                    missing.len(),
                    missing.iter().take(3).collect::<Vec<_>>()
                )?;
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Ctrl-C (SIGINT) or SIGTERM.
async fn stop_signal() -> Result<(), Error> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

fn free_port() -> Result<u16, Error> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
