//! Topic names and record keys: the wire contract of ARCHITECTURE.md.

/// Stripe events (webhooks, the Events API, backfilled objects): `StripeEventRecord`.
pub const STRIPE_EVENTS: &str = "stripe.events.v1";
/// Stripe balance transactions, re-published when their status changes: `BalanceTransactionRecord`.
pub const STRIPE_BALANCE_TRANSACTIONS: &str = "stripe.balance_transactions.v1";
/// Payout composition: which balance transactions an automatic payout settled.
pub const STRIPE_PAYOUTS: &str = "stripe.payouts.v1";
/// Cash-application events (matched, applied, written back, reversed).
pub const CASHAPP_APPLICATIONS: &str = "cashapp.applications.v1";
/// Committed journal entries, for reconciliation jobs.
pub const LEDGER_ENTRIES: &str = "ledger.entries.v1";

/// Suffix of the dead-letter topic that sits beside every consumed topic.
pub const DLQ_SUFFIX: &str = ".dlq";
/// Header that carries why a record was dead-lettered.
pub const DLQ_REASON_HEADER: &str = "ledgerline-dlq-reason";
/// Headers that say where a dead letter was in its source topic: partition and offset, in
/// decimal (dead letters written before they existed have neither).
pub const DLQ_SOURCE_PARTITION_HEADER: &str = "ledgerline-dlq-source-partition";
pub const DLQ_SOURCE_OFFSET_HEADER: &str = "ledgerline-dlq-source-offset";
/// Header of a record published again from a dead-letter topic: which dead letter it was
/// (`topic/partition/offset`).
pub const REPLAYED_FROM_HEADER: &str = "ledgerline-replayed-from";

/// The most of a reason a dead letter's header carries, in bytes: a reason may quote the
/// values it refuses, and the dead letter must fit where its record did
/// ([`crate::kafka::KafkaConfig::forwarding_producer`]).
pub const MAX_REASON_BYTES: usize = 1_024;

/// `reason` as a dead letter's header carries it: cut at [`MAX_REASON_BYTES`], on a character
/// boundary, with `…` at the cut.
pub fn reason_header(reason: &str) -> std::borrow::Cow<'_, str> {
    if reason.len() <= MAX_REASON_BYTES {
        return reason.into();
    }
    let mut end = MAX_REASON_BYTES - '…'.len_utf8();
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &reason[..end]).into()
}

/// Topic names with an optional deployment prefix (`acme.` → `acme.stripe.events.v1`), so
/// several environments can share one cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
}

impl Topics {
    pub fn with_prefix(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    fn name(&self, base: &str) -> String {
        format!("{}{base}", self.prefix)
    }

    pub fn stripe_events(&self) -> String {
        self.name(STRIPE_EVENTS)
    }

    pub fn stripe_balance_transactions(&self) -> String {
        self.name(STRIPE_BALANCE_TRANSACTIONS)
    }

    pub fn stripe_payouts(&self) -> String {
        self.name(STRIPE_PAYOUTS)
    }

    pub fn cashapp_applications(&self) -> String {
        self.name(CASHAPP_APPLICATIONS)
    }

    pub fn ledger_entries(&self) -> String {
        self.name(LEDGER_ENTRIES)
    }

    /// Every topic Ledgerline publishes to, in the order services create them.
    pub fn all(&self) -> Vec<String> {
        vec![
            self.stripe_events(),
            self.stripe_balance_transactions(),
            self.stripe_payouts(),
            self.cashapp_applications(),
            self.ledger_entries(),
        ]
    }
}

/// The dead-letter topic of `topic`.
pub fn dlq_of(topic: &str) -> String {
    format!("{topic}{DLQ_SUFFIX}")
}

/// Key of a record about one Stripe object: `{account}/{object id}`. Keying by object keeps
/// every fact about one invoice, charge or balance transaction in one partition, in order.
pub fn stripe_object_key(account: &str, object_id: &str) -> String {
    format!("{account}/{object_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_cut_to_fit_its_header() {
        assert_eq!(reason_header("bad json"), "bad json");
        let exact = "r".repeat(MAX_REASON_BYTES);
        assert_eq!(reason_header(&exact), exact.as_str());
        let long = format!("the id is {} characters long", "é".repeat(3_000));
        let cut = reason_header(&long);
        assert!(cut.len() <= MAX_REASON_BYTES, "{}", cut.len());
        assert!(cut.len() > MAX_REASON_BYTES - 8, "{}", cut.len());
        assert!(
            cut.starts_with("the id is éé") && cut.ends_with("é…"),
            "{cut}"
        );
    }

    #[test]
    fn prefix_applies_to_every_topic_and_dlq_follows_it() {
        let topics = Topics::with_prefix("staging.");
        assert_eq!(topics.stripe_events(), "staging.stripe.events.v1");
        assert!(topics.all().iter().all(|t| t.starts_with("staging.")));
        assert_eq!(
            dlq_of(&topics.stripe_events()),
            "staging.stripe.events.v1.dlq"
        );
        assert_eq!(Topics::default().ledger_entries(), "ledger.entries.v1");
    }

    #[test]
    fn object_key_joins_account_and_object() {
        assert_eq!(stripe_object_key("acct_1", "in_9"), "acct_1/in_9");
    }
}
