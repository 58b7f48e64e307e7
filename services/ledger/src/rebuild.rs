//! Rebuild: the log replayed from its first record into a fresh database or schema, up to
//! exactly the offsets a live ledger has stored, then the two books compared — facts, every
//! entry field by field, chain heads. What an auditor runs to see that the books are the fold of
//! the log and nothing else (`ledgerline-ledger rebuild`).
//!
//! The cut: one read-only snapshot of the live database gives its group's stored offsets, its
//! chain heads and the last fact and entry they cover; the rebuild folds each partition up to
//! that offset and no further ([`UpTo`]), whatever the live ledger does meanwhile. The fold is
//! the service's own ([`crate::consumer::run`]), so the rebuilt database is a ledger like any
//! other: it stores the live group's offsets and can be served as it is. It differs in what it
//! sends: nothing. Dead letters were put on the `.dlq` topics by the live ledger and are only
//! counted ([`DeadLetterTally`]); the outbox is left unpublished (its entries are on
//! `ledger.entries.v1` already; serving the rebuilt database publishes them again, which
//! consumers deduplicate by entry id).

mod bounded;
pub mod compare;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledgerline_bus::{KafkaConfig, Topics};
use rdkafka::consumer::Consumer as _;
use rdkafka::{Offset, TopicPartitionList};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection as _, Row as _};
use tokio_util::sync::CancellationToken;

pub use bounded::{DeadLetterTally, OnBound, UpTo};
pub use compare::{Counts, Difference, Differences, Side};

use crate::chain::Head;
use crate::consumer::{self, BatchLimits};
use crate::engine::TopicKind;
use crate::store::postgres::load_heads;
use crate::store::{AdvisoryLocks, Offsets, PgStore, Store as _};
use crate::{Error, cells};

/// How to rebuild and what to compare against.
#[derive(Debug, Clone)]
pub struct RebuildConfig {
    /// The live ledger's database; only ever read (its connections are read-only).
    pub live_database_url: String,
    /// The live ledger's consumer group, whose stored offsets are where the replay stops;
    /// `None`: the only group the live database holds offsets for.
    pub group: Option<String>,
    /// Where to rebuild: a database holding no ledger data yet.
    pub target_database_url: String,
    /// A schema of the target database to rebuild into instead of its default one (created
    /// when missing; must hold no ledger data). Serve it later with
    /// `DATABASE_URL=…?options[search_path]=SCHEMA`.
    pub target_schema: Option<String>,
    pub kafka: KafkaConfig,
    /// The topics the live ledger reads (same prefix).
    pub topics: Topics,
    pub batch: BatchLimits,
    /// See [`crate::Config::raw_dictionary_samples`].
    pub raw_dictionary_samples: usize,
    /// Differences of each kind listed in the report (all are counted).
    pub max_listed: usize,
    /// Accept a target that holds an earlier rebuild of the same group (interrupted, or run
    /// before the live ledger moved on) and fold on from its offsets: a standing shadow ledger
    /// that each run brings up to the live one, then compares whole.
    pub continue_existing: bool,
    /// The live ledger's [`crate::Config::stripe_mode`].
    pub stripe_mode: crate::StripeMode,
}

impl RebuildConfig {
    pub fn new(
        live_database_url: impl Into<String>,
        target_database_url: impl Into<String>,
        kafka: KafkaConfig,
    ) -> Self {
        Self {
            live_database_url: live_database_url.into(),
            group: None,
            target_database_url: target_database_url.into(),
            target_schema: None,
            kafka,
            topics: Topics::default(),
            batch: BatchLimits::default(),
            raw_dictionary_samples: crate::raw::DICTIONARY_SAMPLES,
            max_listed: 20,
            continue_existing: false,
            stripe_mode: crate::StripeMode::default(),
        }
    }
}

/// How far the replay is: records folded of those below the live offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub folded: i64,
    pub records: i64,
}

