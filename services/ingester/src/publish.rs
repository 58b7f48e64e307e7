//! Publishing: protobuf envelopes to the log (Kafka's idempotent producer, or the embedded
//! log) through [`LogPublisher`]; a call returns only once the log acknowledged every record
//! (then, and only then, cursors may move).
//!
//! A fact the ingester cannot publish as it should goes to its topic's dead-letter topic
//! (`<topic>.dlq`) with the reason in [`DLQ_REASON_HEADER`], never nowhere: a record larger than
//! the producer takes (its raw JSON left out, so the dead letter fits), and a signed event or a
//! listed object without the shape the ingester reads (whole). A cursor then moves past it,
//! so one such fact cannot stop every fact behind it.

use std::sync::Arc;

use ledgerline_bus::Topics;
use ledgerline_bus::kafka::PRODUCER_MAX_MESSAGE_BYTES;
use ledgerline_bus::log::{LogPublisher, OutRecord};
use ledgerline_bus::topics::{DLQ_REASON_HEADER, dlq_of, reason_header, stripe_object_key};
use ledgerline_proto::stripe::v1::{
    BalanceTransactionRecord, IngestSource, PayoutCompositionRecord, StripeEventRecord,
};
use prost::Message;

use crate::IngesterError;
use crate::metrics::Metrics;

pub fn source_label(source: i32) -> &'static str {
    match IngestSource::try_from(source) {
        Ok(IngestSource::Webhook) => "webhook",
        Ok(IngestSource::EventsApi) => "events_api",
        Ok(IngestSource::Backfill) => "backfill",
        Ok(IngestSource::BalanceTransactionsApi) => "balance_transactions_api",
        _ => "unspecified",
    }
}

/// The most a record's key and envelope may hold: the producer's limit, less room for what the
/// ledger's dead letter of it adds (headers) and the record's own framing.
pub const MAX_RECORD_BYTES: usize = PRODUCER_MAX_MESSAGE_BYTES - 1_024;

/// One record ready to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub topic: String,
    pub key: String,
    pub payload: Vec<u8>,
    pub source: &'static str,
    /// Set for a dead letter: why it is one (sent as [`DLQ_REASON_HEADER`]).
    pub dead_letter_reason: Option<String>,
}

#[derive(Clone)]
pub struct Publisher {
    producer: Arc<dyn LogPublisher>,
    topics: Topics,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    pub fn new(
        producer: impl LogPublisher + 'static,
        topics: Topics,
        metrics: Arc<Metrics>,
    ) -> Publisher {
        Self::with_log(Arc::new(producer), topics, metrics)
    }

    /// A publisher over a shared log (the embedded mode).
    pub fn with_log(
        producer: Arc<dyn LogPublisher>,
        topics: Topics,
        metrics: Arc<Metrics>,
    ) -> Publisher {
        Publisher {
            producer,
            topics,
            metrics,
        }
    }

    pub fn event(&self, record: &StripeEventRecord) -> Outgoing {
        let key = stripe_object_key(&record.account, &record.object_id);
        let bytes = key.len() + record.encoded_len();
        if bytes <= MAX_RECORD_BYTES {
            let payload = record.encode_to_vec();
            return Outgoing::fact(self.topics.stripe_events(), key, payload, record.source);
        }
        self.event_dead_letter(record, &too_large(bytes))
    }

    pub fn balance_transaction(&self, record: &BalanceTransactionRecord) -> Outgoing {
        let key = stripe_object_key(&record.account, &record.balance_transaction_id);
        let bytes = key.len() + record.encoded_len();
        if bytes <= MAX_RECORD_BYTES {
            let payload = record.encode_to_vec();
            let topic = self.topics.stripe_balance_transactions();
            return Outgoing::fact(topic, key, payload, record.source);
        }
        self.balance_transaction_dead_letter(record, &too_large(bytes))
    }

