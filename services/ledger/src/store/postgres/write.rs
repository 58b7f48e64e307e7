//! The writer's batch: its facts (binary `COPY`, or one `INSERT` for a small batch), then its
//! entries, lines, metadata, outbox rows and conflicts (`UNNEST`), the chain heads and the
//! consumed offsets — all in the caller's transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::Error;
use crate::chain::Head;
use crate::store::Rows;

/// A batch's new facts: binary `COPY`, or one `INSERT` for a small batch.
pub(super) async fn write_facts(
    conn: &mut PgConnection,
    r: &Rows,
    recorded_at: DateTime<Utc>,
) -> Result<(), Error> {
    let t = std::time::Instant::now();
    if !r.f_seq.is_empty() {
        if r.f_seq.len() >= COPY_FACTS_FROM {
            copy_facts(conn, r, recorded_at).await?;
        } else {
            insert_facts(conn, r, recorded_at).await?;
        }
        tracing::debug!(ms = t.elapsed().as_millis(), "facts inserted");
    }
    Ok(())
}

/// The rest of a batch: entries, lines, metadata, outbox rows and conflicts.
pub(super) async fn write_entries(
    conn: &mut PgConnection,
    r: &Rows,
    recorded_at: DateTime<Utc>,
) -> Result<(), Error> {
    let t = std::time::Instant::now();
    if !r.e_id.is_empty() {
        sqlx::query(
            "INSERT INTO journal_entries \
               (entry_id, ledger, rule, source_kind, source_id, effective_at, recorded_at, description, reverses) \
             SELECT i, l, r, k, s, e, $9, d, v FROM UNNEST($1::uuid[], $2::text[], $3::text[], \
               $4::text[], $5::text[], $6::timestamptz[], $7::text[], $8::uuid[]) AS x(i, l, r, k, s, e, d, v)",
        )
        .bind(&r.e_id)
        .bind(&r.e_ledger)
        .bind(&r.e_rule)
        .bind(&r.e_kind)
        .bind(&r.e_source)
        .bind(&r.e_effective)
        .bind(&r.e_description)
        .bind(&r.e_reverses)
        .bind(recorded_at)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "INSERT INTO journal_lines (entry_id, line_no, account, currency, amount) \
             SELECT * FROM UNNEST($1::uuid[], $2::int[], $3::text[], $4::text[], $5::numeric[])",
        )
        .bind(&r.l_entry)
        .bind(&r.l_no)
        .bind(&r.l_account)
        .bind(&r.l_currency)
        .bind(&r.l_amount)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "INSERT INTO ledger_entry_meta \
               (entry_id, recorded_seq, fact_seq, chain, chain_seq, digest, chain_hash) \
             SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::bigint[], $4::text[], \
               $5::bigint[], $6::bytea[], $7::bytea[])",
        )
        .bind(&r.e_id)
        .bind(&r.m_recorded)
        .bind(&r.m_fact)
        .bind(&r.m_chain)
        .bind(&r.m_chain_seq)
        .bind(&r.m_digest)
        .bind(&r.m_hash)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "INSERT INTO ledger_outbox (record_key, payload) \
             SELECT * FROM UNNEST($1::text[], $2::bytea[])",
        )
        .bind(&r.o_key)
        .bind(&r.o_payload)
        .execute(&mut *conn)
        .await?;
    }
    tracing::debug!(ms = t.elapsed().as_millis(), "entries inserted");
    if !r.c_entry.is_empty() {
        sqlx::query(
            "INSERT INTO ledger_conflicts \
               (entry_id, fact_seq, fact_id, incoming_digest, incoming, recorded_at) \
             SELECT i, f, fi, d, j, $6 FROM UNNEST($1::uuid[], $2::bigint[], $3::text[], \
               $4::bytea[], $5::jsonb[]) AS x(i, f, fi, d, j) \
             ON CONFLICT (entry_id, incoming_digest) DO NOTHING",
        )
        .bind(&r.c_entry)
        .bind(&r.c_fact)
        .bind(&r.c_fact_id)
        .bind(&r.c_digest)
        .bind(&r.c_incoming)
        .bind(recorded_at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// From this many facts a batch's facts go by `COPY` (its raw JSON is most of the bytes); a
/// smaller batch — a live stream's — saves `COPY`'s extra round trips with one `INSERT`.
const COPY_FACTS_FROM: usize = 500;

/// The facts of a small batch in one statement (see [`COPY_FACTS_FROM`]).
async fn insert_facts(
    conn: &mut PgConnection,
    r: &Rows,
    recorded_at: DateTime<Utc>,
) -> Result<(), Error> {
    let encodings: Vec<&str> = r.f_encoding.iter().map(|e| e.as_str()).collect();
    sqlx::query(
        "INSERT INTO ledger_facts (fact_seq, topic, kafka_partition, kafka_offset, ledger, fact_id, \
           digest, raw, recorded_at, raw_encoding) \
         SELECT q, t, p, o, l, f, d, w, $9, c FROM UNNEST($1::bigint[], $2::text[], $3::int[], \
           $4::bigint[], $5::text[], $6::text[], $7::bytea[], $8::bytea[], $10::text[]) \
           AS x(q, t, p, o, l, f, d, w, c)",
    )
    .bind(&r.f_seq)
    .bind(&r.f_topic)
    .bind(&r.f_partition)
    .bind(&r.f_offset)
    .bind(&r.f_ledger)
    .bind(&r.f_fact_id)
    .bind(&r.f_digest)
    .bind(&r.f_raw)
    .bind(recorded_at)
    .bind(&encodings)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Binary `COPY` of the facts: their raw JSON (compressed by the reader stage, see
/// [`crate::raw`]) is most of the bytes a batch writes, and COPY carries it without the array
/// encoding of an `UNNEST` parameter.
async fn copy_facts(
    conn: &mut PgConnection,
    r: &Rows,
    recorded_at: DateTime<Utc>,
) -> Result<(), Error> {
    // Microseconds since 2000-01-01, PostgreSQL's binary timestamptz.
    const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
    let at = recorded_at.timestamp_micros() - PG_EPOCH_MICROS;
    // The exact size: growing a buffer of megabytes copies it and faults in fresh pages.
    let size: usize = (0..r.f_seq.len())
        .map(|i| {
            // Field count, ten length words, and the fixed-width fields (seq, partition,
            // offset, recorded_at).
            2 + 10 * 4
                + 8
                + 4
                + 8
                + 8
                + r.f_topic[i].len()
                + r.f_ledger[i].len()
                + r.f_fact_id[i].len()
                + r.f_digest[i].len()
                + r.f_raw[i].len()
                + r.f_encoding[i].as_str().len()
        })
        .sum();
    let mut buf = Vec::with_capacity(19 + size + 2);
    buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buf.extend_from_slice(&0i32.to_be_bytes());
    buf.extend_from_slice(&0i32.to_be_bytes());
    fn field(buf: &mut Vec<u8>, bytes: &[u8]) {
        buf.extend_from_slice(&i32::try_from(bytes.len()).unwrap_or(i32::MAX).to_be_bytes());
        buf.extend_from_slice(bytes);
    }
    for i in 0..r.f_seq.len() {
        buf.extend_from_slice(&10i16.to_be_bytes());
        field(&mut buf, &r.f_seq[i].to_be_bytes());
        field(&mut buf, r.f_topic[i].as_bytes());
        field(&mut buf, &r.f_partition[i].to_be_bytes());
        field(&mut buf, &r.f_offset[i].to_be_bytes());
        field(&mut buf, r.f_ledger[i].as_bytes());
        field(&mut buf, r.f_fact_id[i].as_bytes());
        field(&mut buf, &r.f_digest[i]);
        field(&mut buf, &r.f_raw[i]);
        field(&mut buf, &at.to_be_bytes());
        field(&mut buf, r.f_encoding[i].as_str().as_bytes());
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    debug_assert_eq!(buf.len(), 19 + size + 2, "the COPY buffer's size estimate");
    let mut copy = conn
        .copy_in_raw(
            "COPY ledger_facts (fact_seq, topic, kafka_partition, kafka_offset, ledger, fact_id, \
             digest, raw, recorded_at, raw_encoding) FROM STDIN (FORMAT binary)",
        )
        .await?;
    copy.send(buf).await?;
    copy.finish().await?;
    Ok(())
}

pub(super) async fn write_heads(
    conn: &mut PgConnection,
    heads: &HashMap<String, Head>,
) -> Result<(), Error> {
    let mut names = Vec::new();
    let mut lengths = Vec::new();
    let mut values = Vec::new();
    for (name, h) in heads.iter().filter(|(_, h)| h.changed) {
        names.push(name.clone());
        lengths.push(h.length);
        values.push(h.head.to_vec());
    }
    if names.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO ledger_chain_heads (chain, length, head) \
         SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bytea[]) \
         ON CONFLICT (chain) DO UPDATE SET length = EXCLUDED.length, head = EXCLUDED.head",
    )
    .bind(&names)
    .bind(&lengths)
    .bind(&values)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn write_offsets(
    conn: &mut PgConnection,
    group: &str,
    offsets: &HashMap<(String, i32), i64>,
) -> Result<(), Error> {
    if offsets.is_empty() {
        return Ok(());
    }
    let (topics, parts, next): (Vec<String>, Vec<i32>, Vec<i64>) = offsets.iter().fold(
        (Vec::new(), Vec::new(), Vec::new()),
        |(mut t, mut p, mut n), ((topic, part), off)| {
            t.push(topic.clone());
            p.push(*part);
            n.push(*off);
            (t, p, n)
        },
    );
    sqlx::query(
        "INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset, updated_at) \
         SELECT $1, t, p, n, now() FROM UNNEST($2::text[], $3::int[], $4::bigint[]) AS x(t, p, n) \
         ON CONFLICT (consumer_group, topic, partition) \
         DO UPDATE SET next_offset = GREATEST(consumer_offsets.next_offset, EXCLUDED.next_offset), \
                       updated_at = now()",
    )
    .bind(group)
    .bind(&topics)
    .bind(&parts)
    .bind(&next)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
