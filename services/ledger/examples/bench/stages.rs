//! Where the writer's time goes, from the ledger's own debug events (`batch folded`, `facts
//! inserted`, `entries inserted`, `batch written`, `batch committed`): the writer is the
//! pipeline's critical path, so its stages are what a faster ledger must shorten.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer};

/// Milliseconds summed over every batch, by stage.
#[derive(Clone, Default)]
pub(super) struct StageTimes(Arc<Sums>);

#[derive(Default)]
struct Sums {
    batches: AtomicU64,
    fold: AtomicU64,
    facts: AtomicU64,
    postings: AtomicU64,
    entries: AtomicU64,
    written: AtomicU64,
    committed: AtomicU64,
}

/// The ledger's debug events, whatever `RUST_LOG` says for the printed log.
pub(super) fn filter() -> tracing_subscriber::filter::Targets {
    tracing_subscriber::filter::Targets::new()
        .with_target("ledgerline_ledger", tracing::Level::DEBUG)
}

#[derive(Default)]
struct Fields {
    message: String,
    ms: Option<u64>,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name().ends_with("ms") {
            self.ms = Some(value);
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_u64(field, u64::try_from(value).unwrap_or(0));
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.record_u64(field, u64::try_from(value).unwrap_or(u64::MAX));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.message);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for StageTimes {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let Some(ms) = f.ms else { return };
        let sum = match f.message.as_str() {
            "batch folded" => &self.0.fold,
            "facts inserted" => &self.0.facts,
            "postings applied" => &self.0.postings,
            "entries inserted" => &self.0.entries,
            "batch written" => &self.0.written,
            "batch committed" => {
                self.0.batches.fetch_add(1, Ordering::Relaxed);
                &self.0.committed
            }
            _ => return,
        };
        sum.fetch_add(ms, Ordering::Relaxed);
    }
}

impl StageTimes {
    /// One line: each stage's share of the fold's wall time `total`.
    pub(super) fn report(&self, total: Duration) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (fold, facts, postings, rows, written, committed) = (
            get(&self.0.fold),
            get(&self.0.facts),
            get(&self.0.postings),
            get(&self.0.entries),
            get(&self.0.written),
            get(&self.0.committed),
        );
        // The fold's first step (`batch folded`), then the facts' write while its second
        // step (the postings) runs on another thread, then whatever of that step is left
        // (`postings applied`), then the entries; `batch written` counts from the end of
        // the first step, `batch committed` the whole batch.
        let stages = [
            ("fold (which facts are new)", fold),
            ("facts COPY (the postings applied beside it)", facts),
            ("postings still being applied after the facts", postings),
            ("entries, lines, metadata, outbox", rows),
            (
                "heads and offsets",
                written.saturating_sub(facts + postings + rows),
            ),
            (
                "begin, catch-up, commit",
                committed.saturating_sub(fold + written),
            ),
            (
                "writer idle (waiting for a batch or the cells builder)",
                u64::try_from(total.as_millis())
                    .unwrap_or(u64::MAX)
                    .saturating_sub(committed),
            ),
        ];
        let parts: Vec<String> = stages
            .iter()
            .map(|(name, ms)| format!("{name} {:.2} s", *ms as f64 / 1000.0))
            .collect();
        format!(
            "the writer over {} batches: {}",
            get(&self.0.batches),
            parts.join(", ")
        )
    }
}
