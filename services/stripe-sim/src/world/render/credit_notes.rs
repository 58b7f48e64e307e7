//! Credit notes.

use super::*;

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
