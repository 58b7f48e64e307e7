//! PaymentIntents, charges and refunds.

use super::*;

pub(crate) fn render_payment_intent(out: &mut String, p: &Payment, ctx: &Ctx) {
    let mut o = Obj::new(out);
    o.i("amount", p.amount)
        .i("amount_capturable", 0)
        .raw("amount_details", r#"{"tip":{}}"#)
        .i(
            "amount_received",
            if p.status == PiStatus::Succeeded {
                p.amount
            } else {
                0
            },
        )
        .os("application", p.application.as_deref())
        .oi("application_fee_amount", p.app_fee_amount)
        .raw(
            "automatic_payment_methods",
            r#"{"allow_redirects":"always","enabled":true}"#,
        )
        .oi("canceled_at", p.canceled_at)
        .os("cancellation_reason", p.canceled_at.map(|_| "void_invoice"))
        .s("capture_method", "automatic_async");
    let secret = format!("{}_secret_{}", p.pi_id, &p.pm_id[3..]);
    o.s("client_secret", &secret)
        .s("confirmation_method", "automatic")
        .i("created", p.created)
        .s("currency", code(p.cur))
        .os("customer", p.customer.as_deref())
        .os("description", p.description.as_deref())
        .s("id", &p.pi_id);
    if ctx.ver == Ver::Legacy {
        o.os("invoice", p.invoice.as_deref());
    }
    if p.failed_attempts > 0 && p.status != PiStatus::Succeeded {
        o.raw(
            "last_payment_error",
            r#"{"code":"card_declined","decline_code":"insufficient_funds","message":"Your card has insufficient funds.","type":"card_error"}"#,
        );
    } else {
        o.null("last_payment_error");
    }
    o.os("latest_charge", p.latest_charge.as_deref())
        .b("livemode", ctx.livemode)
        .raw("metadata", "{}")
        .null("next_action")
        .s("object", "payment_intent")
        .null("on_behalf_of")
        .s("payment_method", &p.pm_id)
        .null("payment_method_configuration_details")
        .raw(
            "payment_method_options",
            r#"{"card":{"installments":null,"mandate_options":null,"network":null,"request_three_d_secure":"automatic"}}"#,
        )
        .raw("payment_method_types", r#"["card"]"#)
        .null("processing")
        .os("receipt_email", p.email.as_deref())
        .null("review")
        .null("setup_future_usage")
        .null("shipping")
        .null("statement_descriptor")
        .null("statement_descriptor_suffix")
        .s("status", p.status.as_str())
        .null("transfer_data")
        .null("transfer_group")
        .null("source")
        .null("excluded_payment_method_types")
        .null("customer_account")
        .raw("managed_payments", r#"{"enabled":false}"#);
    o.end();
}

/// A charge: the succeeded (or failed) card charge of a payment, or (`py_…`) the payment a
/// connected account receives for a transfer.
pub(crate) fn render_charge(out: &mut String, c: &ChargeView<'_>, ctx: &Ctx) {
    let p = c.payment;
    let succeeded = c.succeeded;
    let mut o = Obj::new(out);
    o.i("amount", c.amount)
        .i("amount_captured", if succeeded { c.amount } else { 0 })
        .i(
            "amount_refunded",
            if succeeded {
                p.map_or(0, |p| p.amount_refunded)
            } else {
                0
            },
        )
        .os("application", p.and_then(|p| p.application.as_deref()))
        .os("application_fee", p.and_then(|p| p.app_fee_id.as_deref()))
        .oi("application_fee_amount", p.and_then(|p| p.app_fee_amount))
        .os("balance_transaction", c.bt_id);
    {
        let mut b = o.obj("billing_details");
        b.raw("address", NULL_ADDRESS)
            .os("email", p.and_then(|p| p.email.as_deref()))
            .os("name", p.and_then(|p| p.name.as_deref()))
            .null("phone")
            .null("tax_id");
        b.end();
    }
    o.os(
        "calculated_statement_descriptor",
        if c.payment.is_some() {
            Some("LEDGERLINE SIM")
        } else {
            None
        },
    )
    .b("captured", succeeded)
    .i("created", c.created)
    .s("currency", code(c.cur))
    .os("customer", p.and_then(|p| p.customer.as_deref()))
    .os("description", p.and_then(|p| p.description.as_deref()))
    .b(
        "disputed",
        p.is_some_and(|p| p.dispute.is_some()) && succeeded,
    )
    .null("failure_balance_transaction")
    .os(
        "failure_code",
        if succeeded {
            None
        } else {
            Some("card_declined")
        },
    )
    .os(
        "failure_message",
        if succeeded {
            None
        } else {
            Some("Your card has insufficient funds.")
        },
    )
    .raw("fraud_details", "{}")
    .s("id", c.id);
    if ctx.ver == Ver::Legacy {
        o.os("invoice", p.and_then(|p| p.invoice.as_deref()));
    }
    o.b("livemode", ctx.livemode)
        .raw("metadata", "{}")
        .s("object", "charge")
        .null("on_behalf_of");
    if p.is_some() {
        if succeeded {
            o.raw(
                "outcome",
                r#"{"advice_code":null,"network_advice_code":null,"network_decline_code":null,"network_status":"approved_by_network","reason":null,"risk_level":"normal","seller_message":"Payment complete.","type":"authorized"}"#,
            );
        } else {
            o.raw(
                "outcome",
                r#"{"advice_code":"try_again_later","network_advice_code":null,"network_decline_code":"51","network_status":"declined_by_network","reason":"insufficient_funds","risk_level":"normal","seller_message":"The bank returned the decline code `insufficient_funds`.","type":"issuer_declined"}"#,
            );
        }
    } else {
        o.null("outcome");
    }
    o.b("paid", succeeded)
        .os("payment_intent", p.map(|p| p.pi_id.as_str()))
        .os("payment_method", p.map(|p| p.pm_id.as_str()));
    match p {
        Some(p) => {
            let pmd = o.value("payment_method_details");
            pmd.push_str(r#"{"card":{"amount_authorized":"#);
            write_i64(pmd, c.amount);
            pmd.push_str(r#","authorization_code":"123456","brand":""#);
            pmd.push_str(p.brand);
            pmd.push_str(r#"","checks":{"address_line1_check":null,"address_postal_code_check":null,"cvc_check":"pass"},"country":"US","exp_month":8,"exp_year":2030,"extended_authorization":{"status":"disabled"},"fingerprint":"SimFp"#);
            pmd.push_str(p.last4);
            pmd.push_str(r#"","funding":"credit","incremental_authorization":{"status":"unavailable"},"installments":null,"last4":""#);
            pmd.push_str(p.last4);
            pmd.push_str(r#"","mandate":null,"multicapture":{"status":"unavailable"},"network":""#);
            pmd.push_str(p.brand);
            pmd.push_str(r#"","network_token":{"used":false},"network_transaction_id":"581234567890123","overcapture":{"maximum_amount_capturable":"#);
            write_i64(pmd, c.amount);
            pmd.push_str(r#","status":"unavailable"},"regulated_status":"unregulated","three_d_secure":null,"wallet":null},"type":"card"}"#);
        }
        None => {
            o.raw(
                "payment_method_details",
                r#"{"stripe_account":{},"type":"stripe_account"}"#,
            );
        }
    }
    o.os("receipt_email", p.and_then(|p| p.email.as_deref()))
        .null("receipt_number");
    if p.is_some() && succeeded {
        let url = format!("https://pay.stripe.com/receipts/payment/sim/{}", c.id);
        o.s("receipt_url", &url);
    } else {
        o.null("receipt_url");
    }
    o.b(
        "refunded",
        p.is_some_and(|p| succeeded && p.amount_refunded >= c.amount),
    )
    .null("review")
    .null("shipping")
    .os("source_transfer", c.source_transfer)
    .null("statement_descriptor")
    .null("statement_descriptor_suffix")
    .s("status", if succeeded { "succeeded" } else { "failed" })
    .null("transfer_data")
    .null("transfer_group")
    .null("source");
    o.end();
}

pub(crate) fn render_refund(out: &mut String, r: &Refund, ctx: &Ctx) {
    let _ = ctx;
    let mut o = Obj::new(out);
    o.i("amount", r.amount)
        .s("balance_transaction", &r.bt_id)
        .s("charge", &r.charge)
        .i("created", r.created)
        .s("currency", code(r.cur))
        .raw(
            "destination_details",
            r#"{"card":{"reference":null,"reference_status":"pending","reference_type":"acquirer_reference_number","type":"refund"},"type":"card"}"#,
        )
        .s("id", &r.id);
    {
        let mut m = o.obj("metadata");
        if let Some(cn) = &r.credit_note {
            m.s("credit_note", cn);
        }
        m.end();
    }
    o.s("object", "refund")
        .s("payment_intent", &r.payment_intent)
        .s("reason", "requested_by_customer")
        .null("receipt_number")
        .null("source_transfer_reversal")
        .s("status", "succeeded")
        .null("transfer_reversal")
        .os("customer", r.customer.as_deref())
        .null("customer_account")
        .s("payment_method", &r.payment_method);
    o.end();
}
