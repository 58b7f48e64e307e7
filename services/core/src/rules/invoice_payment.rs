//! `invoice_payment.paid` (API 2025-05-28.basil and later), by `payment.type`.
//!
//! - `charge` / `payment_intent`: `Dr assets:clearing:stripe_payments`, `Cr assets:receivable:{customer}`,
//!   and a claim on the charge that the journal settles against the charge's balance
//!   transaction (see the crate docs, "Stripe payments").
//! - `payment_record` (money received outside Stripe): `Dr assets:clearing:off_stripe`,
//!   `Cr assets:receivable:{customer}`; cash application posts the bank side.
//! - anything else: `Dr equity:suspense` with the reason.
//!
//! The invoice payment does not name the customer; the entry waits for any fact that names
//! the invoice's customer (usually `invoice.finalized`, which comes first).

use crate::account::Account;
use crate::entry::Timestamp;
use crate::money::Money;
use crate::parse::text;

use super::{AwaitingCustomer, Ctx, Link, PostError, SettlementKind};

pub(super) fn paid(ctx: &mut Ctx<'_, '_, '_>) -> Result<(), PostError> {
    let o = ctx.obj;
    if let Some(status) = text(&o.status)
        && status != "paid"
    {
        ctx.nothing("invoice payment is not paid");
        return Ok(());
    }
    let id = ctx.id()?.to_owned();
    let c = ctx.currency()?;
    let invoice = ctx.need_text(&o.invoice, "invoice")?.to_owned();
    let amount = ctx.need(o.amount_paid, "amount_paid")?;
    if amount == 0 {
        ctx.nothing("amount_paid is zero");
        return Ok(());
    }
    let when = Timestamp::from_unix(
        o.status_transitions
            .and_then(|s| s.paid_at)
            .or(o.created)
            .unwrap_or(ctx.ev.created.unix()),
    );
    let payment = o.payment.clone().unwrap_or_default();
    let charge = text(&payment.charge);
    let intent = text(&payment.payment_intent);
    if let (Some(ch), Some(pi)) = (charge, intent) {
        ctx.out.links.push(Link::Alias {
            payment_intent: pi.into(),
            charge: ch.into(),
        });
    }
    let money = Money::from_minor(c, amount);
    let (debit, memo, claim_key) = match text(&payment.kind) {
        Some("charge") | Some("payment_intent") => {
            let key = charge
                .or(intent)
                .ok_or_else(|| ctx.missing("payment.charge"))?;
            (Account::ClearingStripePayments, None, Some(key.to_owned()))
        }
        Some("payment_record") => (Account::ClearingOffStripe, None, None),
        other => (
            Account::Suspense,
            Some(format!(
                "invoice payment of unknown payment type {:?}: classify by hand",
                other.unwrap_or("")
            )),
            None,
        ),
    };
    if let Some(key) = claim_key
        && amount > 0
    {
        ctx.out.links.push(Link::Claim {
            key: key.into(),
            claim: id.as_str().into(),
            kind: SettlementKind::Payment,
            amount: money,
            at: when,
        });
    }
    ctx.out.awaiting.push(AwaitingCustomer {
        ledger: ctx.out.ledger.clone(),
        invoice: invoice.into(),
        source: id.into(),
        rule: "invoice_payment.paid",
        effective_at: when,
        debit,
        amount: money,
        memo: memo.map(Into::into),
    });
    Ok(())
}
