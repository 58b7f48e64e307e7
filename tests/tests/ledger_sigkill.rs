//! The ledger binary killed with SIGKILL at random moments ends with exactly the entries of
//! the core's uninterrupted fold (and the ground truth), and its chains verify.
#![allow(clippy::unwrap_used)]

mod ledger_support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ledger_support::*;
use ledgerline_bus::Topics;
use ledgerline_tests::{kafka_bootstrap_servers, unique_name};

fn spawn(bin: &PathBuf, url: &str, topics: &str, group: &str) -> std::process::Child {
    Command::new(bin)
        .env("DATABASE_URL", url)
        .env("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap_servers())
        .env("LEDGERLINE_TOPIC_PREFIX", topics)
        .env("LEDGERLINE_GROUP", group)
        .env("LEDGERLINE_GRPC_ADDR", "127.0.0.1:0")
        .env("LEDGERLINE_PARTITIONS", PARTITIONS.to_string())
        .env(
            "LEDGERLINE_KAFKA_OPTIONS",
            "session.timeout.ms=6000,heartbeat.interval.ms=500",
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkilled_at_random_moments_ends_with_the_uninterrupted_books() {
    let bin = ledger_binary();
    let prefix = format!("{}.", unique_name("lk"));
    let topics = Topics::with_prefix(prefix.clone());
    create_topics(&topics).await;
    let (world, facts) = world_facts(17, 12_000);
    let records = produce(&topics, &facts, 30).await;
    let (pool, url) = fresh_db("ledger_kill").await;
    let group = unique_name("ledger");

    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let mut progress = Vec::new();
    for round in 0..10 {
        let before = folded(&pool, &group).await;
        if before >= records {
            break;
        }
        let mut child = spawn(&bin, &url, &prefix, &group);
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        if round % 2 == 1 {
            // A random moment in time: may land in start-up, the replay or a batch.
            let ms = 100 + u64::from(seed % 1200);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        } else {
            wait_for_random_point(&pool, &group, before, records, seed).await;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        progress.push(folded(&pool, &group).await);
    }
    let mut child = spawn(&bin, &url, &prefix, &group);
    wait_for_offsets(&pool, &group, records, Duration::from_secs(300)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        progress.iter().any(|p| *p > 0 && *p < records),
        "no kill landed mid-fold: {progress:?} of {records}"
    );

    let model = model(&facts);
    assert_eq!(stored_digests(&pool).await, model_digests(&model));
    assert_ground_truth(&pool, &world).await;
    let mut conn = pool.acquire().await.unwrap();
    let v = ledgerline_ledger::chain::verify(&mut conn).await.unwrap();
    assert!(v.ok(), "{:?}", v.first_bad);
}
