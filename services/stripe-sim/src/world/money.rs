//! Currencies, integer rounding, exchange rates, Stripe's fee schedule and settlement dates.
//! Everything is integer minor units; the only non-integer thing is the printed
//! `exchange_rate`, written from an integer rate in parts per billion.

use std::fmt::Write as _;

/// A currency the world uses. `exp` is the minor-unit exponent Stripe uses (§6 of the
/// reference: JPY 0, KWD 3, others 2); `step` is the smallest amount Stripe accepts in minor
/// units (KWD must end in 0, so 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cur {
    pub(crate) code: &'static str,
    pub(crate) exp: u32,
    pub(crate) step: i64,
    /// USD value of one major unit, in parts per billion (the mid rate on the first day).
    pub(crate) usd_nano: i64,
    /// Presentment weight (per mille of charges and customers).
    pub(crate) weight: u64,
}

pub(crate) const USD: usize = 0;
pub(crate) const EUR: usize = 1;

/// Presentment currencies. USD and EUR are also balance (settlement) currencies of the
/// platform; the others settle into USD with an `exchange_rate`.
pub(crate) const CURRENCIES: [Cur; 6] = [
    Cur {
        code: "usd",
        exp: 2,
        step: 1,
        usd_nano: 1_000_000_000,
        weight: 520,
    },
    Cur {
        code: "eur",
        exp: 2,
        step: 1,
        usd_nano: 1_084_000_000,
        weight: 200,
    },
    Cur {
        code: "gbp",
        exp: 2,
        step: 1,
        usd_nano: 1_271_500_000,
        weight: 100,
    },
    Cur {
        code: "jpy",
        exp: 0,
        step: 1,
        usd_nano: 6_712_000,
        weight: 70,
    },
    Cur {
        code: "cad",
        exp: 2,
        step: 1,
        usd_nano: 731_200_000,
        weight: 70,
    },
    Cur {
        code: "kwd",
        exp: 3,
        step: 10,
        usd_nano: 3_254_100_000,
        weight: 40,
    },
];

pub(crate) fn cur_weights() -> [u64; 6] {
    let mut w = [0u64; 6];
    for (i, c) in CURRENCIES.iter().enumerate() {
        w[i] = c.weight;
    }
    w
}

pub(crate) fn pow10(e: u32) -> i128 {
    10i128.pow(e)
}

/// `n / d` rounded half to even (`d > 0`).
pub(crate) fn div_half_even(n: i128, d: i128) -> i128 {
    let q = n.div_euclid(d);
    let r = n.rem_euclid(d);
    let twice = r * 2;
    if twice > d || (twice == d && q % 2 != 0) {
        q + 1
    } else {
        q
    }
}

