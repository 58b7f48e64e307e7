//! Ledgerline's ledger service.
//!
//! Consumes `stripe.events.v1` and `stripe.balance_transactions.v1`, posts every fact through
//! the core ([`engine`]), and stores entries, lines, raw facts, conflicts and hash-chain links
//! together with the consumed offsets, in one transaction per bounded batch, in a [`Store`]
//! ([`store`]: PostgreSQL); publishes committed entries to `ledger.entries.v1` through a transactional
//! outbox ([`outbox`]); serves the auditors' `LedgerQuery` gRPC API ([`grpc`]). The embedded
//! mode ([`start_embedded`]): the same over SQLite and the in-process log
//! ([`embedded_outbox`] publishes its outbox).
//!
//! Architecture invariant: never calls Stripe; never posts by rules of its own (the core's
//! `Ledger` is the join engine, restored from the stored facts).

pub mod balances;
pub mod cells;
pub mod chain;
pub mod consumer;
pub mod dead_letters;
pub mod embedded_outbox;
pub mod engine;
pub mod grpc;
pub mod health;
pub mod metrics;
pub mod outbox;
pub mod raw;
pub mod rebuild;
pub mod rules;
pub mod store;
pub mod tls;
pub mod wire;

use std::net::SocketAddr;

use ledgerline_bus::topics::dlq_of;
use ledgerline_bus::{KafkaConfig, TopicSpec, Topics, ensure_topics, warn_about_retention};
use sqlx::postgres::PgPool;
use tokio_util::sync::CancellationToken;

pub use consumer::BatchLimits;
pub use engine::{Engine, TopicKind};
pub use grpc::Role;
pub use rules::{PostingRules, StripeMode};
pub use store::postgres::MIGRATOR;
pub use store::{PgStore, SqliteStore, Store};

/// Everything that can go wrong in the ledger.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("kafka: {0}")]
    Kafka(rdkafka::error::KafkaError),
    #[error("bus: {0}")]
    Bus(#[from] ledgerline_bus::BusError),
    #[error("gRPC server: {0}")]
    Grpc(#[from] tonic::transport::Error),
    #[error("gRPC reflection: {0}")]
    Reflection(String),
    /// The gRPC API's TLS identity cannot be used; the message says which file and why.
    #[error("gRPC TLS: {0}")]
    Tls(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("task: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// A stored raw fact that cannot be decoded: the row was damaged after it was written.
    #[error(
        "stored fact fact_seq {fact_seq} (ledger_facts) cannot be decoded: {reason}; the row is \
         damaged: restore it from a backup, or rebuild the ledger from the log"
    )]
    CorruptFact { fact_seq: i64, reason: String },
    /// A rebuild that cannot start or finish; the message says what to change.
    #[error("rebuild: {0}")]
    Rebuild(String),
    /// The log deleted records of a partition before the ledger folded them: folding on from
    /// the log's new start would leave their facts out of the books for good.
    #[error(
        "records {expected}..{last} of {topic}/{partition} were deleted from the log before the \
         ledger folded them (the log now starts at offset {log_start}), so the ledger stops \
         rather than leave their facts out of the books. Publish those facts again (the \
         ingester's backfill re-reads them from Stripe), then move this partition's next_offset \
         in consumer_offsets to {log_start} by hand and start the ledger again",
        last = log_start - 1
    )]
    LogGap {
        topic: String,
        partition: i32,
        /// The next offset the ledger has stored for the partition (0 if none).
        expected: i64,
        log_start: i64,
    },
    /// A partition's log ends below the offsets the ledger folded from it: new records there
    /// would take offsets the ledger counts as folded, and be skipped.
    #[error(
        "the log of {topic}/{partition} ends at offset {log_end}, below the {expected} records \
         the ledger has folded from it: the topic was deleted and created again, or the broker \
         lost records (an unclean leader election). New records there would take offsets the \
         ledger counts as folded and be skipped, so it stops. If the topic was created anew on \
         purpose, move this partition's next_offset in consumer_offsets to the new log's start \
         by hand and start the ledger again"
    )]
    LogBehind {
        topic: String,
        partition: i32,
        /// The next offset the ledger has stored for the partition.
        expected: i64,
        log_end: i64,
    },
    /// The database holds the books of the other Stripe mode ([`Store::bind_stripe_mode`]):
    /// folding on would add this mode's facts to them.
    #[error(
        "this ledger's database holds the books of Stripe's {bound} mode (bound by the first \
         ledger started over it, table ledger_stripe_mode), and this ledger was started to book \
         {configured}-mode facts: start it with LEDGERLINE_STRIPE_MODE={bound}, or give the \
         {configured}-mode ledger a database of its own"
    )]
    StripeModeMismatch {
        bound: String,
        configured: &'static str,
    },
    /// The posting rules panicked while a batch's postings were applied ([`rules`]): the fold
    /// tries the batch again with that record sent to the dead-letter topic.
    #[error("the posting rules panicked on record {batch_index} of the batch: {message}")]
    PostingPanicked {
        /// Where the record is in its batch.
        batch_index: usize,
        message: String,
    },
    /// The posting rules panic on a fact the ledger has stored: its entries are in the books,
    /// so the join state cannot be rebuilt without it.
    #[error(
        "the posting rules panic on stored fact fact_seq {fact_seq} (ledger_facts): {message}. \
         Its entries are in the books, so this version cannot rebuild the ledger's state: a bug \
         in Ledgerline. Report it with that fact, and run the version that stored it until a \
         fixed one is out"
    )]
    StoredFactPanicked { fact_seq: i64, message: String },
}

