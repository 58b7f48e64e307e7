//! The ledger service binary: configuration from flags and `LEDGERLINE_*` environment.

use std::net::SocketAddr;

// mimalloc: see the workspace Cargo.toml (less CPU than glibc's malloc in the ledger).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ledgerline_bus::{KafkaConfig, Topics};
use ledgerline_ledger::rebuild::{self, RebuildConfig};
use ledgerline_ledger::{Config, Role, StripeMode, TopicKind};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
// The name is given: the tests build this file in their own package too (tests/Cargo.toml).
#[command(
    name = "ledgerline-ledger",
    about = "Ledgerline ledger: Stripe facts from Kafka into PostgreSQL, exactly once"
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// The ledger's database (for `rebuild`: the live ledger's, only read).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    database_url: Option<String>,
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        hide_env_values = true,
        global = true
    )]
    kafka: Option<String>,
    #[arg(
        long,
        env = "LEDGERLINE_TOPIC_PREFIX",
        hide_env_values = true,
        default_value = "",
        global = true
    )]
    topic_prefix: String,
    #[arg(
        long,
        env = "LEDGERLINE_GROUP",
        hide_env_values = true,
        default_value = "ledgerline-ledger",
        global = true
    )]
    group: String,
    #[arg(
        long,
        env = "LEDGERLINE_GRPC_ADDR",
        hide_env_values = true,
        default_value = "127.0.0.1:50051"
    )]
    grpc_addr: SocketAddr,
    /// Serve gRPC over TLS: the PEM file of the server's certificate chain (leaf first), with
    /// --grpc-tls-key. Without them gRPC is plain HTTP/2: fine on loopback or behind a proxy
    /// that terminates TLS, not across a network (bearer tokens travel in every request).
    #[arg(
        long,
        env = "LEDGERLINE_GRPC_TLS_CERT",
        hide_env_values = true,
        requires = "grpc_tls_key"
    )]
    grpc_tls_cert: Option<std::path::PathBuf>,
    /// The PEM file of that certificate's private key.
    #[arg(
        long,
        env = "LEDGERLINE_GRPC_TLS_KEY",
        hide_env_values = true,
        requires = "grpc_tls_cert"
    )]
    grpc_tls_key: Option<std::path::PathBuf>,
    /// Where `GET /metrics` (Prometheus text) is served; `off` serves none.
    #[arg(
        long,
        env = "LEDGERLINE_METRICS_ADDR",
        hide_env_values = true,
        default_value = "127.0.0.1:9466"
    )]
    metrics_addr: String,
    /// `token=role` pairs (roles: auditor, admin), comma separated.
    #[arg(
        long,
        env = "LEDGERLINE_TOKENS",
        hide_env_values = true,
        default_value = "",
        value_delimiter = ','
    )]
    tokens: Vec<String>,
    /// Extra librdkafka settings, `key=value`, comma separated (e.g. `session.timeout.ms=6000`).
    #[arg(
        long,
        env = "LEDGERLINE_KAFKA_OPTIONS",
        hide_env_values = true,
        default_value = "",
        value_delimiter = ',',
        global = true
    )]
    kafka_options: Vec<String>,
    /// Partitions of the topics created at start when missing.
    #[arg(
        long,
        env = "LEDGERLINE_PARTITIONS",
        hide_env_values = true,
        default_value_t = 6
    )]
    partitions: i32,
    /// Facts to train the raw-fact zstd dictionary on when the database has none (0: never;
    /// stored facts are then compressed without one, ~3.5× larger).
    #[arg(long, env = "LEDGERLINE_RAW_DICTIONARY_SAMPLES", hide_env_values = true, default_value_t = ledgerline_ledger::raw::DICTIONARY_SAMPLES, global = true)]
    raw_dictionary_samples: usize,
    /// The Stripe mode whose facts this ledger books, `test` or `live` (a fact of the other
    /// mode is dead-lettered). One database keeps one mode's books; `rebuild` needs the live
    /// ledger's.
    #[arg(
        long,
        env = "LEDGERLINE_STRIPE_MODE",
        hide_env_values = true,
        default_value = "test",
        global = true
    )]
    stripe_mode: StripeMode,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replays the topics from their first record into an empty database or schema, up to
    /// exactly the offsets the live ledger (DATABASE_URL, --group) has stored, and compares the
    /// books: facts, every entry field by field, chain heads. Exit 0: identical; 1: different
    /// (each difference listed); 2: could not run.
    Rebuild {
        /// The empty database to rebuild into (default: the live one, with --into-schema).
        #[arg(long, env = "LEDGERLINE_REBUILD_INTO", hide_env_values = true)]
        into: Option<String>,
        /// A schema of that database to rebuild into (created when missing; must be empty).
        #[arg(long)]
        into_schema: Option<String>,
        /// Differences of each kind listed (all are counted).
        #[arg(long, default_value_t = 20)]
        max_listed: usize,
        /// The target holds an earlier rebuild of this ledger (interrupted, or older): fold on
        /// from its offsets to the live ones, then compare (a standing shadow ledger).
        #[arg(long = "continue")]
        continue_existing: bool,
    },
    /// The records the ledger could not fold (`<topic>.dlq`): `list` them with their source
    /// and reason, or `replay` them to their topics once the cause is fixed.
    DeadLetters {
        #[command(subcommand)]
        action: DeadLettersAction,
    },
}

