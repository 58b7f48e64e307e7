//! Tolerant parsing of raw Stripe JSON: an Event or a BalanceTransaction, into the types of
//! `parse/model.rs`.
//!
//! One pass: a structural scanner (`parse/scan.rs`) walks the top level and an event's
//! `data.object` and delimits every other value without building it; only the members the
//! rules read are deserialized with serde, borrowing their strings (plain strings and integers
//! take a fast path; anything unusual goes to serde). Of an event's object only what its type
//! needs is read: everything for the types that post, the linking members (`id`, `object`,
//! `status`, `customer`, `invoice`, `payment_intent`, `latest_charge`) for the other types
//! of the families the rules read, nothing for the rest. The type is peeked at the end of the
//! bytes (where Stripe writes it) before the scan and checked after it; another key order
//! costs a second pass, never a wrong answer.
//!
//! What no rule reads is delimited (strings, matching brackets), not validated: invalid
//! UTF-8 or a malformed number there is not an error; what a rule reads is checked in full.
//!
//! Every field the rules read, from every object shape they read it from, is optional
//! so that events rendered in any API version parse: older invoices carry `charge`,
//! `paid_out_of_band`, `tax` and `total_tax_amounts`; newer ones `total_taxes`, and their
//! payments arrive as `invoice_payment` objects. Which fields a rule *needs* is checked by the
//! rule ([`ParseError::MissingField`]).
//!
//! Amounts must be JSON integers (Stripe's minor units): a float where an amount belongs is a
//! [`ParseError::Json`], never a rounding.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::entry::Timestamp;
use crate::money::{Currency, MoneyError};

mod model;
mod scan;

pub use model::*;

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
    /// A value no store of the journal can keep as it is: text with a NUL character (Stripe
    /// never writes one; PostgreSQL's `text` refuses it), an id that is empty or longer than
    /// Stripe's 255 characters (an index entry has a size limit), or a time before 1970 or
    /// after 9999.
    #[error("{id:?}: {reason}")]
    Unstorable {
        /// The fact's id.
        id: String,
        /// Which value, and why.
        reason: String,
    },
}

impl From<serde_json::Error> for ParseError {
    fn from(e: serde_json::Error) -> Self {
        ParseError::Json(e.to_string())
    }
}

impl<'a> StripeObject<'a> {
    /// Sets the field named `key` from its raw JSON value (unknown keys are ignored). The
    /// same fields as the `Deserialize` derive, one member at a time.
    fn fill(&mut self, key: &[u8], v: &'a [u8]) -> Result<(), serde_json::Error> {
        let v = Some(v);
        match key {
            b"id" => self.id = text_field(v)?,
            b"object" => self.object = text_field(v)?,
            b"customer" => self.customer = text_field(v)?,
            b"currency" => self.currency = text_field(v)?,
            b"amount" => {
                self.amount = match v {
                    Some([b'{', ..]) => field(v)?,
                    _ => int_field(v)?.map(AmountField),
                }
            }
            b"status" => self.status = text_field(v)?,
            b"created" => self.created = int_field(v)?,
            b"total" => self.total = int_field(v)?,
            b"tax" => self.tax = int_field(v)?,
            b"total_taxes" => self.total_taxes = nested(v, fast::amount_sum)?,
            b"total_tax_amounts" => self.total_tax_amounts = nested(v, fast::amount_sum)?,
            b"tax_amounts" => self.tax_amounts = nested(v, fast::amount_sum)?,
            b"total_discount_amounts" => {
                self.total_discount_amounts = nested(v, fast::amount_sum)?;
            }
            b"discount_amount" => self.discount_amount = int_field(v)?,
            b"starting_balance" => self.starting_balance = int_field(v)?,
            b"ending_balance" => self.ending_balance = int_field(v)?,
            b"amount_due" => self.amount_due = int_field(v)?,
            b"amount_paid" => self.amount_paid = int_field(v)?,
            b"amount_remaining" => self.amount_remaining = int_field(v)?,
            b"amount_overpaid" => self.amount_overpaid = int_field(v)?,
            b"status_transitions" => {
                self.status_transitions = nested(v, fast::status_transitions)?;
            }
            b"effective_at" => self.effective_at = int_field(v)?,
            b"charge" => self.charge = text_field(v)?,
            b"paid_out_of_band" => self.paid_out_of_band = field(v)?,
            b"invoice" => self.invoice = text_field(v)?,
            b"payment" => self.payment = nested(v, fast::payment)?,
            b"pre_payment_amount" => self.pre_payment_amount = int_field(v)?,
            b"post_payment_amount" => self.post_payment_amount = int_field(v)?,
            b"out_of_band_amount" => self.out_of_band_amount = int_field(v)?,
            b"refunds" => self.refunds = field(v)?,
            b"refund" => self.refund = text_field(v)?,
            b"voided_at" => self.voided_at = int_field(v)?,
            b"destination" => self.destination = text_field(v)?,
            b"reversals" => self.reversals = field(v)?,
            b"payment_intent" => self.payment_intent = text_field(v)?,
            b"latest_charge" => self.latest_charge = text_field(v)?,
            b"balance_transaction" => self.balance_transaction = text_field(v)?,
            _ => {}
        }
        Ok(())
    }
}

