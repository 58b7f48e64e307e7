//! Payouts.

use super::*;

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
