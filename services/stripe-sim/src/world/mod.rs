//! The world generator: a deterministic, seeded simulation of a Stripe account's business
//! history, rendered as Stripe's API would render it.
//!
//! ```
//! use ledgerline_stripe_sim::world::{World, WorldConfig};
//! let world = World::generate(&WorldConfig::with_facts(7, 500));
//! assert!(world.truth.facts >= 500);
//! ```
//!
//! # What it makes
//! One platform account (balances in `usd` and `eur`) and `connected_accounts` connected
//! accounts (balance in `usd`), over a simulated period starting at `start`:
//! customers (name, email, `metadata.company_id`), products and prices created on first use;
//! subscription and one-off invoices charged by card (PaymentIntent → Charge → balance
//! transaction, `invoice_payment.paid` with `payment.type` `payment_intent` or `charge`), some
//! failing first and paid late, partially paid, voided, marked uncollectible, with discounts,
//! tax and credit notes (pre-payment, and post-payment with a refund); `send_invoice` invoices
//! for bank-transfer customers, mostly left open (for cash application), some paid late by card,
//! voided, uncollectible or credited; one-off charges with no invoice, full and partial refunds,
//! disputes won (fee returned or not) and lost; connected-account direct charges with
//! application fees, and transfers to connected accounts; automatic payouts each business day
//! per balance, a few failing or canceled; `balance.available` each day something matured.
//! Presentment currencies: usd, eur, gbp, jpy (0 decimals), cad, kwd (3 decimals, amounts end
//! in 0); gbp/jpy/cad/kwd settle into usd with `exchange_rate`, eur into the eur balance on the
//! platform (and into usd on connected accounts).
//!
//! # Size
//! [`WorldConfig::facts`] is the only size knob. From it: the period (`facts / 300` days, 3 to
//! 365), the business flows a day (`(facts/day − 17) / 7`, at least 1: each flow is an
//! invoice, a one-off charge, a Connect charge or a transfer, about 7 facts with its
//! follow-ups), and the customer pool (`facts / 40`, 5 to 100,000). Roughly, per 1,000 facts:
//! 840 events and 160 balance transactions, 75 invoices, 110 card charges, 25 customers,
//! 7 refunds, 1 to 2 disputes, 7 credit notes, 9 payouts. Measured: 100 facts ≈ 5 days,
//! 20,000 facts ≈ 66 days, 1,000,000 facts = 365 days.
//!
//! # Output
//! [`WorldStream`] yields [`SimObject`]s: every event and balance transaction (the *facts*)
//! plus every other object once, in its final state. Events come out in `created` order;
//! a balance transaction comes out when it is assigned to a payout (with the `payout` filter)
//! or at the end; other objects come out once nothing more will happen to them, or at the end.
//! A balance transaction's JSON has `"status"` as of its creation (`pending` unless
//! `available_on <= created`); the HTTP layer re-renders it from `available_on` against its clock.
//!
//! Filters set on each kind ([`SimObject::filters`]): events `type`; balance transactions
//! `type`, `source`, `currency` and, once paid out, `payout` (the payout's own `payout`
//! transaction included, so Σ `net` over `payout=po_…` is 0 and Σ over the others is the
//! payout's `amount`); invoices `customer`, `status`, `collection_method`, `subscription`;
//! invoice payments `invoice`, `status`; credit notes `invoice`, `customer`; payment intents
//! and charges `customer`, charges also `payment_intent`; refunds and disputes `charge`,
//! `payment_intent`; payouts `status`, `arrival_date`; transfers `destination`; application
//! fees `charge`; prices `product`, `currency`, `type`; customers `email`.
//! Connected accounts (`acct_…`) are emitted as [`ObjectKind::Account`](crate::object::ObjectKind)
//! objects owned by the platform; everything created on a connected account has
//! `account = Some("acct_…")`, and so do its events (with `"account"` in the JSON).
//!
//! # Determinism
//! Same [`WorldConfig`] → byte-identical output, forever: a hand-written xoshiro256** PRNG,
//! ordered maps only, no clock, no float.

mod entities;
mod json;
mod money;
mod render;
mod rng;
mod sim;
mod truth;

pub use truth::{AccountCurrency, Balance, GroundTruth, Totals};

