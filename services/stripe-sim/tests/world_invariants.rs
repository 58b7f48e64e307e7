//! Invariants of generated worlds, checked on several seeds and sizes against the rendered JSON
//! and against the ground truth (which is computed separately, from the simulation's state).
#![allow(clippy::unwrap_used, clippy::print_stderr)]

#[path = "world_support.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};

use ledgerline_stripe_sim::object::ObjectKind;
use ledgerline_stripe_sim::world::{API_VERSION, AccountCurrency, World, WorldConfig};
use serde_json::Value;
use support::*;

fn check_world(cfg: &WorldConfig) {
    let world = World::generate(cfg);
    let truth = &world.truth;
    let all = parse_all(&world.objects);

    // ---- sizes
    let events = of_kind(&all, ObjectKind::Event).count() as u64;
    let bts = of_kind(&all, ObjectKind::BalanceTransaction).count() as u64;
    assert_eq!(events, truth.events, "events");
    assert_eq!(bts, truth.balance_transactions, "balance transactions");
    assert_eq!(events + bts, truth.facts);
    assert!(truth.facts >= cfg.facts, "{} < {}", truth.facts, cfg.facts);
    assert!(
        truth.facts < cfg.facts + 64,
        "overshoot {} for {}",
        truth.facts,
        cfg.facts
    );

    // ---- ids are unique per (kind, account)
    let mut seen = BTreeSet::new();
    for p in &all {
        assert!(
            seen.insert((p.obj.kind, p.obj.account.clone(), p.obj.id.clone())),
            "duplicate {:?} {}",
            p.obj.kind,
            p.obj.id
        );
        if p.obj.kind != ObjectKind::Event || !p.obj.id.starts_with("evt_") {
            // every object's JSON id is its SimObject id
            if let Some(id) = p.v.get("id").and_then(Value::as_str) {
                assert_eq!(id, p.obj.id);
            }
        }
        assert_eq!(
            p.v.get("created")
                .and_then(Value::as_i64)
                .unwrap_or(p.obj.created),
            p.obj.created,
            "{}",
            p.obj.id
        );
    }
    let ids: BTreeSet<&str> = all.iter().map(|p| p.obj.id.as_str()).collect();
    let ids_by_account: BTreeSet<(Option<&str>, &str)> = all
        .iter()
        .map(|p| (p.obj.account.as_deref(), p.obj.id.as_str()))
        .collect();

    // ---- balance transactions
    let mut net: Sums = BTreeMap::new();
    let mut pending_end: Sums = BTreeMap::new();
    let mut fees_by_type: BTreeMap<(Option<String>, String, String), i64> = BTreeMap::new();
    for p in of_kind(&all, ObjectKind::BalanceTransaction) {
        let v = &p.v;
        let amount = int(v, "amount");
        let fee = int(v, "fee");
        let details: i64 = v["fee_details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| int(d, "amount"))
            .sum();
        assert_eq!(fee, details, "fee = Σ fee_details for {}", p.obj.id);
        assert_eq!(
            int(v, "net"),
            amount - fee,
            "net = amount − fee for {}",
            p.obj.id
        );
        let cur = str_of(v, "currency").to_owned();
        for d in v["fee_details"].as_array().unwrap() {
            assert_eq!(str_of(d, "currency"), cur);
            *fees_by_type
                .entry((
                    p.obj.account.clone(),
                    cur.clone(),
                    str_of(d, "type").to_owned(),
                ))
                .or_default() += int(d, "amount");
        }
        assert_eq!(p.obj.available_on, Some(int(v, "available_on")));
        // `status` is rendered as of creation; the HTTP layer re-renders it against its clock
        let pending = int(v, "available_on") > int(v, "created");
        assert_eq!(
            str_of(v, "status"),
            if pending { "pending" } else { "available" }
        );
        assert_eq!(str_of(v, "object"), "balance_transaction");
        assert!(int(v, "available_on") >= int(v, "created"));
        assert!(
            ids.contains(str_of(v, "source")),
            "BT source {} exists",
            str_of(v, "source")
        );
        let key = (p.obj.account.clone(), cur);
        *net.entry(key.clone()).or_default() += int(v, "net");
        if int(v, "available_on") > truth.end {
            *pending_end.entry(key).or_default() += int(v, "net");
        }
        assert_eq!(filter(&p.obj, "type"), Some(str_of(v, "type")));
        assert_eq!(filter(&p.obj, "source"), Some(str_of(v, "source")));
    }
    for (k, b) in &truth.balances {
        let key = (k.account.clone(), k.currency.clone());
        assert_eq!(
            net.get(&key).copied().unwrap_or(0),
            b.total(),
            "Σ net = pending + available for {k:?}"
        );
        assert_eq!(
            pending_end.get(&key).copied().unwrap_or(0),
            b.pending,
            "pending for {k:?}"
        );
        let t = truth.totals.get(k).cloned().unwrap_or_default();
        assert_eq!(t.net, b.total());
    }
    // settlement-side totals against the BTs, by type / reporting category
    let mut by_cat: BTreeMap<(Option<String>, String, String), i64> = BTreeMap::new();
    let mut dispute_fees: Sums = BTreeMap::new();
    for p in of_kind(&all, ObjectKind::BalanceTransaction) {
        let v = &p.v;
        let key = (p.obj.account.clone(), str_of(v, "currency").to_owned());
        let cat = format!("{}/{}", str_of(v, "type"), str_of(v, "reporting_category"));
        *by_cat
            .entry((key.0.clone(), key.1.clone(), cat))
            .or_default() += int(v, "amount");
        for d in v["fee_details"].as_array().unwrap() {
            if str_of(d, "description").starts_with("Dispute fee") {
                *dispute_fees.entry(key.clone()).or_default() += int(d, "amount");
            }
        }
    }
    for (k, t) in &truth.totals {
        let c = |cat: &str| {
            by_cat
                .get(&(k.account.clone(), k.currency.clone(), cat.to_owned()))
                .copied()
                .unwrap_or(0)
        };
        assert_eq!(
            t.charges_settled,
            c("charge/charge"),
            "charges_settled {k:?}"
        );
        assert_eq!(
            t.refunds_settled,
            -c("refund/refund"),
            "refunds_settled {k:?}"
        );
        assert_eq!(
            t.dispute_withdrawals,
            -c("adjustment/dispute"),
            "dispute_withdrawals {k:?}"
        );
        assert_eq!(t.dispute_reinstatements, c("adjustment/dispute_reversal"));
        assert_eq!(
            t.application_fees_earned,
            c("application_fee/platform_earning")
        );
        assert_eq!(t.transfers_out, -c("transfer/transfer"));
        assert_eq!(t.transfers_received, c("payment/transfer"));
        assert_eq!(
            t.payouts_paid + t.payouts_failed + t.payouts_canceled + t.payouts_in_flight,
            -c("payout/payout"),
            "every payout is paid, failed, canceled or in flight {k:?}"
        );
        assert_eq!(t.payouts_failed, c("payout_failure/payout_reversal"));
        assert_eq!(t.payouts_canceled, c("payout_cancel/payout_reversal"));
        let df = dispute_fees
            .get(&(k.account.clone(), k.currency.clone()))
            .copied()
            .unwrap_or(0);
        assert_eq!(t.dispute_fees, df, "dispute fees {k:?}");
        assert_eq!(t.fees_total, t.fees.values().sum::<i64>());
    }
    for ((acct, cur, ty), v) in &fees_by_type {
        let k = AccountCurrency {
            account: acct.clone(),
            currency: cur.clone(),
        };
        assert_eq!(
            truth.totals[&k].fees.get(ty).copied().unwrap_or(0),
            *v,
            "fees {ty} {k:?}"
        );
    }

    // balance_at(t) agrees with the BTs at several instants
    if truth.has_history() {
        let span = truth.end - cfg.start;
        for i in 0..=8 {
            let t = cfg.start + span * i / 8;
            let mut want: BTreeMap<(Option<String>, String), (i64, i64)> = BTreeMap::new();
            for p in of_kind(&all, ObjectKind::BalanceTransaction) {
                if int(&p.v, "created") > t {
                    continue;
                }
                let e = want
                    .entry((p.obj.account.clone(), str_of(&p.v, "currency").to_owned()))
                    .or_default();
                if int(&p.v, "available_on") > t {
                    e.0 += int(&p.v, "net");
                } else {
                    e.1 += int(&p.v, "net");
                }
            }
            for k in truth.balances.keys() {
                let got = truth.balance_at(k, t).unwrap();
                let w = want
                    .get(&(k.account.clone(), k.currency.clone()))
                    .copied()
                    .unwrap_or((0, 0));
                assert_eq!((got.pending, got.available), w, "balance_at({t}) for {k:?}");
            }
        }
    }

    // ---- payouts: the BTs listed for a payout sum to it
    let mut by_payout: BTreeMap<&str, Vec<&Parsed>> = BTreeMap::new();
    for p in of_kind(&all, ObjectKind::BalanceTransaction) {
        if let Some(po) = filter(&p.obj, "payout") {
            by_payout.entry(po).or_default().push(p);
        }
    }
    let mut payout_sums: BTreeMap<(Option<String>, String, String), i64> = BTreeMap::new();
    for po in of_kind(&all, ObjectKind::Payout) {
        let v = &po.v;
        let amount = int(v, "amount");
        assert!(amount > 0);
        assert!(v["automatic"].as_bool().unwrap());
        let listed = by_payout
            .get(po.obj.id.as_str())
            .unwrap_or_else(|| panic!("no BTs for {}", po.obj.id));
        let own: Vec<_> = listed
            .iter()
            .filter(|b| str_of(&b.v, "type") == "payout")
            .collect();
        assert_eq!(own.len(), 1);
        assert_eq!(int(&own[0].v, "amount"), -amount);
        assert_eq!(str_of(&own[0].v, "id"), str_of(v, "balance_transaction"));
        let others: i64 = listed
            .iter()
            .filter(|b| str_of(&b.v, "type") != "payout")
            .map(|b| int(&b.v, "net"))
            .sum();
        assert_eq!(others, amount, "payout {} = Σ net of its BTs", po.obj.id);
        let all_sum: i64 = listed.iter().map(|b| int(&b.v, "net")).sum();
        assert_eq!(all_sum, 0);
        for b in listed {
            assert!(
                int(&b.v, "available_on") <= int(v, "created"),
                "paid out before available"
            );
            assert_eq!(str_of(&b.v, "currency"), str_of(v, "currency"));
            assert_eq!(b.obj.account, po.obj.account);
        }
        let status = str_of(v, "status");
        if status == "failed" || status == "canceled" {
            let fid = str_of(v, "failure_balance_transaction");
            let f = of_kind(&all, ObjectKind::BalanceTransaction)
                .find(|b| b.obj.id == fid)
                .unwrap();
            assert_eq!(int(&f.v, "amount"), amount);
            assert_eq!(str_of(&f.v, "reporting_category"), "payout_reversal");
        }
        if status == "paid" {
            assert_eq!(str_of(v, "reconciliation_status"), "completed");
        }
        *payout_sums
            .entry((
                po.obj.account.clone(),
                str_of(v, "currency").to_owned(),
                status.to_owned(),
            ))
            .or_default() += amount;
    }
    for (k, t) in &truth.totals {
        let g = |s: &str| {
            payout_sums
                .get(&(k.account.clone(), k.currency.clone(), s.to_owned()))
                .copied()
                .unwrap_or(0)
        };
        assert_eq!(t.payouts_paid, g("paid"), "paid payouts {k:?}");
        assert_eq!(t.payouts_failed, g("failed"));
        assert_eq!(t.payouts_canceled, g("canceled"));
        assert_eq!(t.payouts_in_flight, g("pending") + g("in_transit"));
    }

    // ---- invoices
    let mut paid_by_invoice: BTreeMap<&str, i64> = BTreeMap::new();
    let mut invoice_pis: BTreeSet<&str> = BTreeSet::new();
    let mut invoice_charges: BTreeSet<&str> = BTreeSet::new();
    for ip in of_kind(&all, ObjectKind::InvoicePayment) {
        if str_of(&ip.v, "status") == "paid" {
            *paid_by_invoice.entry(str_of(&ip.v, "invoice")).or_default() +=
                int(&ip.v, "amount_paid");
            match str_of(&ip.v["payment"], "type") {
                "payment_intent" => {
                    invoice_pis.insert(str_of(&ip.v["payment"], "payment_intent"));
                }
                "charge" => {
                    invoice_charges.insert(str_of(&ip.v["payment"], "charge"));
                }
                t => panic!("payment type {t}"),
            }
        }
        assert!(ids.contains(str_of(&ip.v, "invoice")));
    }
    let mut receivables: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut revenue: Sums = BTreeMap::new();
    let mut tax: Sums = BTreeMap::new();
    let mut invoice_ids = BTreeSet::new();
    for inv in of_kind(&all, ObjectKind::Invoice) {
        let v = &inv.v;
        invoice_ids.insert(inv.obj.id.as_str());
        let total = int(v, "total");
        let taxes: i64 = v["total_taxes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| int(t, "amount"))
            .sum();
        let discounts: i64 = v["total_discount_amounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| int(t, "amount"))
            .sum();
        assert_eq!(
            total,
            int(v, "subtotal") - discounts + taxes,
            "total of {}",
            inv.obj.id
        );
        assert_eq!(int(v, "total_excluding_tax"), total - taxes);
        let lines: i64 = v["lines"]["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| int(l, "amount"))
            .sum();
        assert_eq!(lines, int(v, "subtotal"));
        let status = str_of(v, "status");
        assert_eq!(
            int(v, "amount_due"),
            total - int(v, "pre_payment_credit_notes_amount")
        );
        assert_eq!(
            int(v, "amount_paid") + int(v, "amount_remaining"),
            int(v, "amount_due"),
            "{}",
            inv.obj.id
        );
        assert_eq!(
            paid_by_invoice
                .get(inv.obj.id.as_str())
                .copied()
                .unwrap_or(0),
            int(v, "amount_paid")
        );
        assert_eq!(filter(&inv.obj, "status"), Some(status));
        match status {
            "paid" => assert_eq!(int(v, "amount_remaining"), 0),
            "open" => {
                assert!(int(v, "amount_remaining") > 0);
                *receivables
                    .entry((
                        str_of(v, "customer").to_owned(),
                        str_of(v, "currency").to_owned(),
                    ))
                    .or_default() += int(v, "amount_remaining");
            }
            "void" | "uncollectible" | "draft" => {}
            s => panic!("status {s}"),
        }
        assert!(ids.contains(str_of(v, "customer")));
        if status != "void" && status != "draft" {
            *revenue
                .entry((None, str_of(v, "currency").to_owned()))
                .or_default() += total - taxes;
            *tax.entry((None, str_of(v, "currency").to_owned()))
                .or_default() += taxes;
        }
        if str_of(v, "currency") == "kwd" {
            assert_eq!(total % 10, 0, "KWD amounts end in 0");
        }
    }
    let truth_recv: BTreeMap<(String, String), i64> = truth
        .open_receivables
        .iter()
        .map(|((_, c, cur), v)| ((c.clone(), cur.clone()), *v))
        .collect();
    assert_eq!(receivables, truth_recv, "open receivables per customer");
    for cn in of_kind(&all, ObjectKind::CreditNote) {
        let v = &cn.v;
        let taxes: i64 = v["total_taxes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| int(t, "amount"))
            .sum();
        assert_eq!(int(v, "total"), int(v, "total_excluding_tax") + taxes);
        assert_eq!(int(v, "amount"), int(v, "total"));
        *revenue
            .entry((None, str_of(v, "currency").to_owned()))
            .or_default() -= int(v, "total_excluding_tax");
        *tax.entry((None, str_of(v, "currency").to_owned()))
            .or_default() -= taxes;
        assert!(invoice_ids.contains(str_of(v, "invoice")));
        for r in v["refunds"].as_array().unwrap() {
            assert!(ids.contains(str_of(r, "refund")));
            assert_eq!(int(r, "amount_refunded"), int(v, "total"));
        }
    }
    // charges that belong to no invoice
    let mut pi_by_charge = BTreeMap::new();
    for ch in of_kind(&all, ObjectKind::Charge) {
        let v = &ch.v;
        if str_of(v, "status") != "succeeded" {
            continue;
        }
        if let Some(pi) = v["payment_intent"].as_str() {
            pi_by_charge.insert(ch.obj.id.as_str(), pi);
            if invoice_pis.contains(pi) || invoice_charges.contains(ch.obj.id.as_str()) {
                continue;
            }
            *revenue
                .entry((ch.obj.account.clone(), str_of(v, "currency").to_owned()))
                .or_default() += int(v, "amount");
        }
        if str_of(v, "currency") == "jpy" {
            assert!(int(v, "amount") >= 50);
        }
    }
    // the same charges and the credit notes' refunds, in the settlement currency (their BTs)
    let bt_amount: BTreeMap<(Option<String>, &str), (String, i64)> =
        of_kind(&all, ObjectKind::BalanceTransaction)
            .map(|b| {
                (
                    (b.obj.account.clone(), b.obj.id.as_str()),
                    (str_of(&b.v, "currency").to_owned(), int(&b.v, "amount")),
                )
            })
            .collect();
    let mut settled: Sums = BTreeMap::new();
    for ch in of_kind(&all, ObjectKind::Charge) {
        let v = &ch.v;
        let Some(pi) = v["payment_intent"].as_str() else {
            continue;
        };
        if str_of(v, "status") != "succeeded"
            || invoice_pis.contains(pi)
            || invoice_charges.contains(ch.obj.id.as_str())
        {
            continue;
        }
        let (cur, amount) = &bt_amount[&(ch.obj.account.clone(), str_of(v, "balance_transaction"))];
        *settled
            .entry((ch.obj.account.clone(), cur.clone()))
            .or_default() += amount;
    }
    let mut cn_refunds: Sums = BTreeMap::new();
    for r in of_kind(&all, ObjectKind::Refund) {
        if r.v["metadata"]["credit_note"].is_string() {
            let (cur, amount) =
                &bt_amount[&(r.obj.account.clone(), str_of(&r.v, "balance_transaction"))];
            *cn_refunds
                .entry((r.obj.account.clone(), cur.clone()))
                .or_default() -= amount;
        }
    }
    for (k, t) in &truth.totals {
        let key = (k.account.clone(), k.currency.clone());
        assert_eq!(
            t.uninvoiced_sales_settled,
            settled.get(&key).copied().unwrap_or(0),
            "uninvoiced_sales_settled {k:?}"
        );
        assert_eq!(
            t.credit_note_refunds_settled,
            cn_refunds.get(&key).copied().unwrap_or(0),
            "credit_note_refunds_settled {k:?}"
        );
    }
    for ((acct, cur), want) in &revenue {
        let k = AccountCurrency {
            account: acct.clone(),
            currency: cur.clone(),
        };
        let t = truth.totals.get(&k).cloned().unwrap_or_default();
        assert_eq!(t.revenue, *want, "revenue {k:?}");
        assert_eq!(t.revenue, t.invoiced_revenue + t.uninvoiced_sales);
    }
    for ((acct, cur), want) in &tax {
        let k = AccountCurrency {
            account: acct.clone(),
            currency: cur.clone(),
        };
        assert_eq!(
            truth.totals.get(&k).map_or(0, |t| t.invoiced_tax),
            *want,
            "tax {k:?}"
        );
    }

    // ---- refunds, disputes, transfers, application fees
    let mut refunds: Sums = BTreeMap::new();
    // three-decimal currencies: every amount ends in 0
    for p in all.iter().filter(|p| {
        matches!(
            p.obj.kind,
            ObjectKind::Charge | ObjectKind::Refund | ObjectKind::CreditNote | ObjectKind::Dispute
        )
    }) {
        if str_of(&p.v, "currency") == "kwd" {
            assert_eq!(int(&p.v, "amount") % 10, 0, "KWD amount of {}", p.obj.id);
        }
    }
    for r in of_kind(&all, ObjectKind::Refund) {
        *refunds
            .entry((r.obj.account.clone(), str_of(&r.v, "currency").to_owned()))
            .or_default() += int(&r.v, "amount");
        assert!(ids.contains(str_of(&r.v, "charge")));
        assert!(ids.contains(str_of(&r.v, "balance_transaction")));
    }
    for ((acct, cur), want) in &refunds {
        let k = AccountCurrency {
            account: acct.clone(),
            currency: cur.clone(),
        };
        assert_eq!(truth.totals[&k].refunds, *want, "refunds {k:?}");
    }
    for d in of_kind(&all, ObjectKind::Dispute) {
        let v = &d.v;
        let bts = v["balance_transactions"].as_array().unwrap();
        assert_eq!(str_of(&bts[0], "reporting_category"), "dispute");
        assert_eq!(int(&bts[0], "fee"), 1500);
        match str_of(v, "status") {
            "won" => assert_eq!(str_of(&bts[1], "reporting_category"), "dispute_reversal"),
            "lost" | "needs_response" | "under_review" => assert_eq!(bts.len(), 1),
            s => panic!("dispute status {s}"),
        }
    }
    let mut transfers: BTreeMap<(String, String), i64> = BTreeMap::new();
    for t in of_kind(&all, ObjectKind::Transfer) {
        *transfers
            .entry((
                str_of(&t.v, "destination").to_owned(),
                str_of(&t.v, "currency").to_owned(),
            ))
            .or_default() += int(&t.v, "amount");
        assert!(ids.contains(str_of(&t.v, "destination_payment")));
    }
    assert_eq!(transfers, truth.transfers);
    let mut app_fees: BTreeMap<(String, String), i64> = BTreeMap::new();
    for f in of_kind(&all, ObjectKind::ApplicationFee) {
        *app_fees
            .entry((
                str_of(&f.v, "account").to_owned(),
                str_of(&f.v, "currency").to_owned(),
            ))
            .or_default() += int(&f.v, "amount");
        assert!(ids.contains(str_of(&f.v, "charge")));
    }
    assert_eq!(app_fees, truth.application_fees);

    // ---- events
    let mut last = i64::MIN;
    let mut types: BTreeMap<String, u64> = BTreeMap::new();
    for e in of_kind(&all, ObjectKind::Event) {
        let v = &e.v;
        assert!(e.obj.created >= last, "events come out in created order");
        last = e.obj.created;
        assert_eq!(str_of(v, "object"), "event");
        let ty = str_of(v, "type");
        *types.entry(ty.to_owned()).or_default() += 1;
        assert_eq!(filter(&e.obj, "type"), Some(ty));
        assert_eq!(
            v.get("account").and_then(Value::as_str).map(str::to_owned),
            e.obj.account
        );
        if cfg.legacy_api_until.is_none() {
            assert_eq!(str_of(v, "api_version"), API_VERSION);
        }
        assert!(v["request"].is_object());
        assert!(v["pending_webhooks"].is_i64());
        let o = &v["data"]["object"];
        if ty.ends_with(".updated") {
            assert!(
                v["data"]["previous_attributes"].is_object(),
                "{ty} has previous_attributes"
            );
        }
        if ty == "balance.available" {
            assert_eq!(str_of(o, "object"), "balance");
            continue;
        }
        let oid = str_of(o, "id");
        assert!(
            ids_by_account.contains(&(e.obj.account.as_deref(), oid)),
            "event {} object {oid} exists on the same account",
            e.obj.id
        );
        assert!(
            int(o, "created") <= e.obj.created,
            "snapshot created before its event"
        );
        for r in [
            "customer",
            "invoice",
            "charge",
            "payment_intent",
            "balance_transaction",
            "latest_charge",
            "destination_payment",
        ] {
            if let Some(x) = o.get(r).and_then(Value::as_str) {
                assert!(ids.contains(x), "{ty} {oid}: {r} {x} exists");
            }
        }
        if let Some(bts) = o.get("balance_transactions").and_then(Value::as_array) {
            for b in bts {
                assert!(ids.contains(str_of(b, "id")));
            }
        }
    }
    eprintln!(
        "seed {} facts {} (target {}): {} events, {} BTs, {} objects, end {} ({} days); types {:?}",
        cfg.seed,
        truth.facts,
        cfg.facts,
        truth.events,
        truth.balance_transactions,
        all.len(),
        truth.end,
        (truth.end - cfg.start) / 86_400,
        types
    );
}

#[test]
fn invariants_small_worlds() {
    for seed in [1, 2, 3, 4, 5] {
        check_world(&WorldConfig::with_facts(seed, 100));
        check_world(&WorldConfig::with_facts(seed, 1_000));
    }
}

#[test]
fn invariants_medium_worlds() {
    for seed in [11, 12] {
        check_world(&WorldConfig::with_facts(seed, 20_000));
    }
}

#[test]
fn invariants_without_connect_and_long_period() {
    let cfg = WorldConfig {
        connected_accounts: 0,
        days: Some(120),
        ..WorldConfig::with_facts(21, 15_000)
    };
    check_world(&cfg);
}

#[test]
fn invariants_large_world() {
    check_world(&WorldConfig::with_facts(99, 120_000));
}
