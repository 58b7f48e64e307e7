//! The writer's transaction in SQLite: a batch's facts, entries (their balance checked here,
//! as PostgreSQL's trigger does there), lines, metadata, outbox rows, conflicts, chain heads
//! and offsets, and the catch-up's reads.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::sqlite::SqliteConnection;
use sqlx::{Row as _, Sqlite, Transaction};
use uuid::Uuid;

use super::{corrupt, from_micros, load_heads, load_offsets, micros};
use crate::Error;
use crate::chain::Head;
use crate::raw::{Dictionaries, RawEncoding};
use crate::store::{Offsets, ReadFacts, Rows, StoredFact, WriteTx};

/// A `BEGIN IMMEDIATE` transaction: SQLite's single writer.
#[derive(Debug)]
pub struct SqliteWrite {
    pub(super) tx: Transaction<'static, Sqlite>,
}

/// [`ReadFacts::facts_since`] on `conn`.
async fn facts_since(
    conn: &mut SqliteConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<StoredFact>, Error> {
    let rows = sqlx::query(
        "SELECT fact_seq, ledger, digest, raw FROM ledger_facts \
         WHERE fact_seq > ? ORDER BY fact_seq LIMIT ?",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            Ok(StoredFact {
                seq: row.try_get(0)?,
                ledger: row.try_get(1)?,
                digest: row.try_get(2)?,
                encoding: RawEncoding::Identity.as_str().to_owned(),
                stored: row.try_get(3)?,
                dictionaries: std::sync::Arc::default(),
            })
        })
        .collect::<Result<_, sqlx::Error>>()?)
}

/// [`ReadFacts::max_recorded_seq`] on `conn`.
async fn max_recorded_seq(conn: &mut SqliteConnection) -> Result<i64, Error> {
    let max: Option<i64> = sqlx::query_scalar("SELECT max(recorded_seq) FROM ledger_entry_meta")
        .fetch_one(conn)
        .await?;
    Ok(max.unwrap_or(0))
}

/// A deferred (read) transaction: one view of the database as committed when it first reads,
/// without taking SQLite's write lock ([`crate::store::Store::begin_snapshot`]).
#[derive(Debug)]
pub struct SqliteSnapshot {
    pub(super) tx: Transaction<'static, Sqlite>,
}

impl ReadFacts for SqliteWrite {
    async fn facts_since(&mut self, after: i64, limit: i64) -> Result<Vec<StoredFact>, Error> {
        facts_since(&mut self.tx, after, limit).await
    }

    async fn max_recorded_seq(&mut self) -> Result<i64, Error> {
        max_recorded_seq(&mut self.tx).await
    }
}

impl ReadFacts for SqliteSnapshot {
    async fn facts_since(&mut self, after: i64, limit: i64) -> Result<Vec<StoredFact>, Error> {
        facts_since(&mut self.tx, after, limit).await
    }

    async fn max_recorded_seq(&mut self) -> Result<i64, Error> {
        max_recorded_seq(&mut self.tx).await
    }
}

impl WriteTx for SqliteWrite {
    async fn now(&mut self) -> Result<DateTime<Utc>, Error> {
        // Microsecond precision, like PostgreSQL's timestamptz.
        let last: Option<i64> = sqlx::query_scalar(
            "SELECT e.recorded_at FROM ledger_entry_meta m \
               JOIN journal_entries e ON e.entry_id = m.entry_id \
              ORDER BY m.recorded_seq DESC LIMIT 1",
        )
        .fetch_optional(&mut *self.tx)
        .await?;
        let clock = micros(Utc::now());
        Ok(from_micros(last.map_or(clock, |l| clock.max(l + 1))))
    }

    async fn offsets(&mut self, group: &str) -> Result<Offsets, Error> {
        load_offsets(&mut self.tx, group).await
    }

    async fn heads(&mut self) -> Result<HashMap<String, Head>, Error> {
        load_heads(&mut self.tx).await
    }

