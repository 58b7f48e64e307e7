//! Connect transfers, and the PaymentIntent → charge links read from charge and
//! PaymentIntent events.
//!
//! A transfer's balance transaction (category `transfer`) moved the money out of the balance
//! into `assets:clearing:connect_transfers`, because it does not name the connected account.
//! `transfer.created` names it: `Dr liabilities:connect:{destination}`,
//! `Cr assets:clearing:connect_transfers`. Each reversal in `transfer.reversed` does the
//! opposite (its balance transaction, `transfer_reversal`, brings the money back).
//! Application fees post from their balance transactions (`platform_earning`,
//! `platform_earning_refund`) to `income:application_fees`.

use crate::account::Account;
use crate::entry::Timestamp;
use crate::parse::text;

use super::{Ctx, Lines, Link, PostError};

pub(super) fn transfer_created(ctx: &mut Ctx<'_, '_, '_>) -> Result<(), PostError> {
    let o = ctx.obj;
    let id = ctx.id()?.to_owned();
    let c = ctx.currency()?;
    let amount = ctx.need(o.amount.map(|a| a.0), "amount")?;
    let dest = ctx.need_text(&o.destination, "destination")?;
    let mut l = Lines::new();
    l.dr(Account::Connect(dest.into()), c, amount);
    l.cr(Account::ClearingConnectTransfers, c, amount);
    let when = Timestamp::from_unix(o.created.unwrap_or(ctx.ev.created.unix()));
    ctx.entry(&id, "transfer.created", when, l, None, None)
}

pub(super) fn transfer_reversed(ctx: &mut Ctx<'_, '_, '_>) -> Result<(), PostError> {
    let o = ctx.obj;
    let c = ctx.currency()?;
    let dest = ctx.need_text(&o.destination, "destination")?.to_owned();
    let Some(reversals) = &o.reversals else {
        return Err(ctx.missing("reversals"));
    };
    let when = ctx.ev.created;
    let items: Vec<(String, i64)> = reversals
        .data
        .iter()
        .map(|r| (r.id.as_str().to_owned(), r.amount))
        .collect();
    for (rid, amount) in items {
        let mut l = Lines::new();
        l.dr(Account::ClearingConnectTransfers, c, amount);
        l.cr(Account::Connect(dest.as_str().into()), c, amount);
        ctx.entry(&rid, "transfer.reversal", when, l, None, None)?;
    }
    if ctx.out.entries.is_empty() {
        ctx.nothing("no reversals listed");
    }
    Ok(())
}

/// A PaymentIntent's *succeeded* charge. A failed attempt is also a charge of the same
/// PaymentIntent (and a failed PaymentIntent's `latest_charge`), but it never settles: linking
/// it would leave the invoice payment's claim waiting for money that never comes, and which
/// charge won would depend on arrival order.
pub(super) fn remember_charge_alias(ctx: &mut Ctx<'_, '_, '_>) {
    let o = ctx.obj;
    if text(&o.status) != Some("succeeded") {
        return;
    }
    let (pi, ch) = match text(&o.object) {
        Some("charge") => (text(&o.payment_intent), text(&o.id)),
        Some("payment_intent") => (text(&o.id), text(&o.latest_charge)),
        _ => (None, None),
    };
    if let (Some(pi), Some(ch)) = (pi, ch) {
        ctx.out.links.push(Link::Alias {
            payment_intent: pi.into(),
            charge: ch.into(),
        });
    }
}
