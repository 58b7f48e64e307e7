//! Parse raw Stripe JSON and post it: the ledger's hot path.
//!
//! The mix is a random world of sales (invoiced by charge or PaymentIntent, uninvoiced,
//! refunds with and without credit notes, disputes, moved `available_on`, payouts) in four
//! currencies, with event objects padded to the size Stripe sends (charges ≈ 3.5 KB,
//! invoices ≈ 5 KB). Three measurements: parse only, parse + rules, parse + rules + fold into
//! the in-memory journal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use common::{Paid, RawFact, Sale, world};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ledgerline_core::{Ledger, parse::parse, post_raw};
use serde_json::{Value, json};

/// Fields Stripe sends that no rule reads, so that parsing costs what it costs in production.
fn pad(v: &mut Value) {
    let Some(obj) = v.pointer_mut("/data/object") else {
        return;
    };
    let kind = obj["object"].as_str().unwrap_or("").to_owned();
    let address = json!({"city": "San Francisco", "country": "US", "line1": "510 Townsend St",
        "line2": null, "postal_code": "94103", "state": "CA"});
    match kind.as_str() {
        "charge" => {
            obj["billing_details"] = json!({"address": address, "email": "jenny.rosen@example.com",
                "name": "Jenny Rosen", "phone": null, "tax_id": null});
            obj["payment_method_details"] = json!({"card": {"amount_authorized": 10000,
                "brand": "visa", "checks": {"address_line1_check": "pass",
                "address_postal_code_check": "pass", "cvc_check": "pass"}, "country": "US",
                "exp_month": 8, "exp_year": 2030, "extended_authorization": {"status": "disabled"},
                "fingerprint": "AOB934RVNwzk6xtn", "funding": "credit",
                "incremental_authorization": {"status": "unavailable"},
                "installments": null, "last4": "4242", "mandate": null,
                "multicapture": {"status": "unavailable"}, "network": "visa",
                "network_token": {"used": false}, "overcapture": {"maximum_amount_capturable": 10000,
                "status": "unavailable"}, "three_d_secure": null, "wallet": null,
                "network_transaction_id": "104102978678771"}, "type": "card"});
            obj["outcome"] = json!({"advice_code": null, "network_advice_code": null,
                "network_decline_code": null, "network_status": "approved_by_network",
                "reason": null, "risk_level": "normal", "risk_score": 32,
                "seller_message": "Payment complete.", "type": "authorized"});
            obj["receipt_url"] = json!(
                "https://pay.stripe.com/receipts/payment/CAcaFwoVYWNjdF8xUGdhZlRCN1daMDF6Z2tXKI_ei7UGMgZv2S_KfiY6LCJrxC7awazgQA9I88krZKw5uuCkZ5Nup2tomEtAbSpdfzjVZHO3ZYP5KFZP"
            );
            obj["calculated_statement_descriptor"] = json!("LEDGERLINE DEMO");
            obj["fraud_details"] = json!({});
            obj["metadata"] = json!({"order_id": "6735", "channel": "web"});
            obj["shipping"] = json!({"address": address, "name": "Jenny Rosen",
                "carrier": null, "phone": null, "tracking_number": null});
            obj["transfer_data"] = Value::Null;
            obj["radar_options"] = json!({});
            obj["application_fee_amount"] = Value::Null;
        }
        "invoice" => {
            let line = json!({"id": "il_1PgafuB7WZ01zgkWXYmPNZs8", "object": "line_item",
                "amount": 1000, "currency": obj["currency"], "description": "1 × Pro plan (at $10.00 / month)",
                "discount_amounts": [], "discountable": true, "discounts": [], "livemode": false,
                "metadata": {}, "period": {"end": 1_721_954_054, "start": 1_719_362_054},
                "pricing": {"price_details": {"price": "price_1", "product": "prod_1"},
                "type": "price_details", "unit_amount_decimal": "1000"}, "quantity": 1,
                "taxes": [], "parent": {"type": "subscription_item_details",
                "subscription_item_details": {"invoice_item": null, "proration": false,
                "proration_details": {"credited_items": null}, "subscription": "sub_1",
                "subscription_item": "si_1"}}});
            obj["lines"] = json!({"object": "list", "data": [line.clone(), line.clone(), line],
                "has_more": false, "url": "/v1/invoices/in_1/lines"});
            obj["customer_address"] = address.clone();
            obj["customer_shipping"] = json!({"address": address, "name": "Jenny Rosen"});
            obj["payment_settings"] = json!({"default_mandate": null, "payment_method_options":
                {"acss_debit": null, "bancontact": null, "card": {"request_three_d_secure": "automatic"},
                "customer_balance": null, "konbini": null, "sepa_debit": null,
                "us_bank_account": null}, "payment_method_types": null});
            obj["automatic_tax"] = json!({"enabled": true, "liability": {"type": "self"},
                "status": "complete", "disabled_reason": null, "provider": "stripe"});
            obj["rendering"] = json!({"amount_tax_display": null, "pdf": {"page_size": "auto"},
                "template": null, "template_version": null});
            obj["hosted_invoice_url"] = json!(
                "https://invoice.stripe.com/i/acct_1PgafTB7WZ01zgkW/test_YWNjdF8xUGdhZlRCN1daMDF6Z2tXLF9RWGcxbzh2Y0dtb1IzMlNlVzJ0cVZXYkxjZkRhTG9q0200"
            );
            obj["invoice_pdf"] = json!(
                "https://pay.stripe.com/invoice/acct_1PgafTB7WZ01zgkW/test_YWNjdF8xUGdhZlRCN1daMDF6Z2tXLF9RWGcxbzh2Y0dtb1IzMlNlVzJ0cVZXYkxjZkRhTG9q0200/pdf"
            );
            obj["customer_tax_ids"] = json!([]);
            obj["parent"] = json!({"type": "subscription_details", "quote_details": null,
                "subscription_details": {"metadata": {}, "subscription": "sub_1"}});
            obj["issuer"] = json!({"type": "self"});
        }
        _ => {}
    }
}

