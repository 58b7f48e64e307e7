//! Payout events. The payout's own balance transaction moved the money from the Stripe
//! balance to `assets:bank:in_transit`; a failed or canceled payout's money comes back through
//! a `payout_failure` / `payout_cancel` balance transaction (reporting category
//! `payout_reversal`).
//!
//! - `payout.paid`: `Dr assets:bank`, `Cr assets:bank:in_transit` (effective at the event).
//! - `payout.failed`: nothing by itself; if the payout had been reported paid, the journal
//!   reverses the `payout.paid` entry (a payout can fail after arriving).
//! - `payout.canceled`: nothing (it never left).

use crate::account::Account;

use super::{Ctx, Lines, Link, PostError};

pub(super) fn paid(ctx: &mut Ctx<'_, '_, '_>) -> Result<(), PostError> {
    let o = ctx.obj;
    let id = ctx.id()?.to_owned();
    let c = ctx.currency()?;
    let amount = ctx.need(o.amount.map(|a| a.0), "amount")?;
    let mut l = Lines::new();
    l.dr(Account::Bank, c, amount);
    l.cr(Account::BankInTransit, c, amount);
    ctx.out.links.push(Link::PayoutPaid {
        payout: id.as_str().into(),
    });
    let when = ctx.ev.created;
    ctx.entry(&id, "payout.paid", when, l, None, None)
}

pub(super) fn failed(ctx: &mut Ctx<'_, '_, '_>) -> Result<(), PostError> {
    let id = ctx.id()?.to_owned();
    ctx.out.links.push(Link::PayoutFailed {
        payout: id.into(),
        at: ctx.ev.created,
    });
    ctx.nothing("the payout_failure balance transaction returns the money");
    Ok(())
}
