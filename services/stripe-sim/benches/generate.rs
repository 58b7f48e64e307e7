//! Generation throughput, kept in the project: `cargo bench -p ledgerline-stripe-sim --bench generate`.
//!
//! 1. Streams a world until it has emitted 1,000,000 events (the target: ≤ 30 s on the
//!    2-core machine), counting objects and JSON bytes without keeping them.
//! 2. Collects a 1,000,000-fact world in memory with `World::generate` (what the HTTP server
//!    serves), reporting time and peak memory.
//!
//! `GENERATE_BENCH_EVENTS` overrides the event count (and fact count of the second part);
//! `GENERATE_BENCH_COLLECT=0` skips the second part (for streams too large to hold).
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

use std::time::Instant;

use ledgerline_stripe_sim::object::ObjectKind;
use ledgerline_stripe_sim::world::{World, WorldConfig, WorldStream};

fn vm_hwm_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
        })
        .unwrap_or(0)
        / 1024
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing special: keep it short there.
    let quick = !std::env::args().any(|a| a == "--bench");
    let target: u64 = std::env::var("GENERATE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 20_000 } else { 1_000_000 });

    // 1. Stream until `target` events (facts are ~84 % events, so ask for enough facts).
    let cfg = WorldConfig {
        balance_history: false,
        ..WorldConfig::with_facts(1, target * 13 / 10)
    };
    let t0 = Instant::now();
    let (mut events, mut bts, mut objects, mut bytes) = (0u64, 0u64, 0u64, 0u64);
    for o in WorldStream::new(&cfg) {
        match o.kind {
            ObjectKind::Event => events += 1,
            ObjectKind::BalanceTransaction => bts += 1,
            _ => {}
        }
        objects += 1;
        bytes += o.json.len() as u64;
        if events >= target {
            break;
        }
    }
    let dt = t0.elapsed();
    println!(
        "stream: {events} events + {bts} balance transactions ({objects} objects, {} MiB JSON) in {:.2?} — {} events/s; peak RSS {} MiB",
        bytes >> 20,
        dt,
        u128::from(events) * 1000 / dt.as_millis().max(1),
        vm_hwm_mib()
    );
    assert!(events >= target);

    if std::env::var("GENERATE_BENCH_COLLECT").is_ok_and(|v| v == "0") {
        return;
    }
    // 2. Collect a world of `target` facts in memory.
    let cfg = WorldConfig::with_facts(1, target);
    let t0 = Instant::now();
    let world = World::generate(&cfg);
    let dt = t0.elapsed();
    let bytes: usize = world.objects.iter().map(|o| o.json.len()).sum();
    println!(
        "collect: World::generate of {} facts ({} objects, {} MiB JSON) in {:.2?}; peak RSS {} MiB",
        world.truth.facts,
        world.objects.len(),
        bytes >> 20,
        dt,
        vm_hwm_mib()
    );
}