/// The raw values of the top-level members [`parse`] reads, of either object kind.
#[derive(Default)]
struct RawTop<'a> {
    id: Option<&'a [u8]>,
    object: Option<&'a [u8]>,
    kind: Option<&'a [u8]>,
    created: Option<&'a [u8]>,
    // balance_transaction
    amount: Option<&'a [u8]>,
    fee: Option<&'a [u8]>,
    net: Option<&'a [u8]>,
    currency: Option<&'a [u8]>,
    available_on: Option<&'a [u8]>,
    status: Option<&'a [u8]>,
    reporting_category: Option<&'a [u8]>,
    source: Option<&'a [u8]>,
    fee_details: Option<&'a [u8]>,
    // event
    account: Option<&'a [u8]>,
    api_version: Option<&'a [u8]>,
}

/// Top level of either object kind, typed.
#[derive(Default)]
struct Top<'a> {
    id: Option<Ref<'a>>,
    kind: Option<Ref<'a>>,
    created: Option<i64>,
    amount: Option<i64>,
    fee: Option<i64>,
    net: Option<i64>,
    currency: Option<Ref<'a>>,
    available_on: Option<i64>,
    status: Option<Ref<'a>>,
    reporting_category: Option<Ref<'a>>,
    source: Option<Ref<'a>>,
    fee_details: Option<Vec<FeeDetail<'a>>>,
    account: Option<Ref<'a>>,
    api_version: Option<Ref<'a>>,
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

impl From<scan::ScanError> for ParseError {
    fn from(e: scan::ScanError) -> Self {
        ParseError::Json(e.to_string())
    }
}

/// How much of an event's `data.object` the rules read, by event type (see
/// [`crate::rules::object_need`]). Ordered: each reads more than the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ObjectNeed {
    /// Nothing: no rule reads this event type.
    Nothing,
    /// The fields that link facts: `id`, `object`, `status`, `customer`, `invoice`,
    /// `payment_intent`, `latest_charge`.
    Links,
    /// Every field of [`StripeObject`].
    All,
}

/// A member's value, typed; `null` is `None`.
fn field<'a, T: Deserialize<'a>>(v: Option<&'a [u8]>) -> Result<Option<T>, serde_json::Error> {
    match v {
        Some(v) => serde_json::from_slice::<Option<T>>(v),
        None => Ok(None),
    }
}

/// A string member's value, borrowed. Fast path for the common case (printable ASCII or
/// UTF-8 text without escapes); everything else (escapes, expanded objects) goes to serde.
#[inline]
fn text_field(v: Option<&[u8]>) -> Result<Option<Ref<'_>>, serde_json::Error> {
    if let Some([b'"', inner @ .., b'"']) = v
        && inner.iter().all(|&c| c >= 0x20 && c != b'\\')
        && let Ok(text) = std::str::from_utf8(inner)
    {
        return Ok(Some(Ref(Cow::Borrowed(text))));
    }
    field(v)
}

