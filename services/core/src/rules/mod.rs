//! Posting rules: one Stripe fact → its journal entries, plus the *links* it contributes to
//! facts that must meet (see [`Link`]). Pure functions of the fact: no state, no clock.
//!
//! The rules are described in prose in the crate documentation (`lib.rs`); each submodule
//! holds the rules for one family of facts.

mod balance_transaction;
mod connect;
mod credit_note;
mod invoice;
mod invoice_payment;
mod payout;

pub(crate) use balance_transaction::RULE_AVAILABLE;

use std::borrow::Cow;

use crate::account::Account;
use crate::entry::{EntryDraft, EntryError, EntryId, JournalEntry, Line, Timestamp};
use crate::money::{Currency, Money, MoneyError};
use crate::parse::{Event, Fact, ObjectNeed, ParseError, StripeObject, parse, text};

/// Why a fact could not be posted. The service dead-letters these with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    /// The bytes are not a usable Stripe fact.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The amounts would make an unbalanced entry (inconsistent amounts in the fact).
    #[error("{source_id}: {error}")]
    Entry {
        /// The fact's id.
        source_id: String,
        /// What went wrong.
        error: EntryError,
    },
}

impl From<MoneyError> for PostError {
    fn from(e: MoneyError) -> Self {
        PostError::Parse(ParseError::Money(e))
    }
}

/// A fact that posts nothing, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// Which kind of nothing.
    pub kind: SkipKind,
    /// Why, for the dead-letter queue or the audit log.
    pub reason: Cow<'static, str>,
}

/// Kinds of facts that post nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipKind {
    /// An event type the rules do not read (the service records or dead-letters it).
    Unsupported,
    /// Understood, and has no accounting effect of its own (it may still link facts).
    NoAccountingEffect,
}

/// Which kind of Stripe settlement a cash/claim pair is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SettlementKind {
    /// A charge (cash in) claimed by an invoice payment.
    Payment,
    /// A refund (cash out) claimed by a credit note.
    Refund,
}

/// What a fact tells about other facts, for the rules that need two facts to meet. The
/// journal ([`crate::Ledger`]) keeps these and posts the derived entries once both sides are
/// known, so the set of entries does not depend on arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// An invoice belongs to a customer (from any invoice or credit-note fact).
    InvoiceCustomer {
        /// `in_…`
        invoice: Box<str>,
        /// `cus_…`
        customer: Box<str>,
    },
    /// A balance transaction settled a charge or a refund: gross amount in the settlement
    /// currency, as Stripe settled it.
    Cash {
        /// The charge or refund id (`ch_…`, `py_…`, `re_…`).
        key: Box<str>,
        /// Payment or refund.
        kind: SettlementKind,
        /// Positive gross amount in the balance currency.
        gross: Money,
        /// When.
        at: Timestamp,
    },
    /// An invoice-side document claims a charge or refund: amount in the invoice currency.
    Claim {
        /// The charge, PaymentIntent or refund id it claims (`ch_…`, `pi_…`, `re_…`).
        key: Box<str>,
        /// The claiming document (`inpay_…`, `in_…` for old shapes, `cn_…`).
        claim: Box<str>,
        /// Payment or refund.
        kind: SettlementKind,
        /// Positive amount in the invoice currency.
        amount: Money,
        /// When.
        at: Timestamp,
    },
    /// A PaymentIntent's charge (from charge and PaymentIntent events).
    Alias {
        /// `pi_…`
        payment_intent: Box<str>,
        /// `ch_…` / `py_…`
        charge: Box<str>,
    },
    /// An observation of a balance transaction's `available_on` (its reclass entry is
    /// posted by the same fact; the journal reverses the reclasses that lose).
    Availability {
        /// `txn_…`
        txn: Box<str>,
        /// The observed `available_on`.
        available_on: Timestamp,
        /// Stripe said `available` (an observation that wins over any `pending` one).
        available: bool,
        /// The reclass entry this observation posted.
        reclass: EntryId,
    },
    /// A payout arrived (`payout.paid`).
    PayoutPaid {
        /// `po_…`
        payout: Box<str>,
    },
    /// A payout failed (`payout.failed`).
    PayoutFailed {
        /// `po_…`
        payout: Box<str>,
        /// When.
        at: Timestamp,
    },
}

