//! Tolerant parsing of raw Stripe JSON: an Event or a BalanceTransaction.
//!
//! One pass with serde over borrowed strings: every field the rules read, from every object
//! shape they read it from, and nothing else (unknown fields are skipped). Fields are optional
//! so that events rendered in any API version parse: older invoices carry `charge`,
//! `paid_out_of_band`, `tax` and `total_tax_amounts`; newer ones `total_taxes`, and their
//! payments arrive as `invoice_payment` objects. Which fields a rule *needs* is checked by the
//! rule ([`ParseError::MissingField`]).
//!
//! Amounts must be JSON integers (Stripe's minor units): a float where an amount belongs is a
//! [`ParseError::Json`], never a rounding.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::entry::Timestamp;
use crate::money::{Currency, MoneyError};

/// Why raw bytes are not a usable Stripe fact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not JSON, or a field of the wrong JSON type (e.g. a float amount).
    #[error("malformed Stripe JSON: {0}")]
    Json(String),
    /// The top-level `object` is neither `event` nor `balance_transaction`.
    #[error("unsupported top-level object {0:?}: expected \"event\" or \"balance_transaction\"")]
    UnknownObject(String),
    /// A field the posting rule needs is absent or null.
    #[error("{object} {id}: missing field `{field}`")]
    MissingField {
        /// The object kind (`invoice`, `balance_transaction`, …).
        object: &'static str,
        /// Its id, if known.
        id: String,
        /// The field.
        field: &'static str,
    },
    /// A currency code that is not three letters.
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// Amounts that contradict each other (e.g. `amount - fee != net`).
    #[error("{id}: impossible amounts: {reason}")]
    ImpossibleAmounts {
        /// The object's id.
        id: String,
        /// What does not add up.
        reason: String,
    },
}

impl From<serde_json::Error> for ParseError {
    fn from(e: serde_json::Error) -> Self {
        ParseError::Json(e.to_string())
    }
}

/// A string from the JSON, borrowed when it has no escapes. Also accepts an expanded object,
/// taking its `id` (Stripe's "expandable" fields).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Ref<'a>(pub Cow<'a, str>);

impl Ref<'_> {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Ref<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

struct RefVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for RefVisitor<'a> {
    type Value = Ref<'a>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an object with an id")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Ref(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Ref(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Ref(Cow::Owned(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Ref::default())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut id = Ref::default();
        while let Some(key) = map.next_key::<Ref<'de>>()? {
            if key.0 == "id" {
                id = map.next_value::<Ref<'a>>()?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(id)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Ref<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RefVisitor(std::marker::PhantomData))
    }
}

/// An amount that is an integer (most objects) or `{currency, value}` (Payment Records).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AmountField(pub i64);

impl<'de> Deserialize<'de> for AmountField {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AmountField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer amount or {currency, value}")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<AmountField, E> {
                Ok(AmountField(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<AmountField, E> {
                i64::try_from(v)
                    .map(AmountField)
                    .map_err(|_| E::custom("amount does not fit in i64"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AmountField, A::Error> {
                let mut value = 0;
                while let Some(key) = map.next_key::<Ref<'de>>()? {
                    if key.0 == "value" {
                        value = map.next_value::<Option<i64>>()?.unwrap_or(0);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(AmountField(value))
            }
        }
        d.deserialize_any(V)
    }
}

/// The sum of `amount` over an array of objects (`total_taxes`, `total_discount_amounts`, …),
/// computed while parsing, without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AmountSum(pub i64);

impl<'de> Deserialize<'de> for AmountSum {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Item {
            #[serde(default)]
            amount: Option<i64>,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AmountSum;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of objects with an amount")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AmountSum, A::Error> {
                let mut sum: i64 = 0;
                while let Some(item) = seq.next_element::<Item>()? {
                    sum = sum
                        .checked_add(item.amount.unwrap_or(0))
                        .ok_or_else(|| de::Error::custom("amount sum overflows"))?;
                }
                Ok(AmountSum(sum))
            }
        }
        d.deserialize_seq(V)
    }
}

/// One `fee_details[]` item of a balance transaction.
#[derive(Debug, Clone, Deserialize)]
pub struct FeeDetail<'a> {
    /// The fee, minor units.
    pub amount: i64,
    /// Its currency.
    #[serde(borrow, default)]
    pub currency: Option<Ref<'a>>,
    /// `stripe_fee`, `application_fee`, `tax`, …
    #[serde(borrow, rename = "type")]
    pub kind: Ref<'a>,
}

/// `status_transitions` of invoices and invoice payments.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct StatusTransitions {
    /// Invoice finalized.
    pub finalized_at: Option<i64>,
    /// Invoice (payment) paid.
    pub paid_at: Option<i64>,
    /// Invoice voided.
    pub voided_at: Option<i64>,
    /// Invoice marked uncollectible.
    pub marked_uncollectible_at: Option<i64>,
    /// Invoice payment canceled.
    pub canceled_at: Option<i64>,
}

