//! Golden scenarios: a stream of raw Stripe facts → the expected journal and trial balance.
//!
//! Each `tests/golden/*.txt` file is a scenario, written by hand (the expected entries were
//! reasoned out from the rules in the crate docs, not copied from the code's output):
//!
//! ```text
//! # comment
//! account acct_A                      the Stripe account facts are read from (default ledger)
//! fact [acct_X]                       raw Stripe JSON follows, up to a line `end`
//! {...}
//! end
//! entry RULE SOURCE @TIME [in LEDGER] an expected entry; its lines follow:
//!   Dr|Cr ACCOUNT CUR AMOUNT
//! trial_balance [LEDGER] [@TIME]      expected non-zero balances (as of TIME if given):
//!   Dr|Cr ACCOUNT CUR AMOUNT
//! ```
//!
//! The journal must contain exactly the expected entries. Each scenario is also folded in
//! reverse order, rotated, and with every fact twice: same entries, same balances.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Tests read their fixtures from disk; the crate itself never does.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeSet;
use std::path::Path;
use std::str::FromStr;

use ledgerline_core::{Account, Currency, Ledger, Money, Timestamp};
use rust_decimal::Decimal;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct LineSpec {
    account: String,
    currency: String,
    minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct EntrySpec {
    ledger: String,
    rule: String,
    source: String,
    at: i64,
    lines: Vec<LineSpec>,
}

#[derive(Debug)]
struct TrialSpec {
    ledger: String,
    as_of: Option<i64>,
    rows: Vec<LineSpec>,
}

#[derive(Debug, Default)]
struct Scenario {
    account: String,
    facts: Vec<(String, String)>,
    entries: Vec<EntrySpec>,
    trials: Vec<TrialSpec>,
}

fn parse_line(l: &str, file: &str) -> LineSpec {
    let parts: Vec<&str> = l.split_whitespace().collect();
    assert_eq!(parts.len(), 4, "{file}: bad line {l:?}");
    let sign = match parts[0] {
        "Dr" => 1,
        "Cr" => -1,
        other => panic!("{file}: expected Dr or Cr, got {other:?}"),
    };
    let account = Account::parse(parts[1]).unwrap_or_else(|| panic!("{file}: account {l:?}"));
    let currency = Currency::parse(parts[2]).unwrap();
    let amount = Decimal::from_str(parts[3]).unwrap();
    let minor = Money::from_decimal(currency, amount)
        .unwrap_or_else(|e| panic!("{file}: {l:?}: {e}"))
        .minor();
    LineSpec {
        account: account.to_string(),
        currency: currency.code().to_owned(),
        minor: sign * minor,
    }
}

fn load(path: &Path) -> Scenario {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).unwrap();
    let mut s = Scenario::default();
    let mut lines = text.lines().peekable();
    while let Some(raw) = lines.next() {
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = l.split_whitespace().collect();
        match words[0] {
            "account" => s.account = words[1].to_owned(),
            "fact" => {
                let account = words.get(1).map_or(s.account.clone(), |a| a.to_string());
                let mut json = String::new();
                for j in lines.by_ref() {
                    if j.trim() == "end" {
                        break;
                    }
                    json.push_str(j);
                    json.push('\n');
                }
                s.facts.push((account, json));
            }
            "entry" => {
                let at = words[3].strip_prefix('@').unwrap().parse().unwrap();
                let ledger = match words.get(4) {
                    Some(&"in") => words[5].to_owned(),
                    _ => s.account.clone(),
                };
                let mut e = EntrySpec {
                    ledger,
                    rule: words[1].to_owned(),
                    source: words[2].to_owned(),
                    at,
                    lines: vec![],
                };
                while let Some(next) = lines.peek() {
                    let t = next.trim();
                    if t.starts_with("Dr ") || t.starts_with("Cr ") {
                        e.lines.push(parse_line(t, &file));
                        lines.next();
                    } else {
                        break;
                    }
                }
                e.lines.sort();
                s.entries.push(e);
            }
            "trial_balance" => {
                let mut t = TrialSpec {
                    ledger: s.account.clone(),
                    as_of: None,
                    rows: vec![],
                };
                for w in &words[1..] {
                    match w.strip_prefix('@') {
                        Some(at) => t.as_of = Some(at.parse().unwrap()),
                        None => t.ledger = w.to_string(),
                    }
                }
                while let Some(next) = lines.peek() {
                    let tl = next.trim();
                    if tl.starts_with("Dr ") || tl.starts_with("Cr ") {
                        t.rows.push(parse_line(tl, &file));
                        lines.next();
                    } else {
                        break;
                    }
                }
                t.rows.sort();
                s.trials.push(t);
            }
            other => panic!("{file}: unknown directive {other:?}"),
        }
    }
    s
}

