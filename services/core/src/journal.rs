//! The in-memory journal: a fold of Stripe facts into entries and balances.
//!
//! [`Ledger::apply`] is the whole contract the persistent ledgers (PostgreSQL, SQLite) mirror:
//!
//! 1. the rules turn the fact into entries and links ([`crate::rules::post`]);
//! 2. each entry is inserted by id: a new id posts, the same id with the same content is a
//!    duplicate (no-op), the same id with other content is a [`Conflict`] (recorded, never an
//!    overwrite);
//! 3. links are joined (see [`Link`]): once both sides of a pair are known, the derived entry
//!    is posted, with an id derived from both sides. Joins are monotone (a side, once known,
//!    stays known), so the set of entries does not depend on the order of facts.
//!
//! It holds several ledgers at once (one per Stripe account: platform and connected accounts).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::account::Account;
use crate::entry::{EntryDraft, EntryId, JournalEntry, Line, Timestamp};
use crate::money::{Currency, Money};
use crate::rules::{
    AwaitingCustomer, Link, PostError, Posting, SettlementKind, Skip, post, post_raw,
};

/// An incoming entry whose id already exists with different content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The id both share.
    pub id: EntryId,
    /// The fact that brought the incoming entry.
    pub fact_id: Box<str>,
    /// The entry that was not posted.
    pub incoming: Box<JournalEntry>,
}

/// What applying one fact did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Entries posted (including entries derived from joins this fact completed).
    pub posted: Vec<EntryId>,
    /// Entries already present with the same content.
    pub duplicates: Vec<EntryId>,
    /// Entries refused because their id holds other content.
    pub conflicts: Vec<Conflict>,
    /// Entries of this fact still waiting for another fact (an invoice's customer).
    pub waiting: usize,
    /// Set when the fact posts nothing by itself, with the reason.
    pub skip: Option<Skip>,
}

/// One row of a trial balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrialBalanceRow {
    /// The account.
    pub account: Account,
    /// Its balance: positive debit, negative credit.
    pub balance: Money,
}

/// Balances of one ledger, sorted by currency then account; zero balances left out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrialBalance {
    /// The rows.
    pub rows: Vec<TrialBalanceRow>,
}

impl TrialBalance {
    /// True if debits equal credits in every currency (always, for entries built by
    /// [`JournalEntry::new`]; a check for stores that mirror this type).
    pub fn is_balanced(&self) -> bool {
        let mut sums: BTreeMap<Currency, i128> = BTreeMap::new();
        for r in &self.rows {
            *sums.entry(r.balance.currency()).or_default() += i128::from(r.balance.minor());
        }
        sums.values().all(|s| *s == 0)
    }

    /// The balance of one account in one currency (zero if absent).
    pub fn get(&self, account: &Account, currency: Currency) -> Money {
        self.rows
            .iter()
            .find(|r| &r.account == account && r.balance.currency() == currency)
            .map_or(Money::zero(currency), |r| r.balance)
    }
}

