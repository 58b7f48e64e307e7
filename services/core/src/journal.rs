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

mod undo;
use undo::{Undo, before_join_change};

use crate::account::Account;
use crate::digest_key::{Digest128, DigestMap};
use crate::entry::{EntryDraft, EntryId, JournalEntry, Line, Timestamp};
use crate::money::{Currency, Money};
use crate::rules::{
    AwaitingCustomer, Link, PostError, Posting, RULE_AVAILABLE, SettlementKind, Skip, post,
    post_raw,
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

#[derive(Debug, Clone, Default)]
struct Availability {
    /// Observed (available?, available_on) → the reclass entry it posted, sorted by the
    /// observation, the winner last. A sorted vector, not a map: a balance transaction is
    /// seen once or twice, and an empty `BTreeMap`'s first node costs ~400 bytes each.
    seen: Vec<((bool, Timestamp), EntryId)>,
}

impl Availability {
    /// Records `obs` → `reclass`; false if `obs` was already seen.
    fn observe(&mut self, obs: (bool, Timestamp), reclass: EntryId) -> bool {
        match self.seen.binary_search_by(|(seen, _)| seen.cmp(&obs)) {
            Ok(_) => false,
            Err(at) => {
                self.seen.insert(at, (obs, reclass));
                true
            }
        }
    }

    /// The reclass of the winning observation.
    fn winner(&self) -> Option<EntryId> {
        self.seen.last().map(|(_, reclass)| *reclass)
    }
}

#[derive(Debug, Clone, Default)]
struct PayoutState {
    paid: bool,
    failed_at: Option<Timestamp>,
}

/// Join state, per ledger: each key is the [`Digest128`] of the ledger and a Stripe id
/// ([`key`]), 16 bytes instead of a ~45-byte text (the join maps are most of the state a long
/// history leaves in memory).
#[derive(Debug, Default)]
struct Joins {
    invoice_customer: DigestMap<Box<str>>,
    awaiting: DigestMap<Vec<AwaitingCustomer>>,
    cash: DigestMap<Cash>,
    claims: DigestMap<Vec<Claim>>,
    /// Payment intent → its charge.
    alias: DigestMap<Box<str>>,
    /// Charge → the keys of the payment intents aliased to it.
    aliased_by: DigestMap<Vec<Digest128>>,
    availability: DigestMap<Availability>,
    payouts: DigestMap<PayoutState>,
}

/// The join key of Stripe object `id` in `ledger`.
fn key(ledger: &str, id: &str) -> Digest128 {
    Digest128::of_parts(&[ledger, id])
}

/// What the journal keeps of a posted entry.
#[derive(Debug, Clone, Copy)]
enum Kept {
    /// The whole entry, at this index of `entries`.
    Whole(usize),
    /// The first 16 bytes of its [`JournalEntry::content_digest`]: enough to tell a duplicate
    /// from a conflict, the same way the stores do.
    Digest([u8; 16]),
}

/// The rules whose entries a later fact may reverse or repost: a journal that keeps only
/// what later facts need keeps these whole (a failed payout reverses `payout.paid`; an
/// availability observation that loses reverses its reclass, one that wins again reposts it).
const REVERSIBLE_RULES: [&str; 2] = ["payout.paid", RULE_AVAILABLE];

/// Counts of what a [`Ledger`] holds ([`Ledger::footprint`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footprint {
    /// Entries known by id (whole or by digest), and the index's capacity.
    pub entry_index: usize,
    pub entry_index_capacity: usize,
    /// Keys of each join map, by the map's name.
    pub join_keys: [(&'static str, usize); 8],
    /// Claims waiting for or settled against cash, and availability observations.
    pub claims: usize,
    pub observations: usize,
    /// Non-empty (ledger, currency, account) balances.
    pub balances: usize,
}

/// The journal of one or more ledgers.
#[derive(Debug)]
pub struct Ledger {
    entries: Vec<JournalEntry>,
    by_id: HashMap<EntryId, Kept>,
    /// False for a journal that keeps only what later facts need ([`Ledger::lean`]).
    keeps_history: bool,
    /// What the last [`Ledger::apply_posting`] posted, for [`Ledger::take_posted`] (lean only).
    posted: Vec<JournalEntry>,
    /// While a batch is open: what it changed ([`Ledger::begin_batch`]).
    undo: Option<Box<Undo>>,
    ledgers: Vec<Box<str>>,
    ledger_ix: HashMap<Box<str>, usize>,
    balances: HashMap<(usize, Currency), HashMap<Account, i64>>,
    conflicts: Vec<Conflict>,
    joins: Joins,
}

impl Default for Ledger {
    fn default() -> Self {
        Self::new()
    }
}

impl Ledger {
    /// An empty journal that keeps every entry it posts: [`Ledger::entries`] is the whole
    /// journal.
    pub fn new() -> Self {
        Self {
            keeps_history: true,
            ..Self::lean()
        }
    }

    /// An empty journal that keeps of its entries only what later facts need, for a caller
    /// that stores the entries itself (the ledger service writes them to its database). It
    /// posts exactly what [`Ledger::new`] posts, and tells duplicates from conflicts the same
    /// way, but keeps a whole entry only where a later fact may reverse or repost it, and of
    /// the others their id and the first 16 bytes of their content digest: about a third of
    /// the memory for a large journal. [`Ledger::entries`], [`Ledger::entry`] and
    /// [`Ledger::trial_balance_as_of`] see only the entries kept whole (current balances are
    /// complete); the entries a posting posted are handed out by [`Ledger::take_posted`].
    pub fn lean() -> Self {
        Self {
            entries: Vec::new(),
            by_id: HashMap::new(),
            keeps_history: false,
            posted: Vec::new(),
            undo: None,
            ledgers: Vec::new(),
            ledger_ix: HashMap::new(),
            balances: HashMap::new(),
            conflicts: Vec::new(),
            joins: Joins::default(),
        }
    }

    /// False for a journal made by [`Ledger::lean`].
    pub fn keeps_history(&self) -> bool {
        self.keeps_history
    }

    /// The entries the last [`Ledger::apply_posting`] (or [`Ledger::apply`]) posted, in the
    /// order of its [`Outcome::posted`], taken out of the journal. Only a lean journal hands
    /// them out (a journal that keeps its history has them in [`Ledger::entries`]): for it
    /// this is empty.
    pub fn take_posted(&mut self) -> Vec<JournalEntry> {
        std::mem::take(&mut self.posted)
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
        self.posted.clear();
        for e in entries {
            self.insert(e, &fact_id, &mut out);
        }
        for a in awaiting {
            let k = key(&ledger, &a.invoice);
            match self.joins.invoice_customer.get(&k).cloned() {
                Some(customer) => self.materialize(a, &customer, &fact_id, &mut out),
                None => {
                    out.waiting += 1;
                    before_join_change!(self, awaiting, k);
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
        if let Some(&kept) = self.by_id.get(&e.id()) {
            let same = match kept {
                Kept::Whole(i) => self.entries[i].same_content(&e),
                Kept::Digest(digest) => digest == digest_prefix(&e),
            };
            if same {
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
            if let Some(undo) = self.undo.as_mut() {
                let before = self
                    .balances
                    .get(&(lx, m.currency()))
                    .and_then(|accounts| accounts.get(l.account()))
                    .copied();
                undo.balances
                    .push(((lx, m.currency()), l.account().clone(), before));
            }
            let accounts = self.balances.entry((lx, m.currency())).or_default();
            match accounts.get_mut(l.account()) {
                Some(b) => *b = b.saturating_add(m.minor()),
                None => {
                    accounts.insert(l.account().clone(), m.minor());
                }
            }
        }
        out.posted.push(e.id());
        if let Some(undo) = self.undo.as_mut() {
            undo.new_ids.push(e.id());
        }
        if self.keeps_history {
            self.by_id.insert(e.id(), Kept::Whole(self.entries.len()));
            self.entries.push(e);
        } else if REVERSIBLE_RULES.contains(&e.rule()) {
            self.by_id.insert(e.id(), Kept::Whole(self.entries.len()));
            self.entries.push(e.clone());
            self.posted.push(e);
        } else {
            self.by_id.insert(e.id(), Kept::Digest(digest_prefix(&e)));
            self.posted.push(e);
        }
    }

    /// The entry with this id if it is kept whole.
    fn whole(&self, id: EntryId) -> Option<&JournalEntry> {
        match self.by_id.get(&id) {
            Some(&Kept::Whole(i)) => self.entries.get(i),
            _ => None,
        }
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
                before_join_change!(self, invoice_customer, k);
                before_join_change!(self, awaiting, k);
                self.joins.invoice_customer.insert(k, customer.clone());
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
                before_join_change!(self, cash, k);
                self.joins.cash.insert(k, Cash { kind, gross, at });
                let mut claim_keys = vec![k];
                if let Some(pis) = self.joins.aliased_by.get(&k) {
                    claim_keys.extend(pis.iter().copied());
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
                before_join_change!(self, claims, k);
                let list = self.joins.claims.entry(k).or_default();
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
                let charge_key = key(ledger, &charge);
                before_join_change!(self, alias, k);
                before_join_change!(self, aliased_by, charge_key);
                self.joins.alias.insert(k, charge.clone());
                self.joins.aliased_by.entry(charge_key).or_default().push(k);
                if self.joins.cash.contains_key(&charge_key) {
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
                let k = key(ledger, &payout);
                before_join_change!(self, payouts, k);
                let st = self.joins.payouts.entry(k).or_default();
                if st.paid {
                    return;
                }
                st.paid = true;
                if let Some(at) = st.failed_at {
                    self.reverse_payout(ledger, &payout, at, fact, out);
                }
            }
            Link::PayoutFailed { payout, at } => {
                let k = key(ledger, &payout);
                before_join_change!(self, payouts, k);
                let st = self.joins.payouts.entry(k).or_default();
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
        let reversal = self
            .whole(paid)
            .and_then(|e| e.reversal(payout.into(), "payout.failed", at).ok());
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
        let k = key(ledger, txn);
        before_join_change!(self, availability, k);
        let state = self.joins.availability.entry(k).or_default();
        let old = state.winner();
        if !state.observe(obs, reclass) {
            return;
        }
        let new = state.winner();
        let (Some(old), Some(new)) = (old, new) else {
            return;
        };
        let loser = if new == old { reclass } else { old };
        if loser != new {
            let reversal = self.whole(loser).and_then(|e| {
                e.reversal(e.source().into(), REVERSAL, e.effective_at())
                    .ok()
            });
            if let Some(e) = reversal {
                self.insert(e, fact, out);
            }
        }
        if new != old {
            let repost = self.whole(new).and_then(|e| {
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

    /// Every posted entry, in posting order (a [`Ledger::lean`] journal: those it keeps whole).
    pub fn entries(&self) -> &[JournalEntry] {
        &self.entries
    }

    /// One entry by id (a [`Ledger::lean`] journal: if it keeps it whole).
    pub fn entry(&self, id: EntryId) -> Option<&JournalEntry> {
        self.whole(id)
    }

    /// Every posted entry's id with the first 16 bytes of its
    /// [`JournalEntry::content_digest`], in no particular order: what a journal knows of its
    /// entries whether or not it keeps them whole, to compare two journals.
    pub fn entry_digests(&self) -> impl Iterator<Item = (EntryId, [u8; 16])> + '_ {
        self.by_id.iter().map(|(&id, &kept)| match kept {
            Kept::Whole(i) => (id, digest_prefix(&self.entries[i])),
            Kept::Digest(digest) => (id, digest),
        })
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

    /// What the journal holds, counted by structure: for capacity planning and for the
    /// restart example's breakdown of the resident memory.
    pub fn footprint(&self) -> Footprint {
        let joins = &self.joins;
        Footprint {
            entry_index: self.by_id.len(),
            entry_index_capacity: self.by_id.capacity(),
            join_keys: [
                ("invoice_customer", joins.invoice_customer.len()),
                ("awaiting", joins.awaiting.len()),
                ("cash", joins.cash.len()),
                ("claims", joins.claims.len()),
                ("alias", joins.alias.len()),
                ("aliased_by", joins.aliased_by.len()),
                ("availability", joins.availability.len()),
                ("payouts", joins.payouts.len()),
            ],
            claims: joins.claims.values().map(Vec::len).sum(),
            observations: joins.availability.values().map(|a| a.seen.len()).sum(),
            balances: self.balances.values().map(HashMap::len).sum(),
        }
    }

    /// Ids of all entries, for comparing two folds.
    pub fn entry_ids(&self) -> HashSet<EntryId> {
        self.by_id.keys().copied().collect()
    }
}

/// The part of an entry's content digest a lean journal keeps.
fn digest_prefix(e: &JournalEntry) -> [u8; 16] {
    let digest = e.content_digest();
    let mut prefix = [0; 16];
    prefix.copy_from_slice(&digest[..16]);
    prefix
}