/// `invoice_payment.payment`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PaymentRef<'a> {
    /// `charge`, `payment_intent` or `payment_record`.
    #[serde(borrow, rename = "type")]
    pub kind: Option<Ref<'a>>,
    /// The charge, for `charge`.
    #[serde(borrow)]
    pub charge: Option<Ref<'a>>,
    /// The PaymentIntent, for `payment_intent`.
    #[serde(borrow)]
    pub payment_intent: Option<Ref<'a>>,
    /// The Payment Record, for `payment_record`.
    #[serde(borrow)]
    pub payment_record: Option<Ref<'a>>,
}

/// One `refunds[]` item of a credit note.
#[derive(Debug, Clone, Deserialize)]
pub struct CreditNoteRefund<'a> {
    /// The part of the refund this credit note explains.
    #[serde(default)]
    pub amount_refunded: i64,
    /// The refund.
    #[serde(borrow, default)]
    pub refund: Option<Ref<'a>>,
}

/// A credit note's `refunds` array. (A charge's `refunds` is a list object; it parses to
/// nothing here, as no rule reads it.)
#[derive(Debug, Clone, Default)]
pub struct CreditNoteRefunds<'a>(pub Vec<CreditNoteRefund<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for CreditNoteRefunds<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = CreditNoteRefunds<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of refunds or a list object")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut v = Vec::new();
                while let Some(item) = seq.next_element::<CreditNoteRefund<'a>>()? {
                    v.push(item);
                }
                Ok(CreditNoteRefunds(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_key::<IgnoredAny>()?.is_some() {
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(CreditNoteRefunds::default())
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A transfer reversal in `transfer.reversals.data[]`.
#[derive(Debug, Clone, Deserialize)]
pub struct Reversal<'a> {
    /// `trr_…`
    #[serde(borrow)]
    pub id: Ref<'a>,
    /// Minor units.
    pub amount: i64,
}

/// A Stripe list object (`{"object":"list","data":[…]}`).
#[derive(Debug, Clone, Deserialize)]
pub struct ListOf<T> {
    /// The items.
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
}

/// `data.object` of an event: the union of the fields the rules read from invoices, invoice
/// payments, credit notes, payouts, transfers, charges and PaymentIntents.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
#[allow(missing_docs)] // Stripe's field names; see stripe-api.md.
pub struct StripeObject<'a> {
    #[serde(borrow)]
    pub id: Option<Ref<'a>>,
    #[serde(borrow)]
    pub object: Option<Ref<'a>>,
    #[serde(borrow)]
    pub customer: Option<Ref<'a>>,
    #[serde(borrow)]
    pub currency: Option<Ref<'a>>,
    pub amount: Option<AmountField>,
    #[serde(borrow)]
    pub status: Option<Ref<'a>>,
    pub created: Option<i64>,
    pub total: Option<i64>,
    pub tax: Option<i64>,
    pub total_taxes: Option<AmountSum>,
    pub total_tax_amounts: Option<AmountSum>,
    pub tax_amounts: Option<AmountSum>,
    pub total_discount_amounts: Option<AmountSum>,
    pub discount_amount: Option<i64>,
    pub starting_balance: Option<i64>,
    pub ending_balance: Option<i64>,
    pub amount_due: Option<i64>,
    pub amount_paid: Option<i64>,
    pub amount_remaining: Option<i64>,
    pub amount_overpaid: Option<i64>,
    pub status_transitions: Option<StatusTransitions>,
    pub effective_at: Option<i64>,
    #[serde(borrow)]
    pub charge: Option<Ref<'a>>,
    pub paid_out_of_band: Option<bool>,
    #[serde(borrow)]
    pub invoice: Option<Ref<'a>>,
    #[serde(borrow)]
    pub payment: Option<PaymentRef<'a>>,
    pub pre_payment_amount: Option<i64>,
    pub post_payment_amount: Option<i64>,
    pub out_of_band_amount: Option<i64>,
    #[serde(borrow)]
    pub refunds: Option<CreditNoteRefunds<'a>>,
    #[serde(borrow)]
    pub refund: Option<Ref<'a>>,
    pub voided_at: Option<i64>,
    #[serde(borrow)]
    pub destination: Option<Ref<'a>>,
    #[serde(borrow)]
    pub reversals: Option<ListOf<Reversal<'a>>>,
    #[serde(borrow)]
    pub payment_intent: Option<Ref<'a>>,
    #[serde(borrow)]
    pub latest_charge: Option<Ref<'a>>,
    #[serde(borrow)]
    pub balance_transaction: Option<Ref<'a>>,
}

/// Non-empty text of an optional field.
pub(crate) fn text<'s>(r: &'s Option<Ref<'_>>) -> Option<&'s str> {
    r.as_ref().map(Ref::as_str).filter(|s| !s.is_empty())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct EventData<'a> {
    // Boxed: the union is large, and a pointer moves cheaper than the struct.
    #[serde(borrow)]
    object: Option<Box<StripeObject<'a>>>,
}

/// Top level of either object kind, read in one pass.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Top<'a> {
    #[serde(borrow)]
    id: Option<Ref<'a>>,
    #[serde(borrow)]
    object: Option<Ref<'a>>,
    #[serde(borrow, rename = "type")]
    kind: Option<Ref<'a>>,
    created: Option<i64>,
    // balance_transaction
    amount: Option<i64>,
    fee: Option<i64>,
    net: Option<i64>,
    #[serde(borrow)]
    currency: Option<Ref<'a>>,
    available_on: Option<i64>,
    #[serde(borrow)]
    status: Option<Ref<'a>>,
    #[serde(borrow)]
    reporting_category: Option<Ref<'a>>,
    #[serde(borrow)]
    source: Option<Ref<'a>>,
    #[serde(borrow)]
    fee_details: Option<Vec<FeeDetail<'a>>>,
    // event
    #[serde(borrow)]
    account: Option<Ref<'a>>,
    #[serde(borrow)]
    api_version: Option<Ref<'a>>,
    #[serde(borrow)]
    data: Option<EventData<'a>>,
}