    /// `record` as a dead letter of the events topic, for `reason`: a signed event or a listed
    /// object the ingester cannot read (`record` holds what it could), or one too large to
    /// publish. Its raw JSON is left out when it would not fit beside the reason.
    pub fn event_dead_letter(&self, record: &StripeEventRecord, reason: &str) -> Outgoing {
        let key = stripe_object_key(&record.account, &record.object_id);
        let fetch = if record.event_id.is_empty() {
            format!("GET the {} {} by id", record.object_type, record.object_id)
        } else {
            format!(
                "GET /v1/events/{}, kept by Stripe for 30 days",
                record.event_id
            )
        };
        let without_raw = || StripeEventRecord {
            raw_json: Vec::new(),
            ..record.clone()
        };
        let (payload, reason) = fitted(&key, record, without_raw, reason, &fetch);
        Outgoing::dead_letter(
            &self.topics.stripe_events(),
            key,
            payload,
            record.source,
            &reason,
        )
    }

    /// [`Self::event_dead_letter`] for a balance transaction.
    pub fn balance_transaction_dead_letter(
        &self,
        record: &BalanceTransactionRecord,
        reason: &str,
    ) -> Outgoing {
        let key = stripe_object_key(&record.account, &record.balance_transaction_id);
        let fetch = format!(
            "GET /v1/balance_transactions/{}",
            record.balance_transaction_id
        );
        let without_raw = || BalanceTransactionRecord {
            raw_json: Vec::new(),
            ..record.clone()
        };
        let (payload, reason) = fitted(&key, record, without_raw, reason, &fetch);
        Outgoing::dead_letter(
            &self.topics.stripe_balance_transactions(),
            key,
            payload,
            record.source,
            &reason,
        )
    }

    pub fn payout(&self, record: &PayoutCompositionRecord) -> Outgoing {
        Outgoing {
            topic: self.topics.stripe_payouts(),
            key: stripe_object_key(&record.account, &record.payout_id),
            payload: record.encode_to_vec(),
            source: source_label(record.source),
            dead_letter_reason: None,
        }
    }

    /// Sends every record and waits for all acknowledgements.
    pub async fn send_all(&self, records: &[Outgoing]) -> Result<(), IngesterError> {
        let headers: Vec<[(&str, &[u8]); 1]> = records
            .iter()
            .map(|r| {
                let reason = r.dead_letter_reason.as_deref().unwrap_or_default();
                [(DLQ_REASON_HEADER, reason.as_bytes())]
            })
            .collect();
        let out: Vec<OutRecord<'_>> = records
            .iter()
            .zip(&headers)
            .map(|(r, header)| OutRecord {
                headers: if r.dead_letter_reason.is_some() {
                    header
                } else {
                    &[]
                },
                ..OutRecord::new(&r.topic, r.key.as_bytes(), &r.payload)
            })
            .collect();
        self.producer
            .publish(&out)
            .await
            .map_err(|e| IngesterError::Kafka(e.to_string()))?;
        for r in records {
            self.metrics.record(r.source, &r.topic, 1);
            if let Some(reason) = &r.dead_letter_reason {
                tracing::error!(topic = %r.topic, key = %r.key, reason = %reason, "fact dead-lettered");
            }
        }
        Ok(())
    }
}

impl Outgoing {
    fn fact(topic: String, key: String, payload: Vec<u8>, source: i32) -> Self {
        Self {
            topic,
            key,
            payload,
            source: source_label(source),
            dead_letter_reason: None,
        }
    }

    /// A dead letter of `topic`, on `topic`'s dead-letter topic.
    fn dead_letter(topic: &str, key: String, payload: Vec<u8>, source: i32, reason: &str) -> Self {
        Self {
            topic: dlq_of(topic),
            key,
            payload,
            source: source_label(source),
            dead_letter_reason: Some(reason_header(reason).into_owned()),
        }
    }
}

/// Why a fact's record is a dead letter when it is too large to publish.
fn too_large(bytes: usize) -> String {
    format!(
        "the ingester: its record is {bytes} bytes, more than a record may hold ({MAX_RECORD_BYTES})"
    )
}

