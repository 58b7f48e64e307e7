//! Ground truth: what really happened in the simulated account, accumulated from the
//! simulation's own state as each action runs (never from the rendered JSON, never from ledger
//! code). The ledger's tests compare their books against these numbers.
//!
//! All amounts are `i64` minor units of the currency in the key (exponents as Stripe's: JPY 0,
//! KWD 3, others 2). Two kinds of currency appear as keys, and each field says which it uses:
//! - **presentment**: the currency a customer was invoiced or charged in (`invoice.currency`,
//!   `charge.currency`, `refund.currency`, `dispute.currency`);
//! - **settlement**: the balance currency a balance transaction is in (`balance_transaction.currency`:
//!   `usd` or `eur` on the platform, `usd` on connected accounts).

use std::collections::BTreeMap;

/// An account (`None` = the platform, else the connected account's `acct_…` id) and a
/// lowercase ISO currency code.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountCurrency {
    pub account: Option<String>,
    pub currency: String,
}

/// A Stripe balance in one currency, as `GET /v1/balance` would show it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Balance {
    /// Σ `net` of balance transactions with `created ≤ t < available_on`.
    pub pending: i64,
    /// Σ `net` of balance transactions with `available_on ≤ t` (and `created ≤ t`). Payouts,
    /// refunds, dispute withdrawals and transfers are available at once (`available_on = created`).
    pub available: i64,
}

impl Balance {
    /// `pending + available` = Σ `net` of every balance transaction created so far.
    pub fn total(&self) -> i64 {
        self.pending + self.available
    }
}

/// Totals for one (account, currency). See the module doc for presentment vs settlement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    // ---- presentment currency ----
    /// Σ `total_excluding_tax` (= subtotal − discounts) of invoices that were finalized and are
    /// not `void` at the end (open, paid and uncollectible all count), minus Σ
    /// `total_excluding_tax` of credit notes (pre- and post-payment) issued on them.
    pub invoiced_revenue: i64,
    /// Σ tax (`total_taxes[].amount`) of the same invoices, minus Σ tax of their credit notes.
    pub invoiced_tax: i64,
    /// Σ `amount` of succeeded charges that belong to no invoice (one-off sales; on a
    /// connected account, its direct charges). Refunds and disputes are not netted here.
    pub uninvoiced_sales: i64,
    /// `invoiced_revenue + uninvoiced_sales`.
    pub revenue: i64,
    /// Σ `total` (incl. tax) of invoices finalized and not void at the end.
    pub invoiced_total: i64,
    /// Σ `total` (incl. tax) of credit notes, all of type `pre_payment` or `post_payment`.
    pub credit_notes_total: i64,
    /// Σ `amount_remaining` of invoices `uncollectible` at the end (bad debt).
    pub uncollectible: i64,
    /// Σ `amount_paid` over all invoices at the end (Stripe-processed card payments only).
    pub invoice_payments: i64,
    /// Σ `amount` of succeeded card charges (invoice and non-invoice).
    pub charges: i64,
    /// Σ `refund.amount` (all refunds: with and without credit notes).
    pub refunds: i64,
    /// Σ `refund.amount` of refunds created for a post-payment credit note.
    pub refunds_for_credit_notes: i64,
    /// Σ `dispute.amount` of every dispute opened.
    pub disputed: i64,
    /// Σ `dispute.amount` of disputes `won` at the end.
    pub disputes_won: i64,
    /// Σ `dispute.amount` of disputes `lost` at the end.
    pub disputes_lost: i64,

    // ---- settlement (balance) currency ----
    /// Σ `amount` of `charge` balance transactions (reporting_category `charge`).
    pub charges_settled: i64,
    /// The part of `charges_settled` from charges that belong to no invoice (the settlement
    /// currency counterpart of `uninvoiced_sales`).
    pub uninvoiced_sales_settled: i64,
    /// Σ `fee_details[].amount` of every balance transaction, by `fee_details[].type`
    /// (`stripe_fee` includes dispute fees and their returns; `application_fee` is what a
    /// connected account paid the platform; `tax` is VAT on Stripe fees).
    pub fees: BTreeMap<String, i64>,
    /// Σ `fee` of every balance transaction (= Σ of `fees`).
    pub fees_total: i64,
    /// −Σ `amount` of `refund` balance transactions (positive number).
    pub refunds_settled: i64,
    /// The part of `refunds_settled` from refunds created for a post-payment credit note (the
    /// settlement currency counterpart of `refunds_for_credit_notes`).
    pub credit_note_refunds_settled: i64,
    /// −Σ `amount` of dispute withdrawals (reporting_category `dispute`; positive number).
    pub dispute_withdrawals: i64,
    /// Σ `amount` of dispute reinstatements (reporting_category `dispute_reversal`).
    pub dispute_reinstatements: i64,
    /// Dispute fees charged minus dispute fees returned on won disputes.
    pub dispute_fees: i64,
    /// Σ `amount` of automatic payouts with `status = paid` at the end.
    pub payouts_paid: i64,
    /// Σ `amount` of payouts `failed` at the end (their money came back as `payout_failure`).
    pub payouts_failed: i64,
    /// Σ `amount` of payouts `canceled` at the end (money back as `payout_cancel`).
    pub payouts_canceled: i64,
    /// Σ `amount` of payouts `pending` or `in_transit` at the end.
    pub payouts_in_flight: i64,
    /// Platform: Σ `amount` of transfers to connected accounts (positive number).
    pub transfers_out: i64,
    /// Connected account: Σ `amount` received through transfers (`payment` BTs).
    pub transfers_received: i64,
    /// Platform: Σ `amount` of `application_fee` balance transactions.
    pub application_fees_earned: i64,
    /// Σ `net` of every balance transaction = pending + available at the end.
    pub net: i64,
}

