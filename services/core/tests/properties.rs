//! Property tests: balance per currency, order- and duplicate-independence, idempotence,
//! exact money conversion, and clearing accounts at zero once every fact is in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::{PLATFORM, Paid, RawFact, Sale, world};
use ledgerline_core::{Account, Currency, JournalEntry, Ledger, Money};
use proptest::prelude::*;
use rust_decimal::Decimal;

fn sale() -> impl Strategy<Value = Sale> {
    (
        prop_oneof![Just("usd"), Just("eur"), Just("jpy"), Just("kwd")],
        any::<bool>(),
        1_000_i64..1_000_000,
        prop_oneof![
            Just(Paid::NoInvoice),
            Just(Paid::ByCharge),
            Just(Paid::ByPaymentIntent)
        ],
        proptest::option::of((1_i64..100, any::<bool>())),
        proptest::option::of(any::<bool>()),
        any::<bool>(),
        90_i64..130,
    )
        .prop_map(
            |(cur, settle_in_usd, amount, paid, refund, dispute, moves, rate)| {
                // Stripe's KWD amounts end in 0.
                let amount = if cur == "kwd" { amount * 10 } else { amount };
                let settle_in_usd = settle_in_usd && cur != "usd";
                // What Stripe settled in USD: any amount will do; the ledger never computes it.
                let settled = if settle_in_usd {
                    amount * rate / 100 + 1
                } else {
                    amount
                };
                let fee = settled * 3 / 100;
                let refund = refund.map(|(pct, note)| {
                    (
                        (amount * pct / 100).max(1),
                        (settled * pct / 100).max(1),
                        note,
                    )
                });
                Sale {
                    presentment: cur,
                    settle_in_usd,
                    amount,
                    settled,
                    fee,
                    paid,
                    refund,
                    dispute,
                    available_on_moves: moves,
                }
            },
        )
}

fn fold(facts: &[RawFact]) -> Ledger {
    let mut l = Ledger::new();
    for (account, raw) in facts {
        l.apply(account, raw).expect("every generated fact posts");
    }
    l
}

/// The entries, keyed by id, for comparing two folds.
fn entries(l: &Ledger) -> BTreeMap<String, JournalEntry> {
    l.entries()
        .iter()
        .map(|e| (e.id().to_string(), e.clone()))
        .collect()
}

fn same_entries(a: &Ledger, b: &Ledger) -> bool {
    let (ea, eb) = (entries(a), entries(b));
    ea.len() == eb.len()
        && ea
            .iter()
            .all(|(id, e)| eb.get(id).is_some_and(|o| o.same_content(e)))
}

/// `facts` with the facts at `dups` added again, in a deterministic Fisher-Yates shuffle
/// from `seed` (no clock, no OS randomness).
fn shuffled(facts: &[RawFact], seed: u64, dups: &[prop::sample::Index]) -> Vec<RawFact> {
    let mut shuffled = facts.to_vec();
    for d in dups {
        shuffled.push(facts[d.index(facts.len())].clone());
    }
    let mut state = seed | 1;
    for i in (1..shuffled.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let j = usize::try_from(state % (i as u64 + 1)).unwrap();
        shuffled.swap(i, j);
    }
    shuffled
}

