//! Ledgerline's ingester: every Stripe event and balance transaction into Kafka, nothing
//! missed.
//!
//! - [`webhook`]: the signed-webhook receiver (2xx only after Kafka acknowledged);
//! - [`pollers`]: Events API catch-up and gap fill, balance transactions with a look-back,
//!   payout composition, backfill — each from a durable cursor ([`store`]) that moves only
//!   after Kafka acknowledged;
//! - [`publish`]: protobuf envelopes on the idempotent producer; [`metrics`]: `/metrics`.
//!
//! Architecture invariant: publishes facts, never posts accounting entries.

pub mod config;
pub mod filters;
pub mod metrics;
pub mod pollers;
pub mod publish;
pub mod records;
pub mod secretbox;
pub mod store;
pub mod webhook;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ledgerline_bus::topics::dlq_of;
use ledgerline_bus::{KafkaConfig, TopicSpec, Topics, ensure_topics};
use ledgerline_stripe::{
    Client, ClientConfig, Feature, WebhookSecret, WebhookVerifier, probe,
    webhook::DEFAULT_TOLERANCE_SECS,
};
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;

pub use filters::Filters;
use metrics::Metrics;
use pollers::{BACKFILL_RESOURCES, Ctx, Scope};
use publish::Publisher;
use store::Store;

/// The embedded migrations (the workspace's `migrations/`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");
/// The embedded mode's SQLite migrations (`migrations/sqlite/`).
pub static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

#[derive(Debug, thiserror::Error)]
pub enum IngesterError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("kafka: {0}")]
    Kafka(String),
    #[error(transparent)]
    Bus(#[from] ledgerline_bus::BusError),
    #[error(transparent)]
    Stripe(#[from] ledgerline_stripe::StripeError),
    #[error("cannot listen on {addr}: {message}")]
    Listen { addr: SocketAddr, message: String },
    #[error("configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Internal(String),
}

/// A clock (unix seconds), injectable for webhook tolerance tests.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    })
}

/// One Stripe account (key) the ingester reads.
#[derive(Debug, Clone)]
pub struct AccountConfig {
    /// Names the account in scopes, metrics and the webhook path `/webhooks/{name}`.
    pub name: String,
    pub client: ClientConfig,
    /// The platform account id (`acct_…`) records are keyed by.
    pub platform_account: String,
    /// Connected accounts read with `Stripe-Account`, each with its own cursors.
    pub connected_accounts: Vec<String>,
    /// Also read every connected account `GET /v1/accounts` lists.
    pub discover_connected: bool,
    /// Endpoint secrets (two during a rotation).
    pub webhook_secrets: Vec<WebhookSecret>,
    /// Register `{url}` as a webhook endpoint (`connect` too) at start and keep its secret.
    pub register_webhook_url: Option<String>,
}

/// What the ingester runs.
#[derive(Clone)]
pub struct IngesterConfig {
    pub listen: SocketAddr,
    pub kafka: KafkaConfig,
    pub topics: Topics,
    pub partitions: i32,
    pub database_url: String,
    pub accounts: Vec<AccountConfig>,
    pub poll_interval: Duration,
    /// Re-read pending balance transactions at least this often.
    pub bt_recheck_interval: Duration,
    pub events: bool,
    pub balance_transactions: bool,
    pub payouts: bool,
    pub backfill: bool,
    pub gap_fill: bool,
    pub webhook_tolerance_secs: i64,
    /// How long a webhook delivery waits for the log's acknowledgement before it is answered
    /// 503 (Stripe retries it; the record may still reach the log, and consumers deduplicate).
    /// Stripe asks endpoints to answer quickly, so a broker outage must not hold its requests.
    pub webhook_ack_timeout: Duration,
    pub body_limit: usize,
    pub filters: Filters,
    pub clock: Clock,
    /// Most Stripe objects a catch-up (events, balance transactions, look-back) holds in
    /// memory; a larger backlog is read forward page by page.
    pub catch_up_buffer: usize,
    /// Encrypts the webhook secrets the ingester registers (required when an account has
    /// `register_webhook_url`).
    pub webhook_secret_key: Option<secretbox::SecretKey>,
    /// Most event ids the gap fill remembers (per scope).
    pub gap_fill_seen_max: usize,
    /// The embedded mode: publish to this log (topics created on first use) instead of
    /// Kafka, and keep state in SQLite when `database_url` starts with `sqlite:`.
    pub log: Option<Arc<dyn ledgerline_bus::LogPublisher>>,
}