impl Error {
    /// The database refused a value being written: SQLSTATE class 22 (data exception: bad
    /// encoding, a number or time out of range), 54 (program limit exceeded: a key too long
    /// for its index), 23502 or 23514 (a `NOT NULL` or `CHECK` constraint); SQLite's
    /// `SQLITE_TOOBIG` (18), `SQLITE_CONSTRAINT_CHECK` (275) or `_NOTNULL` (1299). The same
    /// write fails on every try, so the fold finds the record that carries the value and sets
    /// it aside ([`consumer::fold_prepared_and_commit`]) instead of stopping on it for good.
    pub fn is_refused_value(&self) -> bool {
        match self {
            Self::Database(sqlx::Error::Database(d)) => {
                let postgres = d
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some();
                d.code().is_some_and(|c| {
                    if postgres {
                        c.starts_with("22") || c.starts_with("54") || c == "23502" || c == "23514"
                    } else {
                        matches!(c.as_ref(), "18" | "275" | "1299")
                    }
                })
            }
            _ => false,
        }
    }

    /// A database failure that passes by itself (connection lost or refused, the pool exhausted
    /// or closed, the server starting or shutting down, too many connections, a serialization
    /// or deadlock abort): worth waiting out, and what a gRPC client should retry.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Database(
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed,
            ) => true,
            Self::Database(sqlx::Error::Database(d)) => d.code().is_some_and(|c| {
                c.starts_with("08")
                    || c.starts_with("53")
                    || c.starts_with("57P")
                    || c == "40001"
                    || c == "40P01"
            }),
            _ => false,
        }
    }

    /// A Kafka request that failed because the broker is out of reach for now (a record timed
    /// out in the producer, every broker down, a transport failure, no partition leader yet):
    /// worth waiting out, as the broker comes back with its data.
    pub fn is_broker_outage(&self) -> bool {
        use rdkafka::types::RDKafkaErrorCode as Code;
        let code = match self {
            Self::Kafka(e) | Self::Bus(ledgerline_bus::BusError::Kafka(e)) => {
                e.rdkafka_error_code()
            }
            _ => None,
        };
        matches!(
            code,
            Some(
                Code::MessageTimedOut
                    | Code::AllBrokersDown
                    | Code::BrokerTransportFailure
                    | Code::Resolve
                    | Code::OperationTimedOut
                    | Code::TimedOutQueue
                    | Code::QueueFull
                    | Code::LeaderNotAvailable
                    | Code::NotLeaderForPartition
                    | Code::PreferredLeaderNotAvailable
                    | Code::RequestTimedOut
                    | Code::BrokerNotAvailable
                    | Code::NetworkException
                    | Code::NotEnoughReplicas
                    | Code::NotEnoughReplicasAfterAppend
                    | Code::KafkaStorageError
            )
        )
    }

    /// What this error says is out of reach for now, if anything: the writer waits it out
    /// and tries the same batch again instead of stopping.
    pub fn out_of_reach(&self) -> Option<&'static str> {
        if self.is_transient() {
            Some("the database")
        } else if self.is_broker_outage() {
            Some("the Kafka broker")
        } else {
            None
        }
    }
}