impl std::fmt::Display for TrialBalance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for r in &self.rows {
            writeln!(
                f,
                "  {:<44} {} {}",
                r.account.to_string(),
                r.balance.currency(),
                r.balance.amount()
            )?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct Cash {
    kind: SettlementKind,
    gross: Money,
    at: Timestamp,
}

#[derive(Debug, Clone)]
struct Claim {
    claim: Box<str>,
    kind: SettlementKind,
    amount: Money,
    at: Timestamp,
}

#[derive(Debug, Default)]
struct Availability {
    /// Observed (available?, available_on) → the reclass entry it posted.
    seen: BTreeMap<(bool, Timestamp), EntryId>,
}

#[derive(Debug, Default)]
struct PayoutState {
    paid: bool,
    failed_at: Option<Timestamp>,
}

/// Join state, per ledger (keys are `ledger \x1f id`).
#[derive(Debug, Default)]
struct Joins {
    invoice_customer: HashMap<String, Box<str>>,
    awaiting: HashMap<String, Vec<AwaitingCustomer>>,
    cash: HashMap<String, Cash>,
    claims: HashMap<String, Vec<Claim>>,
    alias: HashMap<String, Box<str>>,
    aliased_by: HashMap<String, Vec<Box<str>>>,
    availability: HashMap<String, Availability>,
    payouts: HashMap<String, PayoutState>,
}

fn key(ledger: &str, id: &str) -> String {
    let mut k = String::with_capacity(ledger.len() + id.len() + 1);
    k.push_str(ledger);
    k.push('\u{1f}');
    k.push_str(id);
    k
}

/// The journal of one or more ledgers.
#[derive(Debug, Default)]
pub struct Ledger {
    entries: Vec<JournalEntry>,
    by_id: HashMap<EntryId, usize>,
    ledgers: Vec<Box<str>>,
    ledger_ix: HashMap<Box<str>, usize>,
    balances: HashMap<(usize, Currency), HashMap<Account, i64>>,
    conflicts: Vec<Conflict>,
    joins: Joins,
}

impl Ledger {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses raw Stripe JSON (an event or a balance transaction) read from Stripe account
    /// `account`, posts it and folds it in. Errors leave the journal unchanged.
    pub fn apply(&mut self, account: &str, raw: &[u8]) -> Result<Outcome, PostError> {
        let posting = post_raw(account, raw)?;
        Ok(self.apply_posting(posting))
    }

    /// Like [`Ledger::apply`], for a fact already parsed.
    pub fn apply_fact(
        &mut self,
        account: &str,
        fact: &crate::parse::Fact<'_>,
    ) -> Result<Outcome, PostError> {
        let posting = post(account, fact)?;
        Ok(self.apply_posting(posting))
    }

    /// Folds in what the rules produced for one fact. Never fails: a fold is total.
    pub fn apply_posting(&mut self, posting: Posting) -> Outcome {
        let Posting {
            ledger,
            fact_id,
            entries,
            awaiting,
            links,
            skip,
        } = posting;
        let mut out = Outcome {
            skip,
            ..Outcome::default()
        };
        for e in entries {
            self.insert(e, &fact_id, &mut out);
        }
        for a in awaiting {
            let k = key(&ledger, &a.invoice);
            match self.joins.invoice_customer.get(&k).cloned() {
                Some(customer) => self.materialize(a, &customer, &fact_id, &mut out),
                None => {
                    out.waiting += 1;
                    self.joins.awaiting.entry(k).or_default().push(a);
                }
            }
        }
        for link in links {
            self.join(&ledger, link, &fact_id, &mut out);
        }
        out
    }

    fn materialize(&mut self, a: AwaitingCustomer, customer: &str, fact: &str, out: &mut Outcome) {
        // The amount is non-zero (checked by the rule), so the entry always builds.
        if let Ok(e) = a.into_entry(customer) {
            self.insert(e, fact, out);
        }
    }

    fn insert(&mut self, e: JournalEntry, fact_id: &str, out: &mut Outcome) {
        if let Some(&i) = self.by_id.get(&e.id()) {
            if self.entries[i].same_content(&e) {
                out.duplicates.push(e.id());
            } else {
                let c = Conflict {
                    id: e.id(),
                    fact_id: fact_id.into(),
                    incoming: Box::new(e),
                };
                out.conflicts.push(c.clone());
                self.conflicts.push(c);
            }
            return;
        }
        let lx = self.ledger_index(e.ledger());
        for l in e.lines() {
            let m = l.amount();
            let accounts = self.balances.entry((lx, m.currency())).or_default();
            match accounts.get_mut(l.account()) {
                Some(b) => *b = b.saturating_add(m.minor()),
                None => {
                    accounts.insert(l.account().clone(), m.minor());
                }
            }
        }
        out.posted.push(e.id());
        self.by_id.insert(e.id(), self.entries.len());
        self.entries.push(e);
    }

