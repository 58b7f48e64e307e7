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
        let topic = self.topics.stripe_events();
        let key = stripe_object_key(&record.account, &record.object_id);
        let payload = record.encode_to_vec();
        if key.len() + payload.len() <= MAX_RECORD_BYTES {
            return Outgoing::fact(topic, key, payload, record.source);
        }
        let what = if record.event_id.is_empty() {
            format!(
                "the {} {} (GET it from Stripe by id)",
                record.object_type, record.object_id
            )
        } else {
            format!(
                "the event {} (GET /v1/events/{}, kept by Stripe for 30 days)",
                record.event_id, record.event_id
            )
        };
        let trimmed = StripeEventRecord {
            raw_json: Vec::new(),
            ..record.clone()
        };
        self.event_dead_letter(&trimmed, &too_large(payload.len(), &what))
    }

    pub fn balance_transaction(&self, record: &BalanceTransactionRecord) -> Outgoing {
        let topic = self.topics.stripe_balance_transactions();
        let key = stripe_object_key(&record.account, &record.balance_transaction_id);
        let payload = record.encode_to_vec();
        if key.len() + payload.len() <= MAX_RECORD_BYTES {
            return Outgoing::fact(topic, key, payload, record.source);
        }
        let trimmed = BalanceTransactionRecord {
            raw_json: Vec::new(),
            ..record.clone()
        };
        let what = format!(
            "the balance transaction {} (GET /v1/balance_transactions/{})",
            record.balance_transaction_id, record.balance_transaction_id
        );
        self.balance_transaction_dead_letter(&trimmed, &too_large(payload.len(), &what))
    }

    /// `record` as a dead letter of the events topic, for `reason`: a signed event or a listed
    /// object the ingester cannot read (`record` holds what it could, and the raw bytes whole),
    /// or one too large to publish.
    pub fn event_dead_letter(&self, record: &StripeEventRecord, reason: &str) -> Outgoing {
        let key = stripe_object_key(&record.account, &record.object_id);
        Outgoing::dead_letter(
            &self.topics.stripe_events(),
            key,
            record.encode_to_vec(),
            record.source,
            reason,
        )
    }

    /// [`Self::event_dead_letter`] for a balance transaction.
    pub fn balance_transaction_dead_letter(
        &self,
        record: &BalanceTransactionRecord,
        reason: &str,
    ) -> Outgoing {
        let key = stripe_object_key(&record.account, &record.balance_transaction_id);
        Outgoing::dead_letter(
            &self.topics.stripe_balance_transactions(),
            key,
            record.encode_to_vec(),
            record.source,
            reason,
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

/// Why a fact's record was dead-lettered without its raw JSON.
fn too_large(bytes: usize, what: &str) -> String {
    format!(
        "the ingester: the record of {what} is {bytes} bytes, more than a record may hold \
         ({MAX_RECORD_BYTES}); its raw JSON is left out of this dead letter: fetch it from Stripe"
    )
}
