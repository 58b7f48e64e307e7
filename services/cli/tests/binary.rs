//! The `ledgerline` binary against a real ledger (in-process, real Kafka and PostgreSQL, empty
//! books): the token comes from `LEDGERLINE_TOKEN` and is never printed, failures exit 1 with a
//! message that says what to do, usage errors exit 2, and the query subcommands answer.
//! (The CLI against a seeded ledger: `tests/tests/cli.rs`.)
#![allow(clippy::unwrap_used)]

use std::process::Command;

use ledgerline_bus::{KafkaConfig, Topics};
use ledgerline_ledger::{Config, Role};
use sqlx::Connection as _;
use tokio_util::sync::CancellationToken;

const AUDITOR: &str = "bin-auditor-secret-0d41";
const OTHER: &str = "bin-other-secret-77e2";
const WRONG: &str = "wrong-secret-5521";

fn env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: run `scripts/test` (or `eval \"$(scripts/test-services up)\"` first)"
        ),
    }
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}_{}_{nanos}", std::process::id())
}

/// A fresh database's URL.
async fn fresh_database() -> String {
    let url = env("DATABASE_URL");
    let name = unique("cli_bin");
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await
        .unwrap();
    let (head, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let base = &head[..head.rfind('/').unwrap()];
    if query.is_empty() {
        format!("{base}/{name}")
    } else {
        format!("{base}/{name}?{query}")
    }
}

#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn ledgerline(addr: &str, args: &[&str], token: Option<&str>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ledgerline"));
    cmd.args(args).env("LEDGERLINE_ADDR", addr);
    match token {
        Some(t) => cmd.env("LEDGERLINE_TOKEN", t),
        None => cmd.env_remove("LEDGERLINE_TOKEN"),
    };
    let o = cmd.output().unwrap();
    Run {
        code: o.status.code(),
        stdout: String::from_utf8(o.stdout).unwrap(),
        stderr: String::from_utf8(o.stderr).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_takes_its_token_from_the_environment_and_says_what_to_do() {
    let mut config = Config::new(
        fresh_database().await,
        KafkaConfig::new(env("KAFKA_BOOTSTRAP_SERVERS"), "cli-binary-test"),
    );
    config.topics = Topics::with_prefix(format!("{}.", unique("clibin")));
    config.group_id = unique("ledger");
    config.partitions = 1;
    config.tokens = vec![(AUDITOR.into(), Role::Auditor), (OTHER.into(), Role::Other)];
    let stop = CancellationToken::new();
    let running = ledgerline_ledger::start(config, stop.clone())
        .await
        .unwrap();
    let addr = running.grpc_addr.to_string();

    let runs = tokio::task::spawn_blocking(move || {
        let run = |args: &[&str], token| ledgerline(&addr, args, token);
        vec![
            run(&["verify"], Some(AUDITOR)),
            run(&["trial-balance", "--ledger", "acct_x"], Some(AUDITOR)),
            run(&["export"], Some(AUDITOR)),
            run(&["balances", "--currency", "usd"], Some(AUDITOR)),
            run(&["balances"], None),
            run(&["entries"], Some(WRONG)),
            run(&["verify"], Some(OTHER)),
            run(&["balances", "--effective-as-of", "March 3rd"], None),
            run(&["entry", "not-a-uuid"], Some(AUDITOR)),
            ledgerline("127.0.0.1:1", &["verify"], Some(AUDITOR)),
        ]
    })
    .await
    .unwrap();
    let [
        ok,
        tb,
        export,
        balances,
        anonymous,
        wrong,
        other,
        bad_time,
        bad_id,
        down,
    ] = <[Run; 10]>::try_from(runs).unwrap();

    assert_eq!(ok.code, Some(0), "{ok:?}");
    assert!(ok.stdout.starts_with("chain verified: 0 entries"), "{ok:?}");
    assert_eq!(tb.code, Some(0), "{tb:?}");
    assert!(tb.stdout.contains("acct_x: balanced"), "{tb:?}");
    assert_eq!(export.code, Some(0), "{export:?}");
    assert_eq!(
        export.stdout,
        "entry_id,ledger,effective_at,recorded_at,rule,source_kind,source_id,fact_id,line,\
         account,currency,amount\r\n"
    );
    // No entry in usd yet: the ledger's INVALID_ARGUMENT message comes through.
    assert_eq!(balances.code, Some(1), "{balances:?}");
    assert!(
        balances.stderr.contains("refused the request") && balances.stderr.contains("usd"),
        "{balances:?}"
    );

    assert_eq!(anonymous.code, Some(1), "{anonymous:?}");
    assert!(
        anonymous.stderr.contains("set LEDGERLINE_TOKEN"),
        "{anonymous:?}"
    );
    assert!(anonymous.stdout.is_empty());
    assert_eq!(wrong.code, Some(1), "{wrong:?}");
    assert!(wrong.stderr.contains("rejected the token"), "{wrong:?}");
    assert_eq!(other.code, Some(1), "{other:?}");
    assert!(other.stderr.contains("auditor or admin"), "{other:?}");
    for r in [&ok, &tb, &export, &wrong, &other] {
        for secret in [AUDITOR, OTHER, WRONG] {
            assert!(!r.stdout.contains(secret) && !r.stderr.contains(secret));
        }
    }

    assert_eq!(bad_time.code, Some(2), "clap's usage error: {bad_time:?}");
    assert!(bad_time.stderr.contains("RFC 3339"), "{bad_time:?}");
    assert_eq!(bad_id.code, Some(1), "{bad_id:?}");
    assert!(bad_id.stderr.contains("is not a UUID"), "{bad_id:?}");
    assert_eq!(down.code, Some(1), "{down:?}");
    assert!(down.stderr.contains("Is it running?"), "{down:?}");

    stop.cancel();
    running.task.await.unwrap().unwrap();
}
