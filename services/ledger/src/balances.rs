//! As-of balances in PostgreSQL from the balance cells (migration `20261122000600`), on both
//! time axes; [`crate::store::PgStore`] answers `Store::balances` with them.
//!
//! A balance key is (ledger, account, currency). For an effective time E and a recorded time R
//! (either may be absent) its balance is the sum of
//!
//! - the month cells before E's month, the day cells from E's month up to E's day, the hour
//!   cells from E's day up to E's hour,
//! - the lines of the ledger's entries effective in [E's hour, E], read from the journal,
//!
//! each restricted to what was recorded at or before R: for month and day cells, whole
//! recording months before R's month, whole recording days of R's month before R's day, and
//! single recordings (writer transactions) from R's day up to R. A cell never straddles a
//! bound, so both axes are exact; the cost is a few index ranges per key, independent of the
//! number of journal lines and recordings behind them (see the `asof` example for numbers).

use chrono::{DateTime, Datelike as _, TimeZone as _, Timelike as _, Utc};
use sqlx::{PgExecutor, Row};

pub use crate::store::{BalanceQuery, BalanceRow};

/// Start of the UTC month, day and hour of `t`.
fn buckets(t: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>, DateTime<Utc>) {
    let day = Utc
        .with_ymd_and_hms(t.year(), t.month(), t.day(), 0, 0, 0)
        .single()
        .unwrap_or(t);
    let month = Utc
        .with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(day);
    let hour = day + chrono::Duration::hours(i64::from(t.hour()));
    (month, day, hour)
}

/// The SQL for a query shape (which filters and bounds are present), with numbered
/// placeholders: $1 ledger, $2 account, $3 currency (only when present), then the bounds.
/// The partial hour reads each entry's lines by primary key only (`OFFSET 0` keeps the planner
/// from combining it with the account index, which for a busy account is millions of rows).
fn sql(q: &BalanceQuery) -> String {
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    let mut keys = Vec::new();
    if !q.ledger.is_empty() {
        keys.push(format!("k.ledger = {}", next()));
    }
    if !q.account.is_empty() {
        keys.push(format!("k.account = {}", next()));
    }
    if !q.currency.is_empty() {
        keys.push(format!("k.currency = {}", next()));
    }
    let (e, month, day, hour) = if q.effective_as_of.is_some() {
        (next(), next(), next(), next())
    } else {
        Default::default()
    };
    let rec = q.recorded_as_of.map(|_| (next(), next(), next()));
    // The cells of one grain within `bucket`, recorded at or before R: whole recording months
    // before R's month (tier M), whole days of R's month before R's day (tier D), single
    // recordings from R's day up to R (tier r). Without R, tier M holds every recording.
    let cells = |grain: &str, bucket: &str| -> Vec<String> {
        let from = format!(
            "SELECT c.amount FROM ledger_balance_cells c WHERE c.account = k.account \
             AND c.currency = k.currency AND c.ledger = k.ledger AND c.grain = '{grain}'{bucket}"
        );
        match &rec {
            None => vec![format!("{from} AND c.tier = 'M'")],
            Some((r, r_month, r_day)) => vec![
                format!("{from} AND c.tier = 'M' AND c.recorded < {r_month}"),
                format!(
                    "{from} AND c.tier = 'D' AND c.recorded >= {r_month} AND c.recorded < {r_day}"
                ),
                format!("{from} AND c.tier = 'r' AND c.recorded >= {r_day} AND c.recorded <= {r}"),
            ],
        }
    };
    let mut parts = Vec::new();
    if q.effective_as_of.is_some() {
        parts.extend(cells("m", &format!(" AND c.bucket < {month}")));
        parts.extend(cells(
            "d",
            &format!(" AND c.bucket >= {month} AND c.bucket < {day}"),
        ));
        let (rec_cell, rec_entry) = match &rec {
            Some((r, _, _)) => (
                format!(" AND c.recorded <= {r}"),
                format!(" AND e.recorded_at <= {r}"),
            ),
            None => (String::new(), String::new()),
        };
        parts.push(format!(
            "SELECT c.amount FROM ledger_balance_cells c WHERE c.account = k.account \
             AND c.currency = k.currency AND c.ledger = k.ledger AND c.grain = 'h' \
             AND c.tier = 'r' AND c.bucket >= {day} AND c.bucket < {hour}{rec_cell}"
        ));
        parts.push(format!(
            "SELECT l.amount FROM journal_entries e \
             CROSS JOIN LATERAL (SELECT j.account, j.currency, j.amount FROM journal_lines j \
                                  WHERE j.entry_id = e.entry_id OFFSET 0) l \
             WHERE e.ledger = k.ledger AND e.effective_at >= {hour} AND e.effective_at <= {e}\
             {rec_entry} AND l.account = k.account AND l.currency = k.currency"
        ));
    } else {
        parts.extend(cells("m", ""));
    }
    let parts = parts.join(" UNION ALL ");
    let filter = if keys.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", keys.join(" AND "))
    };
    format!(
        "SELECT k.ledger, k.account, k.currency, b.amount FROM \
           (SELECT * FROM ledger_balance_keys k {filter}) k \
         CROSS JOIN LATERAL (SELECT coalesce(sum(x.amount), 0) AS amount FROM ({parts}) x) b \
         WHERE b.amount <> 0 ORDER BY 1, 3, 2"
    )
}