/// The end state and totals of a generated world.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroundTruth {
    /// The world's last instant (the `created` of the last action); balances are as of this.
    pub end: i64,
    /// Facts emitted: events + balance transactions.
    pub facts: u64,
    pub events: u64,
    pub balance_transactions: u64,
    /// Balance per (account, settlement currency) at `end`.
    pub balances: BTreeMap<AccountCurrency, Balance>,
    /// Totals per (account, currency).
    pub totals: BTreeMap<AccountCurrency, Totals>,
    /// Per (account, customer id, presentment currency): Σ `amount_remaining` of the
    /// customer's invoices that are `open` at the end (only non-zero entries).
    pub open_receivables: BTreeMap<(Option<String>, String, String), i64>,
    /// Per (connected account id, currency): Σ `amount` of transfers to it.
    pub transfers: BTreeMap<(String, String), i64>,
    /// Per (connected account id, currency): Σ application fees the platform took on its charges.
    pub application_fees: BTreeMap<(String, String), i64>,
    /// Step function of every balance: (t, pending, available) after all changes at t, sorted.
    /// Empty when `WorldConfig::balance_history` is off.
    pub(crate) history: BTreeMap<AccountCurrency, Vec<(i64, i64, i64)>>,
}

impl GroundTruth {
    /// The balance of (account, currency) at instant `t` (after everything at `t`), from the
    /// recorded history. `None` when history was not recorded or the balance never existed.
    /// For `t > end` it is the balance assuming nothing more happened after `end`.
    pub fn balance_at(&self, key: &AccountCurrency, t: i64) -> Option<Balance> {
        let steps = self.history.get(key)?;
        let idx = steps.partition_point(|(st, _, _)| *st <= t);
        if idx == 0 {
            return Some(Balance::default());
        }
        steps.get(idx - 1).map(|(_, p, a)| Balance {
            pending: *p,
            available: *a,
        })
    }

    /// Whether `balance_at` can answer.
    pub fn has_history(&self) -> bool {
        !self.history.is_empty()
    }

    /// Shorthand for the platform's totals in a currency (zeros if none).
    pub fn platform(&self, currency: &str) -> Totals {
        self.totals
            .get(&AccountCurrency {
                account: None,
                currency: currency.to_owned(),
            })
            .cloned()
            .unwrap_or_default()
    }
}
