//! Throughput from Kafka to committed PostgreSQL entries.
//!
//! Produces a stripe-sim world into fresh topics, then starts a ledger on a fresh database
//! and measures facts per second until the stored offsets cover every record, then how long
//! the balance-cells builder (which runs beside the writer) takes to catch up.
//!
//!     eval "$(scripts/test-services env)"
//!     cargo run --release -p ledgerline-ledger --example bench -- 200000
//!
//! `BENCH_PUBLISH=1` also runs the outbox publisher; `BENCH_BATCH=n` sets the batch size;
//! `BENCH_CELLS=after` builds the balance cells after the fold instead of beside it;
//! `BENCH_ASOF=n` runs n as-of balance queries a second during the fold and reports their
//! latency.
//! It prints where the writer's time went, stage by stage (from the ledger's debug events),
//! and the CPU time a fact cost during the fold by process (this process, PostgreSQL, the
//! broker; from `/proc`) and the machine's idle share: less noisy than the rate for A/B runs;
//! and PostgreSQL's execution time a fact by statement kind (lines, facts, entries, cells …)
//! from `pg_stat_statements`, which `scripts/test-services` loads.
//! After the fold it times a restart's rebuild of the core state from the stored facts.
#![allow(
    clippy::print_stderr,
    clippy::float_arithmetic,
    clippy::cast_precision_loss
)]

use std::time::{Duration, Instant};

// mimalloc: see the workspace Cargo.toml (less CPU than glibc's malloc in the ledger).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context as _;
use ledgerline_bus::topics::stripe_object_key;
use ledgerline_bus::{KafkaConfig, TopicSpec, Topics, ensure_topics};
use ledgerline_ledger::Config;
use ledgerline_ledger::store::Store as _;
use ledgerline_proto::stripe::v1::{BalanceTransactionRecord, StripeEventRecord};
use ledgerline_stripe_sim::object::ObjectKind;
use ledgerline_stripe_sim::world::{World, WorldConfig};
use prost::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::{ConnectOptions as _, Connection as _};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let stages = stages::StageTimes::default();
    {
        use tracing_subscriber::prelude::*;
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_filter(tracing_subscriber::EnvFilter::from_default_env()),
            )
            .with(stages.clone().with_filter(stages::filter()))
            .init();
    }
    let n: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(200_000);
    let kafka_addr = std::env::var("KAFKA_BOOTSTRAP_SERVERS").context("KAFKA_BOOTSTRAP_SERVERS")?;
    let db_url = std::env::var("DATABASE_URL").context("DATABASE_URL")?;
    let tag = format!("bench{}", std::process::id());
    let topics = Topics::with_prefix(format!("{tag}."));
    let kafka = KafkaConfig::new(kafka_addr, "ledger-bench");
    let partitions = 6;
    ensure_topics(
        &kafka.admin()?,
        &[
            TopicSpec::new(topics.stripe_events(), partitions),
            TopicSpec::new(topics.stripe_balance_transactions(), partitions),
            TopicSpec::new(topics.ledger_entries(), partitions),
        ],
    )
    .await?;

    let t = Instant::now();
    let world = World::generate(&WorldConfig::with_facts(42, n));
    let producer: FutureProducer = kafka.idempotent_producer()?;
    let (events, bts) = (topics.stripe_events(), topics.stripe_balance_transactions());
    let mut sends = Vec::new();
    let mut records = 0usize;
    for o in &world.objects {
        let account = o.account.clone().unwrap_or_else(|| "acct_platform".into());
        let (topic, key, payload) = match o.kind {
            ObjectKind::Event => {
                let v: serde_json::Value = serde_json::from_str(&o.json)?;
                let oid = v["data"]["object"]["id"].as_str().unwrap_or("").to_owned();
                let r = StripeEventRecord {
                    event_id: o.id.clone(),
                    account: account.clone(),
                    object_id: oid.clone(),
                    raw_json: o.json.clone().into_bytes(),
                    ..Default::default()
                };
                (
                    &events,
                    stripe_object_key(&account, &oid),
                    r.encode_to_vec(),
                )
            }
            ObjectKind::BalanceTransaction => {
                let r = BalanceTransactionRecord {
                    balance_transaction_id: o.id.clone(),
                    account: account.clone(),
                    raw_json: o.json.clone().into_bytes(),
                    ..Default::default()
                };
                (&bts, stripe_object_key(&account, &o.id), r.encode_to_vec())
            }
            _ => continue,
        };
        records += 1;
        let p = &producer;
        sends.push(async move {
            p.send(
                FutureRecord::to(topic).key(&key).payload(&payload),
                Duration::from_secs(60),
            )
            .await
            .map(|_| ())
            .map_err(|(e, _)| e)
        });
        if sends.len() >= 5000 {
            for r in futures::future::join_all(sends.drain(..)).await {
                r?;
            }
        }
    }
    for r in futures::future::join_all(sends).await {
        r?;
    }
    eprintln!("produced {records} facts in {:.1?}", t.elapsed());

    let admin_opts: sqlx::postgres::PgConnectOptions = db_url.parse()?;
    let mut admin = admin_opts.connect().await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {tag}")))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    let bench_url = format!(
        "{}/{tag}",
        db_url.rsplit_once('/').map_or(db_url.as_str(), |(b, _)| b)
    );
    let stats = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&bench_url)
        .await?;
    let mut config = Config::new(bench_url, kafka.clone());
    config.topics = topics.clone();
    config.group_id = tag.clone();
    config.partitions = partitions;
    config.publish = std::env::var("BENCH_PUBLISH").is_ok();
    // Cells built after the fold instead of beside it: the journal's own rate.
    let cells_after = std::env::var("BENCH_CELLS").is_ok_and(|v| v == "after");
    config.build_cells = !cells_after;
    if cells_after {
        config.batch.max_cells_backlog = None;
    }
    if let Some(n) = std::env::var("BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.batch.max_records = n;
    }
    let stop = CancellationToken::new();
    let statements_tracked = statements::reset(&stats).await;
    let cpu0 = cpu::Snapshot::take();
    let t0 = Instant::now();
    let running = ledgerline_ledger::start(config, stop.clone()).await?;
    // `BENCH_ASOF=n`: n as-of balance queries a second while the fold runs (one key each, the
    // keys with the most lines first), to see what an auditor waits while the ledger ingests.
    let asof_qps: u64 = std::env::var("BENCH_ASOF")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let asof_stop = CancellationToken::new();
    let asof = (asof_qps > 0).then(|| {
        tokio::spawn(asof_while_folding(
            running.pool.clone(),
            asof_qps,
            asof_stop.clone(),
        ))
    });
    let mut first: Option<(Instant, i64)> = None;
    loop {
        let done: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets",
        )
        .fetch_one(&running.pool)
        .await?;
        if done > 0 && first.is_none() {
            first = Some((Instant::now(), done));
        }
        if usize::try_from(done)? >= records {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = t0.elapsed();
    let cpu_used = cpu::Snapshot::take().and_then(|now| now.since(cpu0.as_ref()));
    let by_statement = statements::report(&stats, statements_tracked, records).await;
    asof_stop.cancel();
    if let Some(task) = asof {
        let (mut took, max_queued) = task.await??;
        took.sort_unstable();
        let at = |q: usize| took.get((took.len() * q / 100).min(took.len().saturating_sub(1)));
        eprintln!(
            "as-of during the fold: {} queries, p50 {:.2?}, p99 {:.2?}, max {:.2?}; up to \
             {max_queued} lines statements queued for the cells",
            took.len(),
            at(50).copied().unwrap_or_default(),
            at(99).copied().unwrap_or_default(),
            took.last().copied().unwrap_or_default(),
        );
    }
    let entries: i64 = sqlx::query_scalar("SELECT count(*) FROM journal_entries")
        .fetch_one(&running.pool)
        .await?;
    // The balance cells are built behind the writer (`cells.rs`): how far behind it was when
    // the fold finished, and when it caught up.
    let queued_at_end = ledgerline_ledger::cells::queued(&running.pool).await?;
    if cells_after {
        ledgerline_ledger::cells::build_all(&running.pool).await?;
    }
    while ledgerline_ledger::cells::queued(&running.pool).await? > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let built = t0.elapsed();
    stop.cancel();
    running.task.await??;
    // What a restart costs: the core's join state is rebuilt from every stored fact.
    let store = ledgerline_ledger::store::PgStore::new(running.pool.clone());
    let t = Instant::now();
    let mut engine = ledgerline_ledger::Engine::new();
    let mut tx = store.begin_write().await?;
    let replayed = engine.catch_up(&mut tx).await?;
    drop(tx);
    eprintln!(
        "restart: core state rebuilt from {replayed} stored facts in {:.2?}",
        t.elapsed()
    );
    let rate = records as f64 / total.as_secs_f64();
    eprintln!(
        "folded {records} facts into {entries} entries in {total:.2?}: {rate:.0} facts/s from start (group join included)"
    );
    eprintln!(
        "cells: {queued_at_end} lines statements still queued when the fold finished, all built \
         {:.2?} later ({:.0} facts/s from start to the last cell)",
        built.saturating_sub(total),
        records as f64 / built.as_secs_f64()
    );
    if let Some(used) = cpu_used {
        eprintln!("{}", used.per_fact(records));
    }
    eprintln!("{by_statement}");
    eprintln!("{}", stages.report(total));
    if let Some((t1, d1)) = first {
        let steady = t1.elapsed();
        let rest = records as f64 - d1 as f64;
        eprintln!(
            "steady state after the first commit: {:.0} facts/s",
            rest / steady.as_secs_f64()
        );
    }
    Ok(())
}

