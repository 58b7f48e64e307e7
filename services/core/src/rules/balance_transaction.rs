//! Balance transactions, routed by `reporting_category`.
//!
//! Every balance transaction posts one entry at `created`:
//! `Dr assets:stripe:pending net`, `Dr expenses:stripe_fees:{type}` per `fee_details` item,
//! `Cr <counter account> amount` — where the counter account depends on the reporting
//! category ([`route`]). A second entry, effective at `available_on`, moves the net from
//! pending to available; its source id carries the `available_on` it was computed from, so a
//! moved `available_on` posts a new reclass and the journal reverses the old one.

use crate::account::{Account, FeeType};
use crate::parse::BalanceTransaction;

use super::{Lines, Link, PostError, Posting, SettlementKind, add, push_entry, sub};

/// Rule name of the main entry.
pub(crate) const RULE: &str = "balance_transaction";
/// Rule name of the pending → available reclass.
pub(crate) const RULE_AVAILABLE: &str = "balance_transaction.available";

/// Where a reporting category's gross amount goes, and whether it settles a charge or refund.
pub(crate) struct Route {
    pub(crate) counter: Account,
    pub(crate) settles: Option<SettlementKind>,
    pub(crate) memo: Option<String>,
}

/// The counter account of each reporting category. Unknown categories go to suspense with a
/// reason, never dropped.
pub(crate) fn route(category: &str, kind: &str) -> Route {
    use Account::*;
    let plain = |counter| Route {
        counter,
        settles: None,
        memo: None,
    };
    match category {
        "charge" => Route {
            counter: UninvoicedSales,
            settles: Some(SettlementKind::Payment),
            memo: None,
        },
        "refund" => Route {
            counter: Refunds,
            settles: Some(SettlementKind::Refund),
            memo: None,
        },
        "refund_failure" => plain(Refunds),
        "partial_capture_reversal" | "charge_failure" => plain(UninvoicedSales),
        "dispute" | "dispute_reversal" => plain(Disputes),
        "fee" => plain(StripeFees(FeeType::from_stripe(kind))),
        "payout" | "payout_reversal" => plain(BankInTransit),
        // The destination's side of a Connect transfer (`payment`, `payment_refund`,
        // `payment_reversal` on the connected account) names no transfer event to meet: it
        // is money from (or back to) the platform.
        "transfer" | "transfer_reversal" if kind.starts_with("payment") => plain(PlatformTransfers),
        "transfer" | "transfer_reversal" => plain(ClearingConnectTransfers),
        "platform_earning" | "platform_earning_refund" => plain(ApplicationFees),
        "topup" | "topup_reversal" => plain(Bank),
        "other_adjustment" => plain(StripeAdjustments),
        "risk_reserved_funds" | "connect_reserved_funds" => plain(StripeReserved),
        other => Route {
            counter: Suspense,
            settles: None,
            memo: Some(format!(
                "reporting_category {other:?} (type {kind:?}) has no posting rule yet: classify by hand"
            )),
        },
    }
}

pub(super) fn post(bt: &BalanceTransaction<'_>, out: &mut Posting) -> Result<(), PostError> {
    let c = bt.currency;
    let id: &str = &bt.id;
    let Route {
        counter,
        settles,
        mut memo,
    } = route(&bt.reporting_category, &bt.kind);

    let mut lines = Lines::new();
    lines.dr(Account::StripePending, c, bt.net);
    let mut itemized: i64 = 0;
    for d in &bt.fee_details {
        lines.dr(
            Account::StripeFees(FeeType::from_stripe(d.kind.as_str())),
            c,
            d.amount,
        );
        itemized = add(itemized, d.amount, id)?;
    }
    let rest = sub(bt.fee, itemized, id)?;
    if rest != 0 {
        if bt.fee_details.is_empty() {
            lines.dr(Account::StripeFees(FeeType::StripeFee), c, rest);
        } else {
            lines.dr(Account::Suspense, c, rest);
            let note = format!("fee {} but fee_details sum to {itemized}", bt.fee);
            memo = Some(match memo {
                Some(m) => format!("{m}; {note}"),
                None => note,
            });
        }
    }
    lines.cr(counter, c, bt.amount);
    let ledger = out.ledger.clone();
    push_entry(out, ledger.clone(), id, RULE, bt.created, lines, None, memo)?;

    if bt.net != 0 {
        let source = format!("{id}@{}", bt.available_on.unix());
        let mut reclass = Lines::new();
        reclass.dr(Account::StripeAvailable, c, bt.net);
        reclass.cr(Account::StripePending, c, bt.net);
        push_entry(
            out,
            ledger,
            &source,
            RULE_AVAILABLE,
            bt.available_on,
            reclass,
            None,
            None,
        )?;
        // The entry just pushed (net is not zero, so it has lines): its id, not derived twice.
        if let Some(reclass) = out.entries.last().map(|e| e.id()) {
            out.links.push(Link::Availability {
                txn: id.into(),
                available_on: bt.available_on,
                available: bt.available,
                reclass,
            });
        }
    }

    if let (Some(kind), Some(key)) = (settles, bt.source.as_deref()) {
        let gross = match kind {
            SettlementKind::Payment => bt.amount,
            SettlementKind::Refund => bt.amount.saturating_neg(),
        };
        if gross > 0 {
            out.links.push(Link::Cash {
                key: key.into(),
                kind,
                gross: crate::Money::from_minor(c, gross),
                at: bt.created,
            });
        }
    }
    Ok(())
}
