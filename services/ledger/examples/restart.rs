//! What a restart costs: the time and the memory of rebuilding the core state (the join
//! state and the in-memory journal) from every fact a ledger database holds.
//!
//!     cargo run --release -p ledgerline-ledger --example restart -- postgres://…/bench12345
//!
//! Point it at a database a ledger has written (the throughput bench leaves one per run,
//! named `bench<pid>`). It only reads. It prints the facts replayed, the time, and the
//! process's resident memory before and after (a process of its own, so the memory is the
//! state's and not the bench's).
#![allow(clippy::float_arithmetic, clippy::cast_precision_loss)]

use std::io::Write as _;
use std::time::Instant;

// The same allocator as the ledger binary, so the memory is what a ledger would hold.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context as _;

/// The unit the figures are printed in (as "MB", the way earlier runs printed them).
const MIB: f64 = 1_048_576.0;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::args()
        .nth(1)
        .context("usage: restart <postgres URL of a ledger database>")?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .context("connecting to the ledger database")?;
    let store = ledgerline_ledger::store::PgStore::new(pool);
    let memory = |field| ledgerline_ledger::metrics::process_memory_bytes(field).unwrap_or(0);
    let before = memory("VmRSS");
    let t = Instant::now();
    let mut engine = ledgerline_ledger::Engine::new();
    // What a ledger does at start: the whole history from a read-only snapshot.
    let replayed = engine.warm_up(&store).await?;
    let took = t.elapsed();
    let after = memory("VmRSS");
    let grown = after.saturating_sub(before);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "restart: {replayed} facts ({} entries kept whole in the core journal) in {took:.2?}; resident \
         {:.1} MB → {:.1} MB (peak {:.1} MB), {:.0} bytes a fact",
        engine.ledger().entries().len(),
        before as f64 / MIB,
        after as f64 / MIB,
        memory("VmHWM") as f64 / MIB,
        grown as f64 / replayed.max(1) as f64,
    )?;
    // A rough count of what the entries the core keeps whole take (allocations rounded up to
    // 16 bytes, no table overhead).
    let round = |n: usize| n.div_ceil(16) * 16;
    let entries_bytes: usize = engine
        .ledger()
        .entries()
        .iter()
        .map(|e| {
            let line_text: usize = e
                .lines()
                .iter()
                .map(|l| match l.account() {
                    ledgerline_core::Account::Receivable(c)
                    | ledgerline_core::Account::CustomerCredit(c)
                    | ledgerline_core::Account::Connect(c) => round(c.len()),
                    _ => 0,
                })
                .sum();
            std::mem::size_of_val(e)
                + round(e.ledger().len())
                + round(e.source().len())
                + round(std::mem::size_of_val(e.lines()))
                + line_text
                + e.memo().map_or(0, |m| round(m.len()))
        })
        .sum();
    writeln!(
        out,
        "of which the entries kept whole ≈ {:.1} MB ({:.0} bytes an entry)",
        entries_bytes as f64 / 1e6,
        entries_bytes as f64 / engine.ledger().entries().len().max(1) as f64
    )?;
    let f = engine.ledger().footprint();
    let joins: Vec<String> = f
        .join_keys
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    writeln!(
        out,
        "the core state: {} fact digests (capacity {}); {} entry ids (capacity {}); join keys: {}, \
         {} claims, {} availability observations; {} balances",
        engine.facts_known(),
        engine.facts_known_capacity(),
        f.entry_index,
        f.entry_index_capacity,
        joins.join(", "),
        f.claims,
        f.observations,
        f.balances,
    )?;
    Ok(())
}
