//! The `ledgerline` CLI against a real ledger (seeded from a stripe-sim world through real
//! Kafka and PostgreSQL): its library functions print what the gRPC API answers, follow every
//! page, export CSV whose entries balance per currency, and map auth failures to messages that
//! say what to do. (The binary itself: `services/cli/tests/binary.rs`.)
#![allow(clippy::unwrap_used)]

mod ledger_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ledger_support::*;
use ledgerline_bus::Topics;
use ledgerline_cli::export::{COLUMNS, ExportArgs};
use ledgerline_cli::query::{
    AsOfArgs, BalancesArgs, EntriesArgs, EntryArgs, EntryFilter, StatementArgs, TrialBalanceArgs,
    VerifyArgs,
};
use ledgerline_cli::{Outcome, Remote, RemoteArgs, Token};
use ledgerline_core::Account;
use ledgerline_ledger::Role;
use ledgerline_proto::ledger::v1 as pb;
use ledgerline_tests::unique_name;
use rust_decimal::Decimal;
use tonic::Code;

const AUDITOR: &str = "cli-auditor-secret-7f3a";
const OTHER: &str = "cli-other-secret-91bc";

fn remote_args(addr: std::net::SocketAddr) -> RemoteArgs {
    RemoteArgs {
        addr: addr.to_string(),
        ca_cert: None,
    }
}

fn text(buf: &[u8]) -> String {
    String::from_utf8(buf.to_vec()).unwrap()
}

