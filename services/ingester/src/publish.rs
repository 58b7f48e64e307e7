//! Publishing: protobuf envelopes to the log (Kafka's idempotent producer, or the embedded
//! log) through [`LogPublisher`]; a call returns only once the log acknowledged every record
//! (then, and only then, cursors may move).

use std::sync::Arc;

use ledgerline_bus::Topics;
use ledgerline_bus::log::{LogPublisher, OutRecord};
use ledgerline_bus::topics::stripe_object_key;
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

/// One record ready to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub topic: String,
    pub key: String,
    pub payload: Vec<u8>,
    pub source: &'static str,
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
        Outgoing {
            topic: self.topics.stripe_events(),
            key: stripe_object_key(&record.account, &record.object_id),
            payload: record.encode_to_vec(),
            source: source_label(record.source),
        }
    }

    pub fn balance_transaction(&self, record: &BalanceTransactionRecord) -> Outgoing {
        Outgoing {
            topic: self.topics.stripe_balance_transactions(),
            key: stripe_object_key(&record.account, &record.balance_transaction_id),
            payload: record.encode_to_vec(),
            source: source_label(record.source),
        }
    }

    pub fn payout(&self, record: &PayoutCompositionRecord) -> Outgoing {
        Outgoing {
            topic: self.topics.stripe_payouts(),
            key: stripe_object_key(&record.account, &record.payout_id),
            payload: record.encode_to_vec(),
            source: source_label(record.source),
        }
    }

    /// Sends every record and waits for all acknowledgements.
    pub async fn send_all(&self, records: &[Outgoing]) -> Result<(), IngesterError> {
        let out: Vec<OutRecord<'_>> = records
            .iter()
            .map(|r| OutRecord::new(&r.topic, r.key.as_bytes(), &r.payload))
            .collect();
        self.producer
            .publish(&out)
            .await
            .map_err(|e| IngesterError::Kafka(e.to_string()))?;
        for r in records {
            self.metrics.record(r.source, &r.topic, 1);
        }
        Ok(())
    }
}