mod cpu;
mod stages;
mod statements;

/// As-of balances (effective now, one key each) at `qps` until `stop`; their latencies and the
/// longest cells queue seen.
async fn asof_while_folding(
    pool: sqlx::PgPool,
    qps: u64,
    stop: CancellationToken,
) -> anyhow::Result<(Vec<Duration>, u64)> {
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / qps.max(1)));
    let (mut took, mut max_queued, mut n) = (Vec::new(), 0, 0usize);
    let mut keys: Vec<(String, String, String)> = Vec::new();
    while !stop.is_cancelled() {
        tick.tick().await;
        if keys.is_empty() || n % 500 == 0 {
            keys = sqlx::query_as(
                "SELECT ledger, account, currency FROM ledger_balance_keys ORDER BY key_id LIMIT 20",
            )
            .fetch_all(&pool)
            .await?;
            if keys.is_empty() {
                continue;
            }
        }
        if n % 10 == 0 {
            max_queued = max_queued.max(ledgerline_ledger::cells::queued(&pool).await?);
        }
        let (ledger, account, currency) = keys[n % keys.len()].clone();
        n += 1;
        let q = ledgerline_ledger::balances::BalanceQuery {
            ledger,
            account,
            currency,
            effective_as_of: Some(chrono::Utc::now()),
            recorded_as_of: None,
        };
        let t = Instant::now();
        ledgerline_ledger::balances::balances(&pool, &q).await?;
        took.push(t.elapsed());
    }
    Ok((took, max_queued))
}