/// An invoice payment entry that needs the invoice's customer, which the invoice payment
/// object does not carry. Posted as soon as any fact names the invoice's customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwaitingCustomer {
    /// The ledger.
    pub ledger: Box<str>,
    /// The invoice whose customer is needed.
    pub invoice: Box<str>,
    /// Source id of the entry to post.
    pub source: Box<str>,
    /// Rule of the entry to post.
    pub rule: &'static str,
    /// Effective time.
    pub effective_at: Timestamp,
    /// The account debited (a clearing account, or suspense).
    pub debit: Account,
    /// The amount credited to `assets:receivable:{customer}`.
    pub amount: Money,
    /// Explanation.
    pub memo: Option<Box<str>>,
}

impl AwaitingCustomer {
    /// The entry, once the customer is known.
    pub fn into_entry(self, customer: &str) -> Result<JournalEntry, EntryError> {
        let credit = self.amount.checked_neg()?;
        JournalEntry::new(EntryDraft {
            ledger: self.ledger,
            source: self.source,
            rule: self.rule,
            effective_at: self.effective_at,
            lines: vec![
                Line::new(self.debit, self.amount),
                Line::new(Account::Receivable(customer.into()), credit),
            ],
            reverses: None,
            memo: self.memo,
        })
    }
}

/// Everything one fact posts and tells.
#[derive(Debug, Clone, Default)]
pub struct Posting {
    /// The ledger (Stripe account) the fact belongs to.
    pub ledger: Box<str>,
    /// The fact's id (`evt_…` or `txn_…`), for provenance.
    pub fact_id: Box<str>,
    /// Entries ready to post.
    pub entries: Vec<JournalEntry>,
    /// Entries waiting for an invoice's customer.
    pub awaiting: Vec<AwaitingCustomer>,
    /// Links to other facts.
    pub links: Vec<Link>,
    /// Set when the fact posts nothing by itself.
    pub skip: Option<Skip>,
}

/// Parses raw Stripe JSON and applies the posting rules. `account` is the Stripe account the
/// fact was read from (the platform); an event's own `account` (Connect) takes precedence.
pub fn post_raw(account: &str, raw: &[u8]) -> Result<Posting, PostError> {
    let fact = parse(raw)?;
    post(account, &fact)
}

/// Applies the posting rules to a parsed fact. See [`post_raw`].
pub fn post(account: &str, fact: &Fact<'_>) -> Result<Posting, PostError> {
    match fact {
        Fact::BalanceTransaction(bt) => {
            let mut out = Posting::new(account, &bt.id);
            balance_transaction::post(bt, &mut out)?;
            check_storable(&out)?;
            Ok(out)
        }
        Fact::Event(ev) => {
            let ledger = ev.account.as_deref().unwrap_or(account);
            let mut out = Posting::new(ledger, &ev.id);
            post_event(ev, &mut out)?;
            check_storable(&out)?;
            Ok(out)
        }
    }
}

/// The longest id Stripe generates, in characters: "You can safely assume object IDs we generate
/// will never exceed 255 characters" (Stripe, API upgrades: backward-compatible changes).
pub const MAX_ID_CHARS: usize = 255;

