//! The cells a set of postings adds to, computed in the builder instead of in SQL: the same
//! roll-up as the SQL function `ledger_cells_add` (migration `20261123000300`), which stays the
//! reference (a test checks both give the same cells). Grouping ~50k postings into their cells
//! took PostgreSQL about as long as upserting the cells; here it is a hash map.
//!
//! A posting of key K effective at E, recorded at R, adds its amount to eight cells: the
//! minute, hour, day and month of E recorded exactly at R (tier `r`), and the day and month of
//! E recorded in R's UTC day (tier `D`, `recorded` = the day's start) and R's UTC month (tier
//! `M`). All buckets are UTC.

use std::collections::HashMap;

use chrono::{DateTime, Timelike as _, Utc};
use rust_decimal::Decimal;

/// One cell's share of a build: its key (`ledger_balance_cells` columns) and the amount to add.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CellKey {
    pub key_id: i64,
    /// `m` month, `d` day, `h` hour, `i` minute of effective time.
    pub grain: u8,
    /// `r` one recording, `D` a UTC day of recording, `M` a UTC month of recording.
    pub tier: u8,
    pub bucket: DateTime<Utc>,
    pub recorded: DateTime<Utc>,
}

/// The cells of a build, each with the sum of its postings, split by the index they go to and
/// sorted in its order (consecutive upserts then land on the same leaf pages): month cells by
/// (key, tier, recorded, bucket), the others by (key, grain, tier, bucket, recorded).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Cells {
    pub month: Vec<(CellKey, Decimal)>,
    pub other: Vec<(CellKey, Decimal)>,
}

/// Start of the UTC minute, hour, day and month of `t`.
fn truncations(t: DateTime<Utc>) -> [DateTime<Utc>; 4] {
    let (month, day, hour) = crate::balances::buckets(t);
    let minute = hour + chrono::Duration::minutes(i64::from(t.minute()));
    [minute, hour, day, month]
}

/// The cells of `postings` (key id, effective, recorded, amount).
pub fn derive(
    postings: impl IntoIterator<Item = (i64, DateTime<Utc>, DateTime<Utc>, Decimal)>,
) -> Cells {
    let mut sums: HashMap<CellKey, Decimal> = HashMap::new();
    for (key_id, effective, recorded, amount) in postings {
        let [minute, hour, day, month] = truncations(effective);
        let [_, _, rec_day, rec_month] = truncations(recorded);
        let cells = [
            (b'i', b'r', minute, recorded),
            (b'h', b'r', hour, recorded),
            (b'd', b'r', day, recorded),
            (b'm', b'r', month, recorded),
            (b'd', b'D', day, rec_day),
            (b'd', b'M', day, rec_month),
            (b'm', b'D', month, rec_day),
            (b'm', b'M', month, rec_month),
        ];
        for (grain, tier, bucket, recorded) in cells {
            let key = CellKey {
                key_id,
                grain,
                tier,
                bucket,
                recorded,
            };
            *sums.entry(key).or_default() += amount;
        }
    }
    let (mut month, mut other): (Vec<_>, Vec<_>) =
        sums.into_iter().partition(|(k, _)| k.grain == b'm');
    month.sort_unstable_by(|(a, _), (b, _)| {
        (a.key_id, a.tier, a.recorded, a.bucket).cmp(&(b.key_id, b.tier, b.recorded, b.bucket))
    });
    other.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
    Cells { month, other }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_posting_adds_to_its_eight_cells() {
        let eff = t("2026-03-03T17:45:12.5Z");
        let rec = t("2026-04-02T08:00:00.123456Z");
        let c = derive([(7, eff, rec, Decimal::new(1086, 2))]);
        assert_eq!(c.month.len() + c.other.len(), 8);
        let find = |grain: u8, tier: u8| {
            c.month
                .iter()
                .chain(&c.other)
                .find(|(k, _)| k.grain == grain && k.tier == tier)
                .map(|(k, a)| (k.bucket, k.recorded, *a))
                .unwrap()
        };
        let amount = Decimal::new(1086, 2);
        assert_eq!(find(b'i', b'r'), (t("2026-03-03T17:45:00Z"), rec, amount));
        assert_eq!(find(b'h', b'r'), (t("2026-03-03T17:00:00Z"), rec, amount));
        assert_eq!(find(b'd', b'r'), (t("2026-03-03T00:00:00Z"), rec, amount));
        assert_eq!(find(b'm', b'r'), (t("2026-03-01T00:00:00Z"), rec, amount));
        assert_eq!(
            find(b'd', b'D'),
            (t("2026-03-03T00:00:00Z"), t("2026-04-02T00:00:00Z"), amount)
        );
        assert_eq!(
            find(b'd', b'M'),
            (t("2026-03-03T00:00:00Z"), t("2026-04-01T00:00:00Z"), amount)
        );
        assert_eq!(
            find(b'm', b'D'),
            (t("2026-03-01T00:00:00Z"), t("2026-04-02T00:00:00Z"), amount)
        );
        assert_eq!(
            find(b'm', b'M'),
            (t("2026-03-01T00:00:00Z"), t("2026-04-01T00:00:00Z"), amount)
        );
    }

    #[test]
    fn postings_of_one_cell_are_summed_and_cells_come_in_index_order() {
        let rec1 = t("2026-04-02T08:00:00Z");
        let rec2 = t("2026-04-02T09:00:00Z");
        let c = derive([
            (2, t("2026-03-03T17:45:12Z"), rec1, Decimal::new(5, 0)),
            (1, t("2026-03-03T17:45:59Z"), rec1, Decimal::new(-2, 0)),
            (2, t("2026-03-03T17:45:01Z"), rec1, Decimal::new(7, 0)),
            (2, t("2026-03-03T17:46:00Z"), rec2, Decimal::new(1, 0)),
        ]);
        // key 2's minute 17:45 at rec1 holds 5 + 7
        let minute = c
            .other
            .iter()
            .find(|(k, _)| k.key_id == 2 && k.grain == b'i' && k.recorded == rec1)
            .unwrap();
        assert_eq!(minute.1, Decimal::new(12, 0));
        // key 2's month, recorded in April (tier M): all three of its postings
        let month = c
            .month
            .iter()
            .find(|(k, _)| k.key_id == 2 && k.tier == b'M')
            .unwrap();
        assert_eq!(month.1, Decimal::new(13, 0));
        let sorted_other = c.other.windows(2).all(|w| w[0].0 < w[1].0);
        let sorted_month = c.month.windows(2).all(|w| {
            let (a, b) = (&w[0].0, &w[1].0);
            (a.key_id, a.tier, a.recorded, a.bucket) < (b.key_id, b.tier, b.recorded, b.bucket)
        });
        assert!(sorted_other && sorted_month);
        assert!(c.month.iter().all(|(k, _)| k.grain == b'm'));
        assert!(c.other.iter().all(|(k, _)| k.grain != b'm'));
    }
}
