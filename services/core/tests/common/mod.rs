//! Builders of raw Stripe JSON facts, and a small random "world" of them, shared by the
//! property tests and the benchmark.
#![allow(dead_code, unreachable_pub, clippy::needless_pass_by_value)]

use serde_json::{Value, json};

/// One raw fact: the Stripe account it was read from, and its bytes.
pub type RawFact = (String, Vec<u8>);

pub const PLATFORM: &str = "acct_platform";

fn raw(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("json")
}

pub fn event(id: &str, kind: &str, created: i64, object: Value) -> Vec<u8> {
    raw(&json!({
        "id": id, "object": "event", "api_version": "2026-07-29.dahlia", "created": created,
        "livemode": false, "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": kind, "data": {"object": object}
    }))
}

#[allow(clippy::too_many_arguments)]
pub fn bt(
    id: &str,
    category: &str,
    kind: &str,
    currency: &str,
    amount: i64,
    fee: i64,
    created: i64,
    available_on: i64,
    available: bool,
    source: &str,
) -> Vec<u8> {
    let details = if fee == 0 {
        json!([])
    } else {
        json!([{"amount": fee, "application": null, "currency": currency,
                "description": "Stripe processing fees", "type": "stripe_fee"}])
    };
    raw(&json!({
        "id": id, "object": "balance_transaction", "amount": amount,
        "available_on": available_on, "created": created, "currency": currency,
        "description": null, "exchange_rate": null, "fee": fee, "fee_details": details,
        "net": amount - fee, "reporting_category": category, "source": source,
        "status": if available { "available" } else { "pending" }, "type": kind,
        "balance_type": "payments"
    }))
}

pub fn invoice(id: &str, customer: &str, currency: &str, total: i64, tax: i64, at: i64) -> Value {
    json!({
        "id": id, "object": "invoice", "account_country": "US", "amount_due": total,
        "amount_paid": 0, "amount_remaining": total, "attempt_count": 0,
        "billing_reason": "manual", "collection_method": "charge_automatically",
        "created": at - 10, "currency": currency, "customer": customer,
        "customer_email": "jenny@example.com", "description": null, "discounts": [],
        "effective_at": at, "ending_balance": 0, "livemode": false, "metadata": {},
        "lines": {"object": "list", "data": [{"id": "il_1", "object": "line_item",
            "amount": total - tax, "currency": currency, "description": "Service",
            "period": {"start": at, "end": at}, "quantity": 1}], "has_more": false},
        "number": "INV-0001", "starting_balance": 0, "status": "open",
        "status_transitions": {"finalized_at": at, "marked_uncollectible_at": null,
            "paid_at": null, "voided_at": null},
        "subtotal": total - tax, "subtotal_excluding_tax": total - tax, "total": total,
        "total_discount_amounts": [], "total_excluding_tax": total - tax,
        "total_taxes": [{"amount": tax, "tax_behavior": "exclusive",
            "taxability_reason": "standard_rated", "taxable_amount": total - tax,
            "type": "tax_rate_details", "tax_rate_details": {"tax_rate": "txr_1"}}]
    })
}

pub fn invoice_payment(
    id: &str,
    invoice: &str,
    currency: &str,
    amount: i64,
    payment: Value,
    at: i64,
) -> Value {
    json!({
        "id": id, "object": "invoice_payment", "amount_paid": amount,
        "amount_requested": amount, "created": at - 5, "currency": currency,
        "invoice": invoice, "is_default": true, "livemode": false, "payment": payment,
        "status": "paid", "status_transitions": {"canceled_at": null, "paid_at": at}
    })
}

pub fn charge(id: &str, pi: &str, currency: &str, amount: i64, txn: &str) -> Value {
    json!({
        "id": id, "object": "charge", "amount": amount, "amount_captured": amount,
        "amount_refunded": 0, "balance_transaction": txn, "captured": true,
        "currency": currency, "customer": "cus_1", "description": null, "disputed": false,
        "livemode": false, "metadata": {}, "outcome": {"type": "authorized"}, "paid": true,
        "payment_intent": pi, "payment_method": "pm_1",
        "payment_method_details": {"card": {"brand": "visa", "last4": "4242",
            "exp_month": 8, "exp_year": 2030, "funding": "credit"}, "type": "card"},
        "refunds": {"object": "list", "data": [], "has_more": false},
        "status": "succeeded"
    })
}

pub fn credit_note(
    id: &str,
    invoice: &str,
    customer: &str,
    currency: &str,
    refund: &str,
    amount: i64,
    at: i64,
) -> Value {
    json!({
        "id": id, "object": "credit_note", "amount": amount, "amount_shipping": 0,
        "created": at, "currency": currency, "customer": customer,
        "discount_amount": 0, "discount_amounts": [], "effective_at": at,
        "invoice": invoice, "out_of_band_amount": null, "post_payment_amount": amount,
        "pre_payment_amount": 0, "reason": "product_unsatisfactory",
        "refunds": [{"amount_refunded": amount, "refund": refund}], "status": "issued",
        "subtotal": amount, "total": amount, "total_excluding_tax": amount,
        "total_taxes": [], "type": "post_payment"
    })
}

