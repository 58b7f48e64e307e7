//! The core's books against stripe-sim's ground truth.
//!
//! Each test generates a Stripe world (platform with `usd` and `eur` balances, connected
//! accounts, invoices paid by card in six presentment currencies, one-off charges, refunds,
//! credit notes, disputes, payouts, transfers, application fees), folds every event and every
//! balance transaction (in its final state) into a [`Ledger`], and compares the books with
//! what the simulator says happened, computed from its own state:
//!
//! * Stripe balance per account and currency: `assets:stripe:pending + available` = Stripe's
//!   balance, and as of the world's end (and at eight instants before) pending and available
//!   each equal the simulated ones;
//! * revenue and discounts, tax, bad debt, invoiced totals, invoice payments and credit notes
//!   (invoice currency); uninvoiced sales, fees by type, refunds (with and without a credit
//!   note), disputes (amounts and fees), payouts (paid, in flight, returned), application fees
//!   and transfers (settlement currency);
//! * open receivables per customer;
//! * clearing and suspense accounts at zero once every fact is in, and every account the world
//!   never moves at zero;
//! * for some seeds, the same facts shuffled, with duplicates and with the balance
//!   transactions also in their state as of creation: the same entries and the same balances.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::collections::{BTreeMap, BTreeSet};

use ledgerline_core::parse::{Fact as ParsedFact, parse};
use ledgerline_core::{Account, Currency, FeeType, Ledger, SkipKind, Timestamp, TrialBalance};
use ledgerline_stripe_sim::object::ObjectKind;
use ledgerline_stripe_sim::world::{GroundTruth, World, WorldConfig};

/// The ledger id of the platform's own facts (the simulator's platform has no `acct_` id).
const PLATFORM: &str = "acct_platform";

/// Event types the rules are expected to skip as unsupported; anything else unsupported is a
/// fact the books would silently miss.
const UNSUPPORTED_OK: &[&str] = &[
    "application_fee.created",
    "balance.available",
    "customer.created",
    "price.created",
    "product.created",
    "refund.created",
];

/// One fact as the ingester publishes it: the account it was read from and its raw JSON.
struct RawFact {
    account: String,
    raw: Vec<u8>,
    /// Balance transactions that matured before the end: the JSON as of creation (`pending`),
    /// a second observation of the same fact.
    as_created: Option<Vec<u8>>,
}

fn ledger_id(account: &Option<String>) -> &str {
    account.as_deref().unwrap_or(PLATFORM)
}