/// Refuses a posting that carries text or a time no store can keep (see
/// [`ParseError::Unstorable`]), whether in its entries or in what a later fact derives entries
/// from (the waiting entries, the links' times): the fact is refused whole, before the journal
/// sees any of it, instead of stopping the ledger at the database on every retry or dropping a
/// derived entry later.
fn check_storable(p: &Posting) -> Result<(), PostError> {
    let mut f = StorableCheck::default();
    f.id("the ledger", &p.ledger);
    f.id("the id", &p.fact_id);
    for e in &p.entries {
        f.source(e.source());
        f.text("an entry's memo", e.memo().unwrap_or_default());
        for l in e.lines() {
            f.account(l.account());
        }
    }
    for a in &p.awaiting {
        f.id("an invoice", &a.invoice);
        f.source(&a.source);
        f.account(&a.debit);
        f.text("an entry's memo", a.memo.as_deref().unwrap_or_default());
        f.time("an entry's effective time", a.effective_at);
    }
    for link in &p.links {
        match link {
            Link::InvoiceCustomer { invoice, customer } => {
                f.id("an invoice", invoice);
                f.id("a customer", customer);
            }
            Link::Cash { key, at, .. } => {
                f.id("a settled charge or refund", key);
                f.time("a settlement's time", *at);
            }
            Link::Claim { key, claim, at, .. } => {
                f.id("a claimed charge or refund", key);
                f.id("a claiming document", claim);
                f.time("a claim's time", *at);
            }
            Link::Alias {
                payment_intent,
                charge,
            } => {
                f.id("a PaymentIntent", payment_intent);
                f.id("a charge", charge);
            }
            Link::Availability {
                txn, available_on, ..
            } => {
                f.id("a balance transaction", txn);
                f.time("an available_on", *available_on);
            }
            Link::PayoutPaid { payout } => f.id("a payout", payout),
            Link::PayoutFailed { payout, at } => {
                f.id("a payout", payout);
                f.time("a payout's failure time", *at);
            }
        }
    }
    let reason = if let Some(what) = f.nul {
        format!(
            "{what} holds a NUL character (\\u0000), which Stripe never writes and no store can keep"
        )
    } else if let Some(what) = f.empty {
        format!("{what} is empty, which no Stripe id is")
    } else if let Some((what, chars)) = f.too_long {
        format!(
            "{what} is {chars} characters long, beyond the {MAX_ID_CHARS} of Stripe's ids: an \
             index of the journal cannot key one this long"
        )
    } else if let Some((what, at)) = f.bad_time {
        format!(
            "{what} {at} is not one Stripe could have written (Unix seconds from 1970 to the \
             year 9999)"
        )
    } else {
        return Ok(());
    };
    Err(PostError::Parse(ParseError::Unstorable {
        id: p.fact_id.to_string(),
        reason,
    }))
}