#[derive(Debug, Subcommand)]
enum DeadLettersAction {
    /// Every dead letter of the input topics, a tab-separated line each: the dead letter
    /// (topic/partition/offset), where it came from, the fact it carries, the reason.
    List,
    /// Publishes dead letters again to their source topics, byte for byte with the same key
    /// (the ledger folds a fact's bytes once, so a repeated replay doubles nothing); those
    /// whose envelope does not decode are kept.
    Replay {
        /// Every dead letter.
        #[arg(long, conflicts_with = "record", required_unless_present = "record")]
        all: bool,
        /// One dead letter, as `list` names it (topic/partition/offset); repeatable.
        #[arg(long)]
        record: Vec<String>,
    },
}

/// Exit status of `rebuild` when the books differ (errors exit 2).
const DIFFERENT: u8 = 1;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .init();
    match run(Args::parse()).await {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "ledgerline-ledger: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    let database_url = || {
        args.database_url
            .clone()
            .ok_or_else(|| anyhow::anyhow!("set DATABASE_URL or --database-url"))
    };
    let kafka = kafka_config(&args)?;
    match args.command {
        None => {
            let database_url = database_url()?;
            serve(args, database_url, kafka, shutdown).await
        }
        Some(Command::DeadLetters { action }) => {
            dead_letters(action, &kafka, &Topics::with_prefix(args.topic_prefix)).await
        }
        Some(Command::Rebuild {
            into,
            into_schema,
            max_listed,
            continue_existing,
        }) => {
            let database_url = database_url()?;
            let target = match (into, &into_schema) {
                (Some(url), _) => url,
                (None, Some(_)) => database_url.clone(),
                (None, None) => anyhow::bail!(
                    "rebuild needs somewhere to write: --into URL (an empty database) and/or \
                     --into-schema NAME (a new schema; of the live database when --into is not given)"
                ),
            };
            let mut config = RebuildConfig::new(database_url, target, kafka);
            config.group = Some(args.group);
            config.target_schema = into_schema;
            config.topics = Topics::with_prefix(args.topic_prefix);
            config.raw_dictionary_samples = args.raw_dictionary_samples;
            config.max_listed = max_listed;
            config.continue_existing = continue_existing;
            config.stripe_mode = args.stripe_mode;
            let last = std::sync::Mutex::new(std::time::Instant::now());
            let progress = |p: rebuild::Progress| {
                let Ok(mut last) = last.lock() else { return };
                if last.elapsed() >= std::time::Duration::from_secs(2) || p.folded == p.records {
                    *last = std::time::Instant::now();
                    let _ = writeln!(
                        std::io::stderr(),
                        "rebuild: {} of {} records folded",
                        p.folded,
                        p.records
                    );
                }
            };
            let report = rebuild::run(config, shutdown, &progress).await?;
            writeln!(std::io::stdout(), "{report}")?;
            Ok(if report.identical() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(DIFFERENT)
            })
        }
    }
}