    async fn write_facts(&mut self, r: &Rows, recorded_at: DateTime<Utc>) -> Result<(), Error> {
        let at = micros(recorded_at);
        let conn: &mut SqliteConnection = &mut self.tx;
        for i in 0..r.f_seq.len() {
            // The raw column holds facts as sent: rows encoded otherwise are decoded first.
            let raw = match r.f_encoding.get(i).copied().unwrap_or_default() {
                RawEncoding::Identity => std::borrow::Cow::Borrowed(&r.f_raw[i]),
                other => std::borrow::Cow::Owned(crate::raw::decode(
                    r.f_seq[i],
                    other.as_str(),
                    r.f_raw[i].clone(),
                    // This store's encoder never compresses with a dictionary.
                    &Dictionaries::default(),
                )?),
            };
            sqlx::query(
                "INSERT INTO ledger_facts (fact_seq, topic, kafka_partition, kafka_offset, ledger, \
                 fact_id, digest, raw, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(r.f_seq[i])
            .bind(&r.f_topic[i])
            .bind(r.f_partition[i])
            .bind(r.f_offset[i])
            .bind(&r.f_ledger[i])
            .bind(&r.f_fact_id[i])
            .bind(&r.f_digest[i])
            .bind(raw.as_slice())
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    async fn write(
        &mut self,
        r: &Rows,
        heads: &HashMap<String, Head>,
        group: &str,
        offsets: &Offsets,
        recorded_at: DateTime<Utc>,
    ) -> Result<(), Error> {
        let at = micros(recorded_at);
        let conn: &mut SqliteConnection = &mut self.tx;
        check_balanced(r)?;
        for i in 0..r.e_id.len() {
            sqlx::query(
                "INSERT INTO journal_entries (entry_id, ledger, rule, source_kind, source_id, \
                 effective_at, recorded_at, description, reverses) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(r.e_id[i].hyphenated().to_string())
            .bind(&r.e_ledger[i])
            .bind(&r.e_rule[i])
            .bind(&r.e_kind[i])
            .bind(&r.e_source[i])
            .bind(r.e_effective[i].timestamp())
            .bind(at)
            .bind(&r.e_description[i])
            .bind(r.e_reverses[i].map(|u| u.hyphenated().to_string()))
            .execute(&mut *conn)
            .await?;
        }
        for i in 0..r.l_entry.len() {
            sqlx::query(
                "INSERT INTO journal_lines (entry_id, line_no, account, currency, amount) \
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(r.l_entry[i].hyphenated().to_string())
            .bind(r.l_no[i])
            .bind(&r.l_account[i])
            .bind(&r.l_currency[i])
            .bind(r.l_amount[i].to_string())
            .execute(&mut *conn)
            .await?;
        }
        for i in 0..r.e_id.len() {
            sqlx::query(
                "INSERT INTO ledger_entry_meta (entry_id, recorded_seq, fact_seq, chain, chain_seq, \
                 digest, chain_hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(r.e_id[i].hyphenated().to_string())
            .bind(r.m_recorded[i])
            .bind(r.m_fact[i])
            .bind(&r.m_chain[i])
            .bind(r.m_chain_seq[i])
            .bind(&r.m_digest[i])
            .bind(r.m_hash[i].as_deref())
            .execute(&mut *conn)
            .await?;
        }
        for i in 0..r.o_key.len() {
            sqlx::query("INSERT INTO ledger_outbox (record_key, payload) VALUES (?, ?)")
                .bind(&r.o_key[i])
                .bind(&r.o_payload[i])
                .execute(&mut *conn)
                .await?;
        }
        for i in 0..r.c_entry.len() {
            sqlx::query(
                "INSERT INTO ledger_conflicts (entry_id, fact_seq, fact_id, incoming_digest, \
                 incoming, recorded_at) VALUES (?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (entry_id, incoming_digest) DO NOTHING",
            )
            .bind(r.c_entry[i].hyphenated().to_string())
            .bind(r.c_fact[i])
            .bind(&r.c_fact_id[i])
            .bind(&r.c_digest[i])
            .bind(r.c_incoming[i].to_string())
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
        for (name, h) in heads.iter().filter(|(_, h)| h.changed) {
            sqlx::query(
                "INSERT INTO ledger_chain_heads (chain, length, head) VALUES (?, ?, ?) \
                 ON CONFLICT (chain) DO UPDATE SET length = excluded.length, head = excluded.head",
            )
            .bind(name)
            .bind(h.length)
            .bind(h.head.as_slice())
            .execute(&mut *conn)
            .await?;
        }
        let now = micros(Utc::now());
        for ((topic, partition), next) in offsets {
            sqlx::query(
                "INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset, updated_at) \
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT (consumer_group, topic, partition) \
                 DO UPDATE SET next_offset = max(next_offset, excluded.next_offset), \
                               updated_at = excluded.updated_at",
            )
            .bind(group)
            .bind(topic)
            .bind(partition)
            .bind(next)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    async fn commit(self) -> Result<(), Error> {
        self.tx.commit().await?;
        Ok(())
    }
}

/// Every entry of the batch balances per currency, has two lines or more and no zero line
/// (what PostgreSQL's trigger enforces).
fn check_balanced(r: &Rows) -> Result<(), Error> {
    let mut sums: HashMap<(Uuid, &str), Decimal> = HashMap::new();
    let mut counts: HashMap<Uuid, usize> = HashMap::new();
    for i in 0..r.l_entry.len() {
        if r.l_amount[i].is_zero() {
            return Err(corrupt(format_args!(
                "zero line in entry {} (refused)",
                r.l_entry[i]
            )));
        }
        *sums.entry((r.l_entry[i], &r.l_currency[i])).or_default() += r.l_amount[i];
        *counts.entry(r.l_entry[i]).or_default() += 1;
    }
    if let Some(((id, cur), _)) = sums.iter().find(|(_, s)| !s.is_zero()) {
        return Err(corrupt(format_args!(
            "unbalanced entry {id} in {cur} (refused)"
        )));
    }
    if let Some(id) = r
        .e_id
        .iter()
        .find(|id| counts.get(id).copied().unwrap_or(0) < 2)
    {
        return Err(corrupt(format_args!(
            "entry {id} with fewer than two lines (refused)"
        )));
    }
    Ok(())
}
