//! The live books against the rebuilt ones: facts by digest, entries by id (each entry's digest
//! recomputed from its stored fields and lines, so a line changed by hand shows), chain heads by
//! name. Both sides are streamed in key order and merged: memory stays flat whatever the size.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;

use futures::TryStreamExt as _;
use futures::stream::BoxStream;
use sqlx::Row as _;
use sqlx::postgres::PgPool;
use uuid::Uuid;

use crate::Error;
use crate::chain::{Canonical, Head};
use crate::store::postgres::{ENTRY_COLUMNS, canonical_from_row};

/// Which side of the comparison a row is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    Live,
    Rebuilt,
}

/// One way the live books differ from the fold of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// A fact stored on one side only.
    Fact {
        only_in: Side,
        fact_id: String,
        digest: String,
    },
    /// An entry stored on one side only.
    EntryMissing {
        only_in: Side,
        entry_id: Uuid,
        source_id: String,
    },
    /// The same entry id with other fields or lines; `what` names the first difference.
    EntryDiffers {
        entry_id: Uuid,
        source_id: String,
        what: String,
    },
    /// A chain whose head (length, hash) differs, or that one side lacks.
    Head {
        chain: String,
        live: Option<(i64, String)>,
        rebuilt: Option<(i64, String)>,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = |s: &Side| match s {
            Side::Live => "only in the live ledger (no record of the log gives it)",
            Side::Rebuilt => "only in the rebuild (the live ledger lacks it)",
        };
        match self {
            Self::Fact {
                only_in,
                fact_id,
                digest,
            } => write!(f, "fact {fact_id} (digest {digest}): {}", side(only_in)),
            Self::EntryMissing {
                only_in,
                entry_id,
                source_id,
            } => write!(
                f,
                "entry {entry_id} (source {source_id}): {}",
                side(only_in)
            ),
            Self::EntryDiffers {
                entry_id,
                source_id,
                what,
            } => write!(
                f,
                "entry {entry_id} (source {source_id}): differs from the fold of the log: {what}"
            ),
            Self::Head {
                chain,
                live,
                rebuilt,
            } => {
                let h = |x: &Option<(i64, String)>| match x {
                    Some((n, head)) => format!("{n} entries, head {head}"),
                    None => "none".to_owned(),
                };
                write!(f, "chain {chain}: live {}, rebuilt {}", h(live), h(rebuilt))
            }
        }
    }
}

/// Differences found, all counted, the first `max_listed` of each kind kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Differences {
    pub facts: u64,
    pub entries: u64,
    pub heads: u64,
    pub listed: Vec<Difference>,
    max_listed: usize,
}

impl Differences {
    pub fn new(max_listed: usize) -> Self {
        Self {
            max_listed,
            ..Self::default()
        }
    }

    pub fn total(&self) -> u64 {
        self.facts + self.entries + self.heads
    }

    fn note(&mut self, d: Difference) {
        let count = match d {
            Difference::Fact { .. } => &mut self.facts,
            Difference::EntryMissing { .. } | Difference::EntryDiffers { .. } => &mut self.entries,
            Difference::Head { .. } => &mut self.heads,
        };
        *count += 1;
        if *count <= self.max_listed as u64 {
            self.listed.push(d);
        }
    }
}

/// Rows of both sides compared: how many each side had.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub live: u64,
    pub rebuilt: u64,
}

/// Merges two streams sorted by key, calling `each` with the key and the value of each side.
async fn merge<K: Ord, V>(
    mut live: BoxStream<'_, Result<(K, V), Error>>,
    mut rebuilt: BoxStream<'_, Result<(K, V), Error>>,
    mut each: impl FnMut(K, Option<V>, Option<V>),
) -> Result<Counts, Error> {
    let mut counts = Counts::default();
    let mut a = live.try_next().await?;
    let mut b = rebuilt.try_next().await?;
    loop {
        let order = match (&a, &b) {
            (None, None) => return Ok(counts),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((ka, _)), Some((kb, _))) => ka.cmp(kb),
        };
        match order {
            Ordering::Less => {
                let Some((k, v)) = a.take() else { continue };
                counts.live += 1;
                each(k, Some(v), None);
                a = live.try_next().await?;
            }
            Ordering::Greater => {
                let Some((k, v)) = b.take() else { continue };
                counts.rebuilt += 1;
                each(k, None, Some(v));
                b = rebuilt.try_next().await?;
            }
            Ordering::Equal => {
                let (Some((k, va)), Some((_, vb))) = (a.take(), b.take()) else {
                    continue;
                };
                counts.live += 1;
                counts.rebuilt += 1;
                each(k, Some(va), Some(vb));
                a = live.try_next().await?;
                b = rebuilt.try_next().await?;
            }
        }
    }
}