pub(crate) fn to_i64(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// `amount × num / den`, rounded half-even to a multiple of the currency's `step`.
pub(crate) fn scale_step(amount: i64, num: i64, den: i64, step: i64) -> i64 {
    let n = i128::from(amount) * i128::from(num);
    let d = i128::from(den) * i128::from(step);
    to_i64(div_half_even(n, d) * i128::from(step))
}

/// Converts `amount` minor units of `from` into minor units of `to` at `rate_nano` (units of
/// `to` per unit of `from`, major units, × 1e9), rounded half-even.
pub(crate) fn convert(amount: i64, from: &Cur, to: &Cur, rate_nano: i64) -> i64 {
    let n = i128::from(amount) * i128::from(rate_nano) * pow10(to.exp);
    let d = pow10(from.exp) * 1_000_000_000;
    to_i64(div_half_even(n, d))
}

/// The rate from `from` to `to` (× 1e9) given both currencies' USD rates, rounded to
/// 6 significant decimals the way Stripe prints them.
pub(crate) fn cross_rate(from_usd_nano: i64, to_usd_nano: i64) -> i64 {
    let raw = div_half_even(
        i128::from(from_usd_nano) * 1_000_000_000,
        i128::from(to_usd_nano.max(1)),
    );
    // keep 6 significant digits
    let mut digits = 0u32;
    let mut x = raw;
    while x > 0 {
        digits += 1;
        x /= 10;
    }
    if digits > 6 {
        let unit = pow10(digits - 6);
        to_i64(div_half_even(raw, unit) * unit)
    } else {
        to_i64(raw)
    }
}

/// Renders a rate in parts per billion as a JSON number (no float arithmetic).
pub(crate) fn write_rate(out: &mut String, rate_nano: i64) {
    let int = rate_nano / 1_000_000_000;
    let mut frac = rate_nano % 1_000_000_000;
    let _ = write!(out, "{int}");
    if frac != 0 {
        let mut width = 9;
        while frac % 10 == 0 {
            frac /= 10;
            width -= 1;
        }
        let _ = write!(out, ".{frac:0width$}");
    }
}

/// Stripe's processing fee on a card payment, in the settlement currency: 2.9 % + 30¢ (25¢
/// in EUR), plus 1.5 % for a payment presented in another currency (international/conversion),
/// rounded half-even.
pub(crate) fn stripe_fee(settled: i64, settle: &Cur, converted: bool) -> i64 {
    let bps = if converted { 440 } else { 290 };
    let fixed = if settle.code == "eur" { 25 } else { 30 };
    scale_step(settled, bps, 10_000, 1) + fixed
}

/// Tax on Stripe's fees (VAT, 20 %) charged on EUR-settled payments.
pub(crate) fn fee_tax(fee: i64) -> i64 {
    scale_step(fee, 20, 100, 1)
}

/// The dispute fee, 15.00 in the settlement currency (USD and EUR are both 2-decimal).
pub(crate) const DISPUTE_FEE: i64 = 1500;

pub(crate) const DAY: i64 = 86_400;

/// 0 = Sunday … 6 = Saturday.
pub(crate) fn weekday(t: i64) -> i64 {
    (t.div_euclid(DAY) + 4).rem_euclid(7)
}

pub(crate) fn is_business_day(t: i64) -> bool {
    let w = weekday(t);
    w != 0 && w != 6
}

pub(crate) fn midnight(t: i64) -> i64 {
    t.div_euclid(DAY) * DAY
}

/// `available_on` of a payment created at `t`: midnight UTC after `n` business days.
pub(crate) fn add_business_days(t: i64, n: u32) -> i64 {
    let mut d = midnight(t);
    let mut left = n;
    while left > 0 {
        d += DAY;
        if is_business_day(d) {
            left -= 1;
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_even() {
        assert_eq!(div_half_even(5, 2), 2);
        assert_eq!(div_half_even(7, 2), 4);
        assert_eq!(div_half_even(-5, 2), -2);
        assert_eq!(div_half_even(-7, 2), -4);
        assert_eq!(div_half_even(10, 3), 3);
        assert_eq!(scale_step(5124, 1, 1, 10), 5120);
        assert_eq!(scale_step(5125, 1, 1, 10), 5120);
        assert_eq!(scale_step(5135, 1, 1, 10), 5140);
    }

    #[test]
    fn conversions_respect_exponents() {
        let jpy = &CURRENCIES[3];
        let usd = &CURRENCIES[0];
        let kwd = &CURRENCIES[5];
        // 1000 JPY at 0.006712 = 6.712 USD = 671 cents
        assert_eq!(convert(1000, jpy, usd, 6_712_000), 671);
        // 5.120 KWD at 3.2541 = 16.66 USD
        assert_eq!(convert(5120, kwd, usd, 3_254_100_000), 1666);
        let mut s = String::new();
        write_rate(&mut s, 6_712_000);
        assert_eq!(s, "0.006712");
        s.clear();
        write_rate(&mut s, 1_000_000_000);
        assert_eq!(s, "1");
        assert_eq!(cross_rate(1_084_000_000, 1_000_000_000), 1_084_000_000);
    }

    #[test]
    fn business_days() {
        // 2026-01-02 is a Friday; +2 business days = Tuesday 2026-01-06 00:00 UTC.
        let fri = 1_767_225_600 + DAY + 3600;
        assert_eq!(weekday(fri), 5);
        assert_eq!(add_business_days(fri, 2), 1_767_225_600 + 5 * DAY);
    }
}