    fn ledger_index(&mut self, ledger: &str) -> usize {
        if let Some(&i) = self.ledger_ix.get(ledger) {
            return i;
        }
        let i = self.ledgers.len();
        self.ledgers.push(ledger.into());
        self.ledger_ix.insert(ledger.into(), i);
        i
    }

    fn join(&mut self, ledger: &str, link: Link, fact: &str, out: &mut Outcome) {
        match link {
            Link::InvoiceCustomer { invoice, customer } => {
                let k = key(ledger, &invoice);
                if self.joins.invoice_customer.contains_key(&k) {
                    return;
                }
                self.joins
                    .invoice_customer
                    .insert(k.clone(), customer.clone());
                for a in self.joins.awaiting.remove(&k).unwrap_or_default() {
                    self.materialize(a, &customer, fact, out);
                }
            }
            Link::Cash {
                key: id,
                kind,
                gross,
                at,
            } => {
                let k = key(ledger, &id);
                if self.joins.cash.contains_key(&k) {
                    return;
                }
                self.joins.cash.insert(k.clone(), Cash { kind, gross, at });
                let mut claim_keys = vec![k.clone()];
                if let Some(pis) = self.joins.aliased_by.get(&k) {
                    claim_keys.extend(pis.iter().map(|pi| key(ledger, pi)));
                }
                for ck in claim_keys {
                    let claims = self.joins.claims.get(&ck).cloned().unwrap_or_default();
                    for c in claims {
                        self.settle(ledger, &id, &c, fact, out);
                    }
                }
            }
            Link::Claim {
                key: id,
                claim,
                kind,
                amount,
                at,
            } => {
                let k = key(ledger, &id);
                let list = self.joins.claims.entry(k.clone()).or_default();
                if list.iter().any(|c| c.claim == claim && c.kind == kind) {
                    return;
                }
                let c = Claim {
                    claim,
                    kind,
                    amount,
                    at,
                };
                list.push(c.clone());
                let charge = self
                    .joins
                    .alias
                    .get(&k)
                    .map(|ch| ch.to_string())
                    .unwrap_or_else(|| id.to_string());
                if self.joins.cash.contains_key(&key(ledger, &charge)) {
                    self.settle(ledger, &charge, &c, fact, out);
                }
            }
            Link::Alias {
                payment_intent,
                charge,
            } => {
                let k = key(ledger, &payment_intent);
                if self.joins.alias.contains_key(&k) {
                    return;
                }
                self.joins.alias.insert(k.clone(), charge.clone());
                self.joins
                    .aliased_by
                    .entry(key(ledger, &charge))
                    .or_default()
                    .push(payment_intent);
                if self.joins.cash.contains_key(&key(ledger, &charge)) {
                    let claims = self.joins.claims.get(&k).cloned().unwrap_or_default();
                    for c in claims {
                        self.settle(ledger, &charge, &c, fact, out);
                    }
                }
            }
            Link::Availability {
                txn,
                available_on,
                available,
                reclass,
            } => self.availability(ledger, &txn, (available, available_on), reclass, fact, out),
            Link::PayoutPaid { payout } => {
                let st = self.joins.payouts.entry(key(ledger, &payout)).or_default();
                if st.paid {
                    return;
                }
                st.paid = true;
                if let Some(at) = st.failed_at {
                    self.reverse_payout(ledger, &payout, at, fact, out);
                }
            }
            Link::PayoutFailed { payout, at } => {
                let st = self.joins.payouts.entry(key(ledger, &payout)).or_default();
                if st.failed_at.is_some() {
                    return;
                }
                st.failed_at = Some(at);
                if st.paid {
                    self.reverse_payout(ledger, &payout, at, fact, out);
                }
            }
        }
    }

