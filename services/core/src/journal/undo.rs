//! Taking back a batch of postings: what each change replaced, noted while a batch is open
//! ([`Ledger::begin_batch`]), restored in reverse order by [`Ledger::rollback_batch`]. A
//! caller that writes each batch in a database transaction uses it to bring the journal back
//! to what the database held when that transaction fails, instead of folding every stored
//! fact again.

use super::{Availability, AwaitingCustomer, Cash, Claim, Joins, Ledger, PayoutState};
use crate::account::Account;
use crate::digest_key::{Digest128, DigestMap};
use crate::entry::EntryId;
use crate::money::Currency;

/// The value a key of a join map had before a change (`None`: absent).
type Before<V> = Vec<(Digest128, Option<V>)>;

/// What an open batch changed.
#[derive(Debug, Default)]
pub(super) struct Undo {
    entries: usize,
    conflicts: usize,
    ledgers: usize,
    pub(super) new_ids: Vec<EntryId>,
    pub(super) balances: Vec<((usize, Currency), Account, Option<i64>)>,
    pub(super) invoice_customer: Before<Box<str>>,
    pub(super) awaiting: Before<Vec<AwaitingCustomer>>,
    pub(super) cash: Before<Cash>,
    pub(super) claims: Before<Vec<Claim>>,
    pub(super) alias: Before<Box<str>>,
    pub(super) aliased_by: Before<Vec<Digest128>>,
    pub(super) availability: Before<Availability>,
    pub(super) payouts: Before<PayoutState>,
}

/// Notes what `$map[$key]` of the joins holds before a change, while a batch is open.
macro_rules! before_join_change {
    ($ledger:ident, $map:ident, $key:expr) => {
        if let Some(undo) = $ledger.undo.as_mut() {
            let key: $crate::digest_key::Digest128 = $key;
            undo.$map.push((key, $ledger.joins.$map.get(&key).cloned()));
        }
    };
}
pub(super) use before_join_change;

fn restore<V>(map: &mut DigestMap<V>, before: Before<V>) {
    for (key, value) in before.into_iter().rev() {
        match value {
            Some(v) => map.insert(key, v),
            None => map.remove(&key),
        };
    }
}

impl Ledger {
    /// Opens a batch: every change from here on can be taken back whole by
    /// [`Ledger::rollback_batch`] until [`Ledger::commit_batch`]. Opening a batch while one is
    /// open keeps the open one.
    pub fn begin_batch(&mut self) {
        if self.undo.is_none() {
            self.undo = Some(Box::new(Undo {
                entries: self.entries.len(),
                conflicts: self.conflicts.len(),
                ledgers: self.ledgers.len(),
                ..Undo::default()
            }));
        }
    }

    /// True while a batch is open.
    pub fn in_batch(&self) -> bool {
        self.undo.is_some()
    }

    /// Closes the open batch, keeping what it did.
    pub fn commit_batch(&mut self) {
        self.undo = None;
    }

    /// Takes back everything since [`Ledger::begin_batch`]: entries, conflicts, balances and
    /// join state are as they were. False (and nothing changed) when no batch is open.
    pub fn rollback_batch(&mut self) -> bool {
        let Some(undo) = self.undo.take() else {
            return false;
        };
        let Undo {
            entries,
            conflicts,
            ledgers,
            new_ids,
            balances,
            invoice_customer,
            awaiting,
            cash,
            claims,
            alias,
            aliased_by,
            availability,
            payouts,
        } = *undo;
        let Joins {
            invoice_customer: j_invoice_customer,
            awaiting: j_awaiting,
            cash: j_cash,
            claims: j_claims,
            alias: j_alias,
            aliased_by: j_aliased_by,
            availability: j_availability,
            payouts: j_payouts,
        } = &mut self.joins;
        restore(j_invoice_customer, invoice_customer);
        restore(j_awaiting, awaiting);
        restore(j_cash, cash);
        restore(j_claims, claims);
        restore(j_alias, alias);
        restore(j_aliased_by, aliased_by);
        restore(j_availability, availability);
        restore(j_payouts, payouts);
        for (key, account, before) in balances.into_iter().rev() {
            let accounts = self.balances.entry(key).or_default();
            match before {
                Some(b) => accounts.insert(account, b),
                None => accounts.remove(&account),
            };
        }
        for id in new_ids {
            self.by_id.remove(&id);
        }
        self.entries.truncate(entries);
        self.conflicts.truncate(conflicts);
        for name in self.ledgers.drain(ledgers..) {
            self.ledger_ix.remove(&name);
        }
        self.posted.clear();
        true
    }
}