impl std::fmt::Debug for IngesterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngesterConfig")
            .field("listen", &self.listen)
            .field("accounts", &self.accounts)
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

impl IngesterConfig {
    pub fn new(
        kafka: KafkaConfig,
        database_url: impl Into<String>,
        accounts: Vec<AccountConfig>,
    ) -> Self {
        IngesterConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            kafka,
            topics: Topics::default(),
            partitions: 6,
            database_url: database_url.into(),
            accounts,
            poll_interval: Duration::from_secs(5),
            bt_recheck_interval: Duration::from_secs(60),
            events: true,
            balance_transactions: true,
            payouts: true,
            backfill: false,
            gap_fill: true,
            webhook_tolerance_secs: DEFAULT_TOLERANCE_SECS,
            webhook_ack_timeout: Duration::from_secs(10),
            body_limit: 1 << 20,
            filters: Filters::default(),
            clock: system_clock(),
            catch_up_buffer: pollers::DEFAULT_WALK_BUFFER,
            webhook_secret_key: None,
            gap_fill_seen_max: pollers::DEFAULT_GAP_SEEN_MAX,
            log: None,
        }
    }

    fn features(&self, account: &AccountConfig) -> Vec<Feature> {
        let mut f = Vec::new();
        if self.events || self.gap_fill {
            f.push(Feature::Events);
        }
        if self.balance_transactions {
            f.push(Feature::BalanceTransactions);
        }
        if self.payouts {
            f.push(Feature::Payouts);
        }
        if self.backfill {
            f.push(Feature::Backfill);
        }
        if account.discover_connected {
            f.push(Feature::Connect);
        }
        if account.register_webhook_url.is_some() {
            f.push(Feature::WebhookRegistration);
        }
        f
    }
}

/// A running ingester.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub metrics: Arc<Metrics>,
    task: tokio::task::JoinHandle<Result<(), IngesterError>>,
}

impl Running {
    pub async fn wait(self) -> Result<(), IngesterError> {
        self.task
            .await
            .map_err(|e| IngesterError::Internal(e.to_string()))?
    }
}

/// Runs until `shutdown` is cancelled.
pub async fn run(config: IngesterConfig, shutdown: CancellationToken) -> Result<(), IngesterError> {
    start(config, shutdown).await?.wait().await
}

