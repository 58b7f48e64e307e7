//! Streaming mode: a large world generated and counted without collecting it stays in bounded
//! memory (measured by the process's peak resident set, this test being alone in its binary).
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use ledgerline_stripe_sim::object::ObjectKind;
use ledgerline_stripe_sim::world::{WorldConfig, WorldStream};

fn vm_hwm_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn large_stream_in_bounded_memory() {
    let facts = std::env::var("WORLD_STREAM_FACTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000u64);
    let cfg = WorldConfig {
        balance_history: false,
        ..WorldConfig::with_facts(5, facts)
    };
    let before = vm_hwm_kib();
    let mut stream = WorldStream::new(&cfg);
    let (mut events, mut bts, mut objects, mut bytes) = (0u64, 0u64, 0u64, 0u64);
    let mut checkpoint = None;
    for o in stream.by_ref() {
        match o.kind {
            ObjectKind::Event => events += 1,
            ObjectKind::BalanceTransaction => bts += 1,
            _ => {}
        }
        objects += 1;
        bytes += o.json.len() as u64;
        if checkpoint.is_none() && events + bts >= facts / 5 {
            checkpoint = vm_hwm_kib();
        }
    }
    let truth = stream.ground_truth().unwrap();
    assert_eq!(events + bts, truth.facts);
    assert!(truth.facts >= facts);
    let after = vm_hwm_kib();
    eprintln!(
        "{facts} facts: {events} events, {bts} BTs, {objects} objects, {} MiB of JSON; peak RSS {before:?} → {checkpoint:?} (at 20 %) → {after:?} KiB",
        bytes >> 20
    );
    if let (Some(b), Some(a)) = (before, after) {
        // The history is several GiB of JSON; live state stays far below it.
        assert!(
            a.saturating_sub(b) < 400 * 1024,
            "peak RSS grew by {} KiB",
            a - b
        );
        assert!(
            bytes / 1024 > 4 * a.saturating_sub(b),
            "memory must not hold the history"
        );
    }
}