/// How to run one ledger instance.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub kafka: KafkaConfig,
    pub topics: Topics,
    /// Consumer group (and the key of the stored offsets).
    pub group_id: String,
    /// Partitions of the topics the ledger creates if missing.
    pub partitions: i32,
    pub batch: BatchLimits,
    /// Whether to run the outbox publisher.
    pub publish: bool,
    /// Whether to run the balance-cells builder ([`cells`]). Off, the cells wait in their
    /// queue (balances stay exact, a query's pass over the queue grows) until an instance
    /// with the builder, or [`cells::build_all`], adds them: for a bulk load that wants every
    /// core for the journal first (with `batch.max_cells_backlog = None` if no instance
    /// builds, or the writer waits for a builder).
    pub build_cells: bool,
    /// gRPC listen address (port 0 picks one).
    pub grpc_addr: SocketAddr,
    /// Serve gRPC over TLS with this identity; `None`: plain HTTP/2, for a ledger reachable
    /// only from its own host or behind a proxy that terminates TLS (bearer tokens travel in
    /// every request).
    pub grpc_tls: Option<tls::GrpcTls>,
    /// Where `GET /metrics` is served ([`metrics`]; port 0 picks one); `None`: not served.
    pub metrics_addr: Option<SocketAddr>,
    /// Bearer tokens and their roles.
    pub tokens: Vec<(String, Role)>,
    /// How many facts the raw-fact zstd dictionary is trained on when the database has none
    /// ([`raw::Dictionary`]; 0: never train, facts are compressed without one).
    pub raw_dictionary_samples: usize,
    /// The mode whose facts are booked (a fact of the other is dead-lettered); test by default.
    /// One database holds one mode's books: a rebuild must be given the same.
    pub stripe_mode: StripeMode,
}

impl Config {
    pub fn new(database_url: impl Into<String>, kafka: KafkaConfig) -> Self {
        Self {
            database_url: database_url.into(),
            kafka,
            topics: Topics::default(),
            group_id: "ledgerline-ledger".into(),
            partitions: 6,
            batch: BatchLimits::default(),
            publish: true,
            build_cells: true,
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            grpc_tls: None,
            metrics_addr: None,
            tokens: Vec::new(),
            raw_dictionary_samples: raw::DICTIONARY_SAMPLES,
            stripe_mode: StripeMode::default(),
        }
    }
}

/// A started ledger: where it listens and the task to await.
#[derive(Debug)]
pub struct Running {
    pub grpc_addr: SocketAddr,
    /// Where `/metrics` is served, when it is.
    pub metrics_addr: Option<SocketAddr>,
    pub pool: PgPool,
    pub task: tokio::task::JoinHandle<Result<(), Error>>,
}

/// Connects, migrates, binds the database to the configured Stripe mode
/// ([`Store::bind_stripe_mode`]), creates missing topics and starts the consumer, the outbox
/// publisher, the balance-cells builder and the gRPC server; they stop at `shutdown`.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Running, Error> {
    let store = PgStore::connect(&config.database_url)
        .await?
        .with_dictionary_samples(config.raw_dictionary_samples);
    store.bind_stripe_mode(config.stripe_mode).await?;
    let pool = store.pool().clone();
    let admin = config.kafka.admin()?;
    let events = config.topics.stripe_events();
    let bts = config.topics.stripe_balance_transactions();
    let entries = config.topics.ledger_entries();
    let specs: Vec<TopicSpec> = [&events, &bts, &entries]
        .into_iter()
        .map(|t| TopicSpec::new(t.as_str(), config.partitions))
        .chain(
            [&events, &bts]
                .into_iter()
                .map(|t| TopicSpec::new(dlq_of(t), 1)),
        )
        .collect();
    ensure_topics(&admin, &specs).await?;
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    warn_about_retention(&admin, &names).await;
    let consumer = ledgerline_bus::log::KafkaLog::new(
        config.kafka.consumer(&config.group_id)?,
        config
            .kafka
            .consumer(&format!("{}.log-start", config.group_id))?,
    );
    // It publishes dead letters: records whole, with headers added.
    let producer = config.kafka.forwarding_producer()?;
    let listener = tokio::net::TcpListener::bind(config.grpc_addr).await?;
    let grpc_addr = listener.local_addr()?;
    let metrics_listener = match config.metrics_addr {
        Some(addr) => Some(tokio::net::TcpListener::bind(addr).await?),
        None => None,
    };
    let metrics_addr = metrics_listener
        .as_ref()
        .map(tokio::net::TcpListener::local_addr)
        .transpose()?;

    let names: Vec<&str> = [&events, &bts].into_iter().map(String::as_str).collect();
    rdkafka::consumer::Consumer::subscribe(consumer.records(), &names).map_err(Error::Kafka)?;

    let mut tasks = tokio::task::JoinSet::new();
    let readiness = std::sync::Arc::new(health::Readiness::default());
    {
        let (store, producer, group, batch, readiness, shutdown) = (
            store.clone(),
            producer.clone(),
            config.group_id.clone(),
            config.batch,
            readiness.clone(),
            shutdown.clone(),
        );
        let topics = TopicKind::inputs(&config.topics).to_vec();
        let rules = PostingRules::of_mode(config.stripe_mode);
        tasks.spawn(async move {
            consumer::run(
                store, &consumer, &producer, topics, group, batch, rules, &readiness, shutdown,
            )
            .await
        });
    }
    if config.publish {
        tasks.spawn(outbox::run(
            pool.clone(),
            producer,
            entries,
            shutdown.clone(),
        ));
    }
    if config.build_cells {
        tasks.spawn(cells::run(pool.clone(), shutdown.clone()));
    }
    if let Some(listener) = metrics_listener {
        let scraper = metrics::Scraper::new(
            pool.clone(),
            &config.kafka,
            &config.group_id,
            &config.topics,
        )?;
        tasks.spawn(metrics::serve(
            std::sync::Arc::new(scraper.with_readiness(readiness)),
            listener,
            shutdown.clone(),
        ));
    }
    tasks.spawn(grpc::serve(
        store,
        config.tokens.clone(),
        listener,
        config.grpc_tls.clone(),
        shutdown.clone(),
    ));
    let task = supervise(tasks, shutdown.clone());
    Ok(Running {
        grpc_addr,
        metrics_addr,
        pool,
        task,
    })
}

