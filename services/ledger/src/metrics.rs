//! `/metrics` in Prometheus text format: the ledger's progress and backlog.
//!
//! Every figure is read at scrape time from where the truth is kept — the database (facts,
//! entries, conflicts, the group's committed offsets, the cells queue, the outbox) and the
//! broker (log end offsets, dead letters) — not counted in the process. So each instance of a
//! group reports the same group-wide figures, a restart loses nothing, and a scrape cannot
//! disagree with the books. A source that cannot be read is reported as
//! `ledgerline_ledger_scrape_error{source}` 1 and its figures are left out (an alert on the
//! error beats a stale number). One figure is the instance's own: its resident memory.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use ledgerline_bus::topics::dlq_of;
use ledgerline_bus::{KafkaConfig, Topics};
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::Error;

/// How long one scrape waits for the broker's offsets before reporting it unreadable.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(3);

/// Reads the figures (see the module docs).
pub struct Scraper {
    pool: PgPool,
    /// Never subscribed: used for metadata and watermarks only.
    broker: Arc<StreamConsumer>,
    group: String,
    /// The topics the ledger consumes.
    topics: Vec<String>,
    /// What this instance's consumer reports of its start (`/readyz` and the core-state gauge).
    readiness: Arc<crate::health::Readiness>,
}

impl std::fmt::Debug for Scraper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scraper")
            .field("group", &self.group)
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

/// One partition's offsets: the group's next offset to fold and the log's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub topic: String,
    pub partition: i32,
    /// The group's committed next offset (`consumer_offsets`); `None` before its first commit.
    pub committed: Option<i64>,
    /// The log's low and high watermarks.
    pub low: i64,
    pub high: i64,
}

impl PartitionOffsets {
    /// Records in the log the group has not folded yet.
    pub fn lag(&self) -> i64 {
        (self.high - self.committed.unwrap_or(self.low).max(self.low)).max(0)
    }
}

/// What the broker says: the consumed topics' partitions, and records ever dead-lettered per
/// consumed topic (the `.dlq` topic's end offsets summed).
type BrokerFigures = (Vec<(String, i32, i64, i64)>, Vec<(String, i64)>);

impl Scraper {
    /// A scraper for `group`'s ledger over `topics`' Stripe topics.
    pub fn new(
        pool: PgPool,
        kafka: &KafkaConfig,
        group: &str,
        topics: &Topics,
    ) -> Result<Self, Error> {
        // A group of its own that never subscribes or commits: it only asks for offsets.
        let broker = kafka.consumer(&format!("{group}.metrics"))?;
        Ok(Self {
            pool,
            broker: Arc::new(broker),
            group: group.to_owned(),
            topics: vec![topics.stripe_events(), topics.stripe_balance_transactions()],
            readiness: Arc::default(),
        })
    }

    /// Every consumed partition's offsets (committed by the group, and the log's), and the
    /// records ever dead-lettered per consumed topic. The error names the source that failed.
    pub async fn log_figures(
        &self,
    ) -> Result<(Vec<PartitionOffsets>, Vec<(String, i64)>), (&'static str, String)> {
        let (log, dead) = self.broker_figures().await.map_err(|e| ("kafka", e))?;
        let committed = self
            .committed()
            .await
            .map_err(|e| ("database", format!("committed offsets: {e}")))?;
        let offsets = log
            .into_iter()
            .map(|(topic, partition, low, high)| PartitionOffsets {
                committed: committed
                    .iter()
                    .find(|(t, p, _)| *t == topic && *p == partition)
                    .map(|(_, _, o)| *o),
                topic,
                partition,
                low,
                high,
            })
            .collect();
        Ok((offsets, dead))
    }

    async fn committed(&self) -> Result<Vec<(String, i32, i64)>, sqlx::Error> {
        sqlx::query_as(
            "SELECT topic, partition, next_offset FROM consumer_offsets WHERE consumer_group = $1",
        )
        .bind(&self.group)
        .fetch_all(&self.pool)
        .await
    }