fn fold(facts: &[&(String, String)]) -> Ledger {
    let mut ledger = Ledger::new();
    for (account, json) in facts {
        ledger
            .apply(account, json.as_bytes())
            .unwrap_or_else(|e| panic!("fact failed: {e}\n{json}"));
    }
    ledger
}

fn actual_entries(ledger: &Ledger) -> BTreeSet<EntrySpec> {
    ledger
        .entries()
        .iter()
        .map(|e| {
            let mut lines: Vec<LineSpec> = e
                .lines()
                .iter()
                .map(|l| LineSpec {
                    account: l.account().to_string(),
                    currency: l.amount().currency().code().to_owned(),
                    minor: l.amount().minor(),
                })
                .collect();
            lines.sort();
            EntrySpec {
                ledger: e.ledger().to_owned(),
                rule: e.rule().to_owned(),
                source: e.source().to_owned(),
                at: e.effective_at().unix(),
                lines,
            }
        })
        .collect()
}

fn trial_rows(ledger: &Ledger, t: &TrialSpec) -> Vec<LineSpec> {
    let tb = match t.as_of {
        Some(at) => ledger.trial_balance_as_of(&t.ledger, Timestamp::from_unix(at)),
        None => ledger.trial_balance(&t.ledger),
    };
    assert!(
        tb.is_balanced(),
        "trial balance of {} not balanced",
        t.ledger
    );
    let mut rows: Vec<LineSpec> = tb
        .rows
        .iter()
        .map(|r| LineSpec {
            account: r.account.to_string(),
            currency: r.balance.currency().code().to_owned(),
            minor: r.balance.minor(),
        })
        .collect();
    rows.sort();
    rows
}

fn render(e: &EntrySpec) -> String {
    let mut s = format!("entry {} {} @{} in {}\n", e.rule, e.source, e.at, e.ledger);
    for l in &e.lines {
        s.push_str(&format!("  {} {} {}\n", l.account, l.currency, l.minor));
    }
    s
}

fn check(path: &Path) {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let s = load(path);
    let forward: Vec<&(String, String)> = s.facts.iter().collect();
    let ledger = fold(&forward);

    let expected: BTreeSet<EntrySpec> = s.entries.iter().cloned().collect();
    assert_eq!(
        expected.len(),
        s.entries.len(),
        "{name}: duplicate expectations"
    );
    let actual = actual_entries(&ledger);
    let missing: Vec<String> = expected.difference(&actual).map(render).collect();
    let unexpected: Vec<String> = actual.difference(&expected).map(render).collect();
    assert!(
        missing.is_empty() && unexpected.is_empty(),
        "{name}: journal differs\n--- expected, not posted:\n{}\n--- posted, not expected:\n{}",
        missing.join("\n"),
        unexpected.join("\n")
    );
    assert!(ledger.conflicts().is_empty(), "{name}: conflicts");
    assert_eq!(
        ledger.awaiting().count(),
        0,
        "{name}: entries still waiting"
    );
    for t in &s.trials {
        assert_eq!(
            trial_rows(&ledger, t),
            t.rows,
            "{name}: trial balance of {} as of {:?}",
            t.ledger,
            t.as_of
        );
    }

    // Order and duplicates do not matter.
    let reversed: Vec<&(String, String)> = s.facts.iter().rev().collect();
    let mut rotated: Vec<&(String, String)> = s.facts.iter().collect();
    rotated.rotate_left(s.facts.len() / 2);
    let twice: Vec<&(String, String)> = s.facts.iter().chain(s.facts.iter()).collect();
    for (label, order) in [
        ("reversed", reversed),
        ("rotated", rotated),
        ("twice", twice),
    ] {
        let other = fold(&order);
        assert_eq!(
            actual_entries(&other),
            actual,
            "{name}: {label} order gives other entries"
        );
        for t in &s.trials {
            assert_eq!(
                trial_rows(&other, t),
                t.rows,
                "{name}: {label}: trial balance"
            );
        }
    }
}

#[test]
fn golden_scenarios() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 10,
        "expected the golden scenarios in {dir:?}"
    );
    for p in &paths {
        check(p);
    }
}