/// What the live database said in one snapshot.
#[derive(Debug, Clone)]
struct LiveSnapshot {
    group: String,
    offsets: Offsets,
    heads: HashMap<String, Head>,
    max_fact_seq: i64,
    max_recorded_seq: i64,
    /// The Stripe mode the live database is bound to (`None` if its ledger predates binding).
    stripe_mode: Option<String>,
}

/// The outcome: what was replayed and every difference found.
#[derive(Debug, Clone)]
pub struct Report {
    pub group: String,
    /// Records below the live offsets, all replayed.
    pub records: i64,
    /// Of those, how many an earlier rebuild in the target had folded already (`--continue`).
    pub already_folded: i64,
    pub partitions: usize,
    /// (dead-letter topic, reason) of each record this run's fold refused, as the live ledger
    /// did (with `--continue`, only among the records it folded).
    pub dead_letters: Vec<(String, String)>,
    pub facts: Counts,
    pub entries: Counts,
    pub heads: Counts,
    pub differences: Differences,
    pub fold_time: Duration,
    pub compare_time: Duration,
}

impl Report {
    /// True when the live books are exactly the fold of the log.
    pub fn identical(&self) -> bool {
        self.differences.total() == 0
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let earlier = if self.already_folded > 0 {
            format!(
                ", {} of them folded by an earlier rebuild",
                self.already_folded
            )
        } else {
            String::new()
        };
        writeln!(
            f,
            "replayed {} records of group {}{earlier} ({} partitions, up to its stored offsets) \
             in {:.1} s; compared in {:.1} s",
            self.records,
            self.group,
            self.partitions,
            self.fold_time.as_secs_f64(),
            self.compare_time.as_secs_f64()
        )?;
        writeln!(
            f,
            "dead letters in the records this run folded: {} (already on the live ledger's \
             .dlq topics, not sent again)",
            self.dead_letters.len()
        )?;
        for (name, c) in [
            ("facts", self.facts),
            ("entries", self.entries),
            ("chains", self.heads),
        ] {
            writeln!(
                f,
                "{name:<8} live {:>10}   rebuilt {:>10}",
                c.live, c.rebuilt
            )?;
        }
        let d = &self.differences;
        if self.identical() {
            return write!(
                f,
                "IDENTICAL: every fact, entry (field by field) and chain head of the live ledger \
                 is the fold of the log"
            );
        }
        writeln!(
            f,
            "DIFFERENT: {} facts, {} entries, {} chain heads differ{}:",
            d.facts,
            d.entries,
            d.heads,
            if (d.listed.len() as u64) < d.total() {
                " (the first of each kind listed)"
            } else {
                ""
            }
        )?;
        for x in &d.listed {
            writeln!(f, "  {x}")?;
        }
        write!(
            f,
            "The log is the source of truth: an entry that differs or exists only in the live \
             ledger was written or changed outside the ledger (see `ledgerline entry ID` and \
             `ledgerline verify`); one only in the rebuild was removed from the live ledger."
        )
    }
}