/// What [`check_storable`] found first of each kind. Cheap where nothing is wrong (every
/// fact): no allocation until something is.
#[derive(Default)]
struct StorableCheck {
    nul: Option<&'static str>,
    empty: Option<&'static str>,
    too_long: Option<(&'static str, usize)>,
    bad_time: Option<(&'static str, Timestamp)>,
}

impl StorableCheck {
    /// Free text (a memo): stored, never a key.
    fn text(&mut self, what: &'static str, t: &str) {
        if self.nul.is_none() && t.contains('\0') {
            self.nul = Some(what);
        }
    }

    /// A Stripe id: never empty (an empty one would join unrelated facts, and the journal's
    /// columns refuse it), and also a key of the stores' indexes, whose entries have a size
    /// limit (PostgreSQL's B-tree: 2,704 bytes), so one longer than any Stripe writes is
    /// refused.
    fn id(&mut self, what: &'static str, t: &str) {
        self.key(what, t, MAX_ID_CHARS);
    }

    /// An entry's source: a Stripe id, or one with a suffix the rules add (`@` and a time).
    fn source(&mut self, t: &str) {
        self.key("an entry's source", t, MAX_ID_CHARS + 32);
    }

    /// An account's name: the id it embeds, if any.
    fn account(&mut self, a: &Account) {
        if let Some(id) = a.id_part() {
            self.id("an account", id);
        }
    }

    fn key(&mut self, what: &'static str, t: &str, max_chars: usize) {
        self.text(what, t);
        if self.empty.is_none() && t.is_empty() {
            self.empty = Some(what);
        }
        if self.too_long.is_none() && t.len() > max_chars {
            let chars = t.chars().count();
            if chars > max_chars {
                self.too_long = Some((what, chars));
            }
        }
    }

    fn time(&mut self, what: &'static str, t: Timestamp) {
        if self.bad_time.is_none() && !t.is_storable() {
            self.bad_time = Some((what, t));
        }
    }
}

/// Event types whose rule reads the whole `data.object` (the arms of [`post_event`] that
/// post); the others of a supported family only link facts.
const POSTING_EVENTS: &[&str] = &[
    "invoice.finalized",
    "invoice.voided",
    "invoice.marked_uncollectible",
    "invoice.overpaid",
    "invoice.paid",
    "invoice_payment.paid",
    "credit_note.created",
    "credit_note.voided",
    "payout.paid",
    "payout.failed",
    "transfer.created",
    "transfer.reversed",
];

fn supported(kind: &str) -> bool {
    let family = kind.split('.').next().unwrap_or("");
    matches!(
        family,
        "invoice" | "invoice_payment" | "credit_note" | "payout" | "transfer" | "charge"
    ) || kind.starts_with("payment_intent.")
}

/// What the rules read of an event's `data.object`, by event type: the parser deserializes
/// only that.
pub(crate) fn object_need(kind: &str) -> ObjectNeed {
    if POSTING_EVENTS.contains(&kind) {
        ObjectNeed::All
    } else if supported(kind) {
        ObjectNeed::Links
    } else {
        ObjectNeed::Nothing
    }
}

fn post_event(ev: &Event<'_>, out: &mut Posting) -> Result<(), PostError> {
    let kind: &str = &ev.kind;
    let family = kind.split('.').next().unwrap_or("");
    if !supported(kind) {
        out.skip = Some(Skip {
            kind: SkipKind::Unsupported,
            reason: format!("event type {kind} has no posting rule").into(),
        });
        return Ok(());
    }
    let Some(obj) = &ev.object else {
        return Err(ParseError::Json(format!(
            "{}: data.object of {kind} does not have the expected shape",
            ev.id
        ))
        .into());
    };
    let mut ctx = Ctx { ev, obj, out };
    match kind {
        "invoice.finalized" => invoice::finalized(&mut ctx),
        "invoice.voided" => invoice::voided(&mut ctx),
        "invoice.marked_uncollectible" => invoice::marked_uncollectible(&mut ctx),
        "invoice.overpaid" => invoice::overpaid(&mut ctx),
        "invoice.paid" => invoice::paid(&mut ctx),
        "invoice_payment.paid" => invoice_payment::paid(&mut ctx),
        "credit_note.created" => credit_note::created(&mut ctx),
        "credit_note.voided" => credit_note::voided(&mut ctx),
        "payout.paid" => payout::paid(&mut ctx),
        "payout.failed" => payout::failed(&mut ctx),
        "payout.canceled" => {
            ctx.nothing("the payout_cancel balance transaction returns the money");
            Ok(())
        }
        "transfer.created" => connect::transfer_created(&mut ctx),
        "transfer.reversed" => connect::transfer_reversed(&mut ctx),
        _ if family == "invoice" || family == "credit_note" => {
            invoice::remember_customer(&mut ctx);
            ctx.nothing("no accounting effect");
            Ok(())
        }
        _ if family == "payout" || family == "transfer" => {
            ctx.nothing(
                "the money moves by balance transactions and the paid, failed and created events",
            );
            Ok(())
        }
        _ if family == "charge" || family == "payment_intent" => {
            connect::remember_charge_alias(&mut ctx);
            ctx.nothing("charges post from their balance transactions");
            Ok(())
        }
        _ => {
            ctx.out.skip = Some(Skip {
                kind: SkipKind::Unsupported,
                reason: format!("event type {kind} has no posting rule").into(),
            });
            Ok(())
        }
    }
}

impl Posting {
    fn new(ledger: &str, fact_id: &str) -> Self {
        Self {
            ledger: ledger.into(),
            fact_id: fact_id.into(),
            ..Self::default()
        }
    }
}

/// The context of one event's rule.
pub(crate) struct Ctx<'e, 'a, 'o> {
    pub(crate) ev: &'e Event<'a>,
    pub(crate) obj: &'e StripeObject<'a>,
    pub(crate) out: &'o mut Posting,
}

impl Ctx<'_, '_, '_> {
    pub(crate) fn object_name(&self) -> &'static str {
        match text(&self.obj.object) {
            Some("invoice") => "invoice",
            Some("invoice_payment") => "invoice_payment",
            Some("credit_note") => "credit_note",
            Some("payout") => "payout",
            Some("transfer") => "transfer",
            _ => "object",
        }
    }

    pub(crate) fn missing(&self, field: &'static str) -> PostError {
        ParseError::MissingField {
            object: self.object_name(),
            id: text(&self.obj.id).unwrap_or("?").to_owned(),
            field,
        }
        .into()
    }

    pub(crate) fn id(&self) -> Result<&str, PostError> {
        text(&self.obj.id).ok_or_else(|| self.missing("id"))
    }

    pub(crate) fn currency(&self) -> Result<Currency, PostError> {
        let code = text(&self.obj.currency).ok_or_else(|| self.missing("currency"))?;
        Ok(Currency::parse(code)?)
    }

    pub(crate) fn need(&self, v: Option<i64>, field: &'static str) -> Result<i64, PostError> {
        v.ok_or_else(|| self.missing(field))
    }

    pub(crate) fn need_text<'s>(
        &self,
        v: &'s Option<crate::parse::Ref<'_>>,
        field: &'static str,
    ) -> Result<&'s str, PostError> {
        text(v).ok_or_else(|| self.missing(field))
    }

    pub(crate) fn impossible(&self, reason: String) -> PostError {
        ParseError::ImpossibleAmounts {
            id: text(&self.obj.id).unwrap_or("?").to_owned(),
            reason,
        }
        .into()
    }

    pub(crate) fn nothing(&mut self, reason: &'static str) {
        self.out.skip = Some(Skip {
            kind: SkipKind::NoAccountingEffect,
            reason: Cow::Borrowed(reason),
        });
    }

    /// Posts an entry of this event's ledger (nothing if every line is zero).
    pub(crate) fn entry(
        &mut self,
        source: &str,
        rule: &'static str,
        at: Timestamp,
        lines: Lines,
        reverses: Option<EntryId>,
        memo: Option<String>,
    ) -> Result<(), PostError> {
        let ledger = self.out.ledger.clone();
        push_entry(self.out, ledger, source, rule, at, lines, reverses, memo)
    }
}