/// Facts by digest: the live ones up to `live_max_fact_seq`, every rebuilt one.
pub async fn facts(
    live: &PgPool,
    rebuilt: &PgPool,
    live_max_fact_seq: i64,
    out: &mut Differences,
) -> Result<Counts, Error> {
    const SQL: &str =
        "SELECT digest, fact_id FROM ledger_facts WHERE fact_seq <= $1 ORDER BY digest";
    let rows = |pool: &PgPool, max: i64| {
        sqlx::query(SQL)
            .bind(max)
            .fetch(pool)
            .map_ok(|r| (r.get::<Vec<u8>, _>(0), r.get::<String, _>(1)))
            .map_err(Error::from)
    };
    merge(
        Box::pin(rows(live, live_max_fact_seq)),
        Box::pin(rows(rebuilt, i64::MAX)),
        |digest, a, b| {
            let (only_in, fact_id) = match (a, b) {
                (Some(id), None) => (Side::Live, id),
                (None, Some(id)) => (Side::Rebuilt, id),
                _ => return,
            };
            out.note(Difference::Fact {
                only_in,
                fact_id,
                digest: hex::encode(digest),
            });
        },
    )
    .await
}

/// Entries by id, each in canonical form from its stored rows: the live ones recorded up to
/// `live_max_recorded_seq` (and any without a chain link, which no fold wrote), every rebuilt
/// one.
pub async fn entries(
    live: &PgPool,
    rebuilt: &PgPool,
    live_max_recorded_seq: i64,
    out: &mut Differences,
) -> Result<Counts, Error> {
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM journal_entries e \
         LEFT JOIN ledger_entry_meta m ON m.entry_id = e.entry_id \
         WHERE m.recorded_seq IS NULL OR m.recorded_seq <= $1 ORDER BY e.entry_id"
    );
    let rows = |pool: &PgPool, max: i64| {
        sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(max)
            .fetch(pool)
            .map_err(Error::from)
            .and_then(|r| async move {
                let c = canonical_from_row(&r)?;
                Ok((c.entry_id, c))
            })
    };
    merge(
        Box::pin(rows(live, live_max_recorded_seq)),
        Box::pin(rows(rebuilt, i64::MAX)),
        |entry_id, a, b| match (a, b) {
            (Some(a), Some(b)) => {
                if a.digest() != b.digest() {
                    out.note(Difference::EntryDiffers {
                        entry_id,
                        source_id: b.source_id.clone(),
                        what: first_difference(&a, &b),
                    });
                }
            }
            (Some(only), None) => out.note(Difference::EntryMissing {
                only_in: Side::Live,
                entry_id,
                source_id: only.source_id,
            }),
            (None, Some(only)) => out.note(Difference::EntryMissing {
                only_in: Side::Rebuilt,
                entry_id,
                source_id: only.source_id,
            }),
            (None, None) => {}
        },
    )
    .await
}

/// Chain heads by name: the live ones as of its snapshot, the rebuilt ones as stored.
pub fn heads(
    live: &HashMap<String, Head>,
    rebuilt: &HashMap<String, Head>,
    out: &mut Differences,
) -> Counts {
    let shown = |h: Option<&Head>| h.map(|h| (h.length, hex::encode(h.head)));
    let mut names: Vec<&String> = live.keys().chain(rebuilt.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let (l, r) = (shown(live.get(name)), shown(rebuilt.get(name)));
        if l != r {
            out.note(Difference::Head {
                chain: name.clone(),
                live: l,
                rebuilt: r,
            });
        }
    }
    Counts {
        live: live.len() as u64,
        rebuilt: rebuilt.len() as u64,
    }
}

