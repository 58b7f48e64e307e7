//! Balance transactions and the balance object.

use super::*;

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