/// An integer member's value. Fast path for plain decimal integers of up to 18 digits;
/// everything else (`null`, floats, which are errors, huge numbers) goes to serde.
#[inline]
fn int_field(v: Option<&[u8]>) -> Result<Option<i64>, serde_json::Error> {
    let Some(raw) = v else {
        return Ok(None);
    };
    let (negative, digits) = match raw {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, raw),
    };
    let plain = matches!(digits, [b'0'] | [b'1'..=b'9', ..])
        && digits.len() <= 18
        && digits.iter().all(u8::is_ascii_digit);
    if !plain {
        return field(v);
    }
    let n = digits
        .iter()
        .fold(0_i64, |n, d| n * 10 + i64::from(d - b'0'));
    Ok(Some(if negative { -n } else { n }))
}

/// The plain shapes of the small nested values the rules read, read with the scanner. Each
/// gives `None` for anything else (escaped keys, unexpected types, missing required
/// members), and serde then reads the value (or says what is wrong with it).
mod fast {
    use super::{AmountSum, FeeDetail, PaymentRef, StatusTransitions, int_field, text_field};
    use crate::parse::scan::{Elements, Members};

    /// Calls `each(key, value)` for the members of the object `v`; `None` if `v` is not an
    /// object without escaped keys, or if `each` says so.
    fn members<'a>(v: &'a [u8], mut each: impl FnMut(&[u8], &'a [u8]) -> Option<()>) -> Option<()> {
        let mut m = Members::of(v).ok()??;
        while let Some(k) = m.next_key().ok()? {
            if m.key_escaped() {
                return None;
            }
            each(k, m.value().ok()?)?;
        }
        Some(())
    }

    fn elements<'a>(v: &'a [u8], mut each: impl FnMut(&'a [u8]) -> Option<()>) -> Option<()> {
        let mut e = Elements::of(v).ok()??;
        while let Some(x) = e.next_element().ok()? {
            each(x)?;
        }
        Some(())
    }

    pub(super) fn status_transitions(v: &[u8]) -> Option<StatusTransitions> {
        let mut st = StatusTransitions::default();
        members(v, |k, x| {
            let slot = match k {
                b"finalized_at" => &mut st.finalized_at,
                b"paid_at" => &mut st.paid_at,
                b"voided_at" => &mut st.voided_at,
                b"marked_uncollectible_at" => &mut st.marked_uncollectible_at,
                b"canceled_at" => &mut st.canceled_at,
                _ => return Some(()),
            };
            *slot = int_field(Some(x)).ok()?;
            Some(())
        })?;
        Some(st)
    }

    pub(super) fn payment(v: &[u8]) -> Option<PaymentRef<'_>> {
        let mut p = PaymentRef::default();
        members(v, |k, x| {
            let slot = match k {
                b"type" => &mut p.kind,
                b"charge" => &mut p.charge,
                b"payment_intent" => &mut p.payment_intent,
                b"payment_record" => &mut p.payment_record,
                _ => return Some(()),
            };
            *slot = text_field(Some(x)).ok()?;
            Some(())
        })?;
        Some(p)
    }

    pub(super) fn amount_sum(v: &[u8]) -> Option<AmountSum> {
        let mut sum: i64 = 0;
        elements(v, |item| {
            members(item, |k, x| {
                if k == b"amount" {
                    sum = sum.checked_add(int_field(Some(x)).ok()?.unwrap_or(0))?;
                }
                Some(())
            })
        })?;
        Some(AmountSum(sum))
    }

    pub(super) fn fee_details(v: &[u8]) -> Option<Vec<FeeDetail<'_>>> {
        let mut out = Vec::with_capacity(2);
        elements(v, |item| {
            let (mut amount, mut currency, mut kind) = (None, None, None);
            members(item, |k, x| {
                match k {
                    b"amount" => amount = Some(int_field(Some(x)).ok()??),
                    b"currency" => currency = text_field(Some(x)).ok()?,
                    b"type" => kind = Some(text_field(Some(x)).ok()??),
                    _ => {}
                }
                Some(())
            })?;
            out.push(FeeDetail {
                amount: amount?,
                currency,
                kind: kind?,
            });
            Some(())
        })?;
        Some(out)
    }
}