    async fn broker_figures(&self) -> Result<BrokerFigures, String> {
        let broker = self.broker.clone();
        let topics = self.topics.clone();
        tokio::task::spawn_blocking(move || {
            let mut log = Vec::new();
            let mut dead = Vec::new();
            for topic in &topics {
                for (t, p, low, high) in partitions(&broker, topic)? {
                    log.push((t, p, low, high));
                }
                let dlq = dlq_of(topic);
                let ever = partitions(&broker, &dlq)?
                    .iter()
                    .map(|(_, _, _, high)| high)
                    .sum();
                dead.push((topic.clone(), ever));
            }
            Ok((log, dead))
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// Reports `readiness` (the consumer's) on `/metrics` and `/readyz`.
    pub fn with_readiness(mut self, readiness: Arc<crate::health::Readiness>) -> Self {
        self.readiness = readiness;
        self
    }

    /// The whole page. Never fails: see the module docs.
    pub async fn render(&self) -> String {
        let mut out = String::new();
        let mut errors: Vec<&str> = Vec::new();
        match self.database_figures().await {
            Ok(figures) => {
                for (name, help, value) in figures {
                    gauge(&mut out, name, help, &[(String::new(), value)]);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics: the database could not be read");
                errors.push("database");
            }
        }
        match self.log_figures().await {
            Ok((offsets, dead)) => {
                let label = |o: &PartitionOffsets| {
                    format!("topic=\"{}\",partition=\"{}\"", o.topic, o.partition)
                };
                gauge(
                    &mut out,
                    "ledgerline_ledger_lag_records",
                    "Records in the log the group has not folded yet (log end offset minus committed offset).",
                    &offsets
                        .iter()
                        .map(|o| (label(o), o.lag()))
                        .collect::<Vec<_>>(),
                );
                gauge(
                    &mut out,
                    "ledgerline_ledger_committed_offset",
                    "The group's next offset to fold, committed with the entries it produced (absent before the first commit).",
                    &offsets
                        .iter()
                        .filter_map(|o| Some((label(o), o.committed?)))
                        .collect::<Vec<_>>(),
                );
                gauge(
                    &mut out,
                    "ledgerline_ledger_log_end_offset",
                    "The consumed log's high watermark.",
                    &offsets
                        .iter()
                        .map(|o| (label(o), o.high))
                        .collect::<Vec<_>>(),
                );
                gauge(
                    &mut out,
                    "ledgerline_ledger_log_start_offset",
                    "The consumed log's low watermark: above 0, the broker has deleted records the books were folded from, and the ledger can no longer be rebuilt from the log (keep retention.ms=-1).",
                    &offsets
                        .iter()
                        .map(|o| (label(o), o.low))
                        .collect::<Vec<_>>(),
                );
                gauge(
                    &mut out,
                    "ledgerline_ledger_dead_letters",
                    "Records ever sent to the topic's .dlq, by any ledger instance or the ingester (the reason is in each record's header).",
                    &dead
                        .iter()
                        .map(|(t, n)| (format!("topic=\"{t}\""), *n))
                        .collect::<Vec<_>>(),
                );
            }
            Err((source, e)) => {
                tracing::warn!(source, error = %e, "metrics: the log's offsets could not be read");
                errors.push(source);
            }
        }
        // This instance's own: the core state is resident and grows with the facts (README,
        // "Known limits"), so memory is what to watch for capacity.
        if let Some(resident) = process_memory_bytes("VmRSS") {
            gauge(
                &mut out,
                "process_resident_memory_bytes",
                "Resident memory of this ledger process (its core state grows with the facts stored).",
                &[(String::new(), resident)],
            );
        }
        // This instance's core state: rebuilt at start before it folds (the time to ready).
        let built = self.readiness.built();
        gauge(
            &mut out,
            "ledgerline_ledger_core_state_built",
            "1 once this instance has rebuilt its core state from the stored facts (it is not ready before).",
            &[(String::new(), i64::from(built.is_some()))],
        );
        gauge(
            &mut out,
            "ledgerline_ledger_core_state_facts_at_start",
            "Stored facts this instance replayed into its core state at start.",
            &[(
                String::new(),
                built.map_or(0, |n| i64::try_from(n).unwrap_or(i64::MAX)),
            )],
        );
        let error_rows: Vec<(String, i64)> = ["database", "kafka"]
            .into_iter()
            .map(|s| (format!("source=\"{s}\""), i64::from(errors.contains(&s))))
            .collect();
        gauge(
            &mut out,
            "ledgerline_ledger_scrape_error",
            "1 when this scrape could not read the source (its figures are left out).",
            &error_rows,
        );
        out
    }

    async fn database_figures(
        &self,
    ) -> Result<Vec<(&'static str, &'static str, i64)>, sqlx::Error> {
        // Facts and entries are numbered 1, 2, 3… under the writer's lock, so the newest
        // number is the count, read from an index instead of a scan.
        let (facts, entries, conflicts, cells_queued, outbox, last_commit): (
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
        ) = sqlx::query_as(
            "SELECT (SELECT coalesce(max(fact_seq), 0) FROM ledger_facts), \
                    (SELECT coalesce(max(recorded_seq), 0) FROM ledger_entry_meta), \
                    (SELECT count(*) FROM ledger_conflicts), \
                    (SELECT count(*) FROM ledger_cells_pending), \
                    (SELECT count(*) FROM ledger_outbox), \
                    (SELECT coalesce(extract(epoch FROM max(updated_at))::bigint, 0) \
                       FROM consumer_offsets WHERE consumer_group = $1)",
        )
        .bind(&self.group)
        .fetch_one(&self.pool)
        .await?;
        Ok(vec![
            (
                "ledgerline_ledger_facts",
                "Distinct Stripe facts stored (ledger_facts), by every instance.",
                facts,
            ),
            (
                "ledgerline_ledger_entries",
                "Journal entries committed.",
                entries,
            ),
            (
                "ledgerline_ledger_conflicts",
                "Conflicts stored: a fact or entry id seen again with other content (see ledger_conflicts).",
                conflicts,
            ),
            (
                "ledgerline_ledger_cells_queued_statements",
                "Lines statements whose postings wait for the balance-cells builder (as-of queries read them from the queue meanwhile).",
                cells_queued,
            ),
            (
                "ledgerline_ledger_outbox_pending",
                "Committed entries not yet acknowledged by the broker on ledger.entries.v1.",
                outbox,
            ),
            (
                "ledgerline_ledger_last_commit_timestamp_seconds",
                "Unix time of the group's newest offset commit (0 before the first).",
                last_commit,
            ),
        ])
    }
}

/// A topic's partitions as (topic, partition, low, high). A topic that does not exist yet has
/// none.
fn partitions(
    broker: &StreamConsumer,
    topic: &str,
) -> Result<Vec<(String, i32, i64, i64)>, String> {
    let metadata = broker
        .fetch_metadata(Some(topic), KAFKA_TIMEOUT)
        .map_err(|e| format!("metadata of {topic}: {e}"))?;
    let mut out = Vec::new();
    for t in metadata.topics() {
        if t.error().is_some() {
            continue; // unknown topic: nothing consumed from it yet
        }
        for p in t.partitions() {
            let (low, high) = broker
                .fetch_watermarks(topic, p.id(), KAFKA_TIMEOUT)
                .map_err(|e| format!("offsets of {topic}/{}: {e}", p.id()))?;
            out.push((topic.to_owned(), p.id(), low, high));
        }
    }
    out.sort();
    Ok(out)
}

/// A memory figure of this process in bytes: `field` of `/proc/self/status` (`VmRSS`
/// resident now, `VmHWM` its peak); `None` where there is no `/proc`.
pub fn process_memory_bytes(field: &str) -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: i64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

fn gauge(out: &mut String, name: &str, help: &str, rows: &[(String, i64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (labels, value) in rows {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

/// Serves `GET /metrics`, `GET /healthz` (the process answers) and `GET /readyz` (200 when
/// [`crate::health::ready`], 503 with the reason otherwise) on `listener` until `shutdown`.
pub async fn serve(
    scraper: Arc<Scraper>,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let (pool, readiness) = (scraper.pool.clone(), scraper.readiness.clone());
    let probes = axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .route(
            "/readyz",
            axum::routing::get(move || {
                let (readiness, pool) = (readiness.clone(), pool.clone());
                async move {
                    match crate::health::ready(&readiness, &pool).await {
                        Ok(text) => (axum::http::StatusCode::OK, text + "\n"),
                        Err(reason) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, reason + "\n"),
                    }
                }
            }),
        );
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(
                |axum::extract::State(s): axum::extract::State<Arc<Scraper>>| async move {
                    (
                        [("content-type", "text/plain; version=0.0.4")],
                        s.render().await,
                    )
                },
            ),
        )
        .with_state(scraper)
        .merge(probes);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}
