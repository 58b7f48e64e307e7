//! Money: currencies with Stripe's exponents, amounts that never mix currencies.
//!
//! Stripe sends every amount as an integer in the currency's *minor unit* as Stripe defines it
//! (which is not always ISO 4217's). [`Currency::exponent`] is that definition; see
//! `docs/money.md` for the table, the special cases and why no rounding happens anywhere.
//!
//! [`Money`] keeps the integer minor units (exact, cheap to add) and converts to and from
//! [`rust_decimal::Decimal`] in the major unit without loss. Arithmetic is checked: mixing
//! currencies or overflowing is a typed [`MoneyError`], never a panic.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A currency as Stripe names it: three ASCII letters, stored lowercase (`usd`, `jpy`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

/// Errors from money arithmetic and conversion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not three ASCII letters.
    #[error("invalid currency code {0:?}: expected three ASCII letters")]
    InvalidCurrency(String),
    /// Two amounts in different currencies were combined.
    #[error("cannot combine {left} with {right}")]
    CurrencyMismatch {
        /// Currency of the left operand.
        left: Currency,
        /// Currency of the right operand.
        right: Currency,
    },
    /// The decimal has more fractional digits than the currency's minor unit.
    #[error("{value} {currency} is not a whole number of minor units (exponent {exponent})")]
    NotRepresentable {
        /// The value that was offered.
        value: Decimal,
        /// Its currency.
        currency: Currency,
        /// The currency's exponent.
        exponent: u32,
    },
    /// The result does not fit in 64-bit minor units.
    #[error("amount overflows 64-bit minor units in {0}")]
    Overflow(Currency),
}

/// Stripe's zero-decimal currencies (docs.stripe.com/currencies): the integer is the major unit.
const ZERO_DECIMAL: &[&str] = &[
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "vnd", "vuv", "xaf",
    "xof", "xpf",
];

/// Stripe's three-decimal currencies.
const THREE_DECIMAL: &[&str] = &["bhd", "jod", "kwd", "omr", "tnd"];

/// Currencies whose Stripe amounts keep two decimals on the wire although only whole units
/// can be charged (amounts are multiples of 100).
const WHOLE_UNITS_ON_TWO_DECIMAL_WIRE: &[&str] = &["isk", "ugx"];

/// Currencies that charge in two decimals but pay out manually in whole units only.
const WHOLE_UNIT_PAYOUTS: &[&str] = &["huf", "twd"];

impl Currency {
    /// Parses a three-letter code, case-insensitively (`"USD"` and `"usd"` are the same).
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        let bytes = code.as_bytes();
        match bytes {
            [a, b, c] if bytes.iter().all(u8::is_ascii_alphabetic) => Ok(Self([
                a.to_ascii_lowercase(),
                b.to_ascii_lowercase(),
                c.to_ascii_lowercase(),
            ])),
            _ => Err(MoneyError::InvalidCurrency(code.to_owned())),
        }
    }

    /// The lowercase code, as Stripe writes it.
    pub fn code(&self) -> &str {
        // Only ASCII letters are ever stored (see `parse`), so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }

    /// Digits after the decimal point in Stripe's integer amounts for this currency:
    /// 0 for zero-decimal currencies (JPY, KRW, …), 3 for three-decimal ones (KWD, BHD, …),
    /// 2 for every other currency, including ISK and UGX, which Stripe still sends with two
    /// decimals (500 = 5 ISK) although only whole units can be charged.
    pub fn exponent(&self) -> u32 {
        let code = self.code();
        if ZERO_DECIMAL.contains(&code) {
            0
        } else if THREE_DECIMAL.contains(&code) {
            3
        } else {
            2
        }
    }

    /// True where Stripe charges only whole units although the wire keeps two decimals
    /// (ISK, UGX: amounts are multiples of 100). Informative: the ledger records whatever
    /// Stripe settled and never rounds.
    pub fn whole_units_only(&self) -> bool {
        WHOLE_UNITS_ON_TWO_DECIMAL_WIRE.contains(&self.code())
    }

    /// True where manual payouts must be whole units (HUF, TWD). Informative.
    pub fn whole_unit_payouts(&self) -> bool {
        WHOLE_UNIT_PAYOUTS.contains(&self.code()) || self.whole_units_only()
    }

    /// Converts Stripe's integer minor units to the major unit, exactly (`1050` USD → `10.50`).
    pub fn minor_to_decimal(&self, minor: i64) -> Decimal {
        Decimal::new(minor, self.exponent())
    }

    /// Converts a major-unit decimal to Stripe's integer minor units, exactly, or fails if the
    /// value has digits below the minor unit (`0.001` USD) or does not fit in an `i64`.
    pub fn decimal_to_minor(&self, value: Decimal) -> Result<i64, MoneyError> {
        let exponent = self.exponent();
        let not_representable = || MoneyError::NotRepresentable {
            value,
            currency: *self,
            exponent,
        };
        let mantissa = value.mantissa();
        let scale = value.scale();
        let minor: i128 = if scale <= exponent {
            let factor = 10_i128.pow(exponent - scale);
            mantissa
                .checked_mul(factor)
                .ok_or(MoneyError::Overflow(*self))?
        } else {
            let divisor = 10_i128.pow(scale - exponent);
            if mantissa % divisor != 0 {
                return Err(not_representable());
            }
            mantissa / divisor
        };
        i64::try_from(minor).map_err(|_| MoneyError::Overflow(*self))
    }
}

