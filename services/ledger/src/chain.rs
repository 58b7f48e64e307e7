//! Tamper evidence: hash chains over the stored journal.
//!
//! An entry's digest is sha256 of its canonical content as stored (id, ledger, rule, source,
//! effective time, reverses, description, and every line: number, account, currency, exact
//! amount). Entries a fact posts directly are chained per source partition in offset order:
//! `hash = sha256(previous hash || entry id || digest)`. Entries a join derived (whose
//! recording order depends on which side arrived last) go to the order-independent
//! [`DERIVED_CHAIN`] set, whose head is the XOR of `sha256("derived" || id || digest)`. Both
//! are therefore identical after a rebuild from the log. Verification recomputes everything
//! from the stored rows ([`Verifier`]) and names the first bad entry in recording order.

use std::collections::HashMap;

use ledgerline_core::JournalEntry;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Error;

/// Name of the order-independent set of derived entries.
pub const DERIVED_CHAIN: &str = "derived";

/// One line as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalLine {
    pub account: String,
    pub currency: String,
    pub amount: Decimal,
}

/// An entry's fields exactly as the database stores them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canonical {
    pub entry_id: Uuid,
    pub ledger: String,
    pub rule: String,
    pub source_kind: String,
    pub source_id: String,
    pub effective_at: i64,
    pub reverses: Option<Uuid>,
    pub description: String,
    pub lines: Vec<CanonicalLine>,
}

impl Canonical {
    /// The stored form of a core entry.
    pub fn from_entry(e: &JournalEntry) -> Self {
        Self {
            entry_id: e.id().as_uuid(),
            ledger: e.ledger().to_owned(),
            rule: e.rule().to_owned(),
            source_kind: crate::engine::source_kind(e.rule()).to_owned(),
            source_id: e.source().to_owned(),
            effective_at: e.effective_at().unix(),
            reverses: e.reverses().map(|r| r.as_uuid()),
            description: e.memo().unwrap_or_default().to_owned(),
            lines: e
                .lines()
                .iter()
                .map(|l| CanonicalLine {
                    account: l.account().to_string(),
                    currency: l.amount().currency().code().to_owned(),
                    amount: l.amount().amount(),
                })
                .collect(),
        }
    }

    /// sha256 of the canonical content.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        let mut field = |b: &[u8]| {
            h.update(u64::try_from(b.len()).unwrap_or(u64::MAX).to_be_bytes());
            h.update(b);
        };
        field(self.entry_id.as_bytes());
        field(self.ledger.as_bytes());
        field(self.rule.as_bytes());
        field(self.source_kind.as_bytes());
        field(self.source_id.as_bytes());
        field(&self.effective_at.to_be_bytes());
        field(
            self.reverses
                .map(|r| *r.as_bytes())
                .unwrap_or_default()
                .as_slice(),
        );
        field(self.description.as_bytes());
        for (i, l) in self.lines.iter().enumerate() {
            field(&u64::try_from(i).unwrap_or(u64::MAX).to_be_bytes());
            field(l.account.as_bytes());
            field(l.currency.as_bytes());
            field(l.amount.normalize().to_string().as_bytes());
        }
        h.finalize().into()
    }
}

/// The head of one chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Head {
    pub length: i64,
    pub head: [u8; 32],
    pub(crate) changed: bool,
}

impl Head {
    /// Appends an entry; returns its chain hash (`None` in the derived set).
    pub fn append(&mut self, chain: &str, id: &Uuid, digest: &[u8; 32]) -> Option<[u8; 32]> {
        self.length += 1;
        self.changed = true;
        if chain == DERIVED_CHAIN {
            let mut h = Sha256::new();
            h.update(DERIVED_CHAIN.as_bytes());
            h.update(id.as_bytes());
            h.update(digest);
            let x: [u8; 32] = h.finalize().into();
            for (a, b) in self.head.iter_mut().zip(x) {
                *a ^= b;
            }
            None
        } else {
            let mut h = Sha256::new();
            h.update(self.head);
            h.update(id.as_bytes());
            h.update(digest);
            self.head = h.finalize().into();
            Some(self.head)
        }
    }
}

