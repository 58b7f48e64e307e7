//! The ledger's dead letters read back and published again: `ledgerline-ledger dead-letters
//! list | replay`. A record the ledger could not fold sits on `<topic>.dlq` with why
//! ([`DLQ_REASON_HEADER`]) and where it came from ([`DLQ_SOURCE_PARTITION_HEADER`],
//! [`DLQ_SOURCE_OFFSET_HEADER`]). Once its cause is fixed (a new version of the rules, a fixed
//! producer), replaying it publishes it again to its source topic, byte for byte, with the same
//! key: the ledger folds it like any late fact, and a fact's bytes fold once however often they
//! come, so a replay repeated by mistake doubles nothing. A record whose envelope does not
//! decode is not replayed (it would only come back).

use std::io::Write;
use std::time::Duration;

use ledgerline_bus::log::{LogPublisher, LogRecord, OutRecord, read_to_end};
use ledgerline_bus::topics::{
    DLQ_REASON_HEADER, DLQ_SOURCE_OFFSET_HEADER, DLQ_SOURCE_PARTITION_HEADER, REPLAYED_FROM_HEADER,
    dlq_of,
};
use ledgerline_proto::stripe::v1::{BalanceTransactionRecord, StripeEventRecord};
use prost::Message as _;
use rdkafka::consumer::StreamConsumer;

use crate::Error;
use crate::engine::{TopicKind, decode};

/// One dead letter, read back.
#[derive(Debug, Clone)]
pub struct DeadLetterRecord {
    /// `topic/partition/offset` on the dead-letter topic: how `replay --record` names it.
    pub id: String,
    /// The topic it was consumed from, which a replay publishes it to.
    pub source_topic: String,
    /// Its partition and offset there (unknown for dead letters written before the ledger
    /// recorded them).
    pub source: Option<(i32, i64)>,
    pub reason: String,
    /// The fact it carries (`evt_… charge.succeeded`, `txn_…`), or why its envelope does not
    /// decode.
    pub fact: Result<String, String>,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
}

impl DeadLetterRecord {
    /// Reads a record of `source_topic`'s dead-letter topic; `kind` says what `source_topic`
    /// carries.
    pub fn from_log(record: LogRecord, source_topic: &str, kind: TopicKind) -> Self {
        let header = |name| {
            record
                .header(name)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let source = header(DLQ_SOURCE_PARTITION_HEADER)
            .and_then(|p| p.parse().ok())
            .zip(header(DLQ_SOURCE_OFFSET_HEADER).and_then(|o| o.parse().ok()));
        Self {
            id: format!("{}/{}/{}", record.topic, record.partition, record.offset),
            source_topic: source_topic.to_owned(),
            source,
            reason: header(DLQ_REASON_HEADER).unwrap_or_else(|| "(no reason recorded)".into()),
            fact: describe(kind, record.payload.as_deref()),
            key: record.key,
            payload: record.payload,
        }
    }
}

/// What a record carries, if the ledger can read its envelope.
fn describe(kind: TopicKind, payload: Option<&[u8]>) -> Result<String, String> {
    decode(kind, payload)?;
    let payload = payload.unwrap_or_default();
    Ok(match kind {
        TopicKind::Events => StripeEventRecord::decode(payload)
            .map(|r| format!("{} {}", r.event_id, r.event_type))
            .unwrap_or_default(),
        TopicKind::BalanceTransactions => BalanceTransactionRecord::decode(payload)
            .map(|r| r.balance_transaction_id)
            .unwrap_or_default(),
    })
}

/// The dead letters of each of `topics` (source topics and what they carry), read by
/// `consumer` from each dead-letter topic's start to its end ([`read_to_end`], within 30 s).
pub async fn collect(
    consumer: &StreamConsumer,
    topics: &[(String, TopicKind)],
) -> Result<Vec<DeadLetterRecord>, Error> {
    let mut letters = Vec::new();
    for (topic, kind) in topics {
        for record in read_to_end(consumer, &dlq_of(topic), Duration::from_secs(30)).await? {
            letters.push(DeadLetterRecord::from_log(record, topic, *kind));
        }
    }
    Ok(letters)
}

/// One line a dead letter, tab-separated under a header: the dead letter, its source, the
/// fact, the reason.
pub fn write_list(out: &mut dyn Write, letters: &[DeadLetterRecord]) -> std::io::Result<()> {
    writeln!(out, "dead letter\tsource\tfact\treason")?;
    for l in letters {
        let source = match l.source {
            Some((partition, offset)) => format!("{}/{partition}/{offset}", l.source_topic),
            None => format!("{}/?/?", l.source_topic),
        };
        let fact = match &l.fact {
            Ok(fact) => fact.clone(),
            Err(why) => format!("(undecodable: {why})"),
        };
        // The fact's names come from the record's producer: tabs or line breaks in them would
        // break the columns.
        writeln!(
            out,
            "{}\t{source}\t{}\t{}",
            l.id,
            one_line(&fact),
            one_line(&l.reason)
        )?;
    }
    Ok(())
}

fn one_line(text: &str) -> String {
    text.replace(['\t', '\n', '\r'], " ")
}

/// What a replay did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Ids of the dead letters published again to their source topics.
    pub published: Vec<String>,
    /// Ids of the dead letters left where they are, and why.
    pub kept: Vec<(String, String)>,
}

impl std::fmt::Display for Replayed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for id in &self.published {
            writeln!(f, "published again\t{id}")?;
        }
        for (id, why) in &self.kept {
            writeln!(f, "kept\t{id}\t{}", one_line(why))?;
        }
        write!(
            f,
            "{} published again to their topics, {} kept",
            self.published.len(),
            self.kept.len()
        )
    }
}

/// Publishes `letters` again to their source topics (same key, same bytes, and
/// [`REPLAYED_FROM_HEADER`]), all acknowledged before it returns; those whose envelope does
/// not decode are kept.
pub async fn replay<P: LogPublisher + ?Sized>(
    producer: &P,
    letters: &[&DeadLetterRecord],
) -> Result<Replayed, Error> {
    let mut replayed = Replayed::default();
    let mut out = Vec::new();
    for l in letters {
        match &l.fact {
            Ok(_) => out.push(*l),
            Err(why) => replayed.kept.push((
                l.id.clone(),
                format!("its envelope does not decode ({why}): replayed, it would only come back"),
            )),
        }
    }
    let headers: Vec<[(&str, &[u8]); 1]> = out
        .iter()
        .map(|l| [(REPLAYED_FROM_HEADER, l.id.as_bytes())])
        .collect();
    let records: Vec<OutRecord<'_>> = out
        .iter()
        .zip(&headers)
        .map(|(l, h)| OutRecord {
            topic: &l.source_topic,
            key: l.key.as_deref(),
            payload: l.payload.as_deref(),
            headers: h,
        })
        .collect();
    producer.publish(&records).await?;
    replayed.published = out.iter().map(|l| l.id.clone()).collect();
    Ok(replayed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_dead_letter_is_one_line_of_four_columns() {
        let letter = DeadLetterRecord {
            id: "e.dlq/0/7".into(),
            source_topic: "e".into(),
            source: Some((2, 41)),
            reason: "the core cannot post this fact:\tbad\njson".into(),
            fact: Ok("evt_1\tinvoice.paid\nx".into()),
            key: None,
            payload: None,
        };
        let mut out = Vec::new();
        write_list(&mut out, &[letter]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "dead letter\tsource\tfact\treason\n\
             e.dlq/0/7\te/2/41\tevt_1 invoice.paid x\tthe core cannot post this fact: bad json\n"
        );
    }
}