/// The envelope alone, for events whose `data.object` does not fit the union (then the event
/// type decides: unsupported types are ignored, supported ones are errors).
#[derive(Deserialize, Default)]
#[serde(default)]
struct Envelope<'a> {
    #[serde(borrow)]
    id: Option<Ref<'a>>,
    #[serde(borrow)]
    object: Option<Ref<'a>>,
    #[serde(borrow, rename = "type")]
    kind: Option<Ref<'a>>,
    created: Option<i64>,
    #[serde(borrow)]
    account: Option<Ref<'a>>,
    #[serde(borrow)]
    api_version: Option<Ref<'a>>,
}

/// A balance transaction, as the rules read it.
#[derive(Debug, Clone)]
pub struct BalanceTransaction<'a> {
    /// `txn_…`
    pub id: Cow<'a, str>,
    /// Settlement currency.
    pub currency: Currency,
    /// Gross, minor units (positive in, negative out).
    pub amount: i64,
    /// Fees, minor units.
    pub fee: i64,
    /// `amount - fee`.
    pub net: i64,
    /// Creation time.
    pub created: Timestamp,
    /// When the net becomes available.
    pub available_on: Timestamp,
    /// True when Stripe says `available` (else `pending`).
    pub available: bool,
    /// `reporting_category`.
    pub reporting_category: Cow<'a, str>,
    /// `type`.
    pub kind: Cow<'a, str>,
    /// The id of the source object (charge, refund, payout, …).
    pub source: Option<Cow<'a, str>>,
    /// Itemized fees.
    pub fee_details: Vec<FeeDetail<'a>>,
}

/// A Stripe event.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// `evt_…`
    pub id: Cow<'a, str>,
    /// The connected account it came from; `None` for the platform's own events.
    pub account: Option<Cow<'a, str>>,
    /// The API version `data` is rendered in.
    pub api_version: Option<Cow<'a, str>>,
    /// When the event happened.
    pub created: Timestamp,
    /// The event type (`invoice.finalized`, …).
    pub kind: Cow<'a, str>,
    /// `data.object`, or `None` when it did not fit the union of shapes the rules read.
    pub object: Option<Box<StripeObject<'a>>>,
}

