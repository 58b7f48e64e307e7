//! Invoices: finalized, voided, marked uncollectible, overpaid, and `invoice.paid` in the
//! shapes older than 2025-03-31.basil (which carry `charge` / `paid_out_of_band`).

use crate::account::Account;
use crate::entry::{EntryId, Timestamp};
use crate::parse::text;

use super::{Ctx, Lines, Link, PostError, SettlementKind, sub};

/// The lines of a finalized invoice (voiding posts their negation).
///
/// - `Dr assets:receivable:{customer}`   total − customer credit applied
/// - `Dr liabilities:customer_credit:{customer}`   credit applied (`ending_balance − starting_balance`)
/// - `Dr income:discounts`   discounts (`total_discount_amounts`)
/// - `Cr income:revenue`   total − tax + discounts
/// - `Cr liabilities:tax`   tax (`total_taxes`, or the older `total_tax_amounts` / `tax`)
fn finalization_lines(ctx: &Ctx<'_, '_, '_>) -> Result<Lines, PostError> {
    let o = ctx.obj;
    let id = ctx.id()?;
    let c = ctx.currency()?;
    let customer = ctx.need_text(&o.customer, "customer")?;
    let total = ctx.need(o.total, "total")?;
    let tax = o
        .total_taxes
        .or(o.total_tax_amounts)
        .map(|s| s.0)
        .or(o.tax)
        .unwrap_or(0);
    let discounts = o.total_discount_amounts.map(|s| s.0).unwrap_or(0);
    let applied = match (o.starting_balance, o.ending_balance) {
        (Some(start), Some(end)) => sub(end, start, id)?,
        _ => 0,
    };
    let receivable = sub(total, applied, id)?;
    let revenue = super::add(sub(total, tax, id)?, discounts, id)?;

    let mut l = Lines::new();
    l.dr(Account::Receivable(customer.into()), c, receivable);
    l.dr(Account::CustomerCredit(customer.into()), c, applied);
    l.dr(Account::Discounts, c, discounts);
    l.cr(Account::Revenue, c, revenue);
    l.cr(Account::Tax, c, tax);
    Ok(l)
}

fn at(ctx: &Ctx<'_, '_, '_>, transition: Option<i64>) -> Timestamp {
    Timestamp::from_unix(transition.unwrap_or(ctx.ev.created.unix()))
}

pub(super) fn remember_customer(ctx: &mut Ctx<'_, '_, '_>) {
    let o = ctx.obj;
    let invoice = match text(&o.object) {
        Some("invoice") => text(&o.id),
        _ => text(&o.invoice),
    };
    if let (Some(invoice), Some(customer)) = (invoice, text(&o.customer)) {
        ctx.out.links.push(Link::InvoiceCustomer {
            invoice: invoice.into(),
            customer: customer.into(),
        });
    }
}

pub(super) fn finalized(ctx: &mut Ctx<'_, '_, '_>) -> Result<(), PostError> {
    remember_customer(ctx);
    let st = ctx.obj.status_transitions.unwrap_or_default();
    let when = at(
        ctx,
        st.finalized_at.or(ctx.obj.effective_at).or(ctx.obj.created),
    );
    let lines = finalization_lines(ctx)?;
    let id = ctx.id()?.to_owned();
    if lines.0.is_empty() {
        ctx.nothing("invoice total is zero");
        return Ok(());
    }
    ctx.entry(&id, "invoice.finalized", when, lines, None, None)
}

pub(super) fn voided(ctx: &mut Ctx<'_, '_, '_>) -> Result<(), PostError> {
    remember_customer(ctx);
    let st = ctx.obj.status_transitions.unwrap_or_default();
    let when = at(ctx, st.voided_at);
    let lines = finalization_lines(ctx)?.negated();
    let id = ctx.id()?.to_owned();
    let reverses = EntryId::derive(&ctx.out.ledger, &id, "invoice.finalized");
    if lines.0.is_empty() {
        ctx.nothing("invoice total is zero");
        return Ok(());
    }
    ctx.entry(&id, "invoice.voided", when, lines, Some(reverses), None)
}

pub(super) fn marked_uncollectible(ctx: &mut Ctx<'_, '_, '_>) -> Result<(), PostError> {
    remember_customer(ctx);
    let o = ctx.obj;
    let id = ctx.id()?.to_owned();
    let c = ctx.currency()?;
    let customer = ctx.need_text(&o.customer, "customer")?;
    let remaining = ctx.need(o.amount_remaining, "amount_remaining")?;
    let st = o.status_transitions.unwrap_or_default();
    let when = at(ctx, st.marked_uncollectible_at);
    let mut l = Lines::new();
    l.dr(Account::BadDebt, c, remaining);
    l.cr(Account::Receivable(customer.into()), c, remaining);
    if l.0.is_empty() {
        ctx.nothing("nothing remained to write off");
        return Ok(());
    }
    ctx.entry(&id, "invoice.marked_uncollectible", when, l, None, None)
}

pub(super) fn overpaid(ctx: &mut Ctx<'_, '_, '_>) -> Result<(), PostError> {
    remember_customer(ctx);
    let o = ctx.obj;
    let id = ctx.id()?.to_owned();
    let c = ctx.currency()?;
    let customer = ctx.need_text(&o.customer, "customer")?;
    let over = ctx.need(o.amount_overpaid, "amount_overpaid")?;
    let when = at(ctx, o.status_transitions.unwrap_or_default().paid_at);
    let mut l = Lines::new();
    l.dr(Account::Receivable(customer.into()), c, over);
    l.cr(Account::CustomerCredit(customer.into()), c, over);
    if l.0.is_empty() {
        ctx.nothing("amount_overpaid is zero");
        return Ok(());
    }
    ctx.entry(&id, "invoice.overpaid", when, l, None, None)
}

/// `invoice.paid`. Since 2025-03-31.basil payments arrive as `invoice_payment.paid` and this
/// event has no accounting effect; older shapes name the `charge` or say `paid_out_of_band`.
pub(super) fn paid(ctx: &mut Ctx<'_, '_, '_>) -> Result<(), PostError> {
    remember_customer(ctx);
    let o = ctx.obj;
    let charge = text(&o.charge).map(str::to_owned);
    let out_of_band = o.paid_out_of_band == Some(true);
    if charge.is_none() && !out_of_band {
        ctx.nothing(
            "paid by invoice payments (invoice_payment.paid) or from customer credit applied at finalization",
        );
        return Ok(());
    }
    let id = ctx.id()?.to_owned();
    let c = ctx.currency()?;
    let customer = ctx.need_text(&o.customer, "customer")?.to_owned();
    let paid = match o.amount_paid {
        Some(p) if p != 0 => p,
        _ => ctx.need(o.amount_due, "amount_paid")?,
    };
    let when = at(ctx, o.status_transitions.unwrap_or_default().paid_at);
    let debit = if out_of_band {
        Account::ClearingOffStripe
    } else {
        Account::ClearingStripePayments
    };
    let mut l = Lines::new();
    l.dr(debit, c, paid);
    l.cr(Account::Receivable(customer.as_str().into()), c, paid);
    if let (Some(charge), false, true) = (charge, out_of_band, paid > 0) {
        ctx.out.links.push(Link::Claim {
            key: charge.into(),
            claim: id.as_str().into(),
            kind: SettlementKind::Payment,
            amount: crate::Money::from_minor(c, paid),
            at: when,
        });
    }
    ctx.entry(&id, "invoice.paid", when, l, None, None)
}