/// Every event and balance transaction of the world. A balance transaction is rendered as the
/// API shows it at the end of the world: `available` once `available_on` has passed.
fn facts(world: &World) -> Vec<RawFact> {
    let end = world.truth.end;
    world
        .objects
        .iter()
        .filter_map(|o| {
            let account = ledger_id(&o.account).to_owned();
            match o.kind {
                ObjectKind::Event => Some(RawFact {
                    account,
                    raw: o.json.clone().into_bytes(),
                    as_created: None,
                }),
                ObjectKind::BalanceTransaction => {
                    let matured = o.available_on.is_some_and(|t| t <= end)
                        && o.json.contains(r#""status":"pending""#);
                    Some(if matured {
                        RawFact {
                            account,
                            raw: o
                                .json
                                .replace(r#""status":"pending""#, r#""status":"available""#)
                                .into_bytes(),
                            as_created: Some(o.json.clone().into_bytes()),
                        }
                    } else {
                        RawFact {
                            account,
                            raw: o.json.clone().into_bytes(),
                            as_created: None,
                        }
                    })
                }
                _ => None,
            }
        })
        .collect()
}

/// Folds the facts; every fact must post or be skipped for a known reason, with no conflict.
fn fold<'a>(facts: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Ledger {
    let mut ledger = Ledger::new();
    let mut unsupported = BTreeSet::new();
    for (account, raw) in facts {
        let out = ledger.apply(account, raw).unwrap_or_else(|e| {
            panic!("{e}\n  in {}", String::from_utf8_lossy(raw));
        });
        assert!(out.conflicts.is_empty(), "conflict: {:?}", out.conflicts);
        if out.skip.as_ref().map(|s| s.kind) == Some(SkipKind::Unsupported)
            && let Ok(ParsedFact::Event(ev)) = parse(raw)
        {
            unsupported.insert(ev.kind.into_owned());
        }
    }
    let unexpected: Vec<_> = unsupported
        .iter()
        .filter(|t| !UNSUPPORTED_OK.contains(&t.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "event types skipped as unsupported: {unexpected:?}"
    );
    assert!(ledger.conflicts().is_empty());
    assert_eq!(
        ledger.awaiting().count(),
        0,
        "invoice payments still waiting for their invoice's customer"
    );
    ledger
}

fn cur(code: &str) -> Currency {
    Currency::parse(code).unwrap()
}

/// Sums of entry lines by (ledger, rule, account, currency), and the same for the entries of
/// balance transactions that touch `expenses:disputes` (for dispute fees).
#[derive(Default)]
struct EntrySums {
    by_rule: BTreeMap<(String, &'static str, Account, Currency), (i64, i64)>,
    dispute_fees: BTreeMap<(String, Currency), i64>,
}

impl EntrySums {
    fn of(ledger: &Ledger) -> Self {
        let mut s = EntrySums::default();
        for e in ledger.entries() {
            let disputes = e.rule() == "balance_transaction"
                && e.lines().iter().any(|l| l.account() == &Account::Disputes);
            for l in e.lines() {
                let m = l.amount();
                // Per-customer and per-account names are summed under one key.
                let account = match l.account() {
                    Account::Receivable(_) => Account::Receivable("*".into()),
                    Account::CustomerCredit(_) => Account::CustomerCredit("*".into()),
                    Account::Connect(_) => Account::Connect("*".into()),
                    other => other.clone(),
                };
                let slot = s
                    .by_rule
                    .entry((e.ledger().to_owned(), e.rule(), account, m.currency()))
                    .or_default();
                if m.minor() > 0 {
                    slot.0 += m.minor();
                } else {
                    slot.1 -= m.minor();
                }
                if disputes && matches!(l.account(), Account::StripeFees(_)) {
                    *s.dispute_fees
                        .entry((e.ledger().to_owned(), m.currency()))
                        .or_default() += m.minor();
                }
            }
        }
        s
    }

    /// (debits, credits) of `account` in entries of `rule`.
    fn get(&self, ledger: &str, rule: &'static str, account: Account, c: Currency) -> (i64, i64) {
        self.by_rule
            .get(&(ledger.to_owned(), rule, account, c))
            .copied()
            .unwrap_or_default()
    }

    fn net(&self, ledger: &str, rule: &'static str, account: Account, c: Currency) -> i64 {
        let (dr, cr) = self.get(ledger, rule, account, c);
        dr - cr
    }
}

/// Collects every mismatch, so that one run shows them all.
struct Check<'a> {
    ledger: &'a Ledger,
    label: String,
    errors: Vec<String>,
    compared: usize,
}

impl Check<'_> {
    fn bal(&self, ledger: &str, account: &Account, c: Currency) -> i64 {
        self.ledger.balance(ledger, account, c).minor()
    }

    fn eq(&mut self, what: impl FnOnce() -> String, got: i64, want: i64) {
        self.compared += 1;
        if got != want {
            self.errors
                .push(format!("{}: ledger {got}, ground truth {want}", what()));
        }
    }
}

/// Compares the books with the ground truth; returns the number of comparisons made.
fn compare(label: &str, ledger: &Ledger, truth: &GroundTruth) -> usize {
    let sums = EntrySums::of(ledger);
    let mut ck = Check {
        ledger,
        label: label.to_owned(),
        errors: Vec::new(),
        compared: 0,
    };
    let ledgers: BTreeSet<&str> = ledger.ledgers().collect();
    let tbs: BTreeMap<&str, TrialBalance> = ledgers
        .iter()
        .map(|l| (*l, ledger.trial_balance(l)))
        .collect();
    for (l, tb) in &tbs {
        assert!(tb.is_balanced(), "{label}: trial balance of {l}");
    }

    // ---- Stripe balances: now, as of the end, and along the way.
    let end = Timestamp::from_unix(truth.end);
    let first = ledger
        .entries()
        .iter()
        .map(|e| e.effective_at().unix())
        .min()
        .unwrap_or(truth.end);
    let instants: Vec<i64> = (1..=8)
        .map(|i| first + (truth.end - first) * i / 8)
        .collect();
    for (ac, b) in &truth.balances {
        let l = ledger_id(&ac.account);
        let c = cur(&ac.currency);
        let total = ck.bal(l, &Account::StripePending, c) + ck.bal(l, &Account::StripeAvailable, c);
        ck.eq(
            || format!("{l} {c} Stripe balance (pending + available)"),
            total,
            b.total(),
        );
        let tb = ledger.trial_balance_as_of(l, end);
        let p = tb.get(&Account::StripePending, c).minor();
        let a = tb.get(&Account::StripeAvailable, c).minor();
        ck.eq(|| format!("{l} {c} pending as of the end"), p, b.pending);
        ck.eq(
            || format!("{l} {c} available as of the end"),
            a,
            b.available,
        );
        if truth.has_history() {
            for &t in &instants {
                let want = truth.balance_at(ac, t).unwrap_or_default();
                let tb = ledger.trial_balance_as_of(l, Timestamp::from_unix(t));
                let p = tb.get(&Account::StripePending, c).minor();
                let a = tb.get(&Account::StripeAvailable, c).minor();
                ck.eq(|| format!("{l} {c} pending at {t}"), p, want.pending);
                ck.eq(|| format!("{l} {c} available at {t}"), a, want.available);
            }
        }
    }

    // ---- Totals per (account, currency).
    for (ac, t) in &truth.totals {
        let l = ledger_id(&ac.account);
        let c = cur(&ac.currency);
        let bal = |a: Account| ledger.balance(l, &a, c).minor();

        // Invoices (invoice currency).
        let revenue = -(bal(Account::Revenue) + bal(Account::Discounts));
        ck.eq(
            || format!("{l} {c} revenue net of discounts"),
            revenue,
            t.invoiced_revenue,
        );
        ck.eq(
            || format!("{l} {c} tax"),
            -bal(Account::Tax),
            t.invoiced_tax,
        );
        ck.eq(
            || format!("{l} {c} bad debt"),
            bal(Account::BadDebt),
            t.uncollectible,
        );
        let invoiced = [
            Account::Receivable("*".into()),
            Account::CustomerCredit("*".into()),
        ]
        .into_iter()
        .map(|a| {
            sums.net(l, "invoice.finalized", a.clone(), c) + sums.net(l, "invoice.voided", a, c)
        })
        .sum::<i64>();
        ck.eq(
            || format!("{l} {c} invoiced totals (not void)"),
            invoiced,
            t.invoiced_total,
        );
        let paid = -(sums.net(
            l,
            "invoice_payment.paid",
            Account::Receivable("*".into()),
            c,
        ) + sums.net(l, "invoice.paid", Account::Receivable("*".into()), c));
        ck.eq(
            || format!("{l} {c} invoice payments"),
            paid,
            t.invoice_payments,
        );
        let credited = [
            Account::Receivable("*".into()),
            Account::ClearingStripePayments,
            Account::ClearingOffStripe,
            Account::CustomerCredit("*".into()),
        ]
        .into_iter()
        .map(|a| -sums.net(l, "credit_note.created", a, c))
        .sum::<i64>();
        ck.eq(
            || format!("{l} {c} credit notes"),
            credited,
            t.credit_notes_total,
        );
        let cn_refunds = -sums.net(l, "credit_note.created", Account::ClearingStripePayments, c);
        ck.eq(
            || format!("{l} {c} refunds claimed by credit notes"),
            cn_refunds,
            t.refunds_for_credit_notes,
        );

        // Charges and refunds (settlement currency).
        let charged = sums
            .get(l, "balance_transaction", Account::UninvoicedSales, c)
            .1;
        ck.eq(
            || format!("{l} {c} charges settled"),
            charged,
            t.charges_settled,
        );
        ck.eq(
            || format!("{l} {c} uninvoiced sales"),
            -bal(Account::UninvoicedSales),
            t.uninvoiced_sales_settled,
        );
        let refunded = sums.get(l, "balance_transaction", Account::Refunds, c).0;
        ck.eq(
            || format!("{l} {c} refunds settled"),
            refunded,
            t.refunds_settled,
        );
        ck.eq(
            || format!("{l} {c} refunds without a credit note"),
            bal(Account::Refunds),
            t.refunds_settled - t.credit_note_refunds_settled,
        );

        // Fees by type.
        let mut fee_accounts = 0;
        for (ty, amount) in &t.fees {
            let a = Account::StripeFees(FeeType::from_stripe(ty));
            ck.eq(|| format!("{l} {c} fees {ty}"), bal(a), *amount);
        }
        if let Some(tb) = tbs.get(l) {
            for r in tb.rows.iter().filter(|r| r.balance.currency() == c) {
                if matches!(r.account, Account::StripeFees(_)) {
                    fee_accounts += r.balance.minor();
                }
            }
        }
        ck.eq(
            || format!("{l} {c} fees, all types"),
            fee_accounts,
            t.fees_total,
        );

        // Disputes.
        ck.eq(
            || format!("{l} {c} disputes (withdrawn − reinstated)"),
            bal(Account::Disputes),
            t.dispute_withdrawals - t.dispute_reinstatements,
        );
        let (withdrawn, reinstated) = sums.get(l, "balance_transaction", Account::Disputes, c);
        ck.eq(
            || format!("{l} {c} dispute withdrawals"),
            withdrawn,
            t.dispute_withdrawals,
        );
        ck.eq(
            || format!("{l} {c} dispute reinstatements"),
            reinstated,
            t.dispute_reinstatements,
        );
        let fees = sums
            .dispute_fees
            .get(&(l.to_owned(), c))
            .copied()
            .unwrap_or(0);
        ck.eq(|| format!("{l} {c} dispute fees"), fees, t.dispute_fees);

        // Payouts.
        ck.eq(
            || format!("{l} {c} payouts paid (bank)"),
            bal(Account::Bank),
            t.payouts_paid,
        );
        ck.eq(
            || format!("{l} {c} payouts in flight"),
            bal(Account::BankInTransit),
            t.payouts_in_flight,
        );
        let (out, back) = sums.get(l, "balance_transaction", Account::BankInTransit, c);
        ck.eq(
            || format!("{l} {c} payouts created"),
            out,
            t.payouts_paid + t.payouts_failed + t.payouts_canceled + t.payouts_in_flight,
        );
        ck.eq(
            || format!("{l} {c} payouts returned (failed, canceled)"),
            back,
            t.payouts_failed + t.payouts_canceled,
        );

        // Connect.
        if ac.account.is_none() {
            ck.eq(
                || format!("{l} {c} application fees earned"),
                -bal(Account::ApplicationFees),
                t.application_fees_earned,
            );
            let transfers = sums.net(l, "transfer.created", Account::Connect("*".into()), c)
                + sums.net(l, "transfer.reversal", Account::Connect("*".into()), c);
            ck.eq(
                || format!("{l} {c} transfers out"),
                transfers,
                t.transfers_out,
            );
        } else {
            ck.eq(
                || format!("{l} {c} transfers received from the platform"),
                -bal(Account::PlatformTransfers),
                t.transfers_received,
            );
        }
        ck.eq(
            || format!("{l} {c} Σ net of balance transactions"),
            bal(Account::StripePending) + bal(Account::StripeAvailable),
            t.net,
        );
    }
    for ((acct, code), amount) in &truth.transfers {
        let c = cur(code);
        let got = ledger
            .balance(PLATFORM, &Account::Connect(acct.as_str().into()), c)
            .minor();
        ck.eq(|| format!("transfers to {acct} {c}"), got, *amount);
    }
    for ((acct, code), amount) in &truth.application_fees {
        let c = cur(code);
        let a = Account::StripeFees(FeeType::ApplicationFee);
        let got = ledger.balance(acct, &a, c).minor();
        ck.eq(
            || format!("application fees paid by {acct} {c}"),
            got,
            *amount,
        );
    }

    // ---- Open receivables per customer.
    let mut receivables: BTreeMap<(Option<String>, String, String), i64> = BTreeMap::new();
    for (l, tb) in &tbs {
        for r in &tb.rows {
            if let Account::Receivable(customer) = &r.account {
                let account = (*l != PLATFORM).then(|| (*l).to_owned());
                let key = (
                    account,
                    customer.to_string(),
                    r.balance.currency().code().to_owned(),
                );
                receivables.insert(key, r.balance.minor());
            }
        }
    }
    let keys: BTreeSet<_> = receivables
        .keys()
        .chain(truth.open_receivables.keys())
        .collect();
    for k in keys {
        let got = receivables.get(k).copied().unwrap_or(0);
        let want = truth.open_receivables.get(k).copied().unwrap_or(0);
        ck.eq(|| format!("open receivable {k:?}"), got, want);
    }

    // ---- Clearing and suspense at zero; accounts this world never moves at zero.
    for (l, tb) in &tbs {
        for r in &tb.rows {
            let must_be_zero = matches!(
                r.account,
                Account::ClearingStripePayments
                    | Account::ClearingOffStripe
                    | Account::ClearingConnectTransfers
                    | Account::Suspense
                    | Account::CustomerCredit(_)
                    | Account::StripeReserved
                    | Account::StripeAdjustments
                    | Account::BankFees
            );
            if must_be_zero {
                let (a, m) = (&r.account, r.balance);
                ck.eq(|| format!("{l} {a} {} at zero", m.currency()), m.minor(), 0);
            }
        }
    }

    if !ck.errors.is_empty() {
        let n = ck.errors.len();
        let shown: Vec<_> = ck.errors.iter().take(40).cloned().collect();
        panic!(
            "{}: {n} of {} comparisons differ:\n  {}",
            ck.label,
            ck.compared,
            shown.join("\n  ")
        );
    }
    ck.compared
}

/// splitmix64, for a reproducible shuffle without a dependency.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).unwrap()).unwrap()
    }
}

