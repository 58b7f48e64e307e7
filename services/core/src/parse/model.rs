//! What the rules read of a Stripe fact: borrowed strings ([`Ref`]), integer amounts and the
//! object shapes, each field optional (see the parent module on API versions). The parser
//! (`parse.rs`) fills them.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::entry::Timestamp;
use crate::money::Currency;

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
