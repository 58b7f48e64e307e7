//! Credit notes: created (issued) and voided.
//!
//! A credit note reduces revenue and tax once, and says where the credit went:
//!
//! - `Dr income:revenue` total − tax + discounts, `Dr liabilities:tax` tax, `Cr income:discounts` discounts;
//! - `Cr assets:receivable:{customer}` `pre_payment_amount` (reduces what is still due);
//! - `Cr assets:clearing:stripe_payments` the refunds it explains (`refunds[].amount_refunded`),
//!   each a claim the journal settles against the refund's balance transaction, which had
//!   debited `income:refunds`: so a refund with a credit note nets out of `income:refunds`,
//!   and one without stays there;
//! - `Cr assets:clearing:off_stripe` `out_of_band_amount` (returned outside Stripe);
//! - `Cr liabilities:customer_credit:{customer}` the rest of `post_payment_amount`.
//!
//! Older shapes name a single `refund` without amounts: it takes `post_payment_amount −
//! out_of_band_amount`. Voiding posts the exact negation, pointing at the created entry.

use crate::account::Account;
use crate::entry::{EntryId, Timestamp};
use crate::money::Money;
use crate::parse::text;

use super::invoice::remember_customer;
use super::{Ctx, Lines, Link, PostError, SettlementKind, add, sub};

struct Note {
    lines: Lines,
    refunds: Vec<(String, i64)>,
}

fn note(ctx: &Ctx<'_, '_, '_>) -> Result<Note, PostError> {
    let o = ctx.obj;
    let id = ctx.id()?;
    let c = ctx.currency()?;
    let customer = ctx.need_text(&o.customer, "customer")?;
    let total = match o.total {
        Some(t) => t,
        None => ctx.need(o.amount.map(|a| a.0), "total")?,
    };
    let tax = o.total_taxes.or(o.tax_amounts).map(|s| s.0).unwrap_or(0);
    let discounts = o.discount_amount.unwrap_or(0);
    let pre = o.pre_payment_amount.unwrap_or(0);
    let post = o.post_payment_amount.unwrap_or(0);
    let oob = o.out_of_band_amount.unwrap_or(0);
    if add(pre, post, id)? != total {
        return Err(ctx.impossible(format!(
            "pre_payment_amount {pre} + post_payment_amount {post} != total {total}"
        )));
    }
    let mut refunds: Vec<(String, i64)> = Vec::new();
    match &o.refunds {
        Some(list) if !list.0.is_empty() => {
            for r in &list.0 {
                let key = text(&r.refund).ok_or_else(|| ctx.missing("refunds.refund"))?;
                refunds.push((key.to_owned(), r.amount_refunded));
            }
        }
        _ => {
            if let Some(key) = text(&o.refund) {
                refunds.push((key.to_owned(), sub(post, oob, id)?));
            }
        }
    }
    let mut refunded = 0;
    for (_, a) in &refunds {
        refunded = add(refunded, *a, id)?;
    }
    let credited = sub(sub(post, refunded, id)?, oob, id)?;
    if credited < 0 {
        return Err(ctx.impossible(format!(
            "refunds {refunded} + out_of_band_amount {oob} exceed post_payment_amount {post}"
        )));
    }
    let revenue = add(sub(total, tax, id)?, discounts, id)?;
    let mut l = Lines::new();
    l.dr(Account::Revenue, c, revenue);
    l.dr(Account::Tax, c, tax);
    l.cr(Account::Discounts, c, discounts);
    l.cr(Account::Receivable(customer.into()), c, pre);
    l.cr(Account::ClearingStripePayments, c, refunded);
    l.cr(Account::ClearingOffStripe, c, oob);
    l.cr(Account::CustomerCredit(customer.into()), c, credited);
    Ok(Note { lines: l, refunds })
}

pub(super) fn created(ctx: &mut Ctx<'_, '_, '_>) -> Result<(), PostError> {
    remember_customer(ctx);
    let id = ctx.id()?.to_owned();
    let c = ctx.currency()?;
    let when = Timestamp::from_unix(
        ctx.obj
            .effective_at
            .or(ctx.obj.created)
            .unwrap_or(ctx.ev.created.unix()),
    );
    let Note { lines, refunds } = note(ctx)?;
    for (key, amount) in refunds {
        if amount > 0 {
            ctx.out.links.push(Link::Claim {
                key: key.into(),
                claim: id.as_str().into(),
                kind: SettlementKind::Refund,
                amount: Money::from_minor(c, amount),
                at: when,
            });
        }
    }
    if lines.0.is_empty() {
        ctx.nothing("credit note total is zero");
        return Ok(());
    }
    ctx.entry(&id, "credit_note.created", when, lines, None, None)
}

pub(super) fn voided(ctx: &mut Ctx<'_, '_, '_>) -> Result<(), PostError> {
    remember_customer(ctx);
    let id = ctx.id()?.to_owned();
    let when = Timestamp::from_unix(ctx.obj.voided_at.unwrap_or(ctx.ev.created.unix()));
    let lines = note(ctx)?.lines.negated();
    let reverses = EntryId::derive(&ctx.out.ledger, &id, "credit_note.created");
    if lines.0.is_empty() {
        ctx.nothing("credit note total is zero");
        return Ok(());
    }
    ctx.entry(&id, "credit_note.voided", when, lines, Some(reverses), None)
}
