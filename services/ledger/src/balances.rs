//! As-of balances in PostgreSQL from the balance cells (migration `20261122000600`), on both
//! time axes; [`crate::store::PgStore`] answers `Store::balances` with them.
//!
//! A balance key is (ledger, account, currency). For an effective time E and a recorded time R
//! (either may be absent) its balance is the sum of
//!
//! - the month cells before E's month, the day cells from E's month up to E's day, the hour
//!   cells from E's day up to E's hour, the minute cells from E's hour up to E's minute
//!   (migration `20261122000900`),
//! - the postings still queued for the cells (`ledger_cells_pending`, migration
//!   `20261123000100`: the writer queues them, [`crate::cells`] builds them) effective before
//!   E's minute,
//! - the lines of the ledger's entries effective in [E's minute, E], read from the journal,
//!
//! each restricted to what was recorded at or before R: for month and day cells, whole
//! recording months before R's month, whole recording days of R's month before R's day, and
//! single recordings (writer transactions) from R's day up to R. A cell never straddles a
//! bound and a posting is in its cells or in the queue, never both, so both axes are exact; the
//! cost is a few adjacent index ranges per key plus one minute of one ledger's entries,
//! independent of the number of journal lines and recordings behind them (see the `asof`
//! example for numbers), plus one pass over the queue per query. The built part of one key is
//! the SQL function `ledger_balance_built`; `ledger_balance` is one key's whole balance for
//! ad-hoc SQL.

use chrono::{DateTime, Datelike as _, TimeZone as _, Timelike as _, Utc};
use sqlx::{PgExecutor, Row};

pub use crate::store::{BalanceQuery, BalanceRow};

/// Start of the UTC month, day and hour of `t` (also the cells' buckets, [`crate::cells::derive`]).
pub(crate) fn buckets(t: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>, DateTime<Utc>) {
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

/// The SQL for a key filter (which of ledger, account, currency are given): placeholders $1..
/// for the given ones, then seven for [`bounds`]. Each key's balance is what its cells say (the
/// `ledger_balance_built` function of migration `20261123000100`, which derives E's minute
/// itself; the session prepares its plan once) plus its postings still queued for the cells,
/// summed once for all keys.
fn sql(q: &BalanceQuery) -> String {
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    let (mut keys, mut queued) = (Vec::new(), Vec::new());
    for (column, given) in [
        ("ledger", &q.ledger),
        ("account", &q.account),
        ("currency", &q.currency),
    ] {
        if !given.is_empty() {
            let p = next();
            keys.push(format!("k.{column} = {p}"));
            queued.push(format!(" AND p.{column} = {p}"));
        }
    }
    let filter = if keys.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", keys.join(" AND "))
    };
    let args: Vec<String> = (0..7).map(|_| next()).collect();
    let (e, r) = (&args[0], &args[4]);
    format!(
        "WITH queued AS ( \
           SELECT p.ledger, p.account, p.currency, sum(p.amount) AS amount \
             FROM ledger_cells_pending q \
            CROSS JOIN LATERAL unnest(q.account, q.currency, q.ledger, q.effective, q.recorded, \
                                      q.amount) AS p (account, currency, ledger, eff, rec, amount) \
            WHERE p.eff < coalesce(date_trunc('minute', {e}::timestamptz AT TIME ZONE 'UTC') \
                                   AT TIME ZONE 'UTC', 'infinity') \
              AND p.rec <= coalesce({r}::timestamptz, 'infinity'){} \
            GROUP BY 1, 2, 3) \
         SELECT k.ledger, k.account, k.currency, b.amount + coalesce(qd.amount, 0) AS amount FROM \
           (SELECT * FROM ledger_balance_keys k {filter}) k \
         LEFT JOIN queued qd \
           ON qd.ledger = k.ledger AND qd.account = k.account AND qd.currency = k.currency \
         CROSS JOIN LATERAL (SELECT ledger_balance_built(k.ledger, k.account, k.currency, {}) \
                               AS amount) b \
         WHERE b.amount + coalesce(qd.amount, 0) <> 0 ORDER BY 1, 3, 2",
        queued.concat(),
        args.join(", ")
    )
}

type Bound = Option<DateTime<Utc>>;

/// E and the starts of its month, day, hour; R and the starts of its month and day.
fn bounds(q: &BalanceQuery) -> [Bound; 7] {
    let (em, ed, eh) = match q.effective_as_of.map(buckets) {
        Some((m, d, h)) => (Some(m), Some(d), Some(h)),
        None => (None, None, None),
    };
    let (rm, rd) = match q.recorded_as_of.map(buckets) {
        Some((m, d, _)) => (Some(m), Some(d)),
        None => (None, None),
    };
    [q.effective_as_of, em, ed, eh, q.recorded_as_of, rm, rd]
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
    for b in bounds(q) {
        query = query.bind(b);
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
            ..Default::default()
        };
        let s = sql(&q);
        assert!(s.contains("k.ledger = $1 AND k.currency = $2"), "{s}");
        assert!(s.contains("AND p.ledger = $1 AND p.currency = $2"), "{s}");
        assert!(s.contains("k.currency, $3, $4, $5, $6, $7, $8, $9)"), "{s}");
        assert!(
            s.contains("'minute', $3::timestamptz") && s.contains("coalesce($7::timestamptz"),
            "{s}"
        );
        assert!(!s.contains("$10"), "{s}");
    }

    #[test]
    fn bounds_are_absent_with_their_time() {
        let e = Utc.with_ymd_and_hms(2026, 3, 3, 17, 45, 12).unwrap();
        let b = bounds(&BalanceQuery {
            effective_as_of: Some(e),
            ..Default::default()
        });
        assert_eq!(b[0], Some(e));
        assert_eq!(
            b[3],
            Some(Utc.with_ymd_and_hms(2026, 3, 3, 17, 0, 0).unwrap())
        );
        assert!(b[4..].iter().all(Option::is_none));
    }
}
