//! Facts (`account 0x1f raw`, separated by 0x1e) folded into the core journal. Beyond "never
//! panics", each input checks what the ledger service relies on:
//! - a lean journal posts what a full one posts (the same outcomes, entries and balances);
//! - a batch taken back leaves no trace (the same join state and balances as before it);
//! - every entry balances per currency.
#![no_main]

use std::collections::BTreeMap;

use ledgerline_core::{Currency, Ledger};
use libfuzzer_sys::fuzz_target;

fn facts(data: &[u8]) -> Vec<(&str, &[u8])> {
    data.split(|b| *b == 0x1e)
        .filter_map(|fact| {
            let at = fact.iter().position(|b| *b == 0x1f)?;
            let account = std::str::from_utf8(&fact[..at]).ok()?;
            Some((account, &fact[at + 1..]))
        })
        .collect()
}

fn state(l: &Ledger) -> (BTreeMap<String, String>, usize, usize) {
    let footprint = l.footprint();
    let balances = l
        .ledgers()
        .map(|ledger| (ledger.to_owned(), l.trial_balance(ledger).to_string()))
        .collect();
    let keys = footprint.join_keys.iter().map(|(_, n)| n).sum();
    (balances, footprint.entry_index, keys)
}

fuzz_target!(|data: &[u8]| {
    let facts = facts(data);
    let half = facts.len() / 2;
    let mut full = Ledger::new();
    let mut lean = Ledger::lean();
    for (account, raw) in &facts[..half] {
        assert_eq!(full.apply(account, raw), lean.apply(account, raw));
    }
    let before = state(&lean);
    lean.begin_batch();
    for (account, raw) in &facts[half..] {
        let _ = lean.apply(account, raw);
    }
    assert!(lean.rollback_batch());
    assert_eq!(state(&lean), before, "a batch taken back left a trace");
    for (account, raw) in &facts[half..] {
        assert_eq!(full.apply(account, raw), lean.apply(account, raw));
    }
    assert_eq!(state(&full).0, state(&lean).0, "lean and full balances differ");
    for e in full.entries() {
        let mut sums: BTreeMap<Currency, i128> = BTreeMap::new();
        for line in e.lines() {
            *sums.entry(line.amount().currency()).or_default() += i128::from(line.amount().minor());
        }
        assert!(sums.values().all(|s| *s == 0), "unbalanced entry {e:?}");
    }
});