/// `dead-letters list | replay`.
async fn dead_letters(
    action: DeadLettersAction,
    kafka: &KafkaConfig,
    topics: &Topics,
) -> anyhow::Result<ExitCode> {
    use ledgerline_ledger::dead_letters;
    let reader = kafka.consumer("ledgerline-dead-letters-reader")?;
    let letters = dead_letters::collect(&reader, &TopicKind::inputs(topics)).await?;
    let mut out = std::io::stdout().lock();
    match action {
        DeadLettersAction::List => dead_letters::write_list(&mut out, &letters)?,
        DeadLettersAction::Replay { all, record } => {
            let chosen: Vec<&dead_letters::DeadLetterRecord> = if all {
                letters.iter().collect()
            } else {
                record
                    .iter()
                    .map(|id| {
                        letters.iter().find(|l| l.id == *id).ok_or_else(|| {
                            anyhow::anyhow!(
                                "no dead letter {id}: `dead-letters list` names them \
                                 (topic/partition/offset)"
                            )
                        })
                    })
                    .collect::<anyhow::Result<_>>()?
            };
            let producer = kafka.forwarding_producer()?;
            let replayed = dead_letters::replay(&producer, &chosen).await?;
            writeln!(out, "{replayed}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn kafka_config(args: &Args) -> anyhow::Result<KafkaConfig> {
    let servers = args
        .kafka
        .clone()
        .ok_or_else(|| anyhow::anyhow!("set KAFKA_BOOTSTRAP_SERVERS or --kafka"))?;
    let mut config = KafkaConfig::new(servers, "ledgerline-ledger");
    // An entry may carry a secret (`sasl.password=…`): errors name it by position only.
    for (n, option) in args.kafka_options.iter().enumerate() {
        if option.is_empty() {
            continue;
        }
        let Some((key, value)) = option.split_once('=') else {
            anyhow::bail!(
                "LEDGERLINE_KAFKA_OPTIONS / --kafka-options entry {} is not `key=value`",
                n + 1
            );
        };
        config = config.with(key, value);
    }
    Ok(config)
}

/// The service: fold, publish, build cells, answer gRPC and /metrics until Ctrl-C.
async fn serve(
    args: Args,
    database_url: String,
    kafka: KafkaConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<ExitCode> {
    let mut config = Config::new(database_url, kafka);
    config.grpc_tls = grpc_tls(&args)?;
    config.partitions = args.partitions;
    config.raw_dictionary_samples = args.raw_dictionary_samples;
    config.stripe_mode = args.stripe_mode;
    config.topics = Topics::with_prefix(args.topic_prefix);
    config.group_id = args.group;
    config.grpc_addr = args.grpc_addr;
    config.metrics_addr = match args.metrics_addr.as_str() {
        "off" => None,
        addr => Some(addr.parse().map_err(|e| {
            anyhow::anyhow!("--metrics-addr {addr:?} is not an address (host:port) or `off`: {e}")
        })?),
    };
    config.tokens = parse_tokens(&args.tokens)?;
    if config.grpc_tls.is_none() && !args.grpc_addr.ip().is_loopback() {
        tracing::warn!(
            addr = %args.grpc_addr,
            "gRPC is served without TLS beyond loopback: bearer tokens and the books travel in \
             clear; set LEDGERLINE_GRPC_TLS_CERT and LEDGERLINE_GRPC_TLS_KEY, or terminate TLS \
             in front of it"
        );
    }
    ledgerline_ledger::run(config, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

/// The gRPC TLS identity from the files the arguments name, if any.
fn grpc_tls(args: &Args) -> anyhow::Result<Option<ledgerline_ledger::tls::GrpcTls>> {
    let (Some(cert), Some(key)) = (&args.grpc_tls_cert, &args.grpc_tls_key) else {
        return Ok(None);
    };
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read(path).map_err(|e| {
            anyhow::anyhow!(
                "cannot read the gRPC TLS {what} file {}: {e}",
                path.display()
            )
        })
    };
    Ok(Some(ledgerline_ledger::tls::GrpcTls::from_pem(
        read(cert, "certificate")?,
        read(key, "key")?,
    )?))
}

/// `token=role` entries. A malformed entry stops the start (dropping it would leave its holder
/// locked out with no hint why); an unknown role is kept as one that may call nothing, with a
/// warning. Messages name the entry by position, never the token.
fn parse_tokens(entries: &[String]) -> anyhow::Result<Vec<(String, Role)>> {
    let mut tokens = Vec::new();
    for (n, entry) in entries.iter().enumerate().filter(|(_, e)| !e.is_empty()) {
        let Some((token, role)) = entry.split_once('=').filter(|(t, _)| !t.is_empty()) else {
            anyhow::bail!(
                "LEDGERLINE_TOKENS / --tokens entry {} is not `token=role` (roles: auditor, admin)",
                n + 1
            );
        };
        let role = match role {
            "auditor" => Role::Auditor,
            "admin" => Role::Admin,
            other => {
                tracing::warn!(
                    entry = n + 1,
                    role = other,
                    "token role is neither auditor nor admin: its holder may call nothing"
                );
                Role::Other
            }
        };
        tokens.push((token.to_owned(), role));
    }
    Ok(tokens)
}

/// `RUST_LOG`, or `info` without it: the warnings and the start-up lines an operator needs
/// (topics that delete records, an outage waited out, how long the warm start took) are not
/// errors, and were silent by default.
fn log_filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Arguments (of the command or any subcommand) bound to an environment variable whose
    /// value `--help` would print: the database URL's password, the tokens, Kafka's SASL
    /// password among the options…
    fn env_values_shown(cmd: &clap::Command) -> Vec<String> {
        let mut shown: Vec<String> = cmd
            .get_arguments()
            .filter(|a| a.get_env().is_some() && !a.is_hide_env_values_set())
            .map(|a| format!("{} --{}", cmd.get_name(), a.get_id()))
            .collect();
        for sub in cmd.get_subcommands() {
            shown.extend(env_values_shown(sub));
        }
        shown
    }

    #[test]
    fn without_rust_log_the_ledger_logs_from_info_up() {
        // RUST_LOG is not set in the test runs (scripts/test); if it is, it decides.
        if std::env::var_os("RUST_LOG").is_none() {
            assert_eq!(
                log_filter().max_level_hint(),
                Some(tracing_subscriber::filter::LevelFilter::INFO)
            );
        }
    }

    #[test]
    fn help_never_prints_an_environment_value() {
        use clap::CommandFactory as _;
        let mut cmd = Args::command();
        cmd.build();
        let bound = cmd
            .get_arguments()
            .filter(|a| a.get_env().is_some())
            .count();
        assert!(bound >= 8, "{bound} arguments read the environment");
        assert_eq!(env_values_shown(&cmd), Vec::<String>::new());
    }

    #[test]
    fn a_malformed_kafka_option_stops_the_start_without_showing_it() {
        let args = |options: &str| {
            Args::try_parse_from([
                "ledgerline-ledger",
                "--database-url",
                "postgres://x",
                "--kafka",
                "127.0.0.1:9092",
                "--kafka-options",
                options,
            ])
            .unwrap()
        };
        assert!(kafka_config(&args("session.timeout.ms=6000,acks=all")).is_ok());
        let e = kafka_config(&args("acks=all,sasl.password:hunter2"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("entry 2"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn tokens_parse_strictly_and_errors_never_show_the_token() {
        let ok = parse_tokens(&[
            "a=auditor".into(),
            String::new(),
            "b=admin".into(),
            "c=ops".into(),
        ])
        .unwrap();
        assert_eq!(
            ok,
            vec![
                ("a".to_owned(), Role::Auditor),
                ("b".to_owned(), Role::Admin),
                ("c".to_owned(), Role::Other)
            ]
        );
        for bad in ["s3cret:auditor", "=admin", "s3cret"] {
            let e = parse_tokens(&["a=auditor".into(), bad.into()])
                .unwrap_err()
                .to_string();
            assert!(e.contains("entry 2"), "{e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
    }
}
