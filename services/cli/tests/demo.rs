//! `ledgerline demo` end to end, as the binary: a small world agrees with stripe-sim's ground
//! truth (exit 0) and its entries are published on the embedded log's `ledger.entries.v1`; a
//! fact the simulator never shows, or a ground truth off by one unit, makes the books disagree
//! (exit 2).
#![allow(clippy::unwrap_used)]

use std::process::Command;

/// A small world, unfolded fast.
const SMALL_DEMO: [&str; 7] = [
    "demo",
    "--facts",
    "1500",
    "--unfold-secs",
    "3",
    "--timeout-secs",
    "90",
];

fn demo(extra: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ledgerline"))
        .args(SMALL_DEMO)
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

/// Runs `ledgerline` against a serving demo, with `token` in `LEDGERLINE_TOKEN`.
fn query(addr: &str, token: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ledgerline"))
        .args(args)
        .args(["--addr", addr])
        .env("LEDGERLINE_TOKEN", token)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The demo's own comparison lines: (ledger, currency) → the books' Stripe balance.
fn demo_books(out: &str) -> Vec<(String, String, String)> {
    out.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() >= 6 && w[2] == "books" && w[4] == "truth")
                .then(|| (w[0].to_owned(), w[1].to_owned(), w[3].to_owned()))
        })
        .collect()
}

/// Kills the demo if the test fails before it stops it: an orphan would keep serving, and
/// keep the test runner's output open.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_demo_serves_its_books_over_grpc_until_stopped() {
    // No token: refused before anything starts, naming the variable.
    let refused = Command::new(env!("CARGO_BIN_EXE_ledgerline"))
        .args(["demo", "--grpc-addr", "127.0.0.1:0"])
        .env_remove("LEDGERLINE_TOKEN")
        .output()
        .unwrap();
    assert_ne!(refused.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("LEDGERLINE_TOKEN"),
        "{refused:?}"
    );

    const TOKEN: &str = "demo-auditor-token";
    let mut child = Command::new(env!("CARGO_BIN_EXE_ledgerline"))
        .args(SMALL_DEMO)
        .args(["--grpc-addr", "127.0.0.1:0"])
        .env("LEDGERLINE_TOKEN", TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut child = KillOnDrop(child);
    let mut out = String::new();
    let addr = loop {
        let mut line = String::new();
        let n = std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        assert!(n > 0, "the demo ended without serving:\n{out}");
        out.push_str(&line);
        if let Some(rest) = line.split("LedgerQuery gRPC on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    println!("{out}");
    assert!(out.contains("the books agree"), "{out}");

    // Every entry the demo published is in the chains the server verifies.
    let published: u64 = out
        .split(" entries published on ledger.entries.v1")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    let (code, verified, err) = query(&addr, TOKEN, &["verify"]);
    assert_eq!(code, 0, "{verified}{err}");
    assert!(
        verified.starts_with(&format!("chain verified: {published} entries")),
        "{published} published, verify says: {verified}"
    );

    // The served balances are the books the demo compared with the ground truth: pending +
    // available per ledger and currency.
    let books = demo_books(&out);
    assert!(!books.is_empty(), "{out}");
    for (ledger, currency, amount) in &books {
        let mut sum = rust_decimal::Decimal::ZERO;
        for account in ["assets:stripe:pending", "assets:stripe:available"] {
            let (code, listed, err) = query(
                &addr,
                TOKEN,
                &["balances", "--ledger", ledger, "--account", account],
            );
            assert_eq!(code, 0, "{listed}{err}");
            for row in listed.lines().skip(1) {
                let w: Vec<&str> = row.split_whitespace().collect();
                if w.get(2) == Some(&currency.as_str()) {
                    sum += w[3].parse::<rust_decimal::Decimal>().unwrap();
                }
            }
        }
        assert_eq!(
            sum,
            amount.parse::<rust_decimal::Decimal>().unwrap(),
            "{ledger} {currency}: served {sum}, the demo's books {amount}"
        );
    }

    // Another token is refused.
    let (code, _, err) = query(&addr, "not-the-token", &["verify"]);
    assert_eq!(code, 1, "{err}");

    // SIGTERM stops the serving; the demo's verdict stays its exit code.
    let killed = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = child.0.wait().unwrap();
    assert!(rest.contains("stopped serving"), "{rest}");
    assert_eq!(status.code(), Some(0), "{rest}");
}