/// A parsed Stripe fact.
#[derive(Debug, Clone)]
pub enum Fact<'a> {
    /// From the balance transactions topic or list.
    BalanceTransaction(BalanceTransaction<'a>),
    /// From webhooks, the Events API or backfill.
    Event(Event<'a>),
}

fn missing(object: &'static str, id: &Option<Ref<'_>>, field: &'static str) -> ParseError {
    ParseError::MissingField {
        object,
        id: text(id).unwrap_or("?").to_owned(),
        field,
    }
}

fn cow(r: Ref<'_>) -> Cow<'_, str> {
    r.0
}

/// Parses raw Stripe JSON bytes: an event or a balance transaction.
pub fn parse(raw: &[u8]) -> Result<Fact<'_>, ParseError> {
    // Validating UTF-8 once up front lets serde_json skip the per-string check.
    let json = std::str::from_utf8(raw).map_err(|e| ParseError::Json(format!("not UTF-8: {e}")))?;
    let top: Top<'_> = match serde_json::from_str(json) {
        Ok(top) => top,
        Err(e) if e.is_data() => return parse_envelope_only(raw, e),
        Err(e) => return Err(e.into()),
    };
    match text(&top.object) {
        Some("balance_transaction") => balance_transaction(top).map(Fact::BalanceTransaction),
        Some("event") => event(top).map(Fact::Event),
        Some(other) => Err(ParseError::UnknownObject(other.to_owned())),
        None => Err(ParseError::UnknownObject(String::new())),
    }
}

/// The union of shapes did not fit: keep the envelope so the caller can tell an event type we
/// do not post (ignored, with a reason) from one we do (an error).
fn parse_envelope_only(raw: &[u8], original: serde_json::Error) -> Result<Fact<'_>, ParseError> {
    let env: Envelope<'_> = serde_json::from_slice(raw).map_err(|_| ParseError::from(original))?;
    if text(&env.object) != Some("event") {
        return Err(ParseError::Json(format!(
            "{} (object {:?})",
            "a field has an unexpected JSON type",
            text(&env.object).unwrap_or("")
        )));
    }
    let id = env
        .id
        .clone()
        .ok_or_else(|| missing("event", &env.id, "id"))?;
    let kind = env.kind.ok_or_else(|| missing("event", &env.id, "type"))?;
    let created = env
        .created
        .ok_or_else(|| missing("event", &env.id, "created"))?;
    Ok(Fact::Event(Event {
        id: cow(id),
        account: env.account.filter(|a| !a.0.is_empty()).map(cow),
        api_version: env.api_version.map(cow),
        created: Timestamp::from_unix(created),
        kind: cow(kind),
        object: None,
    }))
}

