//! Journal entries that cannot exist unbalanced.
//!
//! [`JournalEntry::new`] is the only constructor. It rejects an entry with no lines, a line of
//! zero, or lines that do not sum to zero in every currency. Fields are private, so an entry
//! that exists is balanced. The id is derived, never chosen: UUIDv5 of (ledger, source, rule).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::account::Account;
use crate::money::{Currency, Money, MoneyError};

/// Namespace of entry ids (UUIDv5). Fixed forever: changing it changes every id.
pub const ENTRY_ID_NAMESPACE: Uuid = Uuid::from_bytes([
    0x6c, 0x65, 0x64, 0x67, 0x65, 0x72, 0x6c, 0x69, 0x6e, 0x65, 0x2d, 0x63, 0x6f, 0x72, 0x65, 0x31,
]);

/// Seconds since the Unix epoch, as Stripe writes times. Only ever taken from a fact.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The latest time an entry may take effect: 9999-12-31T23:59:59Z, the end of what every
    /// store of the journal (and protobuf's `Timestamp`) can hold.
    pub const LATEST: Timestamp = Timestamp(253_402_300_799);

    /// From Unix seconds.
    pub const fn from_unix(seconds: i64) -> Self {
        Self(seconds)
    }
    /// Unix seconds.
    pub const fn unix(&self) -> i64 {
        self.0
    }
    /// From 1970 to [`Timestamp::LATEST`]: a time Stripe could have written and every store
    /// can keep.
    pub const fn is_storable(&self) -> bool {
        0 <= self.0 && self.0 <= Self::LATEST.0
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}", self.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}", self.0)
    }
}

/// A journal entry's id: UUIDv5 of (ledger, source, rule) under [`ENTRY_ID_NAMESPACE`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EntryId(Uuid);

impl EntryId {
    /// Derives the id. The parts are joined with a separator that cannot occur in Stripe ids.
    /// UUIDv5 is SHA-1 of the namespace and the name; computed here with the `sha1` crate,
    /// which uses the CPU's SHA instructions where there are some (every entry needs one).
    pub fn derive(ledger: &str, source: &str, rule: &str) -> Self {
        let mut h = Sha1::new();
        h.update(ENTRY_ID_NAMESPACE.as_bytes());
        h.update(ledger.as_bytes());
        h.update([0x1f]);
        h.update(source.as_bytes());
        h.update([0x1f]);
        h.update(rule.as_bytes());
        let digest = h.finalize();
        let mut bytes = [0_u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Self(uuid::Builder::from_sha1_bytes(bytes).into_uuid())
    }
    /// The UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// One line: an account and a signed amount (positive debit, negative credit).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Line {
    account: Account,
    amount: Money,
}

impl Line {
    /// A line; `amount` positive is a debit, negative a credit.
    pub fn new(account: Account, amount: Money) -> Self {
        Self { account, amount }
    }
    /// The account.
    pub fn account(&self) -> &Account {
        &self.account
    }
    /// The signed amount.
    pub fn amount(&self) -> Money {
        self.amount
    }
    /// True for a debit.
    pub fn is_debit(&self) -> bool {
        self.amount.minor() > 0
    }
}

/// Why an entry could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// No lines at all.
    #[error("an entry needs lines")]
    Empty,
    /// A line of zero.
    #[error("line {index} ({account}) is zero")]
    ZeroLine {
        /// Position of the line.
        index: usize,
        /// Its account.
        account: Account,
    },
    /// Lines of a currency do not sum to zero.
    #[error("entry does not balance in {currency}: debits minus credits = {imbalance}")]
    Unbalanced {
        /// The currency that does not balance.
        currency: Currency,
        /// Debits minus credits.
        imbalance: Money,
    },
    /// Sums overflow.
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// A time before 1970 or after [`Timestamp::LATEST`]: no Stripe fact has one, and no store
    /// could keep it.
    #[error(
        "effective time {effective_at} is not one Stripe could have written (Unix seconds from \
         1970 to the year 9999)"
    )]
    ImpossibleTime {
        /// The time the fact gave.
        effective_at: Timestamp,
    },
}

/// A balanced journal entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JournalEntry {
    id: EntryId,
    ledger: Box<str>,
    source: Box<str>,
    rule: &'static str,
    effective_at: Timestamp,
    lines: Vec<Line>,
    reverses: Option<EntryId>,
    memo: Option<Box<str>>,
}