impl fmt::Display for Currency {
    /// Upper case, as accountants write it (`USD`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{}", char::from(b.to_ascii_uppercase()))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An amount of one currency. Signed: in a journal line, positive is a debit and negative a
/// credit. Stored as exact integer minor units; [`Money::amount`] gives the `Decimal`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    currency: Currency,
    minor: i64,
}

impl Money {
    /// From Stripe's integer minor units (`Money::from_minor(usd, 1050)` is 10.50 USD).
    pub fn from_minor(currency: Currency, minor: i64) -> Self {
        Self { currency, minor }
    }

    /// From a major-unit decimal; fails rather than round.
    pub fn from_decimal(currency: Currency, amount: Decimal) -> Result<Self, MoneyError> {
        Ok(Self {
            currency,
            minor: currency.decimal_to_minor(amount)?,
        })
    }

    /// Zero of a currency.
    pub fn zero(currency: Currency) -> Self {
        Self { currency, minor: 0 }
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// Stripe's integer minor units.
    pub fn minor(&self) -> i64 {
        self.minor
    }

    /// The amount in the major unit, at the currency's scale (`10.50`, `500`, `1.250`).
    pub fn amount(&self) -> Decimal {
        self.currency.minor_to_decimal(self.minor)
    }

    /// True for zero.
    pub fn is_zero(&self) -> bool {
        self.minor == 0
    }

    /// Sum of two amounts of the same currency.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            });
        }
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow(self.currency))?;
        Ok(Money { minor, ..self })
    }

    /// Difference of two amounts of the same currency.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.checked_add(other.checked_neg()?)
    }

    /// The opposite amount.
    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        let minor = self
            .minor
            .checked_neg()
            .ok_or(MoneyError::Overflow(self.currency))?;
        Ok(Money { minor, ..self })
    }
}

impl fmt::Display for Money {
    /// `10.50 USD`, `-500 JPY`, `1.250 KWD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount(), self.currency)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Money {
    /// `{"currency":"usd","amount":"10.50"}`: the decimal as a string, never a float.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Money", 2)?;
        st.serialize_field("currency", &self.currency)?;
        st.serialize_field("amount", &self.amount())?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn cur(s: &str) -> Currency {
        Currency::parse(s).unwrap()
    }

    #[test]
    fn exponents_follow_stripe() {
        assert_eq!(cur("usd").exponent(), 2);
        assert_eq!(cur("JPY").exponent(), 0);
        assert_eq!(cur("krw").exponent(), 0);
        assert_eq!(cur("kwd").exponent(), 3);
        assert_eq!(cur("isk").exponent(), 2);
        assert_eq!(cur("ugx").exponent(), 2);
        assert_eq!(cur("huf").exponent(), 2);
        assert!(cur("isk").whole_units_only());
        assert!(cur("huf").whole_unit_payouts());
        assert!(!cur("usd").whole_unit_payouts());
    }

    #[test]
    fn conversions_are_exact() {
        assert_eq!(cur("usd").minor_to_decimal(1050).to_string(), "10.50");
        assert_eq!(cur("jpy").minor_to_decimal(500).to_string(), "500");
        assert_eq!(cur("kwd").minor_to_decimal(5120).to_string(), "5.120");
        assert_eq!(cur("isk").minor_to_decimal(500).to_string(), "5.00");
        let d = Decimal::from_str("10.5").unwrap();
        assert_eq!(cur("usd").decimal_to_minor(d), Ok(1050));
        assert_eq!(cur("jpy").decimal_to_minor(Decimal::from(500)), Ok(500));
        let too_fine = Decimal::from_str("0.001").unwrap();
        assert!(matches!(
            cur("usd").decimal_to_minor(too_fine),
            Err(MoneyError::NotRepresentable { .. })
        ));
        let trailing_zero = Decimal::from_str("1.2500").unwrap();
        assert_eq!(cur("kwd").decimal_to_minor(trailing_zero), Ok(1250));
        let huge = Decimal::from_str("99999999999999999999").unwrap();
        assert!(matches!(
            cur("usd").decimal_to_minor(huge),
            Err(MoneyError::Overflow(_))
        ));
    }

    #[test]
    fn money_refuses_to_mix() {
        let a = Money::from_minor(cur("usd"), 100);
        let b = Money::from_minor(cur("eur"), 100);
        assert!(matches!(
            a.checked_add(b),
            Err(MoneyError::CurrencyMismatch { .. })
        ));
        assert_eq!(a.checked_add(a).unwrap().minor(), 200);
        assert!(
            Money::from_minor(cur("usd"), i64::MIN)
                .checked_neg()
                .is_err()
        );
        assert_eq!(a.to_string(), "1.00 USD");
    }

    #[test]
    fn bad_codes_are_errors() {
        assert!(Currency::parse("us").is_err());
        assert!(Currency::parse("u$d").is_err());
        assert!(Currency::parse("dollar").is_err());
        assert_eq!(cur("UsD").code(), "usd");
        assert_eq!(cur("usd").to_string(), "USD");
    }
}