/// A dead letter's payload and reason: `whole` encoded if it fits beside the reason, else
/// `without_raw()` and a reason that starts by saying so and how to `fetch` the raw JSON (first:
/// a reason is cut at its end to fit its header). Only what is sent is encoded.
fn fitted<M: Message>(
    key: &str,
    whole: &M,
    without_raw: impl FnOnce() -> M,
    reason: &str,
    fetch: &str,
) -> (Vec<u8>, String) {
    if key.len() + whole.encoded_len() + reason_header(reason).len() <= MAX_RECORD_BYTES {
        return (whole.encode_to_vec(), reason.to_owned());
    }
    let reason = format!(
        "its raw JSON is left out of this dead letter, fetch it from Stripe ({fetch}): {reason}"
    );
    (without_raw().encode_to_vec(), reason)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn publisher() -> Publisher {
        Publisher::new(
            ledgerline_bus::EmbeddedLog::in_memory(1),
            Topics::default(),
            Arc::new(Metrics::default()),
        )
    }

    fn event_of(raw_len: usize) -> StripeEventRecord {
        StripeEventRecord {
            event_id: "evt_1".into(),
            account: "acct_1".into(),
            object_id: "in_1".into(),
            raw_json: vec![b' '; raw_len],
            ..StripeEventRecord::default()
        }
    }

    fn raw_of(out: &Outgoing) -> Vec<u8> {
        StripeEventRecord::decode(out.payload.as_slice())
            .unwrap()
            .raw_json
    }

    #[test]
    fn a_record_over_the_limit_is_a_dead_letter_without_its_raw_json() {
        let p = publisher();
        // The largest raw JSON whose record fits, found by growing it: it is published whole.
        let fits = (MAX_RECORD_BYTES - 200..MAX_RECORD_BYTES)
            .rev()
            .find(|n| p.event(&event_of(*n)).dead_letter_reason.is_none())
            .unwrap();
        let out = p.event(&event_of(fits));
        assert_eq!(out.topic, "stripe.events.v1");
        assert!(out.key.len() + out.payload.len() <= MAX_RECORD_BYTES);
        assert_eq!(raw_of(&out).len(), fits);
        let out = p.event(&event_of(fits + 1));
        assert_eq!(out.topic, "stripe.events.v1.dlq");
        assert!(raw_of(&out).is_empty());
        let reason = out.dead_letter_reason.unwrap();
        assert!(
            reason.starts_with("its raw JSON is left out")
                && reason.contains("GET /v1/events/evt_1")
                && reason.contains("more than a record may hold"),
            "{reason}"
        );
    }

    #[test]
    fn a_dead_letter_keeps_its_raw_json_unless_it_would_not_fit_beside_the_reason() {
        let p = publisher();
        let out = p.event_dead_letter(&event_of(100), "the ingester: unreadable");
        assert_eq!(raw_of(&out).len(), 100);
        assert_eq!(
            out.dead_letter_reason.as_deref(),
            Some("the ingester: unreadable")
        );
        // Unreadable and near the limit: the reason's header would push it over.
        let reason = format!("the ingester: unreadable {}", "x".repeat(900));
        let out = p.event_dead_letter(&event_of(MAX_RECORD_BYTES - 500), &reason);
        assert!(raw_of(&out).is_empty());
        assert!(out.key.len() + out.payload.len() < 1_000);
        let said = out.dead_letter_reason.unwrap();
        assert!(
            said.starts_with("its raw JSON is left out") && said.len() <= 1_024,
            "{said}"
        );
        let bt = BalanceTransactionRecord {
            balance_transaction_id: "txn_1".into(),
            account: "acct_1".into(),
            raw_json: vec![b' '; MAX_RECORD_BYTES],
            ..BalanceTransactionRecord::default()
        };
        let out = p.balance_transaction(&bt);
        assert_eq!(out.topic, "stripe.balance_transactions.v1.dlq");
        assert!(
            out.dead_letter_reason
                .unwrap()
                .contains("GET /v1/balance_transactions/txn_1")
        );
    }
}
