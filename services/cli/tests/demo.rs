//! `ledgerline demo` end to end, as the binary: a small world agrees with stripe-sim's ground
//! truth (exit 0) and its entries are published on the embedded log's `ledger.entries.v1`; a
//! fact the simulator never shows, or a ground truth off by one unit, makes the books disagree
//! (exit 2).
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn demo(extra: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ledgerline"))
        .args([
            "demo",
            "--facts",
            "1500",
            "--unfold-secs",
            "3",
            "--timeout-secs",
            "90",
        ])
        .args(extra)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n--- stderr ---\n{stderr}");
    (out.status.code().unwrap_or(-1), stdout)
}

#[test]
fn the_demo_agrees_with_the_ground_truth_and_fails_when_it_should_not() {
    let (code, out) = demo(&[]);
    assert_eq!(code, 0, "the demo failed:\n{out}");
    assert!(out.contains("every fact is in the books"), "{out}");
    // The ledger's outbox was emptied onto the embedded log's ledger.entries.v1.
    let published: u64 = out
        .split(" entries published on ledger.entries.v1")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(published > 100, "entries published: {published}\n{out}");
    assert!(
        out.contains("trial balance of acct_1LedgerlineSimPlat"),
        "{out}"
    );
    assert!(out.contains("clearing accounts: all net to zero"), "{out}");
    assert!(
        !out.contains("UNBALANCED") && !out.contains("DIFFERENT"),
        "{out}"
    );
    assert!(out.contains("the books agree"), "{out}");

    let (code, out) = demo(&["--drop-fact"]);
    assert_eq!(code, 2, "a dropped fact went unnoticed:\n{out}");
    assert!(
        out.contains("DIFFERENT") && out.contains("DISAGREE"),
        "{out}"
    );

    let (code, out) = demo(&["--tamper-truth"]);
    assert_eq!(code, 2, "a tampered truth went unnoticed:\n{out}");
    assert!(out.contains("DIFFERENT"), "{out}");
}