/// What differs first between two versions of one entry, in words.
fn first_difference(live: &Canonical, rebuilt: &Canonical) -> String {
    let field = |name: &str, a: &dyn fmt::Debug, b: &dyn fmt::Debug| {
        format!("{name}: live {a:?}, rebuilt {b:?}")
    };
    if live.ledger != rebuilt.ledger {
        return field("ledger", &live.ledger, &rebuilt.ledger);
    }
    if live.rule != rebuilt.rule {
        return field("rule", &live.rule, &rebuilt.rule);
    }
    if live.source_kind != rebuilt.source_kind || live.source_id != rebuilt.source_id {
        return field(
            "source",
            &(&live.source_kind, &live.source_id),
            &(&rebuilt.source_kind, &rebuilt.source_id),
        );
    }
    if live.effective_at != rebuilt.effective_at {
        return field(
            "effective_at (unix s)",
            &live.effective_at,
            &rebuilt.effective_at,
        );
    }
    if live.reverses != rebuilt.reverses {
        return field("reverses", &live.reverses, &rebuilt.reverses);
    }
    if live.description != rebuilt.description {
        return field("description", &live.description, &rebuilt.description);
    }
    let line = |l: Option<&crate::chain::CanonicalLine>| {
        l.map_or_else(
            || "none".to_owned(),
            |l| format!("{} {} {}", l.account, l.amount, l.currency),
        )
    };
    let n = live.lines.len().max(rebuilt.lines.len());
    for i in 0..n {
        let (a, b) = (live.lines.get(i), rebuilt.lines.get(i));
        if a != b {
            return format!("line {i}: live {}, rebuilt {}", line(a), line(b));
        }
    }
    "the digests differ".to_owned()
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;
    use crate::chain::CanonicalLine;

    fn entry() -> Canonical {
        Canonical {
            entry_id: Uuid::nil(),
            ledger: "acct_1".into(),
            rule: "charge".into(),
            source_kind: "balance_transaction".into(),
            source_id: "txn_1".into(),
            effective_at: 1_700_000_000,
            reverses: None,
            description: String::new(),
            lines: vec![
                CanonicalLine {
                    account: "assets:stripe:pending".into(),
                    currency: "usd".into(),
                    amount: Decimal::new(1000, 2),
                },
                CanonicalLine {
                    account: "income:uninvoiced_sales".into(),
                    currency: "usd".into(),
                    amount: Decimal::new(-1000, 2),
                },
            ],
        }
    }

    #[test]
    fn names_the_first_changed_line() {
        let mut changed = entry();
        changed.lines[1].amount = Decimal::new(-900, 2);
        assert_eq!(
            first_difference(&changed, &entry()),
            "line 1: live income:uninvoiced_sales -9.00 usd, rebuilt income:uninvoiced_sales -10.00 usd"
        );
        changed.effective_at += 1;
        assert!(first_difference(&changed, &entry()).starts_with("effective_at"));
    }

    #[tokio::test]
    async fn merge_pairs_keys_and_counts_each_side() {
        let s = |v: Vec<(i32, &'static str)>| -> BoxStream<'static, Result<(i32, &'static str), Error>> {
            Box::pin(futures::stream::iter(v.into_iter().map(Ok)))
        };
        let mut seen = Vec::new();
        let counts = merge(
            s(vec![(1, "a"), (2, "b"), (4, "d")]),
            s(vec![(2, "b"), (3, "c"), (4, "x")]),
            |k, a, b| seen.push((k, a, b)),
        )
        .await
        .unwrap();
        assert_eq!(
            counts,
            Counts {
                live: 3,
                rebuilt: 3
            }
        );
        assert_eq!(
            seen,
            vec![
                (1, Some("a"), None),
                (2, Some("b"), Some("b")),
                (3, None, Some("c")),
                (4, Some("d"), Some("x")),
            ]
        );
    }

    #[test]
    fn heads_differ_by_length_hash_or_absence_and_are_capped_in_the_listing() {
        let heads_of = |h: &[(&str, i64, u8)]| -> HashMap<String, Head> {
            h.iter()
                .map(|(name, length, byte)| {
                    let head = Head {
                        length: *length,
                        head: [*byte; 32],
                        ..Head::default()
                    };
                    ((*name).to_owned(), head)
                })
                .collect()
        };
        let live = heads_of(&[("a", 2, 1), ("b", 1, 2), ("c", 1, 3)]);
        let rebuilt = heads_of(&[("a", 2, 1), ("b", 1, 9), ("d", 1, 4)]);
        let mut out = Differences::new(2);
        let counts = heads(&live, &rebuilt, &mut out);
        assert_eq!(
            counts,
            Counts {
                live: 3,
                rebuilt: 3
            }
        );
        assert_eq!(out.heads, 3, "b's hash, c and d");
        assert_eq!(out.listed.len(), 2, "listing capped at 2");
        assert_eq!(out.total(), 3);
    }
}
