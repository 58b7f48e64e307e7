//! Journal entries on the wire (`ledgerline.ledger.v1.JournalEntry`).

use chrono::{DateTime, Utc};
use ledgerline_proto::ledger::v1 as pb;

use crate::chain::Canonical;

pub(crate) fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// The wire form of a stored entry.
pub fn entry_to_proto(
    c: &Canonical,
    recorded_at: Option<DateTime<Utc>>,
    chain: &str,
    chain_seq: i64,
    chain_hash: Vec<u8>,
    fact_id: &str,
) -> pb::JournalEntry {
    pb::JournalEntry {
        entry_id: c.entry_id.hyphenated().to_string(),
        ledger: c.ledger.clone(),
        rule: c.rule.clone(),
        source_kind: c.source_kind.clone(),
        source_id: c.source_id.clone(),
        effective_at: Some(prost_types::Timestamp {
            seconds: c.effective_at,
            nanos: 0,
        }),
        recorded_at: recorded_at.map(ts),
        description: c.description.clone(),
        reverses: c
            .reverses
            .map(|r| r.hyphenated().to_string())
            .unwrap_or_default(),
        lines: c
            .lines
            .iter()
            .map(|l| pb::Line {
                account: l.account.clone(),
                currency: l.currency.clone(),
                amount: l.amount.normalize().to_string(),
            })
            .collect(),
        chain: chain.to_owned(),
        chain_seq,
        chain_hash,
        fact_id: fact_id.to_owned(),
    }
}