    /// Posts the settlement of a claim by the balance transaction of charge/refund `cash_key`.
    fn settle(&mut self, ledger: &str, cash_key: &str, c: &Claim, fact: &str, out: &mut Outcome) {
        let Some(cash) = self.joins.cash.get(&key(ledger, cash_key)).cloned() else {
            return;
        };
        if cash.kind != c.kind {
            return;
        }
        let (income, rule) = match c.kind {
            SettlementKind::Payment => (Account::UninvoicedSales, "settlement.payment"),
            SettlementKind::Refund => (Account::Refunds, "settlement.refund"),
        };
        let neg = |m: Money| Money::from_minor(m.currency(), m.minor().saturating_neg());
        // Payment: the charge's gross leaves uninvoiced sales, the claim leaves clearing.
        // Refund: the claim's credit in clearing is released, the refund leaves income:refunds.
        let sign = |m: Money| match c.kind {
            SettlementKind::Payment => m,
            SettlementKind::Refund => neg(m),
        };
        let lines = if cash.gross.currency() == c.amount.currency() {
            vec![
                Line::new(income, sign(c.amount)),
                Line::new(Account::ClearingStripePayments, neg(sign(c.amount))),
            ]
        } else {
            vec![
                Line::new(income, sign(cash.gross)),
                Line::new(Account::Conversion, neg(sign(cash.gross))),
                Line::new(Account::Conversion, sign(c.amount)),
                Line::new(Account::ClearingStripePayments, neg(sign(c.amount))),
            ]
        };
        let memo = format!(
            "{} {} settled by {} ({} / {})",
            match c.kind {
                SettlementKind::Payment => "invoice payment",
                SettlementKind::Refund => "credit note",
            },
            c.claim,
            cash_key,
            c.amount,
            cash.gross
        );
        let draft = EntryDraft {
            ledger: ledger.into(),
            source: format!("{}:{}", c.claim, cash_key).into(),
            rule,
            effective_at: c.at.max(cash.at),
            lines,
            reverses: None,
            memo: Some(memo.into()),
        };
        if let Ok(e) = JournalEntry::new(draft) {
            self.insert(e, fact, out);
        }
    }

    fn reverse_payout(
        &mut self,
        ledger: &str,
        payout: &str,
        at: Timestamp,
        fact: &str,
        out: &mut Outcome,
    ) {
        let paid = EntryId::derive(ledger, payout, "payout.paid");
        let reversal = self.by_id.get(&paid).and_then(|&i| {
            self.entries[i]
                .reversal(payout.into(), "payout.failed", at)
                .ok()
        });
        if let Some(e) = reversal {
            self.insert(e, fact, out);
        }
    }

    /// Keeps exactly one pending → available reclass per balance transaction in effect: the
    /// one from the winning observation (an `available` one over any `pending` one, then the
    /// latest `available_on`). Every other reclass is reversed at its own effective time; a
    /// reclass that was reversed and wins again is reposted.
    fn availability(
        &mut self,
        ledger: &str,
        txn: &str,
        obs: (bool, Timestamp),
        reclass: EntryId,
        fact: &str,
        out: &mut Outcome,
    ) {
        const REVERSAL: &str = "balance_transaction.available.reversal";
        const REPOST: &str = "balance_transaction.available.repost";
        let state = self.joins.availability.entry(key(ledger, txn)).or_default();
        if state.seen.contains_key(&obs) {
            return;
        }
        let old = state.seen.last_key_value().map(|(_, v)| *v);
        state.seen.insert(obs, reclass);
        let new = state.seen.last_key_value().map(|(_, v)| *v);
        let (Some(old), Some(new)) = (old, new) else {
            return;
        };
        let loser = if new == old { reclass } else { old };
        if loser != new {
            let reversal = self.by_id.get(&loser).and_then(|&i| {
                let e = &self.entries[i];
                e.reversal(e.source().into(), REVERSAL, e.effective_at())
                    .ok()
            });
            if let Some(e) = reversal {
                self.insert(e, fact, out);
            }
        }
        if new != old {
            let repost = self.by_id.get(&new).and_then(|&i| {
                let e = &self.entries[i];
                let reversed = EntryId::derive(ledger, e.source(), REVERSAL);
                self.by_id.contains_key(&reversed).then(|| {
                    JournalEntry::new(EntryDraft {
                        ledger: ledger.into(),
                        source: e.source().into(),
                        rule: REPOST,
                        effective_at: e.effective_at(),
                        lines: e.lines().to_vec(),
                        reverses: Some(reversed),
                        memo: Some("available_on observation wins again".into()),
                    })
                    .ok()
                })?
            });
            if let Some(e) = repost {
                self.insert(e, fact, out);
            }
        }
    }

