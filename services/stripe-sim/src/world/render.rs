//! Stripe JSON for every simulated object, in the current API version (`2026-07-29.dahlia`) or,
//! for events in the early part of a history when so configured, the legacy `2024-06-20` shape.
//! Key order follows Stripe's own fixtures (`shared/stripe-fixtures/`).

use super::entities::*;
use super::json::{Arr, Obj, write_str};
use super::money::{CURRENCIES, write_rate};

/// Which API version an object is rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ver {
    Current,
    Legacy,
}

/// What every renderer needs besides the object itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx {
    pub(crate) now: i64,
    pub(crate) livemode: bool,
    pub(crate) ver: Ver,
}

pub(crate) const NULL_ADDRESS: &str =
    r#"{"city":null,"country":null,"line1":null,"line2":null,"postal_code":null,"state":null}"#;

fn code(cur: usize) -> &'static str {
    CURRENCIES.get(cur).map_or("usd", |c| c.code)
}

fn empty_list(o: &mut Obj<'_>, key: &str, url: &str) {
    let mut l = o.obj(key);
    l.s("object", "list")
        .raw("data", "[]")
        .b("has_more", false)
        .i("total_count", 0)
        .s("url", url);
    l.end();
}

pub(crate) fn render_bt(out: &mut String, bt: &Bt, ctx: &Ctx) {
    let mut o = Obj::new(out);
    o.i("amount", bt.amount)
        .i("available_on", bt.available_on)
        .i("created", bt.created)
        .s("currency", code(bt.cur))
        .os("description", bt.description.as_deref());
    match bt.rate {
        Some(r) => write_rate(o.value("exchange_rate"), r),
        None => {
            o.null("exchange_rate");
        }
    }
    o.i("fee", bt.fee());
    {
        let mut a = o.arr("fee_details");
        for f in &bt.fees {
            let mut d = a.obj();
            d.i("amount", f.amount)
                .os("application", f.application.as_deref())
                .s("currency", code(bt.cur))
                .s("description", f.description)
                .s("type", f.ty);
            d.end();
        }
        a.end();
    }
    o.s("id", &bt.id)
        .i("net", bt.net())
        .s("object", "balance_transaction")
        .s("reporting_category", bt.category)
        .s("source", &bt.source)
        .s(
            "status",
            if bt.available_on <= ctx.now {
                "available"
            } else {
                "pending"
            },
        )
        .s("type", bt.ty)
        .s("balance_type", "payments");
    o.end();
}

pub(crate) fn render_customer(out: &mut String, c: &Customer, ctx: &Ctx) {
    let mut o = Obj::new(out);
    o.raw("address", NULL_ADDRESS)
        .i("balance", 0)
        .i("created", c.created)
        .s("currency", code(c.cur))
        .null("default_source")
        .b("delinquent", false)
        .null("description")
        .null("discount")
        .s("email", &c.email)
        .s("id", &c.id)
        .s("invoice_prefix", &c.prefix);
    {
        let mut s = o.obj("invoice_settings");
        s.null("custom_fields")
            .null("default_payment_method")
            .null("footer")
            .null("rendering_options");
        s.end();
    }
    o.b("livemode", ctx.livemode);
    {
        let mut m = o.obj("metadata");
        m.s("company_id", &c.company_id);
        m.s(
            "payment_terms",
            if c.bank { "bank_transfer" } else { "card" },
        );
        m.end();
    }
    o.s("name", &c.name)
        .i("next_invoice_sequence", 1)
        .s("object", "customer")
        .null("phone")
        .raw("preferred_locales", "[]")
        .null("shipping")
        .s("tax_exempt", if c.taxable { "none" } else { "exempt" })
        .null("test_clock")
        .null("customer_account");
    o.end();
}

pub(crate) fn render_product(out: &mut String, p: &Product, ctx: &Ctx) {
    let mut o = Obj::new(out);
    o.b("active", true)
        .raw("attributes", "[]")
        .i("created", p.created)
        .null("default_price")
        .null("description")
        .s("id", &p.id)
        .raw("images", "[]")
        .b("livemode", ctx.livemode)
        .raw("marketing_features", "[]")
        .raw("metadata", "{}")
        .s("name", p.name)
        .s("object", "product")
        .null("package_dimensions")
        .null("shippable")
        .null("statement_descriptor")
        .null("tax_code")
        .s("type", "service")
        .null("unit_label")
        .i("updated", p.created)
        .null("url");
    o.end();
}