fn balances_per_currency(e: &JournalEntry) -> BTreeMap<Currency, i128> {
    let mut sums = BTreeMap::new();
    for l in e.lines() {
        *sums.entry(l.amount().currency()).or_insert(0_i128) += i128::from(l.amount().minor());
    }
    sums
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_entry_balances_and_clearing_ends_at_zero(
        sales in proptest::collection::vec(sale(), 1..12),
        fails in any::<bool>(),
    ) {
        let facts = world(&sales, fails);
        let l = fold(&facts);
        for e in l.entries() {
            prop_assert!(balances_per_currency(e).values().all(|s| *s == 0), "{e}");
            prop_assert!(e.lines().iter().all(|x| !x.amount().is_zero()));
        }
        prop_assert!(l.conflicts().is_empty());
        prop_assert_eq!(l.awaiting().count(), 0);
        let tb = l.trial_balance(PLATFORM);
        prop_assert!(tb.is_balanced());
        // Every fact is in: clearing accounts and receivables are at zero.
        for row in &tb.rows {
            let settled_account = matches!(
                row.account,
                Account::ClearingStripePayments | Account::Receivable(_) | Account::BankInTransit
            );
            prop_assert!(!settled_account, "{} left {}", row.account, row.balance);
        }
        // Uninvoiced sales hold exactly the charges no invoice claimed, in the balance currency.
        let mut uninvoiced: BTreeMap<&str, i64> = BTreeMap::new();
        for s in &sales {
            if matches!(s.paid, Paid::NoInvoice) {
                let bal = if s.settle_in_usd { "usd" } else { s.presentment };
                *uninvoiced.entry(bal).or_default() += s.settled;
            }
        }
        for (cur, sum) in uninvoiced {
            let c = Currency::parse(cur).unwrap();
            prop_assert_eq!(l.balance(PLATFORM, &Account::UninvoicedSales, c).minor(), -sum);
        }
    }

    #[test]
    fn any_order_with_duplicates_gives_the_same_journal(
        sales in proptest::collection::vec(sale(), 1..8),
        fails in any::<bool>(),
        seed in any::<u64>(),
        dups in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let facts = world(&sales, fails);
        let reference = fold(&facts);
        let other = fold(&shuffled(&facts, seed, &dups));
        prop_assert!(same_entries(&reference, &other));
        prop_assert_eq!(reference.trial_balance(PLATFORM), other.trial_balance(PLATFORM));
    }

    /// The ledger service folds into a lean journal: fact by fact, in any order and with
    /// duplicates, it must report and post exactly what a journal that keeps everything does.
    #[test]
    fn a_lean_journal_posts_what_a_full_one_posts(
        sales in proptest::collection::vec(sale(), 1..8),
        fails in any::<bool>(),
        seed in any::<u64>(),
        dups in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let mut full = Ledger::new();
        let mut lean = Ledger::lean();
        for (account, raw) in shuffled(&world(&sales, fails), seed, &dups) {
            let expected = full.apply(&account, &raw).unwrap();
            let out = lean.apply(&account, &raw).unwrap();
            prop_assert_eq!(&out, &expected);
            let posted = lean.take_posted();
            prop_assert_eq!(posted.len(), expected.posted.len());
            for (entry, id) in posted.iter().zip(&expected.posted) {
                prop_assert_eq!(Some(entry), full.entry(*id));
            }
        }
        prop_assert_eq!(lean.trial_balance(PLATFORM), full.trial_balance(PLATFORM));
        prop_assert!(lean.entries().len() < full.entries().len());
    }

    /// The ledger service folds each batch in a database transaction; when one fails it takes
    /// the batch back in memory and folds it again. Fact by fact afterwards, the journal must
    /// report and post exactly what one that never saw the failed batch does.
    #[test]
    fn a_batch_rolled_back_leaves_no_trace(
        sales in proptest::collection::vec(sale(), 1..8),
        fails in any::<bool>(),
        seed in any::<u64>(),
        dups in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        cuts in (any::<prop::sample::Index>(), any::<prop::sample::Index>()),
        keeps_history in any::<bool>(),
    ) {
        let facts = shuffled(&world(&sales, fails), seed, &dups);
        let (a, b) = (cuts.0.index(facts.len() + 1), cuts.1.index(facts.len() + 1));
        let (first, second) = (a.min(b), a.max(b));
        let mut reference = Ledger::new();
        let mut subject = if keeps_history { Ledger::new() } else { Ledger::lean() };
        for (account, raw) in &facts[..first] {
            reference.apply(account, raw).unwrap();
            subject.apply(account, raw).unwrap();
        }
        // The batch that fails: every fact after the first cut, taken back.
        subject.begin_batch();
        for (account, raw) in &facts[first..] {
            subject.apply(account, raw).unwrap();
        }
        prop_assert!(subject.rollback_batch());
        prop_assert!(!subject.in_batch());
        prop_assert_eq!(subject.trial_balance(PLATFORM), reference.trial_balance(PLATFORM));
        // Folded again, in two batches that commit.
        for (batch, facts) in [&facts[first..second], &facts[second..]].into_iter().enumerate() {
            subject.begin_batch();
            for (account, raw) in facts {
                let expected = reference.apply(account, raw).unwrap();
                prop_assert_eq!(subject.apply(account, raw).unwrap(), expected, "batch {}", batch);
            }
            subject.commit_batch();
        }
        prop_assert!(!subject.rollback_batch(), "nothing open to take back");
        let digests = |l: &Ledger| l.entry_digests().collect::<BTreeMap<_, _>>();
        prop_assert_eq!(digests(&subject), digests(&reference));
        prop_assert_eq!(subject.conflicts(), reference.conflicts());
        prop_assert_eq!(subject.awaiting().count(), reference.awaiting().count());
        prop_assert_eq!(subject.trial_balance(PLATFORM), reference.trial_balance(PLATFORM));
        // No join key left behind or lost by the rollback (the counts a lean and a full journal
        // share: which entries they keep whole differs by design).
        let (s, r) = (subject.footprint(), reference.footprint());
        prop_assert_eq!(s.entry_index, r.entry_index);
        prop_assert_eq!(s.join_keys, r.join_keys);
        prop_assert_eq!((s.claims, s.observations, s.balances), (r.claims, r.observations, r.balances));
    }

    #[test]
    fn folding_twice_adds_nothing(sales in proptest::collection::vec(sale(), 1..8)) {
        let facts = world(&sales, true);
        let mut l = fold(&facts);
        let before = l.entries().len();
        for (account, raw) in &facts {
            let out = l.apply(account, raw).unwrap();
            prop_assert!(out.posted.is_empty(), "{:?}", out.posted);
            prop_assert!(out.conflicts.is_empty());
        }
        prop_assert_eq!(l.entries().len(), before);
    }

    #[test]
    fn minor_units_round_trip_through_decimal(
        code in prop_oneof![
            Just("usd".to_owned()), Just("jpy".to_owned()), Just("kwd".to_owned()),
            Just("isk".to_owned()), Just("ugx".to_owned()), Just("huf".to_owned()),
            Just("twd".to_owned()), Just("bhd".to_owned()), Just("clp".to_owned()),
            "[a-z]{3}",
        ],
        minor in any::<i64>(),
    ) {
        let c = Currency::parse(&code).unwrap();
        let d: Decimal = c.minor_to_decimal(minor);
        prop_assert_eq!(d.scale(), c.exponent());
        prop_assert_eq!(c.decimal_to_minor(d), Ok(minor));
        let m = Money::from_decimal(c, d).unwrap();
        prop_assert_eq!(m.minor(), minor);
        prop_assert_eq!(m.amount(), d);
        // Trailing zeros do not change the value.
        let padded = d * Decimal::new(10, 1);
        prop_assert_eq!(c.decimal_to_minor(padded), Ok(minor));
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut l = Ledger::new();
        let _ = l.apply(PLATFORM, &bytes);
    }
}