/// Starts everything (probe, migrations, topics, webhook registration, listener, pollers)
/// and returns once the HTTP listener is bound.
pub async fn start(
    config: IngesterConfig,
    shutdown: CancellationToken,
) -> Result<Running, IngesterError> {
    if config.accounts.is_empty() {
        return Err(IngesterError::Config("no Stripe account configured".into()));
    }
    if config.webhook_secret_key.is_none()
        && let Some(acc) = config
            .accounts
            .iter()
            .find(|a| a.register_webhook_url.is_some())
    {
        return Err(IngesterError::Config(format!(
            "account {:?} registers its webhook endpoint, whose secret is kept encrypted in the \
             database: configure the encryption key ([webhook_secret_encryption] key_env or \
             key_file: 32 random bytes as 64 hex characters, e.g. `openssl rand -hex 32`)",
            acc.name
        )));
    }
    let metrics = Arc::new(Metrics::default());
    // Clients and the permission probe first: a key lacking a permission fails fast.
    let mut clients = Vec::new();
    for acc in &config.accounts {
        let client = Client::new(acc.client.clone())?;
        let report = probe(&client, &config.features(acc), None).await?;
        report.require_all()?;
        metrics.add_client(&acc.name, &client);
        clients.push(client);
    }
    let modes: HashSet<_> = clients.iter().map(Client::mode).collect();
    if modes.len() > 1 {
        return Err(IngesterError::Config(
            "test and live keys configured in one ingester: test and live mode never mix in one \
             deployment; run one ingester (with its own database and topics) per mode"
                .into(),
        ));
    }
    let store = if config.database_url.starts_with("sqlite:") {
        let options: sqlx::sqlite::SqliteConnectOptions = config
            .database_url
            .parse::<sqlx::sqlite::SqliteConnectOptions>()?
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(30));
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        SQLITE_MIGRATOR.run(&pool).await?;
        Store::sqlite(pool)
    } else {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect(&config.database_url)
            .await?;
        MIGRATOR.run(&pool).await?;
        Store::new(pool)
    };
    let publisher = match &config.log {
        Some(log) => Publisher::with_log(log.clone(), config.topics.clone(), metrics.clone()),
        None => {
            let admin = config.kafka.admin()?;
            let events = config.topics.stripe_events();
            let bts = config.topics.stripe_balance_transactions();
            let specs: Vec<TopicSpec> =
                [events.clone(), bts.clone(), config.topics.stripe_payouts()]
                    .into_iter()
                    .map(|t| TopicSpec::new(t, config.partitions))
                    // The dead letters of facts it cannot publish as they are (`publish`); the
                    // ledger creates the same topics for its own.
                    .chain([&events, &bts].map(|t| TopicSpec::new(dlq_of(t), 1)))
                    .collect();
            ensure_topics(&admin, &specs).await?;
            let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
            ledgerline_bus::warn_about_retention(&admin, &names).await;
            let producer = config.kafka.idempotent_producer()?;
            Publisher::new(producer, config.topics.clone(), metrics.clone())
        }
    };
    let ctx = Ctx {
        store: store.clone(),
        publisher: publisher.clone(),
        metrics: metrics.clone(),
        filters: Arc::new(config.filters.clone()),
        walk_buffer: config.catch_up_buffer.max(1),
    };

    // Webhook endpoints: secrets from the config, plus self-registered ones.
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| IngesterError::Listen {
            addr: config.listen,
            message: e.to_string(),
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| IngesterError::Internal(e.to_string()))?;
    let mut endpoints = Vec::new();
    let mut scopes = Vec::new();
    for (acc, client) in config.accounts.iter().zip(&clients) {
        let mut verifier =
            WebhookVerifier::new(acc.webhook_secrets.clone(), config.webhook_tolerance_secs);
        if let Some(url) = &acc.register_webhook_url {
            let key = config
                .webhook_secret_key
                .as_ref()
                .ok_or_else(|| IngesterError::Config("no webhook-secret encryption key".into()))?;
            let secret = webhook::register(&store, client, &acc.name, url, key).await?;
            verifier.add_secret(secret);
        }
        endpoints.push(webhook::Endpoint {
            name: acc.name.clone(),
            platform_account: acc.platform_account.clone(),
            verifier,
            livemode: client.mode().is_live(),
        });
        let mode = client.mode().as_str();
        scopes.push(Scope {
            key: format!("{}/{mode}/{}", acc.name, acc.platform_account),
            client: client.clone(),
            account: acc.platform_account.clone(),
            stripe_account: None,
        });
        let mut connected = acc.connected_accounts.clone();
        if acc.discover_connected {
            let page = client.list_page("/v1/accounts", &[], None).await?;
            connected.extend(page.data.into_iter().map(|o| o.id));
        }
        connected.sort();
        connected.dedup();
        for c in connected {
            scopes.push(Scope {
                key: format!("{}/{mode}/{c}", acc.name),
                client: client.clone(),
                account: c.clone(),
                stripe_account: Some(c),
            });
        }
    }
    let ready = Arc::new(AtomicBool::new(false));
    let app = webhook::router(
        webhook::AppState {
            endpoints: Arc::new(endpoints),
            publisher,
            metrics: metrics.clone(),
            clock: config.clock.clone(),
            filters: Arc::new(config.filters.clone()),
            ready: ready.clone(),
            ack_timeout: config.webhook_ack_timeout,
        },
        config.body_limit,
    );
    let server_shutdown = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { server_shutdown.cancelled().await })
            .await
            .map_err(|e| IngesterError::Internal(e.to_string()))
    });
    let mut tasks = Vec::new();
    for scope in scopes {
        tasks.push(tokio::spawn(poll_scope(
            ctx.clone(),
            scope,
            config.clone(),
            shutdown.clone(),
        )));
    }
    ready.store(true, Ordering::SeqCst);
    tracing::info!(%addr, "ingester started");
    let task = tokio::spawn(async move {
        let mut result = Ok(());
        for t in tasks {
            match t.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e),
                Err(e) => result = Err(IngesterError::Internal(e.to_string())),
            }
        }
        match server.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(e) => result = Err(IngesterError::Internal(e.to_string())),
        }
        result
    });
    Ok(Running {
        addr,
        metrics,
        task,
    })
}

