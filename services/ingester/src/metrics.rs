//! Counters and gauges, rendered in Prometheus text format at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use ledgerline_stripe::Client;

/// Everything the ingester counts.
#[derive(Debug, Default)]
pub struct Metrics {
    /// (source, topic) → records acknowledged by Kafka.
    records: Mutex<BTreeMap<(String, String), u64>>,
    /// reason → webhook deliveries refused.
    webhook_rejected: Mutex<BTreeMap<String, u64>>,
    /// Webhook deliveries answered 503: the log did not acknowledge them in time.
    webhook_unacknowledged: std::sync::atomic::AtomicU64,
    /// Webhook deliveries of the other mode's events, answered 200 and not ingested.
    webhook_other_mode: std::sync::atomic::AtomicU64,
    /// (scope, stream) → unix seconds of the newest fact the cursor covers.
    cursor_created: Mutex<BTreeMap<(String, String), i64>>,
    /// (scope, resource) → objects backfilled so far, and whether done.
    backfill: Mutex<BTreeMap<(String, String), (u64, bool)>>,
    clients: Mutex<Vec<(String, Client)>>,
    /// scope → catch-ups that found the events cursor outside Stripe's 30-day window.
    window_exceeded: Mutex<BTreeMap<String, u64>>,
    /// Most objects a catch-up or balance-transaction walk held at once.
    buffered_max: std::sync::atomic::AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Metrics {
    pub fn record(&self, source: &str, topic: &str, n: u64) {
        *lock(&self.records)
            .entry((source.to_owned(), topic.to_owned()))
            .or_insert(0) += n;
    }

    pub fn records(&self, source: &str, topic: &str) -> u64 {
        lock(&self.records)
            .get(&(source.to_owned(), topic.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    pub fn webhook_rejected(&self, reason: &str) {
        *lock(&self.webhook_rejected)
            .entry(reason.to_owned())
            .or_insert(0) += 1;
    }

    pub fn webhook_unacknowledged(&self) {
        self.webhook_unacknowledged
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn webhook_other_mode(&self) {
        self.webhook_other_mode
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn cursor(&self, scope: &str, stream: &str, created: i64) {
        lock(&self.cursor_created).insert((scope.to_owned(), stream.to_owned()), created);
    }

    pub fn backfill_progress(&self, scope: &str, resource: &str, count: u64, done: bool) {
        lock(&self.backfill).insert((scope.to_owned(), resource.to_owned()), (count, done));
    }

    /// Whether every backfill resource reported so far is done (and at least one was).
    pub fn backfill_done(&self) -> bool {
        let b = lock(&self.backfill);
        !b.is_empty() && b.values().all(|(_, d)| *d)
    }

    /// The events cursor of `scope` is older than Stripe's Events window (backfill needed).
    pub fn window_exceeded(&self, scope: &str) {
        *lock(&self.window_exceeded)
            .entry(scope.to_owned())
            .or_insert(0) += 1;
    }

    pub fn window_exceeded_count(&self, scope: &str) -> u64 {
        lock(&self.window_exceeded).get(scope).copied().unwrap_or(0)
    }

    /// A walk holds `n` objects.
    pub fn buffered(&self, n: usize) {
        self.buffered_max.fetch_max(
            u64::try_from(n).unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    pub fn buffered_max(&self) -> u64 {
        self.buffered_max.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn add_client(&self, name: &str, client: &Client) {
        lock(&self.clients).push((name.to_owned(), client.clone()));
    }

    /// Prometheus text exposition; `now` (unix seconds) for cursor ages.
    pub fn render(&self, now: i64) -> String {
        let mut out = String::new();
        out.push_str("# HELP ledgerline_ingester_records_total Records acknowledged by Kafka, by source and topic.\n# TYPE ledgerline_ingester_records_total counter\n");
        for ((source, topic), n) in lock(&self.records).iter() {
            let _ = writeln!(
                out,
                "ledgerline_ingester_records_total{{source=\"{source}\",topic=\"{topic}\"}} {n}"
            );
        }
        out.push_str("# HELP ledgerline_ingester_webhooks_rejected_total Webhook deliveries refused with 400, by reason.\n# TYPE ledgerline_ingester_webhooks_rejected_total counter\n");
        for (reason, n) in lock(&self.webhook_rejected).iter() {
            let _ = writeln!(
                out,
                "ledgerline_ingester_webhooks_rejected_total{{reason=\"{reason}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP ledgerline_ingester_webhooks_unacknowledged_total Webhook deliveries answered 503 because the log did not acknowledge them in time (Stripe retries them).\n# TYPE ledgerline_ingester_webhooks_unacknowledged_total counter\nledgerline_ingester_webhooks_unacknowledged_total {}",
            self.webhook_unacknowledged
                .load(std::sync::atomic::Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP ledgerline_ingester_webhooks_other_mode_total Webhook deliveries of the other mode's events (test events at a live Connect endpoint, as Stripe sends them), answered 200 and not ingested.\n# TYPE ledgerline_ingester_webhooks_other_mode_total counter\nledgerline_ingester_webhooks_other_mode_total {}",
            self.webhook_other_mode
                .load(std::sync::atomic::Ordering::Relaxed)
        );
        out.push_str("# HELP ledgerline_ingester_cursor_age_seconds Age of the newest fact each cursor covers.\n# TYPE ledgerline_ingester_cursor_age_seconds gauge\n");
        for ((scope, stream), created) in lock(&self.cursor_created).iter() {
            let _ = writeln!(
                out,
                "ledgerline_ingester_cursor_age_seconds{{scope=\"{scope}\",stream=\"{stream}\"}} {}",
                now.saturating_sub(*created).max(0)
            );
        }
        out.push_str("# HELP ledgerline_ingester_backfill_objects Objects backfilled, by resource.\n# TYPE ledgerline_ingester_backfill_objects gauge\n");
        for ((scope, res), (n, done)) in lock(&self.backfill).iter() {
            let _ = writeln!(
                out,
                "ledgerline_ingester_backfill_objects{{scope=\"{scope}\",resource=\"{res}\",done=\"{done}\"}} {n}"
            );
        }
        out.push_str("# HELP ledgerline_ingester_events_window_exceeded_total Catch-ups that found the events cursor older than Stripe's 30-day Events window: events may be missing, run a backfill.\n# TYPE ledgerline_ingester_events_window_exceeded_total counter\n");
        for (scope, n) in lock(&self.window_exceeded).iter() {
            let _ = writeln!(
                out,
                "ledgerline_ingester_events_window_exceeded_total{{scope=\"{scope}\"}} {n}"
            );
        }
        out.push_str("# HELP ledgerline_ingester_buffered_objects_max Most Stripe objects a catch-up or balance-transaction walk held in memory at once (bounded by catch_up_buffer).\n# TYPE ledgerline_ingester_buffered_objects_max gauge\n");
        let _ = writeln!(
            out,
            "ledgerline_ingester_buffered_objects_max {}",
            self.buffered_max()
        );
        out.push_str("# HELP ledgerline_stripe_api_calls_total Stripe API answers by HTTP status (0 = no answer).\n# TYPE ledgerline_stripe_api_calls_total counter\n");
        let clients = lock(&self.clients).clone();
        for (name, c) in &clients {
            for (status, n) in c.stats().by_status() {
                let _ = writeln!(
                    out,
                    "ledgerline_stripe_api_calls_total{{account=\"{name}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP ledgerline_stripe_rate_limit_waits_total Requests the client-side limiter delayed.\n# TYPE ledgerline_stripe_rate_limit_waits_total counter\n");
        for (name, c) in &clients {
            let (waits, micros) = c.limiter().waits();
            let _ = writeln!(
                out,
                "ledgerline_stripe_rate_limit_waits_total{{account=\"{name}\"}} {waits}"
            );
            let _ = writeln!(
                out,
                "ledgerline_stripe_rate_limit_wait_microseconds_total{{account=\"{name}\"}} {micros}"
            );
            let _ = writeln!(
                out,
                "ledgerline_stripe_rate_limited_total{{account=\"{name}\"}} {}",
                c.stats()
                    .rate_limited
                    .load(std::sync::atomic::Ordering::Relaxed)
            );
            let _ = writeln!(
                out,
                "ledgerline_stripe_retries_total{{account=\"{name}\"}} {}",
                c.stats().retries.load(std::sync::atomic::Ordering::Relaxed)
            );
        }
        out
    }
}