/// Runs until `shutdown`.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    start(config, shutdown).await?.task.await?
}

/// How to run the embedded ledger: SQLite and the in-process log.
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    pub topics: Topics,
    /// The ledger's consumer group on the embedded log (and the key of its stored offsets).
    pub group_id: String,
    pub batch: BatchLimits,
    /// Partitions of the topics the ledger creates in the log if missing (an existing topic
    /// keeps its partitions).
    pub partitions: i32,
    /// gRPC listen address; `None` serves no gRPC.
    pub grpc_addr: Option<SocketAddr>,
    pub tokens: Vec<(String, Role)>,
    /// See [`Config::stripe_mode`].
    pub stripe_mode: StripeMode,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            topics: Topics::default(),
            group_id: "ledgerline-ledger".into(),
            batch: BatchLimits::default(),
            partitions: 3,
            grpc_addr: None,
            tokens: Vec::new(),
            stripe_mode: StripeMode::default(),
        }
    }
}

/// A started embedded ledger.
#[derive(Debug)]
pub struct EmbeddedRunning {
    pub grpc_addr: Option<SocketAddr>,
    pub task: tokio::task::JoinHandle<Result<(), Error>>,
}

/// Starts the ledger over the SQLite `store` and the embedded `log`: binds the store to the
/// configured Stripe mode, creates missing topics, then runs the fold, the outbox publisher
/// ([`embedded_outbox`]: committed entries onto the log's `ledger.entries.v1`, then out of the
/// outbox, at least once, as [`start`] does with Kafka) and, if configured, the gRPC API; they
/// stop at `shutdown`, and the first to fail stops the others and is the task's result.
pub async fn start_embedded(
    store: SqliteStore,
    log: ledgerline_bus::EmbeddedLog,
    config: EmbeddedConfig,
    shutdown: CancellationToken,
) -> Result<EmbeddedRunning, Error> {
    store.bind_stripe_mode(config.stripe_mode).await?;
    let events = config.topics.stripe_events();
    let bts = config.topics.stripe_balance_transactions();
    let entries = config.topics.ledger_entries();
    for t in [&events, &bts, &entries] {
        log.create_topic(t, config.partitions)?;
    }
    let consumer = log.consumer(&config.group_id, &[events.as_str(), bts.as_str()])?;
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(embedded_outbox::run(
        store.clone(),
        log.clone(),
        entries,
        shutdown.clone(),
    ));
    {
        let (store, group, batch, shutdown) = (
            store.clone(),
            config.group_id.clone(),
            config.batch,
            shutdown.clone(),
        );
        let topics = TopicKind::inputs(&config.topics).to_vec();
        let rules = PostingRules::of_mode(config.stripe_mode);
        tasks.spawn(async move {
            let readiness = health::Readiness::default();
            consumer::run(
                store, &consumer, &log, topics, group, batch, rules, &readiness, shutdown,
            )
            .await
        });
    }
    let mut grpc_addr = None;
    if let Some(addr) = config.grpc_addr {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        grpc_addr = Some(listener.local_addr()?);
        tasks.spawn(grpc::serve(
            store,
            config.tokens.clone(),
            listener,
            None,
            shutdown.clone(),
        ));
    }
    let task = supervise(tasks, shutdown.clone());
    Ok(EmbeddedRunning { grpc_addr, task })
}

/// Waits for every task; the first failure cancels the others (through `stop`) and is the
/// result, so one broken part never leaves the rest running half-alive.
fn supervise(
    mut tasks: tokio::task::JoinSet<Result<(), Error>>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<Result<(), Error>> {
    tokio::spawn(async move {
        let mut result = Ok(());
        while let Some(done) = tasks.join_next().await {
            let r = done.map_err(Error::from).and_then(|r| r);
            if let Err(e) = r {
                tracing::error!(error = %e, "ledger task failed; stopping");
                stop.cancel();
                if result.is_ok() {
                    result = Err(e);
                }
            }
        }
        result
    })
}