/// A minimal RFC 4180 reader (quoted fields, doubled quotes, CRLF), independent of the
/// writer under test.
fn parse_csv(s: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(field.is_empty() && row.is_empty(), "CSV ends mid-row");
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_prints_what_the_ledger_answers() {
    let topics = Topics::with_prefix(format!("{}.", unique_name("cli")));
    create_topics(&topics).await;
    let (world, facts) = world_facts(5, 2_000);
    let records = produce(&topics, &facts, 0).await;
    let (pool, url) = fresh_db("ledger_cli").await;
    let group = unique_name("ledger");
    let mut config = config(&url, &topics, &group);
    config.tokens = vec![(AUDITOR.into(), Role::Auditor), (OTHER.into(), Role::Other)];
    let (running, stop) = start(config).await;
    wait_for_offsets(&pool, &group, records, Duration::from_secs(240)).await;
    let model = model(&facts);
    let addr = running.grpc_addr;
    let remote = Remote::connect(&addr.to_string(), Some(Token::new(AUDITOR).unwrap()))
        .await
        .unwrap();

    // balances: the printed table is the gRPC answer, row for row.
    let args = BalancesArgs {
        remote: remote_args(addr),
        ledger: PLATFORM.into(),
        account: String::new(),
        currency: String::new(),
        as_of: AsOfArgs::default(),
    };
    let mut out = Vec::new();
    assert_eq!(args.run(&remote, &mut out).await.unwrap(), Outcome::Ok);
    let printed: Vec<Vec<String>> = text(&out)
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect();
    let answer = remote
        .client()
        .get_balances(pb::GetBalancesRequest {
            ledger: PLATFORM.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .balances;
    assert!(!answer.is_empty());
    let want: Vec<Vec<String>> = answer
        .iter()
        .map(|b| {
            vec![
                b.ledger.clone(),
                b.account.clone(),
                b.currency.clone(),
                b.amount.clone(),
            ]
        })
        .collect();
    assert_eq!(printed, want);

    // … and, as of the world's end, the Stripe balances equal stripe-sim's ground truth.
    for (ac, bal) in &world.truth.balances {
        let ledger = ac.account.clone().unwrap_or_else(|| PLATFORM.to_owned());
        let mut total = Decimal::ZERO;
        for account in [Account::StripePending, Account::StripeAvailable] {
            let args = BalancesArgs {
                remote: remote_args(addr),
                ledger: ledger.clone(),
                account: account.to_string(),
                currency: ac.currency.to_uppercase(),
                as_of: AsOfArgs {
                    effective_as_of: Some(world.truth.end.to_string().parse().unwrap()),
                    recorded_as_of: None,
                },
            };
            for b in args.fetch(&remote).await.unwrap() {
                total += b.amount.parse::<Decimal>().unwrap();
            }
        }
        let currency = ledgerline_core::Currency::parse(&ac.currency).unwrap();
        assert_eq!(
            currency.decimal_to_minor(total).unwrap(),
            bal.pending + bal.available
        );
    }
    // Recorded before the ledger ran: the books were empty (only the header is printed).
    let args = BalancesArgs {
        remote: remote_args(addr),
        ledger: String::new(),
        account: String::new(),
        currency: String::new(),
        as_of: AsOfArgs {
            effective_as_of: None,
            recorded_as_of: Some("2001-01-01".parse().unwrap()),
        },
    };
    let mut out = Vec::new();
    args.run(&remote, &mut out).await.unwrap();
    assert_eq!(text(&out).lines().count(), 1, "{}", text(&out));

    // trial-balance: the core fold's rows, every currency totals zero.
    let args = TrialBalanceArgs {
        remote: remote_args(addr),
        ledger: PLATFORM.into(),
        as_of: AsOfArgs::default(),
    };
    let mut out = Vec::new();
    assert_eq!(args.run(&remote, &mut out).await.unwrap(), Outcome::Ok);
    let printed = text(&out);
    assert!(printed.contains("balanced (every currency sums to zero)"));
    let tb = args.fetch(&remote).await.unwrap();
    let totals = TrialBalanceArgs::totals(&tb).unwrap();
    assert!(!totals.is_empty() && totals.values().all(Decimal::is_zero));
    let mut have: Vec<(String, String, Decimal)> = tb
        .rows
        .iter()
        .map(|r| {
            (
                r.account.clone(),
                r.currency.clone(),
                r.amount.parse().unwrap(),
            )
        })
        .collect();
    let mut want: Vec<(String, String, Decimal)> = model
        .trial_balance(PLATFORM)
        .rows
        .iter()
        .map(|r| {
            (
                r.account.to_string(),
                r.balance.currency().code().to_owned(),
                r.balance.amount(),
            )
        })
        .collect();
    have.sort();
    want.sort();
    assert_eq!(have, want);
    for (account, currency, amount) in &want {
        let magnitude = amount.abs().normalize().to_string();
        assert!(
            printed.lines().any(|l| {
                let cells: Vec<&str> = l.split_whitespace().collect();
                cells.first() == Some(&account.as_str())
                    && cells.get(1) == Some(&currency.as_str())
                    && cells.get(2) == Some(&magnitude.as_str())
            }),
            "{account} {currency} {magnitude} not printed:\n{printed}"
        );
    }

    // entries: every page followed (small pages), in recording order, each entry once.
    let filter = EntryFilter {
        page_size: 97,
        ..EntryFilter::default()
    };
    let args = EntriesArgs {
        remote: remote_args(addr),
        filter: filter.clone(),
        limit: None,
    };
    let entries = args.fetch(&remote).await.unwrap();
    assert_eq!(entries.len(), model.entries().len());
    let ids: BTreeSet<&str> = entries.iter().map(|e| e.entry_id.as_str()).collect();
    assert_eq!(ids.len(), entries.len());
    let mut out = Vec::new();
    EntriesArgs::render(&entries[..3], &mut out).unwrap();
    let printed = text(&out);
    assert!(printed.starts_with(&entries[0].entry_id), "{printed}");
    assert!(printed.ends_with("3 entries\n"), "{printed}");
    let limited = EntriesArgs {
        remote: remote_args(addr),
        filter: filter.clone(),
        limit: Some(150),
    };
    assert_eq!(limited.fetch(&remote).await.unwrap().len(), 150);
    // By source: exactly the entries with that source id.
    let source = entries[10].source_id.clone();
    let by_source = EntriesArgs {
        remote: remote_args(addr),
        filter: EntryFilter {
            source: source.clone(),
            ..filter.clone()
        },
        limit: None,
    };
    let got = by_source.fetch(&remote).await.unwrap();
    let want_n = entries.iter().filter(|e| e.source_id == source).count();
    assert!(want_n > 0 && got.len() == want_n && got.iter().all(|e| e.source_id == source));
    // A bad page size is refused before any call.
    let bad = EntriesArgs {
        remote: remote_args(addr),
        filter: EntryFilter {
            page_size: 5000,
            ..EntryFilter::default()
        },
        limit: None,
    };
    let e = bad.fetch(&remote).await.unwrap_err();
    assert!(e.to_string().contains("--page-size"), "{e}");

    // entry <id>: lines and the raw Stripe fact.
    let one = &entries[0];
    let args = EntryArgs {
        remote: remote_args(addr),
        entry_id: one.entry_id.clone(),
    };
    let mut out = Vec::new();
    args.run(&remote, &mut out).await.unwrap();
    let printed = text(&out);
    let raw_start = printed.find("raw fact").unwrap();
    let json_start = raw_start + printed[raw_start..].find('\n').unwrap();
    let raw: serde_json::Value = serde_json::from_str(&printed[json_start..]).unwrap();
    assert_eq!(raw["id"].as_str().unwrap(), one.fact_id);
    for l in &one.lines {
        assert!(
            printed.lines().any(|p| {
                let cells: Vec<&str> = p.split_whitespace().collect();
                cells == [l.account.as_str(), &l.currency, &l.amount]
            }),
            "line {l:?} not printed:\n{printed}"
        );
    }
    let missing = EntryArgs {
        remote: remote_args(addr),
        entry_id: "00000000-0000-0000-0000-000000000000".into(),
    };
    let e = missing.fetch(&remote).await.unwrap_err();
    assert_eq!(e.code(), Some(Code::NotFound), "{e}");

    // statement: the closing balance is the account's balance in the core fold.
    let pending = Account::StripePending.to_string();
    let currency = world
        .truth
        .balances
        .keys()
        .find(|k| k.account.is_none())
        .unwrap()
        .currency
        .clone();
    let args = StatementArgs {
        remote: remote_args(addr),
        ledger: PLATFORM.into(),
        account: pending.clone(),
        currency: currency.clone(),
        from: None,
        to: None,
        page_size: 50,
    };
    let s = args.fetch(&remote).await.unwrap();
    assert!(
        s.lines.len() > 50,
        "only {} lines: paging untested",
        s.lines.len()
    );
    let mut out = Vec::new();
    args.run(&remote, &mut out).await.unwrap();
    let closing = text(&out)
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .nth(2)
        .unwrap()
        .parse::<Decimal>()
        .unwrap();
    let c = ledgerline_core::Currency::parse(&currency).unwrap();
    assert_eq!(
        closing,
        model.balance(PLATFORM, &Account::StripePending, c).amount()
    );

    // verify: every entry checked.
    let mut out = Vec::new();
    let outcome = VerifyArgs {
        remote: remote_args(addr),
    }
    .run(&remote, &mut out)
    .await
    .unwrap();
    assert_eq!(outcome, Outcome::Ok);
    assert!(
        text(&out).starts_with(&format!("chain verified: {} entries", entries.len())),
        "{}",
        text(&out)
    );

    // export: one row per line; per entry and currency the amounts sum to zero; every entry.
    let export = ExportArgs {
        remote: remote_args(addr),
        filter: EntryFilter {
            page_size: 300,
            ..EntryFilter::default()
        },
        output: None,
    };
    let mut csv = Vec::new();
    export.run(&remote, &mut csv).await.unwrap();
    let rows = parse_csv(&text(&csv));
    assert_eq!(rows[0], COLUMNS);
    let col = |name: &str| COLUMNS.iter().position(|c| *c == name).unwrap();
    let mut sums: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for r in &rows[1..] {
        assert_eq!(r.len(), COLUMNS.len(), "{r:?}");
        let amount: Decimal = r[col("amount")].parse().unwrap();
        assert!(!amount.is_zero());
        *sums
            .entry((r[col("entry_id")].clone(), r[col("currency")].clone()))
            .or_default() += amount;
    }
    let total_lines: usize = model.entries().iter().map(|e| e.lines().len()).sum();
    assert_eq!(rows.len() - 1, total_lines);
    let exported: BTreeSet<&String> = sums.keys().map(|(id, _)| id).collect();
    assert_eq!(exported.len(), model.entries().len());
    let unbalanced: Vec<_> = sums.iter().filter(|(_, v)| !v.is_zero()).collect();
    assert!(unbalanced.is_empty(), "unbalanced: {unbalanced:?}");
    // The first entry's rows carry its times, rule and source exactly.
    let first: Vec<&Vec<String>> = rows[1..]
        .iter()
        .filter(|r| r[col("entry_id")] == one.entry_id)
        .collect();
    assert_eq!(first.len(), one.lines.len());
    assert_eq!(first[0][col("rule")], one.rule);
    assert_eq!(first[0][col("source_id")], one.source_id);
    assert_eq!(
        first[0][col("effective_at")]
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
            .timestamp(),
        one.effective_at.unwrap().seconds
    );
    // --output writes the same bytes to a file and says so.
    let dir = std::env::temp_dir().join(unique_name("cli-export"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("entries.csv");
    let mut out = Vec::new();
    ExportArgs {
        output: Some(path.clone()),
        ..export.clone()
    }
    .run(&remote, &mut out)
    .await
    .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), csv);
    assert!(
        text(&out).starts_with(&format!(
            "exported {} entries ({} lines)",
            model.entries().len(),
            total_lines
        )),
        "{}",
        text(&out)
    );
    std::fs::remove_dir_all(&dir).unwrap();

    // Auth failures say what to do and never show the token.
    let tb = TrialBalanceArgs {
        remote: remote_args(addr),
        ledger: PLATFORM.into(),
        as_of: AsOfArgs::default(),
    };
    let anonymous = Remote::connect(&addr.to_string(), None).await.unwrap();
    let e = tb.fetch(&anonymous).await.unwrap_err();
    assert_eq!(e.code(), Some(Code::Unauthenticated));
    assert!(e.to_string().contains("set LEDGERLINE_TOKEN"), "{e}");
    let wrong = Remote::connect(
        &addr.to_string(),
        Some(Token::new("wrong-secret-5521").unwrap()),
    )
    .await
    .unwrap();
    let e = tb.fetch(&wrong).await.unwrap_err();
    assert_eq!(e.code(), Some(Code::Unauthenticated));
    assert!(e.to_string().contains("rejected the token"), "{e}");
    assert!(!e.to_string().contains("wrong-secret-5521"), "{e}");
    let other = Remote::connect(&addr.to_string(), Some(Token::new(OTHER).unwrap()))
        .await
        .unwrap();
    let e = tb.fetch(&other).await.unwrap_err();
    assert_eq!(e.code(), Some(Code::PermissionDenied));
    assert!(e.to_string().contains("auditor or admin"), "{e}");
    assert!(!e.to_string().contains(OTHER), "{e}");
    // An invalid argument passes the ledger's own message on.
    let bad_currency = BalancesArgs {
        remote: remote_args(addr),
        ledger: String::new(),
        account: String::new(),
        currency: "zzz".into(),
        as_of: AsOfArgs::default(),
    };
    let e = bad_currency.fetch(&remote).await.unwrap_err();
    assert_eq!(e.code(), Some(Code::InvalidArgument));
    assert!(e.to_string().contains("currency"), "{e}");

    stop.cancel();
    running.task.await.unwrap().unwrap();
}