/// Replays the log into the target up to the live ledger's stored offsets and compares.
/// `progress` is told how far the replay is, a few times a second. Stops early, with an error,
/// at `shutdown` (the target then holds a partial rebuild, which
/// [`RebuildConfig::continue_existing`] folds on from).
pub async fn run(
    config: RebuildConfig,
    shutdown: CancellationToken,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Report, Error> {
    let live = live_pool(&config.live_database_url).await?;
    let snap = snapshot(&live, config.group.as_deref()).await?;
    let topics = TopicKind::inputs(&config.topics);
    if let Some(((t, _), _)) = snap
        .offsets
        .iter()
        .find(|((t, _), _)| !topics.iter().any(|(name, _)| name == t))
    {
        return Err(Error::Rebuild(format!(
            "the live ledger read topic {t}, which this rebuild does not read ({} and {}): give \
             the topic prefix the live ledger uses",
            topics[0].0, topics[1].0
        )));
    }
    if let Some(bound) = snap.stripe_mode.as_deref()
        && bound != config.stripe_mode.name()
    {
        return Err(Error::Rebuild(format!(
            "the live ledger books Stripe's {bound}-mode facts (its table ledger_stripe_mode), \
             and this rebuild would fold {}-mode facts: give it --stripe-mode {bound} \
             (LEDGERLINE_STRIPE_MODE)",
            config.stripe_mode.name()
        )));
    }
    let (store, resumed) = target_store(&config, &snap).await?;
    store.bind_stripe_mode(config.stripe_mode).await?;

    let started = Instant::now();
    let dead = fold(
        &config,
        &store,
        &snap,
        &resumed,
        topics.to_vec(),
        &shutdown,
        progress,
    )
    .await?;
    cells::build_all_under(store.pool(), store.locks().builder).await?;
    let fold_time = started.elapsed();

    let started = Instant::now();
    let rebuilt = store.pool();
    let mut differences = Differences::new(config.max_listed);
    let facts = compare::facts(&live, rebuilt, snap.max_fact_seq, &mut differences).await?;
    let entries = compare::entries(&live, rebuilt, snap.max_recorded_seq, &mut differences).await?;
    let rebuilt_heads = load_heads(&mut *rebuilt.acquire().await?).await?;
    let heads = compare::heads(&snap.heads, &rebuilt_heads, &mut differences);
    Ok(Report {
        group: snap.group,
        records: snap.offsets.values().sum(),
        already_folded: resumed.values().sum(),
        partitions: snap.offsets.values().filter(|o| **o > 0).count(),
        dead_letters: dead,
        facts,
        entries,
        heads,
        differences,
        fold_time,
        compare_time: started.elapsed(),
    })
}

/// A pool whose every transaction is read-only: the rebuild cannot change the live ledger.
async fn live_pool(url: &str) -> Result<PgPool, Error> {
    let options: PgConnectOptions = url.parse()?;
    let options = options.options([("default_transaction_read_only", "on")]);
    Ok(PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await?)
}

/// The live ledger's offsets, heads and high-water marks, all from one snapshot.
async fn snapshot(live: &PgPool, group: Option<&str>) -> Result<LiveSnapshot, Error> {
    let mut tx = live.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let migrated: bool = sqlx::query_scalar(
        "SELECT to_regclass('consumer_offsets') IS NOT NULL \
         AND to_regclass('ledger_entry_meta') IS NOT NULL",
    )
    .fetch_one(&mut *tx)
    .await?;
    if !migrated {
        return Err(Error::Rebuild(
            "the live database has no ledger tables: point --from (DATABASE_URL) at the live \
             ledger's database"
                .into(),
        ));
    }
    let groups = groups(&mut tx).await?;
    let group = match (group, groups.as_slice()) {
        (Some(g), _) if groups.iter().any(|x| x == g) => g.to_owned(),
        (Some(g), _) => {
            return Err(Error::Rebuild(format!(
                "the live database stores no offsets for group {g:?} (it has: {groups:?}): give \
                 the live ledger's --group"
            )));
        }
        (None, [only]) => only.clone(),
        (None, []) => {
            return Err(Error::Rebuild(
                "the live database stores no consumed offsets: its ledger has folded nothing \
                 yet, so there is nothing to rebuild"
                    .into(),
            ));
        }
        (None, _) => {
            return Err(Error::Rebuild(format!(
                "the live database stores offsets of several groups ({groups:?}): name the live \
                 ledger's with --group"
            )));
        }
    };
    let offsets = crate::store::postgres::load_offsets(&mut tx, &group).await?;
    let heads = load_heads(&mut tx).await?;
    let row = sqlx::query(
        "SELECT (SELECT coalesce(max(fact_seq), 0) FROM ledger_facts), \
                (SELECT coalesce(max(recorded_seq), 0) FROM ledger_entry_meta)",
    )
    .fetch_one(&mut *tx)
    .await?;
    let bound: bool = sqlx::query_scalar("SELECT to_regclass('ledger_stripe_mode') IS NOT NULL")
        .fetch_one(&mut *tx)
        .await?;
    let stripe_mode = if bound {
        sqlx::query_scalar("SELECT mode FROM ledger_stripe_mode")
            .fetch_optional(&mut *tx)
            .await?
    } else {
        None
    };
    tx.rollback().await?;
    Ok(LiveSnapshot {
        group,
        offsets,
        heads,
        max_fact_seq: row.try_get(0)?,
        max_recorded_seq: row.try_get(1)?,
        stripe_mode,
    })
}

/// The groups a database holds stored offsets for.
async fn groups(conn: &mut sqlx::PgConnection) -> Result<Vec<String>, Error> {
    Ok(
        sqlx::query_scalar("SELECT DISTINCT consumer_group FROM consumer_offsets ORDER BY 1")
            .fetch_all(conn)
            .await?,
    )
}

/// The target store, migrated, in its schema when one is named, with the offsets it holds for
/// the live group: none when empty; an earlier rebuild's only with
/// [`RebuildConfig::continue_existing`], and only if they are nowhere past the live ones.
async fn target_store(
    config: &RebuildConfig,
    snap: &LiveSnapshot,
) -> Result<(PgStore, Offsets), Error> {
    let mut options: PgConnectOptions = config.target_database_url.parse()?;
    if let Some(schema) = &config.target_schema {
        let valid = schema.len() <= 63
            && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid || schema.starts_with("pg_") {
            return Err(Error::Rebuild(format!(
                "schema name {schema:?}: use lower-case letters, digits and _ (at most 63, not \
                 starting with a digit or pg_)"
            )));
        }
        let mut conn = sqlx::PgConnection::connect_with(&options).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
        )))
        .execute(&mut conn)
        .await?;
        conn.close().await?;
        options = options.options([("search_path", schema.as_str())]);
    }
    let mut store = PgStore::connect_with(options)
        .await?
        .with_dictionary_samples(config.raw_dictionary_samples);
    if let Some(schema) = &config.target_schema {
        // Most often a schema of the live database: its own locks, or every batch would wait
        // for the live writer and hold it up in turn.
        store = store.with_locks(AdvisoryLocks::for_rebuild_schema(schema));
    }
    let row = sqlx::query(
        "SELECT (SELECT count(*) FROM ledger_facts), (SELECT count(*) FROM journal_entries), \
                (SELECT count(*) FROM consumer_offsets)",
    )
    .fetch_one(store.pool())
    .await?;
    let (facts, entries, offsets): (i64, i64, i64) =
        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    if facts + entries + offsets == 0 {
        return Ok((store, Offsets::new()));
    }
    if !config.continue_existing {
        return Err(Error::Rebuild(format!(
            "the target already holds {facts} facts, {entries} entries and {offsets} stored \
             offsets: a rebuild needs an empty database or schema (create a new one, or name a \
             new --into-schema), or --continue to fold on from an earlier rebuild of this ledger"
        )));
    }
    let groups = groups(&mut *store.pool().acquire().await?).await?;
    if groups != [snap.group.clone()] {
        return Err(Error::Rebuild(format!(
            "the target holds offsets of groups {groups:?}, not an earlier rebuild of group {:?} \
             alone: --continue needs a target this command wrote",
            snap.group
        )));
    }
    let held = store.load_offsets(&snap.group).await?;
    for ((topic, partition), at) in &held {
        let live = snap
            .offsets
            .get(&(topic.clone(), *partition))
            .copied()
            .unwrap_or(0);
        if *at > live {
            return Err(Error::Rebuild(format!(
                "the target has folded {topic}/{partition} up to {at}, past the live ledger's \
                 {live}: it is not an earlier rebuild of this ledger"
            )));
        }
    }
    Ok((store, held))
}