use crate::object::SimObject;

/// The API version events and objects are rendered in.
pub const API_VERSION: &str = "2026-07-29.dahlia";
/// The older version used for events before [`WorldConfig::legacy_api_until`].
pub const LEGACY_API_VERSION: &str = "2024-06-20";
/// 2026-01-01T00:00:00Z, the default start.
pub const DEFAULT_START: i64 = 1_767_225_600;

/// Everything that decides a world. Same config, same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldConfig {
    pub seed: u64,
    /// The size knob: target number of facts (events + balance transactions), 100 to 10^7.
    /// The world ends with the action that reaches it (it overshoots by less than one
    /// action's facts, at most a few dozen).
    pub facts: u64,
    /// Unix seconds of the first instant (never the wall clock).
    pub start: i64,
    /// The period the facts are spread over; `None` derives it from `facts`
    /// (`facts / 300` days, clamped to 3..=365: about 300 facts a day, so that
    /// worlds of 20,000 facts and more live through overdue invoices, dispute outcomes and
    /// post-payment credit notes).
    pub days: Option<u32>,
    /// Number of connected accounts (Connect); 0 disables Connect.
    pub connected_accounts: u32,
    /// Events created before this instant are rendered in [`LEGACY_API_VERSION`] (invoices with
    /// `charge`, `payment_intent`, `paid`, `paid_out_of_band`, `subscription`, `tax`; charges and
    /// payment intents with `invoice`; no `invoice_payment.paid` events, so no partial payments
    /// of an invoice either: one charge pays it, as before 2025-05-28.basil).
    pub legacy_api_until: Option<i64>,
    pub livemode: bool,
    /// Record the balance step function for [`GroundTruth::balance_at`] (memory grows with the
    /// number of balance transactions; turn off for very large streams).
    pub balance_history: bool,
}

impl Default for WorldConfig {
    fn default() -> Self {
        WorldConfig {
            seed: 1,
            facts: 10_000,
            start: DEFAULT_START,
            days: None,
            connected_accounts: 2,
            legacy_api_until: None,
            livemode: false,
            balance_history: true,
        }
    }
}

impl WorldConfig {
    /// The default world with a given seed and size.
    pub fn with_facts(seed: u64, facts: u64) -> Self {
        WorldConfig {
            seed,
            facts,
            ..WorldConfig::default()
        }
    }

    /// The period in days the world spreads its facts over.
    pub fn period_days(&self) -> u32 {
        self.days
            .unwrap_or_else(|| u32::try_from((self.facts / 300).clamp(3, 365)).unwrap_or(365))
            .max(1)
    }
}

/// A streaming generator: an iterator over the world's objects that holds only live state
/// (open invoices, unsettled balance transactions, payouts in flight, customers), not history.
pub struct WorldStream {
    sim: sim::Sim,
}

impl WorldStream {
    pub fn new(config: &WorldConfig) -> Self {
        WorldStream {
            sim: sim::Sim::new(config.clone()),
        }
    }

    /// The ground truth, once the stream is exhausted (`None` before).
    pub fn ground_truth(&self) -> Option<&GroundTruth> {
        self.sim.truth()
    }

    /// Consumes the stream's remainder without keeping it and returns the ground truth.
    pub fn into_ground_truth(mut self) -> GroundTruth {
        for _ in self.by_ref() {}
        self.sim.take_truth()
    }
}

impl Iterator for WorldStream {
    type Item = SimObject;

    fn next(&mut self) -> Option<SimObject> {
        self.sim.next_object()
    }
}

/// A whole world in memory, for serving (fine up to about a million facts).
#[derive(Debug, Clone)]
pub struct World {
    pub config: WorldConfig,
    pub objects: Vec<SimObject>,
    pub truth: GroundTruth,
}

impl World {
    pub fn generate(config: &WorldConfig) -> World {
        let mut stream = WorldStream::new(config);
        let objects: Vec<SimObject> = stream.by_ref().collect();
        World {
            config: config.clone(),
            objects,
            truth: stream.sim.take_truth(),
        }
    }
}

/// Shorthand for [`WorldStream::new`].
pub fn stream(config: &WorldConfig) -> WorldStream {
    WorldStream::new(config)
}