/// A nested value through its fast reader, else serde.
#[inline]
fn nested<'a, T: Deserialize<'a>>(
    v: Option<&'a [u8]>,
    fast: impl FnOnce(&'a [u8]) -> Option<T>,
) -> Result<Option<T>, serde_json::Error> {
    match v.and_then(fast) {
        Some(x) => Ok(Some(x)),
        None => field(v),
    }
}

/// Parses raw Stripe JSON bytes: an event or a balance transaction.
///
/// See the module documentation for how: one structural scan, and serde only on the members
/// the rules read.
pub fn parse(raw: &[u8]) -> Result<Fact<'_>, ParseError> {
    let hint = peek_type(raw).map_or(ObjectNeed::All, crate::rules::object_need);
    let (fact, need) = parse_as(raw, hint)?;
    match need {
        // The peek was wrong (another key order): read again as the type needs.
        Some(need) if need > hint => parse_as(raw, need).map(|(f, _)| f),
        _ => Ok(fact),
    }
}

/// The value of the last member if it is `"type":"…"` (without escapes), as Stripe writes
/// events; `None` otherwise.
fn peek_type(b: &[u8]) -> Option<&str> {
    let ws = |c: &u8| matches!(c, b' ' | b'\n' | b'\r' | b'\t');
    let trim = |b: &[u8]| -> usize { b.len() - b.iter().rev().take_while(|c| ws(c)).count() };
    let b = b.get(..trim(b))?.strip_suffix(b"}")?;
    let b = b.get(..trim(b))?.strip_suffix(b"\"")?;
    let open = b.iter().rposition(|c| *c == b'"' || *c == b'\\')?;
    if b.get(open) != Some(&b'"') {
        return None;
    }
    let value = b.get(open + 1..)?;
    let b = b.get(..open)?;
    let b = b.get(..trim(b))?.strip_suffix(b":")?;
    let b = b.get(..trim(b))?.strip_suffix(b"\"type\"")?;
    let b = b.get(..trim(b))?;
    if !matches!(b.last(), Some(b',' | b'{')) {
        return None;
    }
    std::str::from_utf8(value).ok()
}

/// Parses with `need` for an event's object; also returns what the event's actual type
/// needs (`None` for balance transactions).
fn parse_as(raw: &[u8], need: ObjectNeed) -> Result<(Fact<'_>, Option<ObjectNeed>), ParseError> {
    let Some(mut members) = scan::Members::of(raw)? else {
        // Valid JSON that is not an object is not a Stripe fact; invalid JSON is malformed.
        serde_json::from_slice::<IgnoredAny>(raw)?;
        return Err(ParseError::UnknownObject(String::new()));
    };
    let mut t = RawTop::default();
    // `Some(Err(()))` once a member of the object did not have the expected JSON type.
    let mut object: Option<Result<Box<StripeObject<'_>>, ()>> = None;
    while let Some(key) = members.next_key()? {
        let unescaped;
        let key = if members.key_escaped() {
            // Stripe never escapes keys; JSON allows it.
            unescaped = scan::unescape(key).unwrap_or_default();
            unescaped.as_bytes()
        } else {
            key
        };
        let slot = match key {
            b"id" => &mut t.id,
            b"object" => &mut t.object,
            b"type" => &mut t.kind,
            b"created" => &mut t.created,
            b"amount" => &mut t.amount,
            b"fee" => &mut t.fee,
            b"net" => &mut t.net,
            b"currency" => &mut t.currency,
            b"available_on" => &mut t.available_on,
            b"status" => &mut t.status,
            b"reporting_category" => &mut t.reporting_category,
            b"source" => &mut t.source,
            b"fee_details" => &mut t.fee_details,
            b"account" => &mut t.account,
            b"api_version" => &mut t.api_version,
            b"data" => {
                if need > ObjectNeed::Nothing
                    && let Some(mut data) = members.enter()?
                {
                    while let Some(k) = data.next_key()? {
                        if scan::key_is(k, "object")
                            && let Some(o) = data.enter()?
                        {
                            object = Some(stripe_object(o, need, &mut data)?);
                        }
                    }
                    members.leave(data)?;
                }
                continue;
            }
            _ => continue,
        };
        *slot = Some(members.value()?);
    }
    members.finish()?;
    let kind_of = |e: serde_json::Error| ParseError::Json(e.to_string());
    match text_field(t.object)
        .map_err(kind_of)?
        .as_ref()
        .map(Ref::as_str)
    {
        Some("balance_transaction") => {
            let top = Top {
                id: text_field(t.id).map_err(kind_of)?,
                kind: text_field(t.kind).map_err(kind_of)?,
                created: int_field(t.created).map_err(kind_of)?,
                amount: int_field(t.amount).map_err(kind_of)?,
                fee: int_field(t.fee).map_err(kind_of)?,
                net: int_field(t.net).map_err(kind_of)?,
                currency: text_field(t.currency).map_err(kind_of)?,
                available_on: int_field(t.available_on).map_err(kind_of)?,
                status: text_field(t.status).map_err(kind_of)?,
                reporting_category: text_field(t.reporting_category).map_err(kind_of)?,
                source: text_field(t.source).map_err(kind_of)?,
                fee_details: nested(t.fee_details, fast::fee_details).map_err(kind_of)?,
                ..Top::default()
            };
            Ok((Fact::BalanceTransaction(balance_transaction(top)?), None))
        }
        Some("event") => {
            let top = Top {
                id: text_field(t.id).map_err(kind_of)?,
                kind: text_field(t.kind).map_err(kind_of)?,
                created: int_field(t.created).map_err(kind_of)?,
                account: text_field(t.account).map_err(kind_of)?,
                api_version: text_field(t.api_version).map_err(kind_of)?,
                ..Top::default()
            };
            let ev = event(top, object.and_then(Result::ok))?;
            let actual = crate::rules::object_need(&ev.kind);
            Ok((Fact::Event(ev), Some(actual)))
        }
        Some(other) => Err(ParseError::UnknownObject(other.to_owned())),
        None => Err(ParseError::UnknownObject(String::new())),
    }
}