    /// Every posted entry, in posting order.
    pub fn entries(&self) -> &[JournalEntry] {
        &self.entries
    }

    /// One entry by id.
    pub fn entry(&self, id: EntryId) -> Option<&JournalEntry> {
        self.by_id.get(&id).map(|&i| &self.entries[i])
    }

    /// Every conflict seen.
    pub fn conflicts(&self) -> &[Conflict] {
        &self.conflicts
    }

    /// The ledgers (Stripe accounts) seen.
    pub fn ledgers(&self) -> impl Iterator<Item = &str> {
        self.ledgers.iter().map(|l| &**l)
    }

    /// Entries waiting for an invoice's customer.
    pub fn awaiting(&self) -> impl Iterator<Item = &AwaitingCustomer> {
        self.joins.awaiting.values().flatten()
    }

    /// The balance of an account in a currency (positive debit, negative credit).
    pub fn balance(&self, ledger: &str, account: &Account, currency: Currency) -> Money {
        let minor = self
            .ledger_ix
            .get(ledger)
            .and_then(|&lx| self.balances.get(&(lx, currency)))
            .and_then(|accounts| accounts.get(account))
            .copied()
            .unwrap_or(0);
        Money::from_minor(currency, minor)
    }

    /// The current trial balance of one ledger.
    pub fn trial_balance(&self, ledger: &str) -> TrialBalance {
        let Some(&lx) = self.ledger_ix.get(ledger) else {
            return TrialBalance::default();
        };
        let mut rows: Vec<TrialBalanceRow> = self
            .balances
            .iter()
            .filter(|((l, _), _)| *l == lx)
            .flat_map(|((_, c), accounts)| {
                accounts
                    .iter()
                    .filter(|(_, m)| **m != 0)
                    .map(|(a, m)| TrialBalanceRow {
                        account: a.clone(),
                        balance: Money::from_minor(*c, *m),
                    })
            })
            .collect();
        rows.sort_by(|a, b| {
            (a.balance.currency(), &a.account).cmp(&(b.balance.currency(), &b.account))
        });
        TrialBalance { rows }
    }

    /// The trial balance of one ledger as of an effective time (entries effective at or
    /// before `as_of`).
    pub fn trial_balance_as_of(&self, ledger: &str, as_of: Timestamp) -> TrialBalance {
        let mut sums: BTreeMap<(Currency, Account), i64> = BTreeMap::new();
        for e in self
            .entries
            .iter()
            .filter(|e| e.ledger() == ledger && e.effective_at() <= as_of)
        {
            for l in e.lines() {
                let m = l.amount();
                let s = sums.entry((m.currency(), l.account().clone())).or_default();
                *s = s.saturating_add(m.minor());
            }
        }
        TrialBalance {
            rows: sums
                .into_iter()
                .filter(|(_, m)| *m != 0)
                .map(|((c, account), m)| TrialBalanceRow {
                    account,
                    balance: Money::from_minor(c, m),
                })
                .collect(),
        }
    }

    /// Ids of all entries, for comparing two folds.
    pub fn entry_ids(&self) -> HashSet<EntryId> {
        self.by_id.keys().copied().collect()
    }
}