/// The result of a verification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verification {
    pub entries_checked: i64,
    /// The first bad entry in recording order, and why.
    pub first_bad: Option<(Uuid, String)>,
    /// Heads recomputed from the stored rows, by chain name.
    pub heads: Vec<(String, i64, [u8; 32])>,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// Recomputes chains from stored rows fed in (chain, chain position) order; a store streams
/// its rows into it, so every store verifies by the same rules.
#[derive(Debug, Default)]
pub struct Verifier {
    computed: HashMap<String, Head>,
    bad: Option<(i64, Uuid, String)>,
    checked: i64,
}

impl Verifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// One stored entry with its stored chain link (`digest`, `link`) and recording position.
    pub fn push(
        &mut self,
        canon: &Canonical,
        chain: &str,
        seq: i64,
        digest: &[u8],
        link: Option<&[u8]>,
        recorded: i64,
    ) {
        self.checked += 1;
        let d = canon.digest();
        let head = self.computed.entry(chain.to_owned()).or_default();
        let expected_seq = head.length + 1;
        let h = head.append(chain, &canon.entry_id, &d);
        let problem = if d.as_slice() != digest {
            Some("stored fields or lines do not match the entry's digest")
        } else if seq != expected_seq {
            Some("chain position out of sequence (an entry is missing)")
        } else if h.as_ref().map(<[u8; 32]>::as_slice) != link {
            Some("chain hash does not follow from the previous entry")
        } else {
            None
        };
        if let Some(p) = problem
            && self.bad.as_ref().is_none_or(|(s, _, _)| recorded < *s)
        {
            self.bad = Some((
                recorded,
                canon.entry_id,
                format!("{p} (chain {chain}, #{seq})"),
            ));
        }
    }

    /// True once a bad entry was seen.
    pub fn found_bad(&self) -> bool {
        self.bad.is_some()
    }

    /// An entry that has no chain link at all (added outside the ledger).
    pub fn orphan(&mut self, id: Uuid) {
        if self.bad.is_none() {
            self.bad = Some((
                i64::MAX,
                id,
                "entry has no chain link (added outside the ledger)".to_owned(),
            ));
        }
    }

    /// Compares the recomputed heads with the stored ones and gives the verdict.
    pub fn finish(self, stored: &HashMap<String, Head>) -> Verification {
        let Self {
            computed,
            mut bad,
            checked,
        } = self;
        let mut heads: Vec<(String, i64, [u8; 32])> = computed
            .iter()
            .map(|(k, h)| (k.clone(), h.length, h.head))
            .collect();
        heads.sort();
        if bad.is_none() {
            let mut names: Vec<&String> = stored.keys().collect();
            names.sort();
            for name in names {
                let s = &stored[name];
                let c = computed.get(name).cloned().unwrap_or_default();
                if c.length != s.length || c.head != s.head {
                    bad = Some((
                        i64::MAX,
                        Uuid::nil(),
                        format!(
                            "chain {name}: recomputed head ({} entries) differs from the recorded head ({} entries)",
                            c.length, s.length
                        ),
                    ));
                    break;
                }
            }
        }
        Verification {
            entries_checked: checked,
            first_bad: bad.map(|(_, id, why)| (id, why)),
            heads,
        }
    }
}

/// Every stored entry of a PostgreSQL journal in canonical form, by id.
pub async fn stored_entries(conn: &mut PgConnection) -> Result<Vec<Canonical>, Error> {
    crate::store::postgres::stored_entries(conn).await
}

/// Recomputes every chain of a PostgreSQL journal from the stored rows.
pub async fn verify(conn: &mut PgConnection) -> Result<Verification, Error> {
    crate::store::postgres::verify(conn).await
}