/// The facts in a random order, every 7th one twice, and every matured balance transaction
/// also in its state as of creation.
fn shuffled(facts: &[RawFact], seed: u64) -> Vec<(&str, &[u8])> {
    let mut mix = Mix(seed);
    let mut out: Vec<(&str, &[u8])> = Vec::with_capacity(facts.len() * 3 / 2);
    for f in facts {
        out.push((&f.account, &f.raw));
        if let Some(old) = &f.as_created {
            out.push((&f.account, old));
        }
        if mix.below(7) == 0 {
            out.push((&f.account, &f.raw));
        }
    }
    for i in (1..out.len()).rev() {
        let j = mix.below(i + 1);
        out.swap(i, j);
    }
    out
}

fn same_books(label: &str, a: &Ledger, b: &Ledger) {
    assert_eq!(a.entry_ids(), b.entry_ids(), "{label}: the same entries");
    let la: BTreeSet<&str> = a.ledgers().collect();
    let lb: BTreeSet<&str> = b.ledgers().collect();
    assert_eq!(la, lb, "{label}: the same ledgers");
    for l in la {
        assert_eq!(
            a.trial_balance(l),
            b.trial_balance(l),
            "{label}: trial balance of {l}"
        );
    }
}

/// What a world exercised, so that a comparison that always holds is noticed.
fn exercised(truth: &GroundTruth, seen: &mut BTreeSet<&'static str>) {
    for (ac, t) in &truth.totals {
        let mut add = |name: &'static str, v: i64| {
            if v != 0 {
                seen.insert(name);
            }
        };
        add("invoiced revenue", t.invoiced_revenue);
        add("invoiced tax", t.invoiced_tax);
        add("bad debt", t.uncollectible);
        add("credit notes", t.credit_notes_total);
        add("refunds with a credit note", t.credit_note_refunds_settled);
        add(
            "refunds without a credit note",
            t.refunds_settled - t.credit_note_refunds_settled,
        );
        add("uninvoiced sales", t.uninvoiced_sales_settled);
        add("dispute withdrawals", t.dispute_withdrawals);
        add("dispute reinstatements", t.dispute_reinstatements);
        add("dispute fees", t.dispute_fees);
        add("payouts paid", t.payouts_paid);
        add("payouts failed", t.payouts_failed);
        add("payouts canceled", t.payouts_canceled);
        add("payouts in flight", t.payouts_in_flight);
        add("transfers out", t.transfers_out);
        add("transfers received", t.transfers_received);
        add("application fees", t.application_fees_earned);
        add("VAT on fees", t.fees.get("tax").copied().unwrap_or(0));
        for code in ["jpy", "kwd", "gbp", "cad"] {
            if ac.currency == code {
                add("invoices in a currency settled in usd", t.invoiced_total);
            }
        }
        if ac.account.is_some() {
            add("charges on connected accounts", t.charges_settled);
        }
    }
    for b in truth.balances.values() {
        if b.pending != 0 {
            seen.insert("pending balance at the end");
        }
    }
    if !truth.open_receivables.is_empty() {
        seen.insert("open receivables");
    }
}