/// What an entry is built from, before it is checked.
#[derive(Debug, Clone)]
pub struct EntryDraft {
    /// The ledger: the Stripe account whose books these are (`acct_…`).
    pub ledger: Box<str>,
    /// The source fact's stable id: a balance transaction, invoice, payout, … id (not the
    /// event id, because Stripe may send one change as two events).
    pub source: Box<str>,
    /// The posting rule that produced it (e.g. `invoice.finalized`).
    pub rule: &'static str,
    /// When it takes effect, from the fact.
    pub effective_at: Timestamp,
    /// The lines.
    pub lines: Vec<Line>,
    /// The entry this one reverses, if any.
    pub reverses: Option<EntryId>,
    /// A short explanation (required for suspense postings).
    pub memo: Option<Box<str>>,
}

impl JournalEntry {
    /// Builds a balanced entry or says why it is not one.
    pub fn new(draft: EntryDraft) -> Result<Self, EntryError> {
        let EntryDraft {
            ledger,
            source,
            rule,
            effective_at,
            lines,
            reverses,
            memo,
        } = draft;
        if lines.is_empty() {
            return Err(EntryError::Empty);
        }
        if !effective_at.is_storable() {
            return Err(EntryError::ImpossibleTime { effective_at });
        }
        // Most entries have one currency: sum it without allocating.
        let first = lines[0].amount.currency();
        let mut sum = Money::zero(first);
        let mut others: Option<BTreeMap<Currency, Money>> = None;
        for (index, line) in lines.iter().enumerate() {
            if line.amount.is_zero() {
                return Err(EntryError::ZeroLine {
                    index,
                    account: line.account.clone(),
                });
            }
            let c = line.amount.currency();
            if c == first {
                sum = sum.checked_add(line.amount)?;
            } else {
                let map = others.get_or_insert_with(BTreeMap::new);
                let slot = map.entry(c).or_insert_with(|| Money::zero(c));
                *slot = slot.checked_add(line.amount)?;
            }
        }
        let imbalance = std::iter::once(sum)
            .chain(others.into_iter().flat_map(|m| m.into_values()))
            .find(|m| !m.is_zero());
        if let Some(imbalance) = imbalance {
            return Err(EntryError::Unbalanced {
                currency: imbalance.currency(),
                imbalance,
            });
        }
        Ok(Self {
            id: EntryId::derive(&ledger, &source, rule),
            ledger,
            source,
            rule,
            effective_at,
            lines,
            reverses,
            memo,
        })
    }

    /// The derived id.
    pub fn id(&self) -> EntryId {
        self.id
    }
    /// The ledger (Stripe account) whose books hold it.
    pub fn ledger(&self) -> &str {
        &self.ledger
    }
    /// The source fact's stable id.
    pub fn source(&self) -> &str {
        &self.source
    }
    /// The rule that produced it.
    pub fn rule(&self) -> &'static str {
        self.rule
    }
    /// When it takes effect (from the fact, never from a clock).
    pub fn effective_at(&self) -> Timestamp {
        self.effective_at
    }
    /// The lines, in posting order.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }
    /// The entry it reverses.
    pub fn reverses(&self) -> Option<EntryId> {
        self.reverses
    }
    /// Its explanation.
    pub fn memo(&self) -> Option<&str> {
        self.memo.as_deref()
    }

    /// The reversing entry: same lines with opposite signs, pointing at this one.
    pub fn reversal(
        &self,
        source: Box<str>,
        rule: &'static str,
        effective_at: Timestamp,
    ) -> Result<JournalEntry, EntryError> {
        let lines = self
            .lines
            .iter()
            .map(|l| Ok(Line::new(l.account.clone(), l.amount.checked_neg()?)))
            .collect::<Result<Vec<_>, MoneyError>>()?;
        JournalEntry::new(EntryDraft {
            ledger: self.ledger.clone(),
            source,
            rule,
            effective_at,
            lines,
            reverses: Some(self.id),
            memo: Some(format!("reverses {} {}", self.rule, self.source).into()),
        })
    }

    /// SHA-256 of the entry's content in a canonical text form (lines sorted). Two entries
    /// with the same id and the same digest are the same posting; stores use it to tell a
    /// duplicate from a conflict without comparing lines.
    pub fn content_digest(&self) -> [u8; 32] {
        let mut lines: Vec<String> = self
            .lines
            .iter()
            .map(|l| {
                format!(
                    "{}|{}|{}",
                    l.account,
                    l.amount.currency().code(),
                    l.amount.minor()
                )
            })
            .collect();
        lines.sort();
        let mut h = Sha256::new();
        h.update(self.id.0.as_bytes());
        h.update(self.effective_at.0.to_be_bytes());
        if let Some(r) = self.reverses {
            h.update(r.0.as_bytes());
        }
        for l in lines {
            h.update(l.as_bytes());
            h.update(b"\n");
        }
        h.finalize().into()
    }

    /// True if `other` posts the same thing (same id, time, reversal link and the same
    /// multiset of lines). The memo is explanation, not content.
    pub fn same_content(&self, other: &JournalEntry) -> bool {
        if self.id != other.id
            || self.effective_at != other.effective_at
            || self.reverses != other.reverses
            || self.lines.len() != other.lines.len()
        {
            return false;
        }
        if self.lines == other.lines {
            return true;
        }
        let key = |l: &Line| (l.account.clone(), l.amount.currency(), l.amount.minor());
        let mut a: Vec<_> = self.lines.iter().map(key).collect();
        let mut b: Vec<_> = other.lines.iter().map(key).collect();
        a.sort();
        b.sort();
        a == b
    }
}