pub fn payout(id: &str, currency: &str, amount: i64) -> Value {
    json!({
        "id": id, "object": "payout", "amount": amount, "arrival_date": 0,
        "automatic": true, "currency": currency, "destination": "ba_1",
        "method": "standard", "reconciliation_status": "completed", "status": "paid",
        "type": "bank_account"
    })
}

/// How an invoice is paid in the random world.
#[derive(Debug, Clone, Copy)]
pub enum Paid {
    /// No invoice: an uninvoiced sale.
    NoInvoice,
    /// Invoice paid by card, `invoice_payment.payment.type = charge`.
    ByCharge,
    /// Invoice paid by card, `payment.type = payment_intent` (needs the charge event).
    ByPaymentIntent,
}

/// One sale of the random world.
#[derive(Debug, Clone)]
pub struct Sale {
    pub presentment: &'static str,
    pub settle_in_usd: bool,
    pub amount: i64,
    pub settled: i64,
    pub fee: i64,
    pub paid: Paid,
    /// Refund `amount` (presentment) / `settled` (balance currency), with a credit note?
    pub refund: Option<(i64, i64, bool)>,
    pub dispute: Option<bool>,
    pub available_on_moves: bool,
}

/// The raw facts of a world of sales and a payout per currency, in a plausible order.
pub fn world(sales: &[Sale], payout_fails: bool) -> Vec<RawFact> {
    let mut facts: Vec<Vec<u8>> = Vec::new();
    let mut t = 1_700_000_000_i64;
    for (i, s) in sales.iter().enumerate() {
        t += 100;
        let cur = s.presentment;
        let bal = if s.settle_in_usd { "usd" } else { cur };
        let (ch, pi, txn, inv, cus) = (
            format!("ch_{i}"),
            format!("pi_{i}"),
            format!("txn_{i}"),
            format!("in_{i}"),
            format!("cus_{}", i % 3),
        );
        if !matches!(s.paid, Paid::NoInvoice) {
            facts.push(event(
                &format!("evt_fin_{i}"),
                "invoice.finalized",
                t,
                invoice(&inv, &cus, cur, s.amount, s.amount / 11, t),
            ));
            let payment = match s.paid {
                Paid::ByPaymentIntent => json!({"type": "payment_intent", "payment_intent": pi}),
                _ => json!({"type": "charge", "charge": ch}),
            };
            facts.push(event(
                &format!("evt_pay_{i}"),
                "invoice_payment.paid",
                t + 1,
                invoice_payment(&format!("inpay_{i}"), &inv, cur, s.amount, payment, t + 1),
            ));
        }
        facts.push(event(
            &format!("evt_ch_{i}"),
            "charge.succeeded",
            t + 1,
            charge(&ch, &pi, cur, s.amount, &txn),
        ));
        let avail = t + 2 * 86_400;
        facts.push(bt(
            &txn,
            "charge",
            "charge",
            bal,
            s.settled,
            s.fee,
            t + 1,
            avail,
            false,
            &ch,
        ));
        if s.available_on_moves {
            facts.push(bt(
                &txn,
                "charge",
                "charge",
                bal,
                s.settled,
                s.fee,
                t + 1,
                avail + 86_400,
                true,
                &ch,
            ));
        }
        if let Some((amount, settled, with_note)) = s.refund {
            let re = format!("re_{i}");
            facts.push(bt(
                &format!("txn_re_{i}"),
                "refund",
                "refund",
                bal,
                -settled,
                0,
                t + 50,
                t + 50,
                true,
                &re,
            ));
            if with_note && !matches!(s.paid, Paid::NoInvoice) {
                facts.push(event(
                    &format!("evt_cn_{i}"),
                    "credit_note.created",
                    t + 50,
                    credit_note(&format!("cn_{i}"), &inv, &cus, cur, &re, amount, t + 50),
                ));
            }
        }
        if let Some(won) = s.dispute {
            facts.push(bt(
                &format!("txn_dp_{i}"),
                "dispute",
                "adjustment",
                bal,
                -s.settled,
                1500,
                t + 60,
                t + 60,
                true,
                &format!("dp_{i}"),
            ));
            if won {
                facts.push(bt(
                    &format!("txn_dr_{i}"),
                    "dispute_reversal",
                    "adjustment",
                    bal,
                    s.settled,
                    0,
                    t + 70,
                    t + 70,
                    true,
                    &format!("dp_{i}"),
                ));
            }
        }
    }
    t += 10_000;
    facts.push(bt(
        "txn_po", "payout", "payout", "usd", -1000, 0, t, t, true, "po_1",
    ));
    facts.push(event(
        "evt_po_paid",
        "payout.paid",
        t + 10,
        payout("po_1", "usd", 1000),
    ));
    if payout_fails {
        facts.push(event(
            "evt_po_failed",
            "payout.failed",
            t + 20,
            payout("po_1", "usd", 1000),
        ));
        facts.push(bt(
            "txn_po_fail",
            "payout_reversal",
            "payout_failure",
            "usd",
            1000,
            0,
            t + 20,
            t + 20,
            true,
            "po_1",
        ));
    }
    facts.push(event(
        "evt_unknown",
        "customer.updated",
        t,
        json!({"id": "cus_1", "object": "customer", "balance": 0}),
    ));
    facts
        .into_iter()
        .map(|f| (PLATFORM.to_owned(), f))
        .collect()
}