/// Reads the members of an event's `data.object` that `need` asks for into a
/// [`StripeObject`]; a member of an unexpected JSON type makes the whole object `Err(())`
/// (the event type then decides: ignored if no rule reads it, an error otherwise). Leaves
/// `outer` after the object.
fn stripe_object<'a>(
    mut o: scan::Members<'a>,
    need: ObjectNeed,
    outer: &mut scan::Members<'a>,
) -> Result<Result<Box<StripeObject<'a>>, ()>, ParseError> {
    let mut obj = Box::<StripeObject<'a>>::default();
    let mut fits = true;
    while let Some(key) = o.next_key()? {
        let unescaped;
        let key = if o.key_escaped() {
            unescaped = scan::unescape(key).unwrap_or_default();
            unescaped.as_bytes()
        } else {
            key
        };
        let links = matches!(
            key,
            b"id"
                | b"object"
                | b"status"
                | b"customer"
                | b"invoice"
                | b"payment_intent"
                | b"latest_charge"
        );
        if !(links || need == ObjectNeed::All) {
            continue;
        }
        let value = o.value()?;
        if fits && obj.fill(key, value).is_err() {
            fits = false;
        }
    }
    outer.leave(o)?;
    Ok(if fits { Ok(obj) } else { Err(()) })
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