/// Folds every partition from its first record up to the live offset, then stops. Returns the
/// dead letters the fold refused.
async fn fold(
    config: &RebuildConfig,
    store: &PgStore,
    snap: &LiveSnapshot,
    resumed: &Offsets,
    topics: Vec<(String, TopicKind)>,
    shutdown: &CancellationToken,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Vec<(String, String)>, Error> {
    // A group of its own that never commits (UpTo drops the hints): the live group's broker
    // offsets stay untouched, and the assignment is manual, so no rebalance touches the live
    // members either.
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let kafka_group = format!("{}.rebuild.{}.{nonce}", snap.group, std::process::id());
    let consumer = Arc::new(config.kafka.consumer(&kafka_group)?);
    let bounds: Offsets = snap
        .offsets
        .iter()
        .filter(|(_, o)| **o > 0)
        .map(|(k, o)| (k.clone(), *o))
        .collect();
    let assignment = {
        let (consumer, bounds, resumed) = (Arc::clone(&consumer), bounds.clone(), resumed.clone());
        tokio::task::spawn_blocking(move || whole_log(&consumer, &bounds, &resumed)).await??
    };
    consumer.assign(&assignment).map_err(Error::Kafka)?;

    let pause: OnBound = {
        let consumer = Arc::clone(&consumer);
        Box::new(move |topic, partition| {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(topic, partition);
            if let Err(e) = consumer.pause(&tpl) {
                tracing::debug!(error = %e, topic, partition, "pause at the bound failed");
            }
        })
    };
    let log = UpTo::new(&*consumer, bounds.clone(), pause);
    let tally = DeadLetterTally::default();
    let stop = shutdown.child_token();
    let limits = BatchLimits {
        // The cells are built once the journal is in (see `run`).
        max_cells_backlog: None,
        ..config.batch
    };
    let records: i64 = bounds.values().sum();
    let readiness = crate::health::Readiness::default();
    let folding = consumer::run(
        store.clone(),
        &log,
        &tally,
        topics,
        snap.group.clone(),
        limits,
        crate::PostingRules::of_mode(config.stripe_mode),
        &readiness,
        stop.clone(),
    );
    let watching = async {
        loop {
            let stored = store.load_offsets(&snap.group).await?;
            let folded: i64 = bounds
                .iter()
                .map(|(k, b)| stored.get(k).copied().unwrap_or(0).min(*b))
                .sum();
            progress(Progress { folded, records });
            if folded == records {
                stop.cancel();
                return Ok(());
            }
            tokio::select! {
                () = shutdown.cancelled() => {
                    stop.cancel();
                    return Err(Error::Rebuild(format!(
                        "interrupted after {folded} of {records} records: the target holds a \
                         partial rebuild; run again with --continue to fold on from it"
                    )));
                }
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    };
    tokio::try_join!(folding, watching)?;
    Ok(tally.take())
}

/// Every bounded partition from where the target stands (offset 0, or an earlier rebuild's
/// offset), once the broker shows it still holds the whole stretch left to fold (blocking: broker
/// round trips).
fn whole_log(
    consumer: &rdkafka::consumer::StreamConsumer,
    bounds: &Offsets,
    resumed: &Offsets,
) -> Result<TopicPartitionList, Error> {
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), bound) in bounds {
        let from = resumed
            .get(&(topic.clone(), *partition))
            .copied()
            .unwrap_or(0);
        let (low, high) = consumer
            .fetch_watermarks(topic, *partition, Duration::from_secs(10))
            .map_err(Error::Kafka)?;
        if low > from {
            return Err(Error::Rebuild(format!(
                "{topic}/{partition} starts at offset {low}: the broker no longer holds records \
                 {from}..{low} the live ledger folded (retention?), so the log cannot reproduce \
                 the books; keep these topics' retention unlimited"
            )));
        }
        if high < *bound {
            return Err(Error::Rebuild(format!(
                "{topic}/{partition} ends at offset {high}, but the live ledger stored {bound}: \
                 this is not the log it read (was the topic recreated, or another broker named?)"
            )));
        }
        tpl.add_partition_offset(topic, *partition, Offset::Offset(from))
            .map_err(Error::Kafka)?;
    }
    Ok(tpl)
}
