//! Invoices (with their lines and tax amounts) and invoice payments.

use super::*;

pub(super) fn tax_entry(a: &mut Arr<'_>, amount: i64, taxable: i64, rate: &str, ver: Ver) {
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

pub(super) fn render_line(a: &mut Arr<'_>, inv: &Invoice, l: &Line, ctx: &Ctx) {
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
