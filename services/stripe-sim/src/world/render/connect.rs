//! Connect: transfers and application fees.

use super::*;

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
