//! Turning raw Stripe JSON into envelopes: only routing fields are read; the bytes travel
//! untouched.

use std::time::SystemTime;

use ledgerline_proto::stripe::v1::{
    BalanceTransactionRecord, BalanceTransactionStatus, IngestSource, StripeEventRecord,
};
use serde::Deserialize;
use serde_json::Value;

/// The fields of an event the ingester routes and filters on.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventHead {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(default)]
    pub account: Option<String>,
    /// Absent: the mode cannot be told, and the event is not filtered on it.
    #[serde(default)]
    pub livemode: Option<bool>,
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub created: i64,
    pub data: EventData,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventData {
    pub object: ObjectHead,
}

/// The fields of a Stripe object the ingester routes and filters on.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ObjectHead {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub object: Option<String>,
    #[serde(default)]
    pub created: i64,
    #[serde(default)]
    pub livemode: bool,
    #[serde(default)]
    pub customer: Option<Value>,
    #[serde(default)]
    pub invoice: Option<Value>,
    #[serde(default)]
    pub metadata: Option<serde_json::Map<String, Value>>,
    // Balance transactions
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub available_on: i64,
    #[serde(default)]
    pub reporting_category: Option<String>,
    // Payouts
    #[serde(default)]
    pub reconciliation_status: Option<String>,
    #[serde(default)]
    pub automatic: Option<bool>,
    #[serde(default)]
    pub amount: i64,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub arrival_date: i64,
}

impl ObjectHead {
    /// The head of an object whose JSON the ingester cannot read, for its dead letter: the
    /// `id` and `created` its list gave, and its `object` if that is a string.
    pub fn listed(id: &str, created: i64, raw: &[u8]) -> Self {
        let loose: Value = serde_json::from_slice(raw).unwrap_or_default();
        Self {
            id: Some(id.to_owned()),
            object: loose["object"].as_str().map(str::to_owned),
            created,
            ..Self::default()
        }
    }

    fn id_of(v: &Option<Value>) -> Option<&str> {
        match v.as_ref()? {
            Value::String(s) => Some(s),
            Value::Object(o) => o.get("id")?.as_str(),
            _ => None,
        }
    }

    /// The customer id (`cus_…`), the object itself when it is a customer.
    pub fn customer_id(&self) -> Option<&str> {
        if self.object.as_deref() == Some("customer") {
            return self.id.as_deref();
        }
        Self::id_of(&self.customer)
    }

    /// The invoice id (`in_…`), the object itself when it is an invoice.
    pub fn invoice_id(&self) -> Option<&str> {
        if self.object.as_deref() == Some("invoice") {
            return self.id.as_deref();
        }
        Self::id_of(&self.invoice)
    }

    pub fn metadata_value(&self, key: &str) -> Option<&str> {
        self.metadata.as_ref()?.get(key)?.as_str()
    }
}

pub fn timestamp_now() -> prost_types::Timestamp {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    prost_types::Timestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

/// The account an event belongs to: the connected account, else the platform.
pub fn event_account<'a>(head: &'a EventHead, platform: &'a str) -> &'a str {
    head.account.as_deref().unwrap_or(platform)
}

pub fn event_record(
    head: &EventHead,
    raw: &[u8],
    account: &str,
    source: IngestSource,
) -> StripeEventRecord {
    StripeEventRecord {
        event_id: head.id.clone(),
        event_type: head.event_type.clone(),
        account: account.to_owned(),
        livemode: head.livemode.unwrap_or_default(),
        api_version: head.api_version.clone().unwrap_or_default(),
        created: head.created,
        source: source as i32,
        received_at: Some(timestamp_now()),
        object_id: head.data.object.id.clone().unwrap_or_default(),
        object_type: head.data.object.object.clone().unwrap_or_default(),
        raw_json: raw.to_vec(),
    }
}

/// A backfilled object (not an event): `event_type = backfill.{object}`.
pub fn backfill_record(
    head: &ObjectHead,
    raw: &[u8],
    account: &str,
    api_version: &str,
) -> StripeEventRecord {
    let object = head.object.clone().unwrap_or_default();
    StripeEventRecord {
        event_id: String::new(),
        event_type: format!("backfill.{object}"),
        account: account.to_owned(),
        livemode: head.livemode,
        api_version: api_version.to_owned(),
        created: head.created,
        source: IngestSource::Backfill as i32,
        received_at: Some(timestamp_now()),
        object_id: head.id.clone().unwrap_or_default(),
        object_type: object,
        raw_json: raw.to_vec(),
    }
}

pub fn bt_status(head: &ObjectHead) -> BalanceTransactionStatus {
    match head.status.as_deref() {
        Some("pending") => BalanceTransactionStatus::Pending,
        Some("available") => BalanceTransactionStatus::Available,
        _ => BalanceTransactionStatus::Unspecified,
    }
}

/// A balance transaction's envelope. Its `livemode` is `livemode`, the mode of the key that
/// read it: the object has no such field (read from it, every live one said test).
pub fn bt_record(
    head: &ObjectHead,
    raw: &[u8],
    account: &str,
    api_version: &str,
    source: IngestSource,
    livemode: bool,
) -> BalanceTransactionRecord {
    BalanceTransactionRecord {
        balance_transaction_id: head.id.clone().unwrap_or_default(),
        account: account.to_owned(),
        livemode,
        observed_status: bt_status(head) as i32,
        created: head.created,
        available_on: head.available_on,
        reporting_category: head.reporting_category.clone().unwrap_or_default(),
        source: source as i32,
        received_at: Some(timestamp_now()),
        api_version: api_version.to_owned(),
        raw_json: raw.to_vec(),
    }
}
