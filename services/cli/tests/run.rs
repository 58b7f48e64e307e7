//! `ledgerline run` as the binary, against stripe-sim's HTTP API standing in for Stripe: the
//! books equal the account's `/v1/balance` (platform and connected accounts), the key never
//! shows, and a second run over the same data directory resumes and still agrees.
#![allow(clippy::unwrap_used)]

use ledgerline_stripe_sim::http::{
    ClockConfig, DEFAULT_LIVE_KEY, DEFAULT_TEST_KEY, RateLimits, SimConfig, SimServer,
};
use ledgerline_stripe_sim::world::{World, WorldConfig};

fn run(base: &str, platform: &str, dir: &std::path::Path) -> (i32, String) {
    let (code, stdout, _) = run_with_key(base, platform, dir, DEFAULT_TEST_KEY);
    (code, stdout)
}

/// Exit code, stdout and stderr of `ledgerline run` with `key`.
fn run_with_key(
    base: &str,
    platform: &str,
    dir: &std::path::Path,
    key: &str,
) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ledgerline"))
        .args([
            "run",
            "--api-base",
            base,
            "--account",
            platform,
            "--data-dir",
        ])
        .arg(dir)
        .args(["--until-caught-up", "--idle-secs", "3", "--poll-secs", "1"])
        .env("STRIPE_API_KEY", key)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    println!("{stdout}\n--- stderr ---\n{stderr}");
    for text in [&stdout, &stderr] {
        assert!(!text.contains(key), "the key was printed");
    }
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reads_a_stripe_account_and_agrees_with_its_balance() {
    let mut config = WorldConfig::with_facts(7, 1_500);
    config.days = Some(10);
    let world = World::generate(&config);
    let end = world.truth.end;
    let sim_config = SimConfig {
        clock: ClockConfig {
            start: Some(end),
            speed: 0,
        },
        rate_limits: RateLimits {
            live_per_sec: 0,
            test_per_sec: 0,
        },
        ..SimConfig::default()
    };
    let platform = sim_config.platform_account.clone();
    let sim = SimServer::start(sim_config, world.objects).await.unwrap();
    let base = sim.base_url();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let (b, p) = (base.clone(), platform.clone());
    let (code, out) = tokio::task::spawn_blocking(move || run(&b, &p, &d))
        .await
        .unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("(test mode)"), "{out}");
    assert!(out.contains("the books agree with Stripe"), "{out}");
    // Every account with a truth balance was compared.
    for ac in world.truth.balances.keys() {
        let ledger = ac.account.clone().unwrap_or_else(|| platform.clone());
        assert!(
            out.lines()
                .any(|l| l.contains(&ledger) && l.contains(&format!(" {} books", ac.currency))),
            "{ledger} {} not compared:\n{out}",
            ac.currency
        );
    }
    assert!(!out.contains("DIFFERENT"), "{out}");
    assert_every_entry_published(dir.path(), &out).await;

    // Again over the same directory: it resumes and still agrees.
    let d = dir.path().to_path_buf();
    let (b, p) = (base.clone(), platform.clone());
    let (code, out) = tokio::task::spawn_blocking(move || run(&b, &p, &d))
        .await
        .unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("the books agree with Stripe"), "{out}");
    assert_every_entry_published(dir.path(), &out).await;

    // With a live key over the test run's directory it refuses to start: the live account's
    // facts would join the test books.
    let d = dir.path().to_path_buf();
    let (code, out, err) =
        tokio::task::spawn_blocking(move || run_with_key(&base, &platform, &d, DEFAULT_LIVE_KEY))
            .await
            .unwrap();
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("holds the books of Stripe's test mode, and this is a live-mode key"),
        "{err}"
    );
    assert!(!out.contains("reading Stripe account"), "{out}");
    sim.shutdown().await;
}

/// `--until-caught-up` returned only once the outbox was empty: the ledger's SQLite database
/// holds no unpublished entry, and the embedded log's `ledger.entries.v1` holds at least one
/// record per entry (at least once: a crash may publish one twice).
async fn assert_every_entry_published(dir: &std::path::Path, out: &str) {
    use sqlx::Connection as _;
    let url = format!("sqlite://{}", dir.join("ledger.sqlite").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let entries: i64 = sqlx::query_scalar("SELECT count(*) FROM journal_entries")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger_outbox")
        .fetch_one(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();
    assert!(entries > 0, "no entries:\n{out}");
    assert_eq!(waiting, 0, "entries left unpublished in the outbox:\n{out}");
    let log =
        ledgerline_bus::EmbeddedLog::open(dir.join("log"), ledgerline_cli::embedded::PARTITIONS)
            .unwrap();
    let topics = ledgerline_bus::Topics::default();
    let on_log: i64 = log.end_offsets(&topics.ledger_entries()).iter().sum();
    assert!(
        on_log >= entries,
        "{on_log} records on ledger.entries.v1 for {entries} entries:\n{out}"
    );
    assert!(
        out.contains("entries published on ledger.entries.v1"),
        "{out}"
    );
}