pub(crate) fn render_price(out: &mut String, p: &Price, ctx: &Ctx) {
    let mut o = Obj::new(out);
    o.b("active", true)
        .s("billing_scheme", "per_unit")
        .i("created", p.created)
        .s("currency", code(p.cur))
        .null("custom_unit_amount")
        .s("id", &p.id)
        .b("livemode", ctx.livemode)
        .null("lookup_key")
        .raw("metadata", "{}")
        .null("nickname")
        .s("object", "price")
        .s("product", &p.product);
    if p.recurring {
        o.raw(
            "recurring",
            r#"{"interval":"month","interval_count":1,"meter":null,"trial_period_days":null,"usage_type":"licensed"}"#,
        );
    } else {
        o.null("recurring");
    }
    o.s("tax_behavior", "exclusive")
        .null("tiers_mode")
        .null("transform_quantity")
        .s("type", if p.recurring { "recurring" } else { "one_time" })
        .i("unit_amount", p.unit_amount);
    write_str(o.value("unit_amount_decimal"), &p.unit_amount.to_string());
    o.end();
}

pub(crate) fn render_account(out: &mut String, a: &Account, created: i64) {
    let mut o = Obj::new(out);
    {
        let mut b = o.obj("business_profile");
        b.null("mcc")
            .s("name", &a.name)
            .null("support_email")
            .null("url");
        b.end();
    }
    o.s("business_type", "company")
        .raw("capabilities", r#"{"card_payments":"active","transfers":"active"}"#)
        .b("charges_enabled", true)
        .raw("controller", r#"{"type":"account"}"#)
        .s("country", "US")
        .i("created", created)
        .s("default_currency", "usd")
        .b("details_submitted", true)
        .s("email", &a.email)
        .s("id", a.id.as_deref().unwrap_or(""))
        .raw("metadata", "{}")
        .s("object", "account")
        .b("payouts_enabled", true)
        .raw(
            "settings",
            r#"{"payouts":{"debit_negative_balances":true,"schedule":{"delay_days":2,"interval":"daily"},"statement_descriptor":null}}"#,
        )
        .s("type", "standard");
    o.end();
}

fn tax_entry(a: &mut Arr<'_>, amount: i64, taxable: i64, rate: &str, ver: Ver) {
    let mut t = a.obj();
    match ver {
        Ver::Current => {
            t.i("amount", amount).s("tax_behavior", "exclusive");
            {
                let mut d = t.obj("tax_rate_details");
                d.s("tax_rate", rate);
                d.end();
            }
            t.s("taxability_reason", "standard_rated")
                .i("taxable_amount", taxable)
                .s("type", "tax_rate_details");
        }
        Ver::Legacy => {
            t.i("amount", amount)
                .b("inclusive", false)
                .s("tax_rate", rate)
                .s("taxability_reason", "standard_rated")
                .i("taxable_amount", taxable);
        }
    }
    t.end();
}

fn render_line(a: &mut Arr<'_>, inv: &Invoice, l: &Line, ctx: &Ctx) {
    let mut o = a.obj();
    o.i("amount", l.amount)
        .s("currency", code(inv.cur))
        .s("description", &l.description);
    {
        let mut d = o.arr("discount_amounts");
        if let Some(di) = &inv.discount_id {
            let mut e = d.obj();
            e.i("amount", l.discount).s("discount", di);
            e.end();
        }
        d.end();
    }
    o.b("discountable", true);
    {
        let mut d = o.arr("discounts");
        if let Some(di) = &inv.discount_id {
            d.s(di);
        }
        d.end();
    }
    o.s("id", &l.id)
        .s("invoice", &inv.id)
        .b("livemode", ctx.livemode)
        .raw("metadata", "{}")
        .s("object", "line_item");
    {
        let mut p = o.obj("period");
        p.i("end", inv.period_end).i("start", inv.period_start);
        p.end();
    }
    o.i("quantity", l.quantity);
    if ctx.ver == Ver::Legacy {
        o.os("subscription", inv.subscription.as_deref());
        {
            let mut t = o.arr("tax_amounts");
            if let Some(r) = &inv.tax_rate_id {
                tax_entry(&mut t, l.tax, l.amount - l.discount, r, Ver::Legacy);
            }
            t.end();
        }
        o.s(
            "type",
            if inv.subscription.is_some() {
                "subscription"
            } else {
                "invoiceitem"
            },
        );
        o.end();
        return;
    }
    o.null("subscription");
    {
        let mut p = o.arr("pretax_credit_amounts");
        if let Some(di) = &inv.discount_id {
            let mut e = p.obj();
            e.i("amount", l.discount)
                .s("discount", di)
                .s("type", "discount");
            e.end();
        }
        p.end();
    }
    {
        let mut t = o.arr("taxes");
        if let Some(r) = &inv.tax_rate_id {
            tax_entry(&mut t, l.tax, l.amount - l.discount, r, Ver::Current);
        }
        t.end();
    }
    {
        let mut p = o.obj("parent");
        match &inv.subscription {
            Some(sub) => {
                p.null("invoice_item_details");
                {
                    let mut s = p.obj("subscription_item_details");
                    s.null("invoice_item")
                        .b("proration", false)
                        .null("proration_details")
                        .s("subscription", sub)
                        .s("subscription_item", &l.item_id);
                    s.end();
                }
                p.s("type", "subscription_item_details");
            }
            None => {
                {
                    let mut s = p.obj("invoice_item_details");
                    s.s("invoice_item", &l.item_id)
                        .b("proration", false)
                        .null("proration_details")
                        .null("subscription");
                    s.end();
                }
                p.null("subscription_item_details")
                    .s("type", "invoice_item_details");
            }
        }
        p.end();
    }
    {
        let mut p = o.obj("pricing");
        {
            let mut d = p.obj("price_details");
            d.s("price", &l.price).s("product", &l.product);
            d.end();
        }
        p.s("type", "price_details");
        write_str(p.value("unit_amount_decimal"), &l.unit_amount.to_string());
        p.end();
    }
    o.i("subtotal", l.amount).null("quantity_decimal");
    o.end();
}

pub(crate) fn render_invoice(out: &mut String, inv: &Invoice, ctx: &Ctx) {
    let open_or_later = inv.status != InvStatus::Draft;
    let mut o = Obj::new(out);
    o.s("account_country", "US")
        .s("account_name", &inv.account_name)
        .null("account_tax_ids")
        .i("amount_due", inv.amount_due)
        .i("amount_paid", inv.amount_paid)
        .i("amount_remaining", inv.amount_remaining)
        .i("amount_shipping", 0)
        .null("application")
        .i("attempt_count", i64::from(inv.attempt_count))
        .b("attempted", inv.attempt_count > 0)
        .b("auto_advance", matches!(inv.status, InvStatus::Draft | InvStatus::Open))
        .raw(
            "automatic_tax",
            r#"{"enabled":false,"liability":null,"status":null,"disabled_reason":null,"provider":null}"#,
        )
        .s("billing_reason", inv.billing_reason);
    if ctx.ver == Ver::Legacy {
        o.os("charge", inv.last_charge.as_deref());
    }
    o.s(
        "collection_method",
        if inv.send_invoice {
            "send_invoice"
        } else {
            "charge_automatically"
        },
    )
    .i("created", inv.created)
    .s("currency", code(inv.cur))
    .null("custom_fields")
    .s("customer", &inv.customer)
    .null("customer_address")
    .s("customer_email", &inv.customer_email)
    .s("customer_name", &inv.customer_name)
    .null("customer_phone")
    .null("customer_shipping")
    .s(
        "customer_tax_exempt",
        if inv.tax_rate_id.is_some() {
            "none"
        } else {
            "exempt"
        },
    )
    .raw("customer_tax_ids", "[]")
    .null("default_payment_method")
    .null("default_source");
    {
        let mut a = o.arr("default_tax_rates");
        if let Some(r) = &inv.tax_rate_id {
            a.s(r);
        }
        a.end();
    }
    o.os("description", inv.description.as_deref());
    {
        let mut a = o.arr("discounts");
        if let Some(d) = &inv.discount_id {
            a.s(d);
        }
        a.end();
    }
    o.oi("due_date", inv.due_date)
        .oi("effective_at", inv.finalized_at)
        .oi("ending_balance", if open_or_later { Some(0) } else { None })
        .null("footer")
        .null("from_invoice");
    if open_or_later {
        let url = format!("https://invoice.stripe.com/i/acct_sim/{}", inv.id);
        o.s("hosted_invoice_url", &url);
    } else {
        o.null("hosted_invoice_url");
    }
    o.s("id", &inv.id);
    if open_or_later {
        let url = format!("https://pay.stripe.com/invoice/acct_sim/{}/pdf", inv.id);
        o.s("invoice_pdf", &url);
    } else {
        o.null("invoice_pdf");
    }
    o.raw("issuer", r#"{"type":"self"}"#)
        .null("last_finalization_error")
        .null("latest_revision");
    {
        let mut l = o.obj("lines");
        {
            let mut a = l.arr("data");
            for line in &inv.lines {
                render_line(&mut a, inv, line, ctx);
            }
            a.end();
        }
        l.b("has_more", false)
            .s("object", "list")
            .i("total_count", i64::try_from(inv.lines.len()).unwrap_or(0));
        let url = format!("/v1/invoices/{}/lines", inv.id);
        l.s("url", &url);
        l.end();
    }
    o.b("livemode", ctx.livemode)
        .raw("metadata", "{}")
        .oi("next_payment_attempt", inv.next_payment_attempt)
        .os("number", inv.number.as_deref());
    o.s("object", "invoice").null("on_behalf_of");
    if ctx.ver == Ver::Legacy {
        o.b("paid", inv.status == InvStatus::Paid)
            .b("paid_out_of_band", false)
            .os("payment_intent", inv.last_payment_intent.as_deref());
    }
    o.raw(
        "payment_settings",
        r#"{"default_mandate":null,"payment_method_options":null,"payment_method_types":null}"#,
    )
    .i("period_end", inv.period_end)
    .i("period_start", inv.period_start)
    .i("post_payment_credit_notes_amount", inv.post_cn)
    .i("pre_payment_credit_notes_amount", inv.pre_cn)
    .null("receipt_number")
    .raw(
        "rendering",
        r#"{"amount_tax_display":null,"pdf":{"page_size":"auto"},"template":null,"template_version":null}"#,
    )
    .null("shipping_cost")
    .null("shipping_details")
    .i("starting_balance", 0)
    .null("statement_descriptor")
    .s("status", inv.status.as_str());
    {
        let mut s = o.obj("status_transitions");
        s.oi("finalized_at", inv.finalized_at)
            .oi("marked_uncollectible_at", inv.uncollectible_at)
            .oi("paid_at", inv.paid_at)
            .oi("voided_at", inv.voided_at);
        s.end();
    }
    if ctx.ver == Ver::Legacy {
        o.os("subscription", inv.subscription.as_deref());
    }
    o.i("subtotal", inv.subtotal)
        .i("subtotal_excluding_tax", inv.subtotal)
        .null("test_clock");
    if ctx.ver == Ver::Legacy {
        o.oi("tax", inv.tax_rate_id.as_ref().map(|_| inv.tax));
    }
    o.i("total", inv.total);
    {
        let mut a = o.arr("total_discount_amounts");
        if let Some(d) = &inv.discount_id {
            let mut e = a.obj();
            e.i("amount", inv.discount).s("discount", d);
            e.end();
        }
        a.end();
    }
    o.i("total_excluding_tax", inv.total - inv.tax);
    if ctx.ver == Ver::Legacy {
        {
            let mut a = o.arr("total_tax_amounts");
            if let Some(r) = &inv.tax_rate_id {
                tax_entry(&mut a, inv.tax, inv.subtotal - inv.discount, r, Ver::Legacy);
            }
            a.end();
        }
        o.oi("webhooks_delivered_at", Some(inv.created));
        o.end();
        return;
    }
    o.oi("webhooks_delivered_at", Some(inv.created))
        .null("automatically_finalizes_at");
    {
        let mut a = o.arr("total_pretax_credit_amounts");
        if let Some(d) = &inv.discount_id {
            let mut e = a.obj();
            e.i("amount", inv.discount)
                .s("discount", d)
                .s("type", "discount");
            e.end();
        }
        a.end();
    }
    {
        let mut a = o.arr("total_taxes");
        if let Some(r) = &inv.tax_rate_id {
            tax_entry(
                &mut a,
                inv.tax,
                inv.subtotal - inv.discount,
                r,
                Ver::Current,
            );
        }
        a.end();
    }
    o.i("amount_overpaid", 0);
    match &inv.subscription {
        Some(sub) => {
            let mut p = o.obj("parent");
            p.null("quote_details");
            {
                let mut s = p.obj("subscription_details");
                s.raw("metadata", "{}").s("subscription", sub);
                s.end();
            }
            p.s("type", "subscription_details");
            p.end();
        }
        None => {
            o.null("parent");
        }
    }
    o.null("customer_account");
    o.end();
}

pub(crate) fn render_invoice_payment(out: &mut String, ip: &InvoicePayment, ctx: &Ctx) {
    let mut o = Obj::new(out);
    o.oi("amount_paid", ip.amount_paid)
        .i("amount_requested", ip.amount_requested)
        .i("created", ip.created)
        .s("currency", code(ip.cur))
        .s("id", &ip.id)
        .s("invoice", &ip.invoice)
        .b("is_default", ip.is_default)
        .b("livemode", ctx.livemode)
        .s("object", "invoice_payment");
    {
        let mut p = o.obj("payment");
        match &ip.payment {
            Some((PayRef::Charge, id)) => {
                p.s("charge", id).s("type", "charge");
            }
            Some((PayRef::PaymentIntent, id)) => {
                p.s("payment_intent", id).s("type", "payment_intent");
            }
            None => {
                p.s("type", "payment_intent");
            }
        }
        p.end();
    }
    o.s("status", ip.status);
    {
        let mut s = o.obj("status_transitions");
        s.oi("canceled_at", ip.canceled_at)
            .oi("paid_at", ip.paid_at);
        s.end();
    }
    o.end();
}

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
            super::json::write_i64(pmd, c.amount);
            pmd.push_str(r#","authorization_code":"123456","brand":""#);
            pmd.push_str(p.brand);
            pmd.push_str(r#"","checks":{"address_line1_check":null,"address_postal_code_check":null,"cvc_check":"pass"},"country":"US","exp_month":8,"exp_year":2030,"extended_authorization":{"status":"disabled"},"fingerprint":"SimFp"#);
            pmd.push_str(p.last4);
            pmd.push_str(r#"","funding":"credit","incremental_authorization":{"status":"unavailable"},"installments":null,"last4":""#);
            pmd.push_str(p.last4);
            pmd.push_str(r#"","mandate":null,"multicapture":{"status":"unavailable"},"network":""#);
            pmd.push_str(p.brand);
            pmd.push_str(r#"","network_token":{"used":false},"network_transaction_id":"581234567890123","overcapture":{"maximum_amount_capturable":"#);
            super::json::write_i64(pmd, c.amount);
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

const EVIDENCE: &str = r#"{"access_activity_log":null,"billing_address":null,"cancellation_policy":null,"cancellation_policy_disclosure":null,"cancellation_rebuttal":null,"customer_communication":null,"customer_email_address":null,"customer_name":null,"customer_purchase_ip":null,"customer_signature":null,"duplicate_charge_documentation":null,"duplicate_charge_explanation":null,"duplicate_charge_id":null,"product_description":null,"receipt":null,"refund_policy":null,"refund_policy_disclosure":null,"refund_refusal_explanation":null,"service_date":null,"service_documentation":null,"shipping_address":null,"shipping_carrier":null,"shipping_date":null,"shipping_documentation":null,"shipping_tracking_number":null,"uncategorized_file":null,"uncategorized_text":null,"enhanced_evidence":{}}"#;
const EVIDENCE_SUBMITTED: &str = r#"{"access_activity_log":null,"billing_address":null,"cancellation_policy":null,"cancellation_policy_disclosure":null,"cancellation_rebuttal":null,"customer_communication":null,"customer_email_address":null,"customer_name":null,"customer_purchase_ip":null,"customer_signature":null,"duplicate_charge_documentation":null,"duplicate_charge_explanation":null,"duplicate_charge_id":null,"product_description":"Subscription to Ledgerline services.","receipt":null,"refund_policy":null,"refund_policy_disclosure":null,"refund_refusal_explanation":null,"service_date":null,"service_documentation":null,"shipping_address":null,"shipping_carrier":null,"shipping_date":null,"shipping_documentation":null,"shipping_tracking_number":null,"uncategorized_file":null,"uncategorized_text":"Customer used the service for the whole period.","enhanced_evidence":{}}"#;

pub(crate) fn render_dispute(out: &mut String, d: &Dispute, ctx: &Ctx) {
    let mut o = Obj::new(out);
    o.i("amount", d.amount);
    {
        let mut a = o.arr("balance_transactions");
        for bt in &d.bts {
            render_bt(a.value(), bt, ctx);
        }
        a.end();
    }
    o.s("charge", &d.charge)
        .i("created", d.created)
        .s("currency", code(d.cur))
        .raw(
            "evidence",
            if d.submissions > 0 {
                EVIDENCE_SUBMITTED
            } else {
                EVIDENCE
            },
        );
    {
        let mut e = o.obj("evidence_details");
        e.i("due_by", d.due_by)
            .b("has_evidence", d.submissions > 0)
            .b("past_due", false)
            .i("submission_count", d.submissions)
            .raw("enhanced_eligibility", "{}");
        e.end();
    }
    o.s("id", &d.id)
        .b("is_charge_refundable", false)
        .b("livemode", ctx.livemode)
        .raw("metadata", "{}")
        .s("object", "dispute")
        .s("payment_intent", &d.payment_intent)
        .raw(
            "payment_method_details",
            r#"{"card":{"brand":"visa","case_type":"chargeback","network_reason_code":"10.4","network":"visa"},"type":"card"}"#,
        )
        .s("reason", d.reason)
        .s("status", d.status)
        .raw("enhanced_eligibility_types", "[]");
    o.end();
}

pub(crate) fn render_payout(out: &mut String, p: &Payout, ctx: &Ctx) {
    let mut o = Obj::new(out);
    o.i("amount", p.amount)
        .null("application_fee")
        .null("application_fee_amount")
        .i("arrival_date", p.arrival_date)
        .b("automatic", true)
        .s("balance_transaction", &p.bt_id)
        .i("created", p.created)
        .s("currency", code(p.cur))
        .s("description", "STRIPE PAYOUT")
        .s("destination", &p.destination)
        .os("failure_balance_transaction", p.failure_bt_id.as_deref())
        .os(
            "failure_code",
            if p.status == "failed" {
                Some("account_closed")
            } else {
                None
            },
        )
        .os(
            "failure_message",
            if p.status == "failed" {
                Some("The bank account has been closed.")
            } else {
                None
            },
        )
        .s("id", &p.id)
        .b("livemode", ctx.livemode)
        .raw("metadata", "{}")
        .s("method", "standard")
        .s("object", "payout")
        .null("original_payout")
        .s("reconciliation_status", p.reconciliation_status)
        .null("reversed_by")
        .s("source_type", "card")
        .s("statement_descriptor", "LEDGERLINE")
        .s("status", p.status)
        .s("type", "bank_account");
    {
        let mut t = o.obj("trace_id");
        if p.status == "paid" || p.status == "failed" {
            let v = format!("SIMTRACE{}", &p.id[3..]);
            t.s("status", "supported").s("value", &v);
        } else {
            t.s("status", "pending").null("value");
        }
        t.end();
    }
    o.null("payout_method");
    o.end();
}

pub(crate) fn render_transfer(out: &mut String, t: &Transfer, ctx: &Ctx) {
    let mut o = Obj::new(out);
    o.i("amount", t.amount)
        .i("amount_reversed", 0)
        .s("balance_transaction", &t.bt_id)
        .i("created", t.created)
        .s("currency", code(t.cur));
    o.s("description", "Monthly partner payout")
        .s("destination", &t.destination)
        .s("destination_payment", &t.destination_payment)
        .s("id", &t.id)
        .b("livemode", ctx.livemode)
        .raw("metadata", "{}")
        .s("object", "transfer");
    let url = format!("/v1/transfers/{}/reversals", t.id);
    empty_list(&mut o, "reversals", &url);
    o.b("reversed", false)
        .null("source_transaction")
        .s("source_type", "card")
        .null("transfer_group");
    o.end();
}

pub(crate) fn render_application_fee(out: &mut String, f: &AppFee, ctx: &Ctx) {
    let mut o = Obj::new(out);
    o.s("account", &f.account)
        .i("amount", f.amount)
        .i("amount_refunded", 0)
        .s("application", &f.application)
        .s("balance_transaction", &f.bt_id)
        .s("charge", &f.charge)
        .i("created", f.created)
        .s("currency", code(f.cur));
    {
        let mut s = o.obj("fee_source");
        s.s("charge", &f.charge).s("type", "charge");
        s.end();
    }
    o.s("id", &f.id)
        .b("livemode", ctx.livemode)
        .s("object", "application_fee")
        .null("originating_transaction")
        .b("refunded", false);
    let url = format!("/v1/application_fees/{}/refunds", f.id);
    empty_list(&mut o, "refunds", &url);
    o.end();
}

pub(crate) fn render_credit_note(out: &mut String, cn: &CreditNote, ctx: &Ctx) {
    let mut o = Obj::new(out);
    o.i("amount", cn.total)
        .i("amount_shipping", 0)
        .i("created", cn.created)
        .s("currency", code(cn.cur))
        .s("customer", &cn.customer)
        .null("customer_balance_transaction")
        .i("discount_amount", 0)
        .raw("discount_amounts", "[]")
        .i("effective_at", cn.created)
        .s("id", &cn.id)
        .s("invoice", &cn.invoice);
    {
        let mut l = o.obj("lines");
        {
            let mut a = l.arr("data");
            let mut e = a.obj();
            e.i("amount", cn.subtotal)
                .s("description", &cn.description)
                .i("discount_amount", 0)
                .raw("discount_amounts", "[]")
                .s("id", &cn.line_id)
                .s("invoice_line_item", &cn.invoice_line)
                .b("livemode", ctx.livemode)
                .raw("metadata", "{}")
                .s("object", "credit_note_line_item")
                .raw("pretax_credit_amounts", "[]")
                .i("quantity", 1);
            {
                let mut t = e.arr("taxes");
                if let Some(r) = &cn.tax_rate_id {
                    tax_entry(&mut t, cn.tax, cn.subtotal, r, Ver::Current);
                }
                t.end();
            }
            e.s("type", "invoice_line_item")
                .i("unit_amount", cn.subtotal);
            write_str(e.value("unit_amount_decimal"), &cn.subtotal.to_string());
            e.end();
            a.end();
        }
        l.b("has_more", false)
            .s("object", "list")
            .i("total_count", 1);
        let url = format!("/v1/credit_notes/{}/lines", cn.id);
        l.s("url", &url);
        l.end();
    }
    o.b("livemode", ctx.livemode)
        .null("memo")
        .raw("metadata", "{}")
        .s("number", &cn.number)
        .s("object", "credit_note")
        .null("out_of_band_amount");
    let pdf = format!("https://pay.stripe.com/credit_notes/sim/{}/pdf", cn.id);
    o.s("pdf", &pdf)
        .i(
            "post_payment_amount",
            if cn.post_payment { cn.total } else { 0 },
        )
        .i(
            "pre_payment_amount",
            if cn.post_payment { 0 } else { cn.total },
        )
        .raw("pretax_credit_amounts", "[]")
        .s("reason", cn.reason);
    {
        let mut a = o.arr("refunds");
        if let Some(re) = &cn.refund {
            let mut e = a.obj();
            e.i("amount_refunded", cn.total)
                .null("payment_record_refund")
                .s("refund", re)
                .s("type", "refund");
            e.end();
        }
        a.end();
    }
    o.null("shipping_cost")
        .s("status", "issued")
        .i("subtotal", cn.subtotal)
        .i("subtotal_excluding_tax", cn.subtotal)
        .i("total", cn.total)
        .i("total_excluding_tax", cn.subtotal);
    {
        let mut a = o.arr("total_taxes");
        if let Some(r) = &cn.tax_rate_id {
            tax_entry(&mut a, cn.tax, cn.subtotal, r, Ver::Current);
        }
        a.end();
    }
    o.s(
        "type",
        if cn.post_payment {
            "post_payment"
        } else {
            "pre_payment"
        },
    )
    .null("voided_at");
    o.end();
}

/// The `balance` object carried by `balance.available` events.
pub(crate) fn render_balance(out: &mut String, rows: &[(usize, i64, i64)], ctx: &Ctx) {
    let mut o = Obj::new(out);
    {
        let mut a = o.arr("available");
        for (cur, _, avail) in rows {
            let mut e = a.obj();
            e.i("amount", *avail).s("currency", code(*cur));
            {
                let mut s = e.obj("source_types");
                s.i("card", *avail);
                s.end();
            }
            e.end();
        }
        a.end();
    }
    o.b("livemode", ctx.livemode).s("object", "balance");
    {
        let mut a = o.arr("pending");
        for (cur, pending, _) in rows {
            let mut e = a.obj();
            e.i("amount", *pending).s("currency", code(*cur));
            {
                let mut s = e.obj("source_types");
                s.i("card", *pending);
                s.end();
            }
            e.end();
        }
        a.end();
    }
    o.end();
}