fn event<'a>(top: Top<'a>, object: Option<Box<StripeObject<'a>>>) -> Result<Event<'a>, ParseError> {
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
        object,
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

    #[test]
    fn the_scan_reads_what_the_serde_derive_reads() {
        // Every member of the union, in the shapes Stripe sends them (expanded objects,
        // escapes, nulls, lists), read member by member and by the derive: the same object.
        let object = r#"{"id":"in_1","object":"invoice","customer":{"id":"cus_1","object":"customer"},
            "currency":"e\u0075r","amount":{"currency":"eur","value":700},"status":"paid",
            "created":1,"total":1190,"tax":190,"total_taxes":[{"amount":150},{"amount":40}],
            "total_tax_amounts":[{"amount":190,"inclusive":false}],"tax_amounts":[],
            "total_discount_amounts":[{"amount":100,"discount":"di_1"}],"discount_amount":0,
            "starting_balance":-50,"ending_balance":0,"amount_due":1140,"amount_paid":1140,
            "amount_remaining":0,"amount_overpaid":0,
            "status_transitions":{"finalized_at":2,"paid_at":3,"voided_at":null,
              "marked_uncollectible_at":null},
            "effective_at":2,"charge":"ch_1","paid_out_of_band":false,"invoice":"in_0",
            "payment":{"type":"payment_intent","payment_intent":"pi_1","charge":null},
            "pre_payment_amount":0,"post_payment_amount":100,"out_of_band_amount":null,
            "refunds":[{"amount_refunded":100,"refund":"re_1"}],"refund":"re_1","voided_at":null,
            "destination":"acct_1","reversals":{"object":"list","data":[{"id":"trr_1","amount":5}]},
            "payment_intent":"pi_1","latest_charge":"ch_1","balance_transaction":"txn_1",
            "lines":{"data":[{"id":"il_1","amount":1000}]},"name":"caf\u00e9 \"x\" é"}"#;
        let derived: StripeObject<'_> = serde_json::from_str(object).unwrap();
        let event = format!(
            r#"{{"id":"evt_1","object":"event","created":5,"data":{{"object":{object}}},"type":"invoice.paid"}}"#
        );
        let Fact::Event(ev) = parse(event.as_bytes()).unwrap() else {
            panic!("not an event")
        };
        assert_eq!(format!("{:?}", ev.object.unwrap()), format!("{derived:?}"));
    }

    #[test]
    fn events_that_only_link_read_only_the_links() {
        let raw = br#"{"id":"evt_3","object":"event","created":5,"data":{"object":{"id":"ch_1",
            "object":"charge","amount":100,"currency":"usd","payment_intent":"pi_1",
            "status":"succeeded","total":{"odd":1}}},"type":"charge.succeeded"}"#;
        let Fact::Event(ev) = parse(raw).unwrap() else {
            panic!("not an event")
        };
        let o = ev.object.unwrap();
        assert_eq!(text(&o.payment_intent), Some("pi_1"));
        assert_eq!(text(&o.status), Some("succeeded"));
        assert_eq!(
            o.amount, None,
            "not read: no rule of charge.succeeded needs it"
        );
    }

    #[test]
    fn key_order_and_escaped_keys_do_not_matter() {
        // `type` first (nothing to peek at the end), and escaped keys: the same event.
        let a = br#"{"type":"invoice.finalized","id":"evt_4","object":"event","created":5,
            "data":{"object":{"id":"in_1","object":"invoice","total":100}}}"#;
        let b = br#"{"id":"evt_4","obj\u0065ct":"event","created":5,"data":{"object":{"id":"in_1",
            "object":"invoice","tot\u0061l":100}},"type":"invoice.finalized"}"#;
        for raw in [&a[..], &b[..]] {
            let Fact::Event(ev) = parse(raw).unwrap() else {
                panic!("not an event")
            };
            assert_eq!(ev.kind, "invoice.finalized");
            assert_eq!(ev.object.unwrap().total, Some(100));
        }
        assert_eq!(peek_type(b), Some("invoice.finalized"));
        assert_eq!(peek_type(a), None);
        assert_eq!(peek_type(br#"{"type":"x\"y"}"#), None);
    }

    #[test]
    fn unread_bytes_are_delimited_not_validated() {
        // No rule reads customer.created: its object is skipped, not checked (a leading zero,
        // invalid UTF-8), but it must still be closed.
        let ok = b"{\"id\":\"evt_5\",\"object\":\"event\",\"created\":5,\"data\":{\"object\":{\"x\":01,\"y\":\"\xff\"}},\"type\":\"customer.created\"}";
        let Fact::Event(ev) = parse(ok).unwrap() else {
            panic!("not an event")
        };
        assert!(ev.object.is_none());
        let broken = br#"{"id":"evt_5","object":"event","created":5,"data":{"object":{"x":[1}},"type":"customer.created"}"#;
        assert!(matches!(parse(broken), Err(ParseError::Json(_))));
        // What a rule reads is checked in full.
        let bad_text = b"{\"id\":\"evt_6\",\"object\":\"event\",\"created\":5,\"type\":\"x\xff\"}";
        assert!(matches!(parse(bad_text), Err(ParseError::Json(_))));
    }
}
