//! Tamper evidence: hash chains over the stored journal.
//!
//! An entry's digest is sha256 of its canonical content as stored (id, ledger, rule, source,
//! effective time, reverses, description, and every line: number, account, currency, exact
//! amount). Entries a fact posts directly are chained per source partition in offset order:
//! `hash = sha256(previous hash || entry id || digest)`. Entries a join derived (whose
//! recording order depends on which side arrived last) go to the order-independent
//! [`DERIVED_CHAIN`] set, whose head is the XOR of `sha256("derived" || id || digest)`. Both
//! are therefore identical after a rebuild from the log. Verification recomputes everything
//! from the stored rows and names the first bad entry in recording order.

use std::collections::HashMap;

use futures::TryStreamExt as _;
use ledgerline_core::JournalEntry;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, Row};
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

/// The stored heads.
pub async fn load_heads(conn: &mut PgConnection) -> Result<HashMap<String, Head>, Error> {
    let rows = sqlx::query("SELECT chain, length, head FROM ledger_chain_heads")
        .fetch_all(&mut *conn)
        .await?;
    let mut out = HashMap::new();
    for r in rows {
        let head: Vec<u8> = r.try_get(2)?;
        out.insert(
            r.try_get(0)?,
            Head {
                length: r.try_get(1)?,
                head: <[u8; 32]>::try_from(head.as_slice()).unwrap_or_default(),
                changed: false,
            },
        );
    }
    Ok(out)
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

/// The SELECT that reads an entry with its lines in canonical form (columns 0..=12).
pub(crate) const ENTRY_COLUMNS: &str = "e.entry_id, e.ledger, e.rule, e.source_kind, \
    e.source_id, extract(epoch from e.effective_at)::bigint, e.reverses, e.description, \
    (SELECT array_agg(l.account ORDER BY l.line_no) FROM journal_lines l WHERE l.entry_id = e.entry_id), \
    (SELECT array_agg(l.currency ORDER BY l.line_no) FROM journal_lines l WHERE l.entry_id = e.entry_id), \
    (SELECT array_agg(l.amount ORDER BY l.line_no) FROM journal_lines l WHERE l.entry_id = e.entry_id), \
    e.recorded_at, \
    (SELECT array_agg(l.line_no ORDER BY l.line_no) FROM journal_lines l WHERE l.entry_id = e.entry_id)";

/// Reads the canonical entry from a row selected with [`ENTRY_COLUMNS`].
pub(crate) fn canonical_from_row(r: &sqlx::postgres::PgRow) -> Result<Canonical, sqlx::Error> {
    let accounts: Vec<String> = r.try_get::<Option<Vec<String>>, _>(8)?.unwrap_or_default();
    let currencies: Vec<String> = r.try_get::<Option<Vec<String>>, _>(9)?.unwrap_or_default();
    let amounts: Vec<Decimal> = r
        .try_get::<Option<Vec<Decimal>>, _>(10)?
        .unwrap_or_default();
    Ok(Canonical {
        entry_id: r.try_get(0)?,
        ledger: r.try_get(1)?,
        rule: r.try_get(2)?,
        source_kind: r.try_get(3)?,
        source_id: r.try_get(4)?,
        effective_at: r.try_get(5)?,
        reverses: r.try_get(6)?,
        description: r.try_get(7)?,
        lines: accounts
            .into_iter()
            .zip(currencies)
            .zip(amounts)
            .map(|((account, currency), amount)| CanonicalLine {
                account,
                currency,
                amount,
            })
            .collect(),
    })
}

/// Every stored entry in canonical form, by id.
pub async fn stored_entries(conn: &mut PgConnection) -> Result<Vec<Canonical>, Error> {
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM journal_entries e ORDER BY e.entry_id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows
        .iter()
        .map(canonical_from_row)
        .collect::<Result<_, _>>()?)
}

/// Recomputes every chain from the stored rows.
pub async fn verify(conn: &mut PgConnection) -> Result<Verification, Error> {
    let stored = load_heads(conn).await?;
    let sql = format!(
        "SELECT {ENTRY_COLUMNS}, m.chain, m.chain_seq, m.digest, m.chain_hash, m.recorded_seq \
         FROM ledger_entry_meta m JOIN journal_entries e ON e.entry_id = m.entry_id \
         ORDER BY m.chain, m.chain_seq"
    );
    let mut computed: HashMap<String, Head> = HashMap::new();
    let mut bad: Option<(i64, Uuid, String)> = None;
    let mut checked = 0i64;
    {
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(&mut *conn);
        while let Some(r) = rows.try_next().await? {
            checked += 1;
            let canon = canonical_from_row(&r)?;
            let chain: String = r.try_get(13)?;
            let seq: i64 = r.try_get(14)?;
            let digest: Vec<u8> = r.try_get(15)?;
            let link: Option<Vec<u8>> = r.try_get(16)?;
            let recorded: i64 = r.try_get(17)?;
            let d = canon.digest();
            let head = computed.entry(chain.clone()).or_default();
            let expected_seq = head.length + 1;
            let h = head.append(&chain, &canon.entry_id, &d);
            let problem = if d.as_slice() != digest.as_slice() {
                Some("stored fields or lines do not match the entry's digest")
            } else if seq != expected_seq {
                Some("chain position out of sequence (an entry is missing)")
            } else if h.map(|x| x.to_vec()) != link {
                Some("chain hash does not follow from the previous entry")
            } else {
                None
            };
            if let Some(p) = problem
                && bad.as_ref().is_none_or(|(s, _, _)| recorded < *s)
            {
                bad = Some((
                    recorded,
                    canon.entry_id,
                    format!("{p} (chain {chain}, #{seq})"),
                ));
            }
        }
    }
    let mut heads: Vec<(String, i64, [u8; 32])> = computed
        .iter()
        .map(|(k, h)| (k.clone(), h.length, h.head))
        .collect();
    heads.sort();
    if bad.is_none() {
        let orphan: Option<Uuid> = sqlx::query_scalar(
            "SELECT e.entry_id FROM journal_entries e \
             WHERE NOT EXISTS (SELECT 1 FROM ledger_entry_meta m WHERE m.entry_id = e.entry_id) \
             ORDER BY e.recorded_at, e.entry_id LIMIT 1",
        )
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(id) = orphan {
            bad = Some((
                i64::MAX,
                id,
                "entry has no chain link (added outside the ledger)".to_owned(),
            ));
        }
    }
    if bad.is_none() {
        for (name, s) in &stored {
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
    Ok(Verification {
        entries_checked: checked,
        first_bad: bad.map(|(_, id, why)| (id, why)),
        heads,
    })
}