const EXERCISED: &[&str] = &[
    "invoiced revenue",
    "invoiced tax",
    "bad debt",
    "credit notes",
    "refunds with a credit note",
    "refunds without a credit note",
    "uninvoiced sales",
    "dispute withdrawals",
    "dispute reinstatements",
    "dispute fees",
    "payouts paid",
    "payouts failed",
    "payouts canceled",
    "payouts in flight",
    "transfers out",
    "transfers received",
    "application fees",
    "VAT on fees",
    "invoices in a currency settled in usd",
    "charges on connected accounts",
    "pending balance at the end",
    "open receivables",
];

/// Generates, folds in the world's order, compares; optionally also shuffled. Returns the
/// ground truth.
fn check(label: &str, cfg: &WorldConfig, shuffle: bool) -> GroundTruth {
    let world = World::generate(cfg);
    let facts = facts(&world);
    assert_eq!(facts.len() as u64, world.truth.facts, "{label}: every fact");
    let ledger = fold(facts.iter().map(|f| (f.account.as_str(), f.raw.as_slice())));
    let compared = compare(label, &ledger, &world.truth);
    if shuffle {
        let mixed = fold(shuffled(&facts, cfg.seed ^ 0x5_4FF1E));
        same_books(label, &ledger, &mixed);
        compare(&format!("{label} (shuffled)"), &mixed, &world.truth);
    }
    eprintln!(
        "{label}: {} facts, {} entries, {} ledgers, {compared} comparisons{}",
        facts.len(),
        ledger.entries().len(),
        ledger.ledgers().count(),
        if shuffle {
            ", shuffled twin identical"
        } else {
            ""
        }
    );
    world.truth
}