/// The pull side of one scope until shutdown: backfill first (resumable), then rounds of
/// catch-up, gap fill, balance transactions, look-back and payouts. A failing round is
/// logged and retried next round; nothing advances past what Kafka acknowledged.
async fn poll_scope(
    ctx: Ctx,
    scope: Scope,
    config: IngesterConfig,
    shutdown: CancellationToken,
) -> Result<(), IngesterError> {
    if config.backfill {
        let mut set = tokio::task::JoinSet::new();
        for res in BACKFILL_RESOURCES {
            let (ctx, scope) = (ctx.clone(), scope.clone());
            set.spawn(async move { (res, ctx.backfill(&scope, res).await) });
        }
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                next = set.join_next() => match next {
                    None => break,
                    Some(Ok((res, Err(e)))) => tracing::error!(scope = %scope.key, resource = res, error = %e, "backfill failed; it resumes from its cursor at the next start"),
                    Some(_) => {}
                }
            }
        }
    }
    let mut gap_seen = pollers::GapSeen::new(config.gap_fill_seen_max);
    let mut now_hint = 0i64;
    let mut last_recheck = tokio::time::Instant::now();
    loop {
        let round = async {
            if config.events {
                ctx.catch_up_events(&scope).await?;
                if let Some(c) = ctx
                    .store
                    .cursor::<pollers::EventCursor>(&scope.key, "events")
                    .await?
                {
                    now_hint = now_hint.max(c.created);
                }
            }
            if config.gap_fill && now_hint > 0 {
                ctx.gap_fill(&scope, now_hint - 86_400, &mut gap_seen)
                    .await?;
            }
            if config.balance_transactions {
                ctx.poll_balance_transactions(&scope).await?;
                if let Some(c) = ctx
                    .store
                    .cursor::<pollers::BtCursor>(&scope.key, "balance_transactions")
                    .await?
                {
                    now_hint = now_hint.max(c.created);
                }
                let force = last_recheck.elapsed() >= config.bt_recheck_interval;
                if force {
                    last_recheck = tokio::time::Instant::now();
                }
                ctx.recheck_pending(&scope, now_hint, force).await?;
            }
            if config.payouts {
                ctx.payouts(&scope).await?;
            }
            Ok::<(), IngesterError>(())
        };
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            r = round => if let Err(e) = r {
                tracing::warn!(scope = %scope.key, error = %e, "poll round failed; retrying next round");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(config.poll_interval) => {}
        }
    }
}
