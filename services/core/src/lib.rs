//! Ledgerline's accounting core: the rules that turn raw Stripe facts into balanced
//! double-entry journal entries.
//!
//! Pure and deterministic: no IO, no clock (enforced by `clippy.toml`), no wire formats other
//! than Stripe's JSON. Time comes from the facts; ids are derived from the facts.
//!
//! # Using it
//!
//! ```
//! use ledgerline_core::{Account, Currency, Ledger};
//!
//! let mut ledger = Ledger::new();
//! let bt = br#"{"id":"txn_1","object":"balance_transaction","amount":10000,"fee":320,
//!   "net":9680,"currency":"usd","created":1700000000,"available_on":1700172800,
//!   "status":"pending","reporting_category":"charge","type":"charge","source":"ch_1",
//!   "fee_details":[{"amount":320,"currency":"usd","type":"stripe_fee"}]}"#;
//! let outcome = ledger.apply("acct_platform", bt).unwrap();
//! assert_eq!(outcome.posted.len(), 2); // the charge, and its reclass at available_on
//! let usd = Currency::parse("usd").unwrap();
//! assert_eq!(
//!     ledger.balance("acct_platform", &Account::StripeAvailable, usd).to_string(),
//!     "96.80 USD"
//! );
//! assert!(ledger.trial_balance("acct_platform").is_balanced());
//! ```
//!
//! * [`money`]: [`Currency`] (Stripe's exponents), [`Money`] (exact minor units ↔ `Decimal`).
//! * [`account`]: the chart of accounts, [`Account`].
//! * [`entry`]: [`JournalEntry`], balanced by construction, with a derived [`EntryId`].
//! * [`parse`]: raw Stripe JSON → [`parse::Fact`], tolerant of API versions.
//! * [`rules`]: fact → entries and links ([`rules::post`]); pure.
//! * [`journal`]: [`Ledger`], the fold that joins links and keeps balances.
//!
//! # The accounting model
//!
//! Each Stripe fact posts its own self-balancing entries. Facts that describe the same money
//! meet in a clearing or contra account, so arrival order, duplicates and backfill do not
//! matter. Every entry balances per currency; cross-currency settlement goes through the
//! trading account pair `equity:conversion`, using the two amounts Stripe settled (never a
//! rate). The chart is per ledger (Stripe account) and per currency.
//!
//! ## Identity and time
//!
//! An entry's id is UUIDv5 of (ledger, source id, rule). The source id is the Stripe object's
//! stable id (`txn_…`, `in_…`, `inpay_…`, `cn_…`, `po_…`, `tr_…`), not the event id, because
//! Stripe may send one change as two events. Folding a fact twice posts nothing new; a fact
//! whose entry comes out different under the same id is a [`Conflict`], recorded and never
//! applied. Effective time is `created`, `available_on`, `status_transitions.*` or
//! `effective_at` of the fact; status changes without such a field (payouts) take the
//! event's `created`.
//!
//! ## Balance transactions (by `reporting_category`)
//!
//! Every balance transaction posts, at `created`: `Dr assets:stripe:pending` net,
//! `Dr expenses:stripe_fees:{type}` per `fee_details` item, `Cr {counter}` gross amount
//! (signs follow the amount: an outgoing transaction credits pending and debits the
//! counter). A second entry, effective at `available_on`, moves the net from
//! `assets:stripe:pending` to `assets:stripe:available`. It is posted at once with its future
//! effective time, so as-of queries show the right available balance at any moment. Its id
//! includes the `available_on` it was built from: if a later observation moves
//! `available_on`, the new reclass posts and the old one is reversed (an observation with
//! status `available` wins over `pending` ones, then the latest `available_on`) — the same
//! set of entries in any order.
//!
//! | reporting_category | counter account |
//! |---|---|
//! | `charge` | `income:uninvoiced_sales` (see "Stripe payments") |
//! | `refund`, `refund_failure` | `income:refunds` (see "Refunds and credit notes") |
//! | `partial_capture_reversal`, `charge_failure` | `income:uninvoiced_sales` |
//! | `dispute`, `dispute_reversal` | `expenses:disputes` (dispute fee in `fee_details`) |
//! | `fee` | `expenses:stripe_fees:{type}` |
//! | `payout`, `payout_reversal` | `assets:bank:in_transit` |
//! | `transfer`, `transfer_reversal` | `assets:clearing:connect_transfers` |
//! | the same, of type `payment…` (a connected account's side) | `income:platform_transfers` |
//! | `platform_earning`, `platform_earning_refund` | `income:application_fees` |
//! | `topup`, `topup_reversal` | `assets:bank` |
//! | `other_adjustment` | `expenses:stripe_adjustments` |
//! | `risk_reserved_funds`, `connect_reserved_funds` | `assets:stripe:reserved` |
//! | anything else | `equity:suspense`, with the category and type in the memo |
//!
//! Fees not itemized in `fee_details` go to `expenses:stripe_fees:stripe_fee` when there are
//! no details at all, and to `equity:suspense` (with the reason) when details exist but do
//! not add up. A lost dispute leaves the amount in `expenses:disputes`; a won one is a
//! `dispute_reversal` that credits it back (and the fee, if Stripe returns it, as a negative
//! fee).
//!
//! ## Stripe payments, and charges that belong to no invoice
//!
//! *Rule: a charge is an uninvoiced sale until an invoice claims it.* The charge's balance
//! transaction credits `income:uninvoiced_sales` with the gross. An invoice payment made by a
//! Stripe charge (`invoice_payment.paid` with `payment.type` `charge` or `payment_intent`, or
//! an `invoice.paid` of the older shape naming a `charge`) posts `Dr
//! assets:clearing:stripe_payments`, `Cr assets:receivable:{customer}` and claims the charge.
//! When both the claim and the charge's balance transaction are known, the journal posts the
//! settlement: `Dr income:uninvoiced_sales`, `Cr assets:clearing:stripe_payments` (same
//! currency), or, when the invoice currency differs from the balance currency, `Dr
//! income:uninvoiced_sales` gross (balance currency) / `Cr equity:conversion` (balance
//! currency) and `Dr equity:conversion` / `Cr assets:clearing:stripe_payments` (invoice
//! currency).
//!
//! Why: since API 2025-03-31.basil no fact ever says "this charge has no invoice" (Charge and
//! PaymentIntent lost their `invoice` field); only the presence of an invoice payment says the
//! opposite. A rule that waited to decide would depend on when it looked. Recognising every
//! charge as a sale and letting the invoice payment reclassify it is monotone: each fact's
//! entries depend on that fact alone (plus the join, which exists as soon as both sides do),
//! so every order of arrival ends with the same entries, income in the right account, and
//! `assets:clearing:stripe_payments` at zero. What stays in the clearing account is exactly
//! the invoice payments whose balance transaction has not arrived (a reconciliation break
//! if it persists). A `payment_intent` claim meets its charge once a charge or PaymentIntent
//! event links the PaymentIntent to its *succeeded* charge (a failed attempt never links: it
//! has no balance transaction to meet).
//!
//! ## Invoices
//!
//! * `invoice.finalized` (at `status_transitions.finalized_at`): `Dr assets:receivable:{customer}`
//!   total less customer credit applied; `Dr liabilities:customer_credit:{customer}` the credit
//!   applied (`ending_balance − starting_balance`); `Dr income:discounts` the discounts;
//!   `Cr income:revenue` total − tax + discounts; `Cr liabilities:tax` the tax (`total_taxes`,
//!   or the older `total_tax_amounts` / `tax`). An invoice paid entirely from the customer's
//!   credit balance ends here: no balance transaction will ever come for it.
//! * `invoice.voided`: the exact negation, pointing at the finalized entry.
//! * `invoice.marked_uncollectible`: `Dr expenses:bad_debt`, `Cr assets:receivable` for
//!   `amount_remaining`.
//! * `invoice.overpaid`: `Dr assets:receivable`, `Cr liabilities:customer_credit` for
//!   `amount_overpaid` (payments credited the receivable for all they paid).
//! * `invoice.paid`: nothing in the current shape (payments come as invoice payments); in the
//!   older shape, a `charge` is a Stripe payment (above) and `paid_out_of_band` is a payment
//!   through `assets:clearing:off_stripe`.
//! * `invoice_payment.paid` with `payment.type` `payment_record`: `Dr
//!   assets:clearing:off_stripe`, `Cr assets:receivable:{customer}`; the bank side comes from
//!   cash application. An unknown payment type debits `equity:suspense` with the reason.
//!   Invoice payments do not name the customer: the entry waits (see
//!   [`Ledger::awaiting`]) until a fact names the invoice's customer.
//!
//! ## Refunds and credit notes
//!
//! A refund's balance transaction debits `income:refunds`. A credit note reduces revenue and
//! tax once (`Dr income:revenue`, `Dr liabilities:tax`, `Cr income:discounts`) and credits
//! where the money went: `assets:receivable` (`pre_payment_amount`),
//! `assets:clearing:stripe_payments` (each refund it explains, a claim on that refund),
//! `assets:clearing:off_stripe` (`out_of_band_amount`) and
//! `liabilities:customer_credit` (the rest). When the refund's balance transaction and the
//! credit note's claim meet, `Dr assets:clearing:stripe_payments`, `Cr income:refunds`
//! (through `equity:conversion` across currencies). So a refund with a credit note reduces
//! revenue once, and a refund without one stays in `income:refunds`. Voiding a credit note
//! posts the negation.
//!
//! ## Payouts and Connect
//!
//! The payout's balance transaction moves the net from the Stripe balance to
//! `assets:bank:in_transit`; `payout.paid` moves it to `assets:bank`; a failed or canceled
//! payout's money returns through its `payout_reversal` balance transaction, and a payout
//! that fails after `payout.paid` gets that entry reversed. A transfer's balance transaction
//! moves money to `assets:clearing:connect_transfers`; `transfer.created` names the connected
//! account (`Dr liabilities:connect:{account}`); reversals undo both. On the connected
//! account's own books the transfer arrives as a `payment` balance transaction (and leaves
//! again as a `payment_refund`/`payment_reversal`), which no event meets: it posts to
//! `income:platform_transfers`. Application fees are `income:application_fees` on the
//! platform and `expenses:stripe_fees:application_fee` on the connected account (a
//! `fee_details` item). Events of a connected account carry `account` and post to that
//! account's own ledger.
//!
//! ## What posts nothing
//!
//! Unknown event types are [`rules::SkipKind::Unsupported`] with a reason (the service
//! records or dead-letters them). The other events of the families the rules read (payout
//! and transfer status changes, `invoice.updated`, charge and PaymentIntent events, …) are
//! [`rules::SkipKind::NoAccountingEffect`], some of them still linking facts. Malformed JSON, missing fields and contradictory amounts are
//! [`PostError`]s. Nothing panics.

pub mod account;
pub mod digest_key;
pub mod entry;
pub mod journal;
pub mod money;
pub mod parse;
pub mod rules;

pub use account::{Account, AccountClass, FeeType};
pub use entry::{EntryError, EntryId, JournalEntry, Line, Timestamp};
pub use journal::{Conflict, Footprint, Ledger, Outcome, TrialBalance, TrialBalanceRow};
pub use money::{Currency, Money, MoneyError};
pub use parse::ParseError;
pub use rules::{MAX_ID_CHARS, PostError, Posting, Skip, SkipKind, post, post_raw};