fn assert_exercised(label: &str, seen: &BTreeSet<&'static str>, except: &[&str]) {
    let missing: Vec<_> = EXERCISED
        .iter()
        .filter(|n| !seen.contains(*n) && !except.contains(n))
        .collect();
    assert!(missing.is_empty(), "{label} never exercised {missing:?}");
}

fn world(seed: u64, facts: u64) -> WorldConfig {
    WorldConfig::with_facts(seed, facts)
}

/// Ten default worlds (platform usd + eur, two connected accounts, gbp/jpy/cad/kwd settling
/// into usd) of 3,000 to 20,000 facts; three of them also shuffled with duplicates.
#[test]
fn default_worlds_match_the_ground_truth() {
    let mut seen = BTreeSet::new();
    for (seed, facts) in [
        (1, 3_000),
        (2, 5_000),
        (3, 8_000),
        (4, 12_000),
        (5, 20_000),
        (6, 4_000),
        (7, 6_000),
        (8, 10_000),
        (9, 15_000),
        (10, 7_000),
    ] {
        let label = format!("seed {seed}, {facts} facts");
        let truth = check(&label, &world(seed, facts), seed % 3 == 1);
        exercised(&truth, &mut seen);
    }
    // Disputes close 30 to 60 days after they open: the larger world sees them won.
    assert_exercised("the ten default worlds", &seen, &["dispute reinstatements"]);
}