/// Builds an entry from non-zero lines and adds it to the posting.
#[allow(clippy::too_many_arguments)]
pub(crate) fn push_entry(
    out: &mut Posting,
    ledger: Box<str>,
    source: &str,
    rule: &'static str,
    at: Timestamp,
    lines: Lines,
    reverses: Option<EntryId>,
    memo: Option<String>,
) -> Result<(), PostError> {
    if lines.0.is_empty() {
        return Ok(());
    }
    let entry = JournalEntry::new(EntryDraft {
        ledger,
        source: source.into(),
        rule,
        effective_at: at,
        lines: lines.0,
        reverses,
        memo: memo.map(Into::into),
    })
    .map_err(|error| PostError::Entry {
        source_id: source.to_owned(),
        error,
    })?;
    out.entries.push(entry);
    Ok(())
}

/// Lines under construction. Zero amounts are left out; signs are explicit.
#[derive(Debug, Default)]
pub(crate) struct Lines(pub(crate) Vec<Line>);

impl Lines {
    pub(crate) fn new() -> Self {
        Self(Vec::with_capacity(4))
    }
    /// Debit `minor` (a negative amount credits).
    pub(crate) fn dr(&mut self, account: Account, currency: Currency, minor: i64) {
        if minor != 0 {
            self.0
                .push(Line::new(account, Money::from_minor(currency, minor)));
        }
    }
    /// Credit `minor` (a negative amount debits). Saturates on `i64::MIN`, which then fails
    /// the balance check as a typed error.
    pub(crate) fn cr(&mut self, account: Account, currency: Currency, minor: i64) {
        self.dr(account, currency, minor.saturating_neg());
    }
    /// The same lines with opposite signs.
    pub(crate) fn negated(self) -> Self {
        Self(
            self.0
                .into_iter()
                .map(|l| {
                    let m = l.amount();
                    let neg = Money::from_minor(m.currency(), m.minor().saturating_neg());
                    Line::new(l.account().clone(), neg)
                })
                .collect(),
        )
    }
}

/// `a - b` on minor units, as a typed error on overflow.
pub(crate) fn sub(a: i64, b: i64, what: &str) -> Result<i64, PostError> {
    a.checked_sub(b).ok_or_else(|| {
        PostError::Parse(ParseError::ImpossibleAmounts {
            id: what.to_owned(),
            reason: "amounts overflow".into(),
        })
    })
}

/// `a + b` on minor units, as a typed error on overflow.
pub(crate) fn add(a: i64, b: i64, what: &str) -> Result<i64, PostError> {
    a.checked_add(b).ok_or_else(|| {
        PostError::Parse(ParseError::ImpossibleAmounts {
            id: what.to_owned(),
            reason: "amounts overflow".into(),
        })
    })
}