impl fmt::Display for JournalEntry {
    /// A readable form: header, then one `Dr`/`Cr` line per posting.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "entry {} {} {}",
            self.rule, self.source, self.effective_at
        )?;
        for l in &self.lines {
            let side = if l.is_debit() { "Dr" } else { "Cr" };
            let abs = l.amount.amount().abs();
            writeln!(
                f,
                "  {side} {:<40} {} {abs}",
                l.account.to_string(),
                l.amount.currency()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(minor: i64) -> Money {
        Money::from_minor(Currency::parse("usd").unwrap(), minor)
    }
    fn eur(minor: i64) -> Money {
        Money::from_minor(Currency::parse("eur").unwrap(), minor)
    }
    fn draft(lines: Vec<Line>) -> EntryDraft {
        EntryDraft {
            ledger: "acct_1".into(),
            source: "txn_1".into(),
            rule: "test",
            effective_at: Timestamp::from_unix(1),
            lines,
            reverses: None,
            memo: None,
        }
    }

    #[test]
    fn balanced_entries_build() {
        let e = JournalEntry::new(draft(vec![
            Line::new(Account::StripePending, usd(970)),
            Line::new(Account::StripeFees(crate::FeeType::StripeFee), usd(30)),
            Line::new(Account::UninvoicedSales, usd(-1000)),
        ]))
        .unwrap();
        assert_eq!(e.id(), EntryId::derive("acct_1", "txn_1", "test"));
        let r = e
            .reversal("txn_1".into(), "test.reversal", e.effective_at())
            .unwrap();
        assert_eq!(r.reverses(), Some(e.id()));
        assert_eq!(r.lines()[0].amount().minor(), -970);
        assert!(e.same_content(&e.clone()));
        assert_eq!(e.content_digest(), e.clone().content_digest());
    }

    #[test]
    fn unbalanced_entries_are_refused() {
        assert_eq!(JournalEntry::new(draft(vec![])), Err(EntryError::Empty));
        assert!(matches!(
            JournalEntry::new(draft(vec![
                Line::new(Account::Bank, usd(100)),
                Line::new(Account::BankInTransit, usd(-99)),
            ])),
            Err(EntryError::Unbalanced { .. })
        ));
        assert!(matches!(
            JournalEntry::new(draft(vec![
                Line::new(Account::Bank, usd(0)),
                Line::new(Account::BankInTransit, usd(0)),
            ])),
            Err(EntryError::ZeroLine { index: 0, .. })
        ));
        // Balanced in total but not per currency.
        assert!(matches!(
            JournalEntry::new(draft(vec![
                Line::new(Account::Bank, usd(100)),
                Line::new(Account::BankInTransit, eur(-100)),
            ])),
            Err(EntryError::Unbalanced { .. })
        ));
        // Two currencies, each balanced.
        assert!(
            JournalEntry::new(draft(vec![
                Line::new(Account::Conversion, eur(100)),
                Line::new(Account::ClearingStripePayments, eur(-100)),
                Line::new(Account::UninvoicedSales, usd(110)),
                Line::new(Account::Conversion, usd(-110)),
            ]))
            .is_ok()
        );
    }

    #[test]
    fn times_no_store_can_hold_are_refused() {
        let at = |seconds| {
            JournalEntry::new(EntryDraft {
                effective_at: Timestamp::from_unix(seconds),
                ..draft(vec![
                    Line::new(Account::Bank, usd(100)),
                    Line::new(Account::BankInTransit, usd(-100)),
                ])
            })
        };
        for fine in [0, 1_767_225_600, Timestamp::LATEST.unix()] {
            assert!(at(fine).is_ok(), "{fine}");
        }
        for impossible in [-1, Timestamp::LATEST.unix() + 1, 1_000_000_000_000_000] {
            assert_eq!(
                at(impossible),
                Err(EntryError::ImpossibleTime {
                    effective_at: Timestamp::from_unix(impossible)
                })
            );
        }
    }
}