/// A long world (about seven months): overdue invoices go uncollectible, disputes close,
/// payouts fail and are canceled.
#[test]
fn a_larger_world_matches_the_ground_truth() {
    let truth = check("seed 11, 60000 facts", &world(11, 60_000), false);
    let mut seen = BTreeSet::new();
    exercised(&truth, &mut seen);
    assert_exercised("the larger world", &seen, &[]);
}

/// Early history in the 2024-06-20 shape (invoices carry `charge`, no invoice payments), the
/// rest in the current one; folded in order and shuffled.
#[test]
fn legacy_api_history_matches_the_ground_truth() {
    let start = ledgerline_stripe_sim::world::DEFAULT_START;
    let cfg = WorldConfig {
        legacy_api_until: Some(start + 20 * 86_400),
        days: Some(40),
        ..world(12, 12_000)
    };
    let truth = check("seed 12, legacy API until day 20", &cfg, true);
    assert!(truth.totals.values().any(|t| t.invoice_payments != 0));
}

/// No Connect, and Connect with more connected accounts.
#[test]
fn connect_variants_match_the_ground_truth() {
    let none = WorldConfig {
        connected_accounts: 0,
        ..world(13, 6_000)
    };
    check("seed 13, no connected accounts", &none, false);
    let many = WorldConfig {
        connected_accounts: 5,
        ..world(14, 10_000)
    };
    check("seed 14, five connected accounts", &many, true);
}