fn mix() -> Vec<RawFact> {
    let currencies = ["usd", "usd", "usd", "eur", "jpy", "kwd"];
    let mut sales = Vec::new();
    for i in 0..400_usize {
        let cur = currencies[i % currencies.len()];
        let amount = if cur == "kwd" {
            25_000
        } else {
            2_000 + (i as i64 * 37) % 50_000
        };
        let cross = cur == "eur" && i % 2 == 0;
        let settled = if cross { amount * 108 / 100 } else { amount };
        sales.push(Sale {
            presentment: cur,
            settle_in_usd: cross,
            amount,
            settled,
            fee: settled * 29 / 1000 + 30,
            paid: match i % 5 {
                0 | 1 => Paid::ByPaymentIntent,
                2 => Paid::ByCharge,
                _ => Paid::NoInvoice,
            },
            refund: (i % 10 == 0).then_some((amount / 4, settled / 4, i % 20 == 0)),
            dispute: (i % 50 == 0).then_some(i % 100 == 0),
            available_on_moves: i % 25 == 0,
        });
    }
    world(&sales, true)
        .into_iter()
        .map(|(account, raw)| {
            let mut v: Value = serde_json::from_slice(&raw).unwrap();
            pad(&mut v);
            (account, serde_json::to_vec(&v).unwrap())
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let facts = mix();
    let bytes: usize = facts.iter().map(|(_, r)| r.len()).sum();
    eprintln!(
        "mix: {} facts, {} bytes, {} bytes/fact on average",
        facts.len(),
        bytes,
        bytes / facts.len()
    );
    let mut g = c.benchmark_group("stripe_facts");
    g.throughput(Throughput::Elements(facts.len() as u64));
    // The floor: serde_json validating and skipping every byte, building nothing.
    g.bench_function("json_skip_floor", |b| {
        b.iter(|| {
            for (_, raw) in &facts {
                black_box(serde_json::from_slice::<serde::de::IgnoredAny>(black_box(raw)).unwrap());
            }
        });
    });
    g.bench_function("parse", |b| {
        b.iter(|| {
            for (_, raw) in &facts {
                black_box(parse(black_box(raw)).unwrap());
            }
        });
    });
    g.bench_function("parse_and_post", |b| {
        b.iter(|| {
            for (account, raw) in &facts {
                black_box(post_raw(account, black_box(raw)).unwrap());
            }
        });
    });
    g.bench_function("parse_post_and_fold", |b| {
        b.iter(|| {
            let mut ledger = Ledger::new();
            for (account, raw) in &facts {
                black_box(ledger.apply(account, black_box(raw)).unwrap());
            }
            ledger
        });
    });
    g.finish();

    // The balance-transactions topic alone: small objects, every one posts two entries.
    let bts: Vec<RawFact> = facts
        .iter()
        .filter(|(_, r)| {
            r.windows(30)
                .any(|w| w == b"\"object\":\"balance_transaction\"")
        })
        .cloned()
        .collect();
    let mut g = c.benchmark_group("balance_transactions");
    g.throughput(Throughput::Elements(bts.len() as u64));
    g.bench_function("parse_and_post", |b| {
        b.iter(|| {
            for (account, raw) in &bts {
                black_box(post_raw(account, black_box(raw)).unwrap());
            }
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