/// The non-zero balances matching `q`, ordered by ledger, currency, account.
pub async fn balances<'e, E: PgExecutor<'e>>(
    exec: E,
    q: &BalanceQuery,
) -> Result<Vec<BalanceRow>, sqlx::Error> {
    let sql = sql(q);
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for s in [&q.ledger, &q.account, &q.currency] {
        if !s.is_empty() {
            query = query.bind(s);
        }
    }
    if let Some(e) = q.effective_as_of {
        let (month, day, hour) = buckets(e);
        query = query.bind(e).bind(month).bind(day).bind(hour);
    }
    if let Some(r) = q.recorded_as_of {
        let (month, day, _) = buckets(r);
        query = query.bind(r).bind(month).bind(day);
    }
    query
        .fetch_all(exec)
        .await?
        .iter()
        .map(|r| {
            Ok(BalanceRow {
                ledger: r.try_get(0)?,
                account: r.try_get(1)?,
                currency: r.try_get(2)?,
                amount: r.try_get(3)?,
            })
        })
        .collect()
}

/// Whether the journal has any line in `currency`.
pub async fn currency_seen<'e, E: PgExecutor<'e>>(
    exec: E,
    currency: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM ledger_balance_keys WHERE currency = $1)")
        .bind(currency)
        .fetch_one(exec)
        .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn buckets_are_utc_month_day_hour_starts() {
        let t = Utc.with_ymd_and_hms(2026, 3, 3, 17, 45, 12).unwrap();
        let (m, d, h) = buckets(t);
        assert_eq!(m, Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap());
        assert_eq!(d, Utc.with_ymd_and_hms(2026, 3, 3, 0, 0, 0).unwrap());
        assert_eq!(h, Utc.with_ymd_and_hms(2026, 3, 3, 17, 0, 0).unwrap());
    }

    #[test]
    fn placeholders_are_numbered_in_bind_order() {
        let q = BalanceQuery {
            ledger: "acct_1".into(),
            currency: "usd".into(),
            effective_as_of: Some(Utc::now()),
            recorded_as_of: Some(Utc::now()),
            ..Default::default()
        };
        let s = sql(&q);
        assert!(s.contains("k.ledger = $1 AND k.currency = $2"), "{s}");
        assert!(s.contains("e.effective_at <= $3"), "{s}");
        assert!(s.contains("c.bucket < $4"), "{s}");
        assert!(s.contains("c.recorded <= $7"), "{s}");
        assert!(s.contains("c.recorded >= $8 AND c.recorded < $9"), "{s}");
        assert!(!s.contains("$10"), "{s}");
    }
}