fn balance_transaction(top: Top<'_>) -> Result<BalanceTransaction<'_>, ParseError> {
    const O: &str = "balance_transaction";
    let id = &top.id;
    let need_i = |v: Option<i64>, f: &'static str| v.ok_or_else(|| missing(O, id, f));
    let amount = need_i(top.amount, "amount")?;
    let fee = need_i(top.fee, "fee")?;
    let net = need_i(top.net, "net")?;
    let created = need_i(top.created, "created")?;
    let available_on = need_i(top.available_on, "available_on")?;
    let currency = Currency::parse(text(&top.currency).ok_or_else(|| missing(O, id, "currency"))?)?;
    let reporting_category = top
        .reporting_category
        .clone()
        .ok_or_else(|| missing(O, id, "reporting_category"))?;
    let kind = top.kind.clone().unwrap_or_default();
    let bt_id = top.id.clone().ok_or_else(|| missing(O, id, "id"))?;
    if amount.checked_sub(fee) != Some(net) {
        return Err(ParseError::ImpossibleAmounts {
            id: bt_id.0.into_owned(),
            reason: format!("amount {amount} - fee {fee} != net {net}"),
        });
    }
    let fee_details = top.fee_details.unwrap_or_default();
    for d in &fee_details {
        if let Some(c) = text(&d.currency)
            && Currency::parse(c)? != currency
        {
            return Err(ParseError::ImpossibleAmounts {
                id: bt_id.0.into_owned(),
                reason: format!("fee in {c} on a {currency} balance transaction"),
            });
        }
    }
    Ok(BalanceTransaction {
        id: cow(bt_id),
        currency,
        amount,
        fee,
        net,
        created: Timestamp::from_unix(created),
        available_on: Timestamp::from_unix(available_on),
        available: text(&top.status) == Some("available"),
        reporting_category: cow(reporting_category),
        kind: cow(kind),
        source: top.source.filter(|s| !s.0.is_empty()).map(cow),
        fee_details,
    })
}

fn event(top: Top<'_>) -> Result<Event<'_>, ParseError> {
    const O: &str = "event";
    let id = top.id.clone().ok_or_else(|| missing(O, &top.id, "id"))?;
    let kind = top
        .kind
        .clone()
        .ok_or_else(|| missing(O, &top.id, "type"))?;
    let created = top.created.ok_or_else(|| missing(O, &top.id, "created"))?;
    Ok(Event {
        id: cow(id),
        account: top.account.filter(|a| !a.0.is_empty()).map(cow),
        api_version: top.api_version.map(cow),
        created: Timestamp::from_unix(created),
        kind: cow(kind),
        object: top.data.and_then(|d| d.object),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balance_transaction_parses() {
        let raw = br#"{"id":"txn_1","object":"balance_transaction","amount":1000,"available_on":200,
            "created":100,"currency":"usd","exchange_rate":null,"fee":59,"net":941,
            "fee_details":[{"amount":59,"application":null,"currency":"usd","description":"Stripe processing fees","type":"stripe_fee"}],
            "reporting_category":"charge","source":"ch_1","status":"pending","type":"charge"}"#;
        let Fact::BalanceTransaction(bt) = parse(raw).unwrap() else {
            panic!("not a balance transaction")
        };
        assert_eq!(bt.id, "txn_1");
        assert_eq!(bt.net, 941);
        assert_eq!(bt.fee_details[0].kind.as_str(), "stripe_fee");
        assert!(!bt.available);
        assert!(matches!(bt.id, Cow::Borrowed(_)));
    }

    #[test]
    fn impossible_and_malformed_are_errors() {
        let raw = br#"{"id":"txn_1","object":"balance_transaction","amount":1000,"available_on":2,
            "created":1,"currency":"usd","fee":59,"net":900,"reporting_category":"charge"}"#;
        assert!(matches!(
            parse(raw),
            Err(ParseError::ImpossibleAmounts { .. })
        ));
        let float =
            br#"{"id":"txn_1","object":"balance_transaction","amount":10.5,"available_on":2,
            "created":1,"currency":"usd","fee":0,"net":10,"reporting_category":"charge"}"#;
        assert!(matches!(parse(float), Err(ParseError::Json(_))));
        assert!(matches!(parse(b"{not json"), Err(ParseError::Json(_))));
        assert!(matches!(parse(b"[]"), Err(ParseError::UnknownObject(_))));
        assert!(matches!(
            parse(br#"{"object":"charge","id":"ch_1"}"#),
            Err(ParseError::UnknownObject(_))
        ));
    }

    #[test]
    fn event_with_expanded_fields_parses() {
        let raw =
            br#"{"id":"evt_1","object":"event","account":null,"api_version":"2026-07-29.dahlia",
            "created":5,"type":"invoice_payment.paid","data":{"object":{"id":"inpay_1",
            "object":"invoice_payment","amount_paid":500,"currency":"eur",
            "invoice":{"id":"in_1","object":"invoice","customer":"cus_1"},
            "payment":{"type":"payment_intent","payment_intent":"pi_1"},
            "status":"paid","status_transitions":{"paid_at":7,"canceled_at":null}}}}"#;
        let Fact::Event(ev) = parse(raw).unwrap() else {
            panic!("not an event")
        };
        let o = ev.object.unwrap();
        assert_eq!(text(&o.invoice), Some("in_1"));
        assert_eq!(o.status_transitions.unwrap().paid_at, Some(7));
        let p = o.payment.unwrap();
        assert_eq!(text(&p.payment_intent), Some("pi_1"));
    }

    #[test]
    fn odd_shapes_keep_the_envelope() {
        // `total` as an object does not fit the union: the envelope still parses.
        let raw = br#"{"id":"evt_2","object":"event","created":5,"type":"quote.created",
            "data":{"object":{"id":"qt_1","total":{"weird":true}}}}"#;
        let Fact::Event(ev) = parse(raw).unwrap() else {
            panic!("not an event")
        };
        assert!(ev.object.is_none());
        assert_eq!(ev.kind, "quote.created");
    }
}
